//! One integration binary: the real gateway on 127.0.0.1:0 against real
//! upstreams, driven by real clients.

mod auth;
mod browser;
mod ci_check;
mod config_cli;
mod conn;
mod cors;
mod dev_echo;
mod generated;
mod inspect_exit;
mod jwks_unavailable;
mod observe;
mod ops;
mod pool;
mod props;
mod proxy;
mod proxy_hardening;
mod ratelimit;
mod reload;
mod reload_logs;
mod rotation;
mod security_map;
mod support;
mod tls_admin;
mod token_cli;
mod type_errors;
mod wire;
mod workers;
