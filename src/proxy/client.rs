//! Upstream clients.
//!
//! One [`Clients`] set exists per distinct (protocol, extra CA, connect
//! timeout); routes share it, and `Pools` keeps it across reloads so
//! connection pools survive a config change that does not touch the
//! upstream. A set holds one [`UpstreamClient`] per serving worker
//! (`[server] workers`, README): each worker's requests use its own pools,
//! whose connections are driven by tasks on that worker's runtime, so a
//! request never hands off to another thread.
//!
//! A worker's client has two pools. HTTP/1.1 to `http://` upstreams (the
//! usual case inside a cluster) goes through [`Http1Pool`], this worker's
//! own idle connections on hyper's `client::conn::http1`: a checkout is a
//! pop from a list no other thread touches, and a connection goes back to
//! the list when its response body ends. `https://` upstreams (HTTP/1.1 or
//! HTTP/2 by ALPN) and h2c (`http2 = true`, multiplexed) use hyper-util's
//! pooled client. Both reuse idle connections for up to 10 s, keep at most
//! 256 per upstream and worker, and retry a request on a fresh connection
//! when a pooled one turns out closed before the request was sent. Both
//! connect through `connect::CappedConnector` (the per-upstream cap).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::Either;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::RequestBody;
use super::connect::{CappedConnector, HostCaps, connector};
use super::pool::{Http1Pool, IDLE_TIMEOUT, Lease, MAX_IDLE, SendError};

/// hyper-util's pooled client (TLS upstreams and h2c).
type LegacyClient = Client<CappedConnector, RequestBody>;

/// One serving worker's client for one [`ClientKey`].
pub(crate) struct UpstreamClient {
    /// HTTP/1.1 to `http://` upstreams (unless the key asks for h2c).
    http1: Option<Arc<Http1Pool<RequestBody>>>,
    /// Everything else.
    legacy: LegacyClient,
}

/// A response, and the connection it came on when that connection goes
/// back to a pool once the response body has been read to its end.
pub(crate) struct Sent {
    /// The upstream's response.
    pub(crate) response: Response<Incoming>,
    /// Give it to the response body ([`Lease::release`] at its end).
    pub(crate) lease: Option<Lease<RequestBody>>,
}

impl UpstreamClient {
    /// Sends `req` (origin-form URI, as `upstream::rewrite` makes it) to
    /// `scheme://authority`: the HTTP/1.1 pool takes the request as it is;
    /// hyper-util's client is given the absolute URI it needs.
    pub(crate) fn send(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        mut req: Request<RequestBody>,
    ) -> impl Future<Output = Result<Sent, SendError>> + '_ {
        // Combinators, not an `async fn`: see `forward::send`.
        match &self.http1 {
            Some(pool) if *scheme == Scheme::HTTP => {
                Either::Left(pool.send(authority, req).map(|sent| {
                    sent.map(|(response, lease)| Sent {
                        response,
                        lease: Some(lease),
                    })
                }))
            }
            _ => {
                let path = req
                    .uri()
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/"));
                let mut uri = http::uri::Parts::default();
                uri.scheme = Some(scheme.clone());
                uri.authority = Some(authority.clone());
                uri.path_and_query = Some(path);
                let absolute = Uri::from_parts(uri).map_err(|e| SendError::Connect(e.into()));
                Either::Right(match absolute {
                    Ok(uri) => {
                        *req.uri_mut() = uri;
                        Either::Left(self.legacy.request(req).map(|response| {
                            Ok(Sent {
                                response: response?,
                                lease: None,
                            })
                        }))
                    }
                    Err(e) => Either::Right(std::future::ready(Err(e))),
                })
            }
        }
    }
}

/// One pooled client per serving worker, for one [`ClientKey`].
#[derive(Clone)]
pub(crate) struct Clients(Arc<[UpstreamClient]>);

impl Clients {
    /// The calling worker's client.
    pub(crate) fn get(&self) -> &UpstreamClient {
        &self.0[crate::worker::index() % self.0.len()]
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

impl Pools {
    /// Pools whose sets hold a client for each of `workers` workers.
    pub(crate) fn new(workers: usize) -> Self {
        Pools {
            clients: Mutex::default(),
            caps: Arc::default(),
            workers: workers.max(1),
        }
    }

    /// The number of serving workers these pools serve.
    pub(crate) fn workers(&self) -> usize {
        self.workers
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

/// One worker's client: both pools share one connector (TLS setup and
/// per-upstream cap).
fn client(key: &ClientKey, caps: &Arc<HostCaps>, tls: rustls::ClientConfig) -> UpstreamClient {
    let connector = connector(tls, caps, key.max_upstream_connections, key.connect_timeout);
    let http1 = (!key.http2_prior_knowledge).then(|| Arc::new(Http1Pool::new(connector.clone())));
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE)
        .retry_canceled_requests(true)
        .set_host(true);
    if key.http2_prior_knowledge {
        builder.http2_only(true);
    }
    UpstreamClient {
        http1,
        legacy: builder.build(connector),
    }
}
