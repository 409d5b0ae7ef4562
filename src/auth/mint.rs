//! Token signing, for `token mint` and the ready `curl` line of
//! `serve --dev`: HS* with the config's secret ([`mint_for_config`], the
//! one place both build it from the config), or ES256/ES384/RS256/EdDSA
//! with a private key from a PEM file (`token mint --key`, for testing a
//! JWKS setup). Never used to verify.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Map, Value};

use crate::config::Auth;

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Only HMAC algorithms can be signed with a shared secret.
    #[error(
        "{0:?} is not an HMAC algorithm; only HS256, HS384 and HS512 can be minted with a secret"
    )]
    NotHmac(Algorithm),
    /// The PEM file holds something that cannot sign, or a key type we do
    /// not sign with; the text says what was found and what to do.
    #[error("{0}")]
    UnsupportedKey(String),
    /// The signing library refused (should not happen with an HMAC key).
    #[error("signing failed")]
    Sign(#[source] jsonwebtoken::errors::Error),
    /// The config has no HMAC secret to sign with.
    #[error("[auth] has no HMAC secret (secret or secret_file), so there is nothing to sign with")]
    NoSecret,
    /// The config allows no HS* algorithm: the gateway would refuse any
    /// token signed with its secret.
    #[error(
        "[auth].algorithms allows no HS* algorithm, so the gateway would refuse a minted token; add \"HS256\""
    )]
    NoHmacAlgorithm,
}

/// A private key read from a PEM file and the algorithm it signs with,
/// chosen by the key's type: EC P-256 -> ES256, EC P-384 -> ES384,
/// RSA -> RS256, Ed25519 -> EdDSA.
pub struct PemSigningKey {
    /// The algorithm the key's type implies.
    pub(crate) alg: Algorithm,
    /// The key, ready for `jsonwebtoken`.
    key: EncodingKey,
}

impl std::fmt::Debug for PemSigningKey {
    // Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemSigningKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// DER of the named-curve OIDs (RFC 5480 section 2.1.1.1) as they appear in
/// a PKCS#8 EC key's AlgorithmIdentifier.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

impl PemSigningKey {
    /// Reads an unencrypted private key: PKCS#8 (`BEGIN PRIVATE KEY`, what
    /// `openssl genpkey` writes) for EC, RSA and Ed25519, or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`) for RSA.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<PemSigningKey, MintError> {
        let text = String::from_utf8_lossy(pem);
        let Some(label) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
            .and_then(|l| l.strip_suffix("-----"))
        else {
            return Err(unsupported(
                "no PEM block found (expected a line like -----BEGIN PRIVATE KEY-----)",
            ));
        };
        let bad = |e: jsonwebtoken::errors::Error| {
            unsupported(&format!("the {label} block does not parse ({e})"))
        };
        match label {
            "PRIVATE KEY" => {
                if let Ok(key) = EncodingKey::from_ec_pem(pem) {
                    // The curve OID sits in the AlgorithmIdentifier, within
                    // the first few dozen bytes of the PKCS#8 structure.
                    let head = &key.as_bytes()[..key.as_bytes().len().min(40)];
                    let has = |oid: &[u8]| head.windows(oid.len()).any(|w| w == oid);
                    let alg = if has(P256_OID) {
                        Algorithm::ES256
                    } else if has(P384_OID) {
                        Algorithm::ES384
                    } else {
                        return Err(unsupported(
                            "an EC key on a curve other than P-256 (ES256) or P-384 (ES384)",
                        ));
                    };
                    return Ok(PemSigningKey { alg, key });
                }
                if let Ok(key) = EncodingKey::from_ed_pem(pem) {
                    return Ok(PemSigningKey {
                        alg: Algorithm::EdDSA,
                        key,
                    });
                }
                let key = EncodingKey::from_rsa_pem(pem).map_err(|_| {
                    unsupported(
                        "a PKCS#8 key that is neither EC (P-256/P-384), RSA nor Ed25519 \
                         (Ed448 and others are not supported)",
                    )
                })?;
                Ok(PemSigningKey {
                    alg: Algorithm::RS256,
                    key,
                })
            }
            "RSA PRIVATE KEY" => Ok(PemSigningKey {
                alg: Algorithm::RS256,
                key: EncodingKey::from_rsa_pem(pem).map_err(bad)?,
            }),
            "EC PRIVATE KEY" => Err(unsupported(
                "an SEC1 EC key (BEGIN EC PRIVATE KEY); convert it to PKCS#8 with \
                 `openssl pkcs8 -topk8 -nocrypt -in KEY.pem -out KEY.p8.pem`",
            )),
            "ENCRYPTED PRIVATE KEY" => Err(unsupported(
                "an encrypted private key; decrypt it with \
                 `openssl pkcs8 -in KEY.pem -out KEY.plain.pem` (prompts for the passphrase)",
            )),
            l if l.contains("PUBLIC KEY") || l == "CERTIFICATE" => Err(unsupported(&format!(
                "a {l}, which cannot sign; --key takes the private key (the public half goes in the JWKS)"
            ))),
            l => Err(unsupported(&format!(
                "a PEM block labelled {l:?}; expected PRIVATE KEY (PKCS#8) or RSA PRIVATE KEY"
            ))),
        }
    }
}

fn unsupported(what: &str) -> MintError {
    MintError::UnsupportedKey(format!(
        "unsupported key: {what}; token mint signs with EC P-256 (ES256), EC P-384 (ES384), \
         RSA (RS256) or Ed25519 (EdDSA) private keys in PEM"
    ))
}

/// Signs `claims` as the gateway configured by `auth` accepts them: with
/// its first HMAC secret (the one that signs, README "Rotating the HMAC
/// secret") and the first HS* algorithm it allows, `aud` and `iss`
/// defaulting as [`claim_defaults`] says. The one way a token is minted from
/// a config, for `token mint` and `serve --dev` alike. Refuses a config
/// without a secret ([`MintError::NoSecret`]) or without an HS* algorithm
/// ([`MintError::NoHmacAlgorithm`]).
pub fn mint_for_config(
    auth: &Auth,
    claims: Map<String, Value>,
    ttl: Duration,
) -> Result<String, MintError> {
    let Some(hmac) = &auth.hmac else {
        return Err(MintError::NoSecret);
    };
    let Some(alg) = auth.algorithms.iter().copied().find(|a| super::is_hmac(*a)) else {
        return Err(MintError::NoHmacAlgorithm);
    };
    let (audience, issuer) = claim_defaults(Some(auth));
    mint_token(hmac.secret.expose(), alg, claims, audience, issuer, ttl)
}

/// `aud` (the first configured audience, else "authenticated", Supabase's
/// user audience) and `iss` (the configured issuer) for claims that do not
/// set them; without a config, "authenticated" and none.
pub fn claim_defaults(auth: Option<&Auth>) -> (&str, Option<&str>) {
    let audience = auth
        .and_then(|a| a.audience.first())
        .map_or("authenticated", String::as_str);
    (audience, auth.and_then(|a| a.issuer.as_deref()))
}

/// Signs `claims` with `secret` using `alg` (HS256/384/512), filling `aud`
/// (with `audience`), `iss` (with `issuer`, when the config sets one),
/// `iat` (now) and `exp` (`iat + ttl`) unless the claims already hold them.
/// Returns the compact token.
pub fn mint_token(
    secret: &[u8],
    alg: Algorithm,
    claims: Map<String, Value>,
    audience: &str,
    issuer: Option<&str>,
    ttl: Duration,
) -> Result<String, MintError> {
    if !super::is_hmac(alg) {
        return Err(MintError::NotHmac(alg));
    }
    sign(
        Header::new(alg),
        &EncodingKey::from_secret(secret),
        claims,
        audience,
        issuer,
        ttl,
    )
}

/// Like [`mint_token`], signed with a private key (its algorithm follows the
/// key's type) and with `kid` in the header when given, so a gateway whose
/// JWKS publishes the public half accepts it.
pub fn mint_token_with_key(
    key: &PemSigningKey,
    kid: Option<&str>,
    claims: Map<String, Value>,
    audience: &str,
    issuer: Option<&str>,
    ttl: Duration,
) -> Result<String, MintError> {
    let mut header = Header::new(key.alg);
    header.kid = kid.map(str::to_owned);
    sign(header, &key.key, claims, audience, issuer, ttl)
}

/// Fills the default claims and signs.
fn sign(
    header: Header,
    key: &EncodingKey,
    mut claims: Map<String, Value>,
    audience: &str,
    issuer: Option<&str>,
    ttl: Duration,
) -> Result<String, MintError> {
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
    encode(&header, &Value::Object(claims), key).map_err(MintError::Sign)
}
