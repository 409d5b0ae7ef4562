//! The gateway's own error kinds, and the one place they become a status
//! code and a `{"detail": …}` body. Each kind also says who caused it
//! (client, upstream or gateway) for the log.

use std::error::Error as StdError;

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// 499 Client Closed Request: not an HTTP status but nginx's log code
/// for a client that went away before the answer, kept for the same
/// dashboards.
pub(crate) const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(s) => s,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers): the remaining
/// quota of the limit nearest to refusing.
pub(crate) static RATELIMIT: http::HeaderName = http::HeaderName::from_static("ratelimit");
/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): the quota
/// and window of that limit.
pub(crate) static RATELIMIT_POLICY: http::HeaderName =
    http::HeaderName::from_static("ratelimit-policy");

/// Who a failed request is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blame {
    /// The request was wrong (4xx).
    Client,
    /// The upstream failed (5xx from 502/503/504).
    Upstream,
    /// The gateway's configuration or code (500/501).
    Gateway,
}

impl Blame {
    /// Lower-case word for logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Blame::Client => "client",
            Blame::Upstream => "upstream",
            Blame::Gateway => "gateway",
        }
    }
}

/// Everything the gateway itself answers with an error status. `Display`
/// is the client-facing `detail`; the cause (a token's or claim's reason,
/// the upstream's or the client body's error) stays reachable through
/// `source()`, so the log line can print the whole chain.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    /// No route matches the path (404).
    #[error("Not Found")]
    NotFound,
    /// The route does not allow the method (405, with `Allow`).
    #[error("Method Not Allowed")]
    MethodNotAllowed(HeaderValue),
    /// A malformed request the gateway refuses to forward (400).
    #[error("{0}")]
    BadRequest(&'static str),
    /// `Content-Length` together with `Transfer-Encoding` (RFC 9112 §6.3:
    /// a request-smuggling vector); answered 400 and the connection closed.
    #[error("Ambiguous message framing: Content-Length with Transfer-Encoding.")]
    AmbiguousFraming,
    /// A preflight from an origin the route does not allow (400).
    #[error("Disallowed CORS origin")]
    CorsDisallowed(#[source] RefusedOrigin),
    /// The `Authorization` header cannot be used: repeated (400, RFC 6750
    /// invalid_request), or a Bearer credential that is not `Bearer
    /// <b64token>` (401, invalid_token).
    #[error("{}", bearer_detail(.0))]
    Bearer(#[from] BearerError),
    /// Auth required and no bearer token (401).
    #[error("Not authenticated")]
    NotAuthenticated,
    /// The token was refused (401, RFC 6750 invalid_token); the reason is
    /// safe to show (it never contains the token).
    #[error("Invalid token: {0}")]
    InvalidToken(#[from] TokenError),
    /// A valid token without a required or injectable claim (403).
    #[error("{0}")]
    Forbidden(#[from] InjectError),
    /// The request body is over `max_body` (413).
    #[error("Request body too large.")]
    PayloadTooLarge,
    /// The client's body broke: the HTTP framing (a malformed chunk size,
    /// an LF-only chunk line, a chunk extension over the parser's limit)
    /// is a 400 with the connection closed; a client gone mid-upload is
    /// logged as 499, nginx's status for a client that closed its request
    /// (nobody reads that answer).
    #[error("{}", client_body_detail(.0))]
    ClientBody(#[source] ClientFault),
    /// The route has no upstream (501).
    #[error("No upstream is configured for this route.")]
    NotImplemented,
    /// The upstream failed (502/503/504, by its [`UpstreamKind`]).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A rate limit refused the request (429, with `Retry-After`,
    /// `RateLimit-Policy` and `RateLimit`; README "Rate limits").
    #[error("Rate limit exceeded.")]
    RateLimited(Box<RateLimitRefusal>),
    /// Redis could not decide and `on_redis_error = "deny"` (503, blamed on
    /// the gateway); the cause is Redis's error or the timeout.
    #[error("Rate limiting is unavailable.")]
    RateLimitUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The headers of a 429, made by the limiter that refused.
#[derive(Debug)]
pub(crate) struct RateLimitRefusal {
    /// `Retry-After`: whole seconds until the request would pass.
    pub(crate) retry_after: HeaderValue,
    /// `RateLimit-Policy` of the limit that refused.
    pub(crate) policy: HeaderValue,
    /// `RateLimit` of the limit that refused (`r=0`).
    pub(crate) limit: HeaderValue,
}

impl From<ClientFault> for GatewayError {
    fn from(fault: ClientFault) -> Self {
        GatewayError::ClientBody(fault)
    }
}

/// How the upstream failed; decided from the error's types (see
/// `proxy::forward::classify`), never from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamKind {
    /// No connection could be made: refused, DNS, or the upstream's
    /// connection cap reached for `connect_timeout` (503).
    Unavailable,
    /// Connecting took longer than `connect_timeout` (504).
    ConnectTimeout,
    /// No response headers within the route's `timeout` (504).
    Timeout,
    /// Connected, but no valid response: a reset, a closed connection, a
    /// response that is not HTTP, a protocol switch nobody asked for (502).
    BadResponse,
}

/// An upstream failure: its kind, and the error that shows it.
#[derive(Debug, thiserror::Error)]
#[error("{}", upstream_detail(*.kind))]
pub(crate) struct UpstreamError {
    /// What the status is decided from.
    pub(crate) kind: UpstreamKind,
    /// hyper's error, or what the upstream did wrong.
    #[source]
    pub(crate) source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl UpstreamError {
    /// An upstream failure of `kind` shown by `source`.
    pub(crate) fn new(
        kind: UpstreamKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        UpstreamError {
            kind,
            source: Some(source.into()),
        }
    }

    /// No response headers within the route's `timeout`.
    pub(crate) fn timeout() -> Self {
        UpstreamError {
            kind: UpstreamKind::Timeout,
            source: None,
        }
    }

    /// A response the gateway refuses to pass on, for `why` (502).
    pub(crate) fn misbehaved(why: &'static str) -> Self {
        Self::new(UpstreamKind::BadResponse, Misbehaved(why))
    }
}

/// What the upstream did wrong in a response hyper accepted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Misbehaved(pub &'static str);

fn bearer_detail(e: &BearerError) -> String {
    match e {
        BearerError::Repeated => "Repeated Authorization header".into(),
        BearerError::NotAscii | BearerError::Malformed => {
            format!("Invalid token: {e}")
        }
    }
}

fn client_body_detail(f: &ClientFault) -> &'static str {
    match f {
        ClientFault::Malformed(_) => "Malformed request body.",
        ClientFault::Aborted(_) => "Client closed the request.",
    }
}

fn upstream_detail(kind: UpstreamKind) -> &'static str {
    match kind {
        UpstreamKind::Unavailable => "Upstream service unavailable.",
        UpstreamKind::ConnectTimeout | UpstreamKind::Timeout => "Upstream service timeout.",
        UpstreamKind::BadResponse => "Upstream service sent an invalid response.",
    }
}

impl GatewayError {
    /// The status code this error answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::BadRequest(_)
            | GatewayError::AmbiguousFraming
            | GatewayError::CorsDisallowed(_)
            | GatewayError::Bearer(BearerError::Repeated) => StatusCode::BAD_REQUEST,
            // No key was ever fetched: the gateway cannot verify, the
            // token may well be good (README "On the wire").
            GatewayError::InvalidToken(TokenError::KeysUnavailable) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayError::Bearer(BearerError::NotAscii | BearerError::Malformed)
            | GatewayError::NotAuthenticated
            | GatewayError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ClientBody(ClientFault::Malformed(_)) => StatusCode::BAD_REQUEST,
            GatewayError::ClientBody(ClientFault::Aborted(_)) => CLIENT_CLOSED_REQUEST,
            GatewayError::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            GatewayError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::RateLimitUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Upstream(u) => match u.kind {
                UpstreamKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                UpstreamKind::ConnectTimeout | UpstreamKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                UpstreamKind::BadResponse => StatusCode::BAD_GATEWAY,
            },
        }
    }

    /// Who caused it.
    pub(crate) fn blame(&self) -> Blame {
        match self {
            GatewayError::Upstream(_) => Blame::Upstream,
            GatewayError::NotImplemented
            | GatewayError::RateLimitUnavailable(_)
            | GatewayError::InvalidToken(TokenError::KeysUnavailable) => Blame::Gateway,
            GatewayError::NotFound
            | GatewayError::MethodNotAllowed(_)
            | GatewayError::BadRequest(_)
            | GatewayError::AmbiguousFraming
            | GatewayError::CorsDisallowed(_)
            | GatewayError::Bearer(_)
            | GatewayError::NotAuthenticated
            | GatewayError::InvalidToken(_)
            | GatewayError::Forbidden(_)
            | GatewayError::PayloadTooLarge
            | GatewayError::ClientBody(_)
            | GatewayError::RateLimited(_) => Blame::Client,
        }
    }

    /// The client-facing `detail` (the `Display` text; the cause stays in
    /// `source()` for the log).
    pub(crate) fn detail(&self) -> String {
        match self {
            GatewayError::InvalidToken(TokenError::KeysUnavailable) => {
                "Token verification is unavailable: the signing keys could not be fetched yet."
                    .to_owned()
            }
            _ => self.to_string(),
        }
    }

    /// The response: status, JSON body, and the headers the status needs
    /// (`Allow`, `WWW-Authenticate`, `Connection: close`).
    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let mut resp = json_response(self.status(), &self.detail());
        let headers = resp.headers_mut();
        match &self {
            GatewayError::MethodNotAllowed(allow) => {
                headers.insert(ALLOW, allow.clone());
            }
            GatewayError::AmbiguousFraming
            | GatewayError::ClientBody(ClientFault::Malformed(_)) => {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            GatewayError::NotAuthenticated => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            GatewayError::Bearer(BearerError::Repeated) => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_request\", error_description=\"repeated Authorization header\""),
                );
            }
            GatewayError::Bearer(e) => {
                headers.insert(WWW_AUTHENTICATE, invalid_token_challenge(&e.to_string()));
            }
            // A 503: nothing is wrong with the token as far as we know.
            GatewayError::InvalidToken(TokenError::KeysUnavailable) => {}
            GatewayError::InvalidToken(e) => {
                headers.insert(WWW_AUTHENTICATE, invalid_token_challenge(&e.to_string()));
            }
            GatewayError::NotFound
            | GatewayError::BadRequest(_)
            | GatewayError::CorsDisallowed(_)
            | GatewayError::Forbidden(_)
            | GatewayError::PayloadTooLarge
            | GatewayError::ClientBody(ClientFault::Aborted(_))
            | GatewayError::NotImplemented
            | GatewayError::RateLimitUnavailable(_)
            | GatewayError::Upstream(_) => {}
            GatewayError::RateLimited(r) => {
                headers.insert(http::header::RETRY_AFTER, r.retry_after.clone());
                headers.insert(&RATELIMIT_POLICY, r.policy.clone());
                headers.insert(&RATELIMIT, r.limit.clone());
            }
        }
        resp
    }
}

/// `Bearer error="invalid_token", error_description="…"` (RFC 6750 §3),
/// with the description reduced to the characters a quoted-string may
/// hold (RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E).
pub(crate) fn invalid_token_challenge(description: &str) -> HeaderValue {
    let clean = quotable(description, 200, '\'');
    HeaderValue::try_from(format!(
        "Bearer error=\"invalid_token\", error_description=\"{clean}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
}

/// The first `max` characters of `s`, each that a quoted-string cannot hold
/// unescaped replaced by `replacement`: what remains is printable ASCII
/// without `"` and `\` (RFC 6750 §3, `error_description`: %x20-21 /
/// %x23-5B / %x5D-7E; RFC 9110 §5.6.4 qdtext without HTAB and obs-text), so
/// it can go between quotes in a header or a log line as it is. The one
/// rule for the `WWW-Authenticate` challenge and for `auth::clean`.
pub(crate) fn quotable(s: &str, max: usize, replacement: char) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                replacement
            }
        })
        .collect()
}

/// A JSON `{"detail": …}` response.
pub(crate) fn json_response(status: StatusCode, detail: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "detail": detail }).to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_contract() {
        let cases: Vec<(GatewayError, u16, &str)> = vec![
            (GatewayError::NotFound, 404, "Not Found"),
            (GatewayError::NotAuthenticated, 401, "Not authenticated"),
            (
                GatewayError::CorsDisallowed(RefusedOrigin::of(None)),
                400,
                "Disallowed CORS origin",
            ),
            (
                GatewayError::NotImplemented,
                501,
                "No upstream is configured for this route.",
            ),
            (
                UpstreamError::new(UpstreamKind::Unavailable, Misbehaved("refused")).into(),
                503,
                "Upstream service unavailable.",
            ),
            (
                UpstreamError::misbehaved("reset").into(),
                502,
                "Upstream service sent an invalid response.",
            ),
            (
                UpstreamError::timeout().into(),
                504,
                "Upstream service timeout.",
            ),
            (
                UpstreamError::new(UpstreamKind::ConnectTimeout, Misbehaved("connect")).into(),
                504,
                "Upstream service timeout.",
            ),
            (
                GatewayError::PayloadTooLarge,
                413,
                "Request body too large.",
            ),
            (
                ClientFault::Malformed("invalid chunk size".into()).into(),
                400,
                "Malformed request body.",
            ),
            (
                ClientFault::Aborted("unexpected EOF".into()).into(),
                499,
                "Client closed the request.",
            ),
            (
                BearerError::Repeated.into(),
                400,
                "Repeated Authorization header",
            ),
            (
                BearerError::NotAscii.into(),
                401,
                "Invalid token: the bearer token holds characters outside visible ASCII",
            ),
            (
                TokenError::BadSignature.into(),
                401,
                "Invalid token: signature is invalid",
            ),
        ];
        for (err, status, detail) in cases {
            if status < 500 {
                assert_eq!(err.blame(), Blame::Client, "{err:?}");
            }
            assert_eq!(err.status().as_u16(), status);
            assert_eq!(err.detail(), detail);
        }
    }

    #[test]
    fn the_log_chain_keeps_the_cause_and_the_detail_once() {
        let e: GatewayError = TokenError::BadSignature.into();
        assert_eq!(cause_chain(&e), "Invalid token: signature is invalid");
        let e: GatewayError = UpstreamError::misbehaved("upstream switched protocols").into();
        assert_eq!(
            cause_chain(&e),
            "Upstream service sent an invalid response.: upstream switched protocols"
        );
        let e: GatewayError = ClientFault::Malformed("invalid chunk size".into()).into();
        assert_eq!(
            cause_chain(&e),
            "Malformed request body.: invalid chunk size"
        );
    }

    #[test]
    fn quotable_keeps_only_what_a_quoted_string_may_hold() {
        for (input, max, replacement, want) in [
            ("plain text", 80, '?', "plain text"),
            ("a \"quote\" and \\", 80, '?', "a ?quote? and ?"),
            ("tab\there\r\n", 80, '\'', "tab'here''"),
            ("caf\u{e9} \u{1F600}", 80, '?', "caf? ?"),
            ("\u{7f}del", 80, '?', "?del"),
            (" !#[]~", 80, '?', " !#[]~"),
            ("abcdef", 3, '?', "abc"),
            ("\"\"\"\"", 2, '?', "??"),
            ("", 80, '?', ""),
        ] {
            assert_eq!(quotable(input, max, replacement), want, "{input:?}");
        }
    }

    #[test]
    fn challenge_is_a_valid_quoted_string() {
        let v = invalid_token_challenge("bad \"quote\" and \\ and \r\n and é");
        let s = v.to_str().unwrap();
        assert!(
            s.starts_with(
                "Bearer error=\"invalid_token\", error_description=\"bad 'quote' and ' and '' and '"
            ),
            "{s}"
        );
    }
}

/// The `Origin` of a refused preflight, for the operator's log line (the
/// client's detail stays `Disallowed CORS origin`). Cut to 200 characters
/// and printed with Rust's escapes, so a hostile header cannot flood or
/// forge the log.
#[derive(Debug, thiserror::Error)]
#[error("origin {0:?} is not allowed on this route")]
pub(crate) struct RefusedOrigin(String);

impl RefusedOrigin {
    /// From the request's `Origin` header, if any.
    pub(crate) fn of(origin: Option<&HeaderValue>) -> Self {
        let text = origin.map_or(String::new(), |v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(200)
                .collect()
        });
        RefusedOrigin(text)
    }
}

// ---- Error kinds raised below the pipeline -------------------------------
// Defined here, in the bottom layer, so that `GatewayError` can keep them as
// typed sources while `auth` and `proxy` only import downward (see
// tests/layering.rs); each module re-exports its own.

/// Why a token was refused. `Display` is the short reason sent as the RFC
/// 6750 `error_description`: it never holds the token or a secret, and is
/// printable ASCII without `"` or `\` (values from the token are quoted with
/// `'` and cleaned).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Over [`MAX_TOKEN_LEN`] bytes.
    #[error("token is larger than 16 KiB")]
    TooLarge,
    /// Not three base64url parts of JSON, or a claim of the wrong type.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg: none` in any casing.
    #[error("algorithm none is not allowed: the token is unsigned")]
    Unsigned,
    /// The header's algorithm is unknown or not in the allowlist.
    #[error("algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    /// A `crit` header: an extension we do not implement must not be ignored.
    #[error("header parameter crit is not supported")]
    Critical,
    /// No JWKS key has this `kid` (even after a re-fetch).
    #[error("unknown key id '{0}'")]
    UnknownKid(String),
    /// A token without `kid` and no key of its algorithm.
    #[error("no key for algorithm {0}")]
    NoKeyForAlgorithm(String),
    /// The key named by `kid` is for another algorithm.
    #[error("key '{kid}' is for {key}, not {alg}")]
    KeyAlgorithmMismatch {
        /// The key id (cleaned).
        kid: String,
        /// The algorithm(s) the key allows.
        key: String,
        /// The token header's algorithm.
        alg: String,
    },
    /// The JWKS has never been fetched successfully.
    #[error("signing keys are not available yet (the JWKS could not be fetched)")]
    KeysUnavailable,
    /// The signature does not match.
    #[error("signature is invalid")]
    BadSignature,
    /// Past `exp` (plus leeway).
    #[error("token expired {} ago", human_span(*ago))]
    Expired {
        /// Seconds since `exp`.
        ago: u64,
    },
    /// Before `nbf` (less leeway).
    #[error("token is not valid yet: it becomes valid in {}", human_span(*wait))]
    NotYetValid {
        /// Seconds until `nbf`.
        wait: u64,
    },
    /// `aud` is none of the accepted audiences.
    #[error("audience mismatch: expected {expected}{}", found.as_ref().map(|f| format!(", token has {f}")).unwrap_or_default())]
    Audience {
        /// Accepted audiences, quoted with `'`.
        expected: String,
        /// The token's `aud` (cleaned), when it has one.
        found: Option<String>,
    },
    /// `iss` is a string other than the configured issuer.
    #[error("issuer mismatch: expected {expected}{}", found.as_ref().map(|f| format!(", token has {f}")).unwrap_or_default())]
    Issuer {
        /// The configured issuer, quoted.
        expected: String,
        /// The token's `iss` (cleaned), when it has one.
        found: Option<String>,
    },
    /// `iss` is not one string (a list, even one holding the configured
    /// issuer, or a number): it must equal the issuer exactly.
    #[error("issuer must be a single string equal to {expected}, token has {found}")]
    IssuerNotString {
        /// The configured issuer, quoted.
        expected: String,
        /// The token's `iss` (cleaned).
        found: String,
    },
    /// A required claim is absent, `null`, or an empty or whitespace-only
    /// string.
    #[error("required claim {0} is missing")]
    MissingClaim(String),
    /// A Supabase project key (anon or service_role) where a user token is
    /// needed: it has a role but no `sub`.
    #[error("token is the Supabase {0} key, not a user's token (it has no sub)")]
    ProjectKey(String),
}

/// Why the `Authorization` header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// The header appears more than once: which one counts is ambiguous
    /// (400, `WWW-Authenticate: Bearer error="invalid_request"`).
    #[error("the Authorization header is repeated")]
    Repeated,
    /// A Bearer credential that is not visible ASCII (401 invalid_token).
    #[error("the bearer token holds characters outside visible ASCII")]
    NotAscii,
    /// A value that starts with `Bearer` (any case) but is not exactly
    /// `Bearer <token>`: a tab or two spaces after the scheme, no token,
    /// anything after it (401 invalid_token, RFC 6750 §3.1). Refused rather
    /// than passed on as "not a bearer token", since an upstream that
    /// parses more leniently would read a credential nobody verified.
    #[error("the Authorization header is not of the form \"Bearer <token>\"")]
    Malformed,
}

/// Why a route's injection failed; `Display` is the 403 detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// A `required = true` claim is absent, `null`, empty or whitespace.
    #[error("required claim \"{claim}\" is missing")]
    Missing {
        /// The claim path as configured.
        claim: String,
    },
    /// The claim's value cannot be a header value.
    #[error("claim \"{claim}\" is not injectable: {reason}")]
    NotInjectable {
        /// The claim path as configured.
        claim: String,
        /// Why, e.g. "not printable ASCII", "it is an object", "it has
        /// leading or trailing whitespace".
        reason: &'static str,
    },
}

/// How a client's request body broke; each holds hyper's error chain as
/// text (the record is shared by the request's two bodies and read after
/// hyper's error is gone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClientFault {
    /// Framing the HTTP parser refused (a malformed chunk size, an
    /// LF-only chunk line, a chunk extension over hyper's limit): 400.
    #[error("{0}")]
    Malformed(String),
    /// The client went away or reset its stream mid-upload: logged as 499,
    /// as nginx logs a client that closed its request.
    #[error("{0}")]
    Aborted(String),
}

/// `outer: inner: innermost`, for logs.
pub(crate) fn cause_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

/// "5 minutes", "1 hour", "3 days": a span for people, rounded down to its
/// largest unit.
pub(crate) fn human_span(secs: u64) -> String {
    let (n, unit) = match secs {
        0..=119 => (secs, "second"),
        120..=7_199 => (secs / 60, "minute"),
        7_200..=172_799 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}
