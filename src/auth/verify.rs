//! Token verification.
//!
//! The config's `algorithms` allowlist and the key's own type decide how a
//! token is verified, never the token header alone:
//! - `none` (any casing) is refused, and so is any algorithm not listed;
//! - HS* tokens are verified with the HMAC secret only, whatever their `kid`
//!   says (hosted Supabase HS256 tokens carry a `kid` absent from the JWKS);
//!   a token signed with a public key used as an HMAC secret fails there;
//! - asymmetric tokens are verified with a JWKS key only, and only when the
//!   key's `kty`/`crv`/`alg` allow the header's algorithm;
//! - `jku`, `x5u`, `x5c` and embedded `jwk` headers are never followed;
//!   a `crit` header is refused (we implement no extension);
//! - `exp` is always required, and the current time must be before it
//!   (plus the leeway; RFC 7519 §4.1.4); `nbf` is checked; `aud` is always required
//!   (a string or a list of strings, one of them a configured audience) and
//!   `iss`, when an issuer is configured, must be present and one string
//!   equal to it, whatever `required_claims` says (jsonwebtoken alone checks
//!   `aud` only when present and accepts a list `iss`); required claims that
//!   are empty or whitespace-only strings count as missing; so does such a
//!   `sub`, which is refused even when not required.
//!
//! Every `Validation` field of jsonwebtoken is set explicitly below: its
//! defaults are loose (60 s leeway, `nbf` unchecked).

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::cache::TokenCache;
use super::claims::{ClaimPaths, Identity};
use super::jwks::{AuthBuildError, JwkKey, JwksStore};
use super::{InjectError, blank, clean, now_unix};
pub(crate) use crate::config::is_hmac;
use crate::config::{Auth, ClaimPath, Injection};
pub(crate) use crate::error::TokenError;

/// Tokens longer than this are refused before any parsing (a real Supabase
/// token is about 1 KiB).
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A verified token.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    /// The claims (a JSON object).
    pub(crate) claims: Arc<Value>,
    /// The algorithm it was verified with.
    pub(crate) alg: Algorithm,
    /// The JWKS key id used (`None` for HMAC or a key without `kid`).
    pub(crate) kid: Option<String>,
    /// `exp`, unix seconds.
    pub(crate) exp: u64,
    /// When several HMAC secrets are configured, the 1-based position of
    /// the one that verified (README "Rotating the HMAC secret"); `None`
    /// with a single secret or for a JWKS key.
    pub(crate) secret_position: Option<usize>,
}

impl Verified {
    /// The `sub` claim, when a string that is not empty or whitespace.
    #[cfg(test)]
    pub(crate) fn subject(&self) -> Option<&str> {
        self.claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !blank(s))
    }
}

/// A token split and decoded, not verified.
pub(crate) struct Decoded {
    /// The header object.
    pub(crate) header: Map<String, Value>,
    /// The payload object.
    pub(crate) claims: Map<String, Value>,
    /// The header's algorithm, when it names one we know (`none` refused).
    pub(crate) alg: Result<Algorithm, TokenError>,
}

/// A token split at its dots, with its header and payload each decoded
/// (base64url, then JSON) on their own: the one decoding that the verifier
/// ([`decode_parts`]) and `token inspect` (`inspect::decode_unverified`)
/// share, so what inspect shows is what the verifier read.
pub(crate) struct Parts<'a> {
    /// The header as JSON, or why it is not.
    pub(crate) header: Result<Value, TokenError>,
    /// The payload as JSON, or why it is not.
    pub(crate) claims: Result<Value, TokenError>,
    /// The third part, undecoded.
    pub(crate) signature: &'a str,
}

/// Splits a token into its three parts (RFC 7515 §7.1: `header.payload.
/// signature`, base64url without padding) and decodes the first two; fails
/// only when there are not exactly three parts.
pub(crate) fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "expected three base64url parts separated by dots",
        ));
    };
    Ok(Parts {
        header: json_part(h, "header"),
        claims: json_part(p, "payload"),
        signature: s,
    })
}

/// One base64url part as JSON; errors name `what` it is.
fn json_part(part: &str, what: &str) -> Result<Value, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed(&format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|_| malformed(&format!("the {what} is not JSON")))
}

fn malformed(m: &str) -> TokenError {
    TokenError::Malformed(m.to_owned())
}

/// Splits and decodes a token without verifying it. Fails on structure
/// only (not three parts, not base64url, not JSON objects, no `alg`).
pub(crate) fn decode_parts(token: &str) -> Result<Decoded, TokenError> {
    let bad = malformed;
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    if token.is_empty() {
        return Err(bad("the token is empty"));
    }
    let parts = split(token)?;
    let object = |part: Result<Value, TokenError>, what: &str| match part? {
        Value::Object(m) => Ok(m),
        _ => Err(bad(&format!("the {what} is not a JSON object"))),
    };
    let header = object(parts.header, "header")?;
    let claims = object(parts.claims, "payload")?;
    let s = parts.signature;
    let alg = match header.get("alg") {
        None => return Err(bad("the header has no alg")),
        Some(Value::String(a)) if a.eq_ignore_ascii_case("none") => Err(TokenError::Unsigned),
        Some(Value::String(a)) => a
            .parse::<Algorithm>()
            .map_err(|_| TokenError::AlgorithmNotAllowed(clean(a))),
        Some(_) => return Err(bad("the header's alg is not a string")),
    };
    if alg == Err(TokenError::Unsigned) {
        return Err(TokenError::Unsigned);
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad("the signature is not base64url"));
    }
    Ok(Decoded {
        header,
        claims,
        alg,
    })
}

/// Verifies tokens for one config generation. Cheap to share in an `Arc`.
pub struct Authenticator {
    /// The allowlist, with a ready `Validation` per algorithm (every field
    /// set from the config; only `algorithms` differs).
    validations: Vec<(Algorithm, Validation)>,
    /// The HMAC key for HS*, when configured: the first secret listed.
    hmac: Option<DecodingKey>,
    /// The other secrets listed, tried in order when the first one's
    /// signature check fails (positions 2, 3, …); empty with one secret,
    /// so that case costs what it always did.
    hmac_older: Vec<DecodingKey>,
    /// `nyro_token_verifications_total`, one counter per secret position
    /// (index 0 is position 1); empty until [`Self::counting`] sets it.
    by_secret: Vec<prometheus_client::metrics::counter::Counter>,
    /// The JWKS for asymmetric algorithms, when configured.
    jwks: Option<Arc<JwksStore>>,
    /// Accepted audiences (for messages).
    audience: Vec<String>,
    /// Exact issuer, when configured (for messages).
    issuer: Option<String>,
    /// Claims that must be present and non-empty: `exp` (and `iss` when an
    /// issuer is set) first, then `required_claims` in config order, then
    /// `aud` when the config did not list it.
    required: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, seconds.
    leeway: u64,
    /// The claim paths routes inject: what an [`Identity`] keeps.
    paths: ClaimPaths,
    /// The HMAC secret is `serve --dev`'s ephemeral one: a signature
    /// failure is logged with the hint that it changes on every start.
    ephemeral: bool,
    /// Verified tokens (HMAC and asymmetric) reduced to their identity;
    /// per generation, so a new secret or new keys start with it empty.
    cache: TokenCache,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "algorithms",
                &self.validations.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            )
            .field("hmac", &self.hmac.as_ref().map(|_| "***"))
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

/// The claims jsonwebtoken can require.
const SPEC_CLAIMS: &[&str] = &["exp", "nbf", "aud", "iss", "sub"];

impl Authenticator {
    /// Builds the verifier. `jwks`: a store to reuse from the previous
    /// generation when the URL is unchanged (so keys and readiness survive
    /// reloads); `None` (or a store for another URL) -> a new one is created
    /// when `cfg.jwks_url` is set, which needs a tokio runtime.
    pub(crate) fn new(cfg: &Auth, jwks: Option<Arc<JwksStore>>) -> Result<Self, AuthBuildError> {
        let Auth {
            audience,
            issuer,
            algorithms,
            hmac,
            jwks_url,
            leeway,
            required_claims,
        } = cfg;
        let mut required: Vec<String> = vec!["exp".to_owned()];
        if issuer.is_some() {
            required.push("iss".to_owned());
        }
        for c in required_claims {
            if !required.contains(c) {
                required.push(c.clone());
            }
        }
        // "tokens must carry one of them": not up to required_claims.
        if !audience.is_empty() && !required.iter().any(|c| c == "aud") {
            required.push("aud".to_owned());
        }
        let base = Validation {
            required_spec_claims: required
                .iter()
                .filter(|c| SPEC_CLAIMS.contains(&c.as_str()))
                .cloned()
                .collect(),
            leeway: leeway.as_secs(),
            reject_tokens_expiring_in_less_than: 0,
            validate_exp: true,
            validate_nbf: true,
            validate_aud: true,
            aud: Some(audience.iter().cloned().collect()),
            iss: issuer.as_ref().map(|i| HashSet::from([i.clone()])),
            sub: None,
            algorithms: Vec::new(),
        };
        let validations = algorithms
            .iter()
            .map(|a| {
                (
                    *a,
                    Validation {
                        algorithms: vec![*a],
                        ..base.clone()
                    },
                )
            })
            .collect();
        let jwks = match jwks_url {
            None => None,
            Some(url) => match jwks {
                Some(store) if store.url() == url => Some(store),
                _ => Some(JwksStore::new(url.clone())?),
            },
        };
        Ok(Authenticator {
            validations,
            hmac: hmac
                .as_ref()
                .map(|h| DecodingKey::from_secret(h.secret.expose())),
            hmac_older: hmac
                .iter()
                .flat_map(|h| &h.older)
                .map(|s| DecodingKey::from_secret(s.expose()))
                .collect(),
            by_secret: Vec::new(),
            jwks,
            audience: audience.clone(),
            issuer: issuer.clone(),
            required,
            leeway: leeway.as_secs(),
            paths: ClaimPaths::default(),
            ephemeral: hmac
                .as_ref()
                .is_some_and(|h| h.source == crate::config::SecretSource::Ephemeral),
            cache: TokenCache::new(1),
        })
    }

    /// Gives the token cache one shard per serving worker (see
    /// `super::cache`), for `workers` workers.
    pub(crate) fn for_workers(mut self, workers: usize) -> Self {
        self.cache = TokenCache::new(workers);
        self
    }

    /// Sets the claim paths the routes inject (every route's `inject`),
    /// which [`Self::identify`] keeps of each token.
    pub(crate) fn injecting(mut self, paths: impl IntoIterator<Item = ClaimPath>) -> Self {
        self.paths = ClaimPaths::new(paths);
        self
    }

    /// Where the value of claim `path` sits in every [`Identity`] this
    /// authenticator makes (`Identity::claim_value`), when it was given
    /// to [`Self::injecting`].
    pub(crate) fn claim_slot(&self, path: &ClaimPath) -> Option<usize> {
        self.paths.slot(path)
    }

    /// Sets the counters of verifications by HMAC secret position (from
    /// `Metrics::token_verifications`), counted on each verification that
    /// is not a cache hit.
    pub(crate) fn counting(
        mut self,
        counters: impl FnMut(usize) -> prometheus_client::metrics::counter::Counter,
    ) -> Self {
        let n = usize::from(self.hmac.is_some()) + self.hmac_older.len();
        self.by_secret = (1..=n).map(counters).collect();
        self
    }

    /// The request path's verification: the token's [`Identity`], from the
    /// cache when the token was verified recently (see `auth::cache`).
    pub(crate) async fn identify(&self, token: &str) -> Result<Arc<Identity>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let now = now_unix();
        if let Some(id) = self.cache.get(token, now) {
            crate::metrics::TOKEN_CACHE.inc(crate::metrics::CACHE_HIT);
            return Ok(id);
        }
        crate::metrics::TOKEN_CACHE.inc(crate::metrics::CACHE_MISS);
        // Boxed: a miss (and its JWKS fetch) is the cold path, and its
        // state would otherwise sit in every request's future.
        let verified = Box::pin(self.verify(token)).await?;
        if let Some(c) = self.hmac_position(&verified) {
            c.inc();
        }
        let mut id = Identity::project(&verified.claims, &self.paths);
        id.secret_position = verified.secret_position;
        let id = Arc::new(id);
        self.cache.insert(token, &id, verified.exp, now);
        Ok(id)
    }

    /// The headers `inject` (a route's) adds for `identity`, which must
    /// come from [`Self::identify`] on this authenticator.
    pub(crate) fn injected_headers(
        &self,
        identity: &Identity,
        inject: &[Injection],
    ) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, InjectError> {
        identity.injected_headers(&self.paths, inject)
    }

    /// The counter of the HMAC secret that verified `v`, if any.
    fn hmac_position(&self, v: &Verified) -> Option<&prometheus_client::metrics::counter::Counter> {
        if !is_hmac(v.alg) {
            return None;
        }
        self.by_secret.get(v.secret_position.unwrap_or(1) - 1)
    }

    /// The JWKS store, to hand to the next generation.
    pub(crate) fn jwks(&self) -> Option<&Arc<JwksStore>> {
        self.jwks.as_ref()
    }

    /// False until a configured JWKS has been fetched once.
    pub(crate) fn is_ready(&self) -> bool {
        self.jwks.as_ref().is_none_or(|s| s.is_ready())
    }

    /// Verifies a token (without the `Bearer ` prefix) and returns its
    /// whole claim set; never cached (`token inspect`, and
    /// [`Self::identify`] on a cache miss).
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let decoded = decode_parts(token)?;
        let alg = decoded.alg.clone()?;
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == alg) else {
            return Err(TokenError::AlgorithmNotAllowed(format!("{alg:?}")));
        };
        if decoded.header.contains_key("crit") {
            return Err(TokenError::Critical);
        }
        let kid = match decoded.header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => {
                return Err(TokenError::Malformed(
                    "the header's kid is not a string".into(),
                ));
            }
        };

        let mut secret_position = None;
        let (claims, used_kid) = if is_hmac(alg) {
            // The kid is ignored on purpose: the secrets are the only HMAC
            // keys. They are tried in order; only a bad signature moves on
            // to the next one (any other refusal means the signature was
            // good, so the token is refused as it stands).
            let key = self
                .hmac
                .as_ref()
                .ok_or_else(|| TokenError::AlgorithmNotAllowed(format!("{alg:?}")))?;
            let mut result = self.decode(token, alg, validation, key, &decoded);
            if !self.hmac_older.is_empty() {
                secret_position = Some(1);
                for (i, key) in self.hmac_older.iter().enumerate() {
                    if !matches!(result, Err(TokenError::BadSignature)) {
                        break;
                    }
                    result = self.decode(token, alg, validation, key, &decoded);
                    secret_position = Some(i + 2);
                }
            }
            if self.ephemeral && matches!(result, Err(TokenError::BadSignature)) {
                tracing::info!(
                    "token signature is invalid: serve --dev made up an ephemeral secret, which changes on every start; \
                     use the token it printed this time, or set GATEWAY_JWT_SECRET"
                );
            }
            (result?, None)
        } else {
            let store = self
                .jwks
                .as_ref()
                .ok_or_else(|| TokenError::AlgorithmNotAllowed(format!("{alg:?}")))?;
            match kid {
                Some(kid) => {
                    let key = match store.snapshot().find(kid) {
                        Some(k) => k.clone(),
                        None => match store.refresh_for_kid(kid).await {
                            Some(k) => k,
                            None if !store.is_ready() => return Err(TokenError::KeysUnavailable),
                            None => return Err(TokenError::UnknownKid(clean(kid))),
                        },
                    };
                    if !key.allows(alg) {
                        return Err(TokenError::KeyAlgorithmMismatch {
                            kid: clean(kid),
                            key: algorithms_text(&key),
                            alg: format!("{alg:?}"),
                        });
                    }
                    (
                        self.decode(token, alg, validation, &key.key, &decoded)?,
                        Some(kid.to_owned()),
                    )
                }
                None => {
                    let mut keys = store.snapshot();
                    if keys.for_alg(alg).next().is_none() {
                        keys = store
                            .refresh_for_missing(
                                "has no kid and no key of its algorithm is held",
                                |k| k.for_alg(alg).next().is_some(),
                            )
                            .await;
                    }
                    let mut result = None;
                    for key in keys.for_alg(alg) {
                        match self.decode(token, alg, validation, &key.key, &decoded) {
                            Err(TokenError::BadSignature) => {
                                result = Some(Err(TokenError::BadSignature))
                            }
                            other => {
                                result = Some(other.map(|c| (c, key.kid.clone())));
                                break;
                            }
                        }
                    }
                    match result {
                        Some(r) => r?,
                        None if !store.is_ready() => return Err(TokenError::KeysUnavailable),
                        None => return Err(TokenError::NoKeyForAlgorithm(format!("{alg:?}"))),
                    }
                }
            }
        };

        let exp = claims.get("exp").and_then(number).unwrap_or(0);
        Ok(Verified {
            claims: Arc::new(claims),
            alg,
            kid: used_kid,
            exp,
            secret_position,
        })
    }

    /// Signature and claims check with one key, then our own checks.
    fn decode(
        &self,
        token: &str,
        alg: Algorithm,
        validation: &Validation,
        key: &DecodingKey,
        decoded: &Decoded,
    ) -> Result<Value, TokenError> {
        match jsonwebtoken::decode::<Value>(token, key, validation) {
            Ok(data) => {
                // The signature is good: the claims may now be explained.
                self.check_claims(&decoded.claims)?;
                Ok(data.claims)
            }
            Err(e) => Err(self.explain(e.into_kind(), alg, &decoded.claims)),
        }
    }

    /// Required claims in order (absent, null, "" or whitespace-only is
    /// missing), types of the time claims, non-blank `sub`, then `aud` and
    /// `iss` against the config. Runs after jsonwebtoken's checks passed,
    /// and to explain its refusals, so it must refuse everything jsonwebtoken
    /// lets through that we do not accept.
    fn check_claims(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        for name in &self.required {
            let missing = match claims.get(name) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => blank(s),
                Some(Value::Array(a)) => a.is_empty(),
                Some(_) => false,
            };
            if missing {
                // A project key has a role but no user: say so, whichever
                // required claim (sub, aud) is the first one it lacks.
                let has_sub = claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !blank(s));
                if !has_sub
                    && let Some(role @ ("anon" | "service_role")) =
                        claims.get("role").and_then(Value::as_str)
                {
                    return Err(TokenError::ProjectKey(role.to_owned()));
                }
                return Err(TokenError::MissingClaim(clean(name)));
            }
        }
        for name in ["exp", "nbf", "iat"] {
            if claims.get(name).is_some_and(|v| number(v).is_none()) {
                return Err(TokenError::Malformed(format!(
                    "claim {name} is not a number of seconds"
                )));
            }
        }
        // RFC 7519 §4.1.4: the current time must be before `exp` (plus the
        // leeway); jsonwebtoken accepts the second equal to it.
        if let Some(exp) = claims.get("exp").and_then(number) {
            let now = now_unix();
            if now >= exp.saturating_add(self.leeway) {
                return Err(TokenError::Expired {
                    ago: now.saturating_sub(exp),
                });
            }
        }
        match claims.get("sub") {
            None => {}
            Some(Value::String(s)) if !blank(s) => {}
            Some(Value::String(_)) => return Err(TokenError::MissingClaim("sub".into())),
            Some(_) => return Err(TokenError::Malformed("claim sub is not a string".into())),
        }
        self.check_audience(claims.get("aud"))?;
        self.check_issuer(claims.get("iss"))
    }

    /// `aud`: a string or a list of strings, one of them a configured
    /// audience (RFC 7519 §4.1.3). Presence was checked with the required
    /// claims.
    fn check_audience(&self, aud: Option<&Value>) -> Result<(), TokenError> {
        if self.audience.is_empty() {
            return Ok(());
        }
        let ours = |s: &str| self.audience.iter().any(|a| a == s);
        let matches = match aud {
            None | Some(Value::Null) => return Err(TokenError::MissingClaim("aud".into())),
            Some(Value::String(s)) => ours(s),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                items.iter().filter_map(Value::as_str).any(ours)
            }
            Some(_) => {
                return Err(TokenError::Malformed(
                    "claim aud is not a string or a list of strings".into(),
                ));
            }
        };
        if matches {
            Ok(())
        } else {
            Err(TokenError::Audience {
                expected: quoted_list(&self.audience),
                found: aud.map(value_text),
            })
        }
    }

    /// `iss`: exactly the configured issuer, as one string (RFC 7519
    /// §4.1.1 makes it a single StringOrURI).
    fn check_issuer(&self, iss: Option<&Value>) -> Result<(), TokenError> {
        let Some(expected) = &self.issuer else {
            return Ok(());
        };
        match iss {
            None | Some(Value::Null) => Err(TokenError::MissingClaim("iss".into())),
            Some(Value::String(s)) if s == expected => Ok(()),
            Some(Value::String(s)) => Err(TokenError::Issuer {
                expected: quoted_list(std::slice::from_ref(expected)),
                found: Some(format!("'{}'", clean(s))),
            }),
            Some(other) => Err(TokenError::IssuerNotString {
                expected: quoted_list(std::slice::from_ref(expected)),
                found: value_text(other),
            }),
        }
    }

    /// Turns a jsonwebtoken error into a reason a person understands. The
    /// claim-level kinds only happen after the signature was verified, so
    /// reading the claims for the message is safe.
    fn explain(&self, kind: ErrorKind, alg: Algorithm, claims: &Map<String, Value>) -> TokenError {
        let now = now_unix();
        match kind {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => {
                let exp = claims.get("exp").and_then(number).unwrap_or(now);
                TokenError::Expired {
                    ago: now.saturating_sub(exp),
                }
            }
            ErrorKind::ImmatureSignature => {
                let nbf = claims.get("nbf").and_then(number).unwrap_or(now);
                TokenError::NotYetValid {
                    wait: nbf.saturating_sub(now),
                }
            }
            ErrorKind::InvalidAudience => TokenError::Audience {
                expected: quoted_list(&self.audience),
                found: claims.get("aud").map(value_text),
            },
            ErrorKind::InvalidIssuer => TokenError::Issuer {
                expected: quoted_list(self.issuer.as_slice()),
                found: claims.get("iss").map(value_text),
            },
            ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
                // Our ordered check names the first problem; jsonwebtoken's
                // order is a HashSet's.
                match self.check_claims(claims) {
                    Err(e) => e,
                    Ok(()) => {
                        TokenError::Malformed(format!("claim {} has the wrong type", clean(&c)))
                    }
                }
            }
            ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
            | ErrorKind::UnsupportedAlgorithm => {
                TokenError::AlgorithmNotAllowed(format!("{alg:?}"))
            }
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidKeyFormat => {
                // A JWKS key that does not parse cannot have signed this token.
                TokenError::BadSignature
            }
            ErrorKind::Base64(_) => TokenError::Malformed("a part is not base64url".into()),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                TokenError::Malformed("the header or payload is not valid JSON".into())
            }
            _ => TokenError::Malformed("the token could not be decoded".into()),
        }
    }
}

/// A JWT NumericDate as whole seconds (non-negative integers or floats).
fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e19)
            .map(|f| f as u64)
    })
}

fn quoted_list(items: &[String]) -> String {
    match items {
        [one] => format!("'{}'", clean(one)),
        many => format!(
            "one of {}",
            many.iter()
                .map(|s| format!("'{}'", clean(s)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A claim value for a message: strings quoted, arrays as lists.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{}'", clean(s)),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().take(5).map(value_text).collect();
            format!("[{}]", parts.join(", "))
        }
        other => clean(&other.to_string()),
    }
}

fn algorithms_text(key: &JwkKey) -> String {
    key.algorithms
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join("/")
}
