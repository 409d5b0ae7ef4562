//! Logs and metrics.
//!
//! Logs: one JSON object per line on stdout (or pretty text for people),
//! level from `GATEWAY_LOG_LEVEL`, else `RUST_LOG`, else `info`. Request
//! lines carry request id, method, path, route, status, duration, user id,
//! company id and client ip; never a token, cookie or secret. The pretty
//! format escapes what is not printable ASCII, as the JSON format's
//! string escapes would.
//!
//! Metrics: lock-free counters per route, rendered as Prometheus text on the
//! admin listener.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line: for log shippers.
    Json,
    /// Coloured, aligned text: for people.
    Pretty,
}

/// Installs the global log subscriber. Safe to call once per process.
pub fn init_logging(format: LogFormat) {
    let (var, value) = ["GATEWAY_LOG_LEVEL", "RUST_LOG"]
        .into_iter()
        .find_map(|k| Some((k, std::env::var(k).ok().filter(|v| !v.is_empty())?)))
        .unwrap_or(("", String::new()));
    let (filter, refused) = match parse_filter(&value) {
        Some(f) => (f, None),
        None => (EnvFilter::new("info"), Some((var, value))),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder
            .fmt_fields(EscapedFields)
            .with_target(false)
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
    };
    if let Some((var, value)) = refused {
        tracing::warn!(
            variable = var,
            value = %value,
            "log level not understood; logging at info. Use a level (error, warn, info, debug, trace) or directives such as \"info,nyro_gw=debug\""
        );
    }
}

/// Field formatting for `--log-format pretty`: `name=value` pairs after the
/// message, like tracing's default, but every character outside printable
/// ASCII escaped as a JSON string escapes it (`\u00f6`, `\u001b`, `\n`),
/// and string values quoted with `"` and `\` escaped. A path, a header or
/// a claim that reaches a field can then neither forge a log line nor
/// send a terminal escape sequence, and the line stays one line of ASCII.
struct EscapedFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for EscapedFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut v = EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct EscapingVisitor<'w> {
    writer: tracing_subscriber::fmt::format::Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl EscapingVisitor<'_> {
    fn field(&mut self, field: &tracing::field::Field, value: &str, quoted: bool) {
        if self.result.is_err() {
            return;
        }
        let mut out = String::with_capacity(value.len() + field.name().len() + 4);
        if !self.first {
            out.push(' ');
        }
        self.first = false;
        let is_message = field.name() == "message";
        if !is_message {
            out.push_str(field.name());
            out.push('=');
        }
        let quoted = quoted && !is_message;
        if quoted {
            out.push('"');
        }
        escape_json_ascii(&mut out, value, quoted);
        if quoted {
            out.push('"');
        }
        self.result = self.writer.write_str(&out);
    }
}

impl tracing::field::Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.field(field, value, true);
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.field(field, &text, false);
    }
}

/// Appends `s` with every character outside printable ASCII escaped as in
/// a JSON string (RFC 8259 §7: `\n`, `\r`, `\t`, else `\uXXXX`, UTF-16
/// surrogate pairs above U+FFFF); with `quoted`, `"` and `\` too.
fn escape_json_ascii(out: &mut String, s: &str, quoted: bool) {
    for c in s.chars() {
        match c {
            '"' | '\\' if quoted => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
}

/// The filter for a `GATEWAY_LOG_LEVEL` / `RUST_LOG` value: `info` when
/// empty; `None` when it is not a filter, or when a bare word in it is not
/// a level (`bogus` would otherwise mean "only the target named bogus",
/// which silences every line).
fn parse_filter(value: &str) -> Option<EnvFilter> {
    if value.is_empty() {
        return Some(EnvFilter::new("info"));
    }
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let bare_words_are_levels = value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('=') && !d.contains("::"))
        .all(|d| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(d)));
    if !bare_words_are_levels {
        return None;
    }
    EnvFilter::try_new(value).ok()
}

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Counters for one route (or for requests that matched none).
#[derive(Debug, Default)]
pub struct RouteStats {
    /// Responses by status class: index 0 is 1xx … 4 is 5xx.
    status: [AtomicU64; 5],
    /// Cumulative-at-render histogram of time to response headers.
    buckets: [AtomicU64; BUCKETS.len()],
    /// Sum of durations in microseconds.
    sum_us: AtomicU64,
}

impl RouteStats {
    /// Records one response.
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.status[class].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }
}

/// Process-wide metrics; routes keep their counters across reloads.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, Arc<RouteStats>>>,
    /// Successful reloads.
    pub reloads_ok: AtomicU64,
    /// Reloads refused because the new config was invalid.
    pub reloads_failed: AtomicU64,
}

impl Metrics {
    /// The counters of the route named `name` (`""` for no route).
    pub fn route(&self, name: &str) -> Arc<RouteStats> {
        let mut map = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn render(&self, generation: u64, ready: bool) -> String {
        let mut out = String::new();
        let map = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        out.push_str("# HELP nyro_requests_total Responses sent, by route and status class.\n# TYPE nyro_requests_total counter\n");
        for (name, s) in &map {
            let route = if name.is_empty() { "(none)" } else { name };
            for (i, c) in s.status.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "nyro_requests_total{{route=\"{route}\",class=\"{}xx\"}} {}",
                    i + 1,
                    c.load(Relaxed)
                );
            }
        }
        out.push_str("# HELP nyro_request_duration_seconds Time to response headers.\n# TYPE nyro_request_duration_seconds histogram\n");
        for (name, s) in &map {
            let route = if name.is_empty() { "(none)" } else { name };
            let mut cum = 0;
            for (b, c) in BUCKETS.iter().zip(&s.buckets) {
                cum += c.load(Relaxed);
                let _ = writeln!(
                    out,
                    "nyro_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cum}"
                );
            }
            let count: u64 = s.status.iter().map(|c| c.load(Relaxed)).sum();
            let _ = writeln!(
                out,
                "nyro_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "nyro_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                s.sum_us.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "nyro_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP nyro_config_generation Generation of the active config (1 at start, +1 per applied reload).\n# TYPE nyro_config_generation gauge\nnyro_config_generation {generation}"
        );
        let _ = writeln!(
            out,
            "# HELP nyro_config_reloads_total Reload attempts by result.\n# TYPE nyro_config_reloads_total counter"
        );
        let _ = writeln!(
            out,
            "nyro_config_reloads_total{{result=\"applied\"}} {}",
            self.reloads_ok.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "nyro_config_reloads_total{{result=\"rejected\"}} {}",
            self.reloads_failed.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP nyro_ready 1 when the gateway is ready to serve.\n# TYPE nyro_ready gauge\nnyro_ready {}",
            u8::from(ready)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_and_directives_parse_and_stray_words_do_not() {
        for ok in [
            "",
            "info",
            "WARN",
            "warn,nyro_gw::cmd::serve=info",
            "nyro_gw=debug",
            "off",
        ] {
            assert!(parse_filter(ok).is_some(), "{ok}");
        }
        for bad in ["bogus", "verbose", "info,loud", "nyro_gw=[", "info=x=y"] {
            assert!(parse_filter(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn pretty_fields_escape_like_json_strings() {
        for (input, quoted, want) in [
            ("plain /a/b", true, "plain /a/b"),
            ("j\u{f6}hn", true, "j\\u00f6hn"),
            ("\u{1b}[31m", true, "\\u001b[31m"),
            ("a\nb\rc\td\0", true, "a\\nb\\rc\\td\\u0000"),
            ("q\"b\\", true, "q\\\"b\\\\"),
            ("q\"b\\", false, "q\"b\\"),
            ("\u{1f600}", false, "\\ud83d\\ude00"),
            ("\u{7f}", false, "\\u007f"),
        ] {
            let mut out = String::new();
            escape_json_ascii(&mut out, input, quoted);
            assert_eq!(out, want, "{input:?}");
        }
    }

    #[test]
    fn render_counts_by_class_and_bucket() {
        let m = Metrics::default();
        let r = m.route("ingest");
        r.record(200, Duration::from_millis(3));
        r.record(503, Duration::from_millis(30));
        let text = m.render(4, true);
        assert!(text.contains("nyro_requests_total{route=\"ingest\",class=\"2xx\"} 1"));
        assert!(text.contains("nyro_requests_total{route=\"ingest\",class=\"5xx\"} 1"));
        assert!(
            text.contains("nyro_request_duration_seconds_bucket{route=\"ingest\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("nyro_request_duration_seconds_bucket{route=\"ingest\",le=\"0.05\"} 2")
        );
        assert!(text.contains("nyro_config_generation 4"));
    }
}
