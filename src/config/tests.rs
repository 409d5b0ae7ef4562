//! Every `gateway.toml` rule, valid and invalid: each fixture goes through
//! `load_str` with a fixed environment (the process environment is never
//! read or changed), and every problem is expected at its exact
//! `line:col` with a telling part of its message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// The shortest HMAC secret accepted: 32 bytes.
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// The environment fixtures see unless they say otherwise.
const ENV: &[(&str, &str)] = &[
    ("GATEWAY_JWT_SECRET", SECRET),
    ("EMPTY", ""),
    ("PORT", "9000"),
];

/// Relative paths in fixtures resolve against the crate root, so
/// `"Cargo.toml"` is a file that exists.
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_full(src: &str, vars: &[(&str, &str)], dir: &Path, opts: &LoadOptions) -> LoadReport {
    let lookup = |k: &str| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    };
    load_str(src, "g.toml", dir.to_path_buf(), opts, &lookup)
}

fn load_env(src: &str, vars: &[(&str, &str)]) -> LoadReport {
    load_full(src, vars, &crate_dir(), &LoadOptions::default())
}

fn load(src: &str) -> LoadReport {
    load_env(src, ENV)
}

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;

/// One expected diagnostic: severity, line, column, a substring of the
/// message.
type Want = (Severity, usize, usize, &'static str);

/// Asserts the report holds exactly `want` (infos aside: they are
/// asserted where they are the point), in order, and a config exactly
/// when no error is expected.
#[track_caller]
fn expect(report: &LoadReport, want: &[Want]) {
    let shown: Vec<&Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Info)
        .collect();
    let got: Vec<String> = shown.iter().map(|d| d.to_string()).collect();
    let same = shown.len() == want.len()
        && shown.iter().zip(want).all(|(d, (sev, line, col, msg))| {
            d.severity == *sev && d.line == *line && d.column == *col && d.message.contains(msg)
        });
    assert!(same, "expected {want:#?}\ngot:\n{}", got.join("\n"));
    assert!(report.diagnostics.iter().all(|d| d.file == "g.toml"));
    let errors = want.iter().any(|w| w.0 == E);
    assert_eq!(
        report.config.is_some(),
        !errors,
        "a config comes back exactly when there is no error; got:\n{}",
        got.join("\n")
    );
}

/// Loads `src` with the default environment and checks its diagnostics.
#[track_caller]
fn check(src: &str, want: &[Want]) -> LoadReport {
    let report = load(src);
    expect(&report, want);
    report
}

/// Loads `src`, expecting no diagnostic at all, and returns the config.
#[track_caller]
fn valid(src: &str) -> Config {
    check(src, &[]).config.expect("valid")
}

/// A one-route config (auth = "none", so no key is needed) whose upstream
/// is `upstream`; the value's opening quote is at 5:12.
fn with_upstream(upstream: &str) -> String {
    format!(
        "[[routes]]\nname = \"r\"\nprefix = \"/r\"\nauth = \"none\"\nupstream = \"{upstream}\"\n"
    )
}

/// `[auth]` with the test secret, then one required route `/a`; the
/// route's inject table (when `inject` is not empty) starts at line 7, its
/// entries at line 8.
fn with_inject(inject: &str) -> String {
    format!(
        "[auth]\nsecret = \"${{GATEWAY_JWT_SECRET}}\"\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\n[routes.inject]\n{inject}"
    )
}

// ---- valid configs and defaults --------------------------------------

#[test]
fn an_empty_file_is_a_valid_config_with_the_documented_defaults() {
    let cfg = valid("");
    assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(cfg.server.connect_timeout, Duration::from_secs(10));
    assert_eq!(cfg.server.request_timeout, Duration::from_secs(60));
    assert_eq!(cfg.server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(cfg.server.max_body, None);
    assert!(cfg.admin.is_none());
    assert_eq!(cfg.auth.audience, ["authenticated"]);
    assert_eq!(cfg.auth.leeway, Duration::ZERO);
    assert_eq!(cfg.auth.required_claims, ["sub", "aud", "exp"]);
    assert!(cfg.auth.hmac.is_none());
    assert!(cfg.cors.allow_credentials);
    assert_eq!(cfg.cors.max_age, Duration::from_secs(600));
    assert!(cfg.routes.is_empty());
}

/// Every default the key table states as a TOML value (what the man page,
/// the JSON Schema and an editor's hover show) is the loader's: the key
/// set to it gives the same config as the key left out.
#[test]
fn the_key_tables_defaults_are_the_loaders_defaults() {
    let with = |section: &str, line: &str| {
        let mut auth = "[auth]\nsecret = \"${GATEWAY_JWT_SECRET}\"\n".to_owned();
        let mut route =
            "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:1\"\n"
                .to_owned();
        let mut other = String::new();
        match section {
            "auth" => auth.push_str(line),
            "routes" => route.push_str(line),
            "" => {}
            s => other = format!("[{s}]\n{line}"),
        }
        format!("{other}{auth}{route}")
    };
    let plain = load(&with("", ""))
        .config
        .expect("the base config is valid");
    let mut checked = 0;
    for k in KEYS {
        let Some((section, name)) = k.path.rsplit_once('.') else {
            continue; // a section
        };
        if section.contains('*')
            || toml::from_str::<toml::Table>(&format!("v = {}", k.default)).is_err()
        {
            continue; // "required", "none", prose
        }
        let src = with(section, &format!("{name} = {}\n", k.default));
        let report = load(&src);
        assert_eq!(
            report.config.as_ref(),
            Some(&plain),
            "{} = {} is not the default; {:?}",
            k.path,
            k.default,
            report.diagnostics
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} defaults checked");
}

#[test]
fn a_config_using_most_keys_loads_with_its_values() {
    let cfg = valid(
        r#"[server]
listen = "127.0.0.1:${PORT}"
connect_timeout = "250ms"
request_timeout = "2m"
shutdown_grace = "1m30s"
max_body = "10MiB"
tls = { cert = "Cargo.toml", key = "Cargo.toml" }
[admin]
listen = "127.0.0.1:9901"
[auth]
audience = ["authenticated", "service"]
issuer = "https://p.supabase.co/auth/v1"
algorithms = ["HS256", "ES256"]
secret = "${GATEWAY_JWT_SECRET}"
jwks_url = "https://p.supabase.co/auth/v1/.well-known/jwks.json"
leeway = "30s"
required_claims = ["sub", "exp"]
[cors]
allowed_origins = ["http://localhost:3000", "https://*.vercel.app"]
max_age = "10m"
[[routes]]
name = "ingest"
prefix = "/api/v1/ingest"
upstream = "https://ingest.example/base/"
auth = "optional"
strip_prefix = true
methods = ["GET", "POST"]
timeout = "120s"
http2 = true
ca_file = "Cargo.toml"
[routes.inject]
"X-User-ID" = "sub"
"X-Company-ID" = { claim = "app_metadata.company_id", required = true }
[[routes]]
name = "root"
prefix = "/"
upstream = "http://catch-all:80"
auth = "none"
cors_origins = ["https://app.example.com:8443"]
"#,
    );
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(cfg.server.connect_timeout, Duration::from_millis(250));
    assert_eq!(cfg.server.request_timeout, Duration::from_secs(120));
    assert_eq!(cfg.server.shutdown_grace, Duration::from_secs(90));
    assert_eq!(cfg.server.max_body, Some(10 << 20));
    assert_eq!(
        cfg.server.tls.as_ref().map(|t| t.cert.clone()),
        Some(crate_dir().join("Cargo.toml"))
    );
    assert_eq!(
        cfg.admin.map(|a| a.listen.to_string()).as_deref(),
        Some("127.0.0.1:9901")
    );
    assert_eq!(cfg.auth.audience, ["authenticated", "service"]);
    assert_eq!(
        cfg.auth.issuer.as_deref(),
        Some("https://p.supabase.co/auth/v1")
    );
    assert_eq!(
        cfg.auth.algorithms,
        [
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::Algorithm::ES256
        ]
    );
    let hmac = cfg.auth.hmac.as_ref().expect("hmac");
    assert_eq!(hmac.secret.expose(), SECRET.as_bytes());
    assert_eq!(hmac.source, SecretSource::Inline);
    assert!(cfg.auth.jwks_url.is_some());
    assert_eq!(cfg.auth.leeway, Duration::from_secs(30));
    assert_eq!(cfg.auth.required_claims, ["sub", "exp"]);
    assert_eq!(
        cfg.cors.allowed_origins,
        [
            OriginRule::Exact("http://localhost:3000".into()),
            OriginRule::Wildcard {
                scheme: "https".into(),
                suffix: "vercel.app".into(),
                port: None
            }
        ]
    );
    let ingest = &cfg.routes[0];
    assert_eq!(ingest.auth, AuthMode::Optional);
    assert!(ingest.strip_prefix && ingest.http2);
    assert_eq!(
        ingest.methods,
        Some(vec![http::Method::GET, http::Method::POST])
    );
    assert_eq!(ingest.timeout, Some(Duration::from_secs(120)));
    let up = ingest.upstream.as_ref().expect("upstream");
    assert!(up.https);
    assert_eq!(up.base_path, "/base");
    assert_eq!(ingest.inject.len(), 2);
    assert_eq!(ingest.inject[1].header.as_str(), "x-company-id");
    assert_eq!(
        ingest.inject[1].claim,
        ClaimPath::Dotted(vec!["app_metadata".into(), "company_id".into()])
    );
    assert!(ingest.inject[1].required && !ingest.inject[0].required);
    let root = &cfg.routes[1];
    assert_eq!(root.prefix, "/");
    assert_eq!(
        root.cors.allowed_origins,
        [OriginRule::Exact("https://app.example.com:8443".into())]
    );
    assert_eq!(cfg.injected_headers.len(), 2);
}

#[test]
fn the_hash_tells_changed_files_apart() {
    assert_eq!(load("").hash, load("").hash);
    assert_ne!(load("[server]\n").hash, load("[cors]\n").hash);
}

// ---- unknown keys ------------------------------------------------------

#[test]
fn unknown_top_level_key_lists_the_known_ones() {
    check(
        "listn = \"0.0.0.0:1\"\n",
        &[(
            E,
            1,
            1,
            "unknown key `listn` at the top level; known keys: server, admin, auth, cors, routes",
        )],
    );
}

#[test]
fn unknown_top_level_table_suggests_the_closest() {
    check(
        "[route]\nname = \"a\"\n",
        &[(
            E,
            1,
            2,
            "unknown key `route` at the top level; did you mean `routes`?",
        )],
    );
}

#[test]
fn unknown_server_key_suggests_listen() {
    check(
        "[server]\nlistne = \"0.0.0.0:8080\"\n",
        &[(
            E,
            2,
            1,
            "unknown key `listne` in server; did you mean `listen`?",
        )],
    );
}

#[test]
fn unknown_tls_key_suggests_key() {
    check(
        "[server]\ntls = { cert = \"Cargo.toml\", key = \"Cargo.toml\", kye = \"x\" }\n",
        &[(
            E,
            2,
            50,
            "unknown key `kye` in server.tls; did you mean `key`?",
        )],
    );
}

#[test]
fn unknown_admin_key_suggests_listen() {
    check(
        "[admin]\nlisten = \"127.0.0.1:9901\"\nlsten = \"x\"\n",
        &[(
            E,
            3,
            1,
            "unknown key `lsten` in admin; did you mean `listen`?",
        )],
    );
}

#[test]
fn unknown_auth_key_suggests_secret_file() {
    check(
        "[auth]\nsecret_fle = \"/x\"\n",
        &[(
            E,
            2,
            1,
            "unknown key `secret_fle` in auth; did you mean `secret_file`?",
        )],
    );
}

#[test]
fn unknown_cors_key_suggests_allowed_origins() {
    check(
        "[cors]\nallowed_origin = [\"http://a.example\"]\n",
        &[(E, 2, 1, "in cors; did you mean `allowed_origins`?")],
    );
}

#[test]
fn unknown_route_key_with_a_dash_suggests_the_underscore() {
    check(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\nstrip-prefix = true\n",
        &[(
            E,
            6,
            1,
            "unknown key `strip-prefix` in [[routes]]; did you mean `strip_prefix`?",
        )],
    );
}

#[test]
fn unknown_inject_entry_key_suggests_required() {
    check(
        &with_inject("\"X-A\" = { claim = \"sub\", requird = true }\n"),
        &[(
            E,
            8,
            26,
            "unknown key `requird` in an inject entry; did you mean `required`?",
        )],
    );
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    check(
        "[server]\nlistne = \"x\"\nconect_timeout = \"1s\"\n[auth]\nsecert = \"x\"\n",
        &[
            (E, 2, 1, "`listne`"),
            (E, 3, 1, "did you mean `connect_timeout`?"),
            (E, 5, 1, "did you mean `secret`?"),
        ],
    );
}

// ---- TOML syntax and types ---------------------------------------------

#[test]
fn toml_syntax_error_points_at_the_problem() {
    check(
        "[server]\nlisten = \"0.0.0.0:8080\nconnect_timeout = \"10s\"\n",
        &[(
            E,
            2,
            23,
            "invalid TOML: invalid basic string, expected `\"`",
        )],
    );
}

#[test]
fn several_toml_syntax_errors_are_reported_together() {
    check(
        "[server]\nconnect_timeout = 10s\n[cors]\nmax_age = = \"1m\"\n",
        &[
            (E, 2, 19, "invalid TOML: string values must be quoted"),
            (E, 4, 11, "invalid TOML: extra `=`"),
            (E, 4, 13, "invalid TOML"),
        ],
    );
}

#[test]
fn a_section_of_the_wrong_type_names_what_was_expected() {
    check(
        "auth = 5\n",
        &[(
            E,
            1,
            8,
            "auth: expected a table such as [auth] (found a number)",
        )],
    );
}

#[test]
fn each_default_used_is_an_info_naming_the_variable_once() {
    let report = load_env(
        "[server]\nrequest_timeout = \"${T:-5s}\"\nconnect_timeout = \"${T:-5s}\"\n",
        &[],
    );
    let infos: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Info)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        infos,
        ["g.toml:3:19: info: T is unset or empty: its ${T:-…} default is used"]
    );
}

#[test]
fn a_value_of_the_wrong_type_is_reported_at_the_value() {
    check(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = 5\n",
        &[(
            E,
            5,
            8,
            "auth: expected a string such as auth = \"required\" (found a number)",
        )],
    );
}

#[test]
fn audience_of_the_wrong_type_says_what_is_expected() {
    check(
        "[auth]\naudience = 5\n",
        &[(E, 2, 12, "expected a string or a list of strings")],
    );
}

#[test]
fn an_inject_entry_without_a_claim_says_what_is_expected() {
    check(
        &with_inject("\"X-A\" = { required = true }\n"),
        &[(E, 8, 9, "expected a claim path")],
    );
}

// ---- ${VAR} expansion -------------------------------------------------------

#[test]
fn env_var_that_is_set_is_substituted() {
    let cfg = valid("[server]\nlisten = \"127.0.0.1:${PORT}\"\n");
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:9000");
}

#[test]
fn unset_env_var_is_an_error_naming_it_at_its_dollar() {
    check(
        &with_upstream("http://${UPSTREAM_HOST}:80"),
        &[(
            E,
            5,
            20,
            "environment variable UPSTREAM_HOST is not set (set it, or give a default: ${UPSTREAM_HOST:-value})",
        )],
    );
}

#[test]
fn env_default_applies_when_unset_or_empty() {
    for var in ["UNSET", "EMPTY"] {
        let cfg = valid(&with_upstream(&format!("${{{var}:-http://fallback:80}}")));
        assert_eq!(
            cfg.routes[0].upstream.as_ref().unwrap().url,
            "http://fallback:80"
        );
    }
}

#[test]
fn set_var_wins_over_the_default() {
    let cfg = valid("[server]\nlisten = \"0.0.0.0:${PORT:-8080}\"\n");
    assert_eq!(cfg.server.listen.port(), 9000);
}

#[test]
fn empty_default_and_empty_var_both_expand_to_nothing() {
    for value in ["${UNSET:-}", "${EMPTY}"] {
        let cfg = check(
            &with_upstream(value),
            &[(
                W,
                5,
                12,
                "upstream is empty: this route answers 501 Not Implemented",
            )],
        )
        .config
        .unwrap();
        assert!(cfg.routes[0].upstream.is_none());
    }
}

#[test]
fn double_dollar_is_a_literal_and_env_values_never_change_the_structure() {
    let cfg = valid(
        "[auth]\nissuer = \"$${x}\"\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\n",
    );
    assert_eq!(cfg.auth.issuer.as_deref(), Some("${x}"));
    let report = load_env(
        "[auth]\nissuer = \"${NAME}\"\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\n",
        &[("NAME", "x\"\nauth = \"required")],
    );
    expect(&report, &[]);
    let cfg = report.config.unwrap();
    assert_eq!(cfg.auth.issuer.as_deref(), Some("x\"\nauth = \"required"));
    assert_eq!(cfg.routes[0].auth, AuthMode::None);
}

#[test]
fn unterminated_expansion_is_a_syntax_error_with_the_fix() {
    check(
        "[server]\nlisten = \"${PORT\"\n",
        &[(
            E,
            2,
            11,
            "unterminated ${ (write ${NAME} or ${NAME:-default}",
        )],
    );
}

// ---- durations and sizes ------------------------------------------------

#[test]
fn durations_in_ms_s_and_m() {
    let cfg = valid(
        "[server]\nconnect_timeout = \"250ms\"\nrequest_timeout = \"10s\"\nshutdown_grace = \"2m\"\n",
    );
    assert_eq!(cfg.server.connect_timeout, Duration::from_millis(250));
    assert_eq!(cfg.server.request_timeout, Duration::from_secs(10));
    assert_eq!(cfg.server.shutdown_grace, Duration::from_secs(120));
}

#[test]
fn bad_durations_say_what_a_duration_looks_like() {
    check(
        "[server]\nrequest_timeout = \"ten seconds\"\nconnect_timeout = \"0s\"\n[cors]\nmax_age = \"10\"\n",
        &[
            (
                E,
                2,
                19,
                "request_timeout: invalid duration \"ten seconds\" (expected a number and a unit, e.g. \"10s\"",
            ),
            (E, 3, 19, "connect_timeout must be more than zero"),
            (E, 5, 11, "max_age: duration \"10\" has no unit"),
        ],
    );
}

#[test]
fn route_timeout_is_checked_too() {
    check(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\ntimeout = \"5 parsecs\"\n",
        &[(E, 6, 11, "timeout: unknown unit \" parsecs\"")],
    );
}

#[test]
fn a_long_leeway_is_a_warning_at_the_leeway() {
    check(
        "[auth]\naudience = \"authenticated\"\nleeway = \"1h\"\n",
        &[(W, 3, 10, "leeway is over 5 minutes")],
    );
}

#[test]
fn sizes() {
    assert_eq!(
        valid("[server]\nmax_body = \"10MiB\"\n").server.max_body,
        Some(10 * 1024 * 1024)
    );
    check(
        "[server]\nmax_body = \"10 parsecs\"\n",
        &[(
            E,
            2,
            12,
            "max_body: unknown unit \"parsecs\" in size \"10 parsecs\" (expected a number and a unit, e.g. \"512KiB\", \"10MiB\"",
        )],
    );
}

// ---- socket addresses ---------------------------------------------------

#[test]
fn listen_addresses_get_a_hint_for_common_shorthands() {
    check(
        "[server]\nlisten = \":8080\"\n[admin]\nlisten = \"localhost:9901\"\n",
        &[
            (
                E,
                2,
                10,
                "listen: \":8080\" is not a socket address; to listen on every interface write \"0.0.0.0:8080\"",
            ),
            (
                E,
                4,
                10,
                "admin.listen: \"localhost:9901\" is not a socket address; write \"127.0.0.1:9901\"",
            ),
        ],
    );
    check(
        "[server]\nlisten = \"eight thousand\"\n",
        &[(E, 2, 10, "expected ip:port, e.g. \"0.0.0.0:8080\"")],
    );
}

#[test]
fn ipv6_listen_address_is_accepted() {
    assert_eq!(
        valid("[server]\nlisten = \"[::1]:8080\"\n")
            .server
            .listen
            .to_string(),
        "[::1]:8080"
    );
}

#[test]
fn admin_on_the_server_port_is_refused_at_the_admin_listen() {
    check(
        "[server]\nlisten = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"\n",
        &[(
            E,
            4,
            10,
            "[admin].listen and [server].listen are both 127.0.0.1:8080; give the admin listener its own port",
        )],
    );
}

#[test]
fn admin_on_every_interface_is_a_warning() {
    check(
        "[admin]\nlisten = \"0.0.0.0:9901\"\n",
        &[(W, 2, 10, "reachable from every interface")],
    );
}

#[test]
fn admin_without_listen_says_what_to_add() {
    check(
        "[admin]\n",
        &[(
            E,
            1,
            1,
            "[admin] needs listen, e.g. listen = \"127.0.0.1:9901\"",
        )],
    );
}

// ---- upstream URLs ------------------------------------------------------

#[test]
fn upstream_urls() {
    for ok in [
        "http://svc.ns.svc.cluster.local:80",
        "https://secure.example/base/",
        "http://127.0.0.1:9000",
        "http://[::1]:9000/v1",
    ] {
        let cfg = valid(&with_upstream(ok));
        assert_eq!(cfg.routes[0].upstream.as_ref().unwrap().url, ok);
    }
    let bad: &[(&str, &str)] = &[
        ("svc:80", "has no scheme; write \"http://svc:80\""),
        (
            "localhost:8080",
            "has no scheme; write \"http://localhost:8080\"",
        ),
        (
            "ftp://files.example",
            "scheme \"ftp\" is not supported; use http:// or https://",
        ),
        ("http://svc:80/#top", "has a fragment"),
        ("http://svc:80/?a=1", "has a query string"),
        (
            "http://user:pw@svc:80",
            "credentials in the URL are not supported",
        ),
        ("http://", "upstream: \"http://\""),
        ("http:///path", "upstream: \"http:///path\""),
    ];
    for (url, msg) in bad {
        check(&with_upstream(url), &[(E, 5, 12, msg)]);
    }
}

#[test]
fn empty_upstream_is_a_warning_not_an_error() {
    check(
        &with_upstream(""),
        &[(W, 5, 12, "upstream is empty: this route answers 501")],
    );
}

// ---- claim paths and header names -------------------------------------------

#[test]
fn claim_paths_dotted_and_json_pointer() {
    let cfg = valid(&with_inject(
        "\"X-A\" = \"sub\"\n\"X-B\" = \"app_metadata.company_id\"\n\"X-C\" = \"/https:~1~1example.com~1roles\"\n",
    ));
    let claims: Vec<&ClaimPath> = cfg.routes[0].inject.iter().map(|i| &i.claim).collect();
    assert_eq!(
        claims,
        [
            &ClaimPath::Dotted(vec!["sub".into()]),
            &ClaimPath::Dotted(vec!["app_metadata".into(), "company_id".into()]),
            &ClaimPath::Pointer("/https:~1~1example.com~1roles".into()),
        ]
    );
}

#[test]
fn bad_claim_paths() {
    check(
        &with_inject(
            "\"X-A\" = { claim = \"/a~2b\", required = true }\n\"X-B\" = \"a..b\"\n\"X-C\" = \"\"\n\"X-D\" = \"https://example.com.roles\"\n",
        ),
        &[
            (
                E,
                8,
                9,
                "JSON Pointer \"/a~2b\": \"~\" must be followed by 0 or 1",
            ),
            (
                E,
                9,
                9,
                "claim path \"a..b\" has an empty segment; for a claim whose name holds dots use a JSON Pointer",
            ),
            (E, 10, 9, "the claim path is empty"),
        ],
    );
}

#[test]
fn injected_header_names() {
    check(
        &with_inject(
            "\"X-Ok\" = \"sub\"\n\"Bad Header\" = \"sub\"\n\"Connection\" = \"sub\"\n\"Host\" = \"sub\"\n\"Authorization\" = \"sub\"\n\"X-Request-ID\" = \"sub\"\n\"Transfer-Encoding\" = \"sub\"\n\"x-ok\" = \"email\"\n",
        ),
        &[
            (E, 9, 1, "\"Bad Header\" is not a valid header name"),
            (E, 10, 1, "header \"Connection\" cannot be injected"),
            (E, 11, 1, "header \"Host\" cannot be injected"),
            (E, 12, 1, "header \"Authorization\" cannot be injected"),
            (E, 13, 1, "header \"X-Request-ID\" cannot be injected"),
            (E, 14, 1, "header \"Transfer-Encoding\" cannot be injected"),
            (
                E,
                15,
                1,
                "header \"x-ok\" is injected twice (header names are case-insensitive)",
            ),
        ],
    );
}

#[test]
fn injected_header_names_are_interned_across_loads() {
    let load = || {
        let cfg = valid(&with_inject(
            "\"X-Tenant-Slot\" = \"sub\"\n\"Content-Language\" = \"email\"\n",
        ));
        cfg.routes[0].inject.clone()
    };
    let (first, second) = (load(), load());
    assert_eq!(first[0].header.as_str(), "x-tenant-slot");
    assert_eq!(first[1].header, http::header::CONTENT_LANGUAGE);
    // One text for the name, whichever load parsed it: the second reload
    // reuses it rather than leaking another.
    assert_eq!(
        first[0].header.as_str().as_ptr(),
        second[0].header.as_str().as_ptr()
    );
}

#[test]
fn cors_header_lists_must_hold_header_names() {
    check(
        "[cors]\nallow_headers = [\"X-Fine\", \"Not Fine\"]\n",
        &[(
            E,
            2,
            28,
            "allow_headers: \"Not Fine\" is not a valid header name",
        )],
    );
}

// ---- CORS origins -------------------------------------------------------

#[test]
fn bad_origins_each_get_their_fix() {
    check(
        r#"[cors]
allowed_origins = [
  "http://localhost:3000",
  "https://*.vercel.app",
  "${EMPTY}",
  "https://app.example.com/",
  "https://app.example.com/path",
  "localhost:3000",
  "https://*.com",
  "*",
]
"#,
        &[
            (
                E,
                6,
                3,
                "origin \"https://app.example.com/\" must not end with \"/\"; write \"https://app.example.com\"",
            ),
            (E, 7, 3, "may hold only scheme://host[:port], no path"),
            (
                E,
                8,
                3,
                "origin \"localhost:3000\" needs a scheme, e.g. \"https://localhost:3000\"",
            ),
            (E, 9, 3, "the wildcard must stand for the leftmost labels"),
            (
                E,
                10,
                3,
                "\"*\" cannot be used with allow_credentials = true",
            ),
        ],
    );
}

#[test]
fn star_without_credentials_is_allowed() {
    let cfg = valid("[cors]\nallowed_origins = [\"*\"]\nallow_credentials = false\n");
    assert_eq!(cfg.cors.allowed_origins, [OriginRule::Any]);
}

#[test]
fn empty_origin_entries_are_dropped() {
    let cfg = valid(
        "[cors]\nallowed_origins = [\"http://localhost:3000\", \"${VERCEL_FRONTEND_URL:-}\"]\n",
    );
    assert_eq!(
        cfg.cors.allowed_origins,
        [OriginRule::Exact("http://localhost:3000".into())]
    );
}

#[test]
fn an_empty_origin_list_is_a_warning() {
    check(
        "[cors]\nallowed_origins = []\n",
        &[(
            W,
            2,
            19,
            "allowed_origins is empty: browsers on other origins cannot call the gateway",
        )],
    );
    check(
        "[cors]\nallowed_origins = [\"${EMPTY}\"]\n",
        &[(W, 2, 19, "allowed_origins is empty")],
    );
}

#[test]
fn route_cors_origins_follow_the_same_rules() {
    check(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\ncors_origins = [\"https://x.example/\"]\n",
        &[(
            E,
            6,
            17,
            "cors_origins: origin \"https://x.example/\" must not end with \"/\"",
        )],
    );
}

// ---- routes: names, prefixes, methods, auth words ---------------------------

#[test]
fn route_names_and_prefixes() {
    check(
        r#"[[routes]]
name = "a"
prefix = "/"
upstream = "http://a:1"
auth = "none"
[[routes]]
name = "a"
prefix = "/"
upstream = "http://a:1"
auth = "none"
[[routes]]
name = "c"
prefix = "api"
upstream = "http://a:1"
auth = "none"
[[routes]]
name = "d"
prefix = "/api/"
upstream = "http://a:1"
auth = "none"
[[routes]]
name = " "
prefix = "/a//b"
upstream = "http://a:1"
auth = "none"
"#,
        &[
            (
                E,
                7,
                8,
                "route name \"a\" is used twice; names must be unique",
            ),
            (E, 8, 10, "prefix \"/\" is used by an earlier route"),
            (
                E,
                13,
                10,
                "prefix \"api\" must start with \"/\", e.g. \"/api\"",
            ),
            (
                E,
                18,
                10,
                "prefix \"/api/\" must not end with \"/\"; write \"/api\"",
            ),
            (E, 22, 8, "route name is empty"),
            (E, 23, 10, "has an empty, \".\" or \"..\" segment"),
        ],
    );
}

#[test]
fn a_route_missing_its_required_keys_gets_one_error_each() {
    check(
        "[server]\n[[routes]]\nauth = \"none\"\n",
        &[
            (E, 2, 1, "route has no name"),
            (E, 2, 1, "route has no prefix"),
            (E, 2, 1, "route has no upstream"),
        ],
    );
}

#[test]
fn methods() {
    let cfg = valid(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\nmethods = [\"GET\", \"POST\", \"GET\"]\n",
    );
    assert_eq!(
        cfg.routes[0].methods,
        Some(vec![http::Method::GET, http::Method::POST])
    );
    check(
        r#"[[routes]]
name = "a"
prefix = "/a"
upstream = "http://a:1"
auth = "none"
methods = ["GET", "post", "G ET", ""]
[[routes]]
name = "b"
prefix = "/b"
upstream = "http://a:1"
auth = "none"
methods = []
"#,
        &[
            (
                E,
                6,
                19,
                "method \"post\": methods are case-sensitive; write \"POST\"",
            ),
            (E, 6, 27, "\"G ET\" is not a valid HTTP method"),
            (E, 6, 35, "\"\" is not a valid HTTP method"),
            (
                E,
                12,
                11,
                "methods is empty: the route would refuse everything; remove the key to allow all methods",
            ),
        ],
    );
}

#[test]
fn auth_mode_words() {
    let cfg = valid(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\n",
    );
    assert_eq!(cfg.routes[0].auth, AuthMode::None);
    check(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"Required\"\n",
        &[(
            E,
            5,
            8,
            "auth = \"Required\": expected \"required\", \"optional\" or \"none\"",
        )],
    );
}

// ---- keys and secrets ----------------------------------------------------

#[test]
fn an_authenticated_route_without_any_section_needs_a_key_at_the_route() {
    check(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"optional\"\n",
        &[(
            E,
            5,
            8,
            "routes require authentication but no key is configured: set [auth].secret",
        )],
    );
    // Without `auth`, a route is "required": the error points at the route.
    check(
        "[server]\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\n",
        &[(E, 2, 1, "no key is configured")],
    );
}

#[test]
fn an_auth_section_without_a_key_is_reported_at_the_section() {
    check(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\n[auth]\naudience = \"authenticated\"\n",
        &[(E, 5, 1, "no key is configured")],
    );
}

#[test]
fn a_route_with_another_mistake_still_counts_as_needing_a_key() {
    check(
        "[[routes]]\nname = \"a\"\nprefix = \"a\"\nupstream = \"http://a:1\"\nauth = \"required\"\n",
        &[
            (E, 3, 10, "must start with \"/\""),
            (E, 5, 8, "no key is configured"),
        ],
    );
}

#[test]
fn no_key_is_needed_when_every_route_is_auth_none() {
    valid(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\n",
    );
}

#[test]
fn jwks_url_alone_is_a_key() {
    let cfg = valid(
        "[auth]\njwks_url = \"https://p.supabase.co/auth/v1/.well-known/jwks.json\"\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\n",
    );
    assert_eq!(
        cfg.auth.algorithms,
        [
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::Algorithm::RS256
        ]
    );
}

#[test]
fn secret_and_secret_file_together_are_refused() {
    check(
        "[auth]\nsecret = \"${GATEWAY_JWT_SECRET}\"\nsecret_file = \"Cargo.toml\"\n",
        &[(E, 3, 15, "set either secret or secret_file, not both")],
    );
}

#[test]
fn a_short_hmac_secret_is_refused_with_its_length() {
    check(
        "[auth]\nsecret = \"too-short\"\n",
        &[(
            E,
            2,
            10,
            "the HMAC secret is 9 bytes; at least 32 are needed",
        )],
    );
    // 31 bytes is one short; 32 is enough.
    check(
        &format!("[auth]\nsecret = \"{}\"\n", &SECRET[1..]),
        &[(E, 2, 10, "is 31 bytes")],
    );
    valid(&format!("[auth]\nsecret = \"{SECRET}\"\n"));
}

#[test]
fn the_old_gateways_placeholder_secret_is_refused() {
    let src = format!("[auth]\nsecret = \"{INSECURE_PLACEHOLDER}\"\n");
    check(
        &src,
        &[(E, 2, 10, "the old gateway's insecure placeholder")],
    );
    // Also when it arrives through the environment.
    let report = load_env(
        "[auth]\nsecret = \"${GATEWAY_JWT_SECRET}\"\n",
        &[("GATEWAY_JWT_SECRET", INSECURE_PLACEHOLDER)],
    );
    expect(&report, &[(E, 2, 10, "insecure placeholder")]);
}

#[test]
fn secret_file_is_read_relative_to_the_config_without_its_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwt"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.path().join("short"), "short\n").unwrap();
    let opts = LoadOptions::default();
    let report = load_full("[auth]\nsecret_file = \"jwt\"\n", &[], dir.path(), &opts);
    expect(&report, &[]);
    let hmac = report.config.unwrap().auth.hmac.unwrap();
    assert_eq!(hmac.secret.expose(), SECRET.as_bytes());
    assert_eq!(hmac.source, SecretSource::File(dir.path().join("jwt")));

    let report = load_full("[auth]\nsecret_file = \"short\"\n", &[], dir.path(), &opts);
    expect(&report, &[(E, 2, 15, "the HMAC secret is 5 bytes")]);
    let report = load_full(
        "[auth]\nsecret_file = \"missing\"\n",
        &[],
        dir.path(),
        &opts,
    );
    expect(&report, &[(E, 2, 15, "secret_file: cannot read")]);
}

#[test]
fn jwks_url_must_be_https_except_on_loopback() {
    for ok in [
        "https://p.supabase.co/auth/v1/.well-known/jwks.json",
        "http://127.0.0.1:9999/jwks",
        "http://localhost:9999/jwks",
        "http://[::1]:9999/jwks",
    ] {
        valid(&format!("[auth]\njwks_url = \"{ok}\"\n"));
    }
    check(
        "[auth]\njwks_url = \"http://auth.example/jwks\"\n",
        &[(
            E,
            2,
            12,
            "jwks_url: \"http://auth.example/jwks\" must use https (plain http is only allowed for loopback hosts)",
        )],
    );
    check(
        "[auth]\njwks_url = \"auth.example/jwks\"\n",
        &[(E, 2, 12, "jwks_url:")],
    );
}

#[test]
fn algorithms() {
    check(
        "[auth]\nsecret = \"${GATEWAY_JWT_SECRET}\"\nalgorithms = [\"HS256\", \"none\", \"NoNe\", \"hs256\", \"XX1\"]\n",
        &[
            (E, 3, 24, "algorithm \"none\" is never accepted"),
            (E, 3, 32, "algorithm \"none\" is never accepted"),
            (
                E,
                3,
                40,
                "algorithm \"hs256\": names are case-sensitive; write \"HS256\"",
            ),
            (E, 3, 49, "unknown algorithm \"XX1\"; supported: HS256"),
        ],
    );
    check(
        "[auth]\nsecret = \"${GATEWAY_JWT_SECRET}\"\nalgorithms = [\"ES256\"]\n",
        &[(
            E,
            3,
            14,
            "algorithms allows asymmetric algorithms but no jwks_url is set",
        )],
    );
    check(
        "[auth]\nsecret = \"${GATEWAY_JWT_SECRET}\"\nalgorithms = []\n",
        &[(
            E,
            3,
            14,
            "algorithms is empty; list at least one, e.g. [\"HS256\"]",
        )],
    );
}

#[test]
fn dev_mode_makes_up_an_ephemeral_secret_with_a_warning() {
    let src = "[auth]\nsecret = \"${GATEWAY_JWT_SECRET}\"\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\n";
    let dev = LoadOptions {
        dev: true,
        ..LoadOptions::default()
    };
    let report = load_full(src, &[], &crate_dir(), &dev);
    expect(
        &report,
        &[(W, 2, 10, "--dev uses an ephemeral random secret")],
    );
    let hmac = report.config.unwrap().auth.hmac.unwrap();
    assert_eq!(hmac.source, SecretSource::Ephemeral);
    assert!(hmac.secret.expose().len() >= MIN_SECRET_LEN);
    // Two runs do not share the secret.
    let again = load_full(src, &[], &crate_dir(), &dev).config.unwrap();
    assert_ne!(
        again.auth.hmac.unwrap().secret.expose(),
        hmac.secret.expose()
    );

    // Without --dev the same file is refused, naming the variable.
    let report = load_full(src, &[], &crate_dir(), &LoadOptions::default());
    expect(&report, &[(E, 2, 11, "GATEWAY_JWT_SECRET is not set")]);

    // --dev never hides a bad secret that is set.
    let report = load_full(src, &[("GATEWAY_JWT_SECRET", "short")], &crate_dir(), &dev);
    expect(&report, &[(E, 2, 10, "5 bytes")]);
}

// ---- warnings ---------------------------------------------------------------

#[test]
fn warnings_do_not_fail_the_config() {
    let report = check(
        r#"[cors]
allowed_origins = []
[[routes]]
name = "auth"
prefix = "/auth"
upstream = ""
auth = "none"
[routes.inject]
"X-User-ID" = "sub"
"#,
        &[
            (W, 2, 19, "allowed_origins is empty"),
            (W, 6, 12, "upstream is empty"),
            (
                W,
                8,
                1,
                "auth = \"none\" never verifies a token, so nothing is injected on this route",
            ),
        ],
    );
    assert!(!report.has_errors());
}

// ---- many mistakes at once ----------------------------------------------------

#[test]
fn a_config_with_many_mistakes_gets_all_of_them_sorted() {
    check(
        r#"[server]
listen = ":8080"
request_timeout = "ten seconds"
[auth]
secret = "short"
algorithms = ["none"]
[cors]
allowed_origins = ["https://app.example.com/"]
[[routes]]
name = "ingest"
prefix = "api/v1/ingest"
upstream = "ingest:80"
methods = ["get"]
[routes.inject]
"Host" = "sub"
"X-Company-ID" = "app_metadata..company_id"
[[routes]]
name = "ingest"
prefix = "/q"
upstream = "http://q:80"
timeot = "5s"
"#,
        &[
            (E, 2, 10, "write \"0.0.0.0:8080\""),
            (E, 3, 19, "e.g. \"10s\""),
            (E, 5, 10, "the HMAC secret is 5 bytes"),
            (E, 6, 15, "\"none\" is never accepted"),
            (E, 8, 20, "must not end with \"/\""),
            (E, 11, 10, "must start with \"/\""),
            (E, 12, 12, "has no scheme; write \"http://ingest:80\""),
            (E, 13, 12, "write \"GET\""),
            (E, 15, 1, "header \"Host\" cannot be injected"),
            (E, 16, 18, "has an empty segment"),
            (E, 18, 8, "route name \"ingest\" is used twice"),
            (
                E,
                21,
                1,
                "unknown key `timeot` in [[routes]]; did you mean `timeout`?",
            ),
        ],
    );
}

// ---- the shipped files ----------------------------------------------------------

const SHIPPED: &str = include_str!("../../gateway.toml");

#[test]
fn shipped_gateway_toml_is_valid_when_the_secret_is_set() {
    let report = load_env(SHIPPED, &[("GATEWAY_JWT_SECRET", SECRET)]);
    // The auth route has no upstream until GATEWAY_AUTH_SERVICE_URL is set.
    expect(
        &report,
        &[(W, 61, 12, "upstream is empty: this route answers 501")],
    );
    let cfg = report.config.unwrap();
    let names: Vec<&str> = cfg.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["ingest", "query", "auth"]);
    assert_eq!(cfg.routes[0].auth, AuthMode::Required);
    assert_eq!(cfg.routes[2].auth, AuthMode::None);
    assert_eq!(
        cfg.routes[0].upstream.as_ref().unwrap().url,
        "http://ingest-api-service.nyro-develop.svc.cluster.local:80"
    );
    let report = load_env(
        SHIPPED,
        &[
            ("GATEWAY_JWT_SECRET", SECRET),
            ("GATEWAY_AUTH_SERVICE_URL", "http://auth:80"),
        ],
    );
    expect(&report, &[]);
}

#[test]
fn shipped_gateway_toml_names_the_unset_secret_and_its_line() {
    let report = load_env(SHIPPED, &[]);
    expect(
        &report,
        &[
            (
                E,
                27,
                11,
                "secret: environment variable GATEWAY_JWT_SECRET is not set",
            ),
            (W, 61, 12, "upstream is empty"),
        ],
    );
}

#[test]
fn example_configs_validate() {
    let dir = crate_dir().join("examples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let report = load_full(
            &src,
            &[("GATEWAY_JWT_SECRET", SECRET)],
            &dir,
            &LoadOptions::default(),
        );
        let errors: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| d.severity == E)
            .map(|d| d.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
}

// ---- connection limits --------------------------------------------------

#[test]
fn connection_limits_have_the_documented_defaults() {
    let cfg = valid("");
    assert_eq!(cfg.server.header_read_timeout, Duration::from_secs(30));
    assert_eq!(cfg.server.max_connections, 10_000);
    assert_eq!(cfg.server.max_upstream_connections, 1024);
    let cfg = valid(
        "[server]\nheader_read_timeout = \"1s\"\nmax_connections = 2\nmax_upstream_connections = 3\n",
    );
    assert_eq!(cfg.server.header_read_timeout, Duration::from_secs(1));
    assert_eq!(cfg.server.max_connections, 2);
    assert_eq!(cfg.server.max_upstream_connections, 3);
}

#[test]
fn connection_limits_must_be_at_least_one() {
    check(
        "[server]\nmax_connections = 0\nmax_upstream_connections = -5\nheader_read_timeout = \"0s\"\n",
        &[
            (
                E,
                2,
                19,
                "max_connections must be a whole number of at least 1, e.g. max_connections = 10000",
            ),
            (
                E,
                3,
                28,
                "max_upstream_connections must be a whole number of at least 1, e.g. max_upstream_connections = 1024",
            ),
            (E, 4, 23, "header_read_timeout must be more than zero"),
        ],
    );
}

// ---- trusted proxies and auth under a weaker parent ----------------------------

#[test]
fn trusted_proxies_default_to_none_and_take_cidrs_and_addresses() {
    assert!(valid("").server.trusted_proxies.is_empty());
    let cfg = valid(
        r#"[server]
trusted_proxies = ["10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"]
"#,
    );
    let got: Vec<String> = cfg
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(got, ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8", "::1/128"]);
}

#[test]
fn a_bad_trusted_proxy_is_an_error_at_its_entry_with_a_fix() {
    check(
        r#"[server]
trusted_proxies = [
  "10.0.0.0/8",
  "10.0.0.1/8",
  "10.0.0.0/33",
  "fd00::/200",
  "localhost",
]
"#,
        &[
            (
                E,
                4,
                3,
                "bits set after its /8 prefix; write \"10.0.0.0/8\"",
            ),
            (E, 5, 3, "\"10.0.0.0/33\" is not a CIDR; expected"),
            (E, 6, 3, "\"fd00::/200\" is not a CIDR"),
            (E, 7, 3, "\"localhost\" is not a CIDR"),
        ],
    );
    check(
        "[server]\ntrusted_proxies = \"10.0.0.0/8\"\n",
        &[(E, 2, 19, "trusted_proxies: expected a list such as")],
    );
}

#[test]
fn a_weaker_parent_route_on_the_same_upstream_is_a_warning_at_the_child() {
    let report = check(
        r#"[auth]
secret = "${GATEWAY_JWT_SECRET}"
[[routes]]
name = "x"
prefix = "/api/v1/x"
upstream = "http://svc:80"
auth = "none"
[[routes]]
name = "ingest"
prefix = "/api/v1/x/ingest"
upstream = "http://SVC:80/base"
[[routes]]
name = "public"
prefix = "/api/v1/x/public"
upstream = "http://svc:80"
auth = "none"
[[routes]]
name = "elsewhere"
prefix = "/api/v1/x/other"
upstream = "http://other:80"
[[routes]]
name = "opt"
prefix = "/api/v1/x/opt"
upstream = "http://svc:80"
auth = "optional"
[[routes]]
name = "deep"
prefix = "/api/v1/x/opt/me"
upstream = "http://svc:80"
"#,
        &[
            (
                W,
                10,
                10,
                "route \"ingest\" (auth = \"required\") is under route \"x\" (/api/v1/x, auth = \"none\") on the same upstream",
            ),
            (
                W,
                23,
                10,
                "route \"opt\" (auth = \"optional\") is under route \"x\"",
            ),
            // The nearest weaker parent is named.
            (
                W,
                28,
                10,
                "route \"deep\" (auth = \"required\") is under route \"opt\" (/api/v1/x/opt, auth = \"optional\")",
            ),
        ],
    );
    assert!(!report.has_errors());
    // Same auth, or another upstream, or not a whole-segment parent: quiet.
    valid(
        r#"[auth]
secret = "${GATEWAY_JWT_SECRET}"
[[routes]]
name = "x"
prefix = "/api/v1/x"
upstream = "http://svc:80"
[[routes]]
name = "ingest"
prefix = "/api/v1/x/ingest"
upstream = "http://svc:80"
[[routes]]
name = "xy"
prefix = "/api/v1/xy"
upstream = "http://svc:80"
auth = "none"
[[routes]]
name = "xy-ingest"
prefix = "/api/v1/xyz/ingest"
upstream = "http://svc:80"
"#,
    );
}

#[test]
fn upgrades_are_lower_cased_tokens_and_h2c_is_refused() {
    let cfg = valid(
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\nupgrades = [\"Custom-Proto\", \"custom-proto\", \"v/2\"]\n",
    );
    assert_eq!(cfg.routes[0].upgrades, ["custom-proto", "v/2"]);
    assert!(
        valid("[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\n")
            .routes[0]
            .upgrades
            .is_empty(),
        "websocket is implied, nothing else is allowed by default"
    );
    check(
        r#"[[routes]]
name = "a"
prefix = "/a"
upstream = "http://a:1"
auth = "none"
upgrades = ["websocket", "H2C", "h2c/1", "two words", "a/b/c", ""]
"#,
        &[
            (
                E,
                6,
                26,
                "upgrades: \"H2C\" is never tunnelled: the HTTP/2 cleartext upgrade is deprecated (RFC 9113 §3.1)",
            ),
            (E, 6, 33, "upgrades: \"h2c/1\" is never tunnelled"),
            (E, 6, 42, "upgrades: \"two words\" is not a protocol token"),
            (E, 6, 55, "upgrades: \"a/b/c\" is not a protocol token"),
            (E, 6, 64, "upgrades: \"\" is not a protocol token"),
        ],
    );
}

#[test]
fn tunnel_idle_timeout_defaults_to_five_minutes_and_must_be_positive() {
    assert_eq!(
        valid("").server.tunnel_idle_timeout,
        Duration::from_secs(300)
    );
    assert_eq!(
        valid("[server]\ntunnel_idle_timeout = \"90s\"\n")
            .server
            .tunnel_idle_timeout,
        Duration::from_secs(90)
    );
    check(
        "[server]\ntunnel_idle_timeout = \"0s\"\n",
        &[(E, 2, 23, "tunnel_idle_timeout must be more than zero")],
    );
}

#[test]
fn pin_workers_defaults_to_on_and_takes_a_boolean() {
    assert!(valid("").server.pin_workers);
    assert!(!valid("[server]\npin_workers = false\n").server.pin_workers);
    check(
        "[server]\npin_workers = \"yes\"\n",
        &[(
            E,
            2,
            15,
            "pin_workers: expected true or false such as pin_workers = false (found a string)",
        )],
    );
}

// ---- [telemetry] and route names as metric labels ---------------------

#[test]
fn telemetry_defaults_to_no_export_and_every_new_trace_sampled() {
    let cfg = valid("");
    assert_eq!(cfg.telemetry.otlp_endpoint, None);
    assert_eq!(cfg.telemetry.sample_ratio, 1.0);
}

#[test]
fn otlp_endpoint_comes_from_the_key_or_else_the_standard_variable() {
    let cfg =
        valid("[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.25\n");
    assert_eq!(
        cfg.telemetry
            .otlp_endpoint
            .map(|u| u.to_string())
            .as_deref(),
        Some("http://127.0.0.1:4318/")
    );
    assert_eq!(cfg.telemetry.sample_ratio, 0.25);
    let report = load_env(
        "",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")],
    );
    expect(&report, &[]);
    let uri = report.config.unwrap().telemetry.otlp_endpoint.unwrap();
    assert_eq!(uri.host(), Some("collector"));
}

#[test]
fn bad_telemetry_values_are_refused_at_their_key() {
    check(
        "[telemetry]\notlp_endpoint = \"ftp://x\"\nsample_ratio = 1.5\n",
        &[
            (
                E,
                2,
                17,
                "telemetry.otlp_endpoint: \"ftp://x\" must be an http:// or https:// URL, e.g. \"http://otel-collector:4318\"",
            ),
            (
                E,
                3,
                16,
                "telemetry.sample_ratio: 1.5 is not between 0.0 and 1.0 (e.g. 0.1 samples one new trace in ten)",
            ),
        ],
    );
}

#[test]
fn route_names_hold_only_characters_a_metric_label_carries_unescaped() {
    for ok in ["a", "user-service", "v1.api_internal", "ns:svc"] {
        valid(&format!(
            "[[routes]]\nname = \"{ok}\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\n"
        ));
    }
    for bad in ["a b", "q\\\"x", "caf\u{e9}", "a/b", "{x}"] {
        let report = load(&format!(
            "[[routes]]\nname = \"{bad}\"\nprefix = \"/a\"\nupstream = \"http://a:1\"\nauth = \"none\"\n"
        ));
        assert!(report.config.is_none(), "{bad:?} accepted");
        assert!(
            report
                .diagnostics
                .iter()
                .any(|d| d.message.contains("may hold only ASCII letters")),
            "{bad:?}: {:?}",
            report.diagnostics
        );
    }
}

// ---- rate limits (README "Rate limits") -------------------------------

#[test]
fn route_limits_replace_the_defaults_and_an_empty_list_turns_them_off() {
    let c = valid(
        "[auth]\nsecret = \"${GATEWAY_JWT_SECRET}\"\n\
         [rate_limit]\nredis_url = \"redis://:hunter2@redis:6379/0\"\n\
         [[rate_limit.limits]]\nname = \"per-ip\"\nkey = \"ip\"\nrate = \"50/s\"\n\
         [[routes]]\nname = \"a\"\nprefix = \"/a\"\nauth = \"none\"\nupstream = \"http://a:1\"\n\
         [[routes]]\nname = \"b\"\nprefix = \"/b\"\nauth = \"none\"\nupstream = \"http://a:1\"\nlimits = []\n\
         [[routes]]\nname = \"c\"\nprefix = \"/c\"\nauth = \"optional\"\nupstream = \"http://a:1\"\n\
         [[routes.limits]]\nname = \"per-company\"\nkey = \"claim:app_metadata.company_id\"\nrate = \"100/m\"\nburst = 5\n",
    );
    assert_eq!(c.rate_limit.on_redis_error, OnRedisError::Local);
    assert_eq!(c.rate_limit.timeout, std::time::Duration::from_millis(100));
    let url = c.rate_limit.redis_url.as_ref().expect("url");
    assert_eq!(url.redacted(), "redis://***@redis:6379/0");
    assert!(!format!("{c:?}").contains("hunter2"));
    let a = &c.routes[0].limits;
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].name.as_str(), a[0].burst), ("per-ip", 50)); // burst defaults to N
    assert_eq!(a[0].key, LimitKey::Ip);
    assert!(c.routes[1].limits.is_empty());
    let l = &c.routes[2].limits[0];
    assert_eq!(l.key.to_string(), "claim:app_metadata.company_id");
    assert_eq!((l.rate.count, l.rate.per.as_secs(), l.burst), (100, 60, 5));
}

#[test]
fn rate_limit_mistakes_are_reported_at_their_keys() {
    check(
        "[rate_limit]\nredis_url = \"http://x\"\non_redis_error = \"panic\"\ntimeout = \"0s\"\n\
         [[rate_limit.limits]]\nname = \"a{b}\"\nkey = \"header:x\"\nrate = \"5/s\"\nburts = 3\n\
         [[rate_limit.limits]]\nrate = \"5/s\"\n",
        &[
            (E, 2, 13, "redis_url: \"http://x\": expected redis://"),
            (
                E,
                3,
                18,
                "on_redis_error = \"panic\": expected \"local\", \"allow\" or \"deny\"",
            ),
            (E, 4, 11, "timeout must be more than zero"),
            (E, 6, 8, "limit name \"a{b}\": braces"),
            (
                E,
                7,
                7,
                "key \"header:x\": expected \"ip\", \"route\" or \"claim:<path>\"",
            ),
            (
                E,
                9,
                1,
                "unknown key `burts` in [[rate_limit.limits]]; did you mean `burst`?",
            ),
            (E, 10, 1, "limit has no name"),
            (E, 10, 1, "limit has no key"),
        ],
    );
}

#[test]
fn a_claim_limit_on_a_route_that_verifies_nothing_is_a_warning() {
    check(
        "[[routes]]\nname = \"r\"\nprefix = \"/r\"\nauth = \"none\"\nupstream = \"http://a:1\"\n\
         [[routes.limits]]\nname = \"c\"\nkey = \"claim:sub\"\nrate = \"1/s\"\n",
        &[(W, 6, 1, "keys every caller by client IP")],
    );
}

// ---- workers -------------------------------------------------------------

#[test]
fn workers_default_to_the_cpus_and_take_a_positive_number() {
    let cfg = valid("");
    assert_eq!(cfg.server.workers, None);
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(cfg.server.worker_count(), cpus);
    let cfg = valid("[server]\nworkers = 3\n");
    assert_eq!(cfg.server.workers, Some(3));
    assert_eq!(cfg.server.worker_count(), 3);
    check(
        "[server]\nworkers = 0\n",
        &[(
            E,
            2,
            11,
            "workers must be a whole number of at least 1, e.g. workers = 2",
        )],
    );
}
