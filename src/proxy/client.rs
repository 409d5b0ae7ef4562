//! Upstream clients: hyper-util's pooled client over hyper-rustls.
//!
//! One [`Clients`] set exists per distinct (protocol, extra CA, connect
//! timeout); routes share it, and `Pools` keeps it across reloads so
//! connection pools survive a config change that does not touch the
//! upstream. A set holds one client per serving worker (`[server] workers`,
//! README): each worker's requests use its own pool, whose connections are
//! driven by tasks on that worker's runtime, so a request never hands off
//! to another thread.
//!
//! Connections to one upstream (scheme, host, port) are capped by
//! `[server] max_upstream_connections` across every client: the connector
//! takes a place before it connects, and the connection holds it until it
//! closes, idle in the pool included. A request that finds no place waits
//! up to `connect_timeout` (an idle or freed pooled connection may serve it
//! meanwhile), then fails with `UpstreamCapReached`, which is a 503.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body::RequestBody;

/// The connector: a place under the per-host cap, then TCP (with
/// `TCP_NODELAY` and the connect timeout), then TLS for `https://`.
pub(crate) type Connector = CappedConnector;

/// TCP, then TLS for `https://`.
type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled upstream client.
pub(crate) type UpstreamClient = Client<Connector, RequestBody>;

thread_local! {
    /// The serving worker this thread is (see [`set_worker`]); 0 on every
    /// other thread.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as serving worker `index`: requests it serves
/// use that worker's client of each [`Clients`] set.
pub(crate) fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// One pooled client per serving worker, for one [`ClientKey`].
#[derive(Clone)]
pub(crate) struct Clients(Arc<[UpstreamClient]>);

impl Clients {
    /// The calling worker's client.
    pub(crate) fn get(&self) -> &UpstreamClient {
        let i = WORKER.with(Cell::get);
        &self.0[i % self.0.len()]
    }
}

/// What makes two routes need different clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    /// HTTP/2 with prior knowledge (h2c) for `http://` upstreams.
    pub(crate) http2_prior_knowledge: bool,
    /// Extra trusted roots, with a hash of the file's content so an edited
    /// file builds a new client.
    pub(crate) ca_file: Option<(PathBuf, u64)>,
    /// TCP + TLS connect timeout; also the longest a request waits for a
    /// connection when the upstream's cap is reached.
    pub(crate) connect_timeout: Duration,
    /// `[server] max_upstream_connections`: connections per upstream.
    pub(crate) max_upstream_connections: usize,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The CA file could not be read or holds no certificate.
    #[error("ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS client setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Clients kept across reloads.
pub(crate) struct Pools {
    clients: Mutex<HashMap<ClientKey, Clients>>,
    /// Places under the per-upstream cap, shared by every client.
    caps: Arc<HostCaps>,
    /// Clients per set: the number of serving workers.
    workers: usize,
}

impl Default for Pools {
    /// Pools for one worker.
    fn default() -> Self {
        Pools::new(1)
    }
}

/// The per-upstream caps: one semaphore per (`scheme://host:port`, cap).
/// A reload that changes the cap builds new clients and new semaphores;
/// the old clients' connections keep their old places until they close.
#[derive(Default)]
pub(crate) struct HostCaps {
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
    fn prune(&self) {
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
pub(crate) struct Capped<T> {
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

impl Pools {
    /// Pools whose sets hold a client for each of `workers` workers.
    pub(crate) fn new(workers: usize) -> Self {
        Pools {
            clients: Mutex::default(),
            caps: Arc::default(),
            workers: workers.max(1),
        }
    }

    /// The client set for `key`, reusing the existing one.
    pub(crate) fn get(&self, key: &ClientKey) -> Result<Clients, ClientError> {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let clients = build(key, &self.caps, self.workers)?;
        map.insert(key.clone(), clients.clone());
        Ok(clients)
    }

    /// Drops clients no route of the active config uses any more.
    pub(crate) fn retain(&self, used: &[ClientKey]) {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| used.contains(k));
        drop(map);
        self.caps.prune();
    }
}

/// Reads a PEM CA bundle and hashes it (for `ClientKey`).
pub(crate) fn ca_key(path: &std::path::Path) -> Result<(PathBuf, u64), ClientError> {
    let bytes = std::fs::read(path).map_err(|e| ClientError::CaFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((path.to_owned(), crate::config::hash_bytes(&bytes)))
}

fn root_store(ca_file: Option<&PathBuf>) -> Result<rustls::RootCertStore, ClientError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let err = |reason: String| ClientError::CaFile {
            path: path.clone(),
            reason,
        };
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
            let cert = cert.map_err(|e| err(e.to_string()))?;
            roots.add(cert).map_err(|e| err(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(err("no PEM certificate in the file".into()));
        }
    }
    Ok(roots)
}

/// Builds the client set for `key`: `workers` clients sharing one TLS
/// setup, their connections capped per upstream by `caps`.
pub(crate) fn build(
    key: &ClientKey,
    caps: &Arc<HostCaps>,
    workers: usize,
) -> Result<Clients, ClientError> {
    let roots = root_store(key.ca_file.as_ref().map(|(p, _)| p))?;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let clients = (0..workers.max(1))
        .map(|_| client(key, caps, tls.clone()))
        .collect();
    Ok(Clients(clients))
}

/// One worker's client.
fn client(key: &ClientKey, caps: &Arc<HostCaps>, tls: rustls::ClientConfig) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(key.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let connector = CappedConnector {
        inner: hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http),
        caps: caps.clone(),
        cap: key.max_upstream_connections,
        wait: key.connect_timeout,
    };
    let mut builder = Client::builder(TokioExecutor::new());
    // An idle pooled connection is closed after 10 s (README "Performance"):
    // a burst's extra connections, ~40 KiB each, are gone within 20 s of
    // it (the pool checks once per timeout), and busy ones never idle that
    // long. Up to 256 stay pooled per worker: fewer made a 1,000-connection
    // load close and reopen connections, which cost more than it saved.
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(256)
        .retry_canceled_requests(true)
        .set_host(true);
    if key.http2_prior_knowledge {
        builder.http2_only(true);
    }
    builder.build(connector)
}
