//! `nyro-gw generate` (hidden): writes `man/` and `completions/` from the
//! clap definitions. A test renders them again and fails when the committed
//! files are stale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, GenerateArgs};

/// Every generated file: (path relative to the repository root, content).
pub fn render() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    // Built once, as clap_mangen's own generate_to does: building gives each
    // subcommand its bin name ("nyro-gw check-config"), display name
    // ("nyro-gw-check-config") and the propagated version. The `help`
    // subcommand is left out of the pages (it would list a page that does
    // not exist); the binary keeps it.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(&cmd, &mut files)?;
    for (shell, name) in [
        (Shell::Bash, "nyro-gw.bash"),
        (Shell::Zsh, "_nyro-gw"),
        (Shell::Fish, "nyro-gw.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "nyro-gw", &mut buf);
        files.push((Path::new("completions").join(name), buf));
    }
    Ok(files)
}

/// `man/<display name>.1` for `cmd` and each visible subcommand below it.
fn man_pages(cmd: &clap::Command, files: &mut Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<()> {
    let page = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .source(format!("nyro-gw {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)?;
    files.push((Path::new("man").join(format!("{page}.1")), buf));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, files)?;
    }
    Ok(())
}

/// Writes the generated files under `args.out`.
pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    for (rel, content) in render()? {
        let path = args.out.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, content)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
