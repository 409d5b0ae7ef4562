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
    let cmd = Cli::command();
    man_pages(&cmd, "nyro-gw", &mut files)?;
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

fn man_pages(
    cmd: &clap::Command,
    name: &str,
    files: &mut Vec<(PathBuf, Vec<u8>)>,
) -> anyhow::Result<()> {
    let cmd = cmd
        .clone()
        .name(name.to_owned())
        .bin_name(name.replace('-', " ").replacen("nyro gw", "nyro-gw", 1));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    files.push((Path::new("man").join(format!("{name}.1")), buf));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), files)?;
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
