//! The gateway's own error kinds, and the one place they become a status
//! code and a `{"detail": …}` body. Each kind also says who caused it
//! (client, upstream or gateway) for the log.

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::auth;
use crate::proxy::body::ClientFault;

/// 499 Client Closed Request: not an HTTP status but nginx's log code
/// for a client that went away before the answer, kept for the same
/// dashboards.
pub const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(s) => s,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// Who a failed request is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The request was wrong (4xx).
    Client,
    /// The upstream failed (5xx from 502/503/504).
    Upstream,
    /// The gateway's configuration or code (500/501).
    Gateway,
}

impl Blame {
    /// Lower-case word for logs.
    pub fn as_str(self) -> &'static str {
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
pub enum GatewayError {
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
    CorsDisallowed,
    /// The `Authorization` header cannot be used: repeated (400, RFC 6750
    /// invalid_request), or a Bearer credential that is not `Bearer
    /// <b64token>` (401, invalid_token).
    #[error("{}", bearer_detail(.0))]
    Bearer(#[from] auth::BearerError),
    /// Auth required and no bearer token (401).
    #[error("Not authenticated")]
    NotAuthenticated,
    /// The token was refused (401, RFC 6750 invalid_token); the reason is
    /// safe to show (it never contains the token).
    #[error("Invalid token: {0}")]
    InvalidToken(#[from] auth::TokenError),
    /// A valid token without a required or injectable claim (403).
    #[error("{0}")]
    Forbidden(#[from] auth::InjectError),
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
}

impl From<ClientFault> for GatewayError {
    fn from(fault: ClientFault) -> Self {
        GatewayError::ClientBody(fault)
    }
}

/// How the upstream failed; decided from the error's types (see
/// `proxy::forward::classify`), never from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
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
pub struct UpstreamError {
    /// What the status is decided from.
    pub kind: UpstreamKind,
    /// hyper's error, or what the upstream did wrong.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl UpstreamError {
    /// An upstream failure of `kind` shown by `source`.
    pub fn new(
        kind: UpstreamKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        UpstreamError {
            kind,
            source: Some(source.into()),
        }
    }

    /// No response headers within the route's `timeout`.
    pub fn timeout() -> Self {
        UpstreamError {
            kind: UpstreamKind::Timeout,
            source: None,
        }
    }

    /// A response the gateway refuses to pass on, for `why` (502).
    pub fn misbehaved(why: &'static str) -> Self {
        Self::new(UpstreamKind::BadResponse, Misbehaved(why))
    }
}

/// What the upstream did wrong in a response hyper accepted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Misbehaved(pub &'static str);

fn bearer_detail(e: &auth::BearerError) -> String {
    match e {
        auth::BearerError::Repeated => "Repeated Authorization header".into(),
        auth::BearerError::NotAscii | auth::BearerError::Malformed => {
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
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::BadRequest(_)
            | GatewayError::AmbiguousFraming
            | GatewayError::CorsDisallowed
            | GatewayError::Bearer(auth::BearerError::Repeated) => StatusCode::BAD_REQUEST,
            GatewayError::Bearer(auth::BearerError::NotAscii | auth::BearerError::Malformed)
            | GatewayError::NotAuthenticated
            | GatewayError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ClientBody(ClientFault::Malformed(_)) => StatusCode::BAD_REQUEST,
            GatewayError::ClientBody(ClientFault::Aborted(_)) => CLIENT_CLOSED_REQUEST,
            GatewayError::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            GatewayError::Upstream(u) => match u.kind {
                UpstreamKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                UpstreamKind::ConnectTimeout | UpstreamKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                UpstreamKind::BadResponse => StatusCode::BAD_GATEWAY,
            },
        }
    }

    /// Who caused it.
    pub fn blame(&self) -> Blame {
        match self {
            GatewayError::Upstream(_) => Blame::Upstream,
            GatewayError::NotImplemented => Blame::Gateway,
            GatewayError::NotFound
            | GatewayError::MethodNotAllowed(_)
            | GatewayError::BadRequest(_)
            | GatewayError::AmbiguousFraming
            | GatewayError::CorsDisallowed
            | GatewayError::Bearer(_)
            | GatewayError::NotAuthenticated
            | GatewayError::InvalidToken(_)
            | GatewayError::Forbidden(_)
            | GatewayError::PayloadTooLarge
            | GatewayError::ClientBody(_) => Blame::Client,
        }
    }

    /// The client-facing `detail` (the `Display` text; the cause stays in
    /// `source()` for the log).
    pub fn detail(&self) -> String {
        self.to_string()
    }

    /// The response: status, JSON body, and the headers the status needs
    /// (`Allow`, `WWW-Authenticate`, `Connection: close`).
    pub fn into_response(self) -> Response<Full<Bytes>> {
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
            GatewayError::Bearer(auth::BearerError::Repeated) => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_request\", error_description=\"repeated Authorization header\""),
                );
            }
            GatewayError::Bearer(e) => {
                headers.insert(WWW_AUTHENTICATE, invalid_token_challenge(&e.to_string()));
            }
            GatewayError::InvalidToken(e) => {
                headers.insert(WWW_AUTHENTICATE, invalid_token_challenge(&e.to_string()));
            }
            GatewayError::NotFound
            | GatewayError::BadRequest(_)
            | GatewayError::CorsDisallowed
            | GatewayError::Forbidden(_)
            | GatewayError::PayloadTooLarge
            | GatewayError::ClientBody(ClientFault::Aborted(_))
            | GatewayError::NotImplemented
            | GatewayError::Upstream(_) => {}
        }
        resp
    }
}

/// `Bearer error="invalid_token", error_description="…"` (RFC 6750 §3),
/// with the description reduced to the characters a quoted-string may
/// hold (RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E).
pub fn invalid_token_challenge(description: &str) -> HeaderValue {
    let clean: String = description
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '\''
            }
        })
        .take(200)
        .collect();
    HeaderValue::try_from(format!(
        "Bearer error=\"invalid_token\", error_description=\"{clean}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
}

/// A JSON `{"detail": …}` response.
pub fn json_response(status: StatusCode, detail: &str) -> Response<Full<Bytes>> {
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
            (GatewayError::CorsDisallowed, 400, "Disallowed CORS origin"),
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
                auth::BearerError::Repeated.into(),
                400,
                "Repeated Authorization header",
            ),
            (
                auth::BearerError::NotAscii.into(),
                401,
                "Invalid token: the bearer token holds characters outside visible ASCII",
            ),
            (
                auth::TokenError::BadSignature.into(),
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
        let e: GatewayError = auth::TokenError::BadSignature.into();
        assert_eq!(
            crate::proxy::forward::cause_chain(&e),
            "Invalid token: signature is invalid"
        );
        let e: GatewayError = UpstreamError::misbehaved("upstream switched protocols").into();
        assert_eq!(
            crate::proxy::forward::cause_chain(&e),
            "Upstream service sent an invalid response.: upstream switched protocols"
        );
        let e: GatewayError = ClientFault::Malformed("invalid chunk size".into()).into();
        assert_eq!(
            crate::proxy::forward::cause_chain(&e),
            "Malformed request body.: invalid chunk size"
        );
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
