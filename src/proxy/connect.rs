//! Connecting to an upstream: a place under the per-upstream cap
//! (`[server] max_upstream_connections`, README), then TCP, then TLS for
//! `https://`. Both upstream pools (`pool`, and hyper-util's client in
//! `client`) connect through [`CappedConnector`].
//!
//! Connections to one upstream (scheme, host, port) are capped across
//! every client: the connector takes a place before it connects, and the
//! connection holds it until it closes, idle in a pool included. A request
//! that finds no place waits up to `connect_timeout` (an idle or freed
//! pooled connection may serve it meanwhile), then fails with
//! [`UpstreamCapReached`], which is a 503.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// TCP, then TLS for `https://`.
type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The per-upstream caps: one semaphore per (`scheme://host:port`, cap).
/// A reload that changes the cap builds new clients and new semaphores;
/// the old clients' connections keep their old places until they close.
#[derive(Default)]
pub struct HostCaps {
    map: Mutex<HashMap<(String, usize), Arc<Semaphore>>>,
}

impl HostCaps {
    fn semaphore(&self, upstream: String, cap: usize) -> Arc<Semaphore> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((upstream, cap))
            .or_insert_with(|| Arc::new(Semaphore::new(cap)))
            .clone()
    }

    /// Forgets upstreams with no connection and no connector using them.
    pub fn prune(&self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|(_, cap), sem| Arc::strong_count(sem) > 1 || sem.available_permits() < *cap);
    }
}

/// A request found its upstream's connection cap reached, and no
/// connection freed within `connect_timeout` (a 503).
#[derive(Debug, thiserror::Error)]
#[error(
    "{cap} connections to {upstream} are open (max_upstream_connections) and none freed in {wait:?}"
)]
pub struct UpstreamCapReached {
    /// `scheme://host:port`.
    pub upstream: String,
    /// The cap.
    pub cap: usize,
    /// How long the request waited.
    pub wait: Duration,
}

/// Wraps the TCP + TLS connector with the per-upstream cap.
#[derive(Clone)]
pub struct CappedConnector {
    inner: Https,
    caps: Arc<HostCaps>,
    cap: usize,
    wait: Duration,
}

impl tower_service::Service<Uri> for CappedConnector {
    type Response = Capped<<Https as tower_service::Service<Uri>>::Response>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let upstream = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map_or("", |a| a.as_str())
        );
        let sem = self.caps.semaphore(upstream.clone(), self.cap);
        // `poll_ready` was called on `self.inner`; the clone takes its turn.
        let connecting = self.inner.call(uri);
        let (cap, wait) = (self.cap, self.wait);
        Box::pin(async move {
            let permit = match tokio::time::timeout(wait, sem.acquire_owned()).await {
                Ok(Ok(p)) => p,
                // The semaphore is never closed; treat it like the cap.
                Ok(Err(_)) | Err(_) => {
                    return Err(Box::new(UpstreamCapReached {
                        upstream,
                        cap,
                        wait,
                    }) as Self::Error);
                }
            };
            let io = connecting.await?;
            Ok(Capped {
                io,
                _permit: permit,
            })
        })
    }
}

/// An upstream connection holding its place under the cap until dropped.
pub struct Capped<T> {
    io: T,
    _permit: OwnedSemaphorePermit,
}

impl<T: Connection> Connection for Capped<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Capped<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Capped<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// TCP (`TCP_NODELAY`, keep-alive, the connect timeout), then TLS for
/// `https://` (HTTP/1.1 or HTTP/2 by ALPN), under the per-upstream cap.
pub fn connector(
    tls: rustls::ClientConfig,
    caps: &Arc<HostCaps>,
    cap: usize,
    connect_timeout: Duration,
) -> CappedConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    CappedConnector {
        inner: hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http),
        caps: caps.clone(),
        cap,
        wait: connect_timeout,
    }
}
