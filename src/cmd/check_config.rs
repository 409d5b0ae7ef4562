//! `nyro-gw check-config`: validate without serving.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{CheckConfigArgs, OutputFormat, resolve_config_path};
use crate::config::{self, Config, LoadOptions, Severity};

/// Validates the config, prints every problem, and on success the route
/// table. Exit 0 when valid (warnings allowed), 1 when not.
pub fn run(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let path = resolve_config_path(args.path.or(args.config));
    let opts = LoadOptions {
        allow_missing_env: args.allow_missing_env,
        ..LoadOptions::default()
    };
    let report = config::load(&path, &opts);
    let mut diagnostics = report.diagnostics;
    if let Some(cfg) = &report.config {
        // Compile too: whatever passes here, `serve` starts. Files already
        // warned about as unreadable (--allow-missing-env) are left out.
        let cfg = if args.allow_missing_env {
            without_unreadable_files(cfg)
        } else {
            cfg.clone()
        };
        diagnostics.extend(crate::runtime::check(&cfg, &report.places));
    }
    let ok = !diagnostics.iter().any(|d| d.severity == Severity::Error);
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &diagnostics)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            let mut err = std::io::stderr().lock();
            for d in &diagnostics {
                writeln!(err, "{d}")?;
            }
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let warnings = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .count();
            match (&report.config, ok) {
                (Some(cfg), true) => {
                    write!(out, "{}", route_table(cfg))?;
                    writeln!(
                        out,
                        "{}: ok ({} routes, {warnings} warning{})",
                        path.display(),
                        cfg.routes.len(),
                        plural(warnings)
                    )?;
                }
                _ => writeln!(
                    err,
                    "{}: invalid ({errors} error{}, {warnings} warning{})",
                    path.display(),
                    plural(errors),
                    plural(warnings)
                )?,
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cfg` without the TLS pair and the `ca_file`s that cannot be read here
/// (`--allow-missing-env`: they may exist only where the gateway runs, and
/// validation has warned about each).
fn without_unreadable_files(cfg: &Config) -> Config {
    let readable = |p: &std::path::Path| std::fs::File::open(p).is_ok();
    let mut cfg = cfg.clone();
    if cfg
        .server
        .tls
        .as_ref()
        .is_some_and(|t| !readable(&t.cert) || !readable(&t.key))
    {
        cfg.server.tls = None;
    }
    for r in &mut cfg.routes {
        if r.ca_file.as_deref().is_some_and(|p| !readable(p)) {
            r.ca_file = None;
        }
    }
    cfg
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The route table printed on success.
pub(crate) fn route_table(cfg: &Config) -> String {
    let rows: Vec<[String; 5]> = cfg
        .routes
        .iter()
        .map(|r| {
            let inject = r
                .inject
                .iter()
                .map(|i| {
                    format!(
                        "{}={}{}",
                        i.header,
                        i.claim,
                        if i.required { "!" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            [
                r.name.clone(),
                r.prefix.clone(),
                r.upstream
                    .as_ref()
                    .map_or_else(|| "(none: 501)".to_owned(), |u| u.url.clone()),
                r.auth.as_str().to_owned(),
                if inject.is_empty() {
                    "-".into()
                } else {
                    inject
                },
            ]
        })
        .collect();
    let header = [
        "ROUTE",
        "PREFIX",
        "UPSTREAM",
        "AUTH",
        "INJECTS (! = required)",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}
