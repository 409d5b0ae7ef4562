//! One integration binary: the real gateway on 127.0.0.1:0 against real
//! upstreams, driven by real clients.

mod auth;
mod config_cli;
mod generated;
mod proxy;
mod support;
mod token_cli;
