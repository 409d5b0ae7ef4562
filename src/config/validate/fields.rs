//! Reading one value: `${VAR}` expansion reported at the `$`, durations,
//! counts, socket addresses, paths and string lists, each reported at its
//! span with the key's name. Every section's checks build on these.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use toml::Spanned;

use super::Validator;
use crate::config::env;
use crate::config::schema;
use crate::config::values::parse_duration;

impl Validator<'_> {
    /// Expands `${VAR}`s in a string value, reporting at the `$`.
    pub(super) fn expand(&mut self, s: &Spanned<String>) -> Option<String> {
        match self.expand_value(s) {
            Ok(v) => Some(v),
            Err(e) => {
                let at = self.offset_in_value(s, e.offset());
                self.sink.error(at..at, e.to_string());
                None
            }
        }
    }

    /// Expands a value, noting (info) each `${VAR:-default}` that fell
    /// back. Under `--allow-missing-env` an unset variable is a warning and
    /// the value becomes the placeholder its key expects: the variable is
    /// the whole value (checked as the placeholder), or sits inside a
    /// longer string (whose own checks are skipped, as the warning says).
    pub(super) fn expand_value(&mut self, s: &Spanned<String>) -> Result<String, env::ExpandError> {
        let text = s.get_ref();
        if !text.contains('$') {
            return Ok(text.clone());
        }
        for name in env::defaulted(text, self.env) {
            if self.defaults_seen.insert(name.clone()) {
                self.sink.info(
                    s.span(),
                    format!("{name} is unset or empty: its ${{{name}:-…}} default is used"),
                );
            }
        }
        match env::expand(text, self.env) {
            Err(env::ExpandError::Unset { .. }) if self.opts.allow_missing_env => {
                let names = env::unset(text, self.env).join(", ");
                let key = self.keys_at.get(&s.span().start).copied().unwrap_or("");
                let value = schema::placeholder(key);
                let message = if key == "auth.secret" {
                    format!(
                        "{names} is not set (--allow-missing-env): auth.secret is checked as if it held a secret of sufficient length"
                    )
                } else if env::is_whole_reference(text) {
                    format!(
                        "{names} is not set (--allow-missing-env): {key} is checked as if it held {value:?}"
                    )
                } else {
                    format!(
                        "{names} is not set (--allow-missing-env): the rest of this {key} value is not checked"
                    )
                };
                self.warn(s.span(), message);
                self.placeholders.insert(s.span().start);
                Ok(value.to_owned())
            }
            other => other,
        }
    }

    /// Byte offset in the file of byte `inner` of a string value (exact
    /// when no escape precedes it, else the value's start).
    pub(super) fn offset_in_value(&self, s: &Spanned<String>, inner: usize) -> usize {
        let span = s.span();
        let raw = self.sink.src().get(span.clone()).unwrap_or("");
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        match (raw.get(quote..), s.get_ref().get(..inner)) {
            (Some(body), Some(prefix)) if body.starts_with(prefix) => span.start + quote + inner,
            _ => span.start,
        }
    }

    /// An error at `span`.
    pub(super) fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.sink.error(span, msg);
    }

    /// A warning at `span`.
    pub(super) fn warn(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.sink.warning(span, msg);
    }

    /// A duration value, or `default` when absent.
    pub(super) fn duration(
        &mut self,
        s: Option<Spanned<String>>,
        default: Duration,
        key: &str,
    ) -> Option<Duration> {
        let Some(s) = s else { return Some(default) };
        let text = self.expand(&s)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    /// A duration that must be more than zero, or `default` when absent.
    pub(super) fn positive_duration(
        &mut self,
        s: Option<Spanned<String>>,
        default: Duration,
        key: &str,
    ) -> Option<Duration> {
        let span = s.as_ref().map(|s| s.span());
        let d = self.duration(s, default, key)?;
        if d.is_zero() {
            self.err(
                span.unwrap_or(0..0),
                format!("{key} must be more than zero"),
            );
            return None;
        }
        Some(d)
    }

    /// A count of at least 1 (connections), or `default` when absent.
    pub(super) fn count(
        &mut self,
        n: Option<Spanned<i64>>,
        default: usize,
        key: &str,
    ) -> Option<usize> {
        let Some(n) = n else { return Some(default) };
        match usize::try_from(*n.get_ref()) {
            Ok(v) if v >= 1 => Some(v),
            _ => {
                self.err(
                    n.span(),
                    format!("{key} must be a whole number of at least 1, e.g. {key} = {default}"),
                );
                None
            }
        }
    }

    /// A URL value that may expand to empty (then `None`: the feature is
    /// off), checked by `parse`; `Err` once the problem is reported at the
    /// value (or the variable it names is reported unset).
    pub(super) fn optional_uri(
        &mut self,
        s: &Spanned<String>,
        key: &str,
        parse: fn(&str) -> Result<Uri, String>,
    ) -> Result<Option<Uri>, ()> {
        match self.expand(s) {
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => parse(&v).map(Some).map_err(|m| {
                self.err(s.span(), format!("{key}: {m}"));
            }),
            None => Err(()),
        }
    }

    /// An `ip:port`, with a hint for `:8080` and `localhost:8080`.
    pub(super) fn socket_addr(&mut self, s: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        let text = self.expand(s)?;
        match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let hint = if let Some(port) = text.strip_prefix(':') {
                    format!("; to listen on every interface write \"0.0.0.0:{port}\"")
                } else if let Some(port) = text.strip_prefix("localhost:") {
                    format!("; write \"127.0.0.1:{port}\"")
                } else {
                    "; expected ip:port, e.g. \"0.0.0.0:8080\" or \"[::]:8080\"".into()
                };
                self.err(
                    s.span(),
                    format!("{key}: {text:?} is not a socket address{hint}"),
                );
                None
            }
        }
    }

    /// A path, resolved against the config's directory; with `must_exist`,
    /// a file that cannot be read is an error (a warning under
    /// `--allow-missing-env`).
    pub(super) fn path(
        &mut self,
        s: &Spanned<String>,
        key: &str,
        must_exist: bool,
    ) -> Option<PathBuf> {
        let text = self.expand(s)?;
        if text.is_empty() {
            self.err(s.span(), format!("{key} is empty"));
            return None;
        }
        let p = Path::new(&text);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        };
        if must_exist
            && !self.placeholders.contains(&s.span().start)
            && let Err(e) = std::fs::metadata(&full)
        {
            let message = format!("{key}: cannot read {}: {e}", full.display());
            if self.opts.allow_missing_env {
                // It may exist only where the gateway runs.
                self.warn(s.span(), format!("{message} (--allow-missing-env)"));
                return Some(full);
            }
            self.err(s.span(), message);
            return None;
        }
        Some(full)
    }

    /// The entries of a list of strings, expanded, with their spans (an
    /// entry that fails to expand is reported and left out).
    pub(super) fn string_list(&mut self, list: &[Spanned<String>]) -> Vec<(String, Range<usize>)> {
        list.iter()
            .filter_map(|s| Some((self.expand(s)?, s.span())))
            .collect()
    }
}
