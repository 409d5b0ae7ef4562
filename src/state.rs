//! The gateway's shared state: the active runtime (swapped whole on
//! reload), the upstream pools and metrics kept across reloads, and the
//! outcome of the last reload for the admin listener.
//!
//! It sits with `runtime` and `reload`, below `server`, `pipeline` and
//! `admin`, which all read it (see the layer table in
//! `tests/layering.rs`).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::proxy::client::Pools;
use crate::runtime::Runtime;
use crate::telemetry::Metrics;

/// State shared by every connection for the life of the process.
pub(crate) struct Shared {
    /// The active config; swapped whole on reload.
    pub(crate) runtime: ArcSwap<Runtime>,
    /// Upstream clients kept across reloads.
    pub(crate) pools: Pools,
    /// The metrics registry behind `/metrics`.
    pub(crate) metrics: Metrics,
    /// The outcome of the last reload attempt, for the admin listener.
    pub(crate) reload: Mutex<ReloadStatus>,
}

/// One thread's own reference-counted handle on a runtime (see
/// [`Shared::runtime_here`]): the extra indirection is the point. It also
/// holds this thread's own copies of what a request keeps beyond its
/// handler, so that keeping it writes no reference count another worker
/// writes too.
pub(crate) struct LocalRuntime {
    runtime: Arc<Runtime>,
    /// The routes' names, in the runtime's route order.
    route_names: Box<[Arc<str>]>,
}

impl LocalRuntime {
    fn new(runtime: Arc<Runtime>) -> Self {
        let route_names = runtime.routes.iter().map(|r| Arc::from(&*r.name)).collect();
        LocalRuntime {
            runtime,
            route_names,
        }
    }

    /// Route `i`'s name, this thread's copy (for a request body's fault
    /// record, which outlives the handler).
    pub(crate) fn route_name(&self, i: usize) -> Option<&Arc<str>> {
        self.route_names.get(i)
    }
}

impl std::ops::Deref for LocalRuntime {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}

thread_local! {
    /// This thread's handle on the active runtime.
    static HERE: std::cell::RefCell<Option<Arc<LocalRuntime>>> =
        const { std::cell::RefCell::new(None) };
}

impl Shared {
    /// The active runtime through a reference count of this thread's own:
    /// cloning the one `Arc<Runtime>` on every request would make every
    /// worker write the same cache line twice per request. The handle is
    /// replaced at this thread's first request after a reload, so a worker
    /// keeps the previous config alive until then.
    pub(crate) fn runtime_here(&self) -> Arc<LocalRuntime> {
        let current = self.runtime.load();
        HERE.with(|here| {
            let mut here = here.borrow_mut();
            if let Some(local) = &*here
                && Arc::ptr_eq(&local.runtime, &*current)
            {
                return local.clone();
            }
            let local = Arc::new(LocalRuntime::new(arc_swap::Guard::into_inner(current)));
            *here = Some(local.clone());
            local
        })
    }
}

/// What the admin listener says about reloads.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReloadStatus {
    /// When the last reload attempt ended.
    pub(crate) last_attempt: Option<SystemTime>,
    /// Its problems, when it was refused (`file:line:col: …` lines).
    pub(crate) last_error: Option<Vec<String>>,
}

impl Shared {
    /// Shared state around a first runtime.
    pub(crate) fn new(runtime: Runtime, pools: Pools, metrics: Metrics) -> Arc<Shared> {
        metrics.set_generation(runtime.generation);
        Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            pools,
            metrics,
            reload: Mutex::new(ReloadStatus::default()),
        })
    }
}

impl Shared {
    /// Makes `runtime` the active config, and its generation the one
    /// `/metrics` shows.
    pub(crate) fn activate(&self, runtime: Runtime) {
        let generation = runtime.generation;
        self.runtime.store(Arc::new(runtime));
        self.metrics.set_generation(generation);
    }
}

/// The liveness answer of both listeners (`GET /health` on the public and
/// the admin port): one body, so a probe reads the same on either.
pub const HEALTHY: &str = r#"{"status":"healthy","service":"nyro-gw"}"#;
