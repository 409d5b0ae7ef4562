//! TEMPORARY stub (replaced by the auth branch).
use std::process::ExitCode;
/// stub
pub fn inspect(_args: crate::cli::TokenInspectArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
/// stub
pub fn mint(_args: crate::cli::TokenMintArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
