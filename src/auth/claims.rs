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

use crate::config::Injection;

/// Why a route's injection failed; `Display` is the 403 detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// A `required = true` claim is absent, `null`, empty or whitespace.
    #[error("required claim \"{claim}\" is missing")]
    Missing {
        /// The claim path as configured.
        claim: String,
    },
    /// The claim's value cannot be a header value.
    #[error("claim \"{claim}\" is not injectable: {reason}")]
    NotInjectable {
        /// The claim path as configured.
        claim: String,
        /// Why, e.g. "not printable ASCII", "it is an object", "it has
        /// leading or trailing whitespace".
        reason: &'static str,
    },
}

/// Computes the headers a route injects from verified claims, in the
/// route's order. `Err` names the first claim that stops the request.
pub fn injected_headers(
    claims: &Value,
    inject: &[Injection],
) -> Result<Vec<(HeaderName, HeaderValue)>, InjectError> {
    let mut out = Vec::with_capacity(inject.len());
    for Injection {
        header,
        claim,
        required,
    } in inject
    {
        let not_injectable = |reason| InjectError::NotInjectable {
            claim: claim.to_string(),
            reason,
        };
        let text = match claim.lookup(claims) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if super::blank(s) => None,
            Some(Value::String(s)) if s.trim() != s => {
                return Err(not_injectable("it has leading or trailing whitespace"));
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(Value::Object(_)) => return Err(not_injectable("it is an object")),
            Some(Value::Array(_)) => return Err(not_injectable("it is an array")),
        };
        let Some(text) = text else {
            if *required {
                return Err(InjectError::Missing {
                    claim: claim.to_string(),
                });
            }
            continue;
        };
        if !text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(not_injectable("not printable ASCII"));
        }
        let value =
            HeaderValue::from_str(&text).map_err(|_| not_injectable("not printable ASCII"))?;
        out.push((header.clone(), value));
    }
    Ok(out)
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

    fn run(claims: Value, path: &str, required: bool) -> Result<Option<String>, InjectError> {
        let v = injected_headers(&claims, &[inj("x-test", path, required)])?;
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
