//! TEMPORARY stub with the interface of the auth module (replaced by the real one on merge).
#![allow(missing_docs, unused)]
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

pub struct Authenticator;
pub struct JwksStore;
impl JwksStore {
    pub fn url(&self) -> &http::Uri {
        unimplemented!()
    }
}
#[derive(Debug, thiserror::Error)]
pub enum AuthBuildError {
    #[error("x")]
    X,
}
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("signature is invalid")]
    Invalid,
}
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    #[error("repeated")]
    Repeated,
}
#[derive(Debug, thiserror::Error)]
#[error("claim {0} missing")]
pub struct InjectError(String);
pub struct Verified {
    pub claims: Arc<serde_json::Value>,
}
impl Authenticator {
    pub fn new(
        cfg: &crate::config::Auth,
        jwks: Option<Arc<JwksStore>>,
    ) -> Result<Self, AuthBuildError> {
        Ok(Authenticator)
    }
    pub fn jwks(&self) -> Option<&Arc<JwksStore>> {
        None
    }
    pub fn is_ready(&self) -> bool {
        true
    }
    pub async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        Err(TokenError::Invalid)
    }
}
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    Ok(None)
}
pub fn injected_headers(
    claims: &serde_json::Value,
    inject: &[crate::config::Injection],
) -> Result<Vec<(HeaderName, HeaderValue)>, InjectError> {
    Ok(vec![])
}
pub fn mint_token(
    secret: &[u8],
    claims: serde_json::Map<String, serde_json::Value>,
    audience: &str,
    ttl: std::time::Duration,
) -> anyhow::Result<String> {
    anyhow::bail!("stub")
}
