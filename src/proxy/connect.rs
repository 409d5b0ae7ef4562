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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// TCP, then TLS for `https://`.
type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The per-upstream caps: one [`Cap`] per (`scheme://host:port`, cap).
/// A reload that changes the cap builds new clients and new caps; the old
/// clients' connections keep their old places until they close.
#[derive(Default)]
pub(crate) struct HostCaps {
    map: Mutex<HashMap<(String, usize), Arc<Cap>>>,
    /// Woken when a request starts waiting for a place: each worker's pool
    /// then closes its idle connections to upstreams someone waits for, so
    /// an idle connection on one worker never starves a request on another.
    pressure: Notify,
}

/// One upstream's places.
#[derive(Debug)]
pub(crate) struct Cap {
    places: Arc<Semaphore>,
    cap: usize,
    /// Requests waiting for a place now.
    waiting: AtomicUsize,
}

impl Cap {
    /// True while a request waits for a place: an idle connection to this
    /// upstream should close rather than keep its place.
    pub(crate) fn is_wanted(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }
}

/// Counts a request among a cap's waiters until dropped.
struct Waiting<'a>(&'a Cap);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HostCaps {
    /// The cap of `upstream` (`scheme://host:port`).
    pub(crate) fn cap(&self, upstream: String, cap: usize) -> Arc<Cap> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((upstream, cap))
            .or_insert_with(|| {
                Arc::new(Cap {
                    places: Arc::new(Semaphore::new(cap)),
                    cap,
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// What pools wait on to close idle connections someone needs the
    /// place of (see [`Cap::is_wanted`]).
    pub(crate) fn pressure(&self) -> &Notify {
        &self.pressure
    }

    /// A place under `cap`, waiting up to `wait`; while it waits, pools are
    /// asked to close idle connections to the upstream.
    async fn place(&self, cap: &Cap, wait: Duration) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = cap.places.clone().try_acquire_owned() {
            return Some(p);
        }
        cap.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(cap);
        self.pressure.notify_waiters();
        tokio::time::timeout(wait, cap.places.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Forgets upstreams with no connection and no connector using them.
    pub(crate) fn prune(&self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, c| Arc::strong_count(c) > 1 || c.places.available_permits() < c.cap);
    }
}

/// A request found its upstream's connection cap reached, and no
/// connection freed within `connect_timeout` (a 503).
#[derive(Debug, thiserror::Error)]
#[error(
    "{cap} connections to {upstream} are open (max_upstream_connections) and none freed in {wait:?}"
)]
pub(crate) struct UpstreamCapReached {
    /// `scheme://host:port`.
    pub(crate) upstream: String,
    /// The cap.
    pub(crate) cap: usize,
    /// How long the request waited.
    pub(crate) wait: Duration,
}

/// Wraps the TCP + TLS connector with the per-upstream cap.
#[derive(Clone)]
pub(crate) struct CappedConnector {
    inner: Https,
    caps: Arc<HostCaps>,
    cap: usize,
    wait: Duration,
}

impl CappedConnector {
    /// The caps this connector counts under.
    pub(crate) fn caps(&self) -> &Arc<HostCaps> {
        &self.caps
    }

    /// The cap of `upstream` (`scheme://host:port`) for this connector.
    pub(crate) fn cap(&self, upstream: String) -> Arc<Cap> {
        self.caps.cap(upstream, self.cap)
    }
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
        let cap = self.caps.cap(upstream.clone(), self.cap);
        let caps = self.caps.clone();
        // `poll_ready` was called on `self.inner`; the clone takes its turn.
        let connecting = self.inner.call(uri);
        let wait = self.wait;
        Box::pin(async move {
            let Some(permit) = caps.place(&cap, wait).await else {
                return Err(Box::new(UpstreamCapReached {
                    upstream,
                    cap: cap.cap,
                    wait,
                }) as Self::Error);
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
pub(crate) struct Capped<T> {
    io: T,
    _permit: OwnedSemaphorePermit,
}

impl<T> Capped<hyper_rustls::MaybeHttpsStream<T>> {
    /// The plain stream of a connection made without TLS (an `http://`
    /// URI), keeping its place; `None` for a TLS one. A plain stream is a
    /// fraction of the size of the TLS-or-plain enum, and a pooled
    /// connection's task holds it for the connection's life.
    pub(crate) fn into_plain(self) -> Option<Capped<T>> {
        match self.io {
            hyper_rustls::MaybeHttpsStream::Http(io) => Some(Capped {
                io,
                _permit: self._permit,
            }),
            hyper_rustls::MaybeHttpsStream::Https(_) => None,
        }
    }
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
pub(crate) fn connector(
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
