//! Metrics and tracing against the real binary: every metric family moves
//! when its event happens, W3C `traceparent` is continued, started or
//! replaced on the way to the upstream, and spans reach an OTLP/HTTP
//! receiver decoded with the official protobuf definitions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::support::*;

/// The value of the series `key` (name and labels, as printed) in a
/// Prometheus text page; `None` when the page has no such series.
fn series(page: &str, key: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits up to 10 s for the series `key` to reach `at_least`; returns the
/// last page.
async fn wait_series(gw: &Gateway, key: &str, at_least: f64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = gw.admin_get("/metrics").await;
        if series(&page, key).is_some_and(|v| v >= at_least) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{key} never reached {at_least}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to 10 s for the series `key` to equal `want`.
async fn wait_series_eq(gw: &Gateway, key: &str, want: f64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = gw.admin_get("/metrics").await;
        if series(&page, key) == Some(want) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{key} never became {want}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_bearer(gw: &Gateway, path: &str, bearer: Option<&str>) -> u16 {
    let mut rb = client().get(gw.url(path));
    if let Some(t) = bearer {
        rb = rb.header("authorization", format!("Bearer {t}"));
    }
    rb.send().await.unwrap().status().as_u16()
}

const ISSUER: &str = "https://issuer.test/auth/v1";

/// Claims every check passes, with the configured issuer.
fn good_claims() -> Value {
    let mut c = user_claims("u-1", "co-1");
    c["iss"] = json!(ISSUER);
    c
}

#[tokio::test]
async fn every_auth_refusal_reason_jwks_fetch_and_cache_lookup_is_counted() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (pem, jwk) = es256_key("key-1");
    let serving = Arc::new(AtomicBool::new(false));
    let jwks_addr = jwks_server(&[jwk], serving.clone()).await;
    let up = echo_upstream().await;
    let cfg = with_auth(
        &with_admin(&config(&route(
            "req",
            "/req",
            &format!("http://{up}"),
            INJECT,
        ))),
        &format!(
            "secret = \"{SECRET}\"\nissuer = \"{ISSUER}\"\njwks_url = \"http://{jwks_addr}/jwks.json\"\nalgorithms = [\"HS256\", \"ES256\"]"
        ),
    );
    let gw = Gateway::start(&cfg).await;
    wait_series(&gw, "nyro_jwks_fetches_total{result=\"error\"}", 1.0).await;

    // keys_unavailable: an ES256 token before any JWKS was fetched (503:
    // the gateway cannot verify, README "On the wire").
    let es = es256_token(&pem, "key-1", &good_claims());
    assert_eq!(get_bearer(&gw, "/req/x", Some(&es)).await, 503);

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good_claims();
        f(&mut c);
        token(c)
    };
    let expired = with(&|c| c["exp"] = json!(now() - 3600));
    let early = with(&|c| c["nbf"] = json!(now() + 3600));
    let wrong_aud = with(&|c| c["aud"] = json!("someone-else"));
    let wrong_iss = with(&|c| c["iss"] = json!("https://evil.test"));
    let no_sub = with(&|c| {
        c.as_object_mut().unwrap().remove("sub");
    });
    let bad_sig = sign(good_claims(), b"another-secret-that-is-long-enough-012345");
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &good_claims(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let huge = "a".repeat(17 * 1024);
    for (bearer, want) in [
        (None, 401),
        (Some("not-a-jwt"), 401),
        (Some(expired.as_str()), 401),
        (Some(early.as_str()), 401),
        (Some(bad_sig.as_str()), 401),
        (Some(hs512.as_str()), 401),
        (Some(wrong_aud.as_str()), 401),
        (Some(wrong_iss.as_str()), 401),
        (Some(huge.as_str()), 401),
        (Some(no_sub.as_str()), 401),
    ] {
        assert_eq!(get_bearer(&gw, "/req/x", bearer).await, want, "{bearer:?}");
    }
    // required_claim also covers a required injected claim (403).
    let no_company = with(&|c| c["app_metadata"] = json!({}));
    assert_eq!(get_bearer(&gw, "/req/x", Some(&no_company)).await, 403);

    // The JWKS comes up: a fetch succeeds with one key; then a kid it
    // does not hold is refused as unknown_kid.
    serving.store(true, Ordering::SeqCst);
    let page = wait_series(&gw, "nyro_jwks_fetches_total{result=\"ok\"}", 1.0).await;
    assert_eq!(series(&page, "nyro_jwks_keys"), Some(1.0), "{page}");
    let stranger = es256_token(&pem, "key-9", &good_claims());
    assert_eq!(get_bearer(&gw, "/req/x", Some(&stranger)).await, 401);

    // A good token twice on one connection, so to one worker (each has
    // its own cache, README "Performance"): a miss (verified), then a hit.
    let good = token(good_claims());
    let page = gw.admin_get("/metrics").await;
    let hits = series(&page, "nyro_token_cache_lookups_total{result=\"hit\"}").unwrap();
    let misses = series(&page, "nyro_token_cache_lookups_total{result=\"miss\"}").unwrap();
    let keep_alive = client();
    for _ in 0..2 {
        let resp = keep_alive
            .get(gw.url("/req/x"))
            .header("authorization", format!("Bearer {good}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }

    let page = gw.admin_get("/metrics").await;
    for (reason, n) in [
        ("missing", 1.0),
        ("malformed", 1.0),
        ("expired", 1.0),
        ("not_yet_valid", 1.0),
        ("bad_signature", 1.0),
        ("algorithm", 1.0),
        ("audience", 1.0),
        ("issuer", 1.0),
        ("unknown_kid", 1.0),
        ("keys_unavailable", 1.0),
        ("too_large", 1.0),
        ("required_claim", 2.0),
    ] {
        assert_eq!(
            series(
                &page,
                &format!("nyro_auth_refusals_total{{reason=\"{reason}\"}}")
            ),
            Some(n),
            "{reason}:\n{page}"
        );
    }
    assert_eq!(
        series(&page, "nyro_token_cache_lookups_total{result=\"hit\"}"),
        Some(hits + 1.0),
        "{page}"
    );
    assert_eq!(
        series(&page, "nyro_token_cache_lookups_total{result=\"miss\"}"),
        Some(misses + 1.0),
        "{page}"
    );
    assert_eq!(
        series(
            &page,
            "nyro_requests_total{route=\"req\",method=\"GET\",class=\"4xx\"}"
        ),
        // Every refusal above but keys_unavailable, which is a 503.
        Some(12.0),
        "{page}"
    );
}

#[tokio::test]
async fn every_upstream_failure_kind_is_counted_and_odd_methods_share_one_label() {
    let up = echo_upstream().await;
    let FailingUpstreams {
        dead,
        garbage,
        reset,
        slow,
    } = failing_upstreams().await;
    let none = "auth = \"none\"";
    let cfg = with_admin(&config(
        &[
            route("ok", "/ok", &format!("http://{up}"), none),
            route("dead", "/dead", &format!("http://{dead}"), none),
            route("garbage", "/garbage", &format!("http://{garbage}"), none),
            route("reset", "/reset", &format!("http://{reset}"), none),
            route(
                "slow",
                "/slow",
                &format!("http://{slow}"),
                "auth = \"none\"\ntimeout = \"300ms\"",
            ),
        ]
        .concat(),
    ));
    let gw = Gateway::start(&cfg).await;
    for (path, want) in [
        ("/dead/x", 503),
        ("/garbage/x", 502),
        ("/reset/x", 502),
        ("/slow/x", 504),
    ] {
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{path}");
    }
    let odd = reqwest::Method::from_bytes(b"PROPFIND").unwrap();
    let r = client().request(odd, gw.url("/ok/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = gw.admin_get("/metrics").await;
    for kind in ["connect", "timeout", "reset", "bad_response"] {
        assert_eq!(
            series(
                &page,
                &format!("nyro_upstream_failures_total{{kind=\"{kind}\"}}")
            ),
            Some(1.0),
            "{kind}:\n{page}"
        );
    }
    assert_eq!(
        series(
            &page,
            "nyro_requests_total{route=\"ok\",method=\"other\",class=\"2xx\"}"
        ),
        Some(1.0),
        "{page}"
    );
    assert!(!page.contains("PROPFIND"), "a client cannot mint a series");
    assert_eq!(
        series(&page, "nyro_request_duration_seconds_count{route=\"slow\"}"),
        Some(1.0),
        "{page}"
    );
}

#[tokio::test]
async fn requests_in_flight_and_open_connections_by_protocol_follow_the_traffic() {
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let held = upstream(move |_req| {
        let gate = gate.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), gate.notified()).await;
            Response::new(full("done"))
        }
    })
    .await;
    let up = echo_upstream().await;
    let cfg = with_admin(&config(
        &[
            route(
                "held",
                "/held",
                &format!("http://{held}"),
                "auth = \"none\"",
            ),
            route("ok", "/ok", &format!("http://{up}"), "auth = \"none\""),
        ]
        .concat(),
    ));
    let gw = Gateway::start(&cfg).await;
    let h1 = client();
    let h2 = h2_client();
    assert_eq!(h1.get(gw.url("/ok/x")).send().await.unwrap().status(), 200);
    assert_eq!(h2.get(gw.url("/ok/x")).send().await.unwrap().status(), 200);
    // Both clients keep their connection open in their pools.
    wait_series_eq(&gw, "nyro_open_connections{protocol=\"http1\"}", 1.0).await;
    wait_series_eq(&gw, "nyro_open_connections{protocol=\"http2\"}", 1.0).await;

    let url = gw.url("/held/x");
    let pending = tokio::spawn(async move { h2.get(url).send().await.map(|r| r.status()) });
    wait_series_eq(&gw, "nyro_requests_in_flight", 1.0).await;
    release.notify_one();
    let status = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    wait_series_eq(&gw, "nyro_requests_in_flight", 0.0).await;

    // The clients go away with their connections.
    drop(h1);
    wait_series_eq(&gw, "nyro_open_connections{protocol=\"http1\"}", 0.0).await;
    wait_series_eq(&gw, "nyro_open_connections{protocol=\"http2\"}", 0.0).await;
}

#[tokio::test]
async fn reloads_are_counted_by_result_and_the_generation_follows() {
    let up = echo_upstream().await;
    let v1 = with_admin(&config(&route(
        "a",
        "/a",
        &format!("http://{up}"),
        "auth = \"none\"",
    )));
    let gw = Gateway::start(&v1).await;
    let page = gw.admin_get("/metrics").await;
    assert_eq!(series(&page, "nyro_config_generation"), Some(1.0), "{page}");
    gw.write_config(&format!(
        "{v1}\n{}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:9\"\n",
        route("b", "/b", &format!("http://{up}"), "auth = \"none\"")
    ));
    gw.signal("HUP");
    let page = wait_series(&gw, "nyro_config_reloads_total{result=\"applied\"}", 1.0).await;
    assert_eq!(series(&page, "nyro_config_generation"), Some(2.0), "{page}");
    // Export is started once: a new endpoint waits for a restart, and
    // says so.
    let line = gw
        .wait_log(Duration::from_secs(5), |v| {
            v["setting"]
                .as_str()
                .is_some_and(|s| s.starts_with("telemetry.otlp_endpoint (exporting to none"))
        })
        .await;
    assert!(line.is_some(), "{:#?}", gw.logs());
    gw.write_config(&format!("{v1}\n[server.nonsense]\n"));
    gw.signal("HUP");
    let page = wait_series(&gw, "nyro_config_reloads_total{result=\"rejected\"}", 1.0).await;
    assert_eq!(series(&page, "nyro_config_generation"), Some(2.0), "{page}");
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_series_the_gateway_exports() {
    let up = echo_upstream().await;
    let cfg = with_admin(&config(&route(
        "a",
        "/a",
        &format!("http://{up}"),
        "auth = \"none\"",
    )));
    let gw = Gateway::start(&cfg).await;
    client().get(gw.url("/a/x")).send().await.unwrap();
    let page = gw.admin_get("/metrics").await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/grafana-dashboard.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 8, "a dashboard of {} queries", exprs.len());
    let mut names = std::collections::BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("nyro_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    for name in &names {
        assert!(
            page.lines().any(|l| !l.starts_with('#')
                && l.strip_prefix(name.as_str())
                    .is_some_and(|t| t.starts_with('{') || t.starts_with(' '))),
            "the dashboard queries {name}, which /metrics does not have:\n{page}"
        );
    }
    for family in [
        "nyro_requests_total",
        "nyro_request_duration_seconds_bucket",
        "nyro_requests_in_flight",
        "nyro_open_connections",
        "nyro_auth_refusals_total",
        "nyro_upstream_failures_total",
        "nyro_token_cache_lookups_total",
        "nyro_jwks_fetches_total",
        "nyro_config_reloads_total",
        "nyro_config_generation",
        "nyro_trace_spans_total",
    ] {
        assert!(
            names.contains(family),
            "the dashboard has no panel on {family}"
        );
    }
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

// ---- tracing ------------------------------------------------------------

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A `traceparent` as (trace id, parent id, flags) when it is valid
/// version 00.
fn parts(tp: &str) -> Option<(String, String, String)> {
    let f: Vec<&str> = tp.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (f.len() == 4
        && f[0] == "00"
        && hex(f[1], 32)
        && hex(f[2], 16)
        && hex(f[3], 2)
        && f[1].bytes().any(|b| b != b'0')
        && f[2].bytes().any(|b| b != b'0'))
    .then(|| (f[1].to_owned(), f[2].to_owned(), f[3].to_owned()))
}

/// The upstream's view of a GET of `path` with `headers`: its
/// `traceparent` and `tracestate`, and the request id.
async fn upstream_trace(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, Option<String>, String) {
    let mut rb = client().get(gw.url(path));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let seen: Value = r.json().await.unwrap();
    let tps = seen["headers"]["traceparent"].as_array().unwrap();
    assert_eq!(tps.len(), 1, "one traceparent upstream: {seen}");
    let tp = tps[0].as_str().unwrap().to_owned();
    let ts = seen["headers"]["tracestate"].as_array().map(|a| {
        a.iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(",")
    });
    (tp, ts, rid)
}

/// The `trace_id` of the request log line of request `rid`.
async fn logged_trace_id(gw: &Gateway, rid: &str) -> String {
    let line = gw
        .wait_log(Duration::from_secs(5), |v| {
            v["message"] == "request" && v["request_id"] == rid
        })
        .await
        .expect("the request's log line");
    line["trace_id"]
        .as_str()
        .expect("a trace_id field")
        .to_owned()
}

#[tokio::test]
async fn a_client_trace_is_continued_with_the_gateway_span_as_parent() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "a",
        "/a",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    let (tp, ts, rid) = upstream_trace(
        &gw,
        "/a/x",
        &[("traceparent", PARENT), ("tracestate", "congo=t61rcWkgMzE")],
    )
    .await;
    let (trace, parent, flags) = parts(&tp).unwrap_or_else(|| panic!("invalid {tp}"));
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(
        parent, "00f067aa0ba902b7",
        "the gateway's span is the parent"
    );
    assert_eq!(flags, "01", "the client's sampled flag");
    assert_eq!(ts.as_deref(), Some("congo=t61rcWkgMzE"), "tracestate kept");
    assert_eq!(logged_trace_id(&gw, &rid).await, trace);
}

#[tokio::test]
async fn a_request_without_a_trace_gets_a_fresh_one() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "a",
        "/a",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    let (tp1, _, rid) = upstream_trace(&gw, "/a/x", &[]).await;
    let (tp2, _, _) = upstream_trace(&gw, "/a/x", &[]).await;
    let (t1, _, flags) = parts(&tp1).unwrap_or_else(|| panic!("invalid {tp1}"));
    let (t2, _, _) = parts(&tp2).unwrap_or_else(|| panic!("invalid {tp2}"));
    assert_ne!(t1, t2, "each request starts its own trace");
    assert_eq!(flags, "01", "sample_ratio defaults to 1.0");
    assert_eq!(logged_trace_id(&gw, &rid).await, t1);
}

#[tokio::test]
async fn an_invalid_traceparent_is_replaced_and_its_tracestate_dropped() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "a",
        "/a",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    for bad in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "garbage",
    ] {
        let (tp, ts, _) = upstream_trace(
            &gw,
            "/a/x",
            &[("traceparent", bad), ("tracestate", "congo=t61rcWkgMzE")],
        )
        .await;
        let (trace, _, _) = parts(&tp).unwrap_or_else(|| panic!("{bad} became invalid {tp}"));
        assert_ne!(trace, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
        assert_eq!(
            ts, None,
            "{bad}: tracestate of a trace that was not continued"
        );
    }
}

/// An OTLP/HTTP receiver on 127.0.0.1:0: every body POSTed to
/// `/v1/traces`, as received.
async fn otlp_receiver() -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, Bytes)>>>) {
    let got: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let sink = got.clone();
    let addr = upstream(move |req: Request<Incoming>| {
        let sink = sink.clone();
        async move {
            let path = req.uri().path().to_owned();
            let ct = req
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            sink.lock().unwrap().push((format!("{path} {ct}"), body));
            Response::builder()
                .header("content-type", "application/x-protobuf")
                .body(full(Bytes::new()))
                .unwrap()
        }
    })
    .await;
    (addr, got)
}

/// Every span received so far, decoded.
fn received_spans(
    got: &Mutex<Vec<(String, Bytes)>>,
) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    got.lock()
        .unwrap()
        .iter()
        .flat_map(|(what, body)| {
            assert_eq!(what, "/v1/traces application/x-protobuf");
            let req = ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf");
            req.resource_spans
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans)
        })
        .collect()
}

fn attr(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    let a = span.attributes.iter().find(|a| a.key == key)?;
    Some(match a.value.as_ref()?.value.as_ref()? {
        V::StringValue(s) => s.clone(),
        V::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

async fn wait_spans(
    got: &Mutex<Vec<(String, Bytes)>>,
    n: usize,
) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let spans = received_spans(got);
        if spans.len() >= n {
            return spans;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} spans of {n} exported",
            spans.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn spans_reach_an_otlp_receiver_with_their_attributes_and_no_token() {
    let (otlp, got) = otlp_receiver().await;
    let up = echo_upstream().await;
    let cfg = with_admin(&config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        INJECT,
    ))) + &format!("\n[telemetry]\notlp_endpoint = \"http://{otlp}\"\n");
    let gw = Gateway::start(&cfg).await;
    let tok = token(user_claims("user-7", "company-9"));
    let r = client()
        .get(gw.url("/svc/x"))
        .header("authorization", format!("Bearer {tok}"))
        .header("traceparent", PARENT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    let sent = seen["headers"]["traceparent"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, gateway_span, _) = parts(&sent).unwrap();

    let spans = wait_spans(&got, 1).await;
    let span = &spans[0];
    assert_eq!(hex(&span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(
        hex(&span.span_id),
        gateway_span,
        "the span the upstream saw as parent"
    );
    assert_eq!(attr(span, "nyro.route").as_deref(), Some("svc"));
    assert_eq!(
        attr(span, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(span, "user.id").as_deref(), Some("user-7"));
    assert_eq!(attr(span, "nyro.company_id").as_deref(), Some("company-9"));
    let raw: Vec<u8> = got
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, b)| b.to_vec())
        .collect();
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains(&tok), "the token is never exported");
    assert!(
        !raw.contains(tok.split('.').nth(1).unwrap()),
        "not even its claims part"
    );
    wait_series(&gw, "nyro_trace_spans_total{result=\"exported\"}", 1.0).await;
}

#[tokio::test]
async fn the_standard_variable_alone_turns_export_on_and_the_ratio_samples_new_traces() {
    let (otlp, got) = otlp_receiver().await;
    let up = echo_upstream().await;
    let cfg = config(&route(
        "a",
        "/a",
        &format!("http://{up}"),
        "auth = \"none\"",
    )) + "\n[telemetry]\nsample_ratio = 0.0\n";
    let endpoint = format!("http://{otlp}");
    let gw = Gateway::start_with(&cfg, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)], &[]).await;
    // Ratio 0: a new trace is not sampled, and says so upstream.
    let (tp, _, _) = upstream_trace(&gw, "/a/new", &[]).await;
    assert!(tp.ends_with("-00"), "{tp}");
    // Parent-based: the client's sampled trace is exported all the same.
    upstream_trace(&gw, "/a/sampled", &[("traceparent", PARENT)]).await;
    let spans = wait_spans(&got, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let spans = if received_spans(&got).len() > spans.len() {
        received_spans(&got)
    } else {
        spans
    };
    assert_eq!(spans.len(), 1, "only the sampled trace");
    assert_eq!(hex(&spans[0].trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(attr(&spans[0], "url.path").as_deref(), Some("/a/sampled"));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
