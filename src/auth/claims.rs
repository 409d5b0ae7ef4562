//! Claim injection: verified claims -> the headers a route sends upstream.
//!
//! Strings are injected as they are, numbers and booleans as their JSON
//! text. An absent, `null`, empty or whitespace-only string claim is not
//! injected (an error only when `required`). A value outside printable ASCII
//! (0x20-0x7E), a string with leading or trailing whitespace, an object or
//! an array is never injected: the request is refused (403) naming the
//! claim, because a header cannot carry it faithfully (HTTP parsers strip
//! the edges of a header value, RFC 9110 §5.5, so `" c1 "` would arrive as
//! `"c1"`).

use http::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::config::{ClaimPath, Injection};
pub use crate::error::InjectError;

/// Computes the headers a route injects from verified claims, in the
/// route's order. `Err` names the first claim that stops the request.
/// (`token inspect`; the request path uses [`Identity::injected_headers`],
/// which decides the same from the values kept in the token cache.)
pub fn injected_headers(
    claims: &Value,
    inject: &[Injection],
) -> Result<Vec<(HeaderName, HeaderValue)>, InjectError> {
    let mut out = Vec::with_capacity(inject.len());
    for i in inject {
        push_injected(&mut out, i, project(i.claim.lookup(claims)))?;
    }
    Ok(out)
}

/// One claim's value as a header would carry it, decided once per token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Projected {
    /// Absent, `null`, empty or whitespace-only: not injected.
    Absent,
    /// The header value.
    Value(HeaderValue),
    /// It cannot be a header value; why (see the module doc).
    NotInjectable(&'static str),
}

impl Projected {
    /// Heap bytes this value holds (a `HeaderValue` is a `Bytes`: its
    /// bytes plus a shared header once cloned).
    fn heap_bytes(&self) -> usize {
        match self {
            Projected::Value(v) => v.len() + 32,
            _ => 0,
        }
    }
}

/// The one place a claim value becomes a header value, or not.
fn project(value: Option<&Value>) -> Projected {
    let text = match value {
        None | Some(Value::Null) => return Projected::Absent,
        Some(Value::String(s)) if super::blank(s) => return Projected::Absent,
        Some(Value::String(s)) if s.trim() != s => {
            return Projected::NotInjectable("it has leading or trailing whitespace");
        }
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Object(_)) => return Projected::NotInjectable("it is an object"),
        Some(Value::Array(_)) => return Projected::NotInjectable("it is an array"),
    };
    if !text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Projected::NotInjectable("not printable ASCII");
    }
    match HeaderValue::from_str(&text) {
        Ok(v) => Projected::Value(v),
        Err(_) => Projected::NotInjectable("not printable ASCII"),
    }
}

/// Adds one injection's header to `out`, or says why the request stops.
fn push_injected(
    out: &mut Vec<(HeaderName, HeaderValue)>,
    Injection {
        header,
        claim,
        required,
    }: &Injection,
    value: Projected,
) -> Result<(), InjectError> {
    match value {
        Projected::Value(v) => out.push((header.clone(), v)),
        Projected::Absent if *required => {
            return Err(InjectError::Missing {
                claim: claim.to_string(),
            });
        }
        Projected::Absent => {}
        Projected::NotInjectable(reason) => {
            return Err(InjectError::NotInjectable {
                claim: claim.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

/// Every claim path any route injects, deduplicated: known when the config
/// is compiled, so a verified token is reduced to these values once.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimPaths(Vec<ClaimPath>);

impl ClaimPaths {
    /// The distinct paths among `paths`, in first-seen order.
    pub(crate) fn new(paths: impl IntoIterator<Item = ClaimPath>) -> Self {
        let mut out: Vec<ClaimPath> = Vec::new();
        for p in paths {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        ClaimPaths(out)
    }

    /// The index of `path` among these paths.
    pub(crate) fn slot(&self, path: &ClaimPath) -> Option<usize> {
        self.0.iter().position(|p| p == path)
    }
}

/// What the request path needs of a verified token, and nothing more: the
/// identity for the log line and the value of every claim path a route
/// injects. This, not the claim set, is what the token cache holds, so a
/// cached token costs its own length plus a few hundred bytes, however
/// many claims it carries.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    /// `sub`, for the log line (verification refused a blank one).
    pub(crate) user_id: Option<Box<str>>,
    /// `app_metadata.company_id`, for the log line: a string as it is,
    /// anything else as its JSON text.
    pub(crate) company_id: Option<Box<str>>,
    /// The value of each of the config's [`ClaimPaths`], in its order.
    claims: Box<[Projected]>,
    /// Which HMAC secret verified the token, by 1-based position, when
    /// several are configured (for the log line; never the value).
    pub(crate) secret_position: Option<usize>,
}

impl Identity {
    /// Reduces verified `claims` to what the request path needs.
    pub(crate) fn project(claims: &Value, paths: &ClaimPaths) -> Identity {
        Identity {
            user_id: claims.get("sub").and_then(Value::as_str).map(Box::from),
            company_id: claims.pointer("/app_metadata/company_id").map(|v| match v {
                Value::String(s) => Box::from(s.as_str()),
                other => other.to_string().into_boxed_str(),
            }),
            claims: paths.0.iter().map(|p| project(p.lookup(claims))).collect(),
            secret_position: None,
        }
    }

    /// The value of the claim at `slot` (from `Authenticator::claim_slot`)
    /// when it could be a header value: absent, empty, an object or an
    /// array give `None`.
    pub(crate) fn claim_value(&self, slot: usize) -> Option<&HeaderValue> {
        match self.claims.get(slot)? {
            Projected::Value(v) => Some(v),
            Projected::Absent | Projected::NotInjectable(_) => None,
        }
    }

    /// The headers a route injects, as [`injected_headers`] computes them
    /// from the whole claim set (same order, same 403s). `paths` must be
    /// the set this identity was projected with.
    pub(crate) fn injected_headers(
        &self,
        paths: &ClaimPaths,
        inject: &[Injection],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, InjectError> {
        let mut out = Vec::with_capacity(inject.len());
        for i in inject {
            let value = paths
                .0
                .iter()
                .position(|p| *p == i.claim)
                .and_then(|at| self.claims.get(at))
                .cloned()
                .unwrap_or(Projected::Absent);
            push_injected(&mut out, i, value)?;
        }
        Ok(out)
    }

    /// Bytes this identity occupies, itself and what it points to (for the
    /// token cache's byte bound).
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of::<Identity>()
            + self.user_id.as_deref().map_or(0, str::len)
            + self.company_id.as_deref().map_or(0, str::len)
            + self.claims.len() * std::mem::size_of::<Projected>()
            + self.claims.iter().map(Projected::heap_bytes).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClaimPath;
    use serde_json::json;

    fn inj(header: &str, path: &str, required: bool) -> Injection {
        let claim = if path.starts_with('/') {
            ClaimPath::Pointer(path.to_owned())
        } else {
            ClaimPath::Dotted(path.split('.').map(str::to_owned).collect())
        };
        Injection {
            header: HeaderName::from_bytes(header.as_bytes()).unwrap(),
            claim,
            required,
        }
    }

    /// Injects one claim from the whole claim set, and checks that the
    /// cached [`Identity`] decides exactly the same.
    fn run(claims: Value, path: &str, required: bool) -> Result<Option<String>, InjectError> {
        let list = [inj("x-test", path, required)];
        let whole = injected_headers(&claims, &list);
        let paths = ClaimPaths::new([inj("x-other", "email", false).claim, list[0].claim.clone()]);
        let cached = Identity::project(&claims, &paths).injected_headers(&paths, &list);
        assert_eq!(whole, cached, "{claims} {path}");
        let v = whole?;
        Ok(v.first().map(|(_, v)| v.to_str().unwrap().to_owned()))
    }

    #[test]
    fn injection_table() {
        let company = "app_metadata.company_id";
        type Case = (
            Value,
            &'static str,
            bool,
            Result<Option<&'static str>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                json!({"app_metadata": {"company_id": "c1"}}),
                company,
                true,
                Ok(Some("c1")),
            ),
            (
                json!({"app_metadata": {}}),
                company,
                true,
                Err("required claim \"app_metadata.company_id\" is missing"),
            ),
            (json!({}), company, false, Ok(None)),
            (
                json!({"app_metadata": {"company_id": 42}}),
                company,
                true,
                Ok(Some("42")),
            ),
            (
                json!({"app_metadata": {"company_id": 4.5}}),
                company,
                true,
                Ok(Some("4.5")),
            ),
            (
                json!({"app_metadata": {"company_id": true}}),
                company,
                true,
                Ok(Some("true")),
            ),
            (
                json!({"app_metadata": {"company_id": null}}),
                company,
                true,
                Err("required claim \"app_metadata.company_id\" is missing"),
            ),
            (
                json!({"app_metadata": {"company_id": ""}}),
                company,
                false,
                Ok(None),
            ),
            (
                json!({"app_metadata": {"company_id": ""}}),
                company,
                true,
                Err("required claim \"app_metadata.company_id\" is missing"),
            ),
            (
                json!({"app_metadata": {"company_id": "a\r\nX-Evil: 1"}}),
                company,
                false,
                Err("claim \"app_metadata.company_id\" is not injectable: not printable ASCII"),
            ),
            (
                json!({"app_metadata": {"company_id": "société"}}),
                company,
                false,
                Err("claim \"app_metadata.company_id\" is not injectable: not printable ASCII"),
            ),
            (
                json!({"app_metadata": {"company_id": "tab\there"}}),
                company,
                false,
                Err("claim \"app_metadata.company_id\" is not injectable: not printable ASCII"),
            ),
            (
                json!({"app_metadata": {"company_id": {"id": 1}}}),
                company,
                false,
                Err("claim \"app_metadata.company_id\" is not injectable: it is an object"),
            ),
            (
                json!({"app_metadata": {"company_id": [1, 2]}}),
                company,
                false,
                Err("claim \"app_metadata.company_id\" is not injectable: it is an array"),
            ),
            (json!({"app_metadata": "flat"}), company, false, Ok(None)),
            (
                json!({"https://example.com/roles": "admin"}),
                "/https:~1~1example.com~1roles",
                true,
                Ok(Some("admin")),
            ),
            (
                json!({"a.b": "dotted-key"}),
                "/a.b",
                true,
                Ok(Some("dotted-key")),
            ),
            // Whitespace-only is absent; edge whitespace would be stripped
            // by the upstream's HTTP parser, so it is refused.
            (
                json!({"app_metadata": {"company_id": "   "}}),
                company,
                false,
                Ok(None),
            ),
            (
                json!({"app_metadata": {"company_id": "   "}}),
                company,
                true,
                Err("required claim \"app_metadata.company_id\" is missing"),
            ),
            (
                json!({"app_metadata": {"company_id": " c1 "}}),
                company,
                false,
                Err(
                    "claim \"app_metadata.company_id\" is not injectable: it has leading or trailing whitespace",
                ),
            ),
            (
                json!({"app_metadata": {"company_id": "c1 "}}),
                company,
                true,
                Err(
                    "claim \"app_metadata.company_id\" is not injectable: it has leading or trailing whitespace",
                ),
            ),
            (
                json!({"app_metadata": {"company_id": " c1"}}),
                company,
                true,
                Err(
                    "claim \"app_metadata.company_id\" is not injectable: it has leading or trailing whitespace",
                ),
            ),
            (
                json!({"sub": "user 1 ~ ok"}),
                "sub",
                true,
                Ok(Some("user 1 ~ ok")),
            ),
        ];
        for (claims, path, required, want) in cases {
            let got = run(claims.clone(), path, required).map_err(|e| e.to_string());
            let want = want.map(|o| o.map(str::to_owned)).map_err(str::to_owned);
            assert_eq!(got, want, "{claims} {path} required={required}");
        }
    }

    #[test]
    fn injects_in_route_order_and_skips_absent_optional_claims() {
        let claims = json!({"sub": "u1", "app_metadata": {"company_id": "c1"}});
        let list = [
            inj("x-user-id", "sub", false),
            inj("x-user-email", "email", false),
            inj("x-company-id", "app_metadata.company_id", true),
        ];
        let got = injected_headers(&claims, &list).unwrap();
        let got: Vec<(String, String)> = got
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("x-user-id".into(), "u1".into()),
                ("x-company-id".into(), "c1".into())
            ]
        );
    }
}
