//! `man/` and `completions/` are generated from the clap definitions and
//! committed; this test renders them again and fails when a committed file
//! is stale, missing, or no longer produced.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const FIX: &str = "run `cargo run -- generate --out .` (or `nyro-gw generate --out .`) \
                   from the repository root and commit man/, completions/ and gateway.schema.json";

/// Every file under `dir`, relative to `root`.
fn committed_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("read_dir entry").path();
        if path.is_dir() {
            committed_files(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

#[test]
fn render_produces_a_man_page_per_visible_command_three_completions_and_the_config_schema() {
    let files = nyro_gw::cmd::generate::render().expect("render");
    let names: BTreeSet<String> = files
        .iter()
        .map(|(p, _)| p.to_string_lossy().replace('\\', "/"))
        .collect();
    let want: BTreeSet<String> = [
        "man/nyro-gw.1",
        "man/nyro-gw-serve.1",
        "man/nyro-gw-check-config.1",
        "man/nyro-gw-token.1",
        "man/nyro-gw-token-inspect.1",
        "man/nyro-gw-token-mint.1",
        "man/nyro-gw-schema.1",
        "man/gateway.toml.5",
        "gateway.schema.json",
        "completions/nyro-gw.bash",
        "completions/_nyro-gw",
        "completions/nyro-gw.fish",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, want, "the hidden `generate` command gets no page");
    assert!(files.iter().all(|(_, content)| !content.is_empty()));
}

#[test]
fn committed_man_pages_and_completions_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = nyro_gw::cmd::generate::render().expect("render");
    let mut problems = Vec::new();
    for (rel, content) in &files {
        match std::fs::read(root.join(rel)) {
            Ok(committed) if committed == *content => {}
            Ok(_) => problems.push(format!("{} is stale", rel.display())),
            Err(e) => problems.push(format!("{} is missing ({e})", rel.display())),
        }
    }
    let rendered: BTreeSet<&PathBuf> = files.iter().map(|(p, _)| p).collect();
    let mut committed = Vec::new();
    for dir in ["man", "completions"] {
        committed_files(root, &root.join(dir), &mut committed);
    }
    for rel in committed.iter().filter(|p| !rendered.contains(p)) {
        problems.push(format!(
            "{} is no longer generated; delete it",
            rel.display()
        ));
    }
    assert!(problems.is_empty(), "{}\n{FIX}", problems.join("\n"));
}

/// The candidates bash offers for the words of `line` (the last word being
/// completed), from the committed completion script, or None when bash is
/// not installed.
fn bash_candidates(line: &str) -> Option<Vec<String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/nyro-gw.bash");
    let words: Vec<&str> = line.split(' ').collect();
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _nyro__gw nyro-gw '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words[cword],
        words[cword.saturating_sub(1)],
    );
    let out = match std::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &program])
        .output()
    {
        Ok(out) => out,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: bash is not available ({e})");
            return None;
        }
        Err(e) => panic!("bash is needed under CI=true: {e}"),
    };
    assert!(
        out.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn bash_completion_works_below_the_first_word() {
    for (line, want) in [
        ("nyro-gw ", &["serve", "check-config", "token"][..]),
        ("nyro-gw token ", &["inspect", "mint"][..]),
        ("nyro-gw check-config --format ", &["text", "json"][..]),
        ("nyro-gw serve --log-format ", &["json", "pretty"][..]),
        ("nyro-gw serve --", &["--config", "--dev"][..]),
        ("nyro-gw check-config -", &["--config", "--format"][..]),
    ] {
        let Some(got) = bash_candidates(line) else {
            return;
        };
        for w in want {
            assert!(
                got.iter().any(|g| g == w),
                "`{line}<TAB>` should offer {w}; bash offered {got:?}"
            );
        }
    }
}
