//! Each `[[routes]]` entry: name, prefix, upstream, auth word, methods,
//! CORS, timeout, TLS roots, injected headers, upgrades and limits; and,
//! once every route is read, the warning for a route under a weaker one
//! (README "Routes").

use std::time::Duration;

use http::{HeaderName, Method};
use toml::Spanned;

use super::{AuthFact, Validator};
use crate::config::model::{AuthMode, Cors, Injection, Limit, LimitKey, Route};
use crate::config::parse::{
    check_prefix, is_label_safe, parse_claim_path, parse_method, parse_upgrade, parse_upstream,
    parse_word, segment_prefix,
};
use crate::config::raw::{RawInject, RawRoute};

/// `name` backed by static text, so that cloning it into every forwarded
/// request copies two words and writes no shared reference count (a name
/// parsed at run time is a reference-counted buffer that every worker
/// would write on every request). Each distinct name is leaked once, for
/// the life of the process; configs name a handful, and a reload that
/// names them again reuses them.
fn interned(name: &HeaderName) -> HeaderName {
    static NAMES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let text = match names.get(name.as_str()) {
        Some(t) => *t,
        None => {
            let t: &'static str = Box::leak(name.as_str().into());
            names.insert(t);
            t
        }
    };
    // A valid name's own text, lower case: `from_static` accepts it.
    HeaderName::from_static(text)
}

/// Header names an injection may never use: hop-by-hop (RFC 9110 §7.6.1),
/// framing, and the headers the gateway itself owns.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "host",
    "content-length",
    "authorization",
    "cookie",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

impl Validator<'_> {
    /// One `[[routes]]` entry, against `cors` (the `[cors]` defaults, when
    /// valid) and the default limits; `None` when anything in it is wrong.
    pub(super) fn route(
        &mut self,
        raw: Spanned<RawRoute>,
        cors: Option<&Cors>,
        default_limits: Option<&[Limit]>,
    ) -> Option<Route> {
        let span = raw.span();
        let RawRoute {
            name,
            prefix,
            upstream,
            auth,
            strip_prefix,
            methods,
            cors_origins,
            timeout,
            http2,
            ca_file,
            inject,
            upgrades,
            limits,
        } = raw.into_inner();
        let mut ok = true;

        let name = match name {
            Some(n) => match self.expand(&n) {
                Some(v) if v.trim().is_empty() => {
                    self.err(n.span(), "route name is empty");
                    None
                }
                Some(v) if !is_label_safe(&v) => {
                    self.err(
                        n.span(),
                        format!("route name {v:?} may hold only ASCII letters, digits, '-', '_', '.' and ':' (it is a metrics label and a log field), e.g. \"user-service\""),
                    );
                    None
                }
                Some(v) if !self.names.insert(v.clone()) => {
                    self.err(
                        n.span(),
                        format!("route name {v:?} is used twice; names must be unique"),
                    );
                    None
                }
                v => v.map(|v| (v, n.span())),
            },
            None => {
                self.err(
                    span.clone(),
                    "route has no name; add name = \"...\" (used in logs and metrics)",
                );
                None
            }
        };

        let prefix = match prefix {
            Some(p) => self.expand(&p).and_then(|v| match check_prefix(&v) {
                Ok(()) if !self.prefixes.insert(v.clone()) => {
                    self.err(
                        p.span(),
                        format!(
                            "prefix {v:?} is used by an earlier route; each prefix may appear once"
                        ),
                    );
                    None
                }
                Ok(()) => Some((v, p.span())),
                Err(m) => {
                    self.err(p.span(), m);
                    None
                }
            }),
            None => {
                self.err(
                    span.clone(),
                    "route has no prefix; add prefix = \"/api/v1/...\"",
                );
                None
            }
        };

        let upstream_span = upstream.as_ref().map(|u| u.span());
        let upstream = match upstream {
            Some(u) => match self.expand(&u) {
                Some(v) if v.is_empty() => Some(None),
                Some(v) => match parse_upstream(&v) {
                    Ok(up) => Some(Some(up)),
                    Err(m) => {
                        self.err(u.span(), format!("upstream: {m}"));
                        None
                    }
                },
                None => None,
            },
            None => {
                self.err(span.clone(), "route has no upstream; add upstream = \"http://host:port\" (an empty string answers 501)");
                None
            }
        };
        if let (Some(None), Some(sp)) = (&upstream, &upstream_span) {
            self.warn(
                sp.clone(),
                "upstream is empty: this route answers 501 Not Implemented",
            );
        }

        let auth_mode = match auth {
            None => Some(AuthMode::Required),
            Some(a) => parse_word("auth", a.get_ref(), &AuthMode::ALL, AuthMode::as_str)
                .map_err(|m| self.err(a.span(), m))
                .ok(),
        };

        let methods = match methods {
            None => Some(None),
            Some(list) => {
                let mut out: Vec<Method> = Vec::new();
                let mut mok = true;
                for (m, sp) in self.string_list(list.get_ref()) {
                    match parse_method(&m) {
                        Ok(method) => {
                            if !out.contains(&method) {
                                out.push(method);
                            }
                        }
                        Err(e) => {
                            self.err(sp, e);
                            mok = false;
                        }
                    }
                }
                if mok && out.is_empty() {
                    self.err(list.span(), "methods is empty: the route would refuse everything; remove the key to allow all methods");
                    mok = false;
                }
                mok.then_some(Some(out))
            }
        };

        let route_cors = match (cors, cors_origins) {
            (None, _) => None,
            (Some(base), None) => Some(base.clone()),
            (Some(base), Some(list)) => {
                let origins = self.origins(list.get_ref(), base.allow_credentials, "cors_origins");
                origins.map(|o| Cors {
                    allowed_origins: o,
                    ..base.clone()
                })
            }
        };

        let timeout = match timeout {
            None => Some(None),
            Some(t) => self
                .positive_duration(Some(t), Duration::ZERO, "timeout")
                .map(Some),
        };

        let http2 = http2.is_some_and(Spanned::into_inner);
        let ca_file = match ca_file {
            None => Some(None),
            Some(c) => {
                if let Some(Some(up)) = &upstream
                    && !up.https
                {
                    self.warn(c.span(), "ca_file only applies to https:// upstreams");
                }
                self.path(&c, "ca_file", true).map(Some)
            }
        };

        let inject = match inject {
            None => Some(Vec::new()),
            Some(table) => {
                let injections = self.injections(table.get_ref());
                if let (Some(AuthMode::None), Some(list)) = (auth_mode, &injections)
                    && !list.is_empty()
                {
                    self.warn(table.span(), "auth = \"none\" never verifies a token, so nothing is injected on this route (the headers are still stripped from clients)");
                }
                injections
            }
        };

        if let (Some((n, _)), Some((p, psp)), Some(Some(up)), Some(a)) =
            (&name, &prefix, &upstream, auth_mode)
        {
            self.auth_facts.push(AuthFact {
                name: n.clone(),
                prefix: p.clone(),
                prefix_span: psp.clone(),
                auth: a,
                server: (up.https, up.authority.as_str().to_ascii_lowercase()),
            });
        }
        let upgrades = match upgrades {
            None => Some(Vec::new()),
            Some(list) => self.upgrades(list.get_ref()),
        };

        // A route's own limits replace the defaults, as `cors_origins`
        // replaces `[cors]` (README "Rate limits").
        let limits = match limits {
            None => default_limits.map(<[Limit]>::to_vec),
            Some(list) => {
                let own = self.limits(list.get_ref());
                if let (Some(AuthMode::None), Some(own)) = (auth_mode, &own) {
                    for (l, raw) in own.iter().zip(list.get_ref()) {
                        if matches!(l.key, LimitKey::Claim(_)) {
                            self.warn(raw.span(), format!("limit {:?}: auth = \"none\" never verifies a token, so this claim-keyed limit keys every caller by client IP", l.name));
                        }
                    }
                }
                own
            }
        };

        ok &= name.is_some() && prefix.is_some() && upstream.is_some() && auth_mode.is_some();
        if !ok {
            return None;
        }
        Some(Route {
            name: name?.0,
            prefix: prefix?.0,
            upstream: upstream?,
            auth: auth_mode?,
            strip_prefix: strip_prefix.is_some_and(Spanned::into_inner),
            methods: methods?,
            cors: route_cors?,
            timeout: timeout?,
            http2,
            ca_file: ca_file?,
            inject: inject?,
            upgrades: upgrades?,
            limits: limits?,
        })
    }

    /// Warns, at the child's prefix, when a route with weaker auth is the
    /// parent prefix of a stronger one on the same upstream server. The
    /// router matches the path as sent, the upstream as it parses it; where
    /// the two differ (`/x/..\ingest` to a WHATWG URL parser, `/x/..;/ingest`
    /// to Tomcat: refused by `routing::path_problem`, but parsers disagree
    /// in more ways) a request the weaker route let through reaches the
    /// stronger route's handler. Names the nearest such parent.
    pub(super) fn weaker_parent_warnings(&mut self) {
        let strength = |a: AuthMode| match a {
            AuthMode::None => 0,
            AuthMode::Optional => 1,
            AuthMode::Required => 2,
        };
        let mut found = Vec::new();
        for child in &self.auth_facts {
            let parent = self
                .auth_facts
                .iter()
                .filter(|p| {
                    p.prefix != child.prefix
                        && p.server == child.server
                        && strength(p.auth) < strength(child.auth)
                        && segment_prefix(&child.prefix, &p.prefix)
                })
                .max_by_key(|p| p.prefix.len());
            if let Some(p) = parent {
                found.push((
                    child.prefix_span.clone(),
                    format!(
                        "route {:?} (auth = \"{}\") is under route {:?} ({}, auth = \"{}\") on the same upstream: a path the router gives to {:?} but the upstream reads as {}/... would skip {:?}'s auth; give {:?} auth = \"{}\" too, or give {:?} its own upstream",
                        child.name,
                        child.auth.as_str(),
                        p.name,
                        p.prefix,
                        p.auth.as_str(),
                        p.name,
                        child.prefix,
                        child.name,
                        p.name,
                        child.auth.as_str(),
                        child.name,
                    ),
                ));
            }
        }
        for (span, msg) in found {
            self.warn(span, msg);
        }
    }

    /// A route's `upgrades`: each a protocol token checked by
    /// `parse_upgrade` (lower-cased, never `h2c`), deduplicated;
    /// `websocket` is always allowed, so listing it changes nothing.
    fn upgrades(&mut self, list: &[Spanned<String>]) -> Option<Vec<String>> {
        let mut ok = true;
        let mut out: Vec<String> = Vec::new();
        for (token, span) in self.string_list(list) {
            match parse_upgrade(&token) {
                Ok(lower) => {
                    if !out.contains(&lower) {
                        out.push(lower);
                    }
                }
                Err(m) => {
                    self.err(span, format!("upgrades: {m}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A route's `inject` table in file order: header names that are valid,
    /// not reserved and not repeated, each with a valid claim path.
    fn injections(
        &mut self,
        table: &std::collections::BTreeMap<Spanned<String>, Spanned<RawInject>>,
    ) -> Option<Vec<Injection>> {
        let mut ok = true;
        let mut out: Vec<Injection> = Vec::new();
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (key, value) in entries {
            let header = match HeaderName::from_bytes(key.get_ref().as_bytes()) {
                Ok(h) if RESERVED_HEADERS.contains(&h.as_str()) => {
                    self.err(key.span(), format!("header {:?} cannot be injected: the gateway manages it (hop-by-hop, framing, or identity of the request)", key.get_ref()));
                    None
                }
                Ok(h) => {
                    if out.iter().any(|i| i.header == h) {
                        self.err(
                            key.span(),
                            format!(
                                "header {:?} is injected twice (header names are case-insensitive)",
                                key.get_ref()
                            ),
                        );
                        None
                    } else {
                        Some(interned(&h))
                    }
                }
                Err(_) => {
                    self.err(
                        key.span(),
                        format!("{:?} is not a valid header name", key.get_ref()),
                    );
                    None
                }
            };
            let (claim, required) = match value.get_ref() {
                RawInject::Claim(c) => (c.as_str(), false),
                RawInject::Full { claim, required } => (claim.as_str(), required.unwrap_or(false)),
            };
            let claim = match parse_claim_path(claim) {
                Ok(c) => Some(c),
                Err(m) => {
                    self.err(value.span(), m);
                    None
                }
            };
            match (header, claim) {
                (Some(header), Some(claim)) => out.push(Injection {
                    header,
                    claim,
                    required,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }
}
