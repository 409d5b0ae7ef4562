//! Process-wide counters and gauges that more than one layer records
//! (auth refusals, upstream failures, token cache, JWKS fetches, requests
//! in flight, open connections, exported spans), and the labels they are
//! recorded under. README "Metrics" lists every series.
//!
//! Every label value is fixed here, so nothing a client sends can mint a
//! series; every cell is an atomic, so recording never locks or
//! allocates. The counters bumped on every request (token cache, in
//! flight) are sharded by thread, so that worker threads do not fight
//! over one cache line. `telemetry::Metrics` registers them all in the
//! registry behind `/metrics`.

use std::cell::Cell;
use std::error::Error as StdError;
use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering::Relaxed};

use http::{Method, Version};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::error::{BearerError, GatewayError, InjectError, TokenError, UpstreamKind};

/// Number of shards of a [`Sharded`] cell: more than the worker threads a
/// typical node gives the gateway; threads beyond it share shards.
pub(crate) const SHARDS: usize = 16;

/// One cache line per shard, so two threads never write the same line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Pad(AtomicI64);

/// A number summed over per-thread shards: an add is one uncontended
/// atomic on the calling thread's shard.
#[derive(Debug)]
pub(crate) struct Sharded([Pad; SHARDS]);

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, handed out round-robin on first use.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard index, below [`SHARDS`].
pub(crate) fn shard() -> usize {
    SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

impl Sharded {
    const fn new() -> Self {
        Sharded([const { Pad(AtomicI64::new(0)) }; SHARDS])
    }

    /// Adds `n` (negative to subtract) on this thread's shard.
    pub(crate) fn add(&self, n: i64) {
        self.0[shard()].0.fetch_add(n, Relaxed);
    }

    /// The sum over all shards.
    pub(crate) fn get(&self) -> i64 {
        self.0.iter().map(|p| p.0.load(Relaxed)).sum()
    }
}

impl Default for Sharded {
    fn default() -> Self {
        Sharded::new()
    }
}

/// A registry counter whose adds are sharded by thread (a series every
/// request bumps, such as `nyro_requests_total`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardedCounter(std::sync::Arc<Sharded>);

impl ShardedCounter {
    /// Adds one on this thread's shard.
    pub(crate) fn inc(&self) {
        self.0.add(1);
    }
}

impl prometheus_client::metrics::TypedMetric for ShardedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder
            .encode_counter::<NoLabelSet, _, u64>(&u64::try_from(self.0.get()).unwrap_or(0), None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// A fixed set of series of one metric, one per value of one label:
/// `nyro_auth_refusals_total{reason="expired"}` is `AUTH_REFUSALS` at the
/// index of `"expired"`.
#[derive(Debug)]
pub(crate) struct Labelled<const N: usize> {
    /// The label's name.
    pub(crate) label: &'static str,
    /// The label's values, one per cell.
    pub(crate) values: [&'static str; N],
    cells: [Sharded; N],
    kind: MetricType,
}

impl<const N: usize> Labelled<N> {
    const fn new(kind: MetricType, label: &'static str, values: [&'static str; N]) -> Self {
        Labelled {
            label,
            values,
            cells: [const { Sharded::new() }; N],
            kind,
        }
    }

    /// Adds one to the series at `i` (an index into `values`).
    pub(crate) fn inc(&self, i: usize) {
        self.add(i, 1);
    }

    /// Adds `n` to the series at `i`.
    pub(crate) fn add(&self, i: usize, n: i64) {
        if let Some(c) = self.cells.get(i) {
            c.add(n);
        }
    }

    /// The value of the series at `i`.
    pub(crate) fn get(&self, i: usize) -> i64 {
        self.cells.get(i).map_or(0, Sharded::get)
    }

    /// The value of the series labelled `value`, for tests.
    #[cfg(test)]
    pub(crate) fn get_by(&self, value: &str) -> i64 {
        self.values
            .iter()
            .position(|v| *v == value)
            .map_or(0, |i| self.get(i))
    }
}

/// A registry handle on a process-wide [`Labelled`] set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Registered<const N: usize>(pub &'static Labelled<N>);

impl<const N: usize> prometheus_client::metrics::TypedMetric for Registered<N> {}

impl<const N: usize> EncodeMetric for Registered<N> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let m = self.0;
        for (i, value) in m.values.iter().enumerate() {
            let labels = [(m.label, *value)];
            let mut e = encoder.encode_family(&labels)?;
            let v = m.get(i);
            match m.kind {
                MetricType::Counter => {
                    e.encode_counter::<NoLabelSet, _, u64>(&u64::try_from(v).unwrap_or(0), None)?
                }
                _ => e.encode_gauge(&v)?,
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        self.0.kind
    }
}

/// A registry handle on a process-wide gauge without labels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RegisteredGauge(pub &'static Sharded);

impl prometheus_client::metrics::TypedMetric for RegisteredGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for RegisteredGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

// ---- requests -----------------------------------------------------------

/// The `method` label values of `nyro_requests_total`: the methods of RFC
/// 9110 §9 and PATCH (RFC 5789); anything else is `other`, so a client
/// cannot mint series.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other",
];

/// The index of `m` in [`METHODS`].
pub(crate) fn method_index(m: &Method) -> usize {
    // Standard methods compare as enum tags, not as strings.
    if *m == Method::GET {
        0
    } else if *m == Method::HEAD {
        1
    } else if *m == Method::POST {
        2
    } else if *m == Method::PUT {
        3
    } else if *m == Method::DELETE {
        4
    } else if *m == Method::CONNECT {
        5
    } else if *m == Method::OPTIONS {
        6
    } else if *m == Method::TRACE {
        7
    } else if *m == Method::PATCH {
        8
    } else {
        9
    }
}

/// `nyro_requests_in_flight`: requests received and not yet answered
/// (response head not yet produced).
pub(crate) static IN_FLIGHT: Sharded = Sharded::new();

/// Counts one request in flight until dropped (answered, or abandoned by
/// the client and dropped by hyper).
#[derive(Debug)]
pub(crate) struct InFlight(());

impl InFlight {
    /// One more request in flight.
    pub(crate) fn enter() -> Self {
        IN_FLIGHT.add(1);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.add(-1);
    }
}

// ---- auth ---------------------------------------------------------------

/// `nyro_auth_refusals_total{reason}`: one value per kind of token
/// refusal (README "Metrics" says which error each covers).
pub(crate) static AUTH_REFUSALS: Labelled<12> = Labelled::new(
    MetricType::Counter,
    "reason",
    [
        "missing",
        "malformed",
        "expired",
        "not_yet_valid",
        "bad_signature",
        "algorithm",
        "audience",
        "issuer",
        "unknown_kid",
        "keys_unavailable",
        "too_large",
        "required_claim",
    ],
);

/// The refusal reason of a token error, an index into [`AUTH_REFUSALS`].
/// Exhaustive, so a new kind of refusal must be given its label here.
pub(crate) fn token_reason(e: &TokenError) -> usize {
    match e {
        TokenError::Malformed(_) | TokenError::Critical => 1,
        TokenError::Expired { .. } => 2,
        TokenError::NotYetValid { .. } => 3,
        TokenError::BadSignature => 4,
        TokenError::Unsigned
        | TokenError::AlgorithmNotAllowed(_)
        | TokenError::KeyAlgorithmMismatch { .. } => 5,
        TokenError::Audience { .. } => 6,
        TokenError::Issuer { .. } | TokenError::IssuerNotString { .. } => 7,
        TokenError::UnknownKid(_) | TokenError::NoKeyForAlgorithm(_) => 8,
        TokenError::KeysUnavailable => 9,
        TokenError::TooLarge => 10,
        TokenError::MissingClaim(_) | TokenError::ProjectKey(_) => 11,
    }
}

/// The refusal reason of an answer, when it is an auth refusal.
pub(crate) fn refusal_reason(e: &GatewayError) -> Option<usize> {
    Some(match e {
        GatewayError::NotAuthenticated => 0,
        GatewayError::Bearer(
            BearerError::Repeated | BearerError::NotAscii | BearerError::Malformed,
        ) => 1,
        GatewayError::InvalidToken(t) => token_reason(t),
        GatewayError::Forbidden(
            InjectError::Missing { .. } | InjectError::NotInjectable { .. },
        ) => 11,
        _ => return None,
    })
}

/// `nyro_token_cache_lookups_total{result}`: verified-token cache hits
/// and misses (a miss verifies the signature).
pub(crate) static TOKEN_CACHE: Labelled<2> =
    Labelled::new(MetricType::Counter, "result", ["hit", "miss"]);
/// Index of `hit` in [`TOKEN_CACHE`].
pub(crate) const CACHE_HIT: usize = 0;
/// Index of `miss` in [`TOKEN_CACHE`].
pub(crate) const CACHE_MISS: usize = 1;

/// `nyro_jwks_fetches_total{result}`: JWKS fetches, `ok` or `error`.
pub(crate) static JWKS_FETCHES: Labelled<2> =
    Labelled::new(MetricType::Counter, "result", ["ok", "error"]);

/// `nyro_jwks_keys`: usable keys in the last JWKS fetched.
pub(crate) static JWKS_KEYS: Sharded = Sharded::new();

/// Records a JWKS fetch: `Some(keys)` when it succeeded.
pub(crate) fn jwks_fetched(keys: Option<usize>) {
    match keys {
        Some(n) => {
            JWKS_FETCHES.inc(0);
            // A gauge that is set: the shards are summed, so set by
            // adding the difference (fetches are serialised by the store).
            JWKS_KEYS.add(i64::try_from(n).unwrap_or(i64::MAX) - JWKS_KEYS.get());
        }
        None => JWKS_FETCHES.inc(1),
    }
}

// ---- upstream -----------------------------------------------------------

/// `nyro_upstream_failures_total{kind}`: `connect` (refused, DNS, connect
/// timeout, connection cap reached), `timeout` (no response head within
/// the route's timeout), `reset` (connection reset or closed before the
/// response), `bad_response` (a response that is not valid HTTP, or a
/// protocol switch nobody asked for).
pub(crate) static UPSTREAM_FAILURES: Labelled<4> = Labelled::new(
    MetricType::Counter,
    "kind",
    ["connect", "timeout", "reset", "bad_response"],
);

/// The failure kind of an upstream error, an index into
/// [`UPSTREAM_FAILURES`]: from its [`UpstreamKind`], and for a bad
/// response from the error's types (an I/O reset, or hyper's "closed
/// before the message completed"), never from its text.
pub(crate) fn upstream_kind(
    kind: UpstreamKind,
    source: Option<&(dyn StdError + 'static)>,
) -> usize {
    match kind {
        UpstreamKind::Unavailable | UpstreamKind::ConnectTimeout => 0,
        UpstreamKind::Timeout => 1,
        UpstreamKind::BadResponse => {
            let mut s = source;
            while let Some(e) = s {
                if let Some(io) = e.downcast_ref::<std::io::Error>()
                    && matches!(
                        io.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::UnexpectedEof
                    )
                {
                    return 2;
                }
                if let Some(h) = e.downcast_ref::<hyper::Error>()
                    && h.is_incomplete_message()
                {
                    return 2;
                }
                s = e.source();
            }
            3
        }
    }
}

/// Counts an answer's auth refusal or upstream failure, if it is one.
pub(crate) fn record_error(e: &GatewayError) {
    if let Some(i) = refusal_reason(e) {
        AUTH_REFUSALS.inc(i);
    }
    if let GatewayError::Upstream(u) = e {
        let source = u.source.as_deref().map(|s| s as &(dyn StdError + 'static));
        UPSTREAM_FAILURES.inc(upstream_kind(u.kind, source));
    }
}

// ---- connections --------------------------------------------------------

/// `nyro_open_connections{protocol}`: client connections of the public
/// listener that have sent a request, by the protocol of their requests.
pub(crate) static OPEN_CONNECTIONS: Labelled<2> =
    Labelled::new(MetricType::Gauge, "protocol", ["http1", "http2"]);

/// One client connection's place in [`OPEN_CONNECTIONS`]: counted from
/// its first request (when its protocol is known) until dropped.
#[derive(Debug, Default)]
pub(crate) struct OpenConn(AtomicU8);

impl OpenConn {
    /// Notes a request's version; the first one counts the connection.
    pub(crate) fn saw(&self, version: Version) {
        if self.0.load(Relaxed) != 0 {
            return;
        }
        let p = if version == Version::HTTP_2 { 2 } else { 1 };
        if self.0.compare_exchange(0, p, Relaxed, Relaxed).is_ok() {
            OPEN_CONNECTIONS.add(usize::from(p - 1), 1);
        }
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        let p = self.0.load(Relaxed);
        if p != 0 {
            OPEN_CONNECTIONS.add(usize::from(p - 1), -1);
        }
    }
}

// ---- tracing ------------------------------------------------------------

/// `nyro_trace_spans_total{result}`: spans handed to the exporter
/// (`exported`), refused because its queue was full (`dropped`), or lost
/// in a failed export (`failed`).
pub(crate) static SPANS: Labelled<3> = Labelled::new(
    MetricType::Counter,
    "result",
    ["exported", "dropped", "failed"],
);

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every `TokenError` variant.
    fn every_token_error() -> Vec<TokenError> {
        vec![
            TokenError::TooLarge,
            TokenError::Malformed("x".into()),
            TokenError::Unsigned,
            TokenError::AlgorithmNotAllowed("HS1".into()),
            TokenError::Critical,
            TokenError::UnknownKid("k".into()),
            TokenError::NoKeyForAlgorithm("ES256".into()),
            TokenError::KeyAlgorithmMismatch {
                kid: "k".into(),
                key: "RS256".into(),
                alg: "ES256".into(),
            },
            TokenError::KeysUnavailable,
            TokenError::BadSignature,
            TokenError::Expired { ago: 1 },
            TokenError::NotYetValid { wait: 1 },
            TokenError::Audience {
                expected: "a".into(),
                found: None,
            },
            TokenError::Issuer {
                expected: "i".into(),
                found: None,
            },
            TokenError::IssuerNotString {
                expected: "i".into(),
                found: "1".into(),
            },
            TokenError::MissingClaim("sub".into()),
            TokenError::ProjectKey("anon".into()),
        ]
    }

    #[test]
    fn every_refusal_kind_has_its_own_label_and_every_label_a_refusal() {
        let mut errors: Vec<GatewayError> = every_token_error()
            .into_iter()
            .map(GatewayError::InvalidToken)
            .collect();
        errors.push(GatewayError::NotAuthenticated);
        errors.push(BearerError::Malformed.into());
        errors.push(BearerError::Repeated.into());
        errors.push(
            InjectError::Missing {
                claim: "company_id".into(),
            }
            .into(),
        );
        let mut used = [false; 12];
        for e in &errors {
            let i = refusal_reason(e).unwrap_or_else(|| panic!("{e:?} has no reason"));
            used[i] = true;
        }
        assert!(
            used.iter().all(|u| *u),
            "a reason no refusal maps to: {used:?}"
        );
        for (e, want) in [
            (TokenError::Expired { ago: 3 }, "expired"),
            (TokenError::NotYetValid { wait: 3 }, "not_yet_valid"),
            (TokenError::BadSignature, "bad_signature"),
            (TokenError::Unsigned, "algorithm"),
            (TokenError::UnknownKid("k".into()), "unknown_kid"),
            (TokenError::KeysUnavailable, "keys_unavailable"),
            (TokenError::TooLarge, "too_large"),
            (TokenError::MissingClaim("sub".into()), "required_claim"),
        ] {
            assert_eq!(AUTH_REFUSALS.values[token_reason(&e)], want, "{e:?}");
        }
        assert_eq!(refusal_reason(&GatewayError::NotFound), None);
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(METHODS[method_index(&Method::GET)], "GET");
        assert_eq!(METHODS[method_index(&Method::PATCH)], "PATCH");
        let odd = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(METHODS[method_index(&odd)], "other");
        for (i, m) in METHODS.iter().enumerate().take(9) {
            assert_eq!(method_index(&Method::from_bytes(m.as_bytes()).unwrap()), i);
        }
    }

    #[test]
    fn upstream_failures_are_told_apart_by_type() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(
            UPSTREAM_FAILURES.values[upstream_kind(UpstreamKind::BadResponse, Some(&reset))],
            "reset"
        );
        let other = std::io::Error::other("garbage");
        assert_eq!(
            UPSTREAM_FAILURES.values[upstream_kind(UpstreamKind::BadResponse, Some(&other))],
            "bad_response"
        );
        assert_eq!(
            UPSTREAM_FAILURES.values[upstream_kind(UpstreamKind::ConnectTimeout, None)],
            "connect"
        );
        assert_eq!(
            UPSTREAM_FAILURES.values[upstream_kind(UpstreamKind::Timeout, None)],
            "timeout"
        );
    }

    #[test]
    fn sharded_cells_sum_across_threads() {
        let cell = Sharded::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        cell.add(1);
                    }
                });
            }
        });
        cell.add(-1);
        assert_eq!(cell.get(), 3999);
    }
}
