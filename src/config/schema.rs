//! The key schema of `gateway.toml`, checked on the parsed document before
//! deserializing so that every unknown key is reported at once, with the
//! closest known key as a suggestion.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::Sink;
use super::model::{AuthMode, OnRedisError};

/// One key of `gateway.toml`: the single table the unknown-key check and
/// its suggestions read (and from which a JSON Schema, the
/// `gateway.toml(5)` page and type hints can be derived). README's
/// "Configuration" tables document the same keys at length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    /// Dotted path from the top of the file; `routes.x` is a key of each
    /// `[[routes]]` entry, `*` stands for any name (an injected header).
    pub(crate) path: &'static str,
    /// The value's type (its `Display`: the word a user reads).
    pub(crate) ty: Ty,
    /// The default when the key is absent ("required", "none", or a value).
    pub(crate) default: &'static str,
    /// What it is for, in one line.
    pub(crate) doc: &'static str,
    /// An example value, as TOML.
    pub(crate) example: &'static str,
}

/// The type of a key's value: the one list of value types, read by the
/// type-error check ([`check_types`]), the JSON Schema
/// (`json_schema::type_schema`), the `--allow-missing-env` placeholder
/// ([`placeholder`]) and, through `Display`, the man page and the schema's
/// descriptions. Each reads it with an exhaustive `match`, so a new type
/// cannot be left unmapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// A section (`[server]`) or an inline table (`tls = { ... }`).
    Table,
    /// `[[routes]]`: a list of tables.
    ArrayOfTables,
    /// `[routes.inject]`: header = claim path, or header = { claim, required }.
    InjectTable,
    /// Free text.
    String,
    /// One of these words.
    Word(&'static [&'static str]),
    /// `ip:port`.
    Address,
    /// An `http(s)://` URL.
    Url,
    /// A `redis://` or `rediss://` URL, or empty.
    RedisUrl,
    /// A file path, relative to the config's directory.
    Path,
    /// `"10s"`, `"250ms"`.
    Duration,
    /// `"10MiB"`.
    Size,
    /// `a.b.c` or a JSON Pointer.
    ClaimPath,
    /// `ip`, `route` or `claim:<path>`.
    LimitKey,
    /// `"100/s"`, `"/m"`, `"/h"`.
    Rate,
    /// A whole number, 0 or more.
    Integer,
    /// A whole number, 1 or more.
    PositiveInteger,
    /// An integer or a float.
    Number,
    /// `true` or `false`.
    Boolean,
    /// One string, or a list of them.
    StringOrStrings,
    /// A list of strings.
    Strings,
    /// A list of CIDRs or addresses.
    Cidrs,
    /// A list of CORS origins.
    Origins,
    /// A list of header names.
    HeaderNames,
    /// A list of HTTP methods.
    Methods,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            Ty::Table => "table",
            Ty::ArrayOfTables => "array of tables",
            Ty::InjectTable => "table of header = claim path or { claim, required }",
            Ty::String => "string",
            Ty::Word(words) => {
                let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                return f.write_str(&quoted.join(" | "));
            }
            Ty::Address => "address",
            Ty::Url => "URL",
            Ty::RedisUrl => "redis URL",
            Ty::Path => "path",
            Ty::Duration => "duration",
            Ty::Size => "size",
            Ty::ClaimPath => "claim path",
            Ty::LimitKey => "limit key",
            Ty::Rate => "rate",
            Ty::Integer => "integer",
            Ty::PositiveInteger => "integer >= 1",
            Ty::Number => "number",
            Ty::Boolean => "boolean",
            Ty::StringOrStrings => "string or list of strings",
            Ty::Strings => "list of strings",
            Ty::Cidrs => "list of CIDRs",
            Ty::Origins => "list of origins",
            Ty::HeaderNames => "list of header names",
            Ty::Methods => "list of methods",
        };
        f.write_str(word)
    }
}

/// Every key of `gateway.toml`, sections first, then in README order.
pub(crate) const KEYS: &[Key] = &[
    Key {
        path: "server",
        ty: Ty::Table,
        default: "",
        doc: "the public listener, timeouts and limits",
        example: "[server]",
    },
    Key {
        path: "admin",
        ty: Ty::Table,
        default: "none",
        doc: "the admin listener (metrics, active config); absent: none",
        example: "[admin]",
    },
    Key {
        path: "auth",
        ty: Ty::Table,
        default: "",
        doc: "how tokens are verified",
        example: "[auth]",
    },
    Key {
        path: "cors",
        ty: Ty::Table,
        default: "",
        doc: "the default CORS policy for every route",
        example: "[cors]",
    },
    Key {
        path: "routes",
        ty: Ty::ArrayOfTables,
        default: "[]",
        doc: "the routes, matched by longest prefix",
        example: "[[routes]]",
    },
    Key {
        path: "server.listen",
        ty: Ty::Address,
        default: "\"0.0.0.0:8080\"",
        doc: "the public listener's address (a change needs a restart)",
        example: "\"0.0.0.0:8080\"",
    },
    Key {
        path: "server.connect_timeout",
        ty: Ty::Duration,
        default: "\"10s\"",
        doc: "upstream TCP + TLS connect",
        example: "\"10s\"",
    },
    Key {
        path: "server.request_timeout",
        ty: Ty::Duration,
        default: "\"60s\"",
        doc: "until the upstream's response headers",
        example: "\"60s\"",
    },
    Key {
        path: "server.shutdown_grace",
        ty: Ty::Duration,
        default: "\"30s\"",
        doc: "after SIGTERM/SIGINT, time for requests in flight",
        example: "\"30s\"",
    },
    Key {
        path: "server.max_body",
        ty: Ty::Size,
        default: "none",
        doc: "request body cap, counted while streaming",
        example: "\"100MiB\"",
    },
    Key {
        path: "server.tls",
        ty: Ty::Table,
        default: "none",
        doc: "TLS for the public listener (h2 and http/1.1 by ALPN); the files are reloaded on change",
        example: "{ cert = \"tls.crt\", key = \"tls.key\" }",
    },
    Key {
        path: "server.tls.cert",
        ty: Ty::Path,
        default: "required",
        doc: "the certificate chain (PEM)",
        example: "\"tls.crt\"",
    },
    Key {
        path: "server.tls.key",
        ty: Ty::Path,
        default: "required",
        doc: "the private key (PEM)",
        example: "\"tls.key\"",
    },
    Key {
        path: "server.header_read_timeout",
        ty: Ty::Duration,
        default: "\"30s\"",
        doc: "from accept to a connection's first complete request head (also HTTP/1's keep-alive idle limit)",
        example: "\"30s\"",
    },
    Key {
        path: "server.max_connections",
        ty: Ty::Integer,
        default: "10000",
        doc: "open client connections",
        example: "10000",
    },
    Key {
        path: "server.max_upstream_connections",
        ty: Ty::Integer,
        default: "1024",
        doc: "connections to one upstream (scheme, host, port), idle pooled ones included",
        example: "1024",
    },
    Key {
        path: "server.trusted_proxies",
        ty: Ty::Cidrs,
        default: "[]",
        doc: "CIDRs (\"10.0.0.0/8\", \"fd00::/8\") or single addresses of the load balancers in front of the gateway",
        example: "[\"10.0.0.0/8\", \"fd00::/8\"]",
    },
    Key {
        path: "server.tunnel_idle_timeout",
        ty: Ty::Duration,
        default: "\"5m\"",
        doc: "an upgraded connection (WebSocket, a route's upgrades) is closed after this long without a byte either way",
        example: "\"5m\"",
    },
    Key {
        path: "server.workers",
        ty: Ty::Integer,
        default: "the number of CPUs",
        doc: "serving threads, each with its own connections and upstream pools; needs a restart to change",
        example: "2",
    },
    Key {
        path: "server.pin_workers",
        ty: Ty::Boolean,
        default: "true",
        doc: "bind each worker to its own CPU when the process may run on exactly as many CPUs as it has workers (a dedicated machine, a container with a cpuset); never under a CPU quota alone; needs a restart to change",
        example: "false",
    },
    Key {
        path: "admin.listen",
        ty: Ty::Address,
        default: "none",
        doc: "a second listener, never public: GET /metrics (Prometheus text), GET /config (active config with secrets redacted, generation, hash, last reload error), GET /health",
        example: "\"127.0.0.1:9901\"",
    },
    Key {
        path: "auth.audience",
        ty: Ty::StringOrStrings,
        default: "\"authenticated\"",
        doc: "audiences accepted: a token's aud must hold one of them",
        example: "[\"authenticated\"]",
    },
    Key {
        path: "auth.issuer",
        ty: Ty::String,
        default: "none",
        doc: "when set, a token's iss must be present and one string equal to it (a list is refused, even one holding it)",
        example: "\"https://example.supabase.co/auth/v1\"",
    },
    Key {
        path: "auth.algorithms",
        ty: Ty::Strings,
        default: "[\"HS256\"] with a secret, plus [\"ES256\", \"RS256\"] with jwks_url",
        doc: "the signature algorithms accepted (never \"none\")",
        example: "[\"HS256\"]",
    },
    Key {
        path: "auth.secret",
        ty: Ty::StringOrStrings,
        default: "none",
        doc: "HMAC key, the string's raw bytes, at least 32 bytes; a list during a rotation (every one verifies, the first signs, empty entries dropped)",
        example: "\"${GATEWAY_JWT_SECRET}\"",
    },
    Key {
        path: "auth.secret_file",
        ty: Ty::Path,
        default: "none",
        doc: "instead of secret: a file holding the key, or one key per line during a rotation (the first signs), reloaded on change",
        example: "\"/run/secrets/jwt\"",
    },
    Key {
        path: "auth.jwks_url",
        ty: Ty::Url,
        default: "none",
        doc: "public keys (https://<project>.supabase.co/auth/v1/.well-known/jwks.json)",
        example: "\"https://example.supabase.co/auth/v1/.well-known/jwks.json\"",
    },
    Key {
        path: "auth.leeway",
        ty: Ty::Duration,
        default: "\"0s\"",
        doc: "clock skew allowed on exp and nbf",
        example: "\"0s\"",
    },
    Key {
        path: "auth.required_claims",
        ty: Ty::Strings,
        default: "[\"sub\", \"aud\", \"exp\"]",
        doc: "must be present and non-empty (a whitespace-only string counts as empty)",
        example: "[\"sub\", \"aud\", \"exp\"]",
    },
    Key {
        path: "cors.allowed_origins",
        ty: Ty::Origins,
        default: "[]",
        doc: "exact origins (\"https://app.nyro.ai\"), wildcards on whole leftmost labels (\"https://*.vercel.app\"), \"*\" (only without credentials), \"null\" (only when listed)",
        example: "[\"https://*.vercel.app\"]",
    },
    Key {
        path: "cors.allow_credentials",
        ty: Ty::Boolean,
        default: "true",
        doc: "Access-Control-Allow-Credentials: true",
        example: "true",
    },
    Key {
        path: "cors.max_age",
        ty: Ty::Duration,
        default: "\"10m\"",
        doc: "Access-Control-Max-Age of preflights",
        example: "\"10m\"",
    },
    Key {
        path: "cors.allow_headers",
        ty: Ty::HeaderNames,
        default: "echo the request",
        doc: "headers a preflight may ask for",
        example: "[\"Content-Type\"]",
    },
    Key {
        path: "cors.expose_headers",
        ty: Ty::HeaderNames,
        default: "[\"X-Request-ID\", \"X-Process-Time\", \"RateLimit\", \"RateLimit-Policy\", \"Retry-After\"]",
        doc: "Access-Control-Expose-Headers",
        example: "[\"X-Request-ID\", \"X-Process-Time\"]",
    },
    Key {
        path: "routes.name",
        ty: Ty::String,
        default: "required",
        doc: "the route's unique name, in logs and metrics",
        example: "\"ingest\"",
    },
    Key {
        path: "routes.prefix",
        ty: Ty::String,
        default: "required",
        doc: "starts with /, no trailing / (\"/\" alone matches everything)",
        example: "\"/api/v1/ingest\"",
    },
    Key {
        path: "routes.upstream",
        ty: Ty::Url,
        default: "required",
        doc: "where requests go: http(s)://host[:port][/base]; empty answers 501",
        example: "\"http://127.0.0.1:9000\"",
    },
    Key {
        path: "routes.auth",
        ty: Ty::Word(&AuthMode::WORDS),
        default: "\"required\"",
        doc: "whether a token is needed: required, optional or none",
        example: "\"required\"",
    },
    Key {
        path: "routes.strip_prefix",
        ty: Ty::Boolean,
        default: "false",
        doc: "forward the path without the prefix",
        example: "false",
    },
    Key {
        path: "routes.methods",
        ty: Ty::Methods,
        default: "all",
        doc: "others get 405 with Allow",
        example: "[\"GET\", \"POST\"]",
    },
    Key {
        path: "routes.cors_origins",
        ty: Ty::Origins,
        default: "[cors].allowed_origins",
        doc: "replaces the default origins for this route",
        example: "[\"https://app.nyro.ai\"]",
    },
    Key {
        path: "routes.timeout",
        ty: Ty::Duration,
        default: "server.request_timeout",
        doc: "replaces server.request_timeout for this route",
        example: "\"120s\"",
    },
    Key {
        path: "routes.http2",
        ty: Ty::Boolean,
        default: "false",
        doc: "HTTP/2 with prior knowledge to an http:// upstream (https:// negotiates by ALPN)",
        example: "true",
    },
    Key {
        path: "routes.ca_file",
        ty: Ty::Path,
        default: "none",
        doc: "extra trusted roots (PEM) for an https:// upstream, beside the system's and webpki's",
        example: "\"ca.pem\"",
    },
    Key {
        path: "routes.inject",
        ty: Ty::InjectTable,
        default: "{}",
        doc: "headers set from the token's claims (existing ones are replaced)",
        example: "{ \"X-User-ID\" = \"sub\" }",
    },
    Key {
        path: "routes.upgrades",
        ty: Ty::Strings,
        default: "[] (websocket only)",
        doc: "Upgrade protocols tunnelled besides websocket, which is always allowed: tokens such as \"my-protocol\" or \"name/version\", case-insensitive",
        example: "[\"my-protocol\"]",
    },
    Key {
        path: "routes.inject.*.claim",
        ty: Ty::ClaimPath,
        default: "required",
        doc: "the claim (dots, or a JSON Pointer starting with /)",
        example: "\"app_metadata.company_id\"",
    },
    Key {
        path: "routes.inject.*.required",
        ty: Ty::Boolean,
        default: "false",
        doc: "true: a token without the claim gets 403",
        example: "true",
    },
    Key {
        path: "rate_limit",
        ty: Ty::Table,
        default: "none",
        doc: "rate limits: Redis for limits shared by every replica, and the default limits",
        example: "[rate_limit]",
    },
    Key {
        path: "rate_limit.redis_url",
        ty: Ty::RedisUrl,
        default: "\"\" (local limits only)",
        doc: "the Redis that holds shared buckets; a password goes in the URL, e.g. from ${GATEWAY_REDIS_URL}",
        example: "\"${GATEWAY_REDIS_URL:-}\"",
    },
    Key {
        path: "rate_limit.on_redis_error",
        ty: Ty::Word(&OnRedisError::WORDS),
        default: "\"local\"",
        doc: "when Redis fails or is slower than timeout: decide on this replica, let the request through, or answer 503",
        example: "\"local\"",
    },
    Key {
        path: "rate_limit.timeout",
        ty: Ty::Duration,
        default: "\"100ms\"",
        doc: "time allowed for one Redis decision",
        example: "\"100ms\"",
    },
    Key {
        path: "rate_limit.limits",
        ty: Ty::ArrayOfTables,
        default: "[]",
        doc: "the limits of every route without its own limits",
        example: "[[rate_limit.limits]]",
    },
    Key {
        path: "rate_limit.limits.name",
        ty: Ty::String,
        default: "required",
        doc: "the budget's name: limits with one name share buckets (their key, rate and burst must be equal)",
        example: "\"per-company\"",
    },
    Key {
        path: "rate_limit.limits.key",
        ty: Ty::LimitKey,
        default: "required",
        doc: "what a bucket is keyed by: client IP (IPv6 by /64), the route, or a verified claim (callers without it: by IP)",
        example: "\"claim:app_metadata.company_id\"",
    },
    Key {
        path: "rate_limit.limits.rate",
        ty: Ty::Rate,
        default: "required",
        doc: "the sustained rate",
        example: "\"100/s\"",
    },
    Key {
        path: "rate_limit.limits.burst",
        ty: Ty::PositiveInteger,
        default: "the rate's N",
        doc: "the bucket's capacity: from idle at most burst requests pass at once; over any time t at most burst + rate x t",
        example: "200",
    },
    Key {
        path: "routes.limits",
        ty: Ty::ArrayOfTables,
        default: "[[rate_limit.limits]]",
        doc: "replaces the default limits for this route ([] : none); all must allow a request",
        example: "[[routes.limits]]",
    },
    Key {
        path: "routes.limits.name",
        ty: Ty::String,
        default: "required",
        doc: "the budget's name: limits with one name share buckets (their key, rate and burst must be equal)",
        example: "\"per-company\"",
    },
    Key {
        path: "routes.limits.key",
        ty: Ty::LimitKey,
        default: "required",
        doc: "what a bucket is keyed by: client IP (IPv6 by /64), the route, or a verified claim (callers without it: by IP)",
        example: "\"claim:app_metadata.company_id\"",
    },
    Key {
        path: "routes.limits.rate",
        ty: Ty::Rate,
        default: "required",
        doc: "the sustained rate",
        example: "\"100/s\"",
    },
    Key {
        path: "routes.limits.burst",
        ty: Ty::PositiveInteger,
        default: "the rate's N",
        doc: "the bucket's capacity: from idle at most burst requests pass at once; over any time t at most burst + rate x t",
        example: "200",
    },
    Key {
        path: "telemetry",
        ty: Ty::Table,
        default: "",
        doc: "trace sampling and span export (OTLP/HTTP)",
        example: "[telemetry]",
    },
    Key {
        path: "telemetry.otlp_endpoint",
        ty: Ty::Url,
        default: "$OTEL_EXPORTER_OTLP_ENDPOINT, else none (no export)",
        doc: "OTLP/HTTP base URL: spans are posted as protobuf to <base>/v1/traces; absent and the variable unset: no export (traceparent is still propagated); a change needs a restart",
        example: "\"http://otel-collector:4318\"",
    },
    Key {
        path: "telemetry.sample_ratio",
        ty: Ty::Number,
        default: "1.0",
        doc: "share of new traces sampled (0.0 to 1.0); a trace continued from a client follows its sampled flag",
        example: "0.1",
    },
];

/// The key (a [`KEYS`] path) of every string value in the document, by
/// the byte offset where the value starts; a list's strings map to the
/// list's key, an inject entry's claim to `routes.inject.*.claim`.
pub(crate) fn value_keys(doc: &DeTable<'_>) -> HashMap<usize, &'static str> {
    let mut out = HashMap::new();
    walk(doc, "", &mut out);
    out
}

fn walk(t: &DeTable<'_>, prefix: &str, out: &mut HashMap<usize, &'static str>) {
    for (k, v) in t {
        let name = k.get_ref().as_ref();
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        if path == "routes.inject" {
            if let DeValue::Table(inject) = v.get_ref() {
                for (_, entry) in inject {
                    match entry.get_ref() {
                        DeValue::Table(e) => walk(e, "routes.inject.*", out),
                        _ => note(entry, "routes.inject.*.claim", out),
                    }
                }
            }
            continue;
        }
        match v.get_ref() {
            DeValue::Table(inner) => walk(inner, &path, out),
            DeValue::Array(items) => {
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::Table(inner) => walk(inner, &path, out),
                        _ => note(item, &path, out),
                    }
                }
            }
            _ => note(v, &path, out),
        }
    }
}

fn note(v: &Spanned<DeValue<'_>>, path: &str, out: &mut HashMap<usize, &'static str>) {
    if let Some(k) = KEYS.iter().find(|k| k.path == path) {
        out.insert(v.span().start, k.path);
    }
}

/// A value of the type key `path` expects, standing in for an unset
/// `${VAR}` under `check-config --allow-missing-env`: one that passes the
/// key's own checks (a secret long enough, a loopback URL, a duration, an
/// address), so that only the rest of the config is judged.
pub(crate) fn placeholder(path: &str) -> &'static str {
    match path {
        "auth.secret" => "placeholder-secret-for-check-config-0123456789",
        "auth.audience" => "authenticated",
        "auth.algorithms" => "HS256",
        "auth.required_claims" | "routes.inject.*.claim" => "sub",
        "auth.jwks_url" => "http://127.0.0.1/.well-known/jwks.json",
        "auth.issuer" => "https://placeholder.invalid/auth/v1",
        "routes.prefix" => "/placeholder",
        "routes.auth" => AuthMode::Required.as_str(),
        "routes.upstream" => "http://127.0.0.1:9",
        _ => match KEYS.iter().find(|k| k.path == path).map(|k| k.ty) {
            Some(Ty::Address) => "127.0.0.1:0",
            Some(Ty::Duration) => "1s",
            Some(Ty::Size) => "1MiB",
            Some(Ty::Integer) => "1",
            Some(Ty::Cidrs) => "127.0.0.1/32",
            Some(Ty::Origins) => "https://placeholder.invalid",
            Some(Ty::HeaderNames) => "x-placeholder",
            Some(Ty::Methods) => "GET",
            Some(Ty::Path) => "nyro-gw-check-config-placeholder",
            _ => "placeholder",
        },
    }
}

/// Checks every known key's value against the type [`KEYS`] gives it,
/// reporting each mismatch at its value with the expected shape and an
/// example (`timeout = 30` -> a duration string such as "120s"). Returns
/// true when any was found: the document is then not deserialized, whose
/// errors would stop at the first one and name serde's types.
pub(crate) fn check_types(doc: &DeTable<'_>, sink: &mut Sink<'_>) -> bool {
    let before = sink.items.len();
    types_in(doc, "", sink);
    sink.items.len() > before
}

fn types_in(t: &DeTable<'_>, prefix: &str, sink: &mut Sink<'_>) {
    for (k, v) in t {
        let name = k.get_ref().as_ref();
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        let Some(key) = KEYS.iter().find(|k| k.path == path) else {
            continue; // unknown keys are reported by `check`
        };
        if !type_fits(key.ty, v, sink, key) {
            continue;
        }
        match v.get_ref() {
            DeValue::Table(inner) if path == "routes.inject" => {
                for (_, entry) in inner {
                    match entry.get_ref() {
                        DeValue::Table(e) => types_in(e, "routes.inject.*", sink),
                        DeValue::String(_) => {}
                        other => sink.error(
                            entry.span(),
                            format!(
                                "an inject entry must be a claim path or a table, e.g. \"X-User-ID\" = \"sub\" or {{ claim = \"app_metadata.company_id\", required = true }} (found {})",
                                kind(other)
                            ),
                        ),
                    }
                }
            }
            DeValue::Table(inner) => types_in(inner, &path, sink),
            DeValue::Array(items) if key.ty == Ty::ArrayOfTables => {
                for item in items.iter() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        types_in(inner, &path, sink);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether `v` has the shape `ty` names; reports each mismatch (the value,
/// or each wrong item of a list).
fn type_fits(ty: Ty, v: &Spanned<DeValue<'_>>, sink: &mut Sink<'_>, key: &Key) -> bool {
    let name = key.path.rsplit('.').next().unwrap_or(key.path);
    let found = kind(v.get_ref());
    let shape = match ty {
        Ty::Table | Ty::InjectTable => matches!(v.get_ref(), DeValue::Table(_))
            .then_some(())
            .ok_or("a table"),
        Ty::ArrayOfTables => match v.get_ref() {
            DeValue::Array(items) => {
                let mut ok = true;
                for item in items.iter() {
                    if !matches!(item.get_ref(), DeValue::Table(_)) {
                        sink.error(
                            item.span(),
                            format!(
                                "{name}: each entry must be a [[{name}]] table (found {})",
                                kind(item.get_ref())
                            ),
                        );
                        ok = false;
                    }
                }
                return ok;
            }
            _ => Err("an array of tables ([[routes]])"),
        },
        Ty::Integer | Ty::PositiveInteger => matches!(v.get_ref(), DeValue::Integer(_))
            .then_some(())
            .ok_or("a whole number"),
        Ty::Number => matches!(v.get_ref(), DeValue::Integer(_) | DeValue::Float(_))
            .then_some(())
            .ok_or("a number"),
        Ty::Boolean => matches!(v.get_ref(), DeValue::Boolean(_))
            .then_some(())
            .ok_or("true or false"),
        Ty::StringOrStrings => match v.get_ref() {
            DeValue::String(_) => Ok(()),
            DeValue::Array(items) => return strings(items, name, sink),
            _ => Err("a string or a list of strings"),
        },
        Ty::Strings | Ty::Cidrs | Ty::Origins | Ty::HeaderNames | Ty::Methods => {
            match v.get_ref() {
                DeValue::Array(items) => return strings(items, name, sink),
                _ => Err("a list"),
            }
        }
        Ty::Duration => string(v).ok_or("a duration string"),
        Ty::Size => string(v).ok_or("a size string"),
        Ty::Address => string(v).ok_or("an address string"),
        Ty::Url => string(v).ok_or("a URL string"),
        Ty::Path => string(v).ok_or("a path string"),
        Ty::String | Ty::Word(_) | Ty::RedisUrl | Ty::ClaimPath | Ty::LimitKey | Ty::Rate => {
            string(v).ok_or("a string")
        }
    };
    match shape {
        Ok(()) => true,
        Err(expected) => {
            // A section's example is its header (`[auth]`), a value's an
            // assignment (`timeout = "120s"`).
            let example = if key.example.starts_with("[[") || ty == Ty::Table {
                key.example.to_owned()
            } else {
                format!("{name} = {}", key.example)
            };
            sink.error(
                v.span(),
                format!("{name}: expected {expected} such as {example} (found {found})"),
            );
            false
        }
    }
}

fn string(v: &Spanned<DeValue<'_>>) -> Option<()> {
    matches!(v.get_ref(), DeValue::String(_)).then_some(())
}

/// Every item of a list must be a string.
fn strings(items: &toml::de::DeArray<'_>, name: &str, sink: &mut Sink<'_>) -> bool {
    let mut ok = true;
    for item in items.iter() {
        if !matches!(item.get_ref(), DeValue::String(_)) {
            sink.error(
                item.span(),
                format!(
                    "{name}: each entry must be a string (found {})",
                    kind(item.get_ref())
                ),
            );
            ok = false;
        }
    }
    ok
}

/// A value's TOML type, as a user would name it.
fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a number",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// The keys directly under `section` (`""`: the top level), by name.
pub(crate) fn keys_in(section: &str) -> Vec<&'static str> {
    KEYS.iter()
        .filter_map(|k| {
            let rest = if section.is_empty() {
                k.path
            } else {
                k.path.strip_prefix(section)?.strip_prefix('.')?
            };
            (!rest.contains('.')).then_some(rest)
        })
        .collect()
}

static ROOT: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in(""));
static SERVER: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("server"));
static TLS: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("server.tls"));
static ADMIN: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("admin"));
static AUTH: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("auth"));
static CORS: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("cors"));
static ROUTE: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("routes"));
static TELEMETRY: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("telemetry"));
static INJECT_TABLE: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("routes.inject.*"));
static RATE_LIMIT: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("rate_limit"));
static LIMIT: LazyLock<Vec<&str>> = LazyLock::new(|| keys_in("routes.limits"));

/// Reports every key the schema does not know.
pub(crate) fn check(doc: &DeTable<'_>, sink: &mut Sink<'_>) {
    check_table(doc, &ROOT, "", sink);
    for (key, value) in doc {
        let section: &[&str] = match key.get_ref().as_ref() {
            "server" => &SERVER,
            "admin" => &ADMIN,
            "auth" => &AUTH,
            "cors" => &CORS,
            "rate_limit" => {
                if let DeValue::Table(t) = value.get_ref() {
                    check_table(t, &RATE_LIMIT, "[rate_limit]", sink);
                    check_limits(t, "[[rate_limit.limits]]", sink);
                }
                continue;
            }

            "telemetry" => &TELEMETRY,
            "routes" => {
                if let DeValue::Array(routes) = value.get_ref() {
                    for route in routes.iter() {
                        if let DeValue::Table(t) = route.get_ref() {
                            check_route(t, sink);
                        }
                    }
                }
                continue;
            }
            _ => continue,
        };
        if let DeValue::Table(t) = value.get_ref() {
            let name = key.get_ref().as_ref();
            check_table(t, section, name, sink);
            if name == "server"
                && let Some(DeValue::Table(tls)) = get(t, "tls")
            {
                check_table(tls, &TLS, "server.tls", sink);
            }
        }
    }
}

/// The entries of a `limits` array in `t`.
fn check_limits(t: &DeTable<'_>, section: &str, sink: &mut Sink<'_>) {
    if let Some(DeValue::Array(limits)) = get(t, "limits") {
        for limit in limits.iter() {
            if let DeValue::Table(l) = limit.get_ref() {
                check_table(l, &LIMIT, section, sink);
            }
        }
    }
}

fn check_route(t: &DeTable<'_>, sink: &mut Sink<'_>) {
    check_table(t, &ROUTE, "[[routes]]", sink);
    check_limits(t, "[[routes.limits]]", sink);
    if let Some(DeValue::Table(inject)) = get(t, "inject") {
        for (_, v) in inject {
            if let DeValue::Table(entry) = v.get_ref() {
                check_table(entry, &INJECT_TABLE, "an inject entry", sink);
            }
        }
    }
}

fn get<'a, 'i>(t: &'a DeTable<'i>, key: &str) -> Option<&'a DeValue<'i>> {
    t.iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v.get_ref())
}

fn check_table(t: &DeTable<'_>, known: &[&str], section: &str, sink: &mut Sink<'_>) {
    for (key, _) in t {
        let k: &Spanned<_> = key;
        let name = k.get_ref().as_ref();
        if known.contains(&name) {
            continue;
        }
        let place = if section.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in {section}")
        };
        let hint = match closest(name, known) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; known keys: {}", known.join(", ")),
        };
        sink.error(k.span(), format!("unknown key `{name}` {place}{hint}"));
    }
}

/// The known key nearest to `name` by edit distance, if near enough.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("upstrem", &ROUTE), Some("upstream"));
        assert_eq!(closest("Strip-Prefix", &ROUTE), Some("strip_prefix"));
        assert_eq!(closest("zzzzzz", &ROUTE), None);
        assert_eq!(closest("secret_fle", &AUTH), Some("secret_file"));
    }

    /// Records the field names a serde-derived struct asks for, without
    /// deserializing anything: the raw structs' own list of keys.
    struct FieldNames(std::cell::RefCell<Vec<&'static str>>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> serde::Deserializer<'de> for &FieldNames {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.borrow_mut().extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    fn fields<T: for<'de> serde::Deserialize<'de>>() -> Vec<&'static str> {
        let probe = FieldNames(Default::default());
        let _ = T::deserialize(&probe);
        let mut v = probe.0.into_inner();
        v.sort_unstable();
        v
    }

    fn sorted(mut v: Vec<&'static str>) -> Vec<&'static str> {
        v.sort_unstable();
        v
    }

    #[test]
    fn the_key_table_and_the_raw_structs_name_the_same_keys() {
        use super::super::raw::*;
        assert_eq!(sorted(keys_in("")), fields::<RawFile>());
        assert_eq!(sorted(keys_in("server")), fields::<RawServer>());
        assert_eq!(sorted(keys_in("server.tls")), fields::<RawTls>());
        assert_eq!(sorted(keys_in("admin")), fields::<RawAdmin>());
        assert_eq!(sorted(keys_in("auth")), fields::<RawAuth>());
        assert_eq!(sorted(keys_in("cors")), fields::<RawCors>());
        assert_eq!(sorted(keys_in("routes")), fields::<RawRoute>());
        assert_eq!(sorted(keys_in("rate_limit")), fields::<RawRateLimit>());
        assert_eq!(sorted(keys_in("rate_limit.limits")), fields::<RawLimit>());
        assert_eq!(sorted(keys_in("routes.limits")), fields::<RawLimit>());

        assert_eq!(sorted(keys_in("telemetry")), fields::<RawTelemetry>());
        // `RawInject` is untagged: its table form's keys, by hand.
        assert_eq!(sorted(keys_in("routes.inject.*")), ["claim", "required"]);
        // Every key is reachable: its parent is a key too.
        for k in KEYS {
            if let Some((parent, _)) = k.path.rsplit_once('.') {
                let parent = parent.trim_end_matches(".*");
                assert!(KEYS.iter().any(|p| p.path == parent), "{}", k.path);
            }
            assert!(!k.doc.is_empty() && !k.example.is_empty());
        }
    }
}
