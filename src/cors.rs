//! CORS (Fetch standard, "CORS protocol"): preflights answered by the
//! gateway, and the response headers that let a page read an answer.
//!
//! A `Policy` is compiled per route from `config::Cors`. With credentials
//! the allowed origin is echoed exactly, never `*` (Fetch §3.2.5).
//! `Vary: Origin` is set on every answer that depends on the origin.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method};

use crate::config::{Cors, OriginRule};

/// A route's compiled CORS policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    rules: Vec<OriginRule>,
    credentials: bool,
    max_age: HeaderValue,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    allow_methods: HeaderValue,
}

/// What a request means for CORS.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No `Origin` header, or an origin this policy does not allow: no CORS
    /// headers are added (the browser then blocks the page from reading).
    NotAllowed,
    /// An allowed origin.
    Allowed(HeaderValue),
}

/// The CORS decision carried from the phases that make it to the response
/// step, which adds the headers it calls for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A preflight was answered with its own headers
    /// (`Policy::preflight_headers`): nothing more to add.
    Preflight,
    /// An actual response (or an error, a refused preflight included):
    /// `Policy::apply` with this verdict.
    Apply(Verdict),
}

/// Every method a route without `methods` accepts, as an `Allow` /
/// `Access-Control-Allow-Methods` value.
pub(crate) const ALL_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";

impl Policy {
    /// Compiles a policy; `methods` is the route's method list (`None`: all).
    pub(crate) fn new(cfg: &Cors, methods: Option<&[Method]>) -> Policy {
        let join = |items: Vec<&str>| HeaderValue::try_from(items.join(", ")).ok();
        let allow_methods = match methods {
            Some(m) => join(m.iter().map(Method::as_str).collect()),
            None => None,
        }
        .unwrap_or_else(|| HeaderValue::from_static(ALL_METHODS));
        Policy {
            rules: cfg.allowed_origins.clone(),
            credentials: cfg.allow_credentials,
            max_age: HeaderValue::from(cfg.max_age.as_secs()),
            allow_headers: cfg
                .allow_headers
                .as_ref()
                .and_then(|h| join(h.iter().map(|n| n.as_str()).collect())),
            expose_headers: if cfg.expose_headers.is_empty() {
                None
            } else {
                join(cfg.expose_headers.iter().map(|n| n.as_str()).collect())
            },
            allow_methods,
        }
    }

    /// True when the policy allows no origin at all (CORS is off).
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Checks the request's `Origin`.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Verdict {
        let Some(origin) = headers.get(ORIGIN) else {
            return Verdict::NotAllowed;
        };
        match origin.to_str() {
            Ok(o) if self.allows(o) => Verdict::Allowed(origin.clone()),
            _ => Verdict::NotAllowed,
        }
    }

    /// True when `origin` matches a rule. Matching is ASCII case-insensitive
    /// on scheme and host; a wildcard stands for one or more whole labels.
    pub(crate) fn allows(&self, origin: &str) -> bool {
        self.rules.iter().any(|rule| match rule {
            OriginRule::Any => origin != "null",
            OriginRule::Exact(o) => o.eq_ignore_ascii_case(origin),
            OriginRule::Wildcard {
                scheme,
                suffix,
                port,
            } => wildcard_match(origin, scheme, suffix, *port),
        })
    }

    /// True when the policy answers `*` (any origin, no credentials).
    fn wildcard_star(&self) -> bool {
        !self.credentials && self.rules.contains(&OriginRule::Any)
    }

    /// Adds the headers of an actual (non-preflight) response for an
    /// allowed origin, replacing any `Access-Control-*` the upstream sent.
    pub(crate) fn apply(&self, verdict: &Verdict, headers: &mut HeaderMap) {
        strip_cors_headers(headers);
        if self.is_empty() {
            return;
        }
        headers.append(VARY, HeaderValue::from_static("Origin"));
        let Verdict::Allowed(origin) = verdict else {
            return;
        };
        self.origin_headers(origin, headers);
        if let Some(expose) = &self.expose_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }

    fn origin_headers(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        let value = if self.wildcard_star() {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if self.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// The headers of a successful preflight answer.
    pub(crate) fn preflight_headers(&self, origin: &HeaderValue, request: &HeaderMap) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        self.origin_headers(origin, &mut h);
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        let requested = request
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|v| !v.is_empty());
        match (&self.allow_headers, requested) {
            (Some(list), _) => {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, list.clone());
            }
            (None, Some(req)) => {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, req.clone());
            }
            (None, None) => {}
        }
        h.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        h
    }
}

/// True for a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(ORIGIN)
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The method a preflight asks about.
pub(crate) fn requested_method(headers: &HeaderMap) -> Option<Method> {
    headers
        .get(ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
}

/// Removes every `Access-Control-*` response header (the gateway owns CORS).
pub(crate) fn strip_cors_headers(headers: &mut HeaderMap) {
    for name in [
        ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        ACCESS_CONTROL_ALLOW_METHODS,
        ACCESS_CONTROL_ALLOW_HEADERS,
        ACCESS_CONTROL_EXPOSE_HEADERS,
        ACCESS_CONTROL_MAX_AGE,
    ] {
        headers.remove(name);
    }
}

fn wildcard_match(origin: &str, scheme: &str, suffix: &str, port: Option<u16>) -> bool {
    let Some((o_scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    if !o_scheme.eq_ignore_ascii_case(scheme) {
        return false;
    }
    let (host, o_port) = match rest.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(p) => (h, Some(p)),
            Err(_) => return false,
        },
        None => (rest, None),
    };
    if o_port != port || host.len() <= suffix.len() + 1 {
        return false;
    }
    let (labels, tail) = host.split_at(host.len() - suffix.len());
    tail.eq_ignore_ascii_case(suffix)
        && labels.ends_with('.')
        && labels[..labels.len() - 1]
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_origin;
    use std::time::Duration;

    fn policy(origins: &[&str], credentials: bool) -> Policy {
        let cfg = Cors {
            allowed_origins: origins.iter().map(|o| parse_origin(o).unwrap()).collect(),
            allow_credentials: credentials,
            max_age: Duration::from_secs(600),
            allow_headers: None,
            expose_headers: vec![
                http::HeaderName::from_static("x-request-id"),
                http::HeaderName::from_static("x-process-time"),
            ],
        };
        Policy::new(&cfg, Some(&[Method::GET, Method::POST]))
    }

    #[test]
    fn origin_matching_table() {
        let p = policy(
            &[
                "http://localhost:3000",
                "https://*.vercel.app",
                "https://app.nyro.ai",
            ],
            true,
        );
        let cases = [
            ("http://localhost:3000", true),
            ("HTTP://LOCALHOST:3000", true),
            ("http://localhost:3001", false),
            ("https://localhost:3000", false),
            ("https://my-app-git-main.vercel.app", true),
            ("https://a.b.vercel.app", true),
            ("https://vercel.app", false),
            ("https://evilvercel.app", false),
            ("https://x.vercel.app.evil.com", false),
            ("http://x.vercel.app", false),
            ("https://x.vercel.app:8443", false),
            ("https://app.nyro.ai", true),
            ("https://app.nyro.ai.evil.com", false),
            ("null", false),
            ("", false),
        ];
        for (origin, want) in cases {
            assert_eq!(p.allows(origin), want, "{origin}");
        }
        assert!(policy(&["null"], true).allows("null"));
        assert!(!policy(&["*"], false).allows("null"));
        assert!(policy(&["*"], false).allows("https://anything.example"));
    }

    #[test]
    fn default_ports_in_the_config_match_what_browsers_send() {
        // Browsers omit the scheme's default port from `Origin`.
        let p = policy(
            &[
                "https://app.nyro.ai:443",
                "http://localhost:80",
                "https://*.vercel.app:443",
                "http://localhost:3000",
                "https://staging.nyro.ai:8443",
            ],
            true,
        );
        let cases = [
            ("https://app.nyro.ai", true),
            ("http://app.nyro.ai", false),
            ("http://localhost", true),
            ("https://localhost", false),
            ("https://x.vercel.app", true),
            ("http://localhost:3000", true),
            ("https://staging.nyro.ai:8443", true),
            ("https://staging.nyro.ai", false),
        ];
        for (origin, want) in cases {
            assert_eq!(p.allows(origin), want, "{origin}");
        }
    }

    #[test]
    fn credentials_echo_the_origin_never_star() {
        let p = policy(&["*"], false);
        let mut req = HeaderMap::new();
        req.insert(ORIGIN, HeaderValue::from_static("https://x.example"));
        let mut h = HeaderMap::new();
        p.apply(&p.check(&req), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!h.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));

        let p = policy(&["https://x.example"], true);
        let mut h = HeaderMap::new();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")); // from upstream
        p.apply(&p.check(&req), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://x.example");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(
            h[ACCESS_CONTROL_EXPOSE_HEADERS],
            "x-request-id, x-process-time"
        );
        assert_eq!(h[VARY], "Origin");
    }

    #[test]
    fn disallowed_origin_gets_vary_but_no_allow_headers() {
        let p = policy(&["https://x.example"], true);
        let mut req = HeaderMap::new();
        req.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        let mut h = HeaderMap::new();
        h.insert(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        p.apply(&p.check(&req), &mut h);
        assert!(!h.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        assert_eq!(h[VARY], "Origin");
    }

    #[test]
    fn preflight_echoes_requested_headers_and_lists_route_methods() {
        let p = policy(&["https://x.example"], true);
        let mut req = HeaderMap::new();
        req.insert(ORIGIN, HeaderValue::from_static("https://x.example"));
        req.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        req.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        assert!(is_preflight(&Method::OPTIONS, &req));
        assert!(!is_preflight(&Method::GET, &req));
        let h = p.preflight_headers(&req[ORIGIN], &req);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://x.example");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, POST");
        assert_eq!(
            h[ACCESS_CONTROL_ALLOW_HEADERS],
            "authorization, content-type"
        );
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    }
}
