//! Sending a request upstream and classifying what went wrong.

use std::error::Error as StdError;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;

use super::body::{RequestBody, RequestBodyError};
use super::client::{UpstreamCapReached, UpstreamClient};
use crate::error::GatewayError;

/// Sends `req` and waits at most `timeout` for the response headers. The
/// timeout does not cover the response body, which streams afterwards.
pub async fn send(
    client: &UpstreamClient,
    req: Request<RequestBody>,
    timeout: Duration,
) -> Result<Response<Incoming>, GatewayError> {
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(GatewayError::Timeout),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(classify(&e)),
    }
}

/// Maps a client error to the status the contract gives it: 503 when no
/// connection could be made (refused, DNS, the upstream's connection cap
/// reached for `connect_timeout`), 504 when connecting timed out,
/// 413 when our body limit stopped the upload, 502 for everything the
/// upstream did wrong after connecting.
pub fn classify(e: &hyper_util::client::legacy::Error) -> GatewayError {
    let chain = cause_chain(e);
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    let mut timed_out = false;
    while let Some(s) = source {
        if let Some(RequestBodyError::TooLarge { .. }) = s.downcast_ref::<RequestBodyError>() {
            return GatewayError::PayloadTooLarge;
        }
        if s.downcast_ref::<UpstreamCapReached>().is_some() {
            return GatewayError::Unavailable(chain);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    if e.is_connect() {
        if timed_out || chain.contains("timed out") || chain.contains("timeout") {
            GatewayError::Timeout
        } else {
            GatewayError::Unavailable(chain)
        }
    } else {
        GatewayError::BadGateway(chain)
    }
}

/// `outer: inner: innermost`, for logs.
pub fn cause_chain(e: &(dyn StdError + 'static)) -> String {
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
