//! The validated configuration: what `gateway.toml` means once every value
//! has been expanded, parsed and checked. Nothing here can be invalid; the
//! runtime (`crate::runtime`) is compiled from it without further checks.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, Method, Uri};

use super::values::redact_userinfo;

/// A whole, valid configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listener, timeouts and limits.
    pub(crate) server: Server,
    /// The optional admin listener (metrics, active config).
    pub(crate) admin: Option<Admin>,
    /// How tokens are verified.
    pub(crate) auth: Auth,
    /// The CORS policy every route uses unless it names its own origins.
    pub(crate) cors: Cors,
    /// Routes in file order; matching is by longest prefix, not by order.
    pub(crate) routes: Vec<Route>,
    /// Every header name any route injects, lower-case, deduplicated: these
    /// are stripped from every client request on every route.
    pub(crate) injected_headers: Vec<HeaderName>,
    /// `[rate_limit]`: where limits are kept and the defaults.
    pub(crate) rate_limit: RateLimit,

    /// `[telemetry]`: span export and sampling.
    pub(crate) telemetry: Telemetry,
}

/// `[telemetry]` (README "Tracing"). The endpoint is read at start (a
/// reload that changes it is reported as needing a restart); the ratio
/// applies to requests after a reload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Telemetry {
    /// OTLP/HTTP base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT` is read):
    /// spans are posted to `<base>/v1/traces`. `None` (the default, when
    /// neither the key nor the variable is set): no export.
    pub(crate) otlp_endpoint: Option<Uri>,
    /// Share of new traces sampled, 0.0 to 1.0; a trace continued from a
    /// client follows the client's sampled flag (parent-based). Default 1.0.
    pub(crate) sample_ratio: f64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            otlp_endpoint: None,
            sample_ratio: 1.0,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Server {
    /// Address the public listener binds (restart needed to change it).
    pub(crate) listen: SocketAddr,
    /// Upstream TCP + TLS connect timeout. Default 10 s.
    pub(crate) connect_timeout: Duration,
    /// Time allowed until the upstream's response headers. Default 60 s.
    pub(crate) request_timeout: Duration,
    /// Drain time after SIGTERM. Default 30 s.
    pub(crate) shutdown_grace: Duration,
    /// Cap on request bodies in bytes (413 past it); `None` means no cap.
    pub(crate) max_body: Option<u64>,
    /// TLS for the public listener, when set.
    pub(crate) tls: Option<TlsFiles>,
    /// Time from accept to a connection's first complete request head
    /// (TLS handshake and protocol detection included); later heads on an
    /// HTTP/1 connection get the same time each. Default 30 s.
    pub(crate) header_read_timeout: Duration,
    /// Cap on open client connections; at it the listener stops accepting
    /// until one closes. Default 10 000, lowered at start to what
    /// `RLIMIT_NOFILE` allows.
    pub(crate) max_connections: usize,
    /// Cap on connections to one upstream (scheme, host and port); a
    /// request finding it reached waits up to `connect_timeout`, then gets
    /// 503. Default 1024.
    pub(crate) max_upstream_connections: usize,
    /// Address ranges of the load balancers and proxies in front of the
    /// gateway, whose `X-Forwarded-For` entries are believed when deciding
    /// the client's address (`proxy::headers::client_ip`). Default empty:
    /// the peer is the client.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// An upgraded connection (WebSocket or another `upgrades` protocol)
    /// is closed after this long without a byte either way. Default 5 min.
    pub(crate) tunnel_idle_timeout: Duration,
    /// Serving threads, each with its own runtime, connections and
    /// upstream pools; `None`: one per CPU the process may use. Needs a
    /// restart to change.
    pub(crate) workers: Option<usize>,
    /// Bind each worker to its own CPU when the process may run on
    /// exactly as many CPUs as it has workers (README `[server]`). Default
    /// true; needs a restart to change.
    pub(crate) pin_workers: bool,
}

impl Server {
    /// How many serving workers `workers` asks for: the configured number,
    /// else one per CPU the process may use (cgroup quota included).
    pub(crate) fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

/// PEM files for the public listener's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// Certificate chain, PEM.
    pub(crate) cert: PathBuf,
    /// Private key, PEM.
    pub(crate) key: PathBuf,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Admin {
    /// Address of the admin listener; should be loopback or cluster-internal.
    pub(crate) listen: SocketAddr,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    /// Accepted audiences; a token must carry at least one. Default
    /// `["authenticated"]` (Supabase user tokens).
    pub(crate) audience: Vec<String>,
    /// Exact issuer a token must carry, when set.
    pub(crate) issuer: Option<String>,
    /// Allowed algorithms; never contains `none`. HS* need `hmac`,
    /// asymmetric ones need `jwks_url`.
    pub(crate) algorithms: Vec<jsonwebtoken::Algorithm>,
    /// The HMAC key and where it came from.
    pub(crate) hmac: Option<HmacKey>,
    /// JWKS endpoint for asymmetric keys.
    pub(crate) jwks_url: Option<Uri>,
    /// Clock skew allowed on `exp` and `nbf`. Default 0 s.
    pub(crate) leeway: Duration,
    /// Claims that must be present and non-empty. Default `sub`, `aud`, `exp`.
    pub(crate) required_claims: Vec<String>,
}

/// An HMAC secret and its origin.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HmacKey {
    /// The key bytes (the string's raw UTF-8 bytes).
    pub(crate) secret: Secret,
    /// Where it was read from.
    pub(crate) source: SecretSource,
    /// The other secrets listed after the first (`secret = [new, old]`, or
    /// more lines of `secret_file`), in order: positions 2, 3, … They
    /// verify tokens but never sign (README "Rotating the HMAC secret").
    pub(crate) older: Vec<Secret>,
}

impl HmacKey {
    /// Every secret, the signing one first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.secret).chain(&self.older)
    }
}

/// Where the HMAC secret came from; `File` is watched for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    /// `secret = "..."` in the file (usually via `${GATEWAY_JWT_SECRET}`).
    Inline,
    /// `secret_file = "..."`, read at load and reloaded on change.
    File(PathBuf),
    /// `serve --dev` with no secret set: random, for this process only.
    Ephemeral,
}

/// Secret bytes whose `Debug` never prints them.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    /// Wraps key bytes.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    /// The key bytes, for signing and verifying only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[cors]`, or a route's `cors_origins` merged over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cors {
    /// Allowed origins; empty means no cross-origin access.
    pub(crate) allowed_origins: Vec<OriginRule>,
    /// Send `Access-Control-Allow-Credentials: true`. Default true.
    pub(crate) allow_credentials: bool,
    /// Preflight cache time (`Access-Control-Max-Age`). Default 10 min.
    pub(crate) max_age: Duration,
    /// Headers a preflight may request; `None` echoes what was requested.
    pub(crate) allow_headers: Option<Vec<HeaderName>>,
    /// `Access-Control-Expose-Headers`. Default `X-Request-ID,
    /// X-Process-Time, RateLimit, RateLimit-Policy, Retry-After`.
    pub(crate) expose_headers: Vec<HeaderName>,
}

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginRule {
    /// Any origin (`"*"`); never combined with credentials.
    Any,
    /// An exact, ASCII-lower-cased origin such as `https://app.nyro.ai`
    /// (or the literal `null`, only when listed).
    Exact(String),
    /// `scheme://*.suffix[:port]`: any one-or-more labels before `suffix`.
    Wildcard {
        /// `http` or `https`.
        scheme: String,
        /// The part after `*.`, lower-cased, e.g. `vercel.app`.
        suffix: String,
        /// Explicit port, if the pattern had one.
        port: Option<u16>,
    },
}

/// `auth = "required" | "optional" | "none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// A valid token is needed (401 without one).
    Required,
    /// No token passes anonymously; an invalid token is still 401.
    Optional,
    /// The gateway does not look at tokens on this route.
    None,
}

impl AuthMode {
    /// Every mode, in the order the docs list them.
    pub(crate) const ALL: [AuthMode; 3] = [AuthMode::Required, AuthMode::Optional, AuthMode::None];
    /// The words `auth` takes: those of [`AuthMode::ALL`].
    pub(crate) const WORDS: [&'static str; 3] = [
        Self::ALL[0].as_str(),
        Self::ALL[1].as_str(),
        Self::ALL[2].as_str(),
    ];

    /// The word used in the config file.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            AuthMode::Required => "required",
            AuthMode::Optional => "optional",
            AuthMode::None => "none",
        }
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    /// Unique name, used in logs and metrics.
    pub(crate) name: String,
    /// Path prefix matched on whole segments; `/` matches everything.
    pub(crate) prefix: String,
    /// Where requests go; `None` (empty in the file) answers 501.
    pub(crate) upstream: Option<Upstream>,
    /// Token policy.
    pub(crate) auth: AuthMode,
    /// Remove `prefix` from the path sent upstream. Default false.
    pub(crate) strip_prefix: bool,
    /// Allowed methods; `None` means all.
    pub(crate) methods: Option<Vec<Method>>,
    /// The CORS policy for this route (`[cors]` with `cors_origins` applied).
    pub(crate) cors: Cors,
    /// Time to response headers; replaces `server.request_timeout`.
    pub(crate) timeout: Option<Duration>,
    /// Speak HTTP/2 with prior knowledge to an `http://` upstream.
    pub(crate) http2: bool,
    /// Extra trusted roots for an `https://` upstream.
    pub(crate) ca_file: Option<PathBuf>,
    /// Headers to inject from verified claims.
    pub(crate) inject: Vec<Injection>,
    /// `Upgrade` protocols tunnelled besides `websocket` (always allowed):
    /// ASCII-lower-cased, deduplicated, never `h2c`.
    pub(crate) upgrades: Vec<String>,
    /// The route's rate limits: its own `[[routes.limits]]`, else the
    /// `[[rate_limit.limits]]` defaults. Empty: not limited.
    pub(crate) limits: Vec<Limit>,
}

/// A parsed upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upstream {
    /// The URL as written (after `${}` expansion).
    pub(crate) url: String,
    /// `http` or `https`.
    pub(crate) https: bool,
    /// `host[:port]` as written; used as `Host` upstream.
    pub(crate) authority: http::uri::Authority,
    /// Path prepended to every forwarded path, without trailing `/`
    /// (empty for `http://host`).
    pub(crate) base_path: String,
}

/// One `[routes.inject]` entry: header = claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// The header sent upstream.
    pub header: HeaderName,
    /// Where the value lives in the claims.
    pub claim: ClaimPath,
    /// 403 when the claim is absent or empty.
    pub required: bool,
}

/// A claim path: `app_metadata.company_id` or a JSON Pointer `/a~1b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimPath {
    /// Dot-separated object keys.
    Dotted(Vec<String>),
    /// RFC 6901 JSON Pointer, kept as written (starts with `/`).
    Pointer(String),
}

impl ClaimPath {
    /// Looks the claim up in a decoded claims object.
    pub fn lookup<'a>(&self, claims: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        match self {
            ClaimPath::Dotted(keys) => keys.iter().try_fold(claims, |v, k| v.get(k.as_str())),
            ClaimPath::Pointer(p) => claims.pointer(p),
        }
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimPath::Dotted(keys) => f.write_str(&keys.join(".")),
            ClaimPath::Pointer(p) => f.write_str(p),
        }
    }
}

/// True for HS256/384/512: verified with the shared secret only.
pub(crate) fn is_hmac(alg: jsonwebtoken::Algorithm) -> bool {
    alg.family() == jsonwebtoken::AlgorithmFamily::Hmac
}

/// `[rate_limit]` (README "Rate limits").
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RateLimit {
    /// Where shared limits are kept (`redis://` or `rediss://`); `None`
    /// (absent or empty): every replica limits on its own.
    pub(crate) redis_url: Option<RedisUrl>,
    /// What a decision does when Redis fails or is slower than `timeout`.
    /// Default `Local`.
    pub(crate) on_redis_error: OnRedisError,
    /// Time allowed for one Redis decision. Default 100 ms.
    pub(crate) timeout: Duration,
    /// The limits of routes without their own `limits`. Default none.
    pub(crate) limits: Vec<Limit>,
}

/// A Redis URL, which may carry a password: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RedisUrl(pub String);

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted())
    }
}

impl RedisUrl {
    /// The URL with any `user:password@` replaced by `***@`, for logs.
    pub(crate) fn redacted(&self) -> String {
        redact_userinfo(&self.0)
    }
}

/// `on_redis_error = "local" | "allow" | "deny"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRedisError {
    /// Decide on this replica's own buckets (each replica enforces the
    /// whole limit on its own until Redis answers again).
    Local,
    /// Let the request through.
    Allow,
    /// Refuse it: 503, blamed on the gateway.
    Deny,
}

impl OnRedisError {
    /// Every choice, in the order the docs list them.
    pub(crate) const ALL: [OnRedisError; 3] =
        [OnRedisError::Local, OnRedisError::Allow, OnRedisError::Deny];
    /// The words `on_redis_error` takes: those of [`OnRedisError::ALL`].
    pub(crate) const WORDS: [&'static str; 3] = [
        Self::ALL[0].as_str(),
        Self::ALL[1].as_str(),
        Self::ALL[2].as_str(),
    ];

    /// The word used in the config file.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            OnRedisError::Local => "local",
            OnRedisError::Allow => "allow",
            OnRedisError::Deny => "deny",
        }
    }
}

/// One rate limit: a GCRA bucket per (name, key value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limit {
    /// The budget's name: routes using one name share its buckets.
    pub(crate) name: String,
    /// What the bucket is keyed by.
    pub(crate) key: LimitKey,
    /// The sustained rate.
    pub(crate) rate: Rate,
    /// The bucket's capacity: from idle, at most `burst` requests pass at
    /// once. Default: the rate's count.
    pub(crate) burst: u32,
}

/// `key = "ip" | "route" | "claim:<path>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LimitKey {
    /// The client's address (its /64 for IPv6).
    Ip,
    /// One bucket for the whole route (or every route sharing the name).
    Route,
    /// A verified claim; callers without it are keyed by IP.
    Claim(ClaimPath),
}

impl LimitKey {
    /// True when the key can be decided before the token is verified.
    pub(crate) fn before_auth(&self) -> bool {
        !matches!(self, LimitKey::Claim(_))
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitKey::Ip => f.write_str("ip"),
            LimitKey::Route => f.write_str("route"),
            LimitKey::Claim(p) => write!(f, "claim:{p}"),
        }
    }
}

/// `rate = "N/s" | "N/m" | "N/h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Rate {
    /// Requests per `per`.
    pub(crate) count: u32,
    /// The window: 1 s, 1 min or 1 h.
    pub(crate) per: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}
