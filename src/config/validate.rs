//! Raw config -> validated `Config`: the driver. It parses the TOML
//! (every syntax error at once), runs the key-table checks (unknown keys,
//! value types), deserializes the raw structs, then has the `Validator`
//! check each section and assembles the `Config`. Every check reports into
//! the `Sink` and carries on, so one run names every problem in the file.
//!
//! The checks live by section in `validate/`: `fields.rs` reads one value
//! (expansion, durations, counts, addresses, paths), then `server.rs`
//! (`[server]`, `[admin]`), `auth.rs`, `cors.rs`, `routes.rs`,
//! `rate_limit.rs` and `telemetry.rs`. The pure value parsers they call
//! are in `parse.rs` and `values.rs`.

mod auth;
mod cors;
mod fields;
mod rate_limit;
mod routes;
mod server;
mod telemetry;

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use http::HeaderName;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::diag::Sink;
use super::model::{AuthMode, Config, Limit, Route};
use super::parse::word;
use super::raw::RawFile;
use super::{LoadOptions, LoadReport, Places, Position, schema};

pub(super) fn validate(
    src: &str,
    file: &str,
    dir: &Path,
    opts: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> LoadReport {
    validate_with_places(src, file, dir, opts, env).0
}

/// [`validate`], also returning where the keys naming files sit.
pub(super) fn validate_with_places(
    src: &str,
    file: &str,
    dir: &Path,
    opts: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> (LoadReport, Places) {
    let mut sink = Sink::new(src, file);
    let (doc, errors) = DeTable::parse_recoverable(src);
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        sink.error(span, format!("invalid TOML: {}", e.message().trim()));
    }
    if !errors.is_empty() {
        return (
            LoadReport {
                config: None,
                diagnostics: sink.finish(),
                hash: 0,
            },
            Places::default(),
        );
    }
    schema::check(doc.get_ref(), &mut sink);
    let keys_at = schema::value_keys(doc.get_ref());
    if schema::check_types(doc.get_ref(), &mut sink) {
        return (
            LoadReport {
                config: None,
                diagnostics: sink.finish(),
                hash: 0,
            },
            Places::default(),
        );
    }
    let raw = match RawFile::deserialize(toml::de::Deserializer::from(doc)) {
        Ok(raw) => raw,
        Err(e) => {
            sink.error(e.span().unwrap_or(0..0), e.message().trim().to_owned());
            return (
                LoadReport {
                    config: None,
                    diagnostics: sink.finish(),
                    hash: 0,
                },
                Places::default(),
            );
        }
    };
    let places = places(&raw, &sink);
    let mut v = Validator {
        sink,
        env,
        dir,
        opts,
        names: HashSet::new(),
        prefixes: HashSet::new(),
        auth_facts: Vec::new(),
        limit_names: std::collections::HashMap::new(),
        keys_at,
        defaults_seen: HashSet::new(),
        placeholders: HashSet::new(),
    };
    let config = v.config(raw);
    let ok = !v.sink.has_errors();
    (
        LoadReport {
            config: config.filter(|_| ok),
            diagnostics: v.sink.finish(),
            hash: 0,
        },
        places,
    )
}

/// Where the keys naming files sit in `raw` (their values' starts).
fn places(raw: &RawFile, sink: &Sink<'_>) -> Places {
    let at = |span: Range<usize>| {
        let (line, column) = sink.position(span.start);
        Position { line, column }
    };
    let tls = raw.server.as_ref().and_then(|s| s.get_ref().tls.as_ref());
    Places {
        file: String::new(),
        tls_cert: tls.and_then(|t| t.get_ref().cert.as_ref().map(|c| at(c.span()))),
        tls_key: tls.and_then(|t| t.get_ref().key.as_ref().map(|k| at(k.span()))),
        jwks_url: raw
            .auth
            .as_ref()
            .and_then(|a| a.get_ref().jwks_url.as_ref().map(|u| at(u.span()))),
        ca_file: raw
            .routes
            .as_ref()
            .map(|rs| {
                rs.get_ref()
                    .iter()
                    .map(|r| r.get_ref().ca_file.as_ref().map(|c| at(c.span())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// One validation run: where problems go, what the sections need to
/// know (environment, directory, options), and what one section leaves for
/// another (names, prefixes and limits seen so far). Its methods are in
/// `validate/`, by section.
struct Validator<'a> {
    /// Collects every diagnostic, with its position.
    sink: Sink<'a>,
    /// Looks up `${VAR}`s.
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Relative paths resolve against it (the config file's directory).
    dir: &'a Path,
    /// `--dev`, `--allow-missing-env`.
    opts: &'a LoadOptions,
    /// Route names seen so far (must be unique).
    names: HashSet<String>,
    /// Route prefixes seen so far (must be unique).
    prefixes: HashSet<String>,
    /// What `weaker_parent_warnings` compares, for each route whose name,
    /// prefix, upstream and auth are valid.
    auth_facts: Vec<AuthFact>,
    /// Every limit seen so far by name, with where it was written: limits
    /// that share a name share a budget, so they must agree.
    limit_names: std::collections::HashMap<String, (Limit, Range<usize>)>,
    /// The key of each string value, by where the value starts (for the
    /// placeholder an unset variable gets under `--allow-missing-env`).
    keys_at: std::collections::HashMap<usize, &'static str>,
    /// Variables whose `${VAR:-default}` fell back, each noted once.
    defaults_seen: HashSet<String>,
    /// Where values replaced by a placeholder start: their files are not
    /// looked for.
    placeholders: HashSet<usize>,
}

/// A route's auth, where it matches and where it sends requests.
struct AuthFact {
    name: String,
    prefix: String,
    prefix_span: Range<usize>,
    auth: AuthMode,
    /// Scheme and authority of the upstream: the server that reads the path.
    server: (bool, String),
}

impl Validator<'_> {
    /// Checks every section (each reports all its problems) and assembles
    /// the `Config` when every one of them came out valid.
    fn config(&mut self, raw: RawFile) -> Option<Config> {
        let RawFile {
            server,
            admin,
            auth,
            cors,
            routes,
            rate_limit,

            telemetry,
        } = raw;
        let telemetry = self.telemetry(telemetry.map(Spanned::into_inner));
        let server = self.server(server.map(Spanned::into_inner));
        // Before the routes: their `limits` replace these defaults.
        let rate_limit = self.rate_limit(rate_limit.map(Spanned::into_inner));
        let admin = admin.and_then(|a| self.admin(a));
        let routes_raw = routes.map(Spanned::into_inner).unwrap_or_default();
        // Decided on the raw routes, so that a route with another mistake
        // still counts: the missing key is reported along with it.
        let first_authenticated = routes_raw.iter().find_map(|r| {
            let auth = r.get_ref().auth.as_ref();
            match auth.map(|a| {
                (
                    word(a.get_ref(), &AuthMode::ALL, AuthMode::as_str),
                    a.span(),
                )
            }) {
                Some((Some(AuthMode::Required | AuthMode::Optional), span)) => Some(span),
                Some(_) => None, // "none", or a word reported on its own
                None => Some(r.span()),
            }
        });
        let cors = self.cors(cors.map(Spanned::into_inner));
        let default_limits = rate_limit.as_ref().map(|r| r.limits.clone());
        let routes: Vec<Option<Route>> = routes_raw
            .into_iter()
            .map(|r| self.route(r, cors.as_ref(), default_limits.as_deref()))
            .collect();
        let auth = self.auth(auth, first_authenticated);
        if let (Some(server), Some((admin, admin_span))) = (&server, &admin)
            && server.listen == admin.listen
            && server.listen.port() != 0
        {
            self.err(
                admin_span.clone(),
                format!(
                    "[admin].listen and [server].listen are both {}; give the admin listener its own port, e.g. \"127.0.0.1:9901\"",
                    admin.listen
                ),
            );
        }
        let admin = admin.map(|(a, _)| a);
        self.weaker_parent_warnings();
        let routes: Vec<Route> = routes.into_iter().collect::<Option<_>>()?;
        let mut injected_headers: Vec<HeaderName> = routes
            .iter()
            .flat_map(|r| r.inject.iter().map(|i| i.header.clone()))
            .collect();
        injected_headers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        injected_headers.dedup();
        Some(Config {
            server: server?,
            admin,
            auth: auth?,
            cors: cors?,
            routes,
            injected_headers,
            rate_limit: rate_limit?,
            telemetry: telemetry?,
        })
    }
}
