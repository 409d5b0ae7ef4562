//! Distributed tracing: W3C Trace Context propagation (always on) and
//! span export over OTLP/HTTP (when `[telemetry] otlp_endpoint` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set). README "Tracing".
//!
//! Each request gets a [`TraceContext`]: the client's trace continued
//! when its `traceparent` is valid, a new one otherwise. The gateway's own
//! span id goes to the upstream as the parent in `traceparent`. Ids come
//! from the thread-local RNG and are formatted into a stack buffer, so
//! with export off the work is a few dozen nanoseconds and one header
//! value.
//!
//! Export: a finished span is queued on a bounded channel with
//! `try_send` (a full queue drops the span and counts it in
//! `nyro_trace_spans_total{result="dropped"}`; a request never waits),
//! and a thread of its own batches the queue into OTLP/HTTP protobuf
//! requests to `<base>/v1/traces` (opentelemetry-otlp's exporter).

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use rand::RngExt;

use crate::metrics::SPANS;

/// `traceparent` (W3C Trace Context §3.2).
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate` (W3C Trace Context §3.3).
pub(crate) static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A request's place in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    /// The trace, the client's or a new one; never zero.
    pub(crate) trace_id: u128,
    /// The client's span (the parent of ours), when its trace is continued.
    pub(crate) parent_id: Option<u64>,
    /// The gateway's span for this request; never zero.
    pub(crate) span_id: u64,
    /// The sampled flag sent upstream (and whether the span is exported).
    pub(crate) sampled: bool,
}

/// A trace id formatted as 32 lower-case hex digits, for log lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceId(pub u128);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        hex_into(&mut buf, &self.0.to_be_bytes());
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&buf).unwrap_or(""))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// Lower-case hex only (W3C Trace Context §3.2.2: `HEXDIGLC`).
fn unhex(s: &[u8]) -> Option<u128> {
    let mut v: u128 = 0;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

/// A parsed `traceparent`: trace id, parent id, sampled flag.
///
/// W3C Trace Context §3.2: `version-traceid-parentid-flags`, 2, 32, 16
/// and 2 lower-case hex digits. Version `ff` is invalid; version `00` is
/// exactly 55 characters; a later version may be longer, with a `-`
/// after the 55th character, and is read as far as version 00 goes
/// (§3.2.4). An all-zero trace id or parent id is invalid.
pub(crate) fn parse_traceparent(v: &[u8]) -> Option<(u128, u64, bool)> {
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = unhex(&v[0..2])?;
    match version {
        0xff => return None,
        0 if v.len() != 55 => return None,
        _ if v.len() > 55 && v[55] != b'-' => return None,
        _ => {}
    }
    let trace = unhex(&v[3..35])?;
    let parent = u64::try_from(unhex(&v[36..52])?).ok()?;
    let flags = unhex(&v[53..55])?;
    if trace == 0 || parent == 0 {
        return None;
    }
    Some((trace, parent, flags & 1 == 1))
}

/// Whether a new trace is sampled at `ratio`: as OpenTelemetry's
/// `TraceIdRatioBased` decides, from the trace id's low 63 bits, so
/// every service sampling at the same ratio agrees.
fn ratio_sampled(trace_id: u128, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    ((trace_id as u64) >> 1) < bound
}

impl TraceContext {
    /// The request's trace: the client's `traceparent` continued when
    /// there is exactly one and it is valid, else a new trace, sampled at
    /// `sample_ratio` (parent-based: a continued trace keeps the client's
    /// sampled flag).
    pub(crate) fn from_request(headers: &HeaderMap, sample_ratio: f64) -> Self {
        let mut rng = rand::rng();
        let mut span_id: u64 = rng.random();
        while span_id == 0 {
            span_id = rng.random();
        }
        let mut all = headers.get_all(&TRACEPARENT).iter();
        let parsed = match (all.next(), all.next()) {
            (Some(v), None) => parse_traceparent(v.as_bytes()),
            _ => None,
        };
        match parsed {
            Some((trace_id, parent, sampled)) => TraceContext {
                trace_id,
                parent_id: Some(parent),
                span_id,
                sampled,
            },
            None => {
                let mut trace_id: u128 = rng.random();
                while trace_id == 0 {
                    trace_id = rng.random();
                }
                TraceContext {
                    trace_id,
                    parent_id: None,
                    span_id,
                    sampled: ratio_sampled(trace_id, sample_ratio),
                }
            }
        }
    }

    /// The trace id, for log lines.
    pub(crate) fn trace_id(&self) -> TraceId {
        TraceId(self.trace_id)
    }

    /// `traceparent` naming the gateway's span as the parent: version 00,
    /// formatted into a 55-byte buffer.
    pub(crate) fn traceparent(&self) -> HeaderValue {
        let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex_into(&mut buf[3..35], &self.trace_id.to_be_bytes());
        hex_into(&mut buf[36..52], &self.span_id.to_be_bytes());
        if self.sampled {
            buf[54] = b'1';
        }
        HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Sets the upstream request's `traceparent`; a `tracestate` goes on
    /// only with the client's trace it belongs to (§3.3: a vendor that
    /// could not read `traceparent` must not use `tracestate`).
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(&TRACEPARENT, self.traceparent());
        if self.parent_id.is_none() {
            headers.remove(&TRACESTATE);
        }
    }
}

// ---- export -------------------------------------------------------------

/// Spans waiting for export at most; beyond it they are dropped.
const QUEUE: usize = 2048;
/// Spans per OTLP request at most.
const BATCH: usize = 512;
/// Time a span waits for its batch to fill at most.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Time an export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the log line knows of a finished request, for its span.
#[derive(Debug)]
pub(crate) struct Finished<'a> {
    /// The request's method.
    pub(crate) method: &'a Method,
    /// The request's path.
    pub(crate) path: &'a str,
    /// The route's name (empty when none matched).
    pub(crate) route: &'a str,
    /// The status answered.
    pub(crate) status: u16,
    /// The verified user's id, when there is one.
    pub(crate) user_id: Option<&'a str>,
    /// The verified user's company id, when there is one.
    pub(crate) company_id: Option<&'a str>,
    /// Time from the request head to the response head.
    pub(crate) elapsed: Duration,
}

static EXPORTER: OnceLock<tokio::sync::mpsc::Sender<opentelemetry_sdk::trace::SpanData>> =
    OnceLock::new();
/// The base URL export was started with, for the reload's "needs a
/// restart" notice.
static ENDPOINT: OnceLock<Uri> = OnceLock::new();

/// The OTLP base URL spans are exported to, when export was started.
pub(crate) fn export_endpoint() -> Option<&'static Uri> {
    ENDPOINT.get()
}

/// Starts the export thread for spans to `<base>/v1/traces`. Called
/// once at start (`serve`); export is off when it is not called.
pub(crate) fn start_export(base: &Uri) -> Result<(), String> {
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::trace::SpanExporter as _;

    let base_text = base.to_string();
    let endpoint = format!("{}/v1/traces", base_text.trim_end_matches('/'));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client = opentelemetry_http::hyper::HyperClient::new(connector, EXPORT_TIMEOUT, None);
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("OTLP exporter for {endpoint}: {e}"))?;
    exporter.set_resource(
        &opentelemetry_sdk::Resource::builder_empty()
            .with_service_name("nyro-gw")
            .build(),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUE);
    if EXPORTER.set(tx).is_err() {
        return Err("span export is already started".into());
    }
    let _ = ENDPOINT.set(base.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("span export runtime: {e}"))?;
    std::thread::Builder::new()
        .name("nyro-otlp".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut batch = Vec::with_capacity(BATCH);
                while let Some(first) = rx.recv().await {
                    batch.push(first);
                    let deadline = tokio::time::Instant::now() + BATCH_DELAY;
                    while batch.len() < BATCH {
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(span)) => batch.push(span),
                            Ok(None) | Err(_) => break,
                        }
                    }
                    let n = i64::try_from(batch.len()).unwrap_or(i64::MAX);
                    match exporter.export(std::mem::take(&mut batch)).await {
                        Ok(()) => SPANS.add(0, n),
                        Err(e) => {
                            SPANS.add(2, n);
                            tracing::warn!(endpoint = %endpoint, spans = n, error = %e, "span export failed; the spans are lost");
                        }
                    }
                }
            });
        })
        .map_err(|e| format!("span export thread: {e}"))?;
    tracing::info!(endpoint = %base_text, "exporting spans over OTLP/HTTP");
    Ok(())
}

/// Hands the request's span to the exporter, when export is on and the
/// trace is sampled; never waits (a full queue drops it and counts it).
/// Attributes: method, path, route, status, user and company id; never
/// the token or any header.
pub(crate) fn finish(tc: &TraceContext, done: &Finished<'_>) {
    let Some(tx) = EXPORTER.get() else { return };
    if !tc.sampled {
        return;
    }
    offer(tx, span_data(tc, done));
}

/// Queues `span` without waiting; a full (or closed) queue drops it and
/// counts it in `nyro_trace_spans_total{result="dropped"}`.
fn offer(
    tx: &tokio::sync::mpsc::Sender<opentelemetry_sdk::trace::SpanData>,
    span: opentelemetry_sdk::trace::SpanData,
) {
    if tx.try_send(span).is_err() {
        SPANS.inc(1);
    }
}

fn span_data(tc: &TraceContext, done: &Finished<'_>) -> opentelemetry_sdk::trace::SpanData {
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId as OtelTraceId, TraceState,
    };
    use opentelemetry::{InstrumentationScope, KeyValue};

    let end = SystemTime::now();
    let start = end.checked_sub(done.elapsed).unwrap_or(end);
    let mut attributes = vec![
        KeyValue::new("http.request.method", done.method.as_str().to_owned()),
        KeyValue::new("url.path", done.path.to_owned()),
        KeyValue::new("nyro.route", done.route.to_owned()),
        KeyValue::new("http.response.status_code", i64::from(done.status)),
    ];
    if let Some(u) = done.user_id {
        attributes.push(KeyValue::new("user.id", u.to_owned()));
    }
    if let Some(c) = done.company_id {
        attributes.push(KeyValue::new("nyro.company_id", c.to_owned()));
    }
    let name = if done.route.is_empty() {
        done.method.as_str().to_owned()
    } else {
        format!("{} {}", done.method, done.route)
    };
    opentelemetry_sdk::trace::SpanData {
        span_context: SpanContext::new(
            OtelTraceId::from_bytes(tc.trace_id.to_be_bytes()),
            SpanId::from_bytes(tc.span_id.to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: tc
            .parent_id
            .map_or(SpanId::INVALID, |p| SpanId::from_bytes(p.to_be_bytes())),
        parent_span_is_remote: tc.parent_id.is_some(),
        span_kind: SpanKind::Server,
        name: name.into(),
        start_time: start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events: Default::default(),
        links: Default::default(),
        status: if done.status >= 500 {
            Status::error("")
        } else {
            Status::Unset
        },
        instrumentation_scope: InstrumentationScope::builder("nyro-gw")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_parses_as_the_spec_writes_it() {
        assert_eq!(
            parse_traceparent(VALID.as_bytes()),
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, true))
        );
        // A later version may carry more fields after a dash.
        assert!(
            parse_traceparent(
                b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-the-future-will-be-like"
            )
            .is_some()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00x",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn a_valid_parent_is_continued_and_a_missing_one_started() {
        let mut h = HeaderMap::new();
        h.insert(&TRACEPARENT, HeaderValue::from_static(VALID));
        h.insert(&TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let tc = TraceContext::from_request(&h, 0.0);
        assert_eq!(tc.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(tc.parent_id, Some(0x00f067aa0ba902b7));
        assert!(tc.sampled, "the client's flag wins over the ratio");
        let mut up = h.clone();
        tc.apply(&mut up);
        let sent = up.get(&TRACEPARENT).unwrap().to_str().unwrap().to_owned();
        assert_eq!(&sent[..36], &VALID[..36]);
        assert_ne!(&sent[36..52], &VALID[36..52]);
        assert!(sent.ends_with("-01"));
        assert_eq!(
            parse_traceparent(sent.as_bytes()).map(|p| p.1),
            Some(tc.span_id)
        );
        assert!(up.get(&TRACESTATE).is_some());

        let mut h = HeaderMap::new();
        h.insert(&TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let tc = TraceContext::from_request(&h, 1.0);
        assert_eq!(tc.parent_id, None);
        let mut up = h.clone();
        tc.apply(&mut up);
        assert!(parse_traceparent(up[&TRACEPARENT].as_bytes()).is_some());
        assert!(up.get(&TRACESTATE).is_none(), "tracestate of no trace");
    }

    #[test]
    fn repeated_traceparent_headers_start_a_new_trace() {
        let mut h = HeaderMap::new();
        h.append(&TRACEPARENT, HeaderValue::from_static(VALID));
        h.append(&TRACEPARENT, HeaderValue::from_static(VALID));
        let tc = TraceContext::from_request(&h, 1.0);
        assert_eq!(tc.parent_id, None);
        assert_ne!(tc.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    }

    #[test]
    fn the_ratio_samples_about_its_share_of_new_traces() {
        let h = HeaderMap::new();
        let sampled = (0..10_000)
            .filter(|_| TraceContext::from_request(&h, 0.25).sampled)
            .count();
        assert!((2_000..3_000).contains(&sampled), "{sampled}");
        assert!((0..100).all(|_| !TraceContext::from_request(&h, 0.0).sampled));
    }

    #[test]
    fn a_full_export_queue_drops_the_span_and_counts_it() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let tc = TraceContext::from_request(&HeaderMap::new(), 1.0);
        let done = Finished {
            method: &Method::GET,
            path: "/a",
            route: "a",
            status: 200,
            user_id: None,
            company_id: None,
            elapsed: Duration::from_millis(1),
        };
        let before = SPANS.get_by("dropped");
        offer(&tx, span_data(&tc, &done));
        assert_eq!(SPANS.get_by("dropped"), before, "room for one");
        offer(&tx, span_data(&tc, &done));
        assert_eq!(
            SPANS.get_by("dropped"),
            before + 1,
            "the second waits for nobody"
        );
    }

    #[test]
    fn trace_ids_print_as_32_hex_digits() {
        assert_eq!(
            TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736).to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(TraceId(1).to_string(), format!("{:032x}", 1));
    }
}
