//! nyro-gw: a configuration-driven API gateway.
//!
//! - `cli`: the clap definitions (help, man pages, completions come from here)
//! - `config`: `gateway.toml` -> validated `Config`, with `file:line:col` diagnostics
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
