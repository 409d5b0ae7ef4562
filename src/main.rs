//! The `nyro-gw` binary: parse the command line and dispatch. Everything
//! else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use nyro_gw::cli::{Cli, Command, TokenCommand};
use nyro_gw::cmd;

/// jemalloc instead of glibc's malloc: per-thread caches suit the
/// thread-per-core workers, and with its background thread freed pages go
/// back to the system within seconds of a load ending (glibc kept 84 MiB
/// after 1,000 connections closed; jemalloc is back near 25 MiB in 10 s).
/// README "Performance".
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Purging without allocation activity needs jemalloc's background
    // thread; without it (an error here) RSS still falls, only later.
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
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
