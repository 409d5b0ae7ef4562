//! Sending a request upstream and classifying what went wrong.

use std::error::Error as StdError;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;

use super::body::{ClientFault, ClientFaultRecord, RequestBody, RequestBodyError};
use super::client::{UpstreamCapReached, UpstreamClient};
use crate::error::GatewayError;

/// Sends `req` and waits at most `timeout` for the response headers. The
/// timeout does not cover the response body, which streams afterwards.
/// `fault` is the record the request body was given
/// (`RequestBody::record_faults`): when the client's body broke, the
/// failure is the client's whatever hyper's client error says (it may
/// report only the connection it then gave up).
pub async fn send(
    client: &UpstreamClient,
    req: Request<RequestBody>,
    timeout: Duration,
    fault: &ClientFaultRecord,
) -> Result<Response<Incoming>, GatewayError> {
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(GatewayError::Timeout),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => match (classify(&e), fault.get()) {
            (GatewayError::BadGateway(_) | GatewayError::Unavailable(_), Some(f)) => {
                Err(client_error(f.clone()))
            }
            (err, _) => Err(err),
        },
    }
}

/// The gateway's answer to a broken client body.
fn client_error(fault: ClientFault) -> GatewayError {
    match fault {
        ClientFault::Malformed(why) => GatewayError::MalformedBody(why),
        ClientFault::Aborted(why) => GatewayError::ClientAborted(why),
    }
}

/// Maps a client error to the status the contract gives it: 503 when no
/// connection could be made (refused, DNS, the upstream's connection cap
/// reached for `connect_timeout`), 504 when connecting timed out,
/// 413 when our body limit stopped the upload, 400 when the client's body
/// was malformed and 499 when the client left mid-upload (hyper's client
/// wraps the client's body error, found here by downcasting), 502 for
/// everything the upstream did wrong after connecting.
pub fn classify(e: &hyper_util::client::legacy::Error) -> GatewayError {
    let chain = cause_chain(e);
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    let mut timed_out = false;
    while let Some(s) = source {
        match s.downcast_ref::<RequestBodyError>() {
            Some(RequestBodyError::TooLarge { .. }) => return GatewayError::PayloadTooLarge,
            Some(RequestBodyError::Client(client)) => {
                return client_error(ClientFault::of(client));
            }
            None => {}
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
