//! `${VAR}` and `${VAR:-default}` expansion of string values.
//!
//! Expansion runs on parsed string values, never on the raw file, so an
//! environment value can never change the TOML structure. `$${` stands for
//! a literal `${`; any other `$` is kept as it is. `${VAR}` with `VAR` set
//! to the empty string expands to the empty string; `${VAR:-d}` gives `d`
//! when `VAR` is unset or empty (as in the shell).

use thiserror::Error;

/// Why a value could not be expanded. `offset` is the byte offset of the
/// offending `$` within the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandError {
    /// `${VAR}` with `VAR` unset and no default.
    #[error(
        "environment variable {name} is not set (set it, or give a default: ${{{name}:-value}})"
    )]
    Unset {
        /// The variable.
        name: String,
        /// Where its `$` is.
        offset: usize,
    },
    /// `${` without a closing `}` or with an invalid name.
    #[error("{reason} (write ${{NAME}} or ${{NAME:-default}}; $${{ for a literal ${{)")]
    Syntax {
        /// What is wrong.
        reason: String,
        /// Where the `$` is.
        offset: usize,
    },
}

impl ExpandError {
    /// Byte offset of the problem within the value.
    pub fn offset(&self) -> usize {
        match self {
            ExpandError::Unset { offset, .. } | ExpandError::Syntax { offset, .. } => *offset,
        }
    }
}

/// The names of the variables in `value` whose `${VAR:-default}` fell
/// back to its default (unset or empty), in order; empty when the value
/// does not expand.
pub(crate) fn defaulted(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    // `${VAR:-d}` falls back exactly when VAR is unset or empty.
    references(value)
        .into_iter()
        .filter(|(name, has_default)| *has_default && lookup(name).is_none_or(|v| v.is_empty()))
        .map(|(name, _)| name)
        .collect()
}

/// The names of the variables in `value` that are unset and have no
/// default, in order (what makes [`expand`] fail with `Unset`).
pub(crate) fn unset(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    references(value)
        .into_iter()
        .filter(|(name, has_default)| !has_default && lookup(name).is_none())
        .map(|(name, _)| name)
        .collect()
}

/// True when `value` is one `${VAR}` and nothing else.
pub(crate) fn is_whole_reference(value: &str) -> bool {
    matches!(references(value).as_slice(), [(name, false)] if value == format!("${{{name}}}"))
}

/// Every `${NAME}` / `${NAME:-d}` in `value` (skipping `$${`), with
/// whether it has a default; stops at a syntax error.
fn references(value: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            rest = tail;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            rest = after;
            continue;
        };
        let Some(close) = body_start.find('}') else {
            break;
        };
        let body = &body_start[..close];
        let (name, has_default) = match body.find(":-") {
            Some(j) => (&body[..j], true),
            None => (body, false),
        };
        if !is_var_name(name) {
            break;
        }
        out.push((name.to_owned(), has_default));
        rest = &body_start[close + 1..];
    }
    out
}

/// Expands every `${...}` in `value` using `lookup`.
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    if !value.contains('$') {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut base = 0;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let at = base + i;
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            let consumed = i + 3;
            base += consumed;
            rest = tail;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            out.push('$');
            base += i + 1;
            rest = after;
            continue;
        };
        let Some(close) = body_start.find('}') else {
            return Err(ExpandError::Syntax {
                reason: "unterminated ${".into(),
                offset: at,
            });
        };
        let body = &body_start[..close];
        let (name, default) = match body.find(":-") {
            Some(j) => (&body[..j], Some(&body[j + 2..])),
            None => (body, None),
        };
        if !is_var_name(name) {
            return Err(ExpandError::Syntax {
                reason: format!("invalid variable name {name:?} in ${{{body}}}"),
                offset: at,
            });
        }
        match (lookup(name), default) {
            (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(ExpandError::Unset {
                    name: name.to_owned(),
                    offset: at,
                });
            }
        }
        let consumed = i + 2 + close + 1;
        base += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("${SET}", Ok("value")),
            ("a-${SET}-b", Ok("a-value-b")),
            ("${UNSET:-dflt}", Ok("dflt")),
            ("${SET:-dflt}", Ok("value")),
            ("${EMPTY}", Ok("")),
            ("${EMPTY:-dflt}", Ok("dflt")),
            ("${UNSET:-}", Ok("")),
            ("${UNSET:-http://x:80}", Ok("http://x:80")),
            ("cost $5", Ok("cost $5")),
            ("$${SET}", Ok("${SET}")),
            ("${UNSET}", Err("UNSET")),
            ("x${SET", Err("unterminated")),
            ("${1BAD}", Err("invalid variable name")),
        ];
        for (input, want) in cases {
            let got = expand(input, &env);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(&g, w, "input {input:?}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "input {input:?}: {e}"),
                (g, w) => panic!("input {input:?}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn references_defaults_and_unset_names() {
        assert_eq!(
            defaulted("${UNSET:-a}-${SET:-b}-${EMPTY:-c}", &env),
            ["UNSET", "EMPTY"]
        );
        assert_eq!(defaulted("$${UNSET:-a}", &env), Vec::<String>::new());
        assert_eq!(unset("x${A}y${SET}${B:-}${C}", &env), ["A", "C"]);
        assert!(is_whole_reference("${A}"));
        assert!(!is_whole_reference("${A:-x}"));
        assert!(!is_whole_reference("http://${A}"));
    }

    #[test]
    fn error_offset_points_at_the_dollar() {
        let e = expand("abc ${NOPE}", &env).unwrap_err();
        assert_eq!(e.offset(), 4);
        let e = expand("${SET} ${NOPE:-x} ${GONE}", &env).unwrap_err();
        assert_eq!(e.offset(), 18);
    }
}
