//! Sending a request upstream and classifying what went wrong.

use std::error::Error as StdError;
use std::time::Duration;

use futures_util::FutureExt;
use http::Request;
use http::uri::{Authority, Scheme};

use super::body::{ClientFault, ClientFaultRecord, RequestBody, RequestBodyError};
use super::client::{Sent, UpstreamClient};
use super::connect::UpstreamCapReached;
use super::pool::SendError;
pub(crate) use crate::error::cause_chain;
use crate::error::{GatewayError, UpstreamError, UpstreamKind};
use crate::timer::{ConnTimer, Timeout};

/// Sends `req` (origin-form URI) to `scheme://authority` and waits at most
/// `timeout` for the response headers, on the client connection's `timer`
/// when it has one for this request (HTTP/1; `crate::timer`). The timeout
/// does not cover the response body, which streams afterwards.
/// `fault` is the record the request body was given
/// (`RequestBody::new`): when the client's body broke, the
/// failure is the client's whatever hyper's client error says (it may
/// report only the connection it then gave up).
///
/// A combinator rather than an `async fn`, here and in the client and pool
/// below it: an `async fn` keeps its arguments (the request, about 300
/// bytes) beside the future it hands them to, at every level, and the
/// whole chain sits in each connection's in-flight request slot.
pub(crate) fn send<'a>(
    client: &'a UpstreamClient,
    (scheme, authority): (&Scheme, &Authority),
    req: Request<RequestBody>,
    (timeout, timer): (Duration, Option<&'a ConnTimer>),
    fault: &'a ClientFaultRecord,
) -> impl Future<Output = Result<Sent, GatewayError>> + 'a {
    let sent = client.send(scheme, authority, req);
    match timer {
        Some(timer) => Timeout::on(timer, timeout, sent),
        None => Timeout::own(timeout, sent),
    }
    .map(move |sent| match sent {
        Err(_) => Err(UpstreamError::timeout().into()),
        Ok(Ok(sent)) => Ok(sent),
        Ok(Err(e)) => match (classify(e), fault.get()) {
            (GatewayError::Upstream(u), Some(f))
                if matches!(
                    u.kind,
                    UpstreamKind::BadResponse | UpstreamKind::Unavailable
                ) =>
            {
                Err(f.clone().into())
            }
            (err, _) => Err(err),
        },
    })
}

/// Maps a client error to the status the contract gives it, from the
/// error's types alone: 503 when no connection could be made (refused,
/// DNS, the upstream's connection cap reached for `connect_timeout`), 504
/// when connecting timed out (the connector's `io::ErrorKind::TimedOut`),
/// 413 when our body limit stopped the upload, 400 when the client's body
/// was malformed and 499 when the client left mid-upload (hyper's client
/// wraps the client's body error, found here by downcasting), 502 for
/// everything the upstream did wrong after connecting. The error is kept
/// as the cause, for the log.
pub(crate) fn classify(e: SendError) -> GatewayError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    let mut timed_out = false;
    while let Some(s) = source {
        match s.downcast_ref::<RequestBodyError>() {
            Some(RequestBodyError::TooLarge { .. }) => return GatewayError::PayloadTooLarge,
            Some(RequestBodyError::Client(client)) => return ClientFault::of(client).into(),
            None => {}
        }
        if s.downcast_ref::<UpstreamCapReached>().is_some() {
            return UpstreamError::new(UpstreamKind::Unavailable, e).into();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    let kind = match (e.is_connect(), timed_out) {
        (true, true) => UpstreamKind::ConnectTimeout,
        (true, false) => UpstreamKind::Unavailable,
        (false, _) => UpstreamKind::BadResponse,
    };
    UpstreamError::new(kind, e).into()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket, TcpStream};

    use super::*;

    /// What hyper-util's client reports for a GET to `addr`, connecting
    /// for at most `connect_timeout`.
    async fn error_for(addr: SocketAddr, connect_timeout: Duration) -> GatewayError {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(http);
        let req = Request::get(format!("http://{addr}/"))
            .body(Empty::new())
            .unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), client.request(req))
            .await
            .expect("the client gave up in time");
        classify(res.expect_err("the request fails").into())
    }

    fn kind(e: &GatewayError) -> UpstreamKind {
        match e {
            GatewayError::Upstream(u) => u.kind,
            other => panic!("not an upstream error: {other:?}"),
        }
    }

    /// A server that answers each connection with `answer` (or closes it
    /// with a reset when `None`).
    async fn raw_server(answer: Option<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                match answer {
                    Some(a) => {
                        let _ = s.write_all(a).await;
                    }
                    None => {
                        let _ = s.set_zero_linger();
                    }
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn refused_connection_is_unavailable_and_keeps_hyper_error() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let e = error_for(addr, Duration::from_secs(2)).await;
        assert_eq!(kind(&e), UpstreamKind::Unavailable);
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        let chain = cause_chain(&e);
        assert!(
            chain.starts_with("Upstream service unavailable.: client error (Connect)"),
            "{chain}"
        );
    }

    #[tokio::test]
    async fn connect_timeout_is_a_gateway_timeout() {
        // A listener whose accept queue is full: Linux drops further SYNs,
        // so connecting hangs until the connector's timeout.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
            {
                fillers.push(s);
            }
        }
        let e = error_for(addr, Duration::from_millis(300)).await;
        assert_eq!(kind(&e), UpstreamKind::ConnectTimeout, "{e:?}");
        assert_eq!(e.status(), http::StatusCode::GATEWAY_TIMEOUT);
        drop((listener, fillers));
    }

    #[tokio::test]
    async fn answers_that_are_not_http_and_resets_are_bad_responses() {
        for answer in [Some(&b"NOT HTTP AT ALL\r\n\r\n"[..]), None] {
            let addr = raw_server(answer).await;
            let e = error_for(addr, Duration::from_secs(2)).await;
            assert_eq!(kind(&e), UpstreamKind::BadResponse, "{answer:?}: {e:?}");
            assert_eq!(e.status(), http::StatusCode::BAD_GATEWAY);
            assert_eq!(e.blame(), crate::error::Blame::Upstream);
        }
    }
}
