//! The command line, defined once: `--help`, `man/` and `completions/` are
//! all generated from these clap definitions (see `cmd::generate`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declared with the logging it selects; `--log-format` takes it here.
pub(crate) use crate::telemetry::LogFormat;

/// A single-binary API gateway: routes by prefix, verifies Supabase JWTs,
/// injects the caller's identity, answers CORS, and streams everything else.
#[derive(Debug, Parser)]
#[command(name = "nyro-gw", version, propagate_version = true)]
#[command(
    after_help = "Config file: --config, else $NYRO_GW_CONFIG, else ./gateway.toml.\n\
Log level: $GATEWAY_LOG_LEVEL (or $RUST_LOG), e.g. info, debug, nyro_gw=trace."
)]
pub struct Cli {
    /// Log format: one JSON object per line (default), or human-readable.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

/// How `check-config` and `token inspect` print their findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the route table until SIGTERM/SIGINT, then drain.
    Serve(ServeArgs),
    /// Validate a config without serving: every problem with file:line:col.
    CheckConfig(CheckConfigArgs),
    /// Inspect or mint JWTs.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the JSON Schema of gateway.toml (for editors: Taplo, Even
    /// Better TOML); the repository commits it as gateway.schema.json.
    Schema,
    /// Write the man pages and shell completions (for maintainers).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// `nyro-gw serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file [default: $NYRO_GW_CONFIG, else ./gateway.toml].
    #[arg(long, short, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// First run on a laptop: an ephemeral HMAC secret when none is set,
    /// the built-in gateway.toml when no file exists, pretty logs, and a
    /// ready curl line with a freshly minted token. Never for production.
    #[arg(long)]
    pub(crate) dev: bool,
}

/// `nyro-gw check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Config file [default: $NYRO_GW_CONFIG, else ./gateway.toml].
    #[arg(value_name = "PATH", conflicts_with = "config")]
    pub(crate) path: Option<PathBuf>,

    /// Config file, as `serve` and `token` take it (same as PATH).
    #[arg(long, short, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// Output format; json prints an array of
    /// {severity, file, line, column, message} to stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) format: OutputFormat,

    /// For CI without the production environment: an unset ${VAR} is a
    /// warning naming it, checked as a placeholder of the type its key
    /// expects (inside a longer string: that value's checks are skipped);
    /// an unreadable secret_file, TLS cert or key, or ca_file is a warning.
    /// Nothing else is relaxed.
    #[arg(long)]
    pub(crate) allow_missing_env: bool,
}

/// `nyro-gw token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Decode a token, verify it against the config's keys, and say which
    /// routes accept it and what each would inject. Exit 0 when a route
    /// with auth required or optional would forward it, 1 otherwise, 2 for
    /// usage.
    Inspect(TokenInspectArgs),
    /// Sign a token with the config's HMAC secret, or with a PEM private key
    /// (--key) for a JWKS setup (development and tests).
    Mint(TokenMintArgs),
}

/// `nyro-gw token inspect`.
#[derive(Debug, Args)]
pub struct TokenInspectArgs {
    /// The token, or `-` (or nothing) to read it from stdin. A leading
    /// `Bearer ` is ignored.
    #[arg(value_name = "TOKEN|-")]
    pub(crate) token: Option<String>,

    /// Config whose keys and routes to check against; without one (and no
    /// $NYRO_GW_CONFIG or ./gateway.toml) the token is only decoded.
    #[arg(long, short, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) format: OutputFormat,
}

/// `nyro-gw token mint`.
#[derive(Debug, Args)]
pub struct TokenMintArgs {
    /// Claims as a JSON object, e.g. '{"sub":"u1","app_metadata":{"company_id":"c1"}}'.
    /// `aud` (first configured audience), `iss` (the configured issuer, if any), `iat` and `exp`
    /// are filled unless given.
    #[arg(long, value_name = "JSON")]
    pub(crate) claims: String,

    /// Lifetime of the token, e.g. 15m, 1h, 7d.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub(crate) ttl: String,

    /// Config whose HMAC secret signs the token. With --key it is optional
    /// and only supplies the `aud` and `iss` defaults.
    #[arg(long, short, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// Sign with this PEM private key instead of the HMAC secret; the
    /// algorithm follows the key's type: EC P-256 -> ES256, EC P-384 ->
    /// ES384, RSA -> RS256, Ed25519 -> EdDSA. For testing a JWKS setup.
    #[arg(long, value_name = "PRIVATE.pem")]
    pub(crate) key: Option<PathBuf>,

    /// The `kid` header: the id under which the JWKS publishes the public
    /// key. Only with --key.
    #[arg(long, value_name = "ID", requires = "key")]
    pub(crate) kid: Option<String>,
}

/// `nyro-gw generate` (hidden).
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory that holds `man/` and `completions/`.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub(crate) out: PathBuf,
}

/// The config path a command uses: the flag, then `$NYRO_GW_CONFIG`, then
/// `./gateway.toml`.
pub(crate) fn resolve_config_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("NYRO_GW_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from("gateway.toml"))
}
