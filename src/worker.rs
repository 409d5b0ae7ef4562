//! Which serving worker the calling thread is (`[server] workers`,
//! README): per-worker state (upstream pools, the verified-token cache's
//! shards) is picked by this index, so a worker's requests write only
//! memory its own CPU holds.

use std::cell::Cell;

thread_local! {
    /// Set by [`set`] on each serving worker's thread; 0 on every other.
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as serving worker `index`.
pub(crate) fn set(index: usize) {
    INDEX.with(|w| w.set(index));
}

/// The calling thread's worker index: 0 on threads that are not workers.
pub(crate) fn index() -> usize {
    INDEX.with(Cell::get)
}
