//! The gateway's own error kinds, and the one place they become a status
//! code and a `{"detail": …}` body. Each kind also says who caused it
//! (client, upstream or gateway) for the log.

use std::fmt;

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

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

/// Everything the gateway itself answers with an error status.
#[derive(Debug)]
pub enum GatewayError {
    /// No route matches the path (404).
    NotFound,
    /// The route does not allow the method (405, with `Allow`).
    MethodNotAllowed(HeaderValue),
    /// A malformed request the gateway refuses to forward (400).
    BadRequest(&'static str),
    /// `Content-Length` together with `Transfer-Encoding` (RFC 9112 §6.3:
    /// a request-smuggling vector); answered 400 and the connection closed.
    AmbiguousFraming,
    /// A preflight from an origin the route does not allow (400).
    CorsDisallowed,
    /// More than one `Authorization` header (400, RFC 6750 invalid_request).
    RepeatedAuthorization,
    /// Auth required and no bearer token (401).
    NotAuthenticated,
    /// The token was refused (401, RFC 6750 invalid_token); the reason is
    /// safe to show (it never contains the token).
    InvalidToken(String),
    /// A valid token without a required or injectable claim (403).
    Forbidden(String),
    /// The request body is over `max_body` (413).
    PayloadTooLarge,
    /// The client's body broke the HTTP framing (a malformed chunk size,
    /// an LF-only chunk line, a chunk extension over the parser's limit):
    /// 400, the connection closed. Holds the parser's reason for the log.
    MalformedBody(String),
    /// The client went away mid-upload. Nobody reads the answer; it is
    /// logged as 499, nginx's status for a client that closed its request.
    ClientAborted(String),
    /// The route has no upstream (501).
    NotImplemented,
    /// The upstream could not be connected to (503).
    Unavailable(String),
    /// The upstream sent no valid response (502).
    BadGateway(String),
    /// No response headers within the timeout (504).
    Timeout,
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
            | GatewayError::RepeatedAuthorization => StatusCode::BAD_REQUEST,
            GatewayError::NotAuthenticated | GatewayError::InvalidToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            GatewayError::ClientAborted(_) => CLIENT_CLOSED_REQUEST,
            GatewayError::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Who caused it.
    pub fn blame(&self) -> Blame {
        match self {
            GatewayError::Unavailable(_) | GatewayError::BadGateway(_) | GatewayError::Timeout => {
                Blame::Upstream
            }
            GatewayError::NotImplemented => Blame::Gateway,
            _ => Blame::Client,
        }
    }

    /// The client-facing `detail`.
    pub fn detail(&self) -> String {
        match self {
            GatewayError::NotFound => "Not Found".into(),
            GatewayError::MethodNotAllowed(_) => "Method Not Allowed".into(),
            GatewayError::BadRequest(why) => (*why).into(),
            GatewayError::AmbiguousFraming => {
                "Ambiguous message framing: Content-Length with Transfer-Encoding.".into()
            }
            GatewayError::CorsDisallowed => "Disallowed CORS origin".into(),
            GatewayError::RepeatedAuthorization => "Repeated Authorization header".into(),
            GatewayError::NotAuthenticated => "Not authenticated".into(),
            GatewayError::InvalidToken(why) => format!("Invalid token: {why}"),
            GatewayError::Forbidden(why) => why.clone(),
            GatewayError::PayloadTooLarge => "Request body too large.".into(),
            GatewayError::MalformedBody(_) => "Malformed request body.".into(),
            GatewayError::ClientAborted(_) => "Client closed the request.".into(),
            GatewayError::NotImplemented => "No upstream is configured for this route.".into(),
            GatewayError::Unavailable(_) => "Upstream service unavailable.".into(),
            GatewayError::BadGateway(_) => "Upstream service sent an invalid response.".into(),
            GatewayError::Timeout => "Upstream service timeout.".into(),
        }
    }

    /// The cause for the operator's log (may hold more than the detail).
    pub fn cause(&self) -> Option<&str> {
        match self {
            // A token's or claim's reason is in the detail already.
            GatewayError::Unavailable(c)
            | GatewayError::BadGateway(c)
            | GatewayError::MalformedBody(c)
            | GatewayError::ClientAborted(c) => Some(c),
            _ => None,
        }
    }

    /// The response: status, JSON body, and the headers the status needs
    /// (`Allow`, `WWW-Authenticate`).
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut resp = json_response(self.status(), &self.detail());
        let headers = resp.headers_mut();
        match &self {
            GatewayError::MethodNotAllowed(allow) => {
                headers.insert(ALLOW, allow.clone());
            }
            GatewayError::AmbiguousFraming | GatewayError::MalformedBody(_) => {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            GatewayError::NotAuthenticated => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            GatewayError::RepeatedAuthorization => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_request\", error_description=\"repeated Authorization header\""),
                );
            }
            GatewayError::InvalidToken(why) => {
                headers.insert(WWW_AUTHENTICATE, invalid_token_challenge(why));
            }
            _ => {}
        }
        resp
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause() {
            Some(c) => write!(f, "{}: {c}", self.detail()),
            None => f.write_str(&self.detail()),
        }
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
                GatewayError::Unavailable("refused".into()),
                503,
                "Upstream service unavailable.",
            ),
            (
                GatewayError::BadGateway("reset".into()),
                502,
                "Upstream service sent an invalid response.",
            ),
            (GatewayError::Timeout, 504, "Upstream service timeout."),
            (
                GatewayError::PayloadTooLarge,
                413,
                "Request body too large.",
            ),
            (
                GatewayError::MalformedBody("invalid chunk size".into()),
                400,
                "Malformed request body.",
            ),
            (
                GatewayError::ClientAborted("unexpected EOF".into()),
                499,
                "Client closed the request.",
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
