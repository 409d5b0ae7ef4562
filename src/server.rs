//! Listeners, TLS, one task per connection, and graceful drain.
//!
//! `run` takes an already-bound listener, so tests bind `127.0.0.1:0` and
//! call it directly. One port serves HTTP/1.1 and HTTP/2 (h2c with prior
//! knowledge in clear text, h2 by ALPN with TLS).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::framing::{Framing, Watched};
use crate::pipeline::{self, ConnInfo};
use crate::state::Shared;
use crate::timer::ConnTimer;

/// Time allowed for a TLS handshake, within `header_read_timeout`.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent streams an HTTP/2 client may open on one connection
/// (`SETTINGS_MAX_CONCURRENT_STREAMS`, RFC 9113 §6.5.2); nginx's default.
const MAX_CONCURRENT_STREAMS: u32 = 128;
/// File descriptors kept out of `max_connections` for everything else the
/// process holds: listeners, the runtime, logs, config and TLS files.
const RESERVED_FDS: u64 = 64;

/// `header_read_timeout` is the `[server]` key of the same name (README):
/// hyper applies it to each HTTP/1 request head, on `timer` (a client
/// connection's own, `crate::timer`); `serve` also applies it from accept
/// to the first head on every protocol.
fn builder(
    header_read_timeout: Duration,
    timer: impl hyper::rt::Timer + Send + Sync + 'static,
) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(timer)
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Duration::from_secs(30));
    b
}

/// Open client connections, counted against `[server] max_connections`.
#[derive(Default)]
struct Slots {
    /// Connections accepted and not yet closed.
    open: AtomicUsize,
    /// Signalled when a connection closes (a stored permit when nobody
    /// waits, so a close between the check and the wait is not missed).
    freed: Notify,
    /// The configured cap last warned about as lowered (0: none), so the
    /// warning comes once, not once per worker, and again after a reload
    /// changes the cap.
    warned_for: AtomicUsize,
}

/// One open connection's place; frees it when dropped.
struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

impl Slots {
    /// Waits until fewer than `limit` connections are open and takes a
    /// place. Only the accept loop takes places.
    async fn take(self: &Arc<Self>, limit: usize) -> Slot {
        loop {
            if self.open.load(Ordering::Acquire) < limit {
                self.open.fetch_add(1, Ordering::AcqRel);
                return Slot(self.clone());
            }
            self.freed.notified().await;
        }
    }
}

/// The process's soft `RLIMIT_NOFILE`, from `/proc/self/limits` (Linux);
/// None when unlimited or unknown.
fn nofile_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_nofile(&text)
}

/// The soft limit on the `Max open files` line of `/proc/<pid>/limits`.
fn parse_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Connections the descriptor limit can hold: each client connection may
/// also hold an upstream connection, so half of what is left after
/// `RESERVED_FDS`, and at least one.
fn connections_for_fds(nofile: u64) -> usize {
    let n = nofile.saturating_sub(RESERVED_FDS) / 2;
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

/// Accept errors (EMFILE and friends) come in bursts: one log line a
/// second at most, with how many happened.
#[derive(Debug, Default)]
struct AcceptErrors {
    /// When the last line was logged.
    last_logged: Option<Instant>,
    /// Errors since then, not yet logged.
    unlogged: u64,
}

impl AcceptErrors {
    /// Records an error at `now`; returns the count to log (errors since
    /// the last line, this one included) when a line is due.
    fn record(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        if self
            .last_logged
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// Runs `conn` to its end, or drops it (closing the socket) when no
/// request head reached the service (`first_head`) by `deadline`.
///
/// The connection comes pinned by the caller: taken by value, it would
/// sit in this future twice (as the argument and as the pinned local),
/// and hyper's connection state is most of a connection task's size.
async fn unless_silent<F: Future>(
    mut conn: std::pin::Pin<&mut F>,
    first_head: &Notify,
    deadline: tokio::time::Instant,
) -> Option<F::Output> {
    tokio::select! {
        r = conn.as_mut() => return Some(r),
        () = first_head.notified() => {}
        () = tokio::time::sleep_until(deadline) => return None,
    }
    Some(conn.await)
}

/// Logs how a client connection ended, as [`unless_silent`] reports it.
fn log_end<E: std::fmt::Display>(peer: SocketAddr, result: Option<Result<(), E>>) {
    match result {
        None => {
            tracing::debug!(peer = %peer, "no request head within header_read_timeout; connection closed");
        }
        Some(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
        }
        Some(Ok(())) => {}
    }
}

/// An accepted connection, its place under `max_connections`, and its
/// header-read deadline (from accept).
type Accepted = (
    tokio::net::TcpStream,
    SocketAddr,
    Slot,
    tokio::time::Instant,
);

/// A connection accepted by one worker and handed to another.
struct Handoff {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    slot: Slot,
    deadline: tokio::time::Instant,
}

impl Handoff {
    /// The connection on the receiving worker's runtime.
    fn into_tokio(self) -> Option<Accepted> {
        match tokio::net::TcpStream::from_std(self.stream) {
            Ok(stream) => Some((stream, self.peer, self.slot, self.deadline)),
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "handed-off connection lost");
                None
            }
        }
    }
}

/// How one worker sees the others: every worker's count of connections
/// it serves, and a way to hand an accepted connection to each.
///
/// The workers share one listening socket, and the kernel wakes whichever
/// it likes for a new connection: a burst can land on one worker. So the
/// worker that accepts hands the connection to the one serving the fewest
/// (itself on a tie), once, at accept; from then on the connection stays
/// on that worker, requests and upstream side included.
struct Peers {
    me: usize,
    /// `nyro_worker_connections{worker}`, by worker.
    serving: Arc<[Gauge]>,
    outboxes: Arc<[tokio::sync::mpsc::UnboundedSender<Handoff>]>,
    inbox: tokio::sync::mpsc::UnboundedReceiver<Handoff>,
}

/// One connection counted in its worker's [`Peers::serving`].
struct Serving {
    serving: Arc<[Gauge]>,
    me: usize,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.serving[self.me].dec();
    }
}

impl Peers {
    /// The views of the workers counted by `serving`, by index.
    fn new(serving: Vec<Gauge>) -> Vec<Peers> {
        let workers = serving.len();
        let serving: Arc<[Gauge]> = serving.into();
        let (outboxes, inboxes): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| tokio::sync::mpsc::unbounded_channel())
            .unzip();
        let outboxes: Arc<[_]> = outboxes.into();
        inboxes
            .into_iter()
            .enumerate()
            .map(|(me, inbox)| Peers {
                me,
                serving: serving.clone(),
                outboxes: outboxes.clone(),
                inbox,
            })
            .collect()
    }

    /// The guard of a connection another worker counted for this one.
    fn counted(&self) -> Serving {
        Serving {
            serving: self.serving.clone(),
            me: self.me,
        }
    }

    /// Counts a connection this worker serves until the guard drops.
    fn serving(&self) -> Serving {
        self.serving[self.me].inc();
        Serving {
            serving: self.serving.clone(),
            me: self.me,
        }
    }

    /// Hands `stream` to the worker serving the fewest connections, or
    /// gives it back when that is this one (or the hand-off fails).
    fn hand_off(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        slot: Slot,
        deadline: tokio::time::Instant,
    ) -> Option<Accepted> {
        let load = |i: usize| self.serving[i].get();
        let target = (0..self.serving.len())
            .min_by_key(|&i| (load(i), i != self.me))
            .unwrap_or(self.me);
        if target == self.me {
            return Some((stream, peer, slot, deadline));
        }
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "accepted connection lost");
                return None;
            }
        };
        // Counted at once, so the next accept sees it.
        self.serving[target].inc();
        let handoff = Handoff {
            stream,
            peer,
            slot,
            deadline,
        };
        match self.outboxes[target].send(handoff) {
            Ok(()) => None,
            // That worker stopped (shutdown): serve it here.
            Err(tokio::sync::mpsc::error::SendError(h)) => {
                self.serving[target].dec();
                h.into_tokio()
            }
        }
    }
}

/// Serves the public listener with `workers` threads (`[server] workers`,
/// README) until `shutdown` resolves; returns true when every connection
/// closed within `shutdown_grace`.
///
/// Thread per core: each worker runs its own single-threaded runtime and
/// accepts from the one listening socket (duplicated descriptors of one
/// socket, not `SO_REUSEPORT`, so a second gateway on the port still fails
/// with "address in use"), then serves each connection it accepted start to
/// end, upstream requests included (see `proxy::client::Clients`): no work
/// moves between threads and nothing on the request path waits on another
/// thread. `max_connections` is counted across all workers. The calling
/// runtime keeps the rest (signals, reloads, the admin listener, JWKS
/// refreshes). Each worker is bound to its own CPU when [`worker_cpus`]
/// says so.
pub(crate) async fn run_workers(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<bool> {
    let slots = Arc::new(Slots::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut done = Vec::with_capacity(workers);
    let gauges = (0..workers.max(1))
        .map(|i| shared.metrics.worker_connections(i))
        .collect();
    let mut peers = Peers::new(gauges).into_iter();
    let pin_workers = shared.runtime.load().config.server.pin_workers;
    let cpus = worker_cpus(workers.max(1), pin_workers);
    if let Some(c) = &cpus {
        tracing::info!(cpus = ?c, "workers pinned, one per CPU");
    }
    for index in 0..workers.max(1) {
        let cpu = cpus.as_ref().and_then(|c| c.get(index).copied());
        let listener = listener.try_clone()?;
        let Some(peers) = peers.next() else { break };
        let shared = shared.clone();
        let slots = slots.clone();
        let mut stop = stop_rx.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("nyro-worker-{index}"))
            .spawn(move || {
                crate::worker::set(index);
                if let Some(cpu) = cpu {
                    pin_to(index, cpu);
                }
                let drained = runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(worker = index, error = %e, "worker cannot use the listener");
                            return false;
                        }
                    };
                    let stop = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    serve_until(listener, shared, slots, peers, stop).await
                });
                // Tasks left (a tunnel, a reload-spawned refresh) must not
                // hold the exit up: the grace has passed.
                runtime.shutdown_background();
                let _ = tx.send(drained);
            })?;
        done.push(rx);
    }
    drop(listener);
    shutdown.await;
    let grace = shared.runtime.load().config.server.shutdown_grace;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "draining: no new connections; waiting for requests in flight"
    );
    let _ = stop_tx.send(true);
    let mut drained = true;
    for rx in done {
        // A worker that panicked dropped its sender: not drained.
        drained &= rx.await.unwrap_or(false);
    }
    if drained {
        tracing::info!("drained");
    } else {
        tracing::warn!("shutdown grace expired with requests still in flight; closing them");
    }
    Ok(drained)
}

/// The CPU for each worker (`[server] pin_workers`, README): the CPUs this
/// process may run on, in order, when there are exactly `workers` of them
/// (a dedicated machine, or a container given a cpuset). Two workers the
/// kernel stacks on one CPU queue each other's requests while the other
/// CPU serves something else; a worker bound to its own CPU only competes
/// with other programs, which the kernel can move. With more CPUs allowed
/// than workers (a CPU quota without a cpuset) nothing is pinned: every
/// replica on the node would pin the same first CPUs.
fn worker_cpus(workers: usize, pin_workers: bool) -> Option<Vec<usize>> {
    if !pin_workers {
        return None;
    }
    let allowed = match rustix::thread::sched_getaffinity(None) {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the CPUs this process may use; workers are not pinned");
            return None;
        }
    };
    let cpus: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .collect();
    (cpus.len() == workers).then_some(cpus)
}

/// Binds the calling thread (worker `index`) to `cpu`; on failure it runs
/// unpinned, which only costs latency.
fn pin_to(index: usize, cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::warn!(worker = index, cpu, error = %e, "cannot pin the worker to its CPU; it runs unpinned");
    }
}

/// Serves the public listener on the calling runtime until `shutdown`
/// resolves, then stops accepting and lets open requests finish for up to
/// the active config's `shutdown_grace`. Returns true when every connection
/// closed in time. (`serve` runs [`run_workers`]; this is one worker's
/// loop with its own connection count, for embedding and tests.)
#[expect(
    dead_code,
    reason = "the embedding entry point (STYLE.md, after mini-redis); nothing calls it yet"
)]
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let Some(peers) = Peers::new(vec![Gauge::default()]).pop() else {
        return false;
    };
    serve_until(listener, shared, Arc::default(), peers, shutdown).await
}

/// One worker's accept loop and drain.
///
/// At most `[server] max_connections` connections are open at once across
/// the workers sharing `slots` (fewer when `RLIMIT_NOFILE` cannot hold
/// them); at the cap the loop stops accepting until one closes, and the
/// kernel's backlog holds new ones.
async fn serve_until(
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Slots>,
    mut peers: Peers,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let graceful = GracefulShutdown::new();
    let fd_cap = nofile_limit().map(connections_for_fds);
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let (configured, header_read_timeout) = {
            let rt = shared.runtime.load();
            (
                rt.config.server.max_connections,
                rt.config.server.header_read_timeout,
            )
        };
        let limit = match fd_cap {
            Some(cap) if cap < configured => {
                if slots.warned_for.swap(configured, Ordering::Relaxed) != configured {
                    tracing::warn!(
                        max_connections = configured,
                        lowered_to = cap,
                        nofile = nofile_limit(),
                        "max_connections lowered to what the file descriptor limit (RLIMIT_NOFILE) holds; raise it (ulimit -n, systemd LimitNOFILE=) to serve more"
                    );
                }
                cap
            }
            _ => configured,
        };
        let serve = |stream: tokio::net::TcpStream,
                     peer: SocketAddr,
                     slot: Slot,
                     deadline: tokio::time::Instant,
                     load: Serving| {
            let _ = stream.set_nodelay(true);
            let tls = shared.runtime.load().tls.clone();
            let framing = Arc::new(Framing::default());
            let timer = ConnTimer::new();
            // Shared by the connection's requests: one reference count per
            // request rather than one per field.
            let conn = Arc::new(ConnInfo::new(
                peer,
                tls.is_some(),
                framing.clone(),
                timer.clone(),
            ));
            let first_head = Arc::new(Notify::new());
            let shared = shared.clone();
            // In `nyro_open_connections` from its first request until hyper
            // drops the service with the connection.
            let open = crate::metrics::OpenConn::default();
            let service = {
                let first_head = first_head.clone();
                service_fn(move |req| {
                    // hyper calls the service once a request head is complete.
                    first_head.notify_one();
                    open.saw(req.version());
                    let rt = shared.runtime_here();
                    let conn = conn.clone();
                    pipeline::handle(req, conn, rt).map(Ok::<_, Infallible>)
                })
            };
            let watcher = graceful.watcher();
            // Plain and TLS connections are separate tasks: one task type
            // for both would give every plain connection the size of a
            // TLS session and its handshake. The builder is a temporary:
            // the connection owns what it needs of it.
            match tls {
                None => tokio::spawn(async move {
                    let _slot = slot;
                    let _load = load;
                    let c = builder(header_read_timeout, timer)
                        .serve_connection_with_upgrades(
                            TokioIo::new(Watched::new(stream, framing)),
                            service,
                        )
                        .into_owned();
                    let c = std::pin::pin!(watcher.watch(c));
                    log_end(peer, unless_silent(c, &first_head, deadline).await);
                }),
                Some(cfg) => tokio::spawn(async move {
                    let _slot = slot;
                    let _load = load;
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                    let handshake_deadline =
                        deadline.min(tokio::time::Instant::now() + TLS_HANDSHAKE_TIMEOUT);
                    let tls_stream =
                        match tokio::time::timeout_at(handshake_deadline, acceptor.accept(stream))
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
                    let c = builder(header_read_timeout, timer)
                        .serve_connection_with_upgrades(
                            TokioIo::new(Watched::new(tls_stream, framing)),
                            service,
                        )
                        .into_owned();
                    let c = std::pin::pin!(watcher.watch(c));
                    log_end(peer, unless_silent(c, &first_head, deadline).await);
                }),
            };
        };
        // A connection another worker handed over brings its own slot, so
        // it is taken while this worker waits for one too.
        let slot = tokio::select! {
            slot = slots.take(limit) => slot,
            Some(handed) = peers.inbox.recv() => match handed.into_tokio() {
                Some((stream, peer, slot, deadline)) => {
                    let load = peers.counted();
                    serve(stream, peer, slot, deadline, load);
                    continue;
                }
                None => continue,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer, slot, deadline, load) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let deadline = tokio::time::Instant::now() + header_read_timeout;
                    // The least busy worker serves it (README `workers`).
                    match peers.hand_off(stream, peer, slot, deadline) {
                        Some((stream, peer, slot, deadline)) => {
                            (stream, peer, slot, deadline, peers.serving())
                        }
                        None => continue,
                    }
                }
                Err(e) => {
                    if let Some(count) = accept_errors.record(Instant::now()) {
                        tracing::warn!(error = %e, count, "accept failed");
                    }
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(handed) = peers.inbox.recv() => {
                drop(slot);
                // Counted by the worker that handed it over.
                let load = peers.counted();
                match handed.into_tokio() {
                    Some((stream, peer, slot, deadline)) => (stream, peer, slot, deadline, load),
                    None => continue,
                }
            }
            () = &mut shutdown => break,
        };
        serve(stream, peer, slot, deadline, load);
    }
    drop(listener);
    let grace = shared.runtime.load().config.server.shutdown_grace;
    tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_ok()
}

/// Serves the admin listener (`/metrics`, `/config`, `/health`) until
/// `shutdown` resolves.
pub(crate) async fn run_admin(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let timeout = shared.runtime.load().config.server.header_read_timeout;
    let builder = Arc::new(builder(timeout, TokioTimer::new()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_logged_once_a_second_with_a_count() {
        let mut errors = AcceptErrors::default();
        let t0 = Instant::now();
        assert_eq!(errors.record(t0), Some(1), "the first is logged at once");
        for ms in [1, 10, 500, 999] {
            assert_eq!(errors.record(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(
            errors.record(t0 + Duration::from_millis(1000)),
            Some(5),
            "a second later: the four held back and this one"
        );
        assert_eq!(errors.record(t0 + Duration::from_millis(1500)), None);
        assert_eq!(errors.record(t0 + Duration::from_secs(10)), Some(2));
    }

    #[test]
    fn nofile_is_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max processes             63704                63704                processes \n\
            Max open files            128                  4096                 files     \n";
        assert_eq!(parse_nofile(limits), Some(128));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_nofile(unlimited), None);
        assert_eq!(parse_nofile(""), None);
    }

    #[test]
    fn connections_leave_room_for_upstreams_and_the_process() {
        assert_eq!(connections_for_fds(128), 32);
        assert_eq!(connections_for_fds(1024), 480);
        assert_eq!(connections_for_fds(65_536), 32_736);
        assert_eq!(connections_for_fds(10), 1, "never zero");
    }

    #[tokio::test]
    async fn a_slot_frees_when_its_connection_ends() {
        let slots = Arc::new(Slots::default());
        let a = slots.take(2).await;
        let _b = slots.take(2).await;
        let third = slots.take(2);
        tokio::pin!(third);
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut third).await;
        assert!(waited.is_err(), "a third slot with a limit of 2");
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("the freed slot");
        assert_eq!(slots.open.load(Ordering::Acquire), 2);
    }
}
