//! Per-tenant rate limits (README "Rate limits"): GCRA buckets keyed by
//! (limit name, key value), kept in this process ([`gcra`]) or, with
//! `[rate_limit] redis_url`, in Redis for every replica ([`redis`]).
//!
//! Compiled once per config into [`RouteLimits`] (the limits a route checks
//! before auth — `ip` and `route` keys, so floods of bad tokens are limited
//! too — and after it — claim keys, so a caller only spends its own
//! company's budget) and a [`Limiter`] that holds the buckets and the
//! Redis connection. The limiter is lent from one compiled config to the
//! next, so a reload keeps the buckets of every limit whose name, key,
//! rate and burst did not change.
//!
//! Cost: a route without limits checks two empty slices; a local decision
//! is one hash and a read lock on one of 64 shards, then a compare-and-swap
//! (a new key takes that shard's write lock and one allocation); an
//! allowed response's `RateLimit` header is one small allocation. With
//! Redis, one round trip (EVALSHA) per phase that has limits.

pub(crate) mod gcra;
pub(crate) mod redis;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::auth::{Authenticator, Identity};
use crate::config::{Limit, LimitKey, OnRedisError, RateLimit};
use crate::error::{GatewayError, RateLimitRefusal};
use crate::telemetry::{LimitStats, Metrics};

pub(crate) use gcra::{Buckets, Decision, Gcra, KeyRef};

/// What identifies one limit's local buckets across reloads: equal ids
/// keep their buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StoreId {
    name: String,
    key: String,
    count: u32,
    per: Duration,
    burst: u32,
}

impl StoreId {
    fn of(l: &Limit) -> StoreId {
        StoreId {
            name: l.name.clone(),
            key: l.key.to_string(),
            count: l.rate.count,
            per: l.rate.per,
            burst: l.burst,
        }
    }
}

/// The process's buckets and Redis connection for one compiled config.
pub(crate) struct Limiter {
    stores: HashMap<StoreId, Arc<Buckets>>,
    /// Shared buckets, when `redis_url` is set.
    redis: Option<Arc<redis::Shared>>,
    on_redis_error: OnRedisError,
}

impl Limiter {
    /// The limiter for `cfg` and every route's `limits`, reusing the
    /// buckets (and the Redis connection) of `prev` where they did not
    /// change.
    pub(crate) fn new<'a>(
        cfg: &RateLimit,
        route_limits: impl IntoIterator<Item = &'a Limit>,
        prev: Option<&Limiter>,
        metrics: &Metrics,
    ) -> Limiter {
        let mut stores = HashMap::new();
        for l in route_limits {
            let id = StoreId::of(l);
            if stores.contains_key(&id) {
                continue;
            }
            let store = prev
                .and_then(|p| p.stores.get(&id).cloned())
                .unwrap_or_default();
            stores.insert(id, store);
        }
        let redis = cfg
            .redis_url
            .as_ref()
            .map(|url| match prev.and_then(|p| p.redis.as_ref()) {
                Some(r) if r.same(url, cfg.timeout) => r.clone(),
                _ => Arc::new(redis::Shared::new(
                    url.clone(),
                    cfg.timeout,
                    metrics.redis.clone(),
                )),
            });
        Limiter {
            stores,
            redis,
            on_redis_error: cfg.on_redis_error,
        }
    }

    fn store(&self, l: &Limit) -> Arc<Buckets> {
        self.stores
            .get(&StoreId::of(l))
            .cloned()
            .unwrap_or_default()
    }
}

/// How a compiled limit finds its key.
#[derive(Debug, Clone, Copy)]
enum Key {
    Ip,
    Route,
    /// The claim's slot in the authenticator's projected claims (`None`:
    /// never projected, so every caller is keyed by IP).
    Claim(Option<usize>),
}

/// One limit of one route, ready for the request path.
pub(crate) struct CompiledLimit {
    name: Arc<str>,
    key: Key,
    gcra: Gcra,
    store: Arc<Buckets>,
    /// `RateLimit-Policy`: `"name";q=<count>;w=<window seconds>`.
    policy: HeaderValue,
    /// Redis keys start with this: `{name}:` (a hash tag per limit name,
    /// so a Redis Cluster keeps one name's keys on one node).
    redis_prefix: Box<str>,
    stats: LimitStats,
}

/// A route's limits, split by when their key is known.
#[derive(Default)]
pub(crate) struct RouteLimits {
    /// `ip` and `route` keys: checked before auth.
    pub(crate) before: Box<[CompiledLimit]>,
    /// Claim keys: checked after auth.
    pub(crate) after: Box<[CompiledLimit]>,
}

impl RouteLimits {
    /// Compiles `limits` of route `route` against `limiter`'s buckets and
    /// `auth`'s claim slots; counters are taken here, never per request.
    pub(crate) fn compile(
        route: &str,
        limits: &[Limit],
        limiter: &Limiter,
        auth: &Authenticator,
        metrics: &Metrics,
    ) -> RouteLimits {
        let mut before = Vec::new();
        let mut after = Vec::new();
        for l in limits {
            let key = match &l.key {
                LimitKey::Ip => Key::Ip,
                LimitKey::Route => Key::Route,
                LimitKey::Claim(p) => Key::Claim(auth.claim_slot(p)),
            };
            let compiled = CompiledLimit {
                name: Arc::from(l.name.as_str()),
                key,
                gcra: Gcra::new(l.rate.count, l.rate.per, l.burst),
                store: limiter.store(l),
                policy: HeaderValue::try_from(format!(
                    "{};q={};w={}",
                    sf_string(&l.name),
                    l.rate.count,
                    l.rate.per.as_secs()
                ))
                .unwrap_or_else(|_| HeaderValue::from_static("\"limit\"")),
                redis_prefix: format!("{{{}}}:", l.name).into_boxed_str(),
                stats: metrics.rate_limit(route, &l.name),
            };
            if l.key.before_auth() {
                before.push(compiled);
            } else {
                after.push(compiled);
            }
        }
        RouteLimits {
            before: before.into_boxed_slice(),
            after: after.into_boxed_slice(),
        }
    }
}

/// The `RateLimit` header an allowed response carries: the limit nearest
/// to refusing among those checked.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    remaining: u64,
    header: HeaderValue,
}

impl Status {
    /// The `RateLimit` field value.
    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }
}

/// The key of `limit` for this request, borrowed.
fn key_of<'a>(key: Key, ip: IpAddr, identity: Option<&'a Identity>) -> KeyRef<'a> {
    match key {
        Key::Ip => KeyRef::Ip(ip_key(ip)),
        Key::Route => KeyRef::Route,
        Key::Claim(slot) => match (slot, identity) {
            (Some(slot), Some(id)) => match id.claim_value(slot) {
                Some(v) => KeyRef::Claim(v.as_bytes()),
                None => KeyRef::Ip(ip_key(ip)),
            },
            _ => KeyRef::Ip(ip_key(ip)),
        },
    }
}

/// An address as a bucket key: IPv4 (and IPv4-mapped IPv6) whole, IPv6 by
/// its /64 (one subscriber's usual allocation).
pub(crate) fn ip_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits() & !u128::from(u64::MAX),
    }
}

/// Checks `limits` for one request: all of them must allow it (a refused
/// request spends nothing). Sets `status` to the `RateLimit` of the limit
/// nearest to refusing; a refusal is a 429 with its headers, and Redis
/// failing under `on_redis_error = "deny"` a 503.
pub(crate) async fn check(
    limiter: &Limiter,
    limits: &[CompiledLimit],
    ip: IpAddr,
    identity: Option<&Identity>,
    status: &mut Option<Status>,
) -> Result<(), GatewayError> {
    if limits.is_empty() {
        return Ok(());
    }
    let decisions = match &limiter.redis {
        None => local(limits, ip, identity),
        Some(r) => match r.decide(limits, ip, identity).await {
            Ok(d) => d,
            Err(e) => match limiter.on_redis_error {
                OnRedisError::Local => local(limits, ip, identity),
                OnRedisError::Allow => return Ok(()),
                OnRedisError::Deny => return Err(GatewayError::RateLimitUnavailable(e.into())),
            },
        },
    };
    verdict(limits, &decisions, status)
}

/// Decides every limit on this process's buckets; on a refusal the limits
/// that had passed get their request back.
fn local(limits: &[CompiledLimit], ip: IpAddr, identity: Option<&Identity>) -> Decisions {
    let now = gcra::now_ns();
    let mut out = Decisions::default();
    for (i, l) in limits.iter().enumerate() {
        let key = key_of(l.key, ip, identity);
        let d = l.store.with(key, now, |tat| l.gcra.decide(tat, now));
        out.push(d);
        if matches!(d, Decision::Refused { .. }) {
            for earlier in &limits[..i] {
                let key = key_of(earlier.key, ip, identity);
                earlier.store.with(key, now, |tat| earlier.gcra.refund(tat));
            }
            break;
        }
    }
    out
}

/// Decisions for a route's limits, in order, without allocating for the
/// usual one to four limits.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    small: [Option<Decision>; 4],
    more: Vec<Decision>,
}

impl Decisions {
    fn push(&mut self, d: Decision) {
        match self.small.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(d),
            None => self.more.push(d),
        }
    }

    fn iter(&self) -> impl Iterator<Item = Decision> + '_ {
        self.small
            .iter()
            .map_while(|d| *d)
            .chain(self.more.iter().copied())
    }
}

fn verdict(
    limits: &[CompiledLimit],
    decisions: &Decisions,
    status: &mut Option<Status>,
) -> Result<(), GatewayError> {
    let mut nearest: Option<(u64, u64, &CompiledLimit)> = None;
    for (l, d) in limits.iter().zip(decisions.iter()) {
        match d {
            Decision::Refused { retry } => {
                l.stats.refused.inc();
                let secs = ceil_secs(retry).max(1);
                return Err(GatewayError::RateLimited(Box::new(RateLimitRefusal {
                    retry_after: HeaderValue::from(secs),
                    policy: l.policy.clone(),
                    limit: field(&l.name, 0, secs),
                })));
            }
            Decision::Allowed { remaining, reset } => {
                if nearest.is_none_or(|(r, _, _)| remaining < r) {
                    nearest = Some((remaining, reset, l));
                }
            }
        }
    }
    for l in limits {
        l.stats.allowed.inc();
    }
    if let Some((remaining, reset, l)) = nearest
        && status.as_ref().is_none_or(|s| remaining < s.remaining)
    {
        *status = Some(Status {
            remaining,
            header: field(&l.name, remaining, ceil_secs(reset)),
        });
    }
    Ok(())
}

fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

/// `"name";r=<remaining>;t=<seconds>`: a `RateLimit` item
/// (draft-ietf-httpapi-ratelimit-headers, structured-field syntax).
fn field(name: &str, remaining: u64, reset: u64) -> HeaderValue {
    let mut s = String::with_capacity(name.len() + 24);
    s.push_str(&sf_string(name));
    let _ = write!(s, ";r={remaining};t={reset}");
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static("\"limit\";r=0"))
}

/// A structured-field string (RFC 8941 §3.3.3): quoted, `"` and `\`
/// escaped; characters outside printable ASCII dropped.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The limits that would apply on a route, one line each (for `token
/// inspect`): `name: rate, burst N, keyed by …`.
pub(crate) fn describe(
    limits: &[Limit],
    identity_claim: impl Fn(&LimitKey) -> Option<String>,
) -> Vec<String> {
    limits
        .iter()
        .map(|l| {
            let key = match (&l.key, identity_claim(&l.key)) {
                (LimitKey::Claim(p), Some(v)) => format!("{p} = {v:?}"),
                (LimitKey::Claim(p), None) => format!("client IP (the token has no {p})"),
                (LimitKey::Ip, _) => "client IP".to_owned(),
                (LimitKey::Route, _) => "the route".to_owned(),
            };
            format!("{}: {}, burst {}, keyed by {key}", l.name, l.rate, l.burst)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_keyed_by_its_64_and_ipv4_whole() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v4b: IpAddr = "192.0.2.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_ne!(ip_key(v4), ip_key(v4b));
        assert_eq!(ip_key(v4), ip_key(mapped));
        assert_ne!(ip_key(v4), ip_key("::".parse().unwrap()));
    }

    #[test]
    fn headers_use_structured_field_strings() {
        assert_eq!(field("per-company", 0, 3), "\"per-company\";r=0;t=3");
        assert_eq!(sf_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
