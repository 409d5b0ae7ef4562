//! The module layers, checked from the `use` lines rather than by eye.
//!
//! Imports run down the layers only, never up, and no two top-level modules
//! import each other, directly or round a longer circle. Inside a module
//! directory, no two sibling files import each other either. The table is
//! in [`LAYERS`]; CONTRIBUTING.md explains it. A new top-level module must
//! be placed in it: the test fails on a module it does not know.
//!
//! It reads every `src/**/*.rs` (except `main.rs`, the binary, which sits
//! on top and reaches the library as `nyro_gw::`) for `crate::a::…` paths
//! and, within a module directory, `super::b` and `crate::a::b` paths to a
//! sibling file. Comment lines are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first. A module may import from its
/// own layer or any lower one.
///
/// Placed by judgement, as they are not in the structure issue's list:
/// - `framing` (the HTTP/1.1 request-framing watch) imports nothing of ours
///   and is used by `server` and `pipeline`: a leaf, at the bottom.
/// - `state` (the shared state: the `Runtime` swap, pools, metrics, reload
///   status) holds a `Runtime` and is read by `server`, `pipeline`, `admin`
///   and written by `reload`: with `runtime` and `reload`.
/// - `ratelimit` (rate-limit buckets, local and in Redis) reads `auth`'s
///   verified identity and `telemetry`'s counters, and is compiled into
///   the `Runtime`: its own layer between them.
/// - `metrics` (process-wide counters the auth layer, the server and the
///   pipeline bump) and `trace` (Trace Context, span export) sit with
///   `telemetry`, which registers them; they import only `error`.
/// - `cli` and `cmd` are the top with the binary; `cli` re-exports
///   `telemetry::LogFormat`, so the log format is declared with logging.
const LAYERS: &[&[&str]] = &[
    &["config", "error", "framing"],
    &[
        "routing",
        "cors",
        "auth",
        "proxy",
        "telemetry",
        "metrics",
        "trace",
        "dev_echo",
    ],
    &["ratelimit"],
    &["runtime", "reload", "state"],
    &["server", "pipeline", "admin"],
    &["cli", "cmd"],
];

/// Known upward imports, each with why it is still here. An entry that no
/// longer matches an import fails the test, so the list only shrinks.
const ALLOWED_UPWARD: &[(&str, &str)] = &[];

/// Known circles between sibling files of one module, `(module, a, b)`
/// with `a < b`, each with why it is still here. Stale entries fail.
/// None is left: the last one (proxy body.rs <-> forward.rs) went when
/// body.rs took `cause_chain` from `error`, below both.
const ALLOWED_SIBLING_CIRCLES: &[(&str, &str, &str)] = &[];

struct Import {
    file: String,
    line: usize,
    text: String,
    from: String,
    to: String,
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The identifiers that follow each `prefix` on `line` (`crate::` or
/// `super::`), not counting `$crate::`; a `{a, b}` group after `crate::`
/// yields each of its first names.
fn idents_after(line: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        let before = &rest[..i];
        let after = &rest[i + prefix.len()..];
        rest = after;
        let glued = before
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':');
        if glued {
            continue;
        }
        let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or("");
            group
                .split(',')
                .map(|p| p.trim().split("::").next().unwrap_or("").trim())
                .collect()
        } else {
            vec![after]
        };
        for n in names {
            let id: String = n
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !id.is_empty() {
                found.push(id);
            }
        }
    }
    found
}

/// `src/auth/verify.rs` -> ("auth", Some("verify")); `src/auth/mod.rs` ->
/// ("auth", None); `src/pipeline.rs` -> ("pipeline", None).
fn module_of(rel: &Path) -> (String, Option<String>) {
    let parts: Vec<String> = rel
        .iter()
        .skip(1)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let stem = |s: &str| s.trim_end_matches(".rs").to_owned();
    match parts.as_slice() {
        [file] => (stem(file), None),
        [dir, file, ..] if file == "mod.rs" => (dir.clone(), None),
        [dir, file, ..] => (dir.clone(), Some(stem(file))),
        [] => unreachable!("a file under src/"),
    }
}

#[test]
fn imports_run_down_the_layers_without_circles() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);

    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("read src/lib.rs");
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_owned())
        .collect();
    let mut problems = String::new();
    for m in &declared {
        if layer_of(m).is_none() {
            let _ = writeln!(
                problems,
                "src/lib.rs: module `{m}` is in no layer: place it in LAYERS in tests/layering.rs"
            );
        }
    }

    let mut top: Vec<Import> = Vec::new();
    // (module dir, from file, to file) -> first import seen.
    let mut siblings: BTreeMap<(String, String, String), Import> = BTreeMap::new();
    for path in &files {
        let rel = path.strip_prefix(&root).expect("under the root");
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        if rel_s == "src/main.rs" || rel_s == "src/lib.rs" {
            continue;
        }
        let (module, file) = module_of(rel);
        let text = std::fs::read_to_string(path).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let code = code.split(" //").next().unwrap_or(code);
            let import = |to: &str| Import {
                file: rel_s.clone(),
                line: n + 1,
                text: line.trim().to_owned(),
                from: module.clone(),
                to: to.to_owned(),
            };
            for to in idents_after(code, "crate::") {
                if to != module {
                    top.push(import(&to));
                } else if let Some(from_file) = &file {
                    // crate::auth::jwks::X from src/auth/verify.rs
                    let tail = code.split("crate::").nth(1).unwrap_or("");
                    let inner = idents_after(tail, &format!("{module}::"));
                    for to_file in inner {
                        let key = (module.clone(), from_file.clone(), to_file.clone());
                        siblings.entry(key).or_insert_with(|| import(&to_file));
                    }
                }
            }
            if let Some(from_file) = &file {
                for to_file in idents_after(code, "super::") {
                    let key = (module.clone(), from_file.clone(), to_file.clone());
                    siblings.entry(key).or_insert_with(|| import(&to_file));
                }
            }
        }
    }

    // Upward imports.
    let mut allowed_used = BTreeSet::new();
    for i in &top {
        let (Some(from), Some(to)) = (layer_of(&i.from), layer_of(&i.to)) else {
            if layer_of(&i.to).is_none() && declared.contains(&i.to) {
                let _ = writeln!(problems, "{}:{}: `{}` is in no layer", i.file, i.line, i.to);
            }
            continue;
        };
        if to > from {
            if let Some(a) = ALLOWED_UPWARD
                .iter()
                .find(|(f, m)| *f == i.file && *m == i.to)
            {
                allowed_used.insert(*a);
                continue;
            }
            let _ = writeln!(
                problems,
                "{}:{}: `{}` (layer {from}) imports upward from `{}` (layer {to}): {}",
                i.file, i.line, i.from, i.to, i.text
            );
        }
    }
    for a in ALLOWED_UPWARD {
        if !allowed_used.contains(a) {
            let _ = writeln!(
                problems,
                "tests/layering.rs: ALLOWED_UPWARD entry {a:?} matches no import any more: delete it"
            );
        }
    }

    // Circles between top-level modules: any edge a -> b with a path b -> a.
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in &top {
        if declared.contains(&i.to) {
            edges.entry(&i.from).or_default().insert(&i.to);
        }
    }
    let reaches = |start: &str, goal: &str| -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(m) = stack.pop() {
            if m == goal {
                return true;
            }
            if seen.insert(m) {
                stack.extend(edges.get(m).into_iter().flatten().copied());
            }
        }
        false
    };
    let mut reported = BTreeSet::new();
    for i in &top {
        if declared.contains(&i.to)
            && reaches(&i.to, &i.from)
            && reported.insert((i.from.clone(), i.to.clone()))
        {
            let _ = writeln!(
                problems,
                "{}:{}: circle: `{}` imports `{}`, which leads back to `{}`: {}",
                i.file, i.line, i.from, i.to, i.from, i.text
            );
        }
    }

    // Circles between sibling files of one module directory (`tests` is
    // the module's own test file and may see everything).
    let mut allowed_circles_used = BTreeSet::new();
    for ((module, from, to), i) in &siblings {
        if from == "tests" || to == "tests" || from == to {
            continue;
        }
        if !root
            .join("src")
            .join(module)
            .join(format!("{to}.rs"))
            .exists()
        {
            continue; // an item of mod.rs, not a sibling file
        }
        let back = (module.clone(), to.clone(), from.clone());
        if let Some(j) = siblings.get(&back)
            && from < to
        {
            let entry = (module.as_str(), from.as_str(), to.as_str());
            if ALLOWED_SIBLING_CIRCLES.contains(&entry) {
                allowed_circles_used.insert(entry);
                continue;
            }
            let _ = writeln!(
                problems,
                "{}:{}: circle inside `{module}`: {from}.rs imports {to}.rs ({}) and {}:{} imports back ({})",
                i.file, i.line, i.text, j.file, j.line, j.text
            );
        }
    }

    for a in ALLOWED_SIBLING_CIRCLES {
        if !allowed_circles_used.contains(a) {
            let _ = writeln!(
                problems,
                "tests/layering.rs: ALLOWED_SIBLING_CIRCLES entry {a:?} matches no circle any more: delete it"
            );
        }
    }

    assert!(problems.is_empty(), "layering problems:\n{problems}");
    // The parser found something, so an empty result means something.
    assert!(top.len() > 50, "only {} crate:: imports found", top.len());
    assert!(!siblings.is_empty(), "no super:: imports found");
}

/// The checker itself, on lines it must and must not read as imports.
#[test]
fn the_import_reader_finds_crate_and_super_paths() {
    assert_eq!(
        idents_after("use crate::server::Shared;", "crate::"),
        ["server"]
    );
    assert_eq!(
        idents_after("use crate::{config::Config, error};", "crate::"),
        ["config", "error"]
    );
    assert_eq!(
        idents_after("x(crate::a::f(), crate::b::g())", "crate::"),
        ["a", "b"]
    );
    assert!(idents_after("$crate::x", "crate::").is_empty());
    assert!(idents_after("nyro_gw::crate::x", "crate::").is_empty());
    assert_eq!(idents_after("use super::jwks::X;", "super::"), ["jwks"]);
    assert_eq!(
        module_of(Path::new("src/auth/verify.rs")),
        ("auth".to_owned(), Some("verify".to_owned()))
    );
    assert_eq!(
        module_of(Path::new("src/auth/mod.rs")),
        ("auth".to_owned(), None)
    );
    assert_eq!(
        module_of(Path::new("src/state.rs")),
        ("state".to_owned(), None)
    );
}
