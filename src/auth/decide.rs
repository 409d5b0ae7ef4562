//! The auth phase's verdict for one request on one route: the one place
//! that turns a route's `auth` mode and `inject` list, and the request's
//! `Authorization`, into "forward with these headers" or a 400/401/403.
//! The pipeline and `token inspect` both ask it, so they cannot disagree.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use super::{Authenticator, BearerError, Identity};
use crate::config::{AuthMode, Injection};
use crate::error::GatewayError;

/// What the auth phase decided.
#[derive(Debug)]
pub struct Decision {
    /// The verified token's identity, for the log line; kept when the
    /// request is refused for a claim (403) too.
    pub(crate) identity: Option<Arc<Identity>>,
    /// The headers to inject upstream, in the route's order, or why the
    /// request is refused: 400 (repeated `Authorization`), 401 (no token
    /// where one is required, a malformed or refused token), 403 (a claim
    /// that is required and missing, or not injectable).
    pub(crate) outcome: Result<Vec<(HeaderName, HeaderValue)>, GatewayError>,
}

impl Decision {
    fn refused(e: impl Into<GatewayError>) -> Self {
        Decision {
            identity: None,
            outcome: Err(e.into()),
        }
    }
}

/// Decides a route's auth for `token`, as [`super::bearer_token`] read it
/// from the request. `auth = "none"` looks at nothing; `optional` lets a
/// request without a bearer token through without identity; a token that
/// is there is verified (through the token cache) and must carry what the
/// route injects.
pub async fn decide(
    auth: &Authenticator,
    mode: AuthMode,
    inject: &[Injection],
    token: Result<Option<&str>, BearerError>,
) -> Decision {
    if mode == AuthMode::None {
        return Decision {
            identity: None,
            outcome: Ok(Vec::new()),
        };
    }
    let token = match token {
        Ok(Some(t)) => t,
        Ok(None) if mode == AuthMode::Required => {
            return Decision::refused(GatewayError::NotAuthenticated);
        }
        Ok(None) => {
            return Decision {
                identity: None,
                outcome: Ok(Vec::new()),
            };
        }
        Err(e) => return Decision::refused(e),
    };
    // Only what this phase needs of the token (its identity and the
    // injected claims) is kept, and cached; never the claim set.
    let identity = match auth.identify(token).await {
        Ok(id) => id,
        Err(e) => return Decision::refused(e),
    };
    let outcome = auth
        .injected_headers(&identity, inject)
        .map_err(GatewayError::from);
    Decision {
        identity: Some(identity),
        outcome,
    }
}
