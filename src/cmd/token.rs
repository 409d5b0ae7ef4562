//! `nyro-gw token inspect` and `nyro-gw token mint`.
//!
//! `inspect` decodes a token, verifies it against the config's keys (the
//! same [`Authenticator`] `serve` uses), and says per route what the gateway
//! would answer and inject. Without a config it only decodes and says that
//! the signature was NOT checked (exit 1: nothing was accepted). It never
//! prints the token or the secret.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde_json::Value;

use crate::auth::inspect::{Unverified, decode_unverified, format_utc, hint, relative};
use crate::auth::{
    Authenticator, BearerError, MAX_TOKEN_LEN, MintError, PemSigningKey, TokenError, Verified,
    bearer_token, claim_defaults, decide, mint_for_config, mint_token_with_key,
};
use crate::cli::{OutputFormat, TokenInspectArgs, TokenMintArgs, resolve_config_path};
use crate::config::{self, AuthMode, Config, LoadOptions, Route, values::parse_duration};
use crate::error::GatewayError;

/// What `token inspect` found; printed as text or JSON.
#[derive(Debug, Serialize)]
struct Report {
    /// The config checked against, when one was found.
    config: Option<String>,
    /// False when no config was found: the token was only decoded.
    signature_checked: bool,
    /// The token's length in bytes; over 16 KiB the gateway refuses it
    /// before reading it.
    size: usize,
    /// True when the config's keys and rules accept the token.
    accepted: bool,
    /// Why it was refused (the gateway's `error_description`).
    reason: Option<String>,
    /// What to do about it, for people.
    hint: Option<String>,
    /// Algorithm and key id used, when accepted.
    verified_with: Option<String>,
    /// The decoded header (absent when the token does not decode).
    header: Option<Value>,
    /// The decoded claims.
    claims: Option<Value>,
    /// iat / nbf / exp as absolute and relative times.
    times: Vec<TimeRow>,
    /// What each route would do with this token.
    routes: Vec<RouteRow>,
    /// True when at least one route with `auth = "required"` or
    /// `"optional"` and an upstream would forward it: the exit status is 0
    /// exactly then.
    forwarded_by_a_route: bool,
    /// Why the config could not be loaded, when it could not: the token is
    /// then only decoded, and nothing was verified.
    config_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct TimeRow {
    claim: &'static str,
    unix: i64,
    utc: String,
    relative: String,
}

#[derive(Debug, Serialize)]
struct RouteRow {
    name: String,
    prefix: String,
    auth: &'static str,
    /// The status the gateway answers before the upstream: 401/403 from
    /// auth, 501 when the route has no upstream, 200 when it is forwarded.
    status: u16,
    /// "accepted", or why not.
    outcome: String,
    /// Headers it would inject, in order.
    inject: Vec<(String, String)>,
    /// The rate limits that would apply, one line each (README "Rate
    /// limits").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    limits: Vec<String>,
}

/// Exit status of a usage error (as clap's own).
const USAGE: u8 = 2;

/// `token inspect`. Exit 0 when at least one route with auth required or
/// optional (and an upstream: a 501 route does not count) would forward
/// the token, 1 otherwise, 2 for usage errors.
pub fn inspect(args: TokenInspectArgs) -> anyhow::Result<ExitCode> {
    let TokenInspectArgs {
        token,
        config,
        format,
    } = args;
    let token = match read_token(token) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    // A config that does not load still leaves the token to decode.
    let (path, cfg, config_error) = match optional_config(config.clone()) {
        Ok((path, cfg)) => (path, cfg, None),
        Err(e) => (resolve_config_path(config), None, Some(format!("{e:#}"))),
    };

    let decoded = decode_unverified(&token);
    let too_large = token.len() > MAX_TOKEN_LEN;
    let mut report = Report {
        config: cfg.as_ref().map(|_| path.display().to_string()),
        signature_checked: cfg.is_some(),
        size: token.len(),
        accepted: false,
        reason: None,
        hint: None,
        verified_with: None,
        header: None,
        claims: None,
        times: Vec::new(),
        routes: Vec::new(),
        forwarded_by_a_route: false,
        config_error,
    };
    match &decoded {
        Ok(Unverified { header, claims }) => {
            report.header = Some(header.clone());
            report.claims = Some(claims.clone());
            report.times = times(claims);
        }
        Err(e) => {
            report.reason = Some(e.to_string());
        }
    }
    if too_large {
        // Refused before anything else, whatever it holds; still shown
        // above when it decodes, so the oversized claim can be found.
        report.reason = Some(format!(
            "{} ({} bytes; the gateway refuses tokens over {MAX_TOKEN_LEN} bytes before reading them)",
            TokenError::TooLarge,
            token.len()
        ));
        report.hint = hint(&TokenError::TooLarge).map(str::to_owned);
        if let Some(cfg) = &cfg {
            report.routes = verify_with(cfg, &token, false)?.routes;
        }
    } else if let (Some(cfg), Ok(_)) = (&cfg, &decoded) {
        let Checked {
            verdict,
            fetch_error,
            routes,
        } = verify_with(cfg, &token, true)?;
        match &verdict {
            Ok(v) => {
                report.accepted = true;
                report.verified_with = Some(match &v.kid {
                    Some(kid) => format!("{:?}, JWKS key '{}'", v.alg, crate::auth::clean(kid)),
                    None if crate::auth::is_hmac(v.alg) => match v.secret_position {
                        // By position, never by value.
                        Some(p) => format!("{:?}, HMAC secret {p} of those listed", v.alg),
                        None => format!("{:?}, the HMAC secret", v.alg),
                    },
                    None => format!("{:?}, a JWKS key without kid", v.alg),
                });
            }
            Err(e) => {
                let mut reason = e.to_string();
                if let (TokenError::KeysUnavailable, Some(f)) = (e, &fetch_error) {
                    reason.push_str(&format!(": {f}"));
                }
                report.reason = Some(reason);
                report.hint = hint(e).map(str::to_owned);
            }
        }
        report.routes = routes;
    }

    report.forwarded_by_a_route = report
        .routes
        .iter()
        .any(|r| r.auth != AuthMode::None.as_str() && r.status == 200);
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print!("{}", render(&report)),
    }
    Ok(if report.forwarded_by_a_route {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `token mint`: prints the token and a newline.
pub fn mint(args: TokenMintArgs) -> anyhow::Result<ExitCode> {
    let TokenMintArgs {
        claims,
        ttl,
        config,
        key,
        kid,
    } = args;
    let claims: Value = serde_json::from_str(&claims).with_context(
        || "--claims is not valid JSON (expected an object, e.g. '{\"sub\":\"u1\"}')",
    )?;
    let Value::Object(claims) = claims else {
        bail!(
            "--claims must be a JSON object, e.g. '{{\"sub\":\"u1\",\"app_metadata\":{{\"company_id\":\"c1\"}}}}'"
        );
    };
    let ttl = parse_duration(&ttl).map_err(|e| anyhow!("--ttl: {e}"))?;
    let token = match key {
        Some(key_path) => mint_with_key(&key_path, kid.as_deref(), config, claims, ttl)?,
        // clap refuses --kid without --key: an HMAC token has no key to name.
        None => mint_with_secret(config, claims, ttl)?,
    };
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// HS* with the config's secret (the config is required).
fn mint_with_secret(
    config: Option<PathBuf>,
    claims: serde_json::Map<String, Value>,
    ttl: std::time::Duration,
) -> anyhow::Result<String> {
    let path = resolve_config_path(config);
    let cfg = load(&path)?;
    match mint_for_config(&cfg.auth, claims, ttl) {
        Err(e @ MintError::NoSecret) => bail!(
            "{}: {e}; sign with a private key instead (--key PRIVATE.pem --kid ID, its public half in the JWKS)",
            path.display()
        ),
        Err(e @ MintError::NoHmacAlgorithm) => bail!("{}: {e}", path.display()),
        minted => Ok(minted?),
    }
}

/// Signs with a PEM private key; the algorithm follows the key's type. The
/// config is optional here: when one is given (or found) it supplies the
/// `aud`/`iss` defaults, and a warning says when its `[auth].algorithms`
/// would refuse the token.
fn mint_with_key(
    key_path: &Path,
    kid: Option<&str>,
    config: Option<PathBuf>,
    claims: serde_json::Map<String, Value>,
    ttl: std::time::Duration,
) -> anyhow::Result<String> {
    let pem = std::fs::read(key_path)
        .with_context(|| format!("--key {}: cannot read the key file", key_path.display()))?;
    let key =
        PemSigningKey::from_pem(&pem).with_context(|| format!("--key {}", key_path.display()))?;
    let (path, cfg) = optional_config(config)?;
    if let Some(cfg) = &cfg
        && !cfg.auth.algorithms.contains(&key.alg)
    {
        eprintln!(
            "warning: {}: [auth].algorithms does not list {:?}, so this gateway would refuse the token",
            path.display(),
            key.alg
        );
    }
    let (audience, issuer) = claim_defaults(cfg.as_ref().map(|c| &c.auth));
    Ok(mint_token_with_key(
        &key, kid, claims, audience, issuer, ttl,
    )?)
}

/// The token from the argument or stdin, without a leading `Bearer `.
fn read_token(arg: Option<String>) -> anyhow::Result<String> {
    let raw = match arg {
        Some(t) if t != "-" => t,
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the token from stdin")?;
            s
        }
    };
    let t = raw.trim();
    let t = match t.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => t[7..].trim_start(),
        _ => t,
    };
    if t.is_empty() {
        bail!("no token given: pass it as an argument, or on stdin with `-`");
    }
    Ok(t.to_owned())
}

/// The config a command that can do without one uses: the one named by
/// --config or $NYRO_GW_CONFIG (which must load), else ./gateway.toml when
/// it exists, else none. Returns the path looked at either way.
fn optional_config(flag: Option<PathBuf>) -> anyhow::Result<(PathBuf, Option<Config>)> {
    let explicit =
        flag.is_some() || std::env::var_os("NYRO_GW_CONFIG").is_some_and(|v| !v.is_empty());
    let path = resolve_config_path(flag);
    let cfg = if explicit || path.exists() {
        Some(load(&path)?)
    } else {
        None
    };
    Ok((path, cfg))
}

/// Loads the config, printing its diagnostics to stderr; fails when it has
/// errors.
fn load(path: &Path) -> anyhow::Result<Config> {
    let report = config::load(path, &LoadOptions::default());
    for d in &report.diagnostics {
        eprintln!("{d}");
    }
    match report.config {
        Some(cfg) => Ok(cfg),
        None => {
            let n = report.errors().count();
            bail!(
                "{} is invalid ({n} error{}; see above)",
                path.display(),
                if n == 1 { "" } else { "s" }
            )
        }
    }
}

/// What checking a token against a config found.
struct Checked {
    /// The verification verdict.
    verdict: Result<Verified, TokenError>,
    /// Why the JWKS could not be fetched, if it could not.
    fetch_error: Option<String>,
    /// What each route would answer.
    routes: Vec<RouteRow>,
}

/// Verifies with a throwaway runtime (for JWKS fetching, when `fetch`);
/// returns the verdict, why the JWKS could not be fetched if it could not,
/// and what each route would answer: [`crate::auth::decide`], the pipeline's own
/// auth phase, on the token as an `Authorization: Bearer` header.
fn verify_with(cfg: &Config, token: &str, fetch: bool) -> anyhow::Result<Checked> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime for JWKS fetching")?;
    rt.block_on(async {
        // The claims the gateway's runtime keeps (`Runtime::compile`).
        let auth = Authenticator::new(&cfg.auth, None)?.injecting(crate::runtime::claim_paths(cfg));
        let mut fetch_error = None;
        if fetch
            && let Some(store) = auth.jwks()
            && let Err(e) = store.ensure_fetched().await
        {
            fetch_error = Some(format!("fetching {} failed: {e}", store.url()));
        }
        let verdict = auth.verify(token).await;
        let mut headers = http::HeaderMap::new();
        let bearer = match http::HeaderValue::try_from(format!("Bearer {token}")) {
            Ok(v) => {
                headers.insert(http::header::AUTHORIZATION, v);
                bearer_token(&headers)
            }
            Err(_) => Err(BearerError::Malformed),
        };
        let mut rows = Vec::with_capacity(cfg.routes.len());
        for r in &cfg.routes {
            let decision = decide(&auth, r.auth, &r.inject, bearer.clone()).await;
            let verified = decision.identity.is_some();
            let mut row = route_row(r, decision.outcome);
            // Claim-keyed limits use the verified token's claim; a route
            // that verifies nothing keys every caller by client IP.
            row.limits = crate::ratelimit::describe(&r.limits, |k| match (k, &verdict) {
                (config::LimitKey::Claim(p), Ok(v)) if verified => match p.lookup(&v.claims)? {
                    Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                },
                _ => None,
            });
            rows.push(row);
        }
        Ok(Checked {
            verdict,
            fetch_error,
            routes: rows,
        })
    })
}

fn times(claims: &Value) -> Vec<TimeRow> {
    let now = i64::try_from(crate::auth::now_unix()).unwrap_or(i64::MAX);
    ["iat", "nbf", "exp"]
        .into_iter()
        .filter_map(|claim| {
            let unix = claims.get(claim)?.as_f64()? as i64;
            Some(TimeRow {
                claim,
                unix,
                utc: format_utc(unix),
                relative: relative(claim, unix, now),
            })
        })
        .collect()
}

/// One route's row from its auth decision.
fn route_row(
    r: &Route,
    outcome: Result<Vec<(http::HeaderName, http::HeaderValue)>, GatewayError>,
) -> RouteRow {
    let (status, outcome, inject) = match (r.auth, outcome) {
        (AuthMode::None, _) => (
            200,
            "token not checked (auth = \"none\"); no identity headers".to_owned(),
            vec![],
        ),
        (_, Ok(h)) => (
            200,
            "accepted".to_owned(),
            h.iter()
                .map(|(k, v)| (header_case(k.as_str()), v.to_str().unwrap_or("").to_owned()))
                .collect(),
        ),
        // The reason alone (the token's or the claim's), not the
        // "Invalid token: " detail.
        (_, Err(e)) => (
            e.status().as_u16(),
            std::error::Error::source(&e).map_or_else(|| e.detail(), ToString::to_string),
            vec![],
        ),
    };
    // The upstream phase comes after auth: what auth lets through
    // a route without upstream answers 501, and nothing is sent.
    let (status, outcome, inject) = match (status, &r.upstream) {
        (200, None) => (
            501,
            format!("{outcome}; no upstream (upstream = \"\"), so 501 Not Implemented"),
            vec![],
        ),
        _ => (status, outcome, inject),
    };
    RouteRow {
        name: r.name.clone(),
        prefix: r.prefix.clone(),
        auth: r.auth.as_str(),
        status,
        outcome,
        inject,
        limits: Vec::new(),
    }
}

/// `x-user-id` -> `X-User-ID`-ish (`X-User-Id`), for display only.
fn header_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            if part.eq_ignore_ascii_case("id") {
                return "ID".to_owned();
            }
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let indent = |v: &Value| {
        serde_json::to_string_pretty(v)
            .unwrap_or_default()
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    };
    let too_large = r.size > MAX_TOKEN_LEN;
    if too_large {
        let _ = writeln!(
            out,
            "Size: {} bytes, over the gateway's 16 KiB cap ({MAX_TOKEN_LEN} bytes): it is refused (401) unread",
            r.size
        );
    }
    if let Some(h) = &r.header {
        let _ = writeln!(out, "Header:\n{}", indent(h).trim_end());
    }
    if let Some(c) = &r.claims {
        let _ = writeln!(out, "Claims:\n{}", indent(c).trim_end());
    }
    if !r.times.is_empty() {
        let _ = writeln!(out, "Times:");
        for t in &r.times {
            let _ = writeln!(out, "  {:<4} {}  ({})", t.claim, t.utc, t.relative);
        }
    }
    match (&r.config, r.signature_checked) {
        (Some(path), true) => {
            if r.accepted {
                let with = r.verified_with.as_deref().unwrap_or("");
                let _ = writeln!(out, "Verdict: ACCEPTED by {path} (verified with {with})");
            } else {
                let _ = writeln!(
                    out,
                    "Verdict: REFUSED by {path}: {}",
                    r.reason.as_deref().unwrap_or("unknown")
                );
                if let Some(h) = &r.hint {
                    let _ = writeln!(out, "  {h}");
                }
            }
        }
        _ => {
            match &r.reason {
                Some(reason) if too_large => {
                    let _ = writeln!(out, "Verdict: REFUSED: {reason}");
                    if let Some(h) = &r.hint {
                        let _ = writeln!(out, "  {h}");
                    }
                }
                Some(reason) => {
                    let _ = writeln!(out, "Verdict: cannot decode: {reason}");
                }
                None => {}
            }
            match &r.config_error {
                Some(e) => {
                    let _ = writeln!(
                        out,
                        "NOTHING WAS VERIFIED: the config could not be loaded ({e}). The token was only \
                         decoded; anyone can write a token that decodes like this one."
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "The signature was NOT checked: no config found (pass --config PATH, set $NYRO_GW_CONFIG, \
                         or run where gateway.toml is). Anyone can write a token that decodes like this one."
                    );
                }
            }
        }
    }
    if !r.routes.is_empty() {
        let w = |f: &dyn Fn(&RouteRow) -> usize, min: usize| {
            r.routes.iter().map(f).max().unwrap_or(0).max(min)
        };
        let (wn, wp) = (w(&|x| x.name.len(), 5), w(&|x| x.prefix.len(), 6));
        let _ = writeln!(out, "Routes:");
        let _ = writeln!(
            out,
            "  {:<wn$}  {:<wp$}  {:<8}  RESULT",
            "ROUTE", "PREFIX", "AUTH"
        );
        for row in &r.routes {
            let mut result = format!("{} {}", row.status, row.outcome);
            if !row.inject.is_empty() {
                let list: Vec<String> = row
                    .inject
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                result.push_str(&format!("; injects {}", list.join(", ")));
            }
            let _ = writeln!(
                out,
                "  {:<wn$}  {:<wp$}  {:<8}  {result}",
                row.name, row.prefix, row.auth
            );
            for l in &row.limits {
                let _ = writeln!(out, "  {:<wn$}  {:<wp$}  {:<8}  limit {l}", "", "", "");
            }
        }
        if r.accepted && !r.forwarded_by_a_route {
            let _ = writeln!(
                out,
                "No route with auth = \"required\" or \"optional\" would forward it (exit status 1)."
            );
        }
    }
    out
}
