//! Logs and metrics.
//!
//! Logs: one JSON object per line on stdout (or pretty text for people),
//! level from `GATEWAY_LOG_LEVEL`, else `RUST_LOG`, else `info`. Request
//! lines carry request id, method, path, route, status, duration, user id,
//! company id and client ip; never a token, cookie or secret. The pretty
//! format escapes what is not printable ASCII, as the JSON format's
//! string escapes would.
//!
//! Metrics: one prometheus-client registry ([`Metrics`]), rendered as
//! Prometheus text on the admin listener; per-route series are recorded
//! through handles taken at compile time, so the hot path is atomics only.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::metrics::ShardedCounter;
use clap::ValueEnum;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet, prometheus_text,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
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
pub(crate) fn init_logging(format: LogFormat) {
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

/// Labels of `nyro_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteClass {
    route: String,
    method: &'static str,
    class: &'static str,
}

/// Labels of `nyro_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

/// Labels of `nyro_token_verifications_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SecretLabel {
    /// 1-based position of the HMAC secret in `[auth] secret`.
    secret_position: String,
}

/// Labels of `nyro_worker_connections`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkerLabel {
    /// The serving worker's index (its thread is `nyro-worker-<index>`).
    worker: String,
}

/// Labels of `nyro_config_reloads_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadResult {
    result: &'static str,
}

/// Labels of `nyro_rate_limit_decisions_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitResult {
    route: String,
    limit: String,
    result: &'static str,
}

/// The decision counters of one (route, limit) pair, taken when the
/// config is compiled: counting a decision is one atomic add.
#[derive(Debug, Clone)]
pub(crate) struct LimitStats {
    /// `result="allowed"`.
    pub(crate) allowed: Counter,
    /// `result="refused"` (429).
    pub(crate) refused: Counter,
}

/// The Redis side of rate limiting: one round trip per decision.
#[derive(Debug, Clone, Default)]
pub(crate) struct RedisStats {
    latency: Latency,
    /// `nyro_rate_limit_redis_errors_total`: decisions Redis did not answer
    /// in time or answered with an error.
    pub(crate) errors: Counter,
}

impl RedisStats {
    /// Records one Redis round trip.
    pub(crate) fn observe(&self, elapsed: Duration) {
        self.latency.observe(elapsed);
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// A latency histogram recorded with atomics only, sharded by thread like
/// `metrics::Sharded`. prometheus-client's own
/// `Histogram` takes a lock per observation; this one is a bucket array of
/// counters, encoded through the registry like any other metric.
#[derive(Debug, Clone, Default)]
struct Latency(Arc<[LatencyCells; crate::metrics::SHARDS]>);

/// One thread's share of a histogram (see `metrics::Sharded`), on its
/// own cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct LatencyCells {
    /// Observations per bucket (not cumulative; the encoder sums them).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum of durations in microseconds.
    sum_us: AtomicU64,
}

impl Latency {
    fn observe(&self, elapsed: Duration) {
        let cells = &self.0[crate::metrics::shard()];
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            cells.buckets[i].fetch_add(1, Relaxed);
        }
        cells.count.fetch_add(1, Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        cells.sum_us.fetch_add(us, Relaxed);
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let total = |cell: fn(&LatencyCells) -> &AtomicU64| -> u64 {
            self.0.iter().map(|c| cell(c).load(Relaxed)).sum()
        };
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .enumerate()
            .map(|(i, b)| (*b, self.0.iter().map(|c| c.buckets[i].load(Relaxed)).sum()))
            .collect();
        let sum = total(|c| &c.sum_us) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, total(|c| &c.count), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The series of one route (or of requests that matched none): handles
/// into the registry's families, taken once when the config is compiled,
/// so recording a response is a few atomic adds and never takes a lock.
#[derive(Debug)]
pub(crate) struct RouteStats {
    /// `nyro_requests_total` by method (`metrics::METHODS`) and status
    /// class (index 0 is 1xx … 4 is 5xx).
    status: [[ShardedCounter; 5]; crate::metrics::METHODS.len()],
    /// `nyro_request_duration_seconds`: time to response headers.
    duration: Latency,
}

impl RouteStats {
    /// Records one response to a request of `method`.
    pub(crate) fn record(&self, method: &http::Method, status: u16, elapsed: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.status[crate::metrics::method_index(method)][class].inc();
        self.duration.observe(elapsed);
    }
}

/// A reload counter: a registry counter that also reads as the
/// `AtomicU64` it wraps, so `reloads_ok.fetch_add(1, Relaxed)` records.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReloadCounter(Counter);

impl std::ops::Deref for ReloadCounter {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        self.0.inner()
    }
}

/// Process-wide metrics: the one prometheus-client [`Registry`] behind
/// `/metrics`. Routes keep their series across reloads (a route's label
/// set maps to the same counters in every compiled config).
///
/// To add a series: create the metric (or `Family`) here, register it in
/// [`Metrics::default`] with its name and help, and keep a handle in a
/// field (or, for per-route series, in [`RouteStats`], taken in
/// [`Metrics::route`]) so recording stays lock-free. CONTRIBUTING.md has
/// the steps.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RouteClass, ShardedCounter>,
    durations: Family<RouteLabel, Latency>,
    generation: Gauge,
    ready: Gauge,
    /// Successful reloads (`nyro_config_reloads_total{result="applied"}`).
    pub(crate) reloads_ok: ReloadCounter,
    /// Reloads refused because the new config was invalid
    /// (`nyro_config_reloads_total{result="rejected"}`).
    pub(crate) reloads_failed: ReloadCounter,
    rate_limit_decisions: Family<LimitResult, Counter>,
    /// Redis round trips and errors of shared rate limits.
    pub(crate) redis: RedisStats,
    /// HMAC token verifications (not cache hits) by the position of the
    /// secret that verified: when an old secret's count stops growing,
    /// it can be removed (README "Rotating the HMAC secret").
    token_verifications: Family<SecretLabel, Counter>,
    worker_connections: Family<WorkerLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        // prometheus-client appends `_total` to counter names and a `.`
        // to help texts.
        let requests = Family::<RouteClass, ShardedCounter>::default();
        registry.register(
            "nyro_requests",
            "Responses sent, by route, method and status class",
            requests.clone(),
        );
        let durations = Family::<RouteLabel, Latency>::default();
        registry.register(
            "nyro_request_duration_seconds",
            "Time to response headers",
            durations.clone(),
        );
        let generation = Gauge::default();
        registry.register(
            "nyro_config_generation",
            "Generation of the active config (1 at start, +1 per applied reload)",
            generation.clone(),
        );
        let reloads = Family::<ReloadResult, Counter>::default();
        registry.register(
            "nyro_config_reloads",
            "Reload attempts by result",
            reloads.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "nyro_ready",
            "1 when the gateway is ready to serve",
            ready.clone(),
        );
        let rate_limit_decisions = Family::<LimitResult, Counter>::default();
        registry.register(
            "nyro_rate_limit_decisions",
            "Rate-limit decisions by route, limit name and result (allowed, refused)",
            rate_limit_decisions.clone(),
        );
        let redis = RedisStats::default();
        registry.register(
            "nyro_rate_limit_redis_duration_seconds",
            "Round-trip time of one Redis rate-limit decision",
            redis.latency.clone(),
        );
        registry.register(
            "nyro_rate_limit_redis_errors",
            "Rate-limit decisions Redis failed or did not answer within [rate_limit].timeout",
            redis.errors.clone(),
        );

        register_process_wide(&mut registry);
        let token_verifications = Family::<SecretLabel, Counter>::default();
        registry.register(
            "nyro_token_verifications",
            "HMAC token verifications (cache misses) by the 1-based position of the secret that verified",
            token_verifications.clone(),
        );
        let worker_connections = Family::<WorkerLabel, Gauge>::default();
        registry.register(
            "nyro_worker_connections",
            "Client connections each serving worker holds (an accepted connection goes to the worker holding the fewest)",
            worker_connections.clone(),
        );
        let reload = |result| ReloadCounter(reloads.get_or_create_owned(&ReloadResult { result }));
        Metrics {
            worker_connections,
            reloads_ok: reload("applied"),
            reloads_failed: reload("rejected"),
            token_verifications,
            registry,
            requests,
            durations,
            generation,
            ready,
            rate_limit_decisions,
            redis,
        }
    }
}

/// Registers the process-wide series of `crate::metrics` (README
/// "Metrics").
fn register_process_wide(registry: &mut Registry) {
    use crate::metrics::{self as m, Registered, RegisteredGauge};
    registry.register(
        "nyro_requests_in_flight",
        "Requests received and not yet answered",
        RegisteredGauge(&m::IN_FLIGHT),
    );
    registry.register(
        "nyro_open_connections",
        "Open client connections of the public listener, by protocol",
        Registered(&m::OPEN_CONNECTIONS),
    );
    registry.register(
        "nyro_auth_refusals",
        "Requests refused for their token (401/403), by reason",
        Registered(&m::AUTH_REFUSALS),
    );
    registry.register(
        "nyro_upstream_failures",
        "Requests the upstream failed (502/503/504), by kind",
        Registered(&m::UPSTREAM_FAILURES),
    );
    registry.register(
        "nyro_token_cache_lookups",
        "Verified-token cache lookups, by result",
        Registered(&m::TOKEN_CACHE),
    );
    registry.register(
        "nyro_jwks_fetches",
        "JWKS fetches, by result",
        Registered(&m::JWKS_FETCHES),
    );
    registry.register(
        "nyro_jwks_keys",
        "Usable keys in the last JWKS fetched",
        RegisteredGauge(&m::JWKS_KEYS),
    );
    registry.register(
        "nyro_trace_spans",
        "Spans handed to the OTLP exporter, dropped on a full queue, or lost in a failed export",
        Registered(&m::SPANS),
    );
}

impl Metrics {
    /// The series of the route named `name` (`""` for no route, labelled
    /// `(none)`), created on first use. Called when a config is compiled,
    /// never per request.
    pub(crate) fn route(&self, name: &str) -> Arc<RouteStats> {
        let route = if name.is_empty() { "(none)" } else { name };
        let status = crate::metrics::METHODS.map(|method| {
            CLASSES.map(|class| {
                self.requests.get_or_create_owned(&RouteClass {
                    route: route.to_owned(),
                    method,
                    class,
                })
            })
        });
        let duration = self.durations.get_or_create_owned(&RouteLabel {
            route: route.to_owned(),
        });
        Arc::new(RouteStats { status, duration })
    }

    /// The decision counters of limit `limit` on route `route`, created
    /// on first use. Called when a config is compiled, never per request.
    pub(crate) fn rate_limit(&self, route: &str, limit: &str) -> LimitStats {
        let get = |result| {
            self.rate_limit_decisions.get_or_create_owned(&LimitResult {
                route: route.to_owned(),
                limit: limit.to_owned(),
                result,
            })
        };
        LimitStats {
            allowed: get("allowed"),
            refused: get("refused"),
        }
    }

    /// The `nyro_token_verifications_total` counter of HMAC secret
    /// `position` (1-based), created on first use; called when a config is
    /// compiled, never per request.
    pub(crate) fn token_verifications(&self, position: usize) -> Counter {
        self.token_verifications.get_or_create_owned(&SecretLabel {
            secret_position: position.to_string(),
        })
    }

    /// The `nyro_worker_connections` gauge of worker `index`; taken once
    /// per worker when serving starts, and what hands connections to the
    /// least busy worker reads.
    pub fn worker_connections(&self, index: usize) -> Gauge {
        self.worker_connections.get_or_create_owned(&WorkerLabel {
            worker: index.to_string(),
        })
    }

    /// Sets `nyro_config_generation`; called where the active config is
    /// swapped, before the reload is counted, so a scrape never shows a
    /// reload counted ahead of its generation.
    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// Prometheus text exposition (version 0.0.4) of the registry, with
    /// readiness as of this scrape.
    pub(crate) fn render(&self, ready: bool) -> String {
        self.ready.set(i64::from(ready));
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would only
        // truncate the page, never panic.
        let _ = prometheus_text::encode(&mut out, &self.registry);
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
        r.record(&http::Method::GET, 200, Duration::from_millis(3));
        r.record(&http::Method::POST, 503, Duration::from_millis(30));
        m.set_generation(4);
        let text = m.render(true);
        assert!(
            text.contains("nyro_requests_total{route=\"ingest\",method=\"GET\",class=\"2xx\"} 1")
        );
        assert!(
            text.contains("nyro_requests_total{route=\"ingest\",method=\"POST\",class=\"5xx\"} 1")
        );
        assert!(
            text.contains("nyro_request_duration_seconds_bucket{route=\"ingest\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("nyro_request_duration_seconds_bucket{route=\"ingest\",le=\"0.05\"} 2")
        );
        assert!(text.contains("nyro_config_generation 4"));
    }

    #[test]
    fn every_series_keeps_its_name_help_and_labels() {
        let m = Metrics::default();
        m.route("").record(
            &http::Method::from_bytes(b"PROPFIND").unwrap(),
            404,
            Duration::from_micros(1500),
        );
        m.reloads_ok.fetch_add(2, Relaxed);
        m.set_generation(3);
        let text = m.render(false);
        for line in [
            "# HELP nyro_requests_total Responses sent, by route, method and status class.",
            "# TYPE nyro_requests_total counter",
            "nyro_requests_total{route=\"(none)\",method=\"other\",class=\"4xx\"} 1",
            "nyro_requests_total{route=\"(none)\",method=\"GET\",class=\"2xx\"} 0",
            "# TYPE nyro_auth_refusals_total counter",
            "# TYPE nyro_upstream_failures_total counter",
            "# TYPE nyro_open_connections gauge",
            "# TYPE nyro_requests_in_flight gauge",
            "# TYPE nyro_token_cache_lookups_total counter",
            "# TYPE nyro_jwks_fetches_total counter",
            "# TYPE nyro_jwks_keys gauge",
            "# TYPE nyro_trace_spans_total counter",
            "# HELP nyro_request_duration_seconds Time to response headers.",
            "# TYPE nyro_request_duration_seconds histogram",
            "nyro_request_duration_seconds_bucket{route=\"(none)\",le=\"0.001\"} 0",
            "nyro_request_duration_seconds_bucket{route=\"(none)\",le=\"0.0025\"} 1",
            "nyro_request_duration_seconds_bucket{route=\"(none)\",le=\"10\"} 1",
            "nyro_request_duration_seconds_bucket{route=\"(none)\",le=\"+Inf\"} 1",
            "nyro_request_duration_seconds_sum{route=\"(none)\"} 0.0015",
            "nyro_request_duration_seconds_count{route=\"(none)\"} 1",
            "# HELP nyro_config_generation Generation of the active config (1 at start, +1 per applied reload).",
            "# TYPE nyro_config_generation gauge",
            "nyro_config_generation 3",
            "# HELP nyro_config_reloads_total Reload attempts by result.",
            "# TYPE nyro_config_reloads_total counter",
            "nyro_config_reloads_total{result=\"applied\"} 2",
            "nyro_config_reloads_total{result=\"rejected\"} 0",
            "# HELP nyro_ready 1 when the gateway is ready to serve.",
            "# TYPE nyro_ready gauge",
            "nyro_ready 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        // Process-wide series (other tests in this process move them):
        // every label value is present from the start.
        for series in [
            "nyro_auth_refusals_total{reason=\"required_claim\"} ",
            "nyro_upstream_failures_total{kind=\"bad_response\"} ",
            "nyro_open_connections{protocol=\"http2\"} ",
            "nyro_requests_in_flight ",
            "nyro_token_cache_lookups_total{result=\"miss\"} ",
            "nyro_jwks_fetches_total{result=\"error\"} ",
            "nyro_jwks_keys ",
            "nyro_trace_spans_total{result=\"dropped\"} ",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(series)),
                "missing {series:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn a_route_keeps_its_series_across_compiles() {
        let m = Metrics::default();
        m.route("svc")
            .record(&http::Method::GET, 200, Duration::ZERO);
        m.route("svc")
            .record(&http::Method::GET, 200, Duration::ZERO);
        m.set_generation(2);
        let text = m.render(true);
        assert!(
            text.contains("nyro_requests_total{route=\"svc\",method=\"GET\",class=\"2xx\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("nyro_request_duration_seconds_count{route=\"svc\"} 2"),
            "{text}"
        );
    }
}
