//! The `nyro-gw` binary: parse the command line and dispatch. Everything
//! else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use nyro_gw::cli::{Cli, Command, TokenCommand};
use nyro_gw::cmd;

/// jemalloc instead of glibc's malloc: per-thread caches suit the
/// thread-per-core workers, and with its background thread and a 50 ms decay
/// (`.cargo/config.toml`) freed pages go back to the system within seconds
/// of a load ending (glibc kept 84 MiB after 1,000 connections closed).
/// README "Performance".
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args, cli.log_format),
        Command::CheckConfig(args) => cmd::check_config::run(args),
        Command::Token(TokenCommand::Inspect(args)) => cmd::token::inspect(args),
        Command::Token(TokenCommand::Mint(args)) => cmd::token::mint(args),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Schema => cmd::schema::run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
