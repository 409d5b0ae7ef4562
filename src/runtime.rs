//! The immutable snapshot every request reads: routes compiled into a
//! matcher, CORS policies, upstream clients, the authenticator and TLS.
//! A reload compiles a new `Runtime` and swaps it in whole; a request keeps
//! the `Arc<Runtime>` it started with until it ends.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Method};

use crate::auth::{Authenticator, JwksStore};
use crate::config::{AuthMode, Config, Diagnostic, Injection, Places};
use crate::cors::Policy;
use crate::proxy::client::{ClientKey, Clients, Pools, ca_key};
use crate::routing::Router;
use crate::telemetry::{Metrics, RouteStats};

/// One compiled route.
pub(crate) struct CompiledRoute {
    /// Route name, shared with logs.
    pub(crate) name: Arc<str>,
    /// The prefix it matches.
    pub(crate) prefix: String,
    /// Token policy.
    pub(crate) auth: AuthMode,
    /// Remove the prefix from the forwarded path.
    pub(crate) strip_prefix: bool,
    /// Allowed methods (`None`: all).
    pub(crate) methods: Option<Vec<Method>>,
    /// The `Allow` header for a 405.
    pub(crate) allow: HeaderValue,
    /// CORS for this route.
    pub(crate) cors: Policy,
    /// Where requests go; `None` answers 501.
    pub(crate) upstream: Option<Target>,
    /// Time allowed to response headers.
    pub(crate) timeout: Duration,
    /// Headers injected from claims.
    pub(crate) inject: Vec<Injection>,
    /// `Upgrade` protocols tunnelled besides `websocket` (lower-case).
    pub(crate) upgrades: Vec<String>,
    /// Counters.
    pub(crate) stats: Arc<RouteStats>,
    /// Rate limits checked before and after auth (README "Rate limits").
    pub(crate) limits: crate::ratelimit::RouteLimits,
}

impl CompiledRoute {
    /// True when the route accepts `method`.
    pub(crate) fn allows(&self, method: &Method) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(method))
    }
}

/// A resolved upstream.
pub(crate) struct Target {
    /// `http` or `https`.
    pub(crate) scheme: Scheme,
    /// `host[:port]`.
    pub(crate) authority: Authority,
    /// Path prepended to forwarded paths (may be empty).
    pub(crate) base_path: String,
    /// The pooled clients, one per worker.
    pub(crate) clients: Clients,
    /// Its pool key.
    pub(crate) key: ClientKey,
}

/// The whole compiled config.
pub(crate) struct Runtime {
    /// 1 for the config loaded at start, +1 per applied reload.
    pub(crate) generation: u64,
    /// Hash of the config file's bytes.
    pub(crate) hash: u64,
    /// When this snapshot was compiled.
    pub(crate) loaded_at: SystemTime,
    /// The file it came from.
    pub(crate) source: String,
    /// The validated config (for `/config` and reload diffs).
    pub(crate) config: Arc<Config>,
    /// Routes in file order.
    pub(crate) routes: Vec<CompiledRoute>,
    /// Finds a route index for a path.
    pub(crate) router: Router,
    /// CORS for responses that matched no route (404s).
    pub(crate) default_cors: Policy,
    /// Every header name any route injects: stripped from every request
    /// (head and trailers; shared with each request body).
    pub(crate) strip_headers: Arc<[HeaderName]>,
    /// Token verification.
    pub(crate) auth: Arc<Authenticator>,
    /// TLS for the public listener.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Request body cap.
    pub(crate) max_body: Option<u64>,
    /// Counters for requests that matched no route.
    pub(crate) no_route: Arc<RouteStats>,
    /// Rate-limit buckets and the Redis connection, lent to the next
    /// compiled config so unchanged limits keep their state.
    pub(crate) limiter: Arc<crate::ratelimit::Limiter>,
}

/// Why a valid config could not be compiled (files that changed or broke
/// since validation, or keys jsonwebtoken refused).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompileError {
    /// An upstream client could not be built.
    #[error("route {route:?}: {source}")]
    Client {
        /// The route.
        route: String,
        /// Why.
        source: crate::proxy::client::ClientError,
    },
    /// The listener's certificate or key.
    #[error("server.tls: {0}")]
    Tls(TlsError),
    /// The authenticator.
    #[error("auth: {0}")]
    Auth(#[from] crate::auth::AuthBuildError),
}

/// Why the listener's TLS files could not be used, by the key to blame.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// `tls.cert`: unreadable, or no PEM certificate in it.
    #[error("{0}")]
    Cert(String),
    /// `tls.key`: unreadable, or no PEM private key in it.
    #[error("{0}")]
    Key(String),
    /// The key does not belong to the certificate, or rustls refused them.
    #[error("{0}")]
    Pair(String),
}

impl CompileError {
    /// This failure as a diagnostic at the key that caused it (`places`
    /// from the same [`crate::config::Loaded`] as the compiled config).
    pub(crate) fn diagnostic(&self, config: &Config, places: &Places) -> Diagnostic {
        let at = match self {
            CompileError::Client { route, .. } => config
                .routes
                .iter()
                .position(|r| &r.name == route)
                .and_then(|i| places.ca_file.get(i).copied().flatten()),
            CompileError::Tls(TlsError::Cert(_)) => places.tls_cert,
            CompileError::Tls(TlsError::Key(_) | TlsError::Pair(_)) => places.tls_key,
            CompileError::Auth(_) => places.jwks_url,
        };
        places.error(at, self.to_string())
    }
}

/// Compiles `config` the way `serve` would, without network access (no
/// JWKS fetch) and with throwaway clients, and returns every refusal as a
/// diagnostic at its key: `check-config` runs this, so whatever it passes,
/// `serve` starts.
pub(crate) fn check(config: &Config, places: &Places) -> Vec<Diagnostic> {
    let mut offline = config.clone();
    // The JWKS store fetches from the network (and needs a tokio runtime);
    // its URL was checked by validation.
    offline.auth.jwks_url = None;
    // Nor does it connect to Redis (its URL was checked by validation).
    offline.rate_limit.redis_url = None;
    let pools = Pools::default();
    let metrics = Metrics::default();
    match Runtime::compile(offline, None, &pools, &metrics, 0, 0, &places.file) {
        Ok(_) => Vec::new(),
        Err(e) => vec![e.diagnostic(config, places)],
    }
}

/// The claims a verified token is reduced to (`auth::Identity`): those the
/// routes inject and those rate limits are keyed by. The gateway's
/// authenticator and `token inspect`'s are both built with this list, so
/// they keep the same claims.
pub(crate) fn claim_paths(config: &Config) -> Vec<crate::config::ClaimPath> {
    let injected = config
        .routes
        .iter()
        .flat_map(|r| r.inject.iter().map(|i| i.claim.clone()));
    let limited = config.routes.iter().flat_map(|r| {
        r.limits.iter().filter_map(|l| match &l.key {
            crate::config::LimitKey::Claim(p) => Some(p.clone()),
            _ => None,
        })
    });
    injected.chain(limited).collect()
}

impl Runtime {
    /// Compiles `config`. `prev` lends its JWKS store (when the URL is the
    /// same) so keys survive a reload; `pools` lends upstream clients.
    pub(crate) fn compile(
        config: Config,
        prev: Option<&Runtime>,
        pools: &Pools,
        metrics: &Metrics,
        generation: u64,
        hash: u64,
        source: &str,
    ) -> Result<Runtime, CompileError> {
        let jwks: Option<Arc<JwksStore>> =
            match (prev.and_then(|p| p.auth.jwks()), &config.auth.jwks_url) {
                (Some(store), Some(url)) if store.url() == url => Some(store.clone()),
                _ => None,
            };
        let auth = Arc::new(
            Authenticator::new(&config.auth, jwks)?
                .for_workers(pools.workers())
                .injecting(claim_paths(&config))
                .counting(|position| metrics.token_verifications(position)),
        );
        let limiter = Arc::new(crate::ratelimit::Limiter::new(
            &config.rate_limit,
            config.routes.iter().flat_map(|r| r.limits.iter()),
            prev.map(|p| &*p.limiter),
            metrics,
        ));
        let mut routes = Vec::with_capacity(config.routes.len());
        for r in &config.routes {
            let upstream = match &r.upstream {
                None => None,
                Some(u) => {
                    let ca = match &r.ca_file {
                        Some(p) => Some(ca_key(p).map_err(|e| CompileError::Client {
                            route: r.name.clone(),
                            source: e,
                        })?),
                        None => None,
                    };
                    let key = ClientKey {
                        http2_prior_knowledge: r.http2 && !u.https,
                        ca_file: ca,
                        connect_timeout: config.server.connect_timeout,
                        max_upstream_connections: config.server.max_upstream_connections,
                    };
                    let clients = pools.get(&key).map_err(|e| CompileError::Client {
                        route: r.name.clone(),
                        source: e,
                    })?;
                    Some(Target {
                        scheme: if u.https { Scheme::HTTPS } else { Scheme::HTTP },
                        authority: u.authority.clone(),
                        base_path: u.base_path.clone(),
                        clients,
                        key,
                    })
                }
            };
            let allow = match &r.methods {
                Some(m) => HeaderValue::try_from(
                    m.iter().map(Method::as_str).collect::<Vec<_>>().join(", "),
                )
                .unwrap_or_else(|_| HeaderValue::from_static("GET")),
                None => HeaderValue::from_static(crate::cors::ALL_METHODS),
            };
            routes.push(CompiledRoute {
                name: Arc::from(r.name.as_str()),
                prefix: r.prefix.clone(),
                auth: r.auth,
                strip_prefix: r.strip_prefix,
                methods: r.methods.clone(),
                allow,
                cors: Policy::new(&r.cors, r.methods.as_deref()),
                upstream,
                timeout: r.timeout.unwrap_or(config.server.request_timeout),
                inject: r.inject.clone(),
                upgrades: r.upgrades.clone(),
                stats: metrics.route(&r.name),
                limits: crate::ratelimit::RouteLimits::compile(
                    &r.name, &r.limits, &limiter, &auth, metrics,
                ),
            });
        }
        let tls = match &config.server.tls {
            Some(files) => Some(Arc::new(
                load_server_tls(&files.cert, &files.key).map_err(CompileError::Tls)?,
            )),
            None => None,
        };
        Ok(Runtime {
            generation,
            hash,
            loaded_at: SystemTime::now(),
            source: source.to_owned(),
            router: Router::new(config.routes.iter().map(|r| r.prefix.as_str())),
            default_cors: Policy::new(&config.cors, None),
            strip_headers: Arc::from(config.injected_headers.as_slice()),
            max_body: config.server.max_body,
            config: Arc::new(config),
            routes,
            auth,
            tls,
            no_route: metrics.route(""),
            limiter,
        })
    }

    /// The pool keys of every upstream client this runtime uses (after a
    /// swap, `Pools::retain` drops the others).
    pub(crate) fn client_keys(&self) -> Vec<ClientKey> {
        self.routes
            .iter()
            .filter_map(|r| r.upstream.as_ref().map(|t| t.key.clone()))
            .collect()
    }

    /// Ready to serve: the authenticator has the keys it needs.
    pub(crate) fn is_ready(&self) -> bool {
        self.auth.is_ready()
    }
}

/// Loads the listener's certificate chain and key into a rustls config that
/// offers h2 and http/1.1 by ALPN.
pub(crate) fn load_server_tls(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Cert(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(TlsError::Cert(format!(
            "{}: no PEM certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key(format!("{}: {e}", key.display())))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Pair(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Pair(format!("certificate and key do not form a valid pair: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
