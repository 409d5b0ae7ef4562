//! The verified-token cache: skips verification (signature, claims, and
//! the reduction to an [`Identity`]) for a token seen recently.
//!
//! Keyed by the whole token (so two tokens can never share an entry); an
//! entry holds only what the request path needs (the token's [`Identity`]
//! and its expiry, never the claim set), so its cost is about the token's
//! length plus a few hundred bytes. Bounded in bytes: [`MAX_BYTES`]
//! (32 MiB) over all shards; every entry is accounted at its key, its value
//! and twice its map slot (hash tables grow by doubling). Tokens over 4 KiB
//! are not cached. An entry lives until the token's `exp` and never longer
//! than 5 minutes, so a key removed from the JWKS stops working soon after.
//! When a shard is over its share, expired entries go first, then those
//! closest to expiry, down to 7/8 of the share (so the next inserts do not
//! each pay for a scan).
//!
//! One shard per serving worker (`crate::worker`), each with an equal share
//! of the bytes, behind a mutex only its worker takes: a cached identity,
//! its reference count and its header values are written by one CPU only,
//! where a cache shared by token hash made both CPUs trade those cache
//! lines on every request carrying the same token. A token that arrives on
//! connections of two workers is verified once by each.
//!
//! One cache belongs to one [`super::Authenticator`], i.e. one config
//! generation: a reload that changes the secret or the keys starts with an
//! empty cache, which is what makes caching HMAC results as safe as
//! asymmetric ones.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::{Arc, Mutex};

use super::claims::Identity;

/// Bytes all shards may hold together.
pub(crate) const MAX_BYTES: usize = 32 << 20;
/// Tokens longer than this are verified every time.
const MAX_CACHED_TOKEN: usize = 4096;
/// Longest an entry lives, whatever its `exp`.
pub(crate) const MAX_ENTRY_SECS: u64 = 300;
/// Allocator rounding and the `Arc` counts, per entry.
const SLACK: usize = 64;

struct Entry {
    /// What to hand out again.
    identity: Arc<Identity>,
    /// Unix second from which the entry is stale.
    valid_until: u64,
    /// What this entry is accounted at (see [`entry_bytes`]).
    bytes: usize,
    /// Insertion order in the shard: among entries that expire in the
    /// same second (most do: 5 minutes from their insert), the oldest
    /// goes first.
    seq: u64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<str>, Entry>,
    /// Sum of the entries' `bytes`.
    bytes: usize,
    /// The next entry's `seq`.
    next_seq: u64,
}

impl Shard {
    fn remove(&mut self, token: &str) {
        if let Some(e) = self.map.remove(token) {
            self.bytes -= e.bytes;
        }
    }

    /// Drops expired entries, then the ones closest to expiry, until the
    /// shard holds at most `target` bytes.
    fn shrink_to(&mut self, target: usize, now: u64) {
        self.map.retain(|_, e| e.valid_until > now);
        self.bytes = self.map.values().map(|e| e.bytes).sum();
        if self.bytes <= target {
            return;
        }
        // (valid_until, seq) is unique: everything up to the cutoff goes,
        // and no more than needed.
        let mut by_expiry: Vec<((u64, u64), usize)> = self
            .map
            .values()
            .map(|e| ((e.valid_until, e.seq), e.bytes))
            .collect();
        by_expiry.sort_unstable();
        let mut over = self.bytes - target;
        let mut cutoff = (0, 0);
        for (order, bytes) in by_expiry {
            cutoff = order;
            over = over.saturating_sub(bytes);
            if over == 0 {
                break;
            }
        }
        self.map.retain(|_, e| (e.valid_until, e.seq) > cutoff);
        self.bytes = self.map.values().map(|e| e.bytes).sum();
    }
}

/// What an entry for `token` holding `identity` costs.
fn entry_bytes(token: &str, identity: &Identity) -> usize {
    token.len() + 2 * (size_of::<Box<str>>() + size_of::<Entry>() + 1) + identity.bytes() + SLACK
}

/// A shard on cache lines of its own (128 bytes, as the CPU prefetches
/// lines in pairs): the shards sit side by side in one allocation, and a
/// worker locking its shard must not invalidate the line its neighbour's
/// worker reads.
#[derive(Default)]
#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// A map from token to its verified identity, one shard per worker.
pub(crate) struct TokenCache {
    /// Shard `i` is worker `i`'s; each holds at most `share` bytes.
    shards: Box<[Padded]>,
    /// `MAX_BYTES / shards.len()`.
    share: usize,
}

impl TokenCache {
    /// An empty cache for `workers` serving workers.
    pub(crate) fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        TokenCache {
            shards: (0..workers).map(|_| Padded::default()).collect(),
            share: MAX_BYTES / workers,
        }
    }

    /// The calling worker's shard (threads that are not workers use the
    /// first).
    fn shard(&self) -> std::sync::MutexGuard<'_, Shard> {
        let i = crate::worker::index() % self.shards.len();
        // A panic while holding the lock cannot leave a half-written entry
        // that matters (an insert either happened or not), so poison is ignored.
        self.shards[i].0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached identity of `token`, if fresh at `now` (unix seconds).
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Arc<Identity>> {
        if token.len() > MAX_CACHED_TOKEN {
            return None;
        }
        let mut shard = self.shard();
        match shard.map.get(token) {
            Some(e) if now < e.valid_until => Some(e.identity.clone()),
            Some(_) => {
                shard.remove(token);
                None
            }
            None => None,
        }
    }

    /// Remembers a verified token until `min(exp, now + 5 min)`.
    pub(crate) fn insert(&self, token: &str, identity: &Arc<Identity>, exp: u64, now: u64) {
        if token.len() > MAX_CACHED_TOKEN {
            return;
        }
        let valid_until = exp.min(now.saturating_add(MAX_ENTRY_SECS));
        if valid_until <= now {
            return;
        }
        let bytes = entry_bytes(token, identity);
        let share = self.share;
        let mut shard = self.shard();
        shard.remove(token);
        if shard.bytes + bytes > share {
            shard.shrink_to((share / 8 * 7).saturating_sub(bytes), now);
        }
        shard.bytes += bytes;
        let seq = shard.next_seq;
        shard.next_seq += 1;
        shard.map.insert(
            token.into(),
            Entry {
                identity: identity.clone(),
                valid_until,
                bytes,
                seq,
            },
        );
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }

    /// Bytes accounted across all shards.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::claims::ClaimPaths;
    use super::*;
    use crate::config::ClaimPath;
    use serde_json::{Value, json};

    fn identity() -> Arc<Identity> {
        Arc::new(Identity::project(
            &json!({"sub": "u"}),
            &ClaimPaths::default(),
        ))
    }

    /// A dense claim set like the issue's 3.7 KB ES256 tokens: many small
    /// objects and arrays, which cost ~45 KiB each as a `serde_json::Value`.
    fn dense_claims(i: usize) -> Value {
        let groups: Vec<Value> = (0..60)
            .map(|g| json!({"id": g, "r": ["a", "b", "c"], "f": [1, 2, 3, 4]}))
            .collect();
        json!({
            "sub": format!("user-{i}"),
            "aud": "authenticated",
            "app_metadata": {"company_id": format!("company-{i}"), "groups": groups},
            "email": format!("user-{i}@example.com"),
        })
    }

    #[test]
    fn entries_expire_at_exp_and_after_five_minutes_at_most() {
        let c = TokenCache::new(1);
        c.insert("a", &identity(), 1_000, 900);
        assert!(c.get("a", 999).is_some());
        assert!(c.get("a", 1_000).is_none(), "stale at exp");
        c.insert("b", &identity(), 10_000, 1_000);
        assert!(c.get("b", 1_299).is_some());
        assert!(c.get("b", 1_300).is_none(), "stale after 5 minutes");
        c.insert("expired", &identity(), 10, 1_000);
        assert!(c.get("expired", 1_000).is_none());
        assert_eq!(c.bytes(), 0, "removed entries are no longer accounted");
    }

    #[test]
    fn dense_tokens_stay_under_the_byte_bound_and_hold_no_claim_set() {
        let paths = ClaimPaths::new([
            ClaimPath::Dotted(vec!["sub".into()]),
            ClaimPath::Dotted(vec!["app_metadata".into(), "company_id".into()]),
            ClaimPath::Dotted(vec!["email".into()]),
        ]);
        let c = TokenCache::new(1);
        let mut last = String::new();
        // Far more than fit: 40 000 tokens of 3.7 KB is ~150 MB of tokens.
        for i in 0..40_000 {
            let claims = dense_claims(i);
            let id = Arc::new(Identity::project(&claims, &paths));
            // Only the identity and the injected values are kept: a few
            // hundred bytes, not the claim set's tens of KiB.
            assert!(id.bytes() < 512, "{}", id.bytes());
            let token = format!("{i:08}.{}", "x".repeat(3_700));
            c.insert(&token, &id, 10_000 + i as u64, 1_000);
            last = token;
        }
        assert!(c.bytes() <= MAX_BYTES, "{} > {MAX_BYTES}", c.bytes());
        assert!(
            c.bytes() > MAX_BYTES / 2,
            "the bound is used, not undercut: {}",
            c.bytes()
        );
        // Accounted at least at the token plus the identity.
        assert!(c.bytes() / c.len() > 3_700 + 100);
        let hit = c.get(&last, 1_000).expect("the newest entry is kept");
        assert_eq!(hit.user_id.as_deref(), Some("user-39999"));
        assert_eq!(hit.company_id.as_deref(), Some("company-39999"));
    }

    #[test]
    fn a_full_shard_drops_expired_entries_first() {
        let c = TokenCache::new(1);
        let token = |p: &str, i: usize| format!("{p}-{i}.{}", "x".repeat(3_000));
        for i in 0..20_000 {
            c.insert(&token("old", i), &identity(), 1_010, 1_000);
        }
        let full = c.len();
        for i in 0..2_000 {
            c.insert(&token("fresh", i), &identity(), 5_000, 1_020);
        }
        for i in 0..2_000 {
            assert!(c.get(&token("fresh", i), 1_020).is_some(), "fresh-{i}");
        }
        assert!(c.len() < full, "expired entries were dropped");
    }

    #[test]
    fn a_full_shard_keeps_the_entries_that_expire_last() {
        let c = TokenCache::new(1);
        let token = |i: usize| format!("{i}.{}", "x".repeat(3_000));
        for i in 0..20_000 {
            c.insert(&token(i), &identity(), 2_000 + i as u64, 1_000);
        }
        assert!(c.bytes() <= MAX_BYTES);
        assert!(c.get(&token(19_999), 1_000).is_some());
        assert!(c.get(&token(0), 1_000).is_none());
    }

    #[test]
    fn a_full_shard_evicts_the_oldest_of_entries_expiring_together() {
        let c = TokenCache::new(1);
        let token = |i: usize| format!("{i}.{}", "x".repeat(3_000));
        // All capped at now + 5 minutes: the same second.
        for i in 0..20_000 {
            c.insert(&token(i), &identity(), 99_999, 1_000);
        }
        assert!(c.bytes() > MAX_BYTES / 8 * 7 - 16 * 8_192, "{}", c.bytes());
        assert!(c.get(&token(19_999), 1_000).is_some());
        assert!(c.get(&token(0), 1_000).is_none());
    }

    #[test]
    fn each_worker_has_its_own_shard_and_share() {
        let c = TokenCache::new(2);
        let token = |w: usize, i: usize| format!("w{w}-{i}.{}", "x".repeat(3_000));
        std::thread::scope(|s| {
            for w in 0..2 {
                let c = &c;
                s.spawn(move || {
                    crate::worker::set(w);
                    c.insert(&token(w, 0), &identity(), 5_000, 1_000);
                    assert!(c.get(&token(w, 0), 1_000).is_some(), "its own entry");
                    assert!(
                        c.get(&token(1 - w, 0), 1_000).is_none(),
                        "the other worker's entry is not shared"
                    );
                    // Far more than a share (16 MiB each): ~60 MB of tokens.
                    for i in 1..20_000 {
                        c.insert(&token(w, i), &identity(), 5_000, 1_000);
                    }
                });
            }
        });
        assert!(c.bytes() <= MAX_BYTES, "{} > {MAX_BYTES}", c.bytes());
        for (i, shard) in c.shards.iter().enumerate() {
            let held = shard.0.lock().unwrap().bytes;
            assert!(held <= MAX_BYTES / 2, "shard {i}: {held}");
            assert!(held > MAX_BYTES / 4, "shard {i} is used: {held}");
        }
    }

    #[test]
    fn oversized_tokens_are_not_cached() {
        let c = TokenCache::new(1);
        let big = "x".repeat(MAX_CACHED_TOKEN + 1);
        c.insert(&big, &identity(), 5_000, 1_000);
        assert_eq!(c.len(), 0);
    }
}
