//! Parsers for the value formats `gateway.toml` uses: durations (`"250ms"`,
//! `"10s"`, `"2m"`, `"1h"`, `"7d"`) and sizes (`"512KiB"`, `"10MiB"`).
//! Errors say what was expected, for the diagnostic.

use std::time::Duration;

/// Parses `"<number><unit>"`, unit one of `ms`, `s`, `m`, `h`, `d`;
/// compound forms like `"1m30s"` are accepted too.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let expected = "expected a number and a unit, e.g. \"250ms\", \"10s\", \"2m\", \"1h\"";
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
pub fn parse_size(s: &str) -> Result<u64, String> {
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
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
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
