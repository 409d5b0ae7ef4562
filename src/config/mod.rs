//! `gateway.toml`: file -> raw (serde mirror, `raw`) -> validated model
//! (`model`), with every problem reported at once as a `Diagnostic`
//! carrying `file:line:col`.

pub(crate) mod diag;
pub mod env;
pub(crate) mod json_schema;
pub(crate) mod model;
mod parse;
mod raw;
mod schema;
mod validate;
pub(crate) mod values;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Severity};
pub use model::*;
pub use parse::parse_claim_path;
#[cfg(test)]
pub(crate) use parse::{INSECURE_PLACEHOLDER, MIN_SECRET_LEN, parse_origin};
pub(crate) use parse::{parse_upstream, segment_prefix};
pub(crate) use schema::{KEYS, Ty};

/// The config shipped with the binary (the repository's `gateway.toml`),
/// used by `serve --dev` when no config file exists.
pub const BUILTIN: &str = include_str!("../../gateway.toml");

/// How to load a config.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `serve --dev`: an unset HMAC secret becomes an ephemeral random one
    /// (with a warning) instead of an error.
    pub(crate) dev: bool,
    /// `check-config --allow-missing-env`: an unset `${VAR}` is a warning
    /// and its value a placeholder of the type its key expects; files that
    /// only exist where the gateway runs (`secret_file`, TLS cert and key,
    /// `ca_file`) are warnings when unreadable. Nothing else is relaxed.
    pub(crate) allow_missing_env: bool,
}

/// The outcome of loading: the config when there were no errors, and every
/// diagnostic (errors and warnings) in file order.
#[derive(Debug)]
pub struct LoadReport {
    /// `Some` exactly when `diagnostics` holds no error.
    pub config: Option<Config>,
    /// Errors and warnings, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Hash of the file's bytes (to skip reloads that change nothing).
    pub hash: u64,
}

impl LoadReport {
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Where in the file the keys that name files sit, so that a failure to
/// use one (compiling the `Runtime`: a CA bundle or TLS pair that does not
/// parse) is reported at that key like any validation error.
#[derive(Debug, Clone, Default)]
pub(crate) struct Places {
    /// The file as named in diagnostics.
    pub(crate) file: String,
    /// `[server] tls.cert`.
    pub(crate) tls_cert: Option<Position>,
    /// `[server] tls.key`.
    pub(crate) tls_key: Option<Position>,
    /// `[auth] jwks_url`.
    pub(crate) jwks_url: Option<Position>,
    /// Each route's `ca_file`, in file order (`None`: not set).
    pub(crate) ca_file: Vec<Option<Position>>,
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based character column.
    pub(crate) column: usize,
}

impl Places {
    /// An error at `at`, or at the top of the file when unknown.
    pub(crate) fn error(&self, at: Option<Position>, message: String) -> Diagnostic {
        let at = at.unwrap_or(Position { line: 1, column: 1 });
        Diagnostic {
            severity: Severity::Error,
            file: self.file.clone(),
            line: at.line,
            column: at.column,
            message,
        }
    }
}

/// A loaded config: what `serve`, a reload, `check-config` and `token` all
/// start from ([`load`] and [`load_builtin`] are the only entries).
#[derive(Debug)]
pub(crate) struct Loaded {
    /// `Some` exactly when `diagnostics` holds no error.
    pub(crate) config: Option<Config>,
    /// Errors and warnings, sorted by position.
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// Hash of the file's bytes (to skip reloads that change nothing).
    pub(crate) hash: u64,
    /// The file as named in messages.
    pub(crate) source: String,
    /// Where the keys naming files sit (for compile errors).
    pub(crate) places: Places,
}

impl Loaded {
    /// True when any diagnostic is an error.
    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// The error diagnostics.
    pub(crate) fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    fn new(report: LoadReport, source: String, mut places: Places) -> Loaded {
        places.file.clone_from(&source);
        Loaded {
            config: report.config,
            diagnostics: report.diagnostics,
            hash: report.hash,
            source,
            places,
        }
    }
}

/// Reads and validates the config at `path` (see [`load_path`]): the one
/// entry `serve`, reloads, `check-config` and `token` use.
pub(crate) fn load(path: &Path, opts: &LoadOptions) -> Loaded {
    let name = path.display().to_string();
    let mut places = Places::default();
    let report = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(src) => {
                let env = |k: &str| std::env::var(k).ok();
                let (mut report, p) =
                    validate::validate_with_places(&src, &name, &base_dir(path), opts, &env);
                report.hash = hash_bytes(src.as_bytes());
                places = p;
                report
            }
            // The same diagnostics as `load_path` gives.
            Err(_) => load_path(path, opts),
        },
        Err(_) => load_path(path, opts),
    };
    Loaded::new(report, name, places)
}

/// The config shipped with the binary, for `serve --dev` when no file
/// exists (relative paths resolve against the current directory).
pub(crate) fn load_builtin(opts: &LoadOptions) -> Loaded {
    let name = "gateway.toml (built-in)";
    let env = |k: &str| std::env::var(k).ok();
    let (mut report, places) =
        validate::validate_with_places(BUILTIN, name, Path::new("."), opts, &env);
    report.hash = hash_bytes(BUILTIN.as_bytes());
    Loaded::new(report, name.to_owned(), places)
}

/// Reads and validates the config at `path`, expanding `${VAR}` from the
/// process environment. Relative `secret_file`, TLS and CA paths are
/// resolved against the config file's directory.
pub fn load_path(path: &Path, opts: &LoadOptions) -> LoadReport {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(src) => load_str(&src, &name, base_dir(path), opts, &|k| {
                std::env::var(k).ok()
            }),
            Err(e) => LoadReport {
                config: None,
                diagnostics: vec![Diagnostic::file_level(
                    &name,
                    format!(
                        "the file is not valid UTF-8 (byte {})",
                        e.utf8_error().valid_up_to()
                    ),
                )],
                hash: 0,
            },
        },
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (give the path as an argument or with --config, or set NYRO_GW_CONFIG)"
            } else {
                ""
            };
            LoadReport {
                config: None,
                diagnostics: vec![Diagnostic::file_level(
                    &name,
                    format!("cannot read the config file: {e}{hint}"),
                )],
                hash: 0,
            }
        }
    }
}

/// Validates config text. `file` names it in diagnostics, `dir` resolves
/// relative paths, `env` looks up `${VAR}`s.
pub fn load_str(
    src: &str,
    file: &str,
    dir: PathBuf,
    opts: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> LoadReport {
    let mut report = validate::validate(src, file, &dir, opts, env);
    report.hash = hash_bytes(src.as_bytes());
    report
}

fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A stable 64-bit FNV-1a hash of config bytes (not cryptographic; only to
/// notice that a file did not change).
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
