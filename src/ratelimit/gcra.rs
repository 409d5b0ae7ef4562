//! The generic cell rate algorithm (GCRA, as `governor` and `redis-cell`
//! implement it) over in-process buckets: one `AtomicU64` per key (its
//! theoretical arrival time, TAT), in a sharded map with bounded memory.
//!
//! Semantics (README "Rate limits"): `T` is the emission interval (the
//! window over the rate's count), `tau = burst × T`. A request at `now`
//! passes when `max(TAT, now) + T − now ≤ tau`, and then TAT becomes
//! `max(TAT, now) + T`. From idle, exactly `burst` requests pass at once
//! (governor's meaning of burst); over any window `t`, at most
//! `burst + t / T` pass.
//!
//! A key whose TAT is in the past is indistinguishable from a key never
//! seen, so forgetting it changes no decision: that is how idle keys are
//! evicted (when a shard grows), with no background timer.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, RwLock};
use std::time::{Duration, Instant};

/// Shards per bucket store: enough that cores rarely meet on one lock.
const SHARDS: usize = 64;

/// Keys kept per limit at most (over all shards); past it, a shard first
/// drops its idle keys, then the key nearest to full (forgetting a key can
/// only let its caller through sooner, never refuse one).
pub(crate) const MAX_KEYS: usize = 100_000;

/// The clock every store counts from, so that stores kept across reloads
/// agree.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since [`EPOCH`], at least 1 (0 means "never seen").
pub(crate) fn now_ns() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A limit's arithmetic: the emission interval and the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Emission interval `T` in nanoseconds (at least 1).
    pub(crate) t: u64,
    /// `burst × T` in nanoseconds.
    pub(crate) tau: u64,
}

/// One decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Passed; `remaining` more would pass now, and the bucket is full
    /// again after `reset` nanoseconds.
    Allowed {
        /// Requests that would still pass at once.
        remaining: u64,
        /// Nanoseconds until the bucket is full again.
        reset: u64,
    },
    /// Refused; a request would pass after `retry` nanoseconds.
    Refused {
        /// Nanoseconds until the next request would pass.
        retry: u64,
    },
}

impl Gcra {
    /// `count` requests per `per`, bucket capacity `burst`.
    pub(crate) fn new(count: u32, per: Duration, burst: u32) -> Gcra {
        let per = u64::try_from(per.as_nanos()).unwrap_or(u64::MAX);
        let t = (per / u64::from(count.max(1))).max(1);
        Gcra {
            t,
            tau: t.saturating_mul(u64::from(burst.max(1))),
        }
    }

    /// The pure step: the new TAT (when the request passes) and the
    /// decision, for a bucket at `tat` and a request at `now`.
    pub(crate) fn step(&self, tat: u64, now: u64) -> (Option<u64>, Decision) {
        let new = tat.max(now).saturating_add(self.t);
        let ahead = new - now;
        if ahead > self.tau {
            (
                None,
                Decision::Refused {
                    retry: ahead - self.tau,
                },
            )
        } else {
            (
                Some(new),
                Decision::Allowed {
                    remaining: (self.tau - ahead) / self.t,
                    reset: ahead,
                },
            )
        }
    }

    /// Decides on the bucket `tat` atomically (a compare-and-swap loop).
    pub(crate) fn decide(&self, tat: &AtomicU64, now: u64) -> Decision {
        let mut cur = tat.load(Relaxed);
        loop {
            let (new, decision) = self.step(cur, now);
            let Some(new) = new else { return decision };
            match tat.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return decision,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Gives back one request a later limit refused (the decision is all
    /// of a route's limits or none).
    pub(crate) fn refund(&self, tat: &AtomicU64) {
        let _ = tat.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(self.t)));
    }
}

/// What a bucket is keyed by, borrowed: no allocation to look one up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyRef<'a> {
    /// A client address (IPv4, or an IPv6 /64), as 128 bits.
    Ip(u128),
    /// A claim's value.
    Claim(&'a [u8]),
    /// The one bucket of a `route` key.
    Route,
}

#[derive(Default)]
struct Shard {
    ips: HashMap<u128, AtomicU64>,
    claims: HashMap<Box<[u8]>, AtomicU64>,
    /// Size at which the next sweep of idle keys runs.
    next_sweep: usize,
}

impl Shard {
    fn len(&self) -> usize {
        self.ips.len() + self.claims.len()
    }

    fn get(&self, key: KeyRef<'_>) -> Option<&AtomicU64> {
        match key {
            KeyRef::Ip(ip) => self.ips.get(&ip),
            KeyRef::Claim(c) => self.claims.get(c),
            KeyRef::Route => None,
        }
    }

    /// Makes room for one key: idle keys go (amortised: when the shard has
    /// doubled since the last sweep), then, at the cap, the key nearest to
    /// full.
    fn make_room(&mut self, now: u64, cap: usize) {
        if self.len() >= self.next_sweep.max(64) || self.len() >= cap {
            self.ips.retain(|_, t| t.load(Relaxed) > now);
            self.claims.retain(|_, t| t.load(Relaxed) > now);
            self.next_sweep = self.len() * 2;
        }
        while self.len() >= cap {
            let ip = self.ips.iter().map(|(k, t)| (t.load(Relaxed), *k)).min();
            let claim = self
                .claims
                .iter()
                .map(|(k, t)| (t.load(Relaxed), k.clone()))
                .min();
            match (ip, claim) {
                (Some((a, k)), Some((b, _))) if a <= b => {
                    self.ips.remove(&k);
                }
                (_, Some((_, k))) => {
                    self.claims.remove(&k);
                }
                (Some((_, k)), None) => {
                    self.ips.remove(&k);
                }
                (None, None) => break,
            }
        }
    }
}

/// The buckets of one limit (name, key, rate, burst) on this process.
pub(crate) struct Buckets {
    shards: Box<[RwLock<Shard>]>,
    route: AtomicU64,
    hasher: RandomState,
    cap_per_shard: usize,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::with_capacity(MAX_KEYS)
    }
}

impl Buckets {
    /// Buckets for at most about `max_keys` keys.
    pub(crate) fn with_capacity(max_keys: usize) -> Buckets {
        Buckets {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            route: AtomicU64::new(0),
            hasher: RandomState::new(),
            cap_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Runs `f` on the bucket of `key`, creating it when absent: a read
    /// lock on one shard for a known key; the write lock (and the key's
    /// one allocation) only for a new one.
    pub(crate) fn with<R>(&self, key: KeyRef<'_>, now: u64, f: impl Fn(&AtomicU64) -> R) -> R {
        let shard = match key {
            KeyRef::Route => return f(&self.route),
            KeyRef::Ip(ip) => self.hasher.hash_one(ip),
            KeyRef::Claim(c) => self.hasher.hash_one(c),
        };
        // The modulo of a 64-bit hash fits in usize.
        let shard = &self.shards[(shard % SHARDS as u64) as usize];
        {
            let s = shard
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(tat) = s.get(key) {
                return f(tat);
            }
        }
        let mut s = shard
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.get(key).is_none() {
            s.make_room(now, self.cap_per_shard);
            match key {
                KeyRef::Ip(ip) => {
                    s.ips.insert(ip, AtomicU64::new(0));
                }
                KeyRef::Claim(c) => {
                    s.claims.insert(Box::from(c), AtomicU64::new(0));
                }
                KeyRef::Route => {}
            }
        }
        match s.get(key) {
            Some(tat) => f(tat),
            None => f(&AtomicU64::new(0)),
        }
    }

    /// Keys held now (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map_or(0, |s| s.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn from_idle_exactly_burst_pass_then_one_per_interval() {
        let g = Gcra::new(10, Duration::from_secs(1), 5);
        let tat = AtomicU64::new(0);
        let now = 100 * S;
        let passed = (0..20)
            .filter(|_| matches!(g.decide(&tat, now), Decision::Allowed { .. }))
            .count();
        assert_eq!(passed, 5);
        match g.decide(&tat, now) {
            Decision::Refused { retry } => assert_eq!(retry, S / 10),
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            g.decide(&tat, now + S / 10),
            Decision::Allowed { remaining: 0, .. }
        ));
    }

    #[test]
    fn remaining_counts_down_and_reset_is_the_time_to_full() {
        let g = Gcra::new(1, Duration::from_secs(1), 3);
        let tat = AtomicU64::new(0);
        let now = 10 * S;
        assert_eq!(
            g.decide(&tat, now),
            Decision::Allowed {
                remaining: 2,
                reset: S
            }
        );
        assert_eq!(
            g.decide(&tat, now),
            Decision::Allowed {
                remaining: 1,
                reset: 2 * S
            }
        );
        g.refund(&tat);
        assert_eq!(
            g.decide(&tat, now),
            Decision::Allowed {
                remaining: 1,
                reset: 2 * S
            }
        );
    }

    #[test]
    fn idle_keys_are_evicted_and_memory_is_capped() {
        let b = Buckets::with_capacity(SHARDS * 8);
        let g = Gcra::new(1, Duration::from_secs(1), 1);
        let now = 10 * S;
        for ip in 0..10_000u128 {
            b.with(KeyRef::Ip(ip), now, |t| g.decide(t, now));
        }
        assert!(b.len() <= SHARDS * 8, "{}", b.len());
        // Much later every key is idle: the next inserts sweep them.
        let later = now + 100 * S;
        for ip in 20_000..20_000 + SHARDS as u128 * 2 {
            b.with(KeyRef::Ip(ip), later, |t| g.decide(t, later));
        }
        assert!(b.len() <= SHARDS * 8);
        // Claims and IPs are separate keys.
        let a = b.with(KeyRef::Claim(b"acme"), later, |t| g.decide(t, later));
        assert!(matches!(a, Decision::Allowed { .. }));
        let again = b.with(KeyRef::Claim(b"acme"), later, |t| g.decide(t, later));
        assert!(matches!(again, Decision::Refused { .. }));
    }

    proptest! {
        /// Over any window `t`, never more than `burst + t / T` requests
        /// pass (plus the one at the window's start edge).
        #[test]
        fn never_more_than_burst_plus_rate_times_t(
            count in 1u32..50,
            burst in 1u32..20,
            gaps in proptest::collection::vec(0u64..200_000_000, 1..300),
        ) {
            let g = Gcra::new(count, Duration::from_secs(1), burst);
            let tat = AtomicU64::new(0);
            let mut now = S;
            let mut passed: Vec<u64> = Vec::new();
            for gap in gaps {
                now += gap;
                if matches!(g.decide(&tat, now), Decision::Allowed { .. }) {
                    passed.push(now);
                }
            }
            for (i, start) in passed.iter().enumerate() {
                for (j, end) in passed.iter().enumerate().skip(i) {
                    let n = (j - i + 1) as u64;
                    let window = end - start;
                    prop_assert!(n <= u64::from(burst) + window / g.t,
                        "{n} passed in {window} ns (T {}, burst {burst})", g.t);
                }
            }
        }
    }
}
