//! nyro-gw: a configuration-driven API gateway.
//!
//! - `auth`: JWT verification (HMAC + JWKS), claim injection, `Bearer` extraction
//! - `cli`: the clap definitions (help, man pages, completions come from here)
//! - `cmd`: one module per command (`token`)
//! - `config`: `gateway.toml` -> validated `Config`, with `file:line:col` diagnostics
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod cmd;
pub mod config;
