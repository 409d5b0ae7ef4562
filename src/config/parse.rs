//! The pure parsers and checks of the values `gateway.toml` holds: text in,
//! the model type (or `()` for a check) out, or a message that says how to
//! fix it (README "Configuration"). No spans, no environment, no files:
//! `validate` expands `${VAR}`s, calls these, and reports their message at
//! the value. Durations and sizes are in [`super::values`].

use std::time::Duration;

use http::{Method, Uri};

use super::model::{ClaimPath, LimitKey, OriginRule, Rate, Upstream};
use super::values::redact_userinfo;

// ---- secrets -------------------------------------------------------------

/// The old Python gateway's default secret: refused everywhere.
pub(crate) const INSECURE_PLACEHOLDER: &str =
    "YOUR_DEFAULT_JWT_SECRET_KEY_CHANGE_ME_IN_ENV_OR_SECRET";

/// Minimum HMAC key length in bytes (RFC 7518 §3.2 for HS256).
pub(crate) const MIN_SECRET_LEN: usize = 32;

/// Why an HMAC secret is refused: the old gateway's placeholder, or
/// shorter than [`MIN_SECRET_LEN`].
pub(super) fn secret_problem(secret: &[u8]) -> Option<String> {
    if secret == INSECURE_PLACEHOLDER.as_bytes() {
        return Some("the secret is the old gateway's insecure placeholder; set GATEWAY_JWT_SECRET to your Supabase project's JWT secret".into());
    }
    if secret.len() < MIN_SECRET_LEN {
        return Some(format!(
            "the HMAC secret is {} bytes; at least {MIN_SECRET_LEN} are needed (use your Supabase project's JWT secret, or `openssl rand -base64 48`)",
            secret.len()
        ));
    }
    None
}

/// The secrets of a `secret_file`, one per line, each with its 1-based
/// line number; a trailing `\r` is trimmed and blank lines are dropped.
pub(super) fn secret_lines(bytes: Vec<u8>) -> Vec<(usize, Vec<u8>)> {
    let bytes = trim_trailing_newlines(bytes);
    if !bytes.contains(&b'\n') {
        return if bytes.is_empty() {
            Vec::new()
        } else {
            vec![(1, bytes)]
        };
    }
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line).to_vec()))
        .filter(|(_, line)| !line.is_empty())
        .collect()
}

fn trim_trailing_newlines(mut bytes: Vec<u8>) -> Vec<u8> {
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    bytes
}

// ---- algorithms ----------------------------------------------------------

/// The algorithms the allowlist may name.
pub(crate) const ALGORITHM_NAMES: &[&str] = &[
    "HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384",
    "PS512", "EdDSA",
];

pub(super) fn parse_algorithm(name: &str) -> Result<jsonwebtoken::Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("algorithm \"none\" is never accepted: it means an unsigned token".into());
    }
    if let Some(known) = ALGORITHM_NAMES.iter().find(|k| **k == name) {
        return known
            .parse()
            .map_err(|_| format!("unsupported algorithm {name:?}"));
    }
    match ALGORITHM_NAMES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
    {
        Some(k) => Err(format!(
            "algorithm {name:?}: names are case-sensitive; write {k:?}"
        )),
        None => Err(format!(
            "unknown algorithm {name:?}; supported: {}",
            ALGORITHM_NAMES.join(", ")
        )),
    }
}

// ---- URLs ----------------------------------------------------------------

/// Parses an upstream URL: http or https, a host, an optional base path,
/// no query or fragment.
pub(crate) fn parse_upstream(url: &str) -> Result<Upstream, String> {
    // Every message below names the URL, never its password.
    let text = &redact_userinfo(url);
    if text.contains('#') {
        return Err(format!("{text:?} has a fragment; remove the #..."));
    }
    let uri: Uri = url.parse().map_err(|e| {
        format!("{text:?} is not a URL ({e}); expected e.g. \"http://service:8080\"")
    })?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(s) => {
            return Err(format!(
                "{text:?}: scheme {s:?} is not supported; use http:// or https://"
            ));
        }
        None => return Err(format!("{text:?} has no scheme; write \"http://{text}\"")),
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("{text:?} has no host"))?;
    if authority.host().is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    if authority.as_str().contains('@') {
        return Err(format!(
            "{text:?}: credentials in the URL are not supported"
        ));
    }
    if uri.query().is_some() {
        return Err(format!(
            "{text:?} has a query string; upstream URLs take scheme, host, port and an optional base path"
        ));
    }
    let base_path = uri.path().trim_end_matches('/').to_owned();
    Ok(Upstream {
        url: url.to_owned(),
        https,
        authority,
        base_path,
    })
}

pub(super) fn jwks_uri(url: &str) -> Result<Uri, String> {
    // Every message below names the URL, never its password.
    let text = &redact_userinfo(url);
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    let host = uri.host().ok_or_else(|| format!("{text:?} has no host"))?;
    // It would be printed on the admin /config and in fetch-failure logs;
    // a JWKS is public anyway.
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!(
            "{text:?}: credentials in the URL are not supported (a JWKS is public; remove user:password@)"
        ));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback_host(host) => Ok(uri),
        Some("http") => Err(format!(
            "{text:?} must use https (plain http is only allowed for loopback hosts)"
        )),
        _ => Err(format!("{text:?} must be an https:// URL")),
    }
}

/// `[telemetry] otlp_endpoint`: an `http` or `https` base URL with a host
/// and no query (`/v1/traces` is appended to its path).
pub(super) fn otlp_uri(url: &str) -> Result<Uri, String> {
    let text = &redact_userinfo(url);
    let uri: Uri = url.parse().map_err(|e| {
        format!("{text:?} is not a URL ({e}); expected e.g. \"http://otel-collector:4318\"")
    })?;
    if uri.host().is_none() {
        return Err(format!(
            "{text:?} has no host; expected e.g. \"http://otel-collector:4318\""
        ));
    }
    if uri.query().is_some() {
        return Err(format!(
            "{text:?}: a query is not supported in the base URL"
        ));
    }
    match uri.scheme_str() {
        Some("http" | "https") => Ok(uri),
        _ => Err(format!(
            "{text:?} must be an http:// or https:// URL, e.g. \"http://otel-collector:4318\""
        )),
    }
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A `redis_url` the client can use: `redis://` or `rediss://` (TLS),
/// `[user:password@]host[:port][/db]`.
pub(super) fn check_redis_url(url: &str) -> Result<(), String> {
    let text = redact_userinfo(url);
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(format!(
            "{text:?}: expected redis://host:6379 or rediss://host:6380 (TLS)"
        ));
    }
    use redis::IntoConnectionInfo;
    url.into_connection_info().map(|_| ()).map_err(|_| {
        format!("{text:?} is not a valid Redis URL, e.g. redis://:password@host:6379/0")
    })
}

// ---- routes --------------------------------------------------------------

/// Checks a route prefix: starts with `/`, no trailing `/` (but `/` alone
/// is the catch-all), no query, fragment, whitespace, empty or dot segments.
pub(crate) fn check_prefix(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("prefix {p:?} must start with \"/\", e.g. \"/{p}\""));
    }
    if p.len() > 1 && p.ends_with('/') {
        return Err(format!(
            "prefix {p:?} must not end with \"/\"; write {:?} (it matches {p:?} and everything below it)",
            p.trim_end_matches('/')
        ));
    }
    if p.contains(['?', '#']) || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "prefix {p:?} may hold only a path (no query, fragment or spaces)"
        ));
    }
    if p.len() > 1
        && p[1..]
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "prefix {p:?} has an empty, \".\" or \"..\" segment"
        ));
    }
    Ok(())
}

/// A route name that a Prometheus label value (and a log field) carries
/// as is: ASCII letters, digits, `-`, `_`, `.` and `:`, so the exposition
/// never needs an escape.
pub(crate) fn is_label_safe(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Parses a claim path: `a.b.c`, or a JSON Pointer starting with `/`.
pub fn parse_claim_path(s: &str) -> Result<ClaimPath, String> {
    if s.is_empty() {
        return Err("the claim path is empty; e.g. \"sub\" or \"app_metadata.company_id\"".into());
    }
    if s.starts_with('/') {
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!(
                    "JSON Pointer {s:?}: \"~\" must be followed by 0 or 1 (\"~0\" is ~, \"~1\" is /)"
                ));
            }
        }
        return Ok(ClaimPath::Pointer(s.to_owned()));
    }
    let keys: Vec<String> = s.split('.').map(str::to_owned).collect();
    if keys.iter().any(String::is_empty) {
        return Err(format!(
            "claim path {s:?} has an empty segment; for a claim whose name holds dots use a JSON Pointer such as \"/{}\"",
            s.replace('~', "~0").replace('/', "~1")
        ));
    }
    Ok(ClaimPath::Dotted(keys))
}

/// True when `prefix` is `path` or a whole-segment prefix of it: what a
/// route's prefix matches (README "Routes"), for the router and for the
/// overlapping-auth warning.
#[inline]
pub(crate) fn segment_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// One entry of a route's `methods`: a method token as written
/// (methods are case-sensitive, RFC 9110 §9.1, so `"get"` is refused with
/// the spelling to use).
pub(super) fn parse_method(m: &str) -> Result<Method, String> {
    let upper = m.to_ascii_uppercase();
    if m != upper && Method::from_bytes(upper.as_bytes()).is_ok() {
        return Err(format!(
            "method {m:?}: methods are case-sensitive; write {upper:?}"
        ));
    }
    match Method::from_bytes(m.as_bytes()) {
        Ok(method) if !m.is_empty() => Ok(method),
        _ => Err(format!("{m:?} is not a valid HTTP method")),
    }
}

/// One entry of a route's `upgrades`, lower-cased: a protocol token (RFC
/// 9110 §7.8: `name` or `name/version`); `h2c` is refused (RFC 9113 §3.1
/// deprecates it, and a tunnel carries requests the gateway never sees).
pub(super) fn parse_upgrade(token: &str) -> Result<String, String> {
    let lower = token.to_ascii_lowercase();
    let name = lower.split('/').next().unwrap_or("");
    let well_formed = lower.split('/').count() <= 2
        && lower
            .split('/')
            .all(|part| !part.is_empty() && part.bytes().all(is_tchar));
    if !well_formed {
        return Err(format!(
            "{token:?} is not a protocol token; write a name such as \"my-protocol\" (optionally \"name/version\")"
        ));
    }
    if name == "h2c" {
        return Err(format!(
            "{token:?} is never tunnelled: the HTTP/2 cleartext upgrade is deprecated (RFC 9113 §3.1) and its tunnel would carry requests the gateway never checks; remove it (for HTTP/2 to the upstream use http2 = true)"
        ));
    }
    Ok(lower)
}

/// A `tchar` of RFC 9110 §5.6.2 (the characters of a token).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The value of `all` whose word (`as_str`) is `text`, if any.
pub(super) fn word<T: Copy>(text: &str, all: &[T], as_str: fn(T) -> &'static str) -> Option<T> {
    all.iter().copied().find(|v| as_str(*v) == text)
}

/// A key that takes one of a few words (`auth`, `on_redis_error`): the
/// value, or a message naming the words (`auth = "x": expected
/// "required", "optional" or "none"`).
pub(super) fn parse_word<T: Copy>(
    key: &str,
    text: &str,
    all: &[T],
    as_str: fn(T) -> &'static str,
) -> Result<T, String> {
    word(text, all, as_str).ok_or_else(|| {
        let quoted: Vec<String> = all.iter().map(|v| format!("{:?}", as_str(*v))).collect();
        let listed = match quoted.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        format!("{key} = {text:?}: expected {listed}")
    })
}

// ---- trusted proxies and CORS origins -------------------------------------

/// A `trusted_proxies` entry: a CIDR or a bare address; host bits set
/// below the prefix (`10.0.0.1/8`) are refused, since they suggest a typo.
pub(crate) fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let t = text.trim();
    if let Ok(ip) = t.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    let net: ipnet::IpNet = t.parse().map_err(|_| {
        format!("{text:?} is not a CIDR; expected an address and a prefix length, e.g. \"10.0.0.0/8\" or \"fd00::/8\", or a single address")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has bits set after its /{} prefix; write {:?}",
            net.prefix_len(),
            net.trunc().to_string()
        ));
    }
    Ok(net)
}

/// Parses one CORS origin: `*`, `null`, `scheme://host[:port]` or
/// `scheme://*.domain[:port]`.
pub(crate) fn parse_origin(text: &str) -> Result<OriginRule, String> {
    if text == "*" {
        return Ok(OriginRule::Any);
    }
    if text == "null" {
        return Ok(OriginRule::Exact("null".into()));
    }
    let lower = text.to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| format!("origin {text:?} needs a scheme, e.g. \"https://{text}\""))?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(format!("origin {text:?} has an invalid scheme"));
    }
    if rest.ends_with('/') {
        return Err(format!(
            "origin {text:?} must not end with \"/\"; write {:?}",
            text.trim_end_matches('/')
        ));
    }
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "origin {text:?} may hold only scheme://host[:port], no path"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h, Some(p)),
            Err(_) if rest.starts_with('[') && !h.contains(']') => (rest, None),
            Err(_) => return Err(format!("origin {text:?} has an invalid port")),
        },
        _ => (rest, None),
    };
    if host.is_empty() {
        return Err(format!("origin {text:?} has no host"));
    }
    // As a browser serializes an origin: without the scheme's default port
    // (RFC 6454 §6.2), so "https://app.nyro.ai:443" matches the
    // `Origin: https://app.nyro.ai` it sends.
    let default_port = match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let port = port.filter(|p| Some(*p) != default_port);
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') || !suffix.contains('.') {
            return Err(format!(
                "origin pattern {text:?}: the wildcard must stand for the leftmost labels of a domain with at least two labels, e.g. \"https://*.vercel.app\""
            ));
        }
        return Ok(OriginRule::Wildcard {
            scheme: scheme.to_owned(),
            suffix: suffix.to_owned(),
            port,
        });
    }
    if host.contains('*') {
        return Err(format!(
            "origin {text:?}: \"*\" is only allowed as the leftmost label (\"https://*.example.com\")"
        ));
    }
    Ok(OriginRule::Exact(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }))
}

// ---- rate limits -----------------------------------------------------------

/// A limit's `key`: `ip`, `route` or `claim:<claim path>`.
pub(crate) fn parse_limit_key(text: &str) -> Result<LimitKey, String> {
    match text {
        "ip" => Ok(LimitKey::Ip),
        "route" => Ok(LimitKey::Route),
        _ => match text.strip_prefix("claim:") {
            Some(path) => parse_claim_path(path)
                .map(LimitKey::Claim)
                .map_err(|e| format!("key {text:?}: {e}")),
            None => Err(format!(
                "key {text:?}: expected \"ip\", \"route\" or \"claim:<path>\", e.g. \"claim:app_metadata.company_id\""
            )),
        },
    }
}

/// `"N/s"`, `"N/m"` or `"N/h"` with N a whole number of at least 1.
pub(crate) fn parse_rate(text: &str) -> Result<Rate, String> {
    let hint =
        "expected requests per second, minute or hour, e.g. \"100/s\", \"600/m\", \"5000/h\"";
    let Some((n, unit)) = text.split_once('/') else {
        return Err(format!("rate {text:?}: {hint}"));
    };
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(format!("rate {text:?}: unit {unit:?}; {hint}")),
    };
    match n.trim().parse::<u32>() {
        Ok(count) if count >= 1 => Ok(Rate { count, per }),
        _ => Err(format!(
            "rate {text:?}: {n:?} is not a whole number of at least 1; {hint}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        for ok in ["/", "/api", "/api/v1/ingest", "/a-b_c.d"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["api", "/api/", "/a//b", "/a/../b", "/a?x", "/a b", ""] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segment_prefixes_match_whole_segments() {
        let cases: &[(&str, &str, bool)] = &[
            ("/api", "/api", true),
            ("/api/x", "/api", true),
            ("/apix", "/api", false),
            ("/ap", "/api", false),
            ("/anything", "/", true),
            ("/", "/", true),
            ("", "/", false),
        ];
        for (path, prefix, want) in cases {
            assert_eq!(segment_prefix(path, prefix), *want, "{path} under {prefix}");
        }
    }

    #[test]
    fn methods_are_case_sensitive_tokens() {
        assert_eq!(parse_method("GET").unwrap(), Method::GET);
        assert_eq!(parse_method("PURGE").unwrap().as_str(), "PURGE");
        assert!(parse_method("get").unwrap_err().contains("write \"GET\""));
        for bad in ["", "G ET", "GET\n"] {
            assert!(parse_method(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn upgrades_are_lower_cased_tokens_never_h2c() {
        assert_eq!(parse_upgrade("My-Protocol").unwrap(), "my-protocol");
        assert_eq!(parse_upgrade("name/1.0").unwrap(), "name/1.0");
        for bad in ["", "a/b/c", "a/", "sp ace", "h2c", "H2C/1"] {
            assert!(parse_upgrade(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn words_are_parsed_and_a_wrong_one_lists_them() {
        use super::super::model::{AuthMode, OnRedisError};
        for m in AuthMode::ALL {
            assert_eq!(
                parse_word("auth", m.as_str(), &AuthMode::ALL, AuthMode::as_str),
                Ok(m)
            );
        }
        assert_eq!(
            parse_word("auth", "Required", &AuthMode::ALL, AuthMode::as_str),
            Err("auth = \"Required\": expected \"required\", \"optional\" or \"none\"".to_owned())
        );
        assert_eq!(
            parse_word(
                "on_redis_error",
                "x",
                &OnRedisError::ALL,
                OnRedisError::as_str
            ),
            Err("on_redis_error = \"x\": expected \"local\", \"allow\" or \"deny\"".to_owned())
        );
        assert_eq!(AuthMode::WORDS, ["required", "optional", "none"]);
    }

    #[test]
    fn upstreams() {
        let u = parse_upstream("http://svc.ns.svc.cluster.local:80").unwrap();
        assert_eq!(u.authority.as_str(), "svc.ns.svc.cluster.local:80");
        assert!(!u.https);
        assert_eq!(u.base_path, "");
        let u = parse_upstream("https://x.example/base/").unwrap();
        assert!(u.https);
        assert_eq!(u.base_path, "/base");
        for bad in [
            "svc:80",
            "ftp://x",
            "http://x/#f",
            "http://x/?q=1",
            "http://user@x",
            "http://",
        ] {
            assert!(parse_upstream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_messages_never_hold_the_password() {
        assert_eq!(
            redact_userinfo("https://u:pw@h:1/p@x"),
            "https://***@h:1/p@x"
        );
        assert_eq!(redact_userinfo("u:pw@h/x"), "***@h/x");
        assert_eq!(redact_userinfo("http://h/a@b?c@d"), "http://h/a@b?c@d");
        assert_eq!(redact_userinfo("http://u:p#w@h/"), "http://***@h/");
        for bad in [
            "http://u:pw@x",
            "ftp://u:pw@x",
            "http://u:pw@x/#f",
            "http://u:pw@x/?q=1",
            "u:pw@x",
        ] {
            let e = parse_upstream(bad).unwrap_err();
            assert!(!e.contains("pw"), "{e}");
        }
        for bad in ["https://u:pw@x/jwks", "http://u:pw@x/jwks", "ftp://u:pw@x"] {
            let e = jwks_uri(bad).unwrap_err();
            assert!(!e.contains("pw") && e.contains("***@"), "{e}");
        }
        assert!(jwks_uri("https://x.example/jwks.json").is_ok());
    }

    #[test]
    fn claim_paths() {
        assert_eq!(
            parse_claim_path("sub").unwrap(),
            ClaimPath::Dotted(vec!["sub".into()])
        );
        assert_eq!(
            parse_claim_path("app_metadata.company_id").unwrap(),
            ClaimPath::Dotted(vec!["app_metadata".into(), "company_id".into()])
        );
        assert_eq!(
            parse_claim_path("/https:~1~1x.com~1roles").unwrap(),
            ClaimPath::Pointer("/https:~1~1x.com~1roles".into())
        );
        for bad in ["", "a..b", ".a", "/a~2"] {
            assert!(parse_claim_path(bad).is_err(), "{bad}");
        }
        let claims = serde_json::json!({"app_metadata": {"company_id": "c1"}, "https://x.com/roles": "admin"});
        assert_eq!(
            parse_claim_path("app_metadata.company_id")
                .unwrap()
                .lookup(&claims),
            Some(&serde_json::json!("c1"))
        );
        assert_eq!(
            parse_claim_path("/https:~1~1x.com~1roles")
                .unwrap()
                .lookup(&claims),
            Some(&serde_json::json!("admin"))
        );
    }

    #[test]
    fn origins() {
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            OriginRule::Exact("http://localhost:3000".into())
        );
        assert_eq!(
            parse_origin("HTTPS://App.Nyro.AI").unwrap(),
            OriginRule::Exact("https://app.nyro.ai".into())
        );
        // The scheme's default port goes, as browsers leave it out.
        assert_eq!(
            parse_origin("https://app.nyro.ai:443").unwrap(),
            OriginRule::Exact("https://app.nyro.ai".into())
        );
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            OriginRule::Exact("http://localhost:3000".into())
        );
        assert_eq!(parse_origin("*").unwrap(), OriginRule::Any);
        assert_eq!(
            parse_origin("null").unwrap(),
            OriginRule::Exact("null".into())
        );
        assert_eq!(
            parse_origin("https://*.vercel.app").unwrap(),
            OriginRule::Wildcard {
                scheme: "https".into(),
                suffix: "vercel.app".into(),
                port: None
            }
        );
        assert!(parse_origin("http://[::1]:3000").is_ok());
        for bad in [
            "localhost:3000",
            "https://x.com/",
            "https://x.com/app",
            "https://*.com",
            "https://a.*.com",
            "https://x:port",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn algorithms() {
        assert_eq!(
            parse_algorithm("HS256").unwrap(),
            jsonwebtoken::Algorithm::HS256
        );
        assert_eq!(
            parse_algorithm("EdDSA").unwrap(),
            jsonwebtoken::Algorithm::EdDSA
        );
        for none in ["none", "None", "NONE", "nOnE"] {
            assert!(
                parse_algorithm(none)
                    .unwrap_err()
                    .contains("never accepted")
            );
        }
        assert!(
            parse_algorithm("hs256")
                .unwrap_err()
                .contains("write \"HS256\"")
        );
        assert!(parse_algorithm("XX1").is_err());
    }
}
