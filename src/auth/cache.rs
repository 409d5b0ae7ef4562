//! The verified-token cache: skips the signature check for a token seen
//! recently (asymmetric verification costs tens of microseconds; HMAC is
//! cheaper than a lookup and is not cached).
//!
//! Bounded (10 000 entries in 16 shards, each behind its own mutex held only
//! for one lookup or insert, so it is never a global lock). Keyed by the
//! whole token (so two tokens can never share an entry), tokens over 4 KiB
//! are not cached, which bounds memory to about 40 MiB. An entry lives until
//! the token's `exp` and never longer than 5 minutes, so a key removed from
//! the JWKS stops working soon after. When a shard is full, expired entries
//! go first, then the one closest to expiry.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use super::Verified;

/// Total entries across all shards.
pub(crate) const CAPACITY: usize = 10_000;
/// Tokens longer than this are verified every time.
const MAX_CACHED_TOKEN: usize = 4096;
/// Longest an entry lives, whatever its `exp`.
pub(crate) const MAX_ENTRY_SECS: u64 = 300;
const SHARDS: usize = 16;

struct Entry {
    /// The verification result to hand out again.
    verified: Verified,
    /// Unix second from which the entry is stale.
    valid_until: u64,
}

/// A sharded map from token to its verification.
pub(crate) struct TokenCache {
    /// Each shard holds at most `CAPACITY / SHARDS` entries.
    shards: Vec<Mutex<HashMap<Box<str>, Entry>>>,
    /// Picks a shard; randomly keyed so clients cannot aim at one shard.
    hasher: RandomState,
}

impl TokenCache {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        TokenCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, token: &str) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Entry>> {
        let i = (self.hasher.hash_one(token) % SHARDS as u64) as usize;
        // A panic while holding the lock cannot leave a half-written entry
        // that matters (an insert either happened or not), so poison is ignored.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached verification of `token`, if fresh at `now` (unix seconds).
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Verified> {
        if token.len() > MAX_CACHED_TOKEN {
            return None;
        }
        let mut shard = self.shard(token);
        match shard.get(token) {
            Some(e) if now < e.valid_until => Some(e.verified.clone()),
            Some(_) => {
                shard.remove(token);
                None
            }
            None => None,
        }
    }

    /// Remembers a verified token until `min(exp, now + 5 min)`.
    pub(crate) fn insert(&self, token: &str, verified: &Verified, now: u64) {
        if token.len() > MAX_CACHED_TOKEN {
            return;
        }
        let valid_until = verified.exp.min(now.saturating_add(MAX_ENTRY_SECS));
        if valid_until <= now {
            return;
        }
        let per_shard = CAPACITY / SHARDS;
        let mut shard = self.shard(token);
        if shard.len() >= per_shard && !shard.contains_key(token) {
            shard.retain(|_, e| e.valid_until > now);
            if shard.len() >= per_shard {
                let soonest = shard
                    .iter()
                    .min_by_key(|(_, e)| e.valid_until)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    shard.remove(&k);
                }
            }
        }
        shard.insert(
            token.into(),
            Entry {
                verified: verified.clone(),
                valid_until,
            },
        );
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Algorithm;
    use std::sync::Arc;

    fn verified(exp: u64) -> Verified {
        Verified {
            claims: Arc::new(serde_json::json!({"sub": "u"})),
            alg: Algorithm::ES256,
            kid: None,
            exp,
        }
    }

    #[test]
    fn entries_expire_at_exp_and_after_five_minutes_at_most() {
        let c = TokenCache::new();
        c.insert("a", &verified(1_000), 900);
        assert!(c.get("a", 999).is_some());
        assert!(c.get("a", 1_000).is_none(), "stale at exp");
        c.insert("b", &verified(10_000), 1_000);
        assert!(c.get("b", 1_299).is_some());
        assert!(c.get("b", 1_300).is_none(), "stale after 5 minutes");
        c.insert("expired", &verified(10), 1_000);
        assert!(c.get("expired", 1_000).is_none());
    }

    #[test]
    fn stays_bounded_under_a_flood_of_distinct_tokens() {
        let c = TokenCache::new();
        for i in 0..(CAPACITY * 3) {
            c.insert(&format!("token-{i}"), &verified(5_000 + i as u64), 1_000);
        }
        assert!(c.len() <= CAPACITY, "{}", c.len());
        assert!(
            c.get(&format!("token-{}", CAPACITY * 3 - 1), 1_000)
                .is_some()
        );
    }

    #[test]
    fn a_full_shard_drops_expired_entries_first() {
        let c = TokenCache::new();
        for i in 0..CAPACITY * 2 {
            c.insert(&format!("old-{i}"), &verified(1_010), 1_000);
        }
        c.insert("fresh", &verified(5_000), 1_020);
        assert!(c.get("fresh", 1_020).is_some());
        assert!(
            c.len() < CAPACITY,
            "expired entries of the shard were dropped"
        );
    }

    #[test]
    fn oversized_tokens_are_not_cached() {
        let c = TokenCache::new();
        let big = "x".repeat(MAX_CACHED_TOKEN + 1);
        c.insert(&big, &verified(5_000), 1_000);
        assert_eq!(c.len(), 0);
    }
}
