//! `[rate_limit]` and the `limits` lists (the defaults and each route's
//! own): one name is one budget, so its key, rate and burst must agree
//! wherever it is used (README "Rate limits").

use std::collections::HashSet;
use std::time::Duration;

use toml::Spanned;

use super::Validator;
use crate::config::model::{Limit, OnRedisError, RateLimit, RedisUrl};
use crate::config::parse::{check_redis_url, parse_limit_key, parse_rate, parse_word};
use crate::config::raw::{RawLimit, RawRateLimit};

impl Validator<'_> {
    /// `[rate_limit]`; absent: no Redis and no default limits.
    pub(super) fn rate_limit(&mut self, raw: Option<RawRateLimit>) -> Option<RateLimit> {
        let RawRateLimit {
            redis_url,
            on_redis_error,
            timeout,
            limits,
        } = raw.unwrap_or(RawRateLimit {
            redis_url: None,
            on_redis_error: None,
            timeout: None,
            limits: None,
        });
        let redis_url = match redis_url {
            None => Some(None),
            Some(u) => match self.expand(&u) {
                Some(v) if v.trim().is_empty() => Some(None),
                Some(v) => match check_redis_url(&v) {
                    Ok(()) => Some(Some(RedisUrl(v))),
                    Err(m) => {
                        self.err(u.span(), format!("redis_url: {m}"));
                        None
                    }
                },
                None => None,
            },
        };
        let on_redis_error = match on_redis_error {
            None => Some(OnRedisError::Local),
            Some(w) => {
                let parsed = parse_word(
                    "on_redis_error",
                    w.get_ref(),
                    &OnRedisError::ALL,
                    OnRedisError::as_str,
                );
                parsed.map_err(|m| self.err(w.span(), m)).ok()
            }
        };
        let timeout = self.positive_duration(timeout, Duration::from_millis(100), "timeout");
        let limits = match limits {
            None => Some(Vec::new()),
            Some(list) => self.limits(list.get_ref()),
        };
        Some(RateLimit {
            redis_url: redis_url?,
            on_redis_error: on_redis_error?,
            timeout: timeout?,
            limits: limits?,
        })
    }

    /// A `limits` list (defaults or a route's): every entry checked, names
    /// unique in the list, and equal rate, burst and key wherever a name is
    /// used again (the bucket is (name, key value), so one name is one
    /// budget).
    pub(super) fn limits(&mut self, list: &[Spanned<RawLimit>]) -> Option<Vec<Limit>> {
        let mut out = Vec::with_capacity(list.len());
        let mut ok = true;
        let mut here: HashSet<String> = HashSet::new();
        for raw in list {
            let span = raw.span();
            let Some(limit) = self.limit(raw) else {
                ok = false;
                continue;
            };
            if !here.insert(limit.name.clone()) {
                self.err(
                    span,
                    format!("limit name {:?} is used twice in one list; every limit of a route needs its own name", limit.name),
                );
                ok = false;
                continue;
            }
            match self.limit_names.get(&limit.name) {
                Some((first, at))
                    if first.rate != limit.rate
                        || first.burst != limit.burst
                        || first.key != limit.key =>
                {
                    let (line, col) = self.sink.position(at.start);
                    let msg = format!(
                        "limit {:?} is defined at {line}:{col} with key = {:?}, rate = {:?}, burst = {}; limits sharing a name share one budget, so key, rate and burst must be equal (or give this one its own name)",
                        limit.name,
                        first.key.to_string(),
                        first.rate.to_string(),
                        first.burst
                    );
                    self.err(span, msg);
                    ok = false;
                    continue;
                }
                Some(_) => {}
                None => {
                    self.limit_names
                        .insert(limit.name.clone(), (limit.clone(), span));
                }
            }
            out.push(limit);
        }
        ok.then_some(out)
    }

    /// One limit: name, key, rate and burst (default: the rate's count).
    fn limit(&mut self, raw: &Spanned<RawLimit>) -> Option<Limit> {
        let span = raw.span();
        let RawLimit {
            name,
            key,
            rate,
            burst,
        } = raw.get_ref();
        let name = match name {
            None => {
                self.err(
                    span.clone(),
                    "limit has no name; add name = \"...\" (limits with one name share a budget)",
                );
                None
            }
            Some(n) => match self.expand(n) {
                Some(v) if v.trim().is_empty() => {
                    self.err(n.span(), "limit name is empty");
                    None
                }
                Some(v) if v.contains(['{', '}']) || v.chars().any(char::is_control) => {
                    self.err(
                        n.span(),
                        format!("limit name {v:?}: braces and control characters are not allowed"),
                    );
                    None
                }
                v => v,
            },
        };
        let key = match key {
            None => {
                self.err(span.clone(), "limit has no key; add key = \"ip\", \"route\" or \"claim:app_metadata.company_id\"");
                None
            }
            Some(k) => match self.expand(k) {
                Some(v) => match parse_limit_key(&v) {
                    Ok(key) => Some(key),
                    Err(m) => {
                        self.err(k.span(), m);
                        None
                    }
                },
                None => None,
            },
        };
        let rate = match rate {
            None => {
                self.err(
                    span.clone(),
                    "limit has no rate; add rate = \"100/s\" (or \"/m\", \"/h\")",
                );
                None
            }
            Some(r) => match self.expand(r) {
                Some(v) => match parse_rate(&v) {
                    Ok(rate) => Some(rate),
                    Err(m) => {
                        self.err(r.span(), m);
                        None
                    }
                },
                None => None,
            },
        };
        let burst = match (burst, rate) {
            (None, Some(r)) => Some(r.count),
            (None, None) => None,
            (Some(b), _) => match u32::try_from(*b.get_ref()) {
                Ok(v) if v >= 1 => Some(v),
                _ => {
                    self.err(
                        b.span(),
                        "burst must be a whole number of at least 1 (the requests that may pass at once from idle), e.g. burst = 100",
                    );
                    None
                }
            },
        };
        Some(Limit {
            name: name?,
            key: key?,
            rate: rate?,
            burst: burst?,
        })
    }
}
