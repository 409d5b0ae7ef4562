//! Body wrappers for the streaming path. Neither buffers: each passes
//! frames through as they come.
//!
//! - `RequestBody` counts request bytes against `max_body` while
//!   streaming, so a chunked upload over the cap fails with 413 without
//!   being held in memory.
//! - `ResponseBody` is either the upstream's body, passed through frame by
//!   frame (logging when the upstream dies mid-body, which aborts the
//!   client's response rather than ending it as if complete), or a small
//!   body the gateway made itself.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
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

/// The client's request body on its way upstream.
#[derive(Debug)]
pub struct RequestBody {
    inner: Incoming,
    limit: Option<u64>,
    seen: u64,
}

impl RequestBody {
    /// Wraps `inner`, failing once more than `limit` bytes have passed.
    pub fn new(inner: Incoming, limit: Option<u64>) -> Self {
        RequestBody {
            inner,
            limit,
            seen: 0,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(limit)) = (f.data_ref(), this.limit) {
                    this.seen += data.len() as u64;
                    if this.seen > limit {
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit })));
                    }
                }
                Poll::Ready(Some(Ok(f)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The upstream's response body on its way to the client.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: Incoming,
    request_id: HeaderValue,
    route: std::sync::Arc<str>,
}

impl UpstreamBody {
    /// Wraps an upstream body; `request_id` and `route` name it in logs.
    pub fn new(inner: Incoming, request_id: HeaderValue, route: std::sync::Arc<str>) -> Self {
        UpstreamBody {
            inner,
            request_id,
            route,
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
        if let Some(Err(e)) = &frame {
            tracing::warn!(
                request_id = this.request_id.to_str().unwrap_or("-"),
                route = &*this.route,
                error = %e,
                blame = "upstream",
                "upstream failed mid-body; aborting the client's response"
            );
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
pub type ResponseBody = http_body_util::Either<UpstreamBody, Full<Bytes>>;

/// A gateway-made response body.
pub fn full(body: Full<Bytes>) -> ResponseBody {
    http_body_util::Either::Right(body)
}
