//! nyro-gw: a configuration-driven API gateway.
//!
//! Module map:
//! - `cli`       clap definitions; help, man pages and completions come from here
//! - `cmd`       one file per command: serve, check_config, token, generate
//! - `config`    `gateway.toml` -> validated `Config`, with `file:line:col` diagnostics
//! - `runtime`   the immutable snapshot every request reads; swapped whole on reload
//! - `reload`    watch the files, debounce, compile, swap; keep the old config on error
//! - `state`     the shared gateway state: active runtime, pools, metrics, reload status
//! - `server`    listeners, TLS, connection tasks, graceful drain
//! - `framing`   the HTTP/1.1 request-framing watch on the socket (400 for CL + TE)
//! - `pipeline`  one request's phases in order, readable top to bottom
//! - `routing`   longest whole-segment prefix matching
//! - `cors`      preflights and CORS response headers
//! - `auth`      JWT verification, JWKS, claim injection
//! - `ratelimit` per-tenant rate limits: GCRA buckets, local or in Redis
//! - `proxy`     upstream clients, body wrappers, header rules, forwarding
//! - `error`     the gateway's error kinds and the one place they become statuses
//! - `admin`     the admin listener: metrics and the active config
//! - `dev_echo`  `serve --dev`: a built-in echo upstream for unreachable routes
//! - `telemetry` logs and metrics
//! - `metrics`   process-wide counters and gauges, and their fixed labels
//! - `trace`     W3C Trace Context propagation and OTLP span export
#![forbid(unsafe_code)]

pub(crate) mod admin;
pub mod auth;
pub mod cli;
pub mod cmd;
pub mod config;
pub(crate) mod cors;
pub(crate) mod dev_echo;
pub(crate) mod error;
pub(crate) mod framing;
pub(crate) mod metrics;
pub(crate) mod pipeline;
pub mod proxy;
pub(crate) mod ratelimit;
pub(crate) mod reload;
pub mod routing;
pub(crate) mod runtime;
pub(crate) mod server;
pub mod state;
pub(crate) mod telemetry;
pub(crate) mod timer;
pub(crate) mod trace;
pub(crate) mod worker;
