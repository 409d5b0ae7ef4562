//! The `nyro-gw` binary: parse the command line, dispatch, map errors to
//! exit codes. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use nyro_gw::cli::{Cli, Command, TokenCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Token(TokenCommand::Inspect(args)) => nyro_gw::cmd::token::inspect(args),
        Command::Token(TokenCommand::Mint(args)) => nyro_gw::cmd::token::mint(args),
        Command::Serve(_) | Command::CheckConfig(_) | Command::Generate(_) => {
            Err(anyhow::anyhow!("not yet implemented"))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
