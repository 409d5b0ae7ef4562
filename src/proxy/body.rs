//! Body wrappers for the streaming path. Neither buffers: each passes
//! frames through as they come.
//!
//! - `RequestBody` counts request bytes against `max_body` while
//!   streaming, so a chunked upload over the cap fails with 413 without
//!   being held in memory; strips identity names from request trailers as
//!   from the head; and records in a `ClientFaultRecord` when the client's
//!   body broke, so that the failure is put on the client and not on the
//!   upstream, even when hyper reports it only as a lost connection.
//! - `ResponseBody` is either the upstream's body, passed through frame by
//!   frame (logging when the upstream dies mid-body, which aborts the
//!   client's response rather than ending it as if complete), or a small
//!   body the gateway made itself.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::pool::Lease;

pub(crate) use crate::error::ClientFault;

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestBodyError {
    /// The body passed `max_body`.
    #[error("request body is over the {limit}-byte limit")]
    TooLarge {
        /// The configured cap.
        limit: u64,
    },
    /// The client's connection failed while sending.
    #[error("client body: {0}")]
    Client(#[from] hyper::Error),
}

impl ClientFault {
    /// Classifies an error of the client's body as hyper reports it: the
    /// HTTP/1.1 body decoder fails with `InvalidData`/`InvalidInput` on
    /// framing it refuses and `UnexpectedEof` on a body cut short; any
    /// other failure (a reset, an HTTP/2 `RST_STREAM`) is the client
    /// leaving.
    pub(crate) fn of(e: &hyper::Error) -> ClientFault {
        let chain = crate::error::cause_chain(e);
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>()
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
                )
            {
                return ClientFault::Malformed(chain);
            }
            source = s.source();
        }
        if e.is_parse() {
            ClientFault::Malformed(chain)
        } else {
            ClientFault::Aborted(chain)
        }
    }
}

/// Shared between a request's `RequestBody` and its `UpstreamBody`: set
/// once, when the client's body fails. hyper's client reports a request
/// body that failed after the response head as a bare connection error on
/// the response body (and an HTTP/2 client's reset may drop the response
/// body unpolled); this is how that failure is put on the client, in one
/// log line, whichever side sees it first.
#[derive(Debug, Clone)]
pub(crate) struct ClientFaultRecord(Arc<FaultState>);

#[derive(Debug)]
struct FaultState {
    /// How the client's body broke, once it has.
    fault: OnceLock<ClientFault>,
    /// The response head is on its way: the request's log line will not
    /// carry the fault, so a line of its own must.
    responding: AtomicBool,
    /// That line has been written.
    reported: AtomicBool,
    /// Names the request in that line.
    request_id: HeaderValue,
    route: Arc<str>,
}

impl ClientFaultRecord {
    /// A record for the request `request_id` on `route`.
    pub(crate) fn new(request_id: HeaderValue, route: Arc<str>) -> Self {
        ClientFaultRecord(Arc::new(FaultState {
            fault: OnceLock::new(),
            responding: AtomicBool::new(false),
            reported: AtomicBool::new(false),
            request_id,
            route,
        }))
    }

    /// The fault, once the client's body has broken.
    pub(crate) fn get(&self) -> Option<&ClientFault> {
        self.0.fault.get()
    }

    fn set(&self, fault: ClientFault) {
        let _ = self.0.fault.set(fault);
        if self.0.responding.load(Ordering::Acquire) {
            self.report();
        }
    }

    fn responding(&self) {
        self.0.responding.store(true, Ordering::Release);
    }

    /// Logs a failure of the upstream's response body: the client's own
    /// body failure when it broke first (this is its consequence), else
    /// the upstream's.
    fn response_failed(&self, e: &hyper::Error) {
        if self.get().is_some() {
            self.report();
            return;
        }
        tracing::warn!(
            request_id = self.0.request_id.to_str().unwrap_or("-"),
            route = &*self.0.route,
            error = %e,
            blame = "upstream",
            "upstream failed mid-body; aborting the client's response"
        );
    }

    /// Logs the fault once, blaming the client, when there is one.
    fn report(&self) {
        let Some(fault) = self.get() else { return };
        if self.0.reported.swap(true, Ordering::AcqRel) {
            return;
        }
        let (ClientFault::Malformed(why) | ClientFault::Aborted(why)) = fault;
        tracing::info!(
            request_id = self.0.request_id.to_str().unwrap_or("-"),
            route = &*self.0.route,
            error = %why,
            blame = "client",
            "client's request body failed after the response began"
        );
    }
}

/// The client's request body on its way upstream; nothing at all for a
/// request that has none (most). hyper queues each upstream request in a
/// channel of its connection, in blocks of 32 slots allocated per
/// connection: with the body type one pointer wide that block is 8,224
/// bytes (jemalloc's 10 KiB size class) instead of 10,784 (its 12 KiB
/// one), about 2 MiB less under 1,000 connections (README "Performance").
#[derive(Debug)]
pub(crate) struct RequestBody(Option<Box<Streaming>>);

#[derive(Debug)]
struct Streaming {
    inner: Incoming,
    limit: Option<u64>,
    seen: u64,
    /// Names removed from request trailers (the injected identity names);
    /// `None` when the request cannot carry trailers.
    strip: Option<Arc<[HeaderName]>>,
    /// Where a failure of the client's body is recorded.
    fault: ClientFaultRecord,
}

impl RequestBody {
    /// Wraps `inner`, failing once more than `limit` bytes have passed,
    /// recording a failure of the client's body in `fault`.
    pub(crate) fn new(inner: Incoming, limit: Option<u64>, fault: ClientFaultRecord) -> Self {
        if inner.is_end_stream() {
            // Nothing will come: no frame to count, strip or fail.
            return RequestBody(None);
        }
        RequestBody(Some(Box::new(Streaming {
            inner,
            limit,
            seen: 0,
            strip: None,
            fault,
        })))
    }

    /// Also removes `names` (and their `_` spellings, as
    /// `headers::strip_forgeable` does for the head) from request
    /// trailers, which an HTTP/1.1 chunked or HTTP/2 client can send and
    /// an upstream may merge with the headers.
    pub(crate) fn strip_trailers(mut self, names: Arc<[HeaderName]>) -> Self {
        if let Some(body) = &mut self.0 {
            body.strip = Some(names);
        }
        self
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(this) = self.0.as_deref_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(limit)) = (f.data_ref(), this.limit) {
                    this.seen += data.len() as u64;
                    if this.seen > limit {
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit })));
                    }
                }
                let f = match f.into_trailers() {
                    Ok(mut trailers) => {
                        if let Some(strip) = &this.strip {
                            super::headers::strip_forgeable(&mut trailers, strip);
                        }
                        Frame::trailers(trailers)
                    }
                    Err(f) => f,
                };
                Poll::Ready(Some(Ok(f)))
            }
            Some(Err(e)) => {
                this.fault.set(ClientFault::of(&e));
                Poll::Ready(Some(Err(e.into())))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Some(b) => b.inner.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

/// The upstream's response body on its way to the client.
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    inner: Incoming,
    /// The request body's fate: when the client's body broke, a failure
    /// here is its consequence and is put on the client. It also names
    /// the request and route in this body's own log line.
    client_fault: ClientFaultRecord,
    /// The body ended (complete or failed) rather than being dropped.
    ended: bool,
    /// The upstream connection, back to its pool when the body ends whole.
    lease: Option<Lease<RequestBody>>,
}

impl UpstreamBody {
    /// Wraps an upstream body. `fault` is the request body's record: it is
    /// consulted before the upstream is blamed for a failure, and from now
    /// on the request body reports its own failure, as the request's log
    /// line has gone.
    pub(crate) fn new(inner: Incoming, fault: ClientFaultRecord) -> Self {
        fault.responding();
        UpstreamBody {
            inner,
            client_fault: fault,
            ended: false,
            lease: None,
        }
    }

    /// Returns the connection the body arrives on to its pool once the
    /// body has been read to its end (a body dropped before that closes
    /// the connection instead).
    pub(crate) fn lease(mut self, lease: Option<Lease<RequestBody>>) -> Self {
        self.lease = lease;
        self
    }

    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // hyper's server stops polling a body whose length says it is
        // complete, so the last frame is often the only sign of its end.
        if self.inner.is_end_stream() {
            self.release();
        }
        // An HTTP/2 client that resets its stream drops the response body
        // without polling it again.
        if !self.ended {
            self.client_fault.report();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => {
                this.ended = true;
                this.release();
            }
            Some(Err(e)) => {
                this.ended = true;
                this.lease = None;
                this.client_fault.response_failed(e);
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Every response body the gateway sends.
pub(crate) type ResponseBody = http_body_util::Either<UpstreamBody, Full<Bytes>>;

/// A gateway-made response body.
pub(crate) fn full(body: Full<Bytes>) -> ResponseBody {
    http_body_util::Either::Right(body)
}
