//! The issuer's public keys (RFC 7517 JWK Set), e.g. Supabase's
//! `/auth/v1/.well-known/jwks.json`.
//!
//! - Fetched when the store is created; not ready until one fetch succeeded.
//! - Refreshed in the background after `Cache-Control: max-age` (default
//!   10 min, clamped to 30 s..24 h); a failed fetch keeps the last good keys
//!   and is retried with backoff: 1 s doubling to 60 s once keys are held,
//!   but only to 5 s before the first success, so that readiness follows an
//!   issuer that was down at start-up within seconds.
//! - Re-fetched when a token needs a key we do not hold (it names an unknown
//!   `kid`, or has no `kid` and no key of its algorithm is loaded, e.g.
//!   none yet), at most once every 5 s whatever the number of such tokens;
//!   when the limit defers a re-fetch, the background task does it as soon
//!   as the 5 s are up, so a rotated key is accepted within 5 s of its first
//!   use. Tokens that need a key while a fetch is in flight share that
//!   fetch: none waits longer than the fetch timeout (5 s), however many
//!   arrive together.
//! - Each key's own `kty`/`crv`/`alg` pins the algorithms it verifies;
//!   `oct` (shared-secret) keys and `use: "enc"` keys are ignored.
//! - The background task holds a `Weak`, so it ends when the last `Arc` to
//!   the store is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;
use tokio::sync::Notify;

/// Why an [`Authenticator`](super::Authenticator) could not be built:
/// only its JWKS store can fail, so the error lives with the store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthBuildError {
    /// A JWKS store was needed outside a tokio runtime.
    #[error("the JWKS refresher needs a tokio runtime")]
    NoRuntime,
    /// The TLS client for JWKS fetches could not be built.
    #[error("cannot build the TLS client for JWKS fetches")]
    Tls(#[source] rustls::Error),
}

/// Minimum time between two fetches triggered by unknown `kid`s.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Whole-fetch timeout (connect, TLS, headers and body).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest retry backoff once keys are held (they keep serving meanwhile).
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest retry backoff before the first successful fetch: the gateway is
/// not ready and refuses asymmetric tokens until then.
const MAX_BACKOFF_NOT_READY: Duration = Duration::from_secs(5);
/// Refresh period when the response has no usable `Cache-Control`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
const MIN_MAX_AGE: Duration = Duration::from_secs(30);
const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);
/// A JWK Set larger than this is refused.
const MAX_BODY: usize = 1 << 20;

/// Why a JWKS fetch failed (logged with the URL; the last good keys stay).
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksError {
    /// Connection, TLS or HTTP failure.
    #[error("request failed: {0}")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// No answer within the fetch timeout.
    #[error("no answer within {}s", FETCH_TIMEOUT.as_secs())]
    Timeout,
    /// The issuer answered with a non-200 status.
    #[error("the server answered {0}")]
    Status(StatusCode),
    /// The body could not be read or was over 1 MiB.
    #[error("cannot read the body: {0}")]
    Body(String),
    /// The body is not a JSON JWK Set.
    #[error("the body is not a JWK Set: {0}")]
    NotJwks(String),
}

/// One usable public key.
#[derive(Clone)]
pub(crate) struct JwkKey {
    /// The key's `kid`, when it has one.
    pub(crate) kid: Option<String>,
    /// Algorithms this key may verify: its `alg` when set, else every
    /// algorithm its type allows (P-256 -> ES256, RSA -> RS*/PS*, ...).
    pub(crate) algorithms: Vec<Algorithm>,
    /// The key itself.
    pub(crate) key: DecodingKey,
}

impl JwkKey {
    /// True when this key may verify `alg`.
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}

/// The keys of one successful fetch.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    /// In the order the issuer lists them.
    pub(crate) keys: Vec<JwkKey>,
}

impl KeySet {
    /// The first key with this `kid`.
    pub(crate) fn find(&self, kid: &str) -> Option<&JwkKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
    /// Keys that may verify `alg`, for tokens without a `kid`.
    pub(crate) fn for_alg(&self, alg: Algorithm) -> impl Iterator<Item = &JwkKey> {
        self.keys.iter().filter(move |k| k.allows(alg))
    }
}

/// Bookkeeping of fetches.
struct FetchState {
    /// When the last fetch started (rate limit for unknown `kid`s).
    last_attempt: Option<Instant>,
    /// Failures in a row since the last success (backoff).
    failures: u32,
    /// Refresh period from the last successful response.
    max_age: Duration,
    /// The last failure, for `token inspect` and readiness reports.
    last_error: Option<String>,
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A cached, self-refreshing JWK Set. Share it in an `Arc`; reuse it across
/// config reloads while the URL is unchanged so keys and readiness survive.
pub struct JwksStore {
    /// Where the keys are fetched from.
    url: Uri,
    /// The current keys; swapped whole after each successful fetch, read
    /// without locking on the hot path.
    keys: ArcSwap<KeySet>,
    /// True once a fetch has succeeded.
    ready: AtomicBool,
    /// Fetch times, failures, max-age.
    state: Mutex<FetchState>,
    /// Serialises fetches: one at a time.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Fetches finished (succeeded or failed): a token that waited for
    /// `fetch_lock` sees from it that the fetch it waited for is done, and
    /// uses its result instead of fetching again.
    fetches_done: AtomicU64,
    /// Wakes the background task (unknown `kid` deferred, or store dropped).
    wake: Arc<Notify>,
    /// HTTPS client with webpki roots (plain http only reaches loopback; the
    /// config refuses other http URLs).
    client: HttpsClient,
}

impl std::fmt::Debug for JwksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksStore")
            .field("url", &self.url)
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Drop for JwksStore {
    fn drop(&mut self) {
        // Lets the background task notice the store is gone without waiting
        // out its sleep.
        self.wake.notify_one();
    }
}

impl JwksStore {
    /// Creates the store and spawns its background refresher, which fetches
    /// at once. Must be called within a tokio runtime.
    pub(crate) fn new(url: Uri) -> Result<Arc<Self>, AuthBuildError> {
        let handle =
            tokio::runtime::Handle::try_current().map_err(|_| AuthBuildError::NoRuntime)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(AuthBuildError::Tls)?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        let wake = Arc::new(Notify::new());
        let store = Arc::new(JwksStore {
            url,
            keys: ArcSwap::from_pointee(KeySet::default()),
            ready: AtomicBool::new(false),
            state: Mutex::new(FetchState {
                last_attempt: None,
                failures: 0,
                max_age: DEFAULT_MAX_AGE,
                last_error: None,
            }),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches_done: AtomicU64::new(0),
            wake: wake.clone(),
            client,
        });
        handle.spawn(refresher(Arc::downgrade(&store), wake));
        Ok(store)
    }

    /// The JWKS URL.
    pub(crate) fn url(&self) -> &Uri {
        &self.url
    }

    /// True once the keys have been fetched successfully at least once.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Number of usable keys held.
    #[cfg(test)]
    pub(crate) fn key_count(&self) -> usize {
        self.keys.load().keys.len()
    }

    /// The last fetch failure, when the last fetch failed.
    #[cfg(test)]
    pub(crate) fn last_error(&self) -> Option<String> {
        self.state().last_error.clone()
    }

    /// Waits until a fetch has succeeded, fetching now if none has; returns
    /// the failure when this fetch fails. For `token inspect`.
    pub(crate) async fn ensure_fetched(&self) -> Result<(), JwksError> {
        let _guard = self.fetch_lock.lock().await;
        if self.is_ready() {
            return Ok(());
        }
        self.fetch_locked().await.map(|_| ())
    }

    /// Fetches now, whatever the schedule and rate limit (tests, tools).
    #[cfg(test)]
    pub(crate) async fn refresh_now(&self) -> Result<usize, JwksError> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch_locked().await
    }

    /// The current keys.
    pub(crate) fn snapshot(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time left before an unknown-`kid` re-fetch is allowed.
    fn until_refetch_allowed(&self) -> Duration {
        match self.state().last_attempt {
            Some(t) => REFETCH_INTERVAL.saturating_sub(t.elapsed()),
            None => Duration::ZERO,
        }
    }

    /// Called when a token names a `kid` we do not hold: see
    /// [`Self::refresh_for_missing`]. Returns the key if it is there
    /// afterwards.
    pub(crate) async fn refresh_for_kid(&self, kid: &str) -> Option<JwkKey> {
        self.refresh_for_missing("names an unknown key id", |keys| keys.find(kid).is_some())
            .await
            .find(kid)
            .cloned()
    }

    /// Called when a token needs a key that `has` says the current keys
    /// lack (an unknown `kid`; no key of its algorithm, e.g. none loaded
    /// yet): re-fetches now if the last fetch is 5 s old, else asks the
    /// background task to fetch when the 5 s are up. A fetch already in
    /// flight is waited for (at most the fetch timeout) and its result used,
    /// never followed by another. Returns the keys held afterwards.
    pub(crate) async fn refresh_for_missing(
        &self,
        why: &'static str,
        has: impl Fn(&KeySet) -> bool,
    ) -> Arc<KeySet> {
        let seen = self.fetches_done.load(Ordering::Acquire);
        // A fetch holding the lock ends within FETCH_TIMEOUT; the margin
        // covers installing its keys.
        let Ok(_guard) = tokio::time::timeout(
            FETCH_TIMEOUT + Duration::from_millis(100),
            self.fetch_lock.lock(),
        )
        .await
        else {
            return self.snapshot();
        };
        let keys = self.snapshot();
        if has(&keys) || self.fetches_done.load(Ordering::Acquire) != seen {
            return keys;
        }
        if !self.until_refetch_allowed().is_zero() {
            self.wake.notify_one();
            return keys;
        }
        tracing::debug!(url = %self.url, why, "a token needs a key we do not hold; re-fetching the JWKS");
        let _ = self.fetch_locked().await;
        self.snapshot()
    }

    /// A scheduled refresh; returns how long to wait before the next one.
    async fn refresh_scheduled(&self) -> Duration {
        let _guard = self.fetch_lock.lock().await;
        let _ = self.fetch_locked().await;
        let st = self.state();
        if st.failures == 0 {
            st.max_age
        } else {
            retry_delay(st.failures, self.is_ready())
        }
    }

    /// Fetches once (the caller holds `fetch_lock`), installs the keys on
    /// success, logs and keeps the old keys on failure.
    async fn fetch_locked(&self) -> Result<usize, JwksError> {
        self.state().last_attempt = Some(Instant::now());
        let result = match tokio::time::timeout(FETCH_TIMEOUT, self.fetch()).await {
            Ok(r) => r,
            Err(_) => Err(JwksError::Timeout),
        };
        let outcome = match result {
            Ok((set, max_age)) => {
                let n = set.keys.len();
                if n == 0 {
                    tracing::warn!(url = %self.url, "the JWKS holds no usable signature key");
                } else {
                    tracing::debug!(url = %self.url, keys = n, max_age_s = max_age.as_secs(), "JWKS fetched");
                }
                self.keys.store(Arc::new(set));
                self.ready.store(true, Ordering::Release);
                let mut st = self.state();
                st.failures = 0;
                st.max_age = max_age;
                st.last_error = None;
                crate::metrics::jwks_fetched(Some(n));
                Ok(n)
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, ready = self.is_ready(), "JWKS fetch failed; keeping the last good keys");
                let mut st = self.state();
                st.failures = st.failures.saturating_add(1);
                st.last_error = Some(e.to_string());
                crate::metrics::jwks_fetched(None);
                Err(e)
            }
        };
        // After the keys are stored and before the caller releases the
        // lock: a token that waited for this fetch reads its keys next.
        self.fetches_done.fetch_add(1, Ordering::Release);
        outcome
    }

    async fn fetch(&self) -> Result<(KeySet, Duration), JwksError> {
        let req = Request::get(self.url.clone())
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("nyro-gw/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| JwksError::Body(e.to_string()))?;
        let resp = self.client.request(req).await.map_err(JwksError::Request)?;
        if resp.status() != StatusCode::OK {
            return Err(JwksError::Status(resp.status()));
        }
        let max_age = max_age(resp.headers());
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| JwksError::Body(e.to_string()))?
            .to_bytes();
        Ok((parse_jwks(&body)?, max_age))
    }
}

/// The background refresher: fetch, sleep until max-age (or a wake-up),
/// repeat; ends when the store is gone.
async fn refresher(store: Weak<JwksStore>, wake: Arc<Notify>) {
    let mut delay = Duration::ZERO;
    loop {
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = wake.notified() => {
                    let Some(s) = store.upgrade() else { return };
                    let wait = s.until_refetch_allowed();
                    drop(s);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let Some(s) = store.upgrade() else { return };
        delay = s.refresh_scheduled().await;
    }
}

/// The wait before retrying after `failures` (at least 1) failed fetches in
/// a row: 1 s doubling, capped at 60 s once keys are held, at 5 s before.
fn retry_delay(failures: u32, ready: bool) -> Duration {
    let cap = if ready {
        MAX_BACKOFF
    } else {
        MAX_BACKOFF_NOT_READY
    };
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(cap)
}

/// `Cache-Control: max-age` (or `no-cache`/`no-store` as 0), clamped to
/// 30 s..24 h; 10 min when absent.
fn max_age(headers: &http::HeaderMap) -> Duration {
    let mut found = None;
    for v in headers.get_all(header::CACHE_CONTROL) {
        let Ok(v) = v.to_str() else { continue };
        for d in v.split(',').map(str::trim) {
            let lower = d.to_ascii_lowercase();
            if let Some(n) = lower.strip_prefix("max-age=") {
                if let Ok(n) = n.trim_matches('"').parse::<u64>() {
                    found = Some(Duration::from_secs(n));
                }
            } else if lower == "no-cache" || lower == "no-store" {
                found = Some(Duration::ZERO);
            }
        }
    }
    found
        .unwrap_or(DEFAULT_MAX_AGE)
        .clamp(MIN_MAX_AGE, MAX_MAX_AGE)
}

/// Parses a JWK Set, keeping the keys we can use for signatures and
/// skipping (with a debug log) the rest.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<KeySet, JwksError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| JwksError::NotJwks(e.to_string()))?;
    let list = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwksError::NotJwks("no \"keys\" array".into()))?;
    let mut keys = Vec::new();
    for k in list {
        match jwk_key(k) {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(why) => {
                let kid = k.get("kid").and_then(Value::as_str).map(super::clean);
                tracing::debug!(kid, why, "JWKS key skipped");
            }
        }
    }
    Ok(KeySet { keys })
}

/// One JWK -> a key, `Ok(None)` for keys that are not for us (oct, enc).
fn jwk_key(k: &Value) -> Result<Option<JwkKey>, String> {
    let s = |name: &str| k.get(name).and_then(Value::as_str);
    if s("use") == Some("enc") {
        return Ok(None);
    }
    let need = |name: &str| s(name).ok_or_else(|| format!("missing {name}"));
    let err = |e: jsonwebtoken::errors::Error| e.to_string();
    let (family, mut algorithms, key) = match need("kty")? {
        "oct" => return Ok(None),
        "EC" => {
            let alg = match need("crv")? {
                "P-256" => Algorithm::ES256,
                "P-384" => Algorithm::ES384,
                other => return Err(format!("unsupported curve {other}")),
            };
            (
                AlgorithmFamily::Ec,
                vec![alg],
                DecodingKey::from_ec_components(need("x")?, need("y")?).map_err(err)?,
            )
        }
        "RSA" => {
            let key = DecodingKey::from_rsa_components(need("n")?, need("e")?).map_err(err)?;
            (
                AlgorithmFamily::Rsa,
                AlgorithmFamily::Rsa.algorithms().to_vec(),
                key,
            )
        }
        "OKP" => match need("crv")? {
            "Ed25519" => (
                AlgorithmFamily::Ed,
                vec![Algorithm::EdDSA],
                DecodingKey::from_ed_components(need("x")?).map_err(err)?,
            ),
            other => return Err(format!("unsupported curve {other}")),
        },
        other => return Err(format!("unsupported kty {other}")),
    };
    if let Some(alg) = k.get("alg") {
        let alg: Algorithm = alg
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| "alg is not a signature algorithm".to_owned())?;
        if alg.family() != family || !algorithms.contains(&alg) {
            return Err(format!("alg {alg:?} does not fit the key type"));
        }
        algorithms = vec![alg];
    }
    Ok(Some(JwkKey {
        kid: s("kid").map(str::to_owned),
        algorithms,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_and_clamped() {
        let h = |v: &str| {
            let mut m = http::HeaderMap::new();
            m.insert(header::CACHE_CONTROL, v.parse().unwrap());
            max_age(&m)
        };
        assert_eq!(max_age(&http::HeaderMap::new()), DEFAULT_MAX_AGE);
        assert_eq!(h("public, max-age=3600"), Duration::from_secs(3600));
        assert_eq!(h("max-age=1"), MIN_MAX_AGE);
        assert_eq!(h("max-age=99999999"), MAX_MAX_AGE);
        assert_eq!(h("no-store"), MIN_MAX_AGE);
        assert_eq!(h("max-age=junk"), DEFAULT_MAX_AGE);
    }

    #[test]
    fn retry_backoff_is_short_until_the_first_success() {
        let secs =
            |ready| -> Vec<u64> { (1..=8).map(|f| retry_delay(f, ready).as_secs()).collect() };
        assert_eq!(secs(false), [1, 2, 4, 5, 5, 5, 5, 5]);
        assert_eq!(secs(true), [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(u32::MAX, true), MAX_BACKOFF);
    }

    #[test]
    fn oct_enc_and_odd_keys_are_skipped() {
        let body = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac","alg":"HS256"},
            {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB","kid":"enc"},
            {"kty":"EC","crv":"P-521","x":"AA","y":"AA","kid":"p521"},
            {"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"bad-alg","alg":"RS256"},
            {"kty":"XYZ","kid":"weird"},
            {"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"ok"}
        ]}"#;
        let set = parse_jwks(body).unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["ok"]);
        assert_eq!(set.keys[0].algorithms, [Algorithm::ES256]);
        assert!(parse_jwks(b"[]").is_err());
        assert!(parse_jwks(b"not json").is_err());
    }
}
