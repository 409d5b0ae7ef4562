//! One serving worker's HTTP/1.1 connections to `http://` upstreams, on
//! hyper's `client::conn::http1` (README "Performance").
//!
//! A checkout pops the warmest idle connection from a list only this
//! worker's thread touches; the connection goes back when its response
//! body has been read to its end ([`Lease::release`]), or closes when the
//! body is dropped before. A connection the upstream closed while it idled
//! hands an unsent request back, and the request tries the next one, then
//! a new connection. Idle connections close after [`IDLE_TIMEOUT`], even
//! when no request comes (a sweeping task per pool), and at most
//! [`MAX_IDLE`] stay per upstream.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use tokio::sync::Notify;

use super::connect::{Cap, CappedConnector};

/// How long an idle upstream connection stays pooled (README
/// "Performance"): a burst's extra connections, ~40 KiB each, are gone
/// within 15 s of it, and busy ones never idle that long.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle connections kept per upstream and worker: fewer made a
/// 1,000-connection load close and reopen connections, which cost more
/// than it saved.
pub(crate) const MAX_IDLE: usize = 256;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// hyper-util's client failed (its `is_connect` tells the phase).
    #[error(transparent)]
    Legacy(#[from] hyper_util::client::legacy::Error),
    /// No connection could be made: refused, DNS, timed out, or the
    /// upstream's connection cap reached.
    #[error("connecting to the upstream")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed after the request was handed to it.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl SendError {
    /// True when the request never reached a connection.
    pub(crate) fn is_connect(&self) -> bool {
        match self {
            SendError::Legacy(e) => e.is_connect(),
            SendError::Connect(_) => true,
            SendError::Http(_) => false,
        }
    }
}

/// One worker's idle HTTP/1.1 connections to `http://` upstreams. Only
/// that worker's thread uses it (see `crate::worker`), so its lock is never
/// contended; it is a lock only because the runtime snapshot holding it is
/// shared. Aligned to 128 bytes (a pair of cache lines): the workers' pools
/// are made one after another and would otherwise share a line, so that
/// one worker's lock would invalidate what its neighbour reads.
#[repr(align(128))]
pub(crate) struct Http1Pool<B> {
    connector: CappedConnector,
    /// One entry per upstream this worker has talked to; never removed
    /// (a reload that drops the upstream drops the whole pool), so a lease
    /// names its upstream by index.
    hosts: Mutex<Vec<HostIdle<B>>>,
    /// Whether the task closing expired connections runs.
    sweeping: AtomicBool,
}

struct HostIdle<B> {
    authority: Authority,
    /// `Host` as hyper-util's client writes it: the port left out when it
    /// is the default.
    host: HeaderValue,
    /// Oldest first; taken from the back (the warmest connection).
    idle: VecDeque<Idle<B>>,
    /// The upstream's cap: while a request anywhere waits for a place, an
    /// idle connection here closes instead of keeping its place.
    cap: Arc<Cap>,
    /// Wakes requests waiting to connect (the upstream's cap may hold
    /// them) when a connection comes back; each waiter holds a clone, so
    /// with none the return costs nothing.
    returned: Arc<Notify>,
}

struct Idle<B> {
    sender: http1::SendRequest<B>,
    since: Instant,
}

/// A connection serving one response; [`Lease::release`] returns it to
/// its pool when the response body has been read to its end. Dropped
/// unreleased, the connection closes (hyper cannot reuse a connection
/// whose response was not read).
pub(crate) struct Lease<B> {
    pool: Arc<Http1Pool<B>>,
    host: usize,
    sender: http1::SendRequest<B>,
}

impl<B> std::fmt::Debug for Lease<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("host", &self.host).finish()
    }
}

impl<B> Lease<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// The response ended cleanly: the connection may serve another.
    pub(crate) fn release(self) {
        self.pool.put(self.host, self.sender);
    }
}

impl<B> Http1Pool<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// An empty pool connecting through `connector`.
    pub(crate) fn new(connector: CappedConnector) -> Self {
        Http1Pool {
            connector,
            hosts: Mutex::default(),
            sweeping: AtomicBool::new(false),
        }
    }

    fn hosts(&self) -> MutexGuard<'_, Vec<HostIdle<B>>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Under one lock: the index of `authority`'s entry (made on first
    /// sight), its `Host` value, and its warmest idle connection.
    fn checkout(
        &self,
        authority: &Authority,
    ) -> (usize, HeaderValue, Option<http1::SendRequest<B>>) {
        let mut hosts = self.hosts();
        let i = match hosts.iter().position(|h| h.authority == *authority) {
            Some(i) => i,
            None => {
                let text = match authority.port_u16() {
                    Some(80) => authority.host(),
                    _ => authority.as_str(),
                };
                hosts.push(HostIdle {
                    cap: self.connector.cap(format!("http://{authority}")),
                    authority: authority.clone(),
                    host: HeaderValue::from_str(text)
                        .unwrap_or_else(|_| HeaderValue::from_static("invalid-host")),
                    idle: VecDeque::new(),
                    returned: Arc::default(),
                });
                hosts.len() - 1
            }
        };
        let entry = &mut hosts[i];
        (i, entry.host.clone(), warmest(&mut entry.idle))
    }

    /// The warmest idle connection to host `i` that is not closed.
    fn take(&self, i: usize) -> Option<http1::SendRequest<B>> {
        warmest(&mut self.hosts().get_mut(i)?.idle)
    }

    fn put(&self, i: usize, sender: http1::SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut hosts = self.hosts();
        let Some(entry) = hosts.get_mut(i) else {
            return;
        };
        expire(&mut entry.idle, now);
        let local_waiters = Arc::strong_count(&entry.returned) > 1;
        // A request of this worker waiting to connect takes it; else, when
        // a request elsewhere waits for a place under the upstream's cap,
        // closing it frees one.
        if entry.idle.len() < MAX_IDLE && (local_waiters || !entry.cap.is_wanted()) {
            entry.idle.push_back(Idle { sender, since: now });
            if local_waiters {
                entry.returned.notify_waiters();
            }
        }
    }

    /// What a request waiting for a connection to host `i` waits on.
    fn returned(&self, i: usize) -> Arc<Notify> {
        self.hosts()
            .get(i)
            .map_or_else(Arc::default, |h| h.returned.clone())
    }

    fn has_idle(&self, i: usize) -> bool {
        self.hosts().get(i).is_some_and(|h| !h.idle.is_empty())
    }

    /// Closes every connection idle for longer than [`IDLE_TIMEOUT`], and
    /// every idle one to an upstream whose cap a request waits at.
    fn expire_all(&self) {
        let now = Instant::now();
        for entry in self.hosts().iter_mut() {
            if entry.cap.is_wanted() {
                entry.idle.clear();
            }
            expire(&mut entry.idle, now);
        }
    }

    /// Sends `req` (origin-form URI) to `http://authority` on a pooled or
    /// new connection.
    ///
    /// The request is prepared before the returned future, which holds it
    /// once (an `async fn` would keep a second copy; see `forward::send`).
    pub(crate) fn send(
        self: &Arc<Self>,
        authority: &Authority,
        mut req: Request<B>,
    ) -> impl Future<Output = Result<(Response<Incoming>, Lease<B>), SendError>> + '_ {
        let (host, host_value, mut pooled) = self.checkout(authority);
        req.headers_mut().entry(HOST).or_insert(host_value);
        async move {
            let mut fresh = None;
            loop {
                // A pooled connection the upstream closed while it idled hands
                // the request back unsent: try the next one.
                while let Some(mut sender) = pooled.take().or_else(|| self.take(host)) {
                    if sender.ready().await.is_err() {
                        continue;
                    }
                    match sender.try_send_request(req).await {
                        Ok(response) => return Ok(self.sent(response, host, sender)),
                        Err(mut e) => match e.take_message() {
                            Some(back) => req = back,
                            None => return Err(SendError::Http(e.into_error())),
                        },
                    }
                }
                // Then a new connection, unless a pooled one comes back first
                // (at the upstream's cap, connecting waits for a place).
                let connecting = fresh.get_or_insert_with(|| Box::pin(self.connect(host)));
                let notify = self.returned(host);
                let returned = notify.notified();
                tokio::pin!(returned);
                returned.as_mut().enable();
                if self.has_idle(host) {
                    continue;
                }
                tokio::select! {
                    biased;
                    sender = connecting => {
                        let mut sender = sender?;
                        let response = sender.send_request(req).await?;
                        return Ok(self.sent(response, host, sender));
                    }
                    () = returned => {}
                }
            }
        }
    }

    fn sent(
        self: &Arc<Self>,
        response: Response<Incoming>,
        host: usize,
        sender: http1::SendRequest<B>,
    ) -> (Response<Incoming>, Lease<B>) {
        let lease = Lease {
            pool: self.clone(),
            host,
            sender,
        };
        (response, lease)
    }

    /// A new connection (a place under the cap, TCP), its task spawned on
    /// this worker's runtime.
    async fn connect(self: &Arc<Self>, host: usize) -> Result<http1::SendRequest<B>, SendError> {
        use tower_service::Service;
        let Some(authority) = self.hosts().get(host).map(|h| h.authority.clone()) else {
            return Err(SendError::Connect("the upstream is not in the pool".into()));
        };
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|e| SendError::Connect(e.into()))?;
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Connect)?;
        let io = connector
            .call(uri)
            .await
            .map_err(SendError::Connect)?
            .into_plain()
            .ok_or_else(|| SendError::Connect("TLS on an http:// upstream".into()))?;
        let (sender, conn) = http1::handshake(io)
            .await
            .map_err(|e| SendError::Connect(e.into()))?;
        // Polled in place: an `async` block awaiting it would hold the
        // connection twice (captured, then moved into the await), and
        // it is most of the task's size.
        let mut conn = conn.with_upgrades();
        tokio::spawn(std::future::poll_fn(move |cx| {
            std::pin::Pin::new(&mut conn).poll(cx).map(|done| {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "upstream connection closed with an error");
                }
            })
        }));
        self.start_sweeping();
        Ok(sender)
    }

    /// Closes expired idle connections even when no request comes, so a
    /// burst's connections (and their memory) go away after it.
    fn start_sweeping(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool: Weak<Self> = Arc::downgrade(self);
        let caps = self.connector.caps().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(IDLE_TIMEOUT / 2);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                // Registered before the sweep, so a request that starts
                // waiting meanwhile still wakes the next one.
                let pressure = caps.pressure().notified();
                tokio::pin!(pressure);
                pressure.as_mut().enable();
                match pool.upgrade() {
                    Some(pool) => pool.expire_all(),
                    None => return,
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    () = pressure => {}
                }
            }
        });
    }
}

/// Pops the newest connection of `idle` that is not closed (closed ones
/// are dropped on the way).
fn warmest<B>(idle: &mut VecDeque<Idle<B>>) -> Option<http1::SendRequest<B>> {
    while let Some(Idle { sender, .. }) = idle.pop_back() {
        if !sender.is_closed() {
            return Some(sender);
        }
    }
    None
}

/// Drops the connections at the front of `idle` (the oldest) that have
/// idled longer than [`IDLE_TIMEOUT`].
fn expire<B>(idle: &mut VecDeque<Idle<B>>, now: Instant) {
    while idle
        .front()
        .is_some_and(|i| now.duration_since(i.since) > IDLE_TIMEOUT || i.sender.is_closed())
    {
        idle.pop_front();
    }
}
