//! HS* token signing, for `token mint` and the ready `curl` line of
//! `serve --dev`. Never used to verify.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Map, Value};

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Only HMAC algorithms can be signed with a shared secret.
    #[error(
        "{0:?} is not an HMAC algorithm; only HS256, HS384 and HS512 can be minted with a secret"
    )]
    NotHmac(Algorithm),
    /// The signing library refused (should not happen with an HMAC key).
    #[error("signing failed")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Signs `claims` with `secret` using `alg` (HS256/384/512), filling `aud`
/// (with `audience`), `iss` (with `issuer`, when the config sets one),
/// `iat` (now) and `exp` (`iat + ttl`) unless the claims already hold them.
/// Returns the compact token.
pub fn mint_token(
    secret: &[u8],
    alg: Algorithm,
    mut claims: Map<String, Value>,
    audience: &str,
    issuer: Option<&str>,
    ttl: Duration,
) -> Result<String, MintError> {
    if !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(MintError::NotHmac(alg));
    }
    let now = super::now_unix();
    claims.entry("aud").or_insert_with(|| Value::from(audience));
    if let Some(issuer) = issuer {
        claims.entry("iss").or_insert_with(|| Value::from(issuer));
    }
    let iat = claims
        .entry("iat")
        .or_insert_with(|| Value::from(now))
        .as_u64()
        .unwrap_or(now);
    claims
        .entry("exp")
        .or_insert_with(|| Value::from(iat.saturating_add(ttl.as_secs())));
    let header = Header::new(alg);
    encode(
        &header,
        &Value::Object(claims),
        &EncodingKey::from_secret(secret),
    )
    .map_err(MintError::Sign)
}
