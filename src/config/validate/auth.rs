//! `[auth]`: audiences, issuer, leeway, required claims, the HMAC secret
//! (inline, a list during a rotation, or `secret_file`), `jwks_url` and the
//! algorithm allowlist, checked against each other (README "Auth").

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::Validator;
use crate::config::env;
use crate::config::model::{Auth, HmacKey, Secret, SecretSource, is_hmac};
use crate::config::parse::{jwks_uri, parse_algorithm, secret_lines, secret_problem};
use crate::config::raw::{OneOrMany, RawAuth, Secrets};
use crate::config::schema;
use crate::config::values::{MAX_SECRET_FILE, is_world_writable, read_regular_file};

impl Validator<'_> {
    /// `[auth]`. `first_authenticated` is where the first route that
    /// verifies tokens says so (its `auth` value, or the route when it
    /// relies on the default `"required"`): a key is needed then.
    pub(super) fn auth(
        &mut self,
        raw: Option<Spanned<RawAuth>>,
        first_authenticated: Option<Range<usize>>,
    ) -> Option<Auth> {
        let has_section = raw.is_some();
        let (section_span, raw) = match raw {
            Some(r) => (r.span(), r.into_inner()),
            None => (
                0..0,
                RawAuth {
                    audience: None,
                    issuer: None,
                    algorithms: None,
                    secret: None,
                    secret_file: None,
                    jwks_url: None,
                    leeway: None,
                    required_claims: None,
                },
            ),
        };
        let RawAuth {
            audience,
            issuer,
            algorithms,
            secret,
            secret_file,
            jwks_url,
            leeway,
            required_claims,
        } = raw;
        let needs_keys = first_authenticated.is_some();
        let mut ok = true;

        let audience = match audience {
            None => vec!["authenticated".to_owned()],
            Some(a) => {
                let span = a.span();
                let list: Vec<String> = match a.into_inner() {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(v) => v,
                };
                let mut out = Vec::new();
                for item in list {
                    match self.expand_value(&Spanned::new(span.clone(), item)) {
                        Ok(v) if !v.is_empty() => out.push(v),
                        Ok(_) => {}
                        Err(e) => {
                            self.err(span.clone(), e.to_string());
                            ok = false;
                        }
                    }
                }
                if out.is_empty() && ok {
                    self.err(span, "audience is empty; tokens must name an audience (Supabase user tokens carry \"authenticated\")");
                    ok = false;
                }
                out
            }
        };

        let issuer = match issuer {
            None => None,
            Some(s) => match self.expand(&s) {
                Some(v) if v.is_empty() => None,
                Some(v) => Some(v),
                None => {
                    ok = false;
                    None
                }
            },
        };

        let leeway_span = leeway.as_ref().map_or(section_span.clone(), |l| l.span());
        let leeway = self.duration(leeway, Duration::ZERO, "leeway");
        if let Some(l) = leeway
            && l > Duration::from_secs(300)
        {
            self.warn(
                leeway_span,
                "leeway is over 5 minutes: expired tokens stay valid that much longer",
            );
        }

        let required_claims = match required_claims {
            None => vec!["sub".to_owned(), "aud".to_owned(), "exp".to_owned()],
            Some(list) => {
                let mut out = Vec::new();
                for (c, span) in self.string_list(list.get_ref()) {
                    if c.is_empty() {
                        self.err(span, "required_claims holds an empty claim name");
                        ok = false;
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        };

        // The HMAC secret.
        let mut hmac = None;
        if let (Some(s), Some(f)) = (&secret, &secret_file) {
            let _ = s;
            self.err(f.span(), "set either secret or secret_file, not both");
            ok = false;
        }
        if let Some(s) = &secret {
            // Each entry expanded; empty ones (an unset `${OLD_SECRET:-}`)
            // dropped, so a rotation can run through the environment.
            let entries: Vec<(Option<usize>, Spanned<String>)> = match s.get_ref() {
                Secrets::One(v) => vec![(None, Spanned::new(s.span(), v.clone()))],
                Secrets::Many(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Some(i + 1), v.clone()))
                    .collect(),
            };
            let mut keys = Vec::new();
            for (position, entry) in &entries {
                let label = position.map_or("secret".to_owned(), |p| format!("secret {p}"));
                match self.expand_value(entry) {
                    Ok(v) if v.is_empty() => {}
                    Ok(v) => {
                        if self.check_secret(v.as_bytes(), entry.span(), *position, &label) {
                            keys.push(Secret::new(v.into_bytes()));
                        } else {
                            ok = false;
                        }
                    }
                    Err(env::ExpandError::Unset { .. }) if self.opts.dev => {}
                    Err(e) => {
                        let at = self.offset_in_value(entry, e.offset());
                        self.err(at..at, format!("{label}: {e}"));
                        ok = false;
                    }
                }
            }
            if ok {
                hmac = self.hmac_key(keys, SecretSource::Inline, s.span());
            }
        } else if let Some(f) = &secret_file {
            if let Some(path) = self.path(f, "secret_file", false) {
                let read = if self.placeholders.contains(&f.span().start) {
                    Ok(schema::placeholder("auth.secret").as_bytes().to_vec())
                } else {
                    read_regular_file(&path, MAX_SECRET_FILE)
                };
                match read {
                    Ok(bytes) => {
                        if is_world_writable(&path) {
                            self.warn(
                                f.span(),
                                format!(
                                    "secret_file: {} is world-writable: anyone on this host can replace the key (chmod o-w)",
                                    path.display()
                                ),
                            );
                        }
                        let lines = secret_lines(bytes);
                        let several = lines.len() > 1;
                        let mut keys = Vec::new();
                        for (line, bytes) in lines {
                            let label = format!("secret_file line {line}");
                            let position = several.then_some(keys.len() + 1);
                            if self.check_secret(&bytes, f.span(), position, &label) {
                                keys.push(Secret::new(bytes));
                            } else {
                                ok = false;
                            }
                        }
                        if ok {
                            hmac = self.hmac_key(keys, SecretSource::File(path), f.span());
                        }
                    }
                    Err(e) if self.opts.allow_missing_env => {
                        // It may exist only where the gateway runs: checked
                        // as if it held a valid secret.
                        self.warn(
                            f.span(),
                            format!(
                                "secret_file: cannot read {}: {e} (--allow-missing-env)",
                                path.display()
                            ),
                        );
                        let placeholder = schema::placeholder("auth.secret").as_bytes().to_vec();
                        hmac = self.hmac_key(
                            vec![Secret::new(placeholder)],
                            SecretSource::File(path),
                            f.span(),
                        );
                    }
                    Err(e) => {
                        self.err(
                            f.span(),
                            format!("secret_file: cannot read {}: {e}", path.display()),
                        );
                        ok = false;
                    }
                }
            } else {
                ok = false;
            }
        }

        let jwks = match &jwks_url {
            None => None,
            Some(s) => self
                .optional_uri(s, "jwks_url", jwks_uri)
                .unwrap_or_else(|()| {
                    ok = false;
                    None
                }),
        };

        if hmac.is_none() && jwks.is_none() && ok && self.opts.dev && secret_file.is_none() {
            hmac = Some(HmacKey {
                secret: ephemeral_secret(),
                source: SecretSource::Ephemeral,
                older: Vec::new(),
            });
            let at = secret.as_ref().map_or(section_span.clone(), |s| s.span());
            self.warn(at, "no HMAC secret is set: --dev uses an ephemeral random secret; tokens minted now stop working when the gateway restarts");
        }

        if let Some(route_span) = &first_authenticated
            && hmac.is_none()
            && jwks.is_none()
            && ok
        {
            // Point at the [auth] section when there is one, else at the
            // route that needs it.
            let at = match (&secret, has_section) {
                (Some(s), _) => s.span(),
                (None, true) => section_span.clone(),
                (None, false) => route_span.clone(),
            };
            self.err(at, "routes require authentication but no key is configured: set [auth].secret (e.g. secret = \"${GATEWAY_JWT_SECRET}\"), secret_file or jwks_url");
            ok = false;
        }

        // Algorithms.
        let algorithms = match algorithms {
            None => {
                let mut v = Vec::new();
                if hmac.is_some() || secret_file.is_some() {
                    v.push(jsonwebtoken::Algorithm::HS256);
                }
                if jwks.is_some() {
                    v.extend([
                        jsonwebtoken::Algorithm::ES256,
                        jsonwebtoken::Algorithm::RS256,
                    ]);
                }
                v
            }
            Some(list) => {
                let span = list.span();
                let mut out = Vec::new();
                for (name, span) in self.string_list(list.get_ref()) {
                    match parse_algorithm(&name) {
                        Ok(a) => {
                            if !out.contains(&a) {
                                out.push(a);
                            }
                        }
                        Err(m) => {
                            self.err(span, m);
                            ok = false;
                        }
                    }
                }
                if out.is_empty() && ok {
                    self.err(
                        span.clone(),
                        "algorithms is empty; list at least one, e.g. [\"HS256\"]",
                    );
                    ok = false;
                }
                let has_hmac_alg = out.iter().any(|a| is_hmac(*a));
                let has_asym_alg = out.iter().any(|a| !is_hmac(*a));
                if ok && has_hmac_alg && hmac.is_none() && secret_file.is_none() && needs_keys {
                    self.err(
                        span.clone(),
                        "algorithms allows HMAC (HS*) but no secret or secret_file is set",
                    );
                    ok = false;
                }
                if ok && has_asym_alg && jwks.is_none() {
                    self.err(span.clone(), "algorithms allows asymmetric algorithms but no jwks_url is set to fetch their keys");
                    ok = false;
                }
                if ok && jwks.is_some() && !has_asym_alg {
                    self.warn(span.clone(), "jwks_url is set but algorithms allows no asymmetric algorithm (add \"ES256\" or \"RS256\")");
                }
                if ok && hmac.is_some() && !has_hmac_alg {
                    self.warn(span, "an HMAC secret is set but algorithms allows no HS* algorithm; the secret is unused");
                }
                out
            }
        };

        if !ok {
            return None;
        }
        Some(Auth {
            audience,
            issuer,
            algorithms,
            hmac,
            jwks_url: jwks,
            leeway: leeway?,
            required_claims,
        })
    }

    /// Refuses a secret that [`secret_problem`] finds wrong; `position`
    /// (1-based, `None` when it is the only one) prefixes the message with
    /// `label`, never with the value.
    fn check_secret(
        &mut self,
        secret: &[u8],
        span: Range<usize>,
        position: Option<usize>,
        label: &str,
    ) -> bool {
        match secret_problem(secret) {
            None => true,
            Some(m) if position.is_none() => {
                self.err(span, m);
                false
            }
            Some(m) => {
                self.err(span, format!("{label}: {m}"));
                false
            }
        }
    }

    /// The HMAC key from the secrets left after dropping empty ones (`None`
    /// when none is left), with a warning when more than two are listed:
    /// a rotation needs two, more means an old one was never removed.
    fn hmac_key(
        &mut self,
        keys: Vec<Secret>,
        source: SecretSource,
        span: Range<usize>,
    ) -> Option<HmacKey> {
        let mut keys = keys.into_iter();
        let secret = keys.next()?;
        let older: Vec<Secret> = keys.collect();
        if older.len() > 1 {
            self.warn(
                span,
                format!(
                    "{} HMAC secrets are listed; a rotation needs two (the new one first, the old one until its tokens expire): remove the ones no token is signed with any more (nyro_token_verifications_total shows which positions still verify)",
                    older.len() + 1
                ),
            );
        }
        Some(HmacKey {
            secret,
            source,
            older,
        })
    }
}

/// A random secret for `serve --dev` when none is set (this process only).
fn ephemeral_secret() -> Secret {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    Secret::new(format!("{a}{b}").into_bytes())
}
