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
        if shell == Shell::Bash {
            buf = fix_bash_case_labels(&buf);
        }
        files.push((Path::new("completions").join(name), buf));
    }
    files.push((Path::new("man").join("gateway.toml.5"), config_man_page()?));
    files.push((
        PathBuf::from(crate::config::json_schema::FILE),
        crate::config::json_schema::render().into_bytes(),
    ));
    Ok(files)
}

/// clap_complete's bash script builds the state `nyro__gw__subcmd__token`
/// while walking the words but labels the cases `nyro__subcmd__gw__…`
/// (clap-rs/clap#6421: the `-` in the binary name is escaped twice), so
/// nothing below the first word completes. Spell the labels the way the
/// walk spells the state.
fn fix_bash_case_labels(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("nyro__subcmd__gw", "nyro__gw")
        .into_bytes()
}

/// `man/<display name>.1` for `cmd` and each visible subcommand below it.
fn man_pages(cmd: &clap::Command, files: &mut Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<()> {
    let page = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    files.push((
        Path::new("man").join(format!("{page}.1")),
        man_page(cmd, page)?,
    ));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, files)?;
    }
    Ok(())
}

/// One page: clap's sections (name, synopsis, description, options,
/// subcommands), then the sections `--help` has no room for (EXIT STATUS,
/// ENVIRONMENT, FILES, EXAMPLES, SEE ALSO; man-pages(7) order), then the
/// version.
fn man_page(cmd: &clap::Command, page: &str) -> anyhow::Result<Vec<u8>> {
    use clap_mangen::roff::{Roff, bold, roman};
    let man =
        clap_mangen::Man::new(cmd.clone()).source(format!("nyro-gw {}", env!("CARGO_PKG_VERSION")));
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut buf)?;
    }
    if cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some() {
        man.render_extra_section(&mut buf)?;
    }
    let extra = page_extra(page);
    let mut roff = Roff::new();
    let list = |roff: &mut Roff, title: &str, items: &[(&str, &str)]| {
        if items.is_empty() {
            return;
        }
        roff.control("SH", [title]);
        for (term, text) in items {
            roff.control("TP", []);
            roff.text([bold(*term)]);
            roff.text([roman(*text)]);
        }
    };
    list(&mut roff, "EXIT STATUS", extra.exit);
    list(&mut roff, "ENVIRONMENT", ENVIRONMENT);
    list(&mut roff, "FILES", FILES);
    if !extra.examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for (what, command) in extra.examples {
            roff.control("PP", []);
            roff.text([roman(*what)]);
            roff.control("PP", []);
            roff.control("RS", ["4"]);
            roff.control("nf", []);
            roff.text([roman(*command)]);
            roff.control("fi", []);
            roff.control("RE", []);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let see_also: Vec<String> = PAGES
        .iter()
        .filter(|p| **p != page)
        .map(|p| format!("{p}(1)"))
        .chain(["gateway.toml(5), README.md of the nyro-gw sources".to_owned()])
        .collect();
    roff.text([roman(see_also.join(", "))]);
    roff.to_writer(&mut buf)?;
    man.render_version_section(&mut buf)?;
    Ok(buf)
}

/// Every page `render` writes, for SEE ALSO.
const PAGES: &[&str] = &[
    "nyro-gw",
    "nyro-gw-serve",
    "nyro-gw-check-config",
    "nyro-gw-token",
    "nyro-gw-token-inspect",
    "nyro-gw-token-mint",
    "nyro-gw-schema",
];

/// The environment every command reads (README: Configuration, Command
/// line). The shipped gateway.toml's own variables are listed because
/// `${VAR}` expansion makes them part of the interface.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "NYRO_GW_CONFIG",
        "Config file when --config is not given; else ./gateway.toml.",
    ),
    (
        "GATEWAY_LOG_LEVEL",
        "Log level (error, warn, info, debug, trace) or tracing directives such as warn,nyro_gw=debug. \
         Anything else logs at info with a warning.",
    ),
    (
        "RUST_LOG",
        "Read when GATEWAY_LOG_LEVEL is unset; same syntax.",
    ),
    (
        "GATEWAY_JWT_SECRET",
        "The HMAC secret of the shipped gateway.toml ([auth] secret); at least 32 bytes. \
         serve --dev makes up an ephemeral one when it is unset.",
    ),
    (
        "GATEWAY_LISTEN",
        "The shipped gateway.toml's public address (default 0.0.0.0:8080).",
    ),
    (
        "GATEWAY_ADMIN_LISTEN",
        "The shipped gateway.toml's admin address (default 127.0.0.1:9901; the Kubernetes example opens it as 0.0.0.0:9901).",
    ),
    (
        "GATEWAY_INGEST_SERVICE_URL, GATEWAY_QUERY_SERVICE_URL, GATEWAY_AUTH_SERVICE_URL",
        "The shipped gateway.toml's upstreams; an empty auth URL answers 501.",
    ),
    (
        "Any ${VAR} in the config",
        "Every string value may use ${VAR} (an error when unset) or ${VAR:-default}.",
    ),
];

/// Files the commands read.
const FILES: &[(&str, &str)] = &[
    (
        "./gateway.toml",
        "The route table, unless --config or NYRO_GW_CONFIG names another. \
         serve watches it and the files it names (secret_file, TLS files, ca_file) and reloads on change.",
    ),
    (
        "secret_file, [server].tls cert and key, ca_file",
        "Read at load and on every reload; relative paths are relative to the config file's directory.",
    ),
];

/// What differs between pages.
struct PageExtra {
    exit: &'static [(&'static str, &'static str)],
    examples: &'static [(&'static str, &'static str)],
}

fn page_extra(page: &str) -> PageExtra {
    const USAGE: (&str, &str) = (
        "2",
        "A command line that cannot be parsed (an unknown flag or value).",
    );
    match page {
        "nyro-gw-serve" => PageExtra {
            exit: &[
                (
                    "0",
                    "Stopped by SIGTERM or SIGINT after every request in flight finished.",
                ),
                (
                    "1",
                    "The config is invalid at start, the port is taken, or shutdown_grace ran out \
                     with requests still in flight (they were cut).",
                ),
                USAGE,
            ],
            examples: &[
                (
                    "A first run on a laptop, with no secret set:",
                    "nyro-gw serve --dev",
                ),
                (
                    "Production, with the secret from the environment:",
                    "GATEWAY_JWT_SECRET=... nyro-gw serve --config /etc/nyro/gateway.toml",
                ),
                (
                    "Reload now instead of waiting for the file watch:",
                    "kill -HUP <pid>",
                ),
            ],
        },
        "nyro-gw-check-config" => PageExtra {
            exit: &[
                ("0", "The config is valid (warnings and infos allowed)."),
                (
                    "1",
                    "The config is invalid or cannot be read; every problem is printed.",
                ),
                USAGE,
            ],
            examples: &[
                (
                    "In CI, before applying a ConfigMap, without the production environment:",
                    "nyro-gw check-config --allow-missing-env -c gateway.toml",
                ),
                (
                    "For a program:",
                    "nyro-gw check-config --format json gateway.toml",
                ),
            ],
        },
        "nyro-gw-token-inspect" => PageExtra {
            exit: &[
                (
                    "0",
                    "A route with auth required or optional (and an upstream) would forward the token.",
                ),
                (
                    "1",
                    "No such route would: the token is refused or malformed, every protected route refuses it (e.g. a required claim is missing), or it could not be verified (no config, or one that does not load: the token is still decoded).",
                ),
                USAGE,
            ],
            examples: &[
                (
                    "Why is this token refused?",
                    "nyro-gw token inspect \"$TOKEN\"",
                ),
                (
                    "From a request's header, as JSON:",
                    "echo \"Bearer $TOKEN\" | nyro-gw token inspect - --format json",
                ),
            ],
        },
        "nyro-gw-token-mint" => PageExtra {
            exit: &[
                ("0", "The token was printed."),
                (
                    "1",
                    "No HMAC secret in the config, or the claims are not a JSON object.",
                ),
                USAGE,
            ],
            examples: &[(
                "A token for a user of company c1, valid for 15 minutes:",
                "nyro-gw token mint --ttl 15m --claims '{\"sub\":\"u1\",\"app_metadata\":{\"company_id\":\"c1\"}}'",
            )],
        },
        "nyro-gw-schema" => PageExtra {
            exit: &[("0", "The schema was printed."), USAGE],
            examples: &[(
                "Refresh the committed copy that gateway.toml's #:schema line points at:",
                "nyro-gw schema > gateway.schema.json",
            )],
        },
        _ => PageExtra {
            exit: &[
                ("0", "Success."),
                ("1", "Failure; see the command's own page."),
                USAGE,
            ],
            examples: &[
                (
                    "Serve the shipped config:",
                    "nyro-gw serve --config gateway.toml",
                ),
                ("Validate it:", "nyro-gw check-config gateway.toml"),
            ],
        },
    }
}

/// `man/gateway.toml.5`: the config file format, every key of
/// `config::KEYS` with its type, default and description (the same table
/// the JSON Schema and the unknown-key check read).
fn config_man_page() -> anyhow::Result<Vec<u8>> {
    use clap_mangen::roff::{Roff, bold, italic, roman};
    let version = format!("nyro-gw {}", env!("CARGO_PKG_VERSION"));
    let mut roff = Roff::new();
    roff.control("TH", ["gateway.toml", "5", "", version.as_str()]);
    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "gateway.toml - the route table of the nyro-gw API gateway",
    )]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([roman(
        "./gateway.toml, or the file named by --config or NYRO_GW_CONFIG",
    )]);
    roff.control("SH", ["DESCRIPTION"]);
    for para in CONFIG_DESCRIPTION {
        roff.control("PP", []);
        roff.text([roman(*para)]);
    }
    let keys = crate::config::KEYS;
    for section in keys.iter().filter(|k| !k.path.contains('.')) {
        let heading = if section.ty == crate::config::Ty::ArrayOfTables {
            format!("[[{}]]", section.path)
        } else {
            format!("[{}]", section.path)
        };
        roff.control("SH", [heading.as_str()]);
        roff.text([roman(match section.default {
            "" => format!("{}.", section.doc),
            d => format!("{} (default: {d}).", section.doc),
        })]);
        let prefix = format!("{}.", section.path);
        for k in keys.iter().filter(|k| k.path.starts_with(&prefix)) {
            roff.control("TP", []);
            roff.text([
                bold(k.path[prefix.len()..].to_owned()),
                roman(" ("),
                italic(k.ty.to_string()),
                roman(")"),
            ]);
            roff.text([roman(k.doc)]);
            roff.control("br", []);
            roff.text([roman(format!("Default: {}", or_none(k.default)))]);
            roff.control("br", []);
            roff.text([roman(format!(
                "Example: {} = {}",
                k.path[prefix.len()..].replace(".*.", ".<header>."),
                k.example
            ))]);
        }
    }
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Every string value may use ${VAR} (an error when VAR is unset) or ${VAR:-default}; \
         $${ stands for a literal ${. Expansion runs on parsed strings, so the environment \
         never changes the file's structure. Integers and booleans are not expanded.",
    )]);
    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([bold("gateway.schema.json")]);
    roff.text([roman(
        "The JSON Schema of this format (printed by nyro-gw schema); \
         a first line #:schema ./gateway.schema.json lets Taplo and Even Better TOML complete and check the file.",
    )]);
    roff.control("SH", ["EXAMPLES"]);
    roff.control("PP", []);
    roff.text([roman("A route that injects the caller's identity:")]);
    roff.control("PP", []);
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    roff.text([roman(CONFIG_EXAMPLE)]);
    roff.control("fi", []);
    roff.control("RE", []);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "nyro-gw(1), nyro-gw-serve(1), nyro-gw-check-config(1), nyro-gw-schema(1), \
         examples/full.toml and README.md of the nyro-gw sources",
    )]);
    let mut buf = Vec::new();
    roff.to_writer(&mut buf)?;
    Ok(buf)
}

fn or_none(default: &str) -> &str {
    if default.is_empty() { "none" } else { default }
}

/// DESCRIPTION of gateway.toml(5) (README: Configuration).
const CONFIG_DESCRIPTION: &[&str] = &[
    "A TOML file: [server] (the public listener, timeouts, limits), [admin] (an optional second listener), \
     [auth] (how tokens are verified), [cors] (the default CORS policy) and one [[routes]] table per route, \
     matched by the longest whole-segment prefix.",
    "Unknown keys are errors, reported all at once with the closest known key. \
     nyro-gw check-config prints every problem with file:line:col.",
    "A running gateway notices a saved change after a 200 ms debounce and serves it within 2 s \
     (at once on SIGHUP); an invalid file is refused and the old config keeps serving. \
     The listeners' addresses need a restart.",
    "Durations are a number and a unit (ms, s, m, h, d), compound forms such as 1m30s allowed; \
     sizes a number and a unit (B, KiB, MiB, GiB, KB, MB, GB).",
];

/// EXAMPLES of gateway.toml(5).
const CONFIG_EXAMPLE: &str = "[[routes]]
name = \"ingest\"
prefix = \"/api/v1/ingest\"
upstream = \"${GATEWAY_INGEST_SERVICE_URL:-http://127.0.0.1:9001}\"
auth = \"required\"
[routes.inject]
\"X-User-ID\" = \"sub\"
\"X-Company-ID\" = { claim = \"app_metadata.company_id\", required = true }";

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
