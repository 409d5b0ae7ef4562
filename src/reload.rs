//! Hot reload: watch the config file (and the secret, TLS and CA files it
//! names), debounce bursts, load and validate completely, compile, then
//! swap the runtime in one atomic store. A config that fails anywhere on
//! the way is logged with its `file:line:col` problems and the old one
//! keeps serving. Requests in flight finish on the snapshot they started
//! with (they hold an `Arc<Runtime>`).
//!
//! Directories are watched, not files: editors save by writing a new file
//! and renaming it over the old one, and Kubernetes ConfigMap volumes swap a
//! `..data` symlink; both replace the inode a file watch would follow. An
//! event that names a file the config depends on (or a ConfigMap `..`
//! entry) schedules a check; other files in those directories are ignored.
//! The check compares a fingerprint of every file the config depends on, so
//! events that change nothing (touches) reload nothing, and a refused
//! config is not checked and logged again until its bytes change (or
//! SIGHUP asks). When a file is a
//! symlink, the directory of its target is watched too, so a config linked
//! from elsewhere (`/etc/nyro/gateway.toml -> /srv/cfg/gateway.toml`) is
//! followed when the target is edited.
//!
//! File events are debounced ([`DEBOUNCE`] of quiet, at most [`MAX_DELAY`]
//! after the first event, so a directory that never goes quiet still
//! reloads). SIGHUP reloads at once. The reload itself (file reads,
//! validation, compilation) runs on the blocking pool, never on the
//! threads that serve requests.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{self, Config, LoadOptions, SecretSource};
use crate::runtime::Runtime;
use crate::state::Shared;

/// Quiet time after the last file event before reloading (one reload per
/// save, however many events the save makes).
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(200);

/// Longest wait between the first file event of a burst and the reload,
/// however busy the watched directories are (the contract promises a
/// change is live within 2 s).
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(1);

/// What a reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A new generation is serving.
    Applied {
        /// Its generation.
        generation: u64,
    },
    /// Nothing the config depends on changed.
    Unchanged,
    /// The new config was refused; the old one keeps serving.
    Rejected(Vec<String>),
}

/// Reloads one config file into a running gateway.
pub(crate) struct Reloader {
    path: PathBuf,
    opts: LoadOptions,
    shared: Arc<Shared>,
    /// Fingerprint of the active config's files.
    fingerprint: Mutex<u64>,
    /// Fingerprint of the last refused attempt, so that file events which
    /// change nothing (a log file written beside the config) do not log
    /// the same refusal again. SIGHUP always tries and logs.
    refused: Mutex<Option<u64>>,
    /// The listen addresses bound at start: a reload cannot move them.
    bound: (SocketAddr, Option<SocketAddr>),
    /// `[server] workers` and `pin_workers` at start: the worker threads
    /// stay as started.
    workers: Option<usize>,
    pin_workers: bool,
    /// The messages of the warnings already logged for the serving config
    /// (by text, not position), so a reload logs only new ones.
    warnings: Mutex<BTreeSet<String>>,
}

impl Reloader {
    /// A reloader for `path`, whose current config is `config` (already
    /// serving in `shared`).
    pub(crate) fn new(
        path: PathBuf,
        opts: LoadOptions,
        shared: Arc<Shared>,
        config: &Config,
    ) -> Arc<Reloader> {
        let fp = fingerprint(&path, config);
        Arc::new(Reloader {
            path,
            opts,
            shared,
            fingerprint: Mutex::new(fp),
            refused: Mutex::new(None),
            warnings: Mutex::new(BTreeSet::new()),
            bound: (
                config.server.listen,
                config.admin.as_ref().map(|a| a.listen),
            ),
            workers: config.server.workers,
            pin_workers: config.server.pin_workers,
        })
    }

    /// Records the warnings logged at start, so that a reload does not log
    /// them again (only new ones).
    pub(crate) fn known_warnings(&self, diagnostics: &[config::Diagnostic]) {
        *self.warnings.lock().unwrap_or_else(|p| p.into_inner()) = diagnostics
            .iter()
            .filter(|d| d.severity == config::Severity::Warning)
            .map(|d| d.message.clone())
            .collect();
    }

    /// Loads, validates and compiles the config again, and swaps it in if
    /// anything changed. `reason` says why (for the log); `retry_refused`
    /// (SIGHUP) tries and logs again a config that was refused as it is.
    pub(crate) fn reload(&self, reason: &str, retry_refused: bool) -> Outcome {
        let mut report = config::load(&self.path, &self.opts);
        if self.opts.dev
            && let Some(cfg) = report.config.as_mut()
        {
            // As at start (dev_echo.rs): probe again, echo the unreachable.
            crate::dev_echo::divert_unreachable(cfg);
        }
        // What this attempt reads: the file as it is now, and the files the
        // serving config depends on (a refused config's own are unknown).
        let attempt = report.hash.rotate_left(1)
            ^ fingerprint(&self.path, &self.shared.runtime.load().config);
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if !retry_refused && *refused == Some(attempt) {
            tracing::debug!(reason, "refused config unchanged; nothing to reload");
            return Outcome::Unchanged;
        }
        *refused = None;
        let outcome = match report.config {
            Some(new) if !report.has_errors() => {
                let fp = fingerprint(&self.path, &new);
                let mut current = self.fingerprint.lock().unwrap_or_else(|p| p.into_inner());
                if *current == fp {
                    // Also the way back from a refused edit (the file was
                    // restored): the error below is cleared, and said so.
                    if retry_refused
                        && self
                            .shared
                            .reload
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .last_error
                            .is_none()
                    {
                        // SIGHUP asked: it deserves an answer.
                        tracing::info!(reason, "config unchanged; nothing to reload");
                    } else {
                        tracing::debug!(reason, "config unchanged; nothing to reload");
                    }
                    return self.record(Outcome::Unchanged, reason);
                }
                let old = self.shared.runtime.load_full();
                let summary = diff(&old.config, &new);
                let generation = old.generation + 1;
                let source = self.path.display().to_string();
                match Runtime::compile(
                    new.clone(),
                    Some(&old),
                    &self.shared.pools,
                    &self.shared.metrics,
                    generation,
                    report.hash,
                    &source,
                ) {
                    Ok(rt) => {
                        // Only warnings that are new: the others were logged
                        // before and still stand.
                        let mut known = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
                        let now: BTreeSet<String> = report
                            .diagnostics
                            .iter()
                            .filter(|d| d.severity == config::Severity::Warning)
                            .map(|d| d.message.clone())
                            .collect();
                        for w in report.diagnostics.iter().filter(|d| {
                            d.severity == config::Severity::Warning && !known.contains(&d.message)
                        }) {
                            tracing::warn!(diagnostic = %w, "config warning");
                        }
                        *known = now;
                        drop(known);
                        let keys = rt.client_keys();
                        self.shared.activate(rt);
                        // Only now: a failed compile must not drop clients the
                        // serving config still uses.
                        self.shared.pools.retain(&keys);
                        *current = fp;
                        self.shared.metrics.reloads_ok.fetch_add(1, Relaxed);
                        tracing::info!(generation, reason, changes = %summary.join("; "), "config reloaded");
                        let active = self.shared.runtime.load();
                        let server = &active.config.server;
                        let workers = (server.workers != self.workers).then(|| {
                            format!(
                                "server.workers (serving with {}, config says {})",
                                show_workers(self.workers),
                                show_workers(server.workers)
                            )
                        });
                        let pinned = (server.pin_workers != self.pin_workers).then(|| {
                            format!(
                                "server.pin_workers (serving with {}, config says {})",
                                self.pin_workers, server.pin_workers
                            )
                        });
                        for r in restart_needed(self.bound, &active.config)
                            .into_iter()
                            .chain(workers)
                            .chain(pinned)
                        {
                            tracing::warn!(setting = %r, "this setting changed but only takes effect after a restart; the old value keeps serving");
                        }
                        Outcome::Applied { generation }
                    }
                    Err(e) => {
                        Outcome::Rejected(vec![e.diagnostic(&new, &report.places).to_string()])
                    }
                }
            }
            _ => Outcome::Rejected(report.errors().map(ToString::to_string).collect()),
        };
        if matches!(outcome, Outcome::Rejected(_)) {
            *refused = Some(attempt);
        }
        self.record(outcome, reason)
    }

    /// Logs a refusal and records the attempt for the admin listener.
    fn record(&self, outcome: Outcome, reason: &str) -> Outcome {
        let mut status = self.shared.reload.lock().unwrap_or_else(|p| p.into_inner());
        status.last_attempt = Some(SystemTime::now());
        match &outcome {
            Outcome::Rejected(problems) => {
                self.shared.metrics.reloads_failed.fetch_add(1, Relaxed);
                for p in problems {
                    tracing::error!(problem = %p, reason, "config reload refused; the previous config keeps serving");
                }
                status.last_error = Some(problems.clone());
            }
            _ => {
                let was_refused = status.last_error.take().is_some();
                if was_refused && outcome == Outcome::Unchanged {
                    let generation = self.shared.runtime.load().generation;
                    tracing::info!(
                        generation,
                        reason,
                        "config in sync again: the file is valid and the last refused reload no longer applies"
                    );
                }
            }
        }
        outcome
    }

    /// What to watch: the directories whose changes may change the config
    /// (each dependency's own and, for a symlink, its target's), and the
    /// file names in them that matter (the dependencies and their targets).
    fn watch_set(&self) -> (BTreeSet<PathBuf>, BTreeSet<OsString>) {
        let cfg = self.shared.runtime.load().config.clone();
        let mut dirs = BTreeSet::new();
        let mut names = BTreeSet::new();
        for p in dependencies(&self.path, &cfg) {
            let target = std::fs::canonicalize(&p).ok();
            for f in std::iter::once(p.as_path()).chain(target.as_deref()) {
                // Canonical, so one directory is one entry: with a relative
                // `--config gateway.toml` it is both `.` and its absolute
                // path, and the watcher shares one kernel watch between
                // them, so unwatching one (when the file is briefly
                // missing) would silently drop both.
                dirs.extend(dir_of(f).map(|d| std::fs::canonicalize(&d).unwrap_or(d)));
                names.extend(f.file_name().map(OsStr::to_os_string));
            }
        }
        (dirs, names)
    }
}

fn dir_of(p: &Path) -> Option<PathBuf> {
    match p.parent() {
        Some(d) if d.as_os_str().is_empty() => Some(PathBuf::from(".")),
        Some(d) => Some(d.to_path_buf()),
        None => None,
    }
}

/// True when a file event may concern the config: it names one of the
/// files it depends on, or a Kubernetes ConfigMap entry (`..data`,
/// `..2026_…`), or nothing (the watcher lost track and rescans). Other
/// files in the same directories (a log file beside the config) are not
/// worth a check.
fn concerns_config(paths: &[PathBuf], names: &BTreeSet<OsString>) -> bool {
    paths.is_empty()
        || paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| names.contains(n) || n.as_encoded_bytes().starts_with(b".."))
        })
}

/// Every file the config's meaning depends on.
fn dependencies(path: &Path, cfg: &Config) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    if let Some(h) = &cfg.auth.hmac
        && let SecretSource::File(p) = &h.source
    {
        files.push(p.clone());
    }
    if let Some(t) = &cfg.server.tls {
        files.push(t.cert.clone());
        files.push(t.key.clone());
    }
    files.extend(cfg.routes.iter().filter_map(|r| r.ca_file.clone()));
    files
}

/// Files larger than this fingerprint as empty (no config, key or
/// certificate is that large; loading reports the real problem).
const FINGERPRINT_LIMIT: u64 = 16 << 20;

/// A hash over the contents of every dependency (a missing file hashes as
/// empty, and so does one that is not a regular file: reading a FIFO
/// would block the reload forever).
fn fingerprint(path: &Path, cfg: &Config) -> u64 {
    dependencies(path, cfg).iter().fold(0u64, |acc, f| {
        let bytes = config::values::read_regular_file(f, FINGERPRINT_LIMIT).unwrap_or_default();
        let h = config::hash_bytes(&bytes);
        acc.rotate_left(7) ^ h
    })
}

/// One line per difference between two configs, each found by comparing
/// values (the model types are `PartialEq`) and shown as the config
/// writes them; a secret only by count.
pub(crate) fn diff(old: &Config, new: &Config) -> Vec<String> {
    // Destructured, so a new section cannot be forgotten here.
    let Config {
        server,
        admin,
        auth: _, // below, with the secrets told apart
        cors,
        routes,
        injected_headers: _, // follows from the routes
        rate_limit,
        telemetry,
    } = new;
    let mut out = Vec::new();
    for r in routes {
        match old.routes.iter().find(|o| o.name == r.name) {
            None => out.push(format!(
                "route {:?} added ({} -> {})",
                r.name,
                r.prefix,
                r.upstream.as_ref().map_or("501", |u| u.url.as_str())
            )),
            Some(o) if o != r => {
                let what = route_changes(o, r);
                if what.is_empty() {
                    out.push(format!("route {:?} changed", r.name));
                }
                out.extend(what.into_iter().map(|w| format!("route {:?}: {w}", r.name)));
            }
            Some(_) => {}
        }
    }
    for o in &old.routes {
        if !routes.iter().any(|r| r.name == o.name) {
            out.push(format!("route {:?} removed", o.name));
        }
    }
    let secrets = |c: &Config| -> Vec<config::Secret> {
        c.auth
            .hmac
            .as_ref()
            .map(|h| h.all().cloned().collect())
            .unwrap_or_default()
    };
    // The secret's rotation is told apart from other auth changes.
    let settings = |c: &Config| {
        let mut a = c.auth.clone();
        if let Some(h) = &mut a.hmac {
            h.secret = config::Secret::new(Vec::new());
            h.older.clear();
        }
        a
    };
    if settings(old) != settings(new) {
        out.push("auth settings changed".into());
    } else if secrets(old) != secrets(new) {
        let (was, now) = (secrets(old).len(), secrets(new).len());
        if was == now {
            out.push("HMAC secret rotated".into());
        } else {
            // By count, never by value.
            out.push(format!("HMAC secrets changed ({was} -> {now} listed)"));
        }
    }
    if old.cors != *cors {
        out.push("CORS defaults changed".into());
    }
    if old.server != *server {
        out.push("server settings changed".into());
    }
    if old.admin != *admin {
        let show = |a: &Option<config::Admin>| {
            a.as_ref()
                .map_or_else(|| "none".to_owned(), |a| a.listen.to_string())
        };
        out.push(format!(
            "admin.listen {} -> {}",
            show(&old.admin),
            show(admin)
        ));
    }
    if old.rate_limit != *rate_limit {
        out.push("rate-limit settings changed".into());
    }
    if old.telemetry != *telemetry {
        out.push("telemetry settings changed".into());
    }
    if out.is_empty() {
        out.push("settings unchanged; files the config names (secret_file, TLS cert or key, ca_file) were re-read".into());
    }
    out
}

/// What changed in a route, one entry per setting, old -> new
/// (`upstream http://a -> http://b`); README "Reload".
fn route_changes(old: &config::Route, new: &config::Route) -> Vec<String> {
    // Destructured, so a new route setting cannot be forgotten here.
    let config::Route {
        name: _,
        prefix,
        upstream,
        auth,
        strip_prefix,
        methods,
        cors,
        timeout,
        http2,
        ca_file,
        inject,
        upgrades,
        limits,
    } = new;
    // Compared by value, shown as the config writes the value.
    fn note<T: PartialEq>(
        out: &mut Vec<String>,
        what: &str,
        was: &T,
        now: &T,
        show: impl Fn(&T) -> String,
    ) {
        if was != now {
            out.push(format!("{what} {} -> {}", show(was), show(now)));
        }
    }
    let mut out = Vec::new();
    let url = |u: &Option<config::Upstream>| {
        u.as_ref()
            .map_or_else(|| "\"\" (501)".to_owned(), |u| u.url.clone())
    };
    let methods_text = |m: &Option<Vec<http::Method>>| match m {
        None => "all".to_owned(),
        Some(m) => format!(
            "[{}]",
            m.iter()
                .map(http::Method::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let timeout_text = |t: &Option<std::time::Duration>| {
        t.map_or_else(
            || "server.request_timeout".to_owned(),
            config::values::format_duration,
        )
    };
    let ca_file_text = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.display().to_string())
    };
    let inject_text = |i: &Vec<config::Injection>| {
        let list: Vec<String> = i
            .iter()
            .map(|i| {
                format!(
                    "{}={}{}",
                    i.header,
                    i.claim,
                    if i.required { "!" } else { "" }
                )
            })
            .collect();
        format!("[{}]", list.join(" "))
    };
    let limits_text = |l: &Vec<config::Limit>| {
        let list: Vec<String> = l
            .iter()
            .map(|l| format!("{}({} {} burst {})", l.name, l.key, l.rate, l.burst))
            .collect();
        format!("[{}]", list.join(" "))
    };
    note(&mut out, "prefix", &old.prefix, prefix, String::clone);
    note(&mut out, "upstream", &old.upstream, upstream, url);
    note(&mut out, "auth", &old.auth, auth, |a| a.as_str().to_owned());
    note(
        &mut out,
        "strip_prefix",
        &old.strip_prefix,
        strip_prefix,
        bool::to_string,
    );
    note(&mut out, "methods", &old.methods, methods, methods_text);
    note(&mut out, "timeout", &old.timeout, timeout, timeout_text);
    note(&mut out, "http2", &old.http2, http2, bool::to_string);
    note(&mut out, "ca_file", &old.ca_file, ca_file, ca_file_text);
    note(&mut out, "inject", &old.inject, inject, inject_text);
    note(&mut out, "upgrades", &old.upgrades, upgrades, |u| {
        format!("[{}]", u.join(", "))
    });
    note(&mut out, "limits", &old.limits, limits, limits_text);
    if old.cors != *cors {
        out.push("CORS settings changed".to_owned());
    }
    out
}

/// Settings of `new` that differ from what the process bound at start
/// (`bound`: the public and admin listen addresses as configured then).
/// Listeners are not rebound on reload, so these need a restart; they are
/// reported on every applied reload until the config matches again.
pub(crate) fn restart_needed(bound: (SocketAddr, Option<SocketAddr>), new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if bound.0 != new.server.listen {
        out.push(format!(
            "server.listen (listening on {}, config says {})",
            bound.0, new.server.listen
        ));
    }
    let admin = new.admin.as_ref().map(|a| a.listen);
    if bound.1 != admin {
        let show = |a: Option<SocketAddr>| a.map_or("none".to_owned(), |a| a.to_string());
        out.push(format!(
            "admin.listen (listening on {}, config says {})",
            show(bound.1),
            show(admin)
        ));
    }
    // Span export is started once, with the endpoint of the first config
    // (README "Tracing").
    let exporting = crate::trace::export_endpoint();
    if exporting != new.telemetry.otlp_endpoint.as_ref() {
        let show = |u: Option<&http::Uri>| u.map_or("none".to_owned(), ToString::to_string);
        out.push(format!(
            "telemetry.otlp_endpoint (exporting to {}, config says {})",
            show(exporting),
            show(new.telemetry.otlp_endpoint.as_ref())
        ));
    }
    out
}

/// A `[server] workers` value as the restart warning shows it.
fn show_workers(w: Option<usize>) -> String {
    w.map_or_else(|| "the default (one per CPU)".to_owned(), |n| n.to_string())
}

/// Why a check was scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Something changed in a watched directory: debounced.
    File,
    /// SIGHUP: reload now.
    Signal,
}

impl Trigger {
    fn reason(self) -> &'static str {
        match self {
            Trigger::File => "file change",
            Trigger::Signal => "SIGHUP",
        }
    }
}

/// Watches the config's directories and reloads on change; also reloads on
/// SIGHUP. Runs until the process ends. Call it from inside the runtime:
/// the SIGHUP handler is installed before this returns, so a SIGHUP sent
/// once the gateway logs that it serves never kills the process.
pub(crate) fn spawn(reloader: Arc<Reloader>) -> notify::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();
    let event_tx = tx.clone();
    let names: Arc<Mutex<BTreeSet<OsString>>> = Arc::default();
    let wanted = names.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && !matches!(ev.kind, notify::EventKind::Access(_))
            && concerns_config(&ev.paths, &wanted.lock().unwrap_or_else(|p| p.into_inner()))
        {
            let _ = event_tx.send(Trigger::File);
        }
    })?;
    let mut watching: BTreeSet<PathBuf> = BTreeSet::new();
    let mut rewatch =
        move |watcher: &mut notify::RecommendedWatcher,
              (want, files): (BTreeSet<PathBuf>, BTreeSet<OsString>)| {
            *names.lock().unwrap_or_else(|p| p.into_inner()) = files;
            for d in watching.difference(&want) {
                // Fails harmlessly when the directory is gone (an old
                // ConfigMap `..2026_…` folder): the kernel dropped the watch.
                let _ = watcher.unwatch(d);
            }
            let mut now = BTreeSet::new();
            for d in want {
                if watching.contains(&d) {
                    now.insert(d);
                    continue;
                }
                match watcher.watch(&d, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        now.insert(d);
                    }
                    Err(e) => {
                        tracing::warn!(dir = %d.display(), error = %e, "cannot watch directory; changes there need SIGHUP")
                    }
                }
            }
            // Only directories actually watched are remembered, so one that
            // appears later is picked up by the next check.
            watching = now;
        };
    rewatch(&mut watcher, reloader.watch_set());

    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Installed here, not in the task, so there is no window in which
        // SIGHUP still has its default action (terminate).
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP: reloading");
                        let _ = tx.send(Trigger::Signal);
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle SIGHUP; reloads follow file changes only")
            }
        }
    }

    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut trigger = first;
            if trigger == Trigger::File {
                // Debounce: DEBOUNCE of quiet, but no longer than MAX_DELAY
                // in all; a SIGHUP meanwhile cuts it short.
                let cap = Instant::now() + MAX_DELAY;
                loop {
                    let wait = DEBOUNCE.min(cap.saturating_duration_since(Instant::now()));
                    match tokio::time::timeout(wait, rx.recv()).await {
                        Ok(Some(Trigger::File)) if Instant::now() < cap => continue,
                        Ok(Some(t)) => {
                            trigger = t;
                            break;
                        }
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
            }
            // Whatever queued up so far is covered by the check below,
            // which reads the files after it.
            while let Ok(t) = rx.try_recv() {
                if t == Trigger::Signal {
                    trigger = t;
                }
            }
            let r = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || {
                r.reload(trigger.reason(), trigger == Trigger::Signal)
            })
            .await;
            // Symlink targets move (ConfigMap swaps), dependencies come and
            // go: follow them after every check.
            rewatch(&mut watcher, reloader.watch_set());
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(listen: &str, admin: Option<&str>, routes: &str) -> Config {
        let admin = admin.map_or(String::new(), |a| format!("[admin]\nlisten = \"{a}\"\n"));
        let src = format!(
            "[server]\nlisten = \"{listen}\"\n{admin}[auth]\nsecret = \"0123456789abcdef0123456789abcdef-test\"\n{routes}"
        );
        let report = config::load_str(
            &src,
            "t.toml",
            PathBuf::from("."),
            &LoadOptions::default(),
            &|_| None,
        );
        report
            .config
            .unwrap_or_else(|| panic!("{:?}", report.diagnostics))
    }

    const A: &str = "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"none\"\n";
    const B: &str = "[[routes]]\nname = \"b\"\nprefix = \"/b\"\nupstream = \"http://127.0.0.1:2\"\nauth = \"none\"\n";

    #[test]
    fn only_events_about_the_config_files_count() {
        let names: BTreeSet<OsString> = ["gateway.toml", "jwt"].map(OsString::from).into();
        let p = |s: &str| vec![PathBuf::from(s)];
        assert!(concerns_config(&p("/etc/nyro/gateway.toml"), &names));
        assert!(concerns_config(&p("/etc/nyro/..data"), &names));
        assert!(concerns_config(
            &p("/etc/nyro/..2026_11_28_10_00_00.1"),
            &names
        ));
        assert!(concerns_config(&p("/run/secrets/jwt"), &names));
        assert!(concerns_config(&[], &names), "a rescan");
        assert!(!concerns_config(&p("/etc/nyro/gateway.log"), &names));
        assert!(!concerns_config(&p("/etc/nyro/.gateway.toml.swp"), &names));
        assert!(!concerns_config(
            &[PathBuf::from("/etc/nyro/a"), PathBuf::from("/etc/nyro/b")],
            &names
        ));
    }

    #[test]
    fn restart_needed_compares_with_what_is_bound() {
        let start = cfg("127.0.0.1:8080", Some("127.0.0.1:9901"), A);
        let bound = (start.server.listen, start.admin.as_ref().map(|a| a.listen));
        assert!(restart_needed(bound, &start).is_empty());
        let moved = cfg("127.0.0.1:8081", Some("127.0.0.1:9901"), A);
        let r = restart_needed(bound, &moved);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].starts_with("server.listen") && r[0].contains("8081"),
            "{r:?}"
        );
        // Moving back to the bound address needs nothing.
        assert!(restart_needed(bound, &start).is_empty());
        let no_admin = cfg("127.0.0.1:8080", None, A);
        let r = restart_needed(bound, &no_admin);
        assert!(r.len() == 1 && r[0].starts_with("admin.listen"), "{r:?}");
    }

    #[test]
    fn diff_shows_route_settings_as_the_config_writes_them() {
        let one = cfg("127.0.0.1:8080", None, A);
        let changed = |extra: &str| cfg("127.0.0.1:8080", None, &format!("{A}{extra}"));
        assert_eq!(
            diff(&one, &changed("timeout = \"2m\"\n")),
            vec!["route \"a\": timeout server.request_timeout -> 2m".to_owned()]
        );
        assert_eq!(
            diff(&one, &changed("upgrades = [\"My-Proto\", \"x/1\"]\n")),
            vec!["route \"a\": upgrades [] -> [my-proto, x/1]".to_owned()]
        );
        assert_eq!(
            diff(&one, &changed("ca_file = \"Cargo.toml\"\n")),
            vec!["route \"a\": ca_file none -> ./Cargo.toml".to_owned()]
        );
    }

    #[test]
    fn diff_names_telemetry_and_admin_changes() {
        let one = cfg("127.0.0.1:8080", None, A);
        let sampled = cfg(
            "127.0.0.1:8080",
            None,
            &format!("[telemetry]\nsample_ratio = 0.5\n{A}"),
        );
        assert_eq!(
            diff(&one, &sampled),
            vec!["telemetry settings changed".to_owned()]
        );
        let admin = cfg("127.0.0.1:8080", Some("127.0.0.1:9901"), A);
        assert_eq!(
            diff(&one, &admin),
            vec!["admin.listen none -> 127.0.0.1:9901".to_owned()]
        );
    }

    #[test]
    fn diff_names_added_removed_and_changed_routes() {
        let one = cfg("127.0.0.1:8080", None, A);
        let two = cfg("127.0.0.1:8080", None, &format!("{A}{B}"));
        assert_eq!(
            diff(&one, &two),
            vec!["route \"b\" added (/b -> http://127.0.0.1:2)".to_owned()]
        );
        assert_eq!(diff(&two, &one), vec!["route \"b\" removed".to_owned()]);
        let changed = cfg("127.0.0.1:8080", None, &A.replace("/a", "/aa"));
        assert_eq!(
            diff(&one, &changed),
            vec!["route \"a\": prefix /a -> /aa".to_owned()]
        );
        assert_eq!(
            diff(&one, &one),
            vec!["settings unchanged; files the config names (secret_file, TLS cert or key, ca_file) were re-read".to_owned()]
        );
    }
}
