//! Property tests of the pure functions an attacker's bytes reach: path
//! checks and routing, header filtering, the bearer parser, claim paths,
//! `${VAR}` expansion and the config loader. Case counts keep the whole
//! module to a few seconds in a release build; a failure is shrunk and
//! saved under `proptest-regressions/` to be replayed first next time.

use std::path::PathBuf;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use nyro_gw::auth::{BearerError, bearer_token, injected_headers};
use nyro_gw::config::env::expand;
use nyro_gw::config::{self, ClaimPath, Injection, LoadOptions, Severity};
use nyro_gw::proxy::headers::{request_id, strip_forgeable, strip_hop_by_hop};
use nyro_gw::routing::{Router, path_problem};

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------
// Paths and routing
// ---------------------------------------------------------------------

/// Nyro's route table (gateway.toml) plus a catch-all, in route order.
const PREFIXES: [&str; 5] = [
    "/api/v1/ingest",
    "/api/v1/query",
    "/api/v1/auth",
    "/api",
    "/",
];

fn routers() -> [Router; 2] {
    [
        Router::new(PREFIXES),
        // Without the catch-all: a path that matches nothing is a 404.
        Router::new(PREFIXES[..4].iter().copied()),
    ]
}

/// Paths built from the pieces that change how a path is read: route
/// segments, dots, separators and their encodings, `;`, `\`, NUL. Half
/// start at a route prefix, so the interesting bytes sit right at the
/// boundary the router decides on.
fn path() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("/"),
        Just("."),
        Just(".."),
        Just("%"),
        Just("2"),
        Just("e"),
        Just("E"),
        Just("f"),
        Just("F"),
        Just("5"),
        Just("c"),
        Just("C"),
        Just(";"),
        Just("\\"),
        Just("\0"),
        Just("a"),
        Just("%2e"),
        Just("%2E"),
        Just("%2f"),
        Just("%2F"),
        Just("%5c"),
        Just("%5C"),
        Just("%00"),
        Just("%61"),
        Just("%25"),
        Just("api"),
        Just("v1"),
        Just("ingest"),
        Just("query"),
        Just("auth"),
    ];
    let start = prop_oneof![
        Just(""),
        Just("/"),
        Just("/api"),
        Just("/api/"),
        Just("/api/v1"),
        Just("/api/v1/"),
        Just("/api/v1/ingest"),
        Just("/api/v1/query"),
        Just("/api/v1/auth"),
        Just("/api/v1/auth/"),
    ];
    (start, prop::collection::vec(atom, 0..12)).prop_map(|(s, atoms)| {
        let mut p = String::from(s);
        if !p.starts_with('/') {
            p.insert(0, '/');
        }
        for a in atoms {
            p.push_str(a);
        }
        p
    })
}

/// RFC 3986 §6.2.2.1 and §6.2.2.2: percent-encodings of unreserved
/// characters decoded, the others' hex digits upper-cased.
fn percent_normalize(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(d) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            if d.is_ascii_alphanumeric() || b"-._~".contains(&d) {
                out.push(d);
            } else {
                out.push(b'%');
                out.extend(b[i + 1..i + 3].iter().map(u8::to_ascii_uppercase));
            }
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("only ASCII was decoded")
}

/// RFC 3986 §5.2.4 remove_dot_segments, as written there.
fn remove_dot_segments(p: &str) -> String {
    let mut input = p.to_owned();
    let mut out = String::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest.to_owned();
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest.to_owned();
        } else if input.starts_with("/./") {
            input.replace_range(..3, "/");
        } else if input == "/." {
            input = "/".into();
        } else if input.starts_with("/../") || input == "/.." {
            let n = if input == "/.." { 3 } else { 4 };
            input.replace_range(..n, "/");
            match out.rfind('/') {
                Some(i) => out.truncate(i),
                None => out.clear(),
            }
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            out.push_str(&input[..end]);
            input.replace_range(..end, "");
        }
    }
    out
}

/// The normalization every reading ends with (RFC 3986 §6.2.2).
fn rfc3986(p: &str) -> String {
    remove_dot_segments(&percent_normalize(p))
}

/// Replaces `%xx` (either case) for the given bytes with `to`.
fn decode_only(p: &str, which: &[u8], to: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < b.len() {
        let d = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if d.is_some_and(|d| which.contains(&d)) {
            out.push_str(to);
            i += 3;
        } else {
            let ch = p[i..].chars().next().expect("on a char boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// nginx `merge_slashes`, among others.
fn merge_slashes(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// Tomcat: `;params` removed from every segment.
fn strip_path_params(p: &str) -> String {
    p.split('/')
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

/// The path up to the first NUL, literal or `%00` (a C string).
fn cut_at_nul(p: &str) -> String {
    let literal = p.find('\0').unwrap_or(p.len());
    let encoded = p.find("%00").unwrap_or(p.len());
    p[..literal.min(encoded)].to_owned()
}

/// Checks that an accepted path routes as `reading` reads it, on both
/// routers.
fn same_route(p: &str, reading: fn(&str) -> String) -> Result<(), TestCaseError> {
    if path_problem(p).is_some() {
        return Ok(());
    }
    let q = reading(p);
    for r in routers() {
        prop_assert_eq!(
            r.find(p),
            r.find(&q),
            "{:?} is accepted, but an upstream reads it as {:?}",
            p,
            q
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(20000))]

    #[test]
    fn path_checks_never_panic(p in "\\PC*", q in path()) {
        for p in [p, q] {
            let _ = path_problem(&p);
            for r in routers() {
                let _ = r.find(&p);
            }
        }
    }

    #[test]
    fn accepted_paths_route_as_rfc3986_normalizes_them(p in path()) {
        same_route(&p, rfc3986)?;
    }

    #[test]
    fn accepted_paths_route_as_merged_slashes_read(p in path()) {
        same_route(&p, |p| rfc3986(&merge_slashes(p)))?;
    }

    #[test]
    fn accepted_paths_route_as_decoded_slashes_read(p in path()) {
        same_route(&p, |p| rfc3986(&decode_only(p, b"/\\", "/")))?;
    }
}

// Readings that servers apply beyond RFC 3986 (WHATWG URL parsers treat `\`
// as `/`, Tomcat cuts `;` parameters, C servers cut at NUL): before the
// path check refused `\`, `;` and NUL, `GET /api/v1/ingest;x` reached a
// catch-all `/` route, unauthenticated, where a Tomcat upstream read
// /api/v1/ingest.
proptest! {
    #![proptest_config(cases(20000))]

    #[test]
    fn accepted_paths_route_as_backslash_separators_read(p in path()) {
        same_route(&p, |p| rfc3986(&p.replace('\\', "/")))?;
    }

    #[test]
    fn accepted_paths_route_as_cut_at_semicolon_reads(p in path()) {
        same_route(&p, |p| rfc3986(p.split(';').next().unwrap_or("")))?;
    }

    #[test]
    fn accepted_paths_route_as_tomcat_path_params_read(p in path()) {
        same_route(&p, |p| rfc3986(&strip_path_params(p)))?;
    }

    #[test]
    fn accepted_paths_route_as_cut_at_nul_reads(p in path()) {
        same_route(&p, |p| rfc3986(&cut_at_nul(p)))?;
    }
}

#[test]
fn normalization_helpers_follow_rfc3986() {
    // RFC 3986 §5.4 examples, on paths.
    for (input, want) in [
        ("/a/b/c/./../../g", "/a/g"),
        ("mid/content=5/../6", "mid/6"),
        ("/a/b/../../..", "/"),
        ("/a/./b/.", "/a/b/"),
        ("/..", "/"),
        ("/a/..", "/"),
    ] {
        assert_eq!(remove_dot_segments(input), want, "{input}");
    }
    assert_eq!(rfc3986("/%61pi/%2e%2E/x%2f%7e"), "/x%2F~");
    assert_eq!(decode_only("/a%2fb%5Cc%2e", b"/\\", "/"), "/a/b/c%2e");
    assert_eq!(merge_slashes("//a///b/"), "/a/b/");
    assert_eq!(strip_path_params("/a;x/..;/b;y"), "/a/../b");
    assert_eq!(cut_at_nul("/a%00b\0c"), "/a");
}

// ---------------------------------------------------------------------
// Header filtering
// ---------------------------------------------------------------------

/// Same name once case and `-`/`_` are ignored (how CGI-style servers
/// see header names).
fn same_cgi_name(a: &str, b: &str) -> bool {
    let fold = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    fold(a) == fold(b)
}

/// A name spelled with random case and random `-`/`_`.
fn respell(name: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<(bool, bool)>(), name.len()).prop_map(move |flips| {
        name.chars()
            .zip(flips)
            .map(|(c, (upper, under))| match c {
                '-' | '_' if under => '_',
                '-' | '_' => '-',
                c if upper => c.to_ascii_uppercase(),
                c => c,
            })
            .collect()
    })
}

fn forgeable_request() -> impl Strategy<Value = (Vec<String>, Vec<(String, String)>)> {
    let injected = prop::sample::subsequence(
        vec!["x-user-id", "x-company-id", "x-user-email", "x-role"],
        0..=4,
    );
    let sent = prop::collection::vec(
        (
            prop_oneof![
                respell("x-user-id"),
                respell("x-company-id"),
                respell("x-user-email"),
                respell("x-role"),
                respell("x-user-idx"),
                respell("x-request-id"),
                "[a-zA-Z0-9_-]{1,12}",
            ],
            "[ -~]{0,8}",
        ),
        0..10,
    );
    (
        injected.prop_map(|v| v.into_iter().map(str::to_owned).collect()),
        sent,
    )
}

fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    h
}

proptest! {
    #![proptest_config(cases(5000))]

    #[test]
    fn no_spelling_of_an_injected_name_survives((injected, sent) in forgeable_request()) {
        let names: Vec<HeaderName> = injected
            .iter()
            .map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap())
            .collect();
        let before = header_map(&sent);
        let mut h = before.clone();
        strip_forgeable(&mut h, &names);
        for k in h.keys() {
            prop_assert!(
                !injected.iter().any(|n| same_cgi_name(n, k.as_str())),
                "{} survived, injected {:?}", k, injected
            );
        }
        // Nothing else is touched.
        for (k, v) in &before {
            if !injected.iter().any(|n| same_cgi_name(n, k.as_str())) {
                prop_assert!(h.get_all(k).iter().any(|x| x == v), "{} lost", k);
            }
        }
    }

    #[test]
    fn hop_by_hop_and_connection_listed_names_never_pass(
        sent in prop::collection::vec(
            (
                prop_oneof![
                    respell("connection"),
                    respell("keep-alive"),
                    respell("proxy-connection"),
                    respell("te"),
                    respell("transfer-encoding"),
                    respell("upgrade"),
                    respell("proxy-authorization"),
                    respell("x-hop"),
                    respell("x-kept"),
                ],
                prop_oneof![
                    "[ -~]{0,8}".boxed(),
                    prop::collection::vec(
                        prop_oneof![respell("x-hop"), respell("keep-alive"), Just("close".into())],
                        1..4,
                    )
                    .prop_map(|v| v.join(", "))
                    .boxed(),
                ],
            ),
            0..10,
        )
    ) {
        let before = header_map(&sent);
        let listed: Vec<String> = before
            .get_all("connection")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        let mut h = before.clone();
        strip_hop_by_hop(&mut h, false);
        for k in h.keys() {
            let k = k.as_str();
            prop_assert!(
                ![
                    "connection", "keep-alive", "proxy-connection", "te",
                    "transfer-encoding", "upgrade", "proxy-authorization",
                ]
                .contains(&k),
                "hop-by-hop {} survived", k
            );
            prop_assert!(!listed.iter().any(|l| l == k), "{} is listed in Connection", k);
        }
    }

    #[test]
    fn request_id_is_always_sane(v in prop::collection::vec(
        prop_oneof![any::<u8>(), Just(b'a'), Just(b'-')], 0..140)
    ) {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&v) {
            h.insert("x-request-id", v);
        }
        let id = request_id(&h);
        let b = id.as_bytes();
        prop_assert!(!b.is_empty() && b.len() <= 128);
        prop_assert!(b.iter().all(|c| c.is_ascii_alphanumeric() || b"._:+=/-".contains(c)));
    }
}

// ---------------------------------------------------------------------
// The bearer parser (RFC 6750 §2.1)
// ---------------------------------------------------------------------

/// `Authorization` values: bearer-ish spellings (any case, odd spacing,
/// tabs, no space), other schemes, and raw bytes a header value may hold.
fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![
        respell("bearer").prop_map(String::into_bytes),
        Just(b"Basic".to_vec()),
        Just(b"Bearerx".to_vec()),
        Just(Vec::new()),
    ];
    let gap = prop_oneof![
        Just(b" ".to_vec()),
        Just(b"  ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b" \t".to_vec()),
        Just(Vec::new()),
    ];
    let token = prop_oneof![
        "[A-Za-z0-9._~+/-]{1,20}=*".prop_map(String::into_bytes),
        prop::collection::vec(
            prop_oneof![
                Just(b' '),
                Just(b'\t'),
                Just(b'a'),
                Just(b'.'),
                0x80u8..=0xff
            ],
            0..8
        ),
    ];
    let tail = prop_oneof![Just(Vec::new()), Just(b" ".to_vec()), Just(b"\t".to_vec())];
    prop_oneof![
        (scheme, gap, token, tail).prop_map(|(s, g, t, e)| [s, g, t, e].concat()),
        prop::collection::vec(any::<u8>(), 0..24),
    ]
}

fn authorization(values: &[Vec<u8>]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            h.append(AUTHORIZATION, v);
        }
    }
    h
}

/// `Bearer` (any case), one space, then a non-empty token without
/// whitespace: the one form RFC 6750 §2.1 allows.
fn exact_bearer_form(v: &[u8]) -> Option<&[u8]> {
    let rest = v.get(..7)?;
    (rest[..6].eq_ignore_ascii_case(b"bearer") && rest[6] == b' ')
        .then(|| &v[7..])
        .filter(|t| !t.is_empty() && !t.iter().any(|b| *b == b' ' || *b == b'\t'))
}

proptest! {
    #![proptest_config(cases(10000))]

    #[test]
    fn bearer_parser_never_panics_and_refuses_repeats(
        values in prop::collection::vec(authorization_value(), 0..3)
    ) {
        let h = authorization(&values);
        let got = bearer_token(&h);
        if h.get_all(AUTHORIZATION).iter().count() > 1 {
            prop_assert_eq!(got, Err(BearerError::Repeated));
        }
    }

    #[test]
    fn exact_bearer_credentials_are_accepted(
        scheme in respell("bearer"),
        token in "[A-Za-z0-9._~+/-]{1,40}=*",
    ) {
        let h = authorization(&[format!("{scheme} {token}").into_bytes()]);
        prop_assert_eq!(bearer_token(&h), Ok(Some(token.as_str())));
    }
}

proptest! {
    #![proptest_config(cases(10000))]

    // RFC 6750 §3.1: a malformed Bearer credential is refused, never passed on.
    #[test]
    fn a_returned_token_is_exactly_what_followed_bearer_and_one_space(v in authorization_value()) {
        let h = authorization(std::slice::from_ref(&v));
        if let Ok(Some(token)) = bearer_token(&h) {
            prop_assert_eq!(
                exact_bearer_form(&v),
                Some(token.as_bytes()),
                "{:?} gave {:?}",
                String::from_utf8_lossy(&v),
                token
            );
        }
    }

    // RFC 6750 §3.1: a malformed Bearer credential is refused, never passed on.
    #[test]
    fn a_bearer_value_not_in_the_exact_form_is_an_error(v in authorization_value()) {
        let h = authorization(std::slice::from_ref(&v));
        let starts_bearer = v.len() >= 6 && v[..6].eq_ignore_ascii_case(b"bearer");
        if h.contains_key(AUTHORIZATION) && starts_bearer && exact_bearer_form(&v).is_none() {
            let got = bearer_token(&h);
            prop_assert!(got.is_err(), "{:?} gave {:?}", String::from_utf8_lossy(&v), got);
        }
    }
}

// ---------------------------------------------------------------------
// Claim paths and injection
// ---------------------------------------------------------------------

const KEYS: [&str; 8] = [
    "sub",
    "app_metadata",
    "company_id",
    "a.b",
    "~",
    "/",
    "",
    "0",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::String),
        "[ -~\\t\\n\u{80}-\u{10ffff}]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..5).prop_map(
                |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

fn claim_path_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
                Just(".".to_owned()),
                Just("/".to_owned()),
                Just("~0".to_owned()),
                Just("~1".to_owned()),
                Just("~".to_owned()),
                Just("~2".to_owned()),
            ],
            0..6
        )
        .prop_map(|v| v.concat()),
        "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(cases(4000))]

    #[test]
    fn claim_paths_and_injection_never_panic(
        claims in json_value(),
        paths in prop::collection::vec((claim_path_text(), any::<bool>(), any::<bool>()), 1..4),
    ) {
        let inject: Vec<Injection> = paths
            .iter()
            .enumerate()
            .filter_map(|(i, (text, required, raw))| {
                // Through the config's parser, or built directly (a JSON
                // Pointer the parser would refuse, a dotted path with
                // empty keys).
                let claim = if *raw {
                    if text.starts_with('/') {
                        ClaimPath::Pointer(text.clone())
                    } else {
                        ClaimPath::Dotted(text.split('.').map(str::to_owned).collect())
                    }
                } else {
                    config::parse_claim_path(text).ok()?
                };
                let _ = claim.to_string();
                Some(Injection {
                    header: HeaderName::from_bytes(format!("x-claim-{i}").as_bytes()).unwrap(),
                    claim,
                    required: *required,
                })
            })
            .collect();
        if let Ok(headers) = injected_headers(&claims, &inject) {
            prop_assert!(headers.len() <= inject.len());
            for (name, value) in &headers {
                let inj = inject.iter().find(|i| i.header == name).unwrap();
                let text = match inj.claim.lookup(&claims) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return Err(TestCaseError::fail(format!("{name} injected from nothing"))),
                };
                prop_assert_eq!(value.as_bytes(), text.as_bytes());
                prop_assert!(value.as_bytes().iter().all(|b| (0x20..=0x7e).contains(b)));
            }
        }
    }
}

// ---------------------------------------------------------------------
// `${VAR}` expansion
// ---------------------------------------------------------------------

fn env_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("$"),
            Just("{"),
            Just("}"),
            Just(":-"),
            Just(":"),
            Just("-"),
            Just("SET"),
            Just("EMPTY"),
            Just("UNSET"),
            Just("_"),
            Just("1"),
            Just("é"),
            Just(" "),
        ],
        0..16,
    )
    .prop_map(|v| v.concat())
}

fn lookup(name: &str) -> Option<String> {
    match name {
        "SET" => Some("value with ${SET} and $${ inside".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

proptest! {
    #![proptest_config(cases(10000))]

    #[test]
    fn expansion_never_panics_and_errors_point_at_a_dollar(s in prop_oneof![env_text(), "\\PC*"]) {
        if let Err(e) = expand(&s, &lookup) {
            prop_assert_eq!(s.as_bytes().get(e.offset()), Some(&b'$'), "{}", e);
        }
    }

    #[test]
    fn text_without_dollar_brace_is_unchanged(s in prop_oneof![env_text(), "\\PC*"]) {
        prop_assume!(!s.contains("${"));
        prop_assert_eq!(expand(&s, &lookup), Ok(s.clone()));
    }

    #[test]
    fn dollar_dollar_brace_is_a_literal_dollar_brace(s in prop_oneof![env_text(), "\\PC*"]) {
        let escaped = s.replace("${", "$${");
        prop_assert_eq!(expand(&escaped, &lookup), Ok(s.clone()));
    }

    #[test]
    fn expanded_values_are_never_expanded_again(s in env_text()) {
        let value = s.clone();
        let got = expand("<${V}>", &move |n: &str| (n == "V").then(|| value.clone()));
        prop_assert_eq!(got, Ok(format!("<{s}>")));
    }
}

// ---------------------------------------------------------------------
// The config loader
// ---------------------------------------------------------------------

const FILE: &str = "gateway.toml";

fn config_env(name: &str) -> Option<String> {
    match name {
        "GATEWAY_JWT_SECRET" => Some("property-test-secret-0123456789abcdef".into()),
        "GATEWAY_INGEST_SERVICE_URL" => Some("http://127.0.0.1:9".into()),
        _ => None,
    }
}

/// Loads `src` and checks its diagnostics.
fn positions_within(src: &str) -> Result<(), TestCaseError> {
    // An empty directory, so a relative `secret_file` or `ca_file` names
    // nothing of ours; one for all cases.
    static DIR: std::sync::LazyLock<tempfile::TempDir> =
        std::sync::LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
    let report = config::load_str(
        src,
        FILE,
        PathBuf::from(DIR.path()),
        &LoadOptions::default(),
        &config_env,
    );
    check_positions(&report, src)
}

/// Every diagnostic about `src` sits on one of its lines, at a column
/// no further than one past that line's last character, and says
/// something.
fn check_positions(report: &config::LoadReport, src: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(report.config.is_some(), !report.has_errors());
    let lines: Vec<&str> = src.split('\n').collect();
    for d in &report.diagnostics {
        prop_assert!(d.line >= 1 && d.column >= 1, "{}", d);
        if d.file != FILE {
            continue; // about a file the config names
        }
        let Some(line) = lines.get(d.line - 1) else {
            return Err(TestCaseError::fail(format!("{d}: past the last line")));
        };
        prop_assert!(
            d.column <= line.chars().count() + 1,
            "{}: past the line's end",
            d
        );
        prop_assert!(!d.message.is_empty(), "{}", d);
    }
    Ok(())
}

/// One random edit of config text.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index, usize),
    Duplicate(Index, usize),
    Insert(Index, char),
    SwapValues(Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![
        prop::sample::select(
            "[]{}=\"',.#\n $:-_0123456789aezZ\\\t"
                .chars()
                .collect::<Vec<_>>()
        ),
        any::<char>(),
    ];
    prop_oneof![
        (any::<Index>(), 1..20usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), 1..40usize).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        (any::<Index>(), ch).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapValues(a, b)),
    ]
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte ranges of the values after `key = ` on each line.
fn value_spans(s: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    for line in s.split_inclusive('\n') {
        if let Some(eq) = line.find(" = ") {
            let body = line[eq + 3..].trim_end_matches('\n');
            let end = body.find("  #").unwrap_or(body.len());
            spans.push(start + eq + 3..start + eq + 3 + end);
        }
        start += line.len();
    }
    spans
}

fn apply(s: &mut String, e: &Edit) {
    match e {
        Edit::Delete(i, n) => {
            let a = floor_boundary(s, i.index(s.len() + 1));
            let b = floor_boundary(s, a + n);
            s.replace_range(a..b, "");
        }
        Edit::Duplicate(i, n) => {
            let a = floor_boundary(s, i.index(s.len() + 1));
            let b = floor_boundary(s, a + n);
            let piece = s[a..b].to_owned();
            s.insert_str(b, &piece);
        }
        Edit::Insert(i, c) => {
            let a = floor_boundary(s, i.index(s.len() + 1));
            s.insert(a, *c);
        }
        Edit::SwapValues(a, b) => {
            let spans = value_spans(s);
            if spans.len() < 2 {
                return;
            }
            let (x, y) = (a.get(&spans).clone(), b.get(&spans).clone());
            let (x, y) = if x.start <= y.start { (x, y) } else { (y, x) };
            if x == y || x.end > y.start {
                return;
            }
            let (vx, vy) = (s[x.clone()].to_owned(), s[y.clone()].to_owned());
            s.replace_range(y, &vx);
            s.replace_range(x, &vy);
        }
    }
}

#[test]
fn the_shipped_config_loads_cleanly_under_the_property_environment() {
    // Otherwise the mutation property would only ever see broken configs.
    let dir = tempfile::tempdir().unwrap();
    let report = config::load_str(
        config::BUILTIN,
        FILE,
        dir.path().into(),
        &LoadOptions::default(),
        &config_env,
    );
    let errors: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert!(report.config.is_some(), "{errors:#?}");
    assert!(value_spans(config::BUILTIN).len() > 10);
}

proptest! {
    #![proptest_config(cases(5000))]

    #[test]
    fn mutated_shipped_config_never_panics_and_diagnostics_point_into_it(
        edits in prop::collection::vec(edit(), 1..6)
    ) {
        let mut src = config::BUILTIN.to_owned();
        for e in &edits {
            apply(&mut src, e);
        }
        positions_within(&src)?;
    }

    #[test]
    fn arbitrary_text_never_panics_the_loader(src in prop_oneof![
        "\\PC{0,200}",
        "[\\[\\]{}=\"'.,# \n$a-z0-9_-]{0,200}",
    ]) {
        positions_within(&src)?;
    }
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn arbitrary_bytes_from_a_file_never_panic_the_loader(
        bytes in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, &bytes).unwrap();
        let report = config::load_path(&path, &LoadOptions::default());
        let name = path.display().to_string();
        // Not UTF-8: one file-level diagnostic at 1:1, which is within
        // any input.
        let text = String::from_utf8(bytes).unwrap_or_default();
        for d in &report.diagnostics {
            prop_assert_eq!(&d.file, &name);
        }
        let renamed = config::LoadReport {
            config: report.config,
            diagnostics: report
                .diagnostics
                .into_iter()
                .map(|d| config::Diagnostic { file: FILE.into(), ..d })
                .collect(),
            hash: report.hash,
        };
        check_positions(&renamed, &text)?;
    }
}
