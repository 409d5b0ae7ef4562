//! `[cors]` and the origin lists a route may put in its place
//! (`cors_origins`), README "CORS".

use std::time::Duration;

use http::HeaderName;
use toml::Spanned;

use super::Validator;
use crate::config::model::{Cors, OriginRule};
use crate::config::parse::parse_origin;
use crate::config::raw::RawCors;

impl Validator<'_> {
    /// `[cors]`: the CORS policy every route starts from.
    pub(super) fn cors(&mut self, raw: Option<RawCors>) -> Option<Cors> {
        let RawCors {
            allowed_origins,
            allow_credentials,
            max_age,
            allow_headers,
            expose_headers,
        } = raw.unwrap_or(RawCors {
            allowed_origins: None,
            allow_credentials: None,
            max_age: None,
            allow_headers: None,
            expose_headers: None,
        });
        let allow_credentials = allow_credentials.is_none_or(Spanned::into_inner);
        let origins_span = allowed_origins.as_ref().map(|o| o.span());
        let allowed_origins = match allowed_origins {
            Some(list) => self.origins(list.get_ref(), allow_credentials, "allowed_origins"),
            None => Some(Vec::new()),
        };
        if let (Some(o), Some(span)) = (&allowed_origins, origins_span)
            && o.is_empty()
        {
            self.warn(
                span,
                "allowed_origins is empty: browsers on other origins cannot call the gateway",
            );
        }
        let max_age = self.duration(max_age, Duration::from_secs(600), "max_age");
        let allow_headers = match allow_headers {
            None => Some(None),
            Some(list) => self.header_names(list.get_ref(), "allow_headers").map(Some),
        };
        let expose_headers = match expose_headers {
            None => Some(vec![
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-process-time"),
                // README "Rate limits": a page can read why it was limited.
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                HeaderName::from_static("retry-after"),
            ]),
            Some(list) => self.header_names(list.get_ref(), "expose_headers"),
        };
        Some(Cors {
            allowed_origins: allowed_origins?,
            allow_credentials,
            max_age: max_age?,
            allow_headers: allow_headers?,
            expose_headers: expose_headers?,
        })
    }

    /// An origin list (`allowed_origins`, a route's `cors_origins`): each
    /// entry parsed, empty entries dropped, `"*"` refused with credentials.
    pub(super) fn origins(
        &mut self,
        list: &[Spanned<String>],
        credentials: bool,
        key: &str,
    ) -> Option<Vec<OriginRule>> {
        let mut ok = true;
        let mut out = Vec::new();
        for (text, span) in self.string_list(list) {
            if text.is_empty() {
                continue; // `${VERCEL_FRONTEND_URL:-}` left unset
            }
            match parse_origin(&text) {
                Ok(OriginRule::Any) if credentials => {
                    self.err(span, format!("{key}: \"*\" cannot be used with allow_credentials = true (browsers refuse it); list the origins, or set allow_credentials = false"));
                    ok = false;
                }
                Ok(rule) => {
                    if !out.contains(&rule) {
                        out.push(rule);
                    }
                }
                Err(m) => {
                    self.err(span, format!("{key}: {m}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A list of header names (`allow_headers`, `expose_headers`).
    fn header_names(&mut self, list: &[Spanned<String>], key: &str) -> Option<Vec<HeaderName>> {
        let mut ok = true;
        let mut out = Vec::new();
        for (name, span) in self.string_list(list) {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) => out.push(h),
                Err(_) => {
                    self.err(span, format!("{key}: {name:?} is not a valid header name"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}
