//! Listeners, TLS, one task per connection, and graceful drain.
//!
//! `run` takes an already-bound listener, so tests bind `127.0.0.1:0` and
//! call it directly. One port serves HTTP/1.1 and HTTP/2 (h2c with prior
//! knowledge in clear text, h2 by ALPN with TLS).

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::framing::{Framing, Watched};
use crate::pipeline::{self, ConnInfo};
use crate::proxy::client::Pools;
use crate::runtime::Runtime;
use crate::telemetry::Metrics;

/// State shared by every connection for the life of the process.
pub struct Shared {
    /// The active config; swapped whole on reload.
    pub runtime: ArcSwap<Runtime>,
    /// Upstream clients kept across reloads.
    pub pools: Pools,
    /// Counters.
    pub metrics: Metrics,
    /// The outcome of the last reload attempt, for the admin listener.
    pub reload: Mutex<ReloadStatus>,
}

/// What the admin listener says about reloads.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// When the last reload attempt ended.
    pub last_attempt: Option<SystemTime>,
    /// Its problems, when it was refused (`file:line:col: …` lines).
    pub last_error: Option<Vec<String>>,
}

impl Shared {
    /// Shared state around a first runtime.
    pub fn new(runtime: Runtime, pools: Pools, metrics: Metrics) -> Arc<Shared> {
        Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            pools,
            metrics,
            reload: Mutex::new(ReloadStatus::default()),
        })
    }
}

/// Time allowed for a client to send its request headers (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for a TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(1024)
        .keep_alive_interval(Duration::from_secs(30));
    b
}

/// Serves the public listener until `shutdown` resolves, then stops
/// accepting and lets open requests finish for up to the active config's
/// `shutdown_grace`. Returns true when every connection closed in time.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(builder());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let tls = shared.runtime.load().tls.clone();
        let framing = Arc::new(Framing::default());
        let conn = ConnInfo::new(peer, tls.is_some(), framing.clone());
        let shared = shared.clone();
        let service = service_fn(move |req| {
            let shared = shared.clone();
            let conn = conn.clone();
            async move { Ok::<_, Infallible>(pipeline::handle(req, conn, shared).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    let c = builder.serve_connection_with_upgrades(
                        TokioIo::new(Watched::new(stream, framing)),
                        service,
                    );
                    watcher.watch(c.into_owned()).await
                }
                Some(cfg) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                    let tls_stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(peer = %peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let c = builder.serve_connection_with_upgrades(
                        TokioIo::new(Watched::new(tls_stream, framing)),
                        service,
                    );
                    watcher.watch(c.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = shared.runtime.load().config.server.shutdown_grace;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "draining: no new connections; waiting for requests in flight"
    );
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => {
            tracing::info!("drained");
            true
        }
        Err(_) => {
            tracing::warn!("shutdown grace expired with requests still in flight; closing them");
            false
        }
    }
}

/// Serves the admin listener (`/metrics`, `/config`, `/health`) until
/// `shutdown` resolves.
pub async fn run_admin(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(builder());
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let shared = shared.clone();
        let service = service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(crate::admin::handle(req, &shared)) }
        });
        let c = builder.serve_connection(TokioIo::new(stream), service);
        let fut = graceful.watch(c.into_owned());
        tokio::spawn(async move {
            let _ = fut.await;
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}
