//! JWT authentication: where a 401 or a claim-based 403 comes from.
//!
//! - `verify`: [`Authenticator`], one per config generation; decides which
//!   key and algorithm may verify a token (the allowlist and the key's own
//!   type decide, never the token header) and explains every refusal
//! - `jwks`: [`JwksStore`], the issuer's public keys, fetched, cached and
//!   refreshed in the background; re-fetched (at most every 5 s) when a
//!   token needs a key not held (unknown `kid`, none of its algorithm)
//! - `cache`: the cache of verified tokens, bounded in bytes (32 MiB)
//! - `claims`: [`injected_headers`], verified claims -> upstream headers;
//!   [`Identity`], what the request path (and the cache) keeps of a token
//! - `bearer`: [`bearer_token`], the `Authorization: Bearer` extraction
//! - `mint`: [`mint_for_config`], HS* signing with the config's secret for
//!   `token mint` and `serve --dev`;
//!   [`mint_token_with_key`], PEM private-key signing for `token mint --key`
//! - `inspect`: decoding and wording helpers for `token inspect`
//! - `decide`: [`decide`], a route's auth verdict for a request (forward
//!   with these headers, or 400/401/403), for the pipeline and
//!   `token inspect` alike

mod bearer;
mod cache;
mod claims;
mod decide;
pub(crate) mod inspect;
mod jwks;
mod mint;
mod verify;

pub use bearer::{BearerError, bearer_token};
pub use claims::{Identity, InjectError, injected_headers};
pub use decide::{Decision, decide};
pub(crate) use jwks::AuthBuildError;
pub use jwks::JwksStore;
pub use mint::{
    MintError, PemSigningKey, claim_defaults, mint_for_config, mint_token, mint_token_with_key,
};
pub use verify::Authenticator;
pub(crate) use verify::{MAX_TOKEN_LEN, TokenError, Verified, is_hmac};

#[cfg(test)]
mod tests;

/// Empty or whitespace only: a claim string that counts as absent, in
/// verification (`required_claims`, `sub`) and in injection alike.
pub(crate) fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Makes text safe for an RFC 6750 `error_description` (and a log line):
/// printable ASCII without `"` and `\` (others become `?`,
/// [`crate::error::quotable`]), at most 80 characters, then `...` when it
/// was longer. Anything a token carries goes through this before it
/// reaches a message.
pub(crate) fn clean(s: &str) -> String {
    let mut out = crate::error::quotable(s, 80, '?');
    if s.chars().nth(80).is_some() {
        out.push_str("...");
    }
    out
}
