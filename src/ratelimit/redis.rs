//! Shared buckets in Redis: the same GCRA as [`super::gcra`], run by one
//! Lua script per decision (all of a phase's limits at once, so a refused
//! request spends nothing) with Redis's own clock (`TIME`), so replicas
//! whose clocks disagree still agree on every bucket. Keys are
//! `{name}:ip:<hex>`, `{name}:route` and `{name}:c:<claim value>`: the
//! braces are a Redis Cluster hash tag per limit name.
//!
//! The connection is redis-rs's `ConnectionManager` (multiplexed, and it
//! reconnects on its own); every decision has `[rate_limit] timeout`.
//! While Redis fails, `on_redis_error` decides (see `super::check`), the
//! outage is logged once when it starts and once when it ends, and each
//! failed decision is counted in `nyro_rate_limit_redis_errors_total`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::gcra::{Decision, KeyRef};
use super::{CompiledLimit, Decisions, key_of};
use crate::auth::Identity;
use crate::config::RedisUrl;
use crate::telemetry::RedisStats;

/// KEYS[i]: one bucket per limit. ARGV[2i-1]: the emission interval in
/// microseconds, ARGV[2i]: burst × interval. Returns, per limit, 1 or 0
/// (allowed), the remaining requests, and microseconds until the bucket is
/// full (allowed) or until a request would pass (refused). Buckets are
/// written only when every limit allows, with an expiry at the time the
/// bucket is full again (an idle key costs Redis nothing).
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local news = {}
local ok = true
for i = 1, #KEYS do
  local T = tonumber(ARGV[2 * i - 1])
  local tau = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  local new = tat + T
  local ahead = new - now
  if ahead > tau then
    ok = false
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, math.ceil(ahead - tau))
  else
    news[i] = new
    table.insert(out, 1)
    table.insert(out, math.floor((tau - ahead) / T))
    table.insert(out, math.ceil(ahead))
  end
end
if ok then
  for i = 1, #KEYS do
    local ms = math.ceil((news[i] - now) / 1000) + 1
    redis.call('SET', KEYS[i], string.format('%.0f', news[i]), 'PX', ms)
  end
end
return out
";

/// Why Redis could not decide.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisFailure {
    /// Not connected yet (or the first connection failed).
    #[error("not connected to Redis")]
    NotConnected,
    /// No answer within `timeout`.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error, or the connection broke.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// An answer of the wrong shape.
    #[error("Redis answered {0} values for {1} limits")]
    Shape(usize, usize),
}

/// The Redis side of a [`super::Limiter`], lent across reloads while the
/// URL and timeout stay the same.
pub(crate) struct Shared {
    url: RedisUrl,
    timeout: Duration,
    conn: std::sync::Arc<OnceCell<ConnectionManager>>,
    script: redis::Script,
    /// True while Redis fails: the outage is logged once.
    down: AtomicBool,
    stats: RedisStats,
}

impl Shared {
    /// A connection to `url`, made in the background (the gateway starts
    /// and serves, with `on_redis_error`, while Redis is unreachable).
    pub(crate) fn new(url: RedisUrl, timeout: Duration, stats: RedisStats) -> Shared {
        let conn = std::sync::Arc::new(OnceCell::new());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(connect(url.clone(), timeout, conn.clone()));
        }
        Shared {
            url,
            timeout,
            conn,
            script: redis::Script::new(SCRIPT),
            down: AtomicBool::new(false),
            stats,
        }
    }

    /// True when this connection serves `url` with `timeout`.
    pub(crate) fn same(&self, url: &RedisUrl, timeout: Duration) -> bool {
        self.url == *url && self.timeout == timeout
    }

    /// One decision for `limits` (one round trip), or why Redis could not
    /// give it (logged at the start and end of an outage, counted always).
    pub(super) async fn decide(
        &self,
        limits: &[CompiledLimit],
        ip: IpAddr,
        identity: Option<&Identity>,
    ) -> Result<Decisions, RedisFailure> {
        let start = Instant::now();
        let result = self.round_trip(limits, ip, identity).await;
        match &result {
            Ok(_) => {
                self.stats.observe(start.elapsed());
                if self.down.swap(false, Relaxed) {
                    tracing::info!(redis = %self.url.redacted(), "Redis answers again: rate limits are shared again");
                }
            }
            Err(e) => {
                self.stats.errors.inc();
                if !self.down.swap(true, Relaxed) {
                    tracing::warn!(redis = %self.url.redacted(), error = %e, "Redis is failing: rate limits follow on_redis_error until it answers again");
                }
            }
        }
        result
    }

    async fn round_trip(
        &self,
        limits: &[CompiledLimit],
        ip: IpAddr,
        identity: Option<&Identity>,
    ) -> Result<Decisions, RedisFailure> {
        let Some(conn) = self.conn.get() else {
            return Err(RedisFailure::NotConnected);
        };
        let mut conn = conn.clone();
        let mut inv = self.script.prepare_invoke();
        for l in limits {
            inv.key(redis_key(l, key_of(l.key, ip, identity)));
            let t_us = l.gcra.t as f64 / 1000.0;
            let tau_us = l.gcra.tau as f64 / 1000.0;
            inv.arg(format!("{t_us:.3}")).arg(format!("{tau_us:.3}"));
        }
        let answer: Vec<i64> = tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn))
            .await
            .map_err(|_| RedisFailure::Timeout(self.timeout))??;
        if answer.len() != limits.len() * 3 {
            return Err(RedisFailure::Shape(answer.len(), limits.len()));
        }
        let mut out = Decisions::default();
        for c in answer.chunks_exact(3) {
            let us = |v: i64| u64::try_from(v).unwrap_or(0).saturating_mul(1000);
            out.push(if c[0] == 1 {
                Decision::Allowed {
                    remaining: u64::try_from(c[1]).unwrap_or(0),
                    reset: us(c[2]),
                }
            } else {
                Decision::Refused { retry: us(c[2]) }
            });
        }
        Ok(out)
    }
}

/// `{name}:ip:<hex>`, `{name}:route` or `{name}:c:<value>`.
fn redis_key(l: &CompiledLimit, key: KeyRef<'_>) -> Vec<u8> {
    let mut k = Vec::with_capacity(l.redis_prefix.len() + 40);
    k.extend_from_slice(l.redis_prefix.as_bytes());
    match key {
        KeyRef::Ip(ip) => {
            let mut s = String::with_capacity(35);
            let _ = write!(s, "ip:{ip:032x}");
            k.extend_from_slice(s.as_bytes());
        }
        KeyRef::Route => k.extend_from_slice(b"route"),
        KeyRef::Claim(c) => {
            k.extend_from_slice(b"c:");
            k.extend_from_slice(c);
        }
    }
    k
}

/// Connects until it succeeds (every second, at most); the connection
/// manager reconnects by itself afterwards.
async fn connect(
    url: RedisUrl,
    timeout: Duration,
    cell: std::sync::Arc<OnceCell<ConnectionManager>>,
) {
    if url.0.starts_with("rediss://") {
        // redis-rs builds its TLS config from the process's default
        // provider; the gateway's is aws-lc-rs (an error means one is set).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    let mut logged = false;
    loop {
        if std::sync::Arc::strong_count(&cell) == 1 {
            return; // a reload replaced this connection before it was made
        }
        let attempt = match redis::Client::open(url.0.as_str()) {
            Ok(client) => ConnectionManager::new_with_config(client, config.clone()).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(conn) => {
                let _ = cell.set(conn);
                tracing::info!(redis = %url.redacted(), "connected to Redis for shared rate limits");
                return;
            }
            Err(e) if !logged => {
                logged = true;
                tracing::warn!(redis = %url.redacted(), error = %e, "cannot connect to Redis yet; rate limits follow on_redis_error until it answers");
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
