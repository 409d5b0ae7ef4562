//! `nyro-gw serve`: load, compile, listen, reload, drain.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{LogFormat, ServeArgs, resolve_config_path};
use crate::config::{self, Config, LoadOptions, Loaded, SecretSource, Severity};
use crate::proxy::client::Pools;
use crate::runtime::Runtime;
use crate::server;
use crate::state::Shared;
use crate::telemetry::{self, Metrics};

/// Runs the gateway until SIGTERM/SIGINT. Exit 1 when it cannot start
/// (problems go to stderr, the only thing stderr ever carries).
pub fn run(args: ServeArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let path = resolve_config_path(args.config);
    let opts = LoadOptions {
        dev: args.dev,
        ..LoadOptions::default()
    };
    let builtin = args.dev && !path.exists();
    let loaded = if builtin {
        config::load_builtin(&opts)
    } else {
        config::load(&path, &opts)
    };
    let source = loaded.source.clone();
    let Some(cfg) = loaded.config.as_ref().filter(|_| !loaded.has_errors()) else {
        for d in &loaded.diagnostics {
            eprintln!("{d}");
        }
        eprintln!(
            "error: {source} is invalid; nothing was started (run `nyro-gw check-config {source}` after fixing it)"
        );
        return Ok(ExitCode::FAILURE);
    };
    let format = log_format.unwrap_or(if args.dev {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    telemetry::init_logging(format);
    for d in loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
    {
        tracing::warn!(diagnostic = %d, "config warning");
    }
    // Each `${VAR:-default}` that fell back, once, so that the running
    // environment can be compared with check-config's.
    for d in loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Info)
    {
        tracing::info!(diagnostic = %d, "config default used");
    }
    // The control runtime: signals, reloads, the admin listener, JWKS
    // refreshes. Requests are served by the workers (`server::run_workers`).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(serve(
        cfg.clone(),
        &loaded,
        (!builtin).then_some(path),
        opts,
    ));
    // Connections are drained by now. Dropping the runtime would wait for
    // every blocking task, e.g. a reload stuck reading a file that never
    // ends; exiting must not wait on it.
    rt.shutdown_background();
    code
}

async fn serve(
    cfg: Config,
    loaded: &Loaded,
    path: Option<PathBuf>,
    opts: LoadOptions,
) -> anyhow::Result<ExitCode> {
    // --dev: routes whose upstream is unreachable go to the built-in echo
    // (dev_echo.rs); probed off the runtime's threads, before compiling.
    let cfg = if opts.dev {
        tokio::task::spawn_blocking(move || {
            let mut cfg = cfg;
            crate::dev_echo::divert_unreachable(&mut cfg);
            cfg
        })
        .await?
    } else {
        cfg
    };
    let workers = cfg.server.worker_count();
    let pools = Pools::new(workers);
    let metrics = Metrics::default();
    let listen = cfg.server.listen;
    let admin_listen = cfg.admin.as_ref().map(|a| a.listen);
    let dev = opts.dev;
    let source = &loaded.source;
    let runtime = match Runtime::compile(
        cfg.clone(),
        None,
        &pools,
        &metrics,
        1,
        loaded.hash,
        source,
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}", e.diagnostic(&cfg, &loaded.places));
            eprintln!(
                "error: {source} is invalid; nothing was started (run `nyro-gw check-config {source}` after fixing it)"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let listener = match bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot listen on {listen}: {e} (set [server].listen, e.g. GATEWAY_LISTEN=127.0.0.1:8081)"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let admin = match admin_listen {
        Some(a) => match tokio::net::TcpListener::bind(a).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: cannot listen on {a} (admin): {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => None,
    };
    if let Some(endpoint) = &cfg.telemetry.otlp_endpoint
        && let Err(e) = crate::trace::start_export(endpoint)
    {
        eprintln!(
            "error: {e} (set [telemetry] otlp_endpoint to an OTLP/HTTP collector, e.g. \"http://otel-collector:4318\")"
        );
        return Ok(ExitCode::FAILURE);
    }
    let shared = Shared::new(runtime, pools, metrics);
    let local = listener.local_addr()?;
    if let Some(path) = path {
        let reloader = crate::reload::Reloader::new(path, opts, shared.clone(), &cfg);
        reloader.known_warnings(&loaded.diagnostics);
        if let Err(e) = crate::reload::spawn(reloader) {
            tracing::warn!(error = %e, "cannot watch the config; reload with SIGHUP");
        }
    } else {
        tracing::info!(
            "serving the built-in config: no file to watch (create ./gateway.toml to change routes)"
        );
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(l) = admin {
        let shared = shared.clone();
        let mut rx = stop_rx.clone();
        tracing::info!(listen = %l.local_addr()?, "admin listener serving /metrics and /config");
        tokio::spawn(server::run_admin(l, shared, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
    }
    // Logged last, once the watcher, the SIGHUP handler and the admin
    // listener are in place: "serving" means all of it is ready.
    tracing::info!(listen = %local, config = %source, routes = cfg.routes.len(), workers, version = env!("CARGO_PKG_VERSION"), "nyro-gw serving");
    if dev {
        dev_banner(&cfg, local).await;
    }

    let drained = match server::run_workers(listener, shared, workers, shutdown_signal()).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot start {workers} serving workers: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let _ = stop_tx.send(true);
    Ok(if drained {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Binds the public listener: `SO_REUSEADDR` (a restart need not wait for
/// the old sockets' TIME_WAIT) but never `SO_REUSEPORT`, so a second gateway
/// on the same port fails with "address in use"; a backlog of 4096, so a
/// burst of connections waits in the kernel rather than being refused.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)?.into_std()
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `--dev`: a minted token, a ready curl line, and which upstreams answer.
async fn dev_banner(cfg: &Config, local: std::net::SocketAddr) {
    let host = if local.ip().is_unspecified() {
        format!("127.0.0.1:{}", local.port())
    } else {
        local.to_string()
    };
    // Which upstreams answer, so the curl line can point at one that does.
    let mut reachable = Vec::with_capacity(cfg.routes.len());
    for r in &cfg.routes {
        let Some(up) = &r.upstream else {
            reachable.push(false);
            continue;
        };
        let port = up
            .authority
            .port_u16()
            .unwrap_or(if up.https { 443 } else { 80 });
        let addr = format!("{}:{port}", up.authority.host());
        let ok = matches!(
            tokio::time::timeout(
                Duration::from_millis(800),
                tokio::net::TcpStream::connect(&addr)
            )
            .await,
            Ok(Ok(_))
        );
        if !ok {
            let var = format!(
                "GATEWAY_{}_SERVICE_URL",
                r.name.to_ascii_uppercase().replace('-', "_")
            );
            tracing::warn!(
                route = %r.name,
                upstream = %up.url,
                "upstream not reachable from here; requests will get 503. Point it elsewhere, e.g. {var}=http://127.0.0.1:9000 \
                 with `cargo run --example echo_upstream -- 127.0.0.1:9000` running"
            );
        }
        reachable.push(ok);
    }
    let echoed: Vec<&str> = cfg
        .routes
        .iter()
        .filter(|r| r.upstream.as_ref().is_some_and(crate::dev_echo::is_echo))
        .map(|r| r.name.as_str())
        .collect();
    if !echoed.is_empty() {
        println!(
            "\n  served by the built-in dev echo (their upstream is not reachable from here): {}\n  \
             it answers with the request it received, identity headers included (X-Nyro-Dev-Echo: 1)",
            echoed.join(", ")
        );
    }
    let authed = |r: &&config::Route| r.auth != config::AuthMode::None;
    let route = cfg
        .routes
        .iter()
        .zip(&reachable)
        .find(|(r, ok)| **ok && authed(r))
        .map(|(r, _)| r)
        .or_else(|| cfg.routes.iter().find(authed))
        .or(cfg.routes.first());
    let (Some(hmac), Some(route)) = (&cfg.auth.hmac, route) else {
        return;
    };
    let claims = serde_json::json!({
        "sub": "dev-user",
        "email": "dev@example.com",
        "role": "authenticated",
        "app_metadata": { "company_id": "dev-company" }
    });
    let claims = claims.as_object().cloned().unwrap_or_default();
    match crate::auth::mint_for_config(&cfg.auth, claims, Duration::from_secs(12 * 3600)) {
        Ok(token) => {
            let kind = if hmac.source == SecretSource::Ephemeral {
                "ephemeral secret, valid until restart"
            } else {
                "configured secret"
            };
            println!("\n  dev token ({kind}, 12h):\n\n    {token}\n");
            if hmac.source == SecretSource::Ephemeral {
                println!(
                    "  the ephemeral secret changes on every start: a token from an earlier run gets \"signature is invalid\"\n"
                );
            }
            println!(
                "  try it:\n\n    curl -i -H \"Authorization: Bearer {token}\" http://{host}{}/\n",
                route.prefix.trim_end_matches('/')
            );
        }
        Err(e) => tracing::warn!(error = %e, "could not mint a dev token"),
    }
}
