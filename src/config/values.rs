//! Parsers for the value formats `gateway.toml` uses: durations (`"250ms"`,
//! `"10s"`, `"2m"`, `"1h"`, `"7d"`) and sizes (`"512KiB"`, `"10MiB"`).
//! Errors say what was expected, for the diagnostic. Also
//! [`read_regular_file`], the bounded read of a file the config names, and
//! [`redact_userinfo`], how a URL is shown without its password. The
//! parsers that produce the model's types are in `parse.rs`.

use std::time::Duration;

/// Parses `"<number><unit>"`, unit one of `ms`, `s`, `m`, `h`, `d`;
/// compound forms like `"1m30s"` are accepted too.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let expected = "expected a number and a unit, e.g. \"10s\", \"250ms\", \"2m\", \"1h\"";
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty duration ({expected})"));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {s:?} ({expected})"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration {s:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            "" => return Err(format!("duration {s:?} has no unit ({expected})")),
            other => {
                return Err(format!(
                    "unknown unit {other:?} in duration {s:?} ({expected})"
                ));
            }
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Parses `"<number><unit>"`, unit one of `B`, `KiB`, `MiB`, `GiB`, `KB`,
/// `MB`, `GB` (case-insensitive).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let expected = "expected a number and a unit, e.g. \"512KiB\", \"10MiB\", \"1GiB\"";
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(format!("invalid size {s:?} ({expected})"));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("size {s:?} is too large"))?;
    let mult: u64 = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "" => return Err(format!("size {s:?} has no unit ({expected})")),
        other => return Err(format!("unknown unit {other:?} in size {s:?} ({expected})")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Formats a duration the way the config writes it (`"1m30s"`, `"250ms"`).
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    out
}

/// The most a `secret_file` may hold: a key is tens of bytes, and a
/// larger file is surely the wrong one.
pub(crate) const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Why [`read_regular_file`] read nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileReadError {
    /// Missing, unreadable, ...
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A FIFO, socket, device or directory: reading one can block forever
    /// (a FIFO without a writer) or never end (a device).
    #[error("not a regular file (it is {0}); point it at a file")]
    NotRegular(&'static str),
    /// Over the limit.
    #[error("it is larger than {} KiB", .0 / 1024)]
    TooLarge(u64),
}

/// Reads a file the config names, refusing anything but a regular file
/// (following symlinks) and anything over `limit` bytes, so that a reload
/// can never block on it. (A file swapped for a FIFO between the check
/// and the open could still block; only the owner of the directory can
/// do that.)
pub(crate) fn read_regular_file(
    path: &std::path::Path,
    limit: u64,
) -> Result<Vec<u8>, FileReadError> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(FileReadError::NotRegular(file_kind(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(FileReadError::TooLarge(limit));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// "a FIFO", "a directory", ...: what a non-regular file is, for a message.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// True when anyone on the host may write the file (mode `o+w`).
pub(crate) fn is_world_writable(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o002 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// `text` with the userinfo of its authority (RFC 3986 §3.2.1,
/// `user:password@`) replaced by `***@`: a message names the URL that is
/// wrong, never the password in it.
pub fn redact_userinfo(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let rest = &text[start..];
    // The authority ends at the first `/`, `?` or `#`; only `/` is looked
    // for, so a password holding a raw `?` or `#` is hidden too.
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &rest[at..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok: &[(&str, u64)] = &[
            ("250ms", 250),
            ("10s", 10_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("0s", 0),
            ("7d", 604_800_000),
        ];
        for (s, ms) in ok {
            assert_eq!(
                parse_duration(s).unwrap(),
                Duration::from_millis(*ms),
                "{s}"
            );
        }
        for bad in ["", "10", "ten seconds", "5 parsecs", "s", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert!(
            parse_duration("ten seconds")
                .unwrap_err()
                .contains("e.g. \"10s\"")
        );
    }

    #[test]
    fn sizes() {
        let ok: &[(&str, u64)] = &[
            ("10MiB", 10 << 20),
            ("1GiB", 1 << 30),
            ("512kib", 512 << 10),
            ("100B", 100),
            ("2MB", 2_000_000),
        ];
        for (s, n) in ok {
            assert_eq!(parse_size(s).unwrap(), *n, "{s}");
        }
        for bad in ["", "10", "MiB", "10 parsecs", "99999999999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn format_round_trips() {
        for s in ["250ms", "10s", "2m", "1m30s", "1h", "0s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
