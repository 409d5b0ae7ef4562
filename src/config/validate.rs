//! Raw config -> validated `Config`. Every check reports into the `Sink`
//! and carries on, so one run names every problem in the file.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, Method, Uri};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::diag::Sink;
use super::env;
use super::model::is_hmac;
use super::model::*;
use super::parse::{
    check_prefix, check_redis_url, is_label_safe, jwks_uri, otlp_uri, parse_algorithm, parse_cidr,
    parse_claim_path, parse_limit_key, parse_method, parse_origin, parse_rate, parse_upgrade,
    parse_upstream, secret_lines, secret_problem, segment_prefix,
};
use super::raw::*;
use super::values::{
    MAX_SECRET_FILE, is_world_writable, parse_duration, parse_size, read_regular_file,
};
use super::{LoadOptions, LoadReport, Places, Position, schema};

/// Header names an injection may never use: hop-by-hop (RFC 9110 §7.6.1),
/// framing, and the headers the gateway itself owns.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "host",
    "content-length",
    "authorization",
    "cookie",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

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
        tls: tls.map(|t| at(t.span())),
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

struct Validator<'a> {
    sink: Sink<'a>,
    env: &'a dyn Fn(&str) -> Option<String>,
    dir: &'a Path,
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
            match auth.map(|a| (a.get_ref().as_str(), a.span())) {
                Some(("required" | "optional", span)) => Some(span),
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

    /// `[telemetry]` (README "Tracing"): the OTLP base URL, from the key
    /// or else from `OTEL_EXPORTER_OTLP_ENDPOINT`, and the sample ratio.
    fn telemetry(&mut self, raw: Option<RawTelemetry>) -> Option<Telemetry> {
        let RawTelemetry {
            otlp_endpoint,
            sample_ratio,
        } = raw.unwrap_or(RawTelemetry {
            otlp_endpoint: None,
            sample_ratio: None,
        });
        let mut ok = true;
        let endpoint = match &otlp_endpoint {
            Some(s) => self
                .optional_uri(s, "telemetry.otlp_endpoint", otlp_uri)
                .unwrap_or_else(|()| {
                    ok = false;
                    None
                }),
            None => match (self.env)("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.is_empty()) {
                Some(v) => match otlp_uri(&v) {
                    Ok(u) => Some(u),
                    Err(m) => {
                        self.err(0..0, format!("OTEL_EXPORTER_OTLP_ENDPOINT: {m}"));
                        ok = false;
                        None
                    }
                },
                None => None,
            },
        };
        let ratio = match &sample_ratio {
            None => 1.0,
            Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
            Some(r) => {
                self.err(
                    r.span(),
                    format!(
                        "telemetry.sample_ratio: {} is not between 0.0 and 1.0 (e.g. 0.1 samples one new trace in ten)",
                        r.get_ref()
                    ),
                );
                ok = false;
                1.0
            }
        };
        ok.then_some(Telemetry {
            otlp_endpoint: endpoint,
            sample_ratio: ratio,
        })
    }

    // ---- helpers -------------------------------------------------------

    /// Expands `${VAR}`s in a string value, reporting at the `$`.
    fn expand(&mut self, s: &Spanned<String>) -> Option<String> {
        match self.expand_value(s) {
            Ok(v) => Some(v),
            Err(e) => {
                let at = self.offset_in_value(s, e.offset());
                self.sink.error(at..at, e.to_string());
                None
            }
        }
    }

    /// Expands a value, noting (info) each `${VAR:-default}` that fell
    /// back. Under `--allow-missing-env` an unset variable is a warning and
    /// the value becomes the placeholder its key expects: the variable is
    /// the whole value (checked as the placeholder), or sits inside a
    /// longer string (whose own checks are skipped, as the warning says).
    fn expand_value(&mut self, s: &Spanned<String>) -> Result<String, env::ExpandError> {
        let text = s.get_ref();
        if !text.contains('$') {
            return Ok(text.clone());
        }
        for name in env::defaulted(text, self.env) {
            if self.defaults_seen.insert(name.clone()) {
                self.sink.info(
                    s.span(),
                    format!("{name} is unset or empty: its ${{{name}:-…}} default is used"),
                );
            }
        }
        match env::expand(text, self.env) {
            Err(env::ExpandError::Unset { .. }) if self.opts.allow_missing_env => {
                let names = env::unset(text, self.env).join(", ");
                let key = self.keys_at.get(&s.span().start).copied().unwrap_or("");
                let value = schema::placeholder(key);
                let message = if key == "auth.secret" {
                    format!(
                        "{names} is not set (--allow-missing-env): auth.secret is checked as if it held a secret of sufficient length"
                    )
                } else if env::is_whole_reference(text) {
                    format!(
                        "{names} is not set (--allow-missing-env): {key} is checked as if it held {value:?}"
                    )
                } else {
                    format!(
                        "{names} is not set (--allow-missing-env): the rest of this {key} value is not checked"
                    )
                };
                self.warn(s.span(), message);
                self.placeholders.insert(s.span().start);
                Ok(value.to_owned())
            }
            other => other,
        }
    }

    /// Byte offset in the file of byte `inner` of a string value (exact
    /// when no escape precedes it, else the value's start).
    fn offset_in_value(&self, s: &Spanned<String>, inner: usize) -> usize {
        let span = s.span();
        let raw = self.sink.src().get(span.clone()).unwrap_or("");
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        match (raw.get(quote..), s.get_ref().get(..inner)) {
            (Some(body), Some(prefix)) if body.starts_with(prefix) => span.start + quote + inner,
            _ => span.start,
        }
    }

    fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.sink.error(span, msg);
    }

    fn warn(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.sink.warning(span, msg);
    }

    fn duration(
        &mut self,
        s: Option<Spanned<String>>,
        default: Duration,
        key: &str,
    ) -> Option<Duration> {
        let Some(s) = s else { return Some(default) };
        let text = self.expand(&s)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    /// A count of at least 1 (connections), or `default` when absent.
    /// A URL value that may expand to empty (then `None`: the feature is
    /// off), checked by `parse`; `Err` once the problem is reported at the
    /// value (or the variable it names is reported unset).
    fn optional_uri(
        &mut self,
        s: &Spanned<String>,
        key: &str,
        parse: fn(&str) -> Result<Uri, String>,
    ) -> Result<Option<Uri>, ()> {
        match self.expand(s) {
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => parse(&v).map(Some).map_err(|m| {
                self.err(s.span(), format!("{key}: {m}"));
            }),
            None => Err(()),
        }
    }

    fn count(&mut self, n: Option<Spanned<i64>>, default: usize, key: &str) -> Option<usize> {
        let Some(n) = n else { return Some(default) };
        match usize::try_from(*n.get_ref()) {
            Ok(v) if v >= 1 => Some(v),
            _ => {
                self.err(
                    n.span(),
                    format!("{key} must be a whole number of at least 1, e.g. {key} = {default}"),
                );
                None
            }
        }
    }

    fn positive_duration(
        &mut self,
        s: Option<Spanned<String>>,
        default: Duration,
        key: &str,
    ) -> Option<Duration> {
        let span = s.as_ref().map(|s| s.span());
        let d = self.duration(s, default, key)?;
        if d.is_zero() {
            self.err(
                span.unwrap_or(0..0),
                format!("{key} must be more than zero"),
            );
            return None;
        }
        Some(d)
    }

    fn socket_addr(&mut self, s: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        let text = self.expand(s)?;
        match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let hint = if let Some(port) = text.strip_prefix(':') {
                    format!("; to listen on every interface write \"0.0.0.0:{port}\"")
                } else if let Some(port) = text.strip_prefix("localhost:") {
                    format!("; write \"127.0.0.1:{port}\"")
                } else {
                    "; expected ip:port, e.g. \"0.0.0.0:8080\" or \"[::]:8080\"".into()
                };
                self.err(
                    s.span(),
                    format!("{key}: {text:?} is not a socket address{hint}"),
                );
                None
            }
        }
    }

    fn path(&mut self, s: &Spanned<String>, key: &str, must_exist: bool) -> Option<PathBuf> {
        let text = self.expand(s)?;
        if text.is_empty() {
            self.err(s.span(), format!("{key} is empty"));
            return None;
        }
        let p = Path::new(&text);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        };
        if must_exist
            && !self.placeholders.contains(&s.span().start)
            && let Err(e) = std::fs::metadata(&full)
        {
            let message = format!("{key}: cannot read {}: {e}", full.display());
            if self.opts.allow_missing_env {
                // It may exist only where the gateway runs.
                self.warn(s.span(), format!("{message} (--allow-missing-env)"));
                return Some(full);
            }
            self.err(s.span(), message);
            return None;
        }
        Some(full)
    }

    fn string_list(&mut self, list: &[Spanned<String>]) -> Vec<(String, Range<usize>)> {
        list.iter()
            .filter_map(|s| Some((self.expand(s)?, s.span())))
            .collect()
    }

    /// `trusted_proxies`: every entry a CIDR (`"10.0.0.0/8"`,
    /// `"fd00::/8"`) or a single address (taken as /32 or /128).
    fn cidrs(&mut self, list: &[Spanned<String>]) -> Option<Vec<ipnet::IpNet>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (text, span) in self.string_list(list) {
            match parse_cidr(&text) {
                Ok(net) => out.push(net),
                Err(m) => {
                    self.err(span, format!("trusted_proxies: {m}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    // ---- sections ------------------------------------------------------

    fn server(&mut self, raw: Option<RawServer>) -> Option<Server> {
        let RawServer {
            listen,
            connect_timeout,
            request_timeout,
            shutdown_grace,
            max_body,
            tls,
            header_read_timeout,
            max_connections,
            max_upstream_connections,
            trusted_proxies,
            tunnel_idle_timeout,
            workers,
        } = raw.unwrap_or(RawServer {
            listen: None,
            connect_timeout: None,
            request_timeout: None,
            shutdown_grace: None,
            max_body: None,
            tls: None,
            header_read_timeout: None,
            max_connections: None,
            max_upstream_connections: None,
            trusted_proxies: None,
            tunnel_idle_timeout: None,
            workers: None,
        });
        let listen = match listen {
            Some(l) => self.socket_addr(&l, "listen"),
            None => Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
        };
        let connect_timeout =
            self.positive_duration(connect_timeout, Duration::from_secs(10), "connect_timeout");
        let request_timeout =
            self.positive_duration(request_timeout, Duration::from_secs(60), "request_timeout");
        let shutdown_grace =
            self.duration(shutdown_grace, Duration::from_secs(30), "shutdown_grace");
        let tunnel_idle_timeout = self.positive_duration(
            tunnel_idle_timeout,
            Duration::from_secs(300),
            "tunnel_idle_timeout",
        );
        let max_body = match max_body {
            None => Some(None),
            Some(s) => {
                let text = self.expand(&s);
                match text.map(|t| parse_size(&t)) {
                    Some(Ok(n)) => Some(Some(n)),
                    Some(Err(e)) => {
                        self.err(s.span(), format!("max_body: {e}"));
                        None
                    }
                    None => None,
                }
            }
        };
        let tls = match tls {
            None => Some(None),
            Some(t) => {
                let span = t.span();
                let RawTls { cert, key } = t.into_inner();
                match (cert, key) {
                    (Some(c), Some(k)) => {
                        let cert = self.path(&c, "tls.cert", true);
                        let key = self.path(&k, "tls.key", true);
                        Some(Some(TlsFiles {
                            cert: cert?,
                            key: key?,
                        }))
                    }
                    _ => {
                        self.err(span, "tls needs both cert and key: tls = { cert = \"/path/tls.crt\", key = \"/path/tls.key\" }");
                        None
                    }
                }
            }
        };
        let header_read_timeout = self.positive_duration(
            header_read_timeout,
            Duration::from_secs(30),
            "header_read_timeout",
        );
        let max_connections = self.count(max_connections, 10_000, "max_connections");
        let max_upstream_connections =
            self.count(max_upstream_connections, 1024, "max_upstream_connections");
        let workers = match workers {
            None => Some(None),
            Some(n) => self.count(Some(n), 2, "workers").map(Some),
        };
        let trusted_proxies = match trusted_proxies {
            None => Some(Vec::new()),
            Some(list) => self.cidrs(list.get_ref()),
        };
        Some(Server {
            trusted_proxies: trusted_proxies?,
            listen: listen?,
            connect_timeout: connect_timeout?,
            request_timeout: request_timeout?,
            shutdown_grace: shutdown_grace?,
            max_body: max_body?,
            tls: tls?,
            header_read_timeout: header_read_timeout?,
            max_connections: max_connections?,
            max_upstream_connections: max_upstream_connections?,
            tunnel_idle_timeout: tunnel_idle_timeout?,
            workers: workers?,
        })
    }

    /// The admin listener, and the span of its `listen` value.
    fn admin(&mut self, raw: Spanned<RawAdmin>) -> Option<(Admin, Range<usize>)> {
        let span = raw.span();
        let RawAdmin { listen } = raw.into_inner();
        let Some(listen) = listen else {
            self.err(
                span,
                "[admin] needs listen, e.g. listen = \"127.0.0.1:9901\"",
            );
            return None;
        };
        let addr = self.socket_addr(&listen, "admin.listen")?;
        if addr.ip().is_unspecified() {
            self.warn(listen.span(), "the admin listener is reachable from every interface; it exposes the active config and metrics, keep it off public networks");
        }
        Some((Admin { listen: addr }, listen.span()))
    }

    /// `[auth]`. `first_authenticated` is where the first route that
    /// verifies tokens says so (its `auth` value, or the route when it
    /// relies on the default `"required"`): a key is needed then.
    fn auth(
        &mut self,
        raw: Option<Spanned<RawAuth>>,
        first_authenticated: Option<Range<usize>>,
    ) -> Option<Auth> {
        let has_section = raw.is_some();
        let (section_span, raw) = match raw {
            Some(r) => (r.span(), r.into_inner()),
            None => (
                0..0,
                RawAuth {
                    audience: None,
                    issuer: None,
                    algorithms: None,
                    secret: None,
                    secret_file: None,
                    jwks_url: None,
                    leeway: None,
                    required_claims: None,
                },
            ),
        };
        let RawAuth {
            audience,
            issuer,
            algorithms,
            secret,
            secret_file,
            jwks_url,
            leeway,
            required_claims,
        } = raw;
        let needs_keys = first_authenticated.is_some();
        let mut ok = true;

        let audience = match audience {
            None => vec!["authenticated".to_owned()],
            Some(a) => {
                let span = a.span();
                let list: Vec<String> = match a.into_inner() {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(v) => v,
                };
                let mut out = Vec::new();
                for item in list {
                    match self.expand_value(&Spanned::new(span.clone(), item)) {
                        Ok(v) if !v.is_empty() => out.push(v),
                        Ok(_) => {}
                        Err(e) => {
                            self.err(span.clone(), e.to_string());
                            ok = false;
                        }
                    }
                }
                if out.is_empty() && ok {
                    self.err(span, "audience is empty; tokens must name an audience (Supabase user tokens carry \"authenticated\")");
                    ok = false;
                }
                out
            }
        };

        let issuer = match issuer {
            None => None,
            Some(s) => match self.expand(&s) {
                Some(v) if v.is_empty() => None,
                Some(v) => Some(v),
                None => {
                    ok = false;
                    None
                }
            },
        };

        let leeway_span = leeway.as_ref().map_or(section_span.clone(), |l| l.span());
        let leeway = self.duration(leeway, Duration::ZERO, "leeway");
        if let Some(l) = leeway
            && l > Duration::from_secs(300)
        {
            self.warn(
                leeway_span,
                "leeway is over 5 minutes: expired tokens stay valid that much longer",
            );
        }

        let required_claims = match required_claims {
            None => vec!["sub".to_owned(), "aud".to_owned(), "exp".to_owned()],
            Some(list) => {
                let mut out = Vec::new();
                for (c, span) in self.string_list(list.get_ref()) {
                    if c.is_empty() {
                        self.err(span, "required_claims holds an empty claim name");
                        ok = false;
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        };

        // The HMAC secret.
        let mut hmac = None;
        if let (Some(s), Some(f)) = (&secret, &secret_file) {
            let _ = s;
            self.err(f.span(), "set either secret or secret_file, not both");
            ok = false;
        }
        if let Some(s) = &secret {
            // Each entry expanded; empty ones (an unset `${OLD_SECRET:-}`)
            // dropped, so a rotation can run through the environment.
            let entries: Vec<(Option<usize>, Spanned<String>)> = match s.get_ref() {
                Secrets::One(v) => vec![(None, Spanned::new(s.span(), v.clone()))],
                Secrets::Many(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Some(i + 1), v.clone()))
                    .collect(),
            };
            let mut keys = Vec::new();
            for (position, entry) in &entries {
                let label = position.map_or("secret".to_owned(), |p| format!("secret {p}"));
                match self.expand_value(entry) {
                    Ok(v) if v.is_empty() => {}
                    Ok(v) => {
                        if self.check_secret(v.as_bytes(), entry.span(), *position, &label) {
                            keys.push(Secret::new(v.into_bytes()));
                        } else {
                            ok = false;
                        }
                    }
                    Err(env::ExpandError::Unset { .. }) if self.opts.dev => {}
                    Err(e) => {
                        let at = self.offset_in_value(entry, e.offset());
                        self.err(at..at, format!("{label}: {e}"));
                        ok = false;
                    }
                }
            }
            if ok {
                hmac = self.hmac_key(keys, SecretSource::Inline, s.span());
            }
        } else if let Some(f) = &secret_file {
            if let Some(path) = self.path(f, "secret_file", false) {
                let read = if self.placeholders.contains(&f.span().start) {
                    Ok(schema::placeholder("auth.secret").as_bytes().to_vec())
                } else {
                    read_regular_file(&path, MAX_SECRET_FILE)
                };
                match read {
                    Ok(bytes) => {
                        if is_world_writable(&path) {
                            self.warn(
                                f.span(),
                                format!(
                                    "secret_file: {} is world-writable: anyone on this host can replace the key (chmod o-w)",
                                    path.display()
                                ),
                            );
                        }
                        let lines = secret_lines(bytes);
                        let several = lines.len() > 1;
                        let mut keys = Vec::new();
                        for (line, bytes) in lines {
                            let label = format!("secret_file line {line}");
                            let position = several.then_some(keys.len() + 1);
                            if self.check_secret(&bytes, f.span(), position, &label) {
                                keys.push(Secret::new(bytes));
                            } else {
                                ok = false;
                            }
                        }
                        if ok {
                            hmac = self.hmac_key(keys, SecretSource::File(path), f.span());
                        }
                    }
                    Err(e) if self.opts.allow_missing_env => {
                        // It may exist only where the gateway runs: checked
                        // as if it held a valid secret.
                        self.warn(
                            f.span(),
                            format!(
                                "secret_file: cannot read {}: {e} (--allow-missing-env)",
                                path.display()
                            ),
                        );
                        let placeholder = schema::placeholder("auth.secret").as_bytes().to_vec();
                        hmac = self.hmac_key(
                            vec![Secret::new(placeholder)],
                            SecretSource::File(path),
                            f.span(),
                        );
                    }
                    Err(e) => {
                        self.err(
                            f.span(),
                            format!("secret_file: cannot read {}: {e}", path.display()),
                        );
                        ok = false;
                    }
                }
            } else {
                ok = false;
            }
        }

        let jwks = match &jwks_url {
            None => None,
            Some(s) => self
                .optional_uri(s, "jwks_url", jwks_uri)
                .unwrap_or_else(|()| {
                    ok = false;
                    None
                }),
        };

        if hmac.is_none() && jwks.is_none() && ok && self.opts.dev && secret_file.is_none() {
            hmac = Some(HmacKey {
                secret: ephemeral_secret(),
                source: SecretSource::Ephemeral,
                older: Vec::new(),
            });
            let at = secret.as_ref().map_or(section_span.clone(), |s| s.span());
            self.warn(at, "no HMAC secret is set: --dev uses an ephemeral random secret; tokens minted now stop working when the gateway restarts");
        }

        if let Some(route_span) = &first_authenticated
            && hmac.is_none()
            && jwks.is_none()
            && ok
        {
            // Point at the [auth] section when there is one, else at the
            // route that needs it.
            let at = match (&secret, has_section) {
                (Some(s), _) => s.span(),
                (None, true) => section_span.clone(),
                (None, false) => route_span.clone(),
            };
            self.err(at, "routes require authentication but no key is configured: set [auth].secret (e.g. secret = \"${GATEWAY_JWT_SECRET}\"), secret_file or jwks_url");
            ok = false;
        }

        // Algorithms.
        let algorithms = match algorithms {
            None => {
                let mut v = Vec::new();
                if hmac.is_some() || secret_file.is_some() {
                    v.push(jsonwebtoken::Algorithm::HS256);
                }
                if jwks.is_some() {
                    v.extend([
                        jsonwebtoken::Algorithm::ES256,
                        jsonwebtoken::Algorithm::RS256,
                    ]);
                }
                v
            }
            Some(list) => {
                let span = list.span();
                let mut out = Vec::new();
                for (name, span) in self.string_list(list.get_ref()) {
                    match parse_algorithm(&name) {
                        Ok(a) => {
                            if !out.contains(&a) {
                                out.push(a);
                            }
                        }
                        Err(m) => {
                            self.err(span, m);
                            ok = false;
                        }
                    }
                }
                if out.is_empty() && ok {
                    self.err(
                        span.clone(),
                        "algorithms is empty; list at least one, e.g. [\"HS256\"]",
                    );
                    ok = false;
                }
                let has_hmac_alg = out.iter().any(|a| is_hmac(*a));
                let has_asym_alg = out.iter().any(|a| !is_hmac(*a));
                if ok && has_hmac_alg && hmac.is_none() && secret_file.is_none() && needs_keys {
                    self.err(
                        span.clone(),
                        "algorithms allows HMAC (HS*) but no secret or secret_file is set",
                    );
                    ok = false;
                }
                if ok && has_asym_alg && jwks.is_none() {
                    self.err(span.clone(), "algorithms allows asymmetric algorithms but no jwks_url is set to fetch their keys");
                    ok = false;
                }
                if ok && jwks.is_some() && !has_asym_alg {
                    self.warn(span.clone(), "jwks_url is set but algorithms allows no asymmetric algorithm (add \"ES256\" or \"RS256\")");
                }
                if ok && hmac.is_some() && !has_hmac_alg {
                    self.warn(span, "an HMAC secret is set but algorithms allows no HS* algorithm; the secret is unused");
                }
                out
            }
        };

        if !ok {
            return None;
        }
        Some(Auth {
            audience,
            issuer,
            algorithms,
            hmac,
            jwks_url: jwks,
            leeway: leeway?,
            required_claims,
        })
    }

    /// Refuses a secret that [`secret_problem`] finds wrong; `position`
    /// (1-based, `None` when it is the only one) prefixes the message with
    /// `label`, never with the value.
    fn check_secret(
        &mut self,
        secret: &[u8],
        span: Range<usize>,
        position: Option<usize>,
        label: &str,
    ) -> bool {
        match secret_problem(secret) {
            None => true,
            Some(m) if position.is_none() => {
                self.err(span, m);
                false
            }
            Some(m) => {
                self.err(span, format!("{label}: {m}"));
                false
            }
        }
    }

    /// The HMAC key from the secrets left after dropping empty ones (`None`
    /// when none is left), with a warning when more than two are listed:
    /// a rotation needs two, more means an old one was never removed.
    fn hmac_key(
        &mut self,
        keys: Vec<Secret>,
        source: SecretSource,
        span: Range<usize>,
    ) -> Option<HmacKey> {
        let mut keys = keys.into_iter();
        let secret = keys.next()?;
        let older: Vec<Secret> = keys.collect();
        if older.len() > 1 {
            self.warn(
                span,
                format!(
                    "{} HMAC secrets are listed; a rotation needs two (the new one first, the old one until its tokens expire): remove the ones no token is signed with any more (nyro_token_verifications_total shows which positions still verify)",
                    older.len() + 1
                ),
            );
        }
        Some(HmacKey {
            secret,
            source,
            older,
        })
    }

    fn cors(&mut self, raw: Option<RawCors>) -> Option<Cors> {
        let RawCors {
            allowed_origins,
            allow_credentials,
            max_age,
            allow_headers,
            expose_headers,
        } = raw.unwrap_or(RawCors {
            allowed_origins: None,
            allow_credentials: None,
            max_age: None,
            allow_headers: None,
            expose_headers: None,
        });
        let allow_credentials = allow_credentials.is_none_or(Spanned::into_inner);
        let origins_span = allowed_origins.as_ref().map(|o| o.span());
        let allowed_origins = match allowed_origins {
            Some(list) => self.origins(list.get_ref(), allow_credentials, "allowed_origins"),
            None => Some(Vec::new()),
        };
        if let (Some(o), Some(span)) = (&allowed_origins, origins_span)
            && o.is_empty()
        {
            self.warn(
                span,
                "allowed_origins is empty: browsers on other origins cannot call the gateway",
            );
        }
        let max_age = self.duration(max_age, Duration::from_secs(600), "max_age");
        let allow_headers = match allow_headers {
            None => Some(None),
            Some(list) => self.header_names(list.get_ref(), "allow_headers").map(Some),
        };
        let expose_headers = match expose_headers {
            None => Some(vec![
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-process-time"),
                // README "Rate limits": a page can read why it was limited.
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                HeaderName::from_static("retry-after"),
            ]),
            Some(list) => self.header_names(list.get_ref(), "expose_headers"),
        };
        Some(Cors {
            allowed_origins: allowed_origins?,
            allow_credentials,
            max_age: max_age?,
            allow_headers: allow_headers?,
            expose_headers: expose_headers?,
        })
    }

    fn header_names(&mut self, list: &[Spanned<String>], key: &str) -> Option<Vec<HeaderName>> {
        let mut ok = true;
        let mut out = Vec::new();
        for (name, span) in self.string_list(list) {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) => out.push(h),
                Err(_) => {
                    self.err(span, format!("{key}: {name:?} is not a valid header name"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn origins(
        &mut self,
        list: &[Spanned<String>],
        credentials: bool,
        key: &str,
    ) -> Option<Vec<OriginRule>> {
        let mut ok = true;
        let mut out = Vec::new();
        for (text, span) in self.string_list(list) {
            if text.is_empty() {
                continue; // `${VERCEL_FRONTEND_URL:-}` left unset
            }
            match parse_origin(&text) {
                Ok(OriginRule::Any) if credentials => {
                    self.err(span, format!("{key}: \"*\" cannot be used with allow_credentials = true (browsers refuse it); list the origins, or set allow_credentials = false"));
                    ok = false;
                }
                Ok(rule) => {
                    if !out.contains(&rule) {
                        out.push(rule);
                    }
                }
                Err(m) => {
                    self.err(span, format!("{key}: {m}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn route(
        &mut self,
        raw: Spanned<RawRoute>,
        cors: Option<&Cors>,
        default_limits: Option<&[Limit]>,
    ) -> Option<Route> {
        let span = raw.span();
        let RawRoute {
            name,
            prefix,
            upstream,
            auth,
            strip_prefix,
            methods,
            cors_origins,
            timeout,
            http2,
            ca_file,
            inject,
            upgrades,
            limits,
        } = raw.into_inner();
        let mut ok = true;

        let name = match name {
            Some(n) => match self.expand(&n) {
                Some(v) if v.trim().is_empty() => {
                    self.err(n.span(), "route name is empty");
                    None
                }
                Some(v) if !is_label_safe(&v) => {
                    self.err(
                        n.span(),
                        format!("route name {v:?} may hold only ASCII letters, digits, '-', '_', '.' and ':' (it is a metrics label and a log field), e.g. \"user-service\""),
                    );
                    None
                }
                Some(v) if !self.names.insert(v.clone()) => {
                    self.err(
                        n.span(),
                        format!("route name {v:?} is used twice; names must be unique"),
                    );
                    None
                }
                v => v.map(|v| (v, n.span())),
            },
            None => {
                self.err(
                    span.clone(),
                    "route has no name; add name = \"...\" (used in logs and metrics)",
                );
                None
            }
        };

        let prefix = match prefix {
            Some(p) => self.expand(&p).and_then(|v| match check_prefix(&v) {
                Ok(()) if !self.prefixes.insert(v.clone()) => {
                    self.err(
                        p.span(),
                        format!(
                            "prefix {v:?} is used by an earlier route; each prefix may appear once"
                        ),
                    );
                    None
                }
                Ok(()) => Some((v, p.span())),
                Err(m) => {
                    self.err(p.span(), m);
                    None
                }
            }),
            None => {
                self.err(
                    span.clone(),
                    "route has no prefix; add prefix = \"/api/v1/...\"",
                );
                None
            }
        };

        let upstream_span = upstream.as_ref().map(|u| u.span());
        let upstream = match upstream {
            Some(u) => match self.expand(&u) {
                Some(v) if v.is_empty() => Some(None),
                Some(v) => match parse_upstream(&v) {
                    Ok(up) => Some(Some(up)),
                    Err(m) => {
                        self.err(u.span(), format!("upstream: {m}"));
                        None
                    }
                },
                None => None,
            },
            None => {
                self.err(span.clone(), "route has no upstream; add upstream = \"http://host:port\" (an empty string answers 501)");
                None
            }
        };
        if let (Some(None), Some(sp)) = (&upstream, &upstream_span) {
            self.warn(
                sp.clone(),
                "upstream is empty: this route answers 501 Not Implemented",
            );
        }

        let auth_mode = match auth {
            None => Some(AuthMode::Required),
            Some(a) => match a.get_ref().as_str() {
                "required" => Some(AuthMode::Required),
                "optional" => Some(AuthMode::Optional),
                "none" => Some(AuthMode::None),
                other => {
                    self.err(
                        a.span(),
                        format!(
                            "auth = {other:?}: expected \"required\", \"optional\" or \"none\""
                        ),
                    );
                    None
                }
            },
        };

        let methods = match methods {
            None => Some(None),
            Some(list) => {
                let mut out: Vec<Method> = Vec::new();
                let mut mok = true;
                for (m, sp) in self.string_list(list.get_ref()) {
                    match parse_method(&m) {
                        Ok(method) => {
                            if !out.contains(&method) {
                                out.push(method);
                            }
                        }
                        Err(e) => {
                            self.err(sp, e);
                            mok = false;
                        }
                    }
                }
                if mok && out.is_empty() {
                    self.err(list.span(), "methods is empty: the route would refuse everything; remove the key to allow all methods");
                    mok = false;
                }
                mok.then_some(Some(out))
            }
        };

        let route_cors = match (cors, cors_origins) {
            (None, _) => None,
            (Some(base), None) => Some(base.clone()),
            (Some(base), Some(list)) => {
                let origins = self.origins(list.get_ref(), base.allow_credentials, "cors_origins");
                origins.map(|o| Cors {
                    allowed_origins: o,
                    ..base.clone()
                })
            }
        };

        let timeout = match timeout {
            None => Some(None),
            Some(t) => self
                .positive_duration(Some(t), Duration::ZERO, "timeout")
                .map(Some),
        };

        let http2 = http2.is_some_and(Spanned::into_inner);
        let ca_file = match ca_file {
            None => Some(None),
            Some(c) => {
                if let Some(Some(up)) = &upstream
                    && !up.https
                {
                    self.warn(c.span(), "ca_file only applies to https:// upstreams");
                }
                self.path(&c, "ca_file", true).map(Some)
            }
        };

        let inject = match inject {
            None => Some(Vec::new()),
            Some(table) => {
                let injections = self.injections(table.get_ref());
                if let (Some(AuthMode::None), Some(list)) = (auth_mode, &injections)
                    && !list.is_empty()
                {
                    self.warn(table.span(), "auth = \"none\" never verifies a token, so nothing is injected on this route (the headers are still stripped from clients)");
                }
                injections
            }
        };

        if let (Some((n, _)), Some((p, psp)), Some(Some(up)), Some(a)) =
            (&name, &prefix, &upstream, auth_mode)
        {
            self.auth_facts.push(AuthFact {
                name: n.clone(),
                prefix: p.clone(),
                prefix_span: psp.clone(),
                auth: a,
                server: (up.https, up.authority.as_str().to_ascii_lowercase()),
            });
        }
        let upgrades = match upgrades {
            None => Some(Vec::new()),
            Some(list) => self.upgrades(list.get_ref()),
        };

        // A route's own limits replace the defaults, as `cors_origins`
        // replaces `[cors]` (README "Rate limits").
        let limits = match limits {
            None => default_limits.map(<[Limit]>::to_vec),
            Some(list) => {
                let own = self.limits(list.get_ref());
                if let (Some(AuthMode::None), Some(own)) = (auth_mode, &own) {
                    for (l, raw) in own.iter().zip(list.get_ref()) {
                        if matches!(l.key, LimitKey::Claim(_)) {
                            self.warn(raw.span(), format!("limit {:?}: auth = \"none\" never verifies a token, so this claim-keyed limit keys every caller by client IP", l.name));
                        }
                    }
                }
                own
            }
        };

        ok &= name.is_some() && prefix.is_some() && upstream.is_some() && auth_mode.is_some();
        if !ok {
            return None;
        }
        Some(Route {
            name: name?.0,
            prefix: prefix?.0,
            upstream: upstream?,
            auth: auth_mode?,
            strip_prefix: strip_prefix.is_some_and(Spanned::into_inner),
            methods: methods?,
            cors: route_cors?,
            timeout: timeout?,
            http2,
            ca_file: ca_file?,
            inject: inject?,
            upgrades: upgrades?,
            limits: limits?,
        })
    }

    /// `[rate_limit]`; absent: no Redis and no default limits.
    fn rate_limit(&mut self, raw: Option<RawRateLimit>) -> Option<RateLimit> {
        let RawRateLimit {
            redis_url,
            on_redis_error,
            timeout,
            limits,
        } = raw.unwrap_or(RawRateLimit {
            redis_url: None,
            on_redis_error: None,
            timeout: None,
            limits: None,
        });
        let redis_url = match redis_url {
            None => Some(None),
            Some(u) => match self.expand(&u) {
                Some(v) if v.trim().is_empty() => Some(None),
                Some(v) => match check_redis_url(&v) {
                    Ok(()) => Some(Some(RedisUrl(v))),
                    Err(m) => {
                        self.err(u.span(), format!("redis_url: {m}"));
                        None
                    }
                },
                None => None,
            },
        };
        let on_redis_error = match on_redis_error {
            None => Some(OnRedisError::Local),
            Some(w) => {
                match w.get_ref().as_str() {
                    "local" => Some(OnRedisError::Local),
                    "allow" => Some(OnRedisError::Allow),
                    "deny" => Some(OnRedisError::Deny),
                    other => {
                        self.err(
                        w.span(),
                        format!("on_redis_error = {other:?}: expected \"local\", \"allow\" or \"deny\""),
                    );
                        None
                    }
                }
            }
        };
        let timeout = self.positive_duration(timeout, Duration::from_millis(100), "timeout");
        let limits = match limits {
            None => Some(Vec::new()),
            Some(list) => self.limits(list.get_ref()),
        };
        Some(RateLimit {
            redis_url: redis_url?,
            on_redis_error: on_redis_error?,
            timeout: timeout?,
            limits: limits?,
        })
    }

    /// A `limits` list (defaults or a route's): every entry checked, names
    /// unique in the list, and equal rate, burst and key wherever a name is
    /// used again (the bucket is (name, key value), so one name is one
    /// budget).
    fn limits(&mut self, list: &[Spanned<RawLimit>]) -> Option<Vec<Limit>> {
        let mut out = Vec::with_capacity(list.len());
        let mut ok = true;
        let mut here: HashSet<String> = HashSet::new();
        for raw in list {
            let span = raw.span();
            let Some(limit) = self.limit(raw) else {
                ok = false;
                continue;
            };
            if !here.insert(limit.name.clone()) {
                self.err(
                    span,
                    format!("limit name {:?} is used twice in one list; every limit of a route needs its own name", limit.name),
                );
                ok = false;
                continue;
            }
            match self.limit_names.get(&limit.name) {
                Some((first, at))
                    if first.rate != limit.rate
                        || first.burst != limit.burst
                        || first.key != limit.key =>
                {
                    let (line, col) = self.sink.position(at.start);
                    let msg = format!(
                        "limit {:?} is defined at {line}:{col} with key = {:?}, rate = {:?}, burst = {}; limits sharing a name share one budget, so key, rate and burst must be equal (or give this one its own name)",
                        limit.name,
                        first.key.to_string(),
                        first.rate.to_string(),
                        first.burst
                    );
                    self.err(span, msg);
                    ok = false;
                    continue;
                }
                Some(_) => {}
                None => {
                    self.limit_names
                        .insert(limit.name.clone(), (limit.clone(), span));
                }
            }
            out.push(limit);
        }
        ok.then_some(out)
    }

    fn limit(&mut self, raw: &Spanned<RawLimit>) -> Option<Limit> {
        let span = raw.span();
        let RawLimit {
            name,
            key,
            rate,
            burst,
        } = raw.get_ref();
        let name = match name {
            None => {
                self.err(
                    span.clone(),
                    "limit has no name; add name = \"...\" (limits with one name share a budget)",
                );
                None
            }
            Some(n) => match self.expand(n) {
                Some(v) if v.trim().is_empty() => {
                    self.err(n.span(), "limit name is empty");
                    None
                }
                Some(v) if v.contains(['{', '}']) || v.chars().any(char::is_control) => {
                    self.err(
                        n.span(),
                        format!("limit name {v:?}: braces and control characters are not allowed"),
                    );
                    None
                }
                v => v,
            },
        };
        let key = match key {
            None => {
                self.err(span.clone(), "limit has no key; add key = \"ip\", \"route\" or \"claim:app_metadata.company_id\"");
                None
            }
            Some(k) => match self.expand(k) {
                Some(v) => match parse_limit_key(&v) {
                    Ok(key) => Some(key),
                    Err(m) => {
                        self.err(k.span(), m);
                        None
                    }
                },
                None => None,
            },
        };
        let rate = match rate {
            None => {
                self.err(
                    span.clone(),
                    "limit has no rate; add rate = \"100/s\" (or \"/m\", \"/h\")",
                );
                None
            }
            Some(r) => match self.expand(r) {
                Some(v) => match parse_rate(&v) {
                    Ok(rate) => Some(rate),
                    Err(m) => {
                        self.err(r.span(), m);
                        None
                    }
                },
                None => None,
            },
        };
        let burst = match (burst, rate) {
            (None, Some(r)) => Some(r.count),
            (None, None) => None,
            (Some(b), _) => match u32::try_from(*b.get_ref()) {
                Ok(v) if v >= 1 => Some(v),
                _ => {
                    self.err(
                        b.span(),
                        "burst must be a whole number of at least 1 (the requests that may pass at once from idle), e.g. burst = 100",
                    );
                    None
                }
            },
        };
        Some(Limit {
            name: name?,
            key: key?,
            rate: rate?,
            burst: burst?,
        })
    }

    /// Warns, at the child's prefix, when a route with weaker auth is the
    /// parent prefix of a stronger one on the same upstream server. The
    /// router matches the path as sent, the upstream as it parses it; where
    /// the two differ (`/x/..\ingest` to a WHATWG URL parser, `/x/..;/ingest`
    /// to Tomcat: refused by `routing::path_problem`, but parsers disagree
    /// in more ways) a request the weaker route let through reaches the
    /// stronger route's handler. Names the nearest such parent.
    fn weaker_parent_warnings(&mut self) {
        let strength = |a: AuthMode| match a {
            AuthMode::None => 0,
            AuthMode::Optional => 1,
            AuthMode::Required => 2,
        };
        let mut found = Vec::new();
        for child in &self.auth_facts {
            let parent = self
                .auth_facts
                .iter()
                .filter(|p| {
                    p.prefix != child.prefix
                        && p.server == child.server
                        && strength(p.auth) < strength(child.auth)
                        && segment_prefix(&child.prefix, &p.prefix)
                })
                .max_by_key(|p| p.prefix.len());
            if let Some(p) = parent {
                found.push((
                    child.prefix_span.clone(),
                    format!(
                        "route {:?} (auth = \"{}\") is under route {:?} ({}, auth = \"{}\") on the same upstream: a path the router gives to {:?} but the upstream reads as {}/... would skip {:?}'s auth; give {:?} auth = \"{}\" too, or give {:?} its own upstream",
                        child.name,
                        child.auth.as_str(),
                        p.name,
                        p.prefix,
                        p.auth.as_str(),
                        p.name,
                        child.prefix,
                        child.name,
                        p.name,
                        child.auth.as_str(),
                        child.name,
                    ),
                ));
            }
        }
        for (span, msg) in found {
            self.warn(span, msg);
        }
    }

    /// A route's `upgrades`: protocol tokens (RFC 9110 §7.8: `name` or
    /// `name/version`), lower-cased; `h2c` is refused (RFC 9113 §3.1
    /// deprecates it, and a tunnel carries requests the gateway never
    /// sees); `websocket` is always allowed, so listing it changes nothing.
    fn upgrades(&mut self, list: &[Spanned<String>]) -> Option<Vec<String>> {
        let mut ok = true;
        let mut out: Vec<String> = Vec::new();
        for (token, span) in self.string_list(list) {
            match parse_upgrade(&token) {
                Ok(lower) => {
                    if !out.contains(&lower) {
                        out.push(lower);
                    }
                }
                Err(m) => {
                    self.err(span, format!("upgrades: {m}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn injections(
        &mut self,
        table: &std::collections::BTreeMap<Spanned<String>, Spanned<RawInject>>,
    ) -> Option<Vec<Injection>> {
        let mut ok = true;
        let mut out: Vec<Injection> = Vec::new();
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (key, value) in entries {
            let header = match HeaderName::from_bytes(key.get_ref().as_bytes()) {
                Ok(h) if RESERVED_HEADERS.contains(&h.as_str()) => {
                    self.err(key.span(), format!("header {:?} cannot be injected: the gateway manages it (hop-by-hop, framing, or identity of the request)", key.get_ref()));
                    None
                }
                Ok(h) => {
                    if out.iter().any(|i| i.header == h) {
                        self.err(
                            key.span(),
                            format!(
                                "header {:?} is injected twice (header names are case-insensitive)",
                                key.get_ref()
                            ),
                        );
                        None
                    } else {
                        Some(h)
                    }
                }
                Err(_) => {
                    self.err(
                        key.span(),
                        format!("{:?} is not a valid header name", key.get_ref()),
                    );
                    None
                }
            };
            let (claim, required) = match value.get_ref() {
                RawInject::Claim(c) => (c.as_str(), false),
                RawInject::Full { claim, required } => (claim.as_str(), required.unwrap_or(false)),
            };
            let claim = match parse_claim_path(claim) {
                Ok(c) => Some(c),
                Err(m) => {
                    self.err(value.span(), m);
                    None
                }
            };
            match (header, claim) {
                (Some(header), Some(claim)) => out.push(Injection {
                    header,
                    claim,
                    required,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }
}

fn ephemeral_secret() -> Secret {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    Secret::new(format!("{a}{b}").into_bytes())
}
