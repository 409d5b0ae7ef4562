//! `nyro-gw schema`: prints the JSON Schema of `gateway.toml`, generated
//! from the config key table (`config::json_schema`).

use std::io::Write;
use std::process::ExitCode;

/// Writes the schema to stdout.
pub fn run() -> anyhow::Result<ExitCode> {
    std::io::stdout().write_all(crate::config::json_schema::render().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
