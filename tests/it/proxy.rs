//! The streaming proxy against CONTRACT.md's wire rules: fidelity, header
//! rewriting, every status in the table, streaming, upgrades, drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

async fn gateway_to(upstream: &str, extra: &str) -> Gateway {
    Gateway::start(&config(&route(
        "svc",
        "/api/v1/svc",
        upstream,
        &format!("auth = \"none\"\n{extra}"),
    )))
    .await
}

#[tokio::test]
async fn method_path_query_and_body_arrive_unchanged() {
    let up = echo_upstream().await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let url = gw.url("/api/v1/svc/a%20b/%E2%9C%93/c%3Bd?x=1&y=%2F;z&x=2&empty=");
    let resp = client()
        .patch(&url)
        .body("payload \u{1F600} bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["method"], "PATCH");
    assert_eq!(v["path"], "/api/v1/svc/a%20b/%E2%9C%93/c%3Bd");
    assert_eq!(v["query"], "x=1&y=%2F;z&x=2&empty=");
    assert_eq!(v["body"], "payload \u{1F600} bytes");
    assert_eq!(v["headers"]["host"][0], up.to_string());
}

#[tokio::test]
async fn strip_prefix_and_upstream_base_path() {
    let up = echo_upstream().await;
    let gw = gateway_to(&format!("http://{up}/base/"), "strip_prefix = true").await;
    let v: Value = client()
        .get(gw.url("/api/v1/svc/items/7?q=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/base/items/7");
    assert_eq!(v["query"], "q=1");
    let v: Value = client()
        .get(gw.url("/api/v1/svc"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/base/");
}

#[tokio::test]
async fn routes_match_whole_segments_by_longest_prefix() {
    let a = echo_upstream().await;
    let b = echo_upstream().await;
    let cfg = config(&format!(
        "{}{}",
        route("short", "/api", &format!("http://{a}"), "auth = \"none\""),
        route(
            "long",
            "/api/v1/ingest",
            &format!("http://{b}"),
            "auth = \"none\""
        )
    ));
    let gw = Gateway::start(&cfg).await;
    let host = |v: Value| v["headers"]["host"][0].as_str().unwrap().to_owned();
    let get = |p: &str| client().get(gw.url(p)).send();
    assert_eq!(
        host(get("/api/v1/ingest/x").await.unwrap().json().await.unwrap()),
        b.to_string()
    );
    assert_eq!(
        host(get("/api/v1/ingest").await.unwrap().json().await.unwrap()),
        b.to_string()
    );
    assert_eq!(
        host(
            get("/api/v1/ingestion")
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        ),
        a.to_string()
    );
    let r = get("/apiary").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["detail"], "Not Found");
}

#[tokio::test]
async fn hop_by_hop_headers_are_dropped_both_ways() {
    let up = upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        let seen: Vec<String> = req.headers().keys().map(|k| k.to_string()).collect();
        Response::builder()
            .header("connection", "x-upstream-hop")
            .header("x-upstream-hop", "secret")
            .header("keep-alive", "timeout=5")
            .header("proxy-authenticate", "Basic")
            .header("x-end-to-end", "kept")
            .body(full(seen.join(",")))
            .unwrap()
    })
    .await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let raw = raw_request(
        gw.addr,
        b"GET /api/v1/svc/x HTTP/1.1\r\nHost: gw\r\nConnection: x-client-hop, close\r\nX-Client-Hop: 1\r\nKeep-Alive: timeout=9\r\nTE: gzip\r\nProxy-Authorization: Basic abc\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let lower = raw.to_ascii_lowercase();
    let (head, body) = lower.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("http/1.1 200"), "{raw}");
    assert!(head.contains("x-end-to-end: kept"));
    for h in ["x-upstream-hop", "keep-alive", "proxy-authenticate"] {
        assert!(
            !head.contains(&format!("\n{h}:")),
            "{h} leaked to the client:\n{raw}"
        );
    }
    for h in [
        "x-client-hop",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
        "connection",
    ] {
        assert!(
            !body.split(',').any(|k| k.trim() == h),
            "{h} leaked upstream: {body}"
        );
    }
    assert!(body.contains("x-kept"));
}

#[tokio::test]
async fn forwarded_headers_and_request_id() {
    let up = echo_upstream().await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let resp = client()
        .get(gw.url("/api/v1/svc/x"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-request-id", "client-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "client-id-123");
    let pt: f64 = resp.headers()["x-process-time"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..5.0).contains(&pt));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["headers"]["x-forwarded-for"][0], "203.0.113.9, 127.0.0.1");
    assert_eq!(v["headers"]["x-forwarded-proto"][0], "http");
    assert_eq!(v["headers"]["x-forwarded-host"][0], gw.addr.to_string());
    assert_eq!(v["headers"]["x-request-id"][0], "client-id-123");

    // An insane id is replaced by a UUID, the same one both ways.
    let resp = client()
        .get(gw.url("/api/v1/svc/x"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(rid.len(), 36);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["headers"]["x-request-id"][0], rid.as_str());
    // The log line carries it.
    let line = gw
        .wait_log(Duration::from_secs(2), |l| l["request_id"] == rid.as_str())
        .await
        .expect("request logged");
    assert_eq!(line["status"], 200);
    assert_eq!(line["route"], "svc");
    assert_eq!(line["method"], "GET");
}

#[tokio::test]
async fn gateway_errors_are_json_with_the_contract_status() {
    let up = echo_upstream().await;
    let FailingUpstreams {
        dead,
        garbage,
        reset,
        slow,
    } = failing_upstreams().await;
    let cfg = config(
        &[
            route(
                "limited",
                "/methods",
                &format!("http://{up}"),
                "auth = \"none\"\nmethods = [\"GET\", \"POST\"]",
            ),
            route("empty", "/empty", "", "auth = \"none\""),
            route(
                "dead",
                "/dead",
                &format!("http://{dead}"),
                "auth = \"none\"",
            ),
            route(
                "garbage",
                "/garbage",
                &format!("http://{garbage}"),
                "auth = \"none\"",
            ),
            route(
                "reset",
                "/reset",
                &format!("http://{reset}"),
                "auth = \"none\"",
            ),
            route(
                "slow",
                "/slow",
                &format!("http://{slow}"),
                "auth = \"none\"\ntimeout = \"500ms\"",
            ),
            route(
                "dns",
                "/dns",
                "http://no-such-host.invalid:80",
                "auth = \"none\"",
            ),
        ]
        .concat(),
    );
    let gw = Gateway::start(&cfg).await;
    let cases: &[(&str, reqwest::Method, u16, &str)] = &[
        ("/nothing-here", reqwest::Method::GET, 404, "Not Found"),
        (
            "/methods/x",
            reqwest::Method::DELETE,
            405,
            "Method Not Allowed",
        ),
        (
            "/empty/x",
            reqwest::Method::GET,
            501,
            "No upstream is configured for this route.",
        ),
        (
            "/dead/x",
            reqwest::Method::GET,
            503,
            "Upstream service unavailable.",
        ),
        (
            "/dns/x",
            reqwest::Method::GET,
            503,
            "Upstream service unavailable.",
        ),
        (
            "/garbage/x",
            reqwest::Method::GET,
            502,
            "Upstream service sent an invalid response.",
        ),
        (
            "/reset/x",
            reqwest::Method::GET,
            502,
            "Upstream service sent an invalid response.",
        ),
        (
            "/slow/x",
            reqwest::Method::GET,
            504,
            "Upstream service timeout.",
        ),
    ];
    for (path, method, status, detail) in cases {
        let started = Instant::now();
        let resp = client()
            .request(method.clone(), gw.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
        if *status == 405 {
            assert_eq!(resp.headers()["allow"], "GET, POST");
        }
        if *status == 504 {
            assert!(
                started.elapsed() < Duration::from_millis(2500),
                "504 after the route timeout, not the upstream's 3 s"
            );
        }
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["detail"], *detail, "{path}");
    }
    // Upstream failures are logged with who caused them.
    let line = gw
        .wait_log(Duration::from_secs(2), |l| {
            l["status"] == 503 && l["route"] == "dead"
        })
        .await
        .unwrap();
    assert_eq!(line["blame"], "upstream");
    assert_eq!(line["level"], "WARN");
}

#[tokio::test]
async fn body_over_max_body_is_413_counted_or_declared() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let up = upstream(move |req: hyper::Request<hyper::body::Incoming>| {
        let counter = counter.clone();
        async move {
            let n = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            counter.fetch_add(n, Ordering::SeqCst);
            Response::new(full(n.to_string()))
        }
    })
    .await;
    let cfg = config(&route(
        "svc",
        "/up",
        &format!("http://{up}"),
        "auth = \"none\"",
    ))
    .replace("[server]\n", "[server]\nmax_body = \"1KiB\"\n");
    let gw = Gateway::start(&cfg).await;
    // Within the cap.
    let r = client()
        .post(gw.url("/up"))
        .body(vec![b'a'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "1024");
    // Declared too large: refused before the upstream is contacted.
    let r = client()
        .post(gw.url("/up"))
        .body(vec![b'a'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Request body too large."
    );
    // Chunked, no length: counted while streaming.
    let chunks = futures_util::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'b'; 512]))),
    );
    let r = client()
        .post(gw.url("/up"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1024,
        "only the in-cap body was received whole"
    );
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_never_smuggled() {
    let paths = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = paths.clone();
    let up = upstream(move |req: hyper::Request<hyper::body::Incoming>| {
        let seen = seen.clone();
        async move {
            let cl = req.headers().get("content-length").is_some();
            seen.lock()
                .unwrap()
                .push(format!("{} cl={cl}", req.uri().path()));
            Response::new(full("reached"))
        }
    })
    .await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    // Conflicting lengths: 400 from the HTTP parser, nothing forwarded.
    let conflicting: &[&[u8]] = &[
        b"POST /api/v1/svc/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"POST /api/v1/svc/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5, 6\r\n\r\nhello!",
        b"POST /api/v1/svc/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n\r\nhello",
    ];
    for raw in conflicting {
        let out = raw_request(gw.addr, raw, Duration::from_secs(3)).await;
        assert!(
            out.starts_with("HTTP/1.1 400"),
            "expected 400 for {:?}, got {out:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(
        paths.lock().unwrap().is_empty(),
        "nothing reaches the upstream: {:?}",
        paths.lock().unwrap()
    );

    // Content-Length with Transfer-Encoding, in either order, alone or
    // pipelined behind a good request: 400 JSON for that request, the
    // connection closed, and the smuggled request never read.
    for raw in [
        &b"POST /api/v1/svc/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/v1/svc/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"[..],
        b"POST /api/v1/svc/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /api/v1/svc/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n",
    ] {
        let out = raw_request(gw.addr, raw, Duration::from_secs(3)).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        assert!(out.contains("Ambiguous message framing"), "{out}");
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "then the connection closes: {out}");
        assert!(out.to_ascii_lowercase().contains("connection: close"), "{out}");
    }
    let out = raw_request(
        gw.addr,
        b"POST /api/v1/svc/first HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhelloPOST /api/v1/svc/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/v1/svc/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    let statuses: Vec<&str> = out
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &out[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "400"], "{out}");
    let seen = paths.lock().unwrap().clone();
    assert_eq!(
        seen,
        ["/api/v1/svc/first cl=true"],
        "only the good request reaches the upstream"
    );
}

/// The framing watch behind the 400 above must never flag a good request:
/// many pipelined requests with every kind of body framing, sent in one
/// write (so heads and bodies straddle reads), all reach the upstream.
#[tokio::test]
async fn pipelined_requests_of_every_framing_all_pass() {
    let up = echo_upstream().await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let mut raw = Vec::new();
    let n = 60;
    for i in 0..n {
        // A body that looks like a smuggling head: body, not a head.
        let body = format!(
            "POST /x{i} HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        match i % 4 {
            0 => raw.extend_from_slice(format!("GET /api/v1/svc/{i} HTTP/1.1\r\nHost: gw\r\n\r\n").as_bytes()),
            1 => raw.extend_from_slice(
                format!(
                    "POST /api/v1/svc/{i} HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            ),
            2 => raw.extend_from_slice(
                format!(
                    "POST /api/v1/svc/{i} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{body}\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            ),
            _ => raw.extend_from_slice(
                format!(
                    "\r\nPUT /api/v1/svc/{i} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n0\r\n\r\n"
                )
                .as_bytes(),
            ),
        }
    }
    raw.extend_from_slice(
        b"GET /api/v1/svc/last HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    );
    let out = raw_request(gw.addr, &raw, Duration::from_secs(10)).await;
    let statuses: Vec<&str> = out
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &out[i + 9..i + 12])
        .filter(|s| *s != "100")
        .collect();
    assert_eq!(statuses.len(), n + 1, "{out}");
    assert!(statuses.iter().all(|s| *s == "200"), "{statuses:?}");
    assert!(!out.contains("Ambiguous"), "{out}");
}

#[tokio::test]
async fn repeated_authorization_is_400_invalid_request() {
    let up = echo_upstream().await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let r = client()
        .get(gw.url("/api/v1/svc/x"))
        .header("authorization", "Bearer a.b.c")
        .header("authorization", "Bearer d.e.f")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_request\"")
    );
    // Checked after routing and the method, as the contract orders them.
    let r = client()
        .get(gw.url("/nowhere"))
        .header("authorization", "Bearer a.b.c")
        .header("authorization", "Bearer d.e.f")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn paths_an_upstream_could_read_otherwise_are_refused() {
    let reached = Arc::new(AtomicUsize::new(0));
    let hits = reached.clone();
    let up = upstream(move |_req: hyper::Request<hyper::body::Incoming>| {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            Response::new(full("reached"))
        }
    })
    .await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    for (path, why) in [
        ("/api/v1/svc/../../admin", "dot segments"),
        ("/api/v1/svc/%2e%2e/x", "dot segments"),
        ("/api/v1//svc/x", "empty segment"),
        ("/api/v1/svc%2Fx", "encoded slash"),
        ("/api/v1/%73vc/x", "needs no encoding"),
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
        let out = raw_request(gw.addr, raw.as_bytes(), Duration::from_secs(3)).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{path}: {out}");
        assert!(out.contains(why), "{path}: {out}");
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn health_and_ready() {
    let gw = Gateway::start(&config(&route("svc", "/", "", "auth = \"none\""))).await;
    let r = client().get(gw.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["service"], "nyro-gw");
    let r = client().get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn server_sent_events_stream_chunk_by_chunk() {
    let (tx, rx) = tokio::sync::mpsc::channel::<&'static str>(4);
    let rx = Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let up = upstream(move |_req| {
        let rx = rx.clone();
        async move {
            let rx = rx.lock().await.take().expect("one SSE request");
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                let ev = rx.recv().await?;
                Some((
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(Bytes::from(ev))),
                    rx,
                ))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
    })
    .await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    tx.send("data: first\n\n").await.unwrap();
    let resp = client()
        .get(gw.url("/api/v1/svc/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(3), body.next())
        .await
        .expect("first event before the second is sent");
    assert_eq!(first.unwrap().unwrap(), "data: first\n\n");
    tx.send("data: second\n\n").await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(3), body.next())
        .await
        .unwrap();
    assert_eq!(second.unwrap().unwrap(), "data: second\n\n");
    drop(tx);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), body.next())
            .await
            .unwrap()
            .is_none()
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap()
}

#[tokio::test]
async fn large_upload_and_download_stream_with_flat_memory() {
    const SIZE: usize = 256 << 20;
    let up = upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        if req.method() == hyper::Method::GET {
            let chunk = Bytes::from(vec![b'd'; 64 << 10]);
            let stream = futures_util::stream::iter((0..SIZE / chunk.len()).map(move |_| {
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(chunk.clone()))
            }));
            return Response::new(BodyExt::boxed(StreamBody::new(stream)));
        }
        let mut body = req.into_body();
        let mut n = 0usize;
        while let Some(frame) = body.frame().await {
            n += frame.unwrap().data_ref().map_or(0, |d| d.len());
        }
        Response::new(full(n.to_string()))
    })
    .await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let pid = gw_pid(&gw);
    let before = rss_kib(pid);
    let chunk = Bytes::from(vec![b'u'; 64 << 10]);
    let chunks = futures_util::stream::iter(
        (0..SIZE / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let r = client()
        .post(gw.url("/api/v1/svc/upload"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), SIZE.to_string());
    let r = client()
        .get(gw.url("/api/v1/svc/download"))
        .send()
        .await
        .unwrap();
    let mut total = 0;
    let mut s = r.bytes_stream();
    while let Some(c) = s.next().await {
        total += c.unwrap().len();
    }
    assert_eq!(total, SIZE);
    let after = rss_kib(pid);
    assert!(
        after < before + 64 * 1024,
        "gateway memory grew from {before} KiB to {after} KiB while streaming 2 x 256 MiB"
    );
}

fn gw_pid(gw: &Gateway) -> u32 {
    gw.pid()
}

#[tokio::test]
async fn upstream_dying_mid_body_aborts_the_client_response() {
    let up = raw_upstream(|mut s| async move {
        let mut buf = [0u8; 2048];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = s.set_zero_linger();
    })
    .await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let r = client().get(gw.url("/api/v1/svc/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        r.bytes().await.is_err(),
        "a truncated body must not look complete"
    );
    // The line names the request and its route, and blames the upstream.
    let line = gw
        .wait_log(Duration::from_secs(3), |l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("mid-body"))
        })
        .await
        .expect("logged");
    assert_eq!(line["request_id"], id.as_str(), "{line}");
    assert_eq!(line["route"], "svc", "{line}");
    assert_eq!(line["blame"], "upstream", "{line}");
}

#[tokio::test]
async fn idempotent_request_survives_a_dead_pooled_connection() {
    // An upstream that answers once per connection, then closes it without
    // saying so (no `Connection: close`), as servers with short idle
    // timeouts do.
    let conns = Arc::new(AtomicUsize::new(0));
    let c = conns.clone();
    let up = raw_upstream(move |mut s| {
        c.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    for i in 0..5 {
        let r = client().get(gw.url("/api/v1/svc/x")).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(r.text().await.unwrap(), "ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(conns.load(Ordering::SeqCst) >= 5);
}

#[tokio::test]
async fn websocket_is_tunnelled() {
    use tokio_tungstenite::tungstenite::Message;
    let up = upstream(
        |mut req: hyper::Request<hyper::body::Incoming>| async move {
            let key = req.headers().get("sec-websocket-key").cloned().unwrap();
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let upgraded = on_upgrade.await.unwrap();
                let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    hyper_util::rt::TokioIo::new(upgraded),
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                let (mut tx, mut rx) = ws.split();
                while let Some(Ok(msg)) = rx.next().await {
                    if msg.is_text() {
                        use futures_util::SinkExt;
                        let _ = tx
                            .send(Message::text(format!("echo: {}", msg.into_text().unwrap())))
                            .await;
                    }
                }
            });
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            Response::builder()
                .status(101)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-accept", accept)
                .body(full(""))
                .unwrap()
        },
    )
    .await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let (mut ws, resp) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/svc/ws", gw.addr))
            .await
            .unwrap();
    assert_eq!(resp.status(), 101);
    use futures_util::SinkExt;
    ws.send(Message::text("hello")).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(3), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "echo: hello");
}

/// HTTP/2 streams of one connection each wait for their upstream on a
/// timer of their own (an HTTP/1 request on its connection's): both end
/// at the route's `timeout`.
#[tokio::test]
async fn http2_streams_to_a_slow_upstream_each_get_a_gateway_timeout() {
    let fails = failing_upstreams().await;
    let cfg = config(&route(
        "slow",
        "/slow",
        &format!("http://{}", fails.slow),
        "auth = \"none\"\ntimeout = \"500ms\"",
    ));
    let gw = Gateway::start(&cfg).await;
    let h2 = h2_client();
    let started = Instant::now();
    let (a, b) = tokio::join!(
        h2.get(gw.url("/slow/a")).send(),
        h2.get(gw.url("/slow/b")).send()
    );
    for r in [a, b] {
        let r = r.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 504);
    }
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "504s after the route timeout, not the upstream's 3 s"
    );
}

#[tokio::test]
async fn http2_clients_and_h2c_upstreams() {
    let up = echo_upstream().await;
    let cfg = config(
        &[
            route("h1", "/h1", &format!("http://{up}"), "auth = \"none\""),
            route(
                "h2",
                "/h2",
                &format!("http://{up}"),
                "auth = \"none\"\nhttp2 = true",
            ),
        ]
        .concat(),
    );
    let gw = Gateway::start(&cfg).await;
    let h2 = h2_client();
    let r = h2.get(gw.url("/h1/x")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"], "HTTP/1.1");
    let v: Value = client()
        .get(gw.url("/h2/x"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(v["path"], "/h2/x");
}

#[tokio::test]
async fn head_and_expect_continue() {
    let up = echo_upstream().await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let r = client().head(gw.url("/api/v1/svc/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());

    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /api/v1/svc/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(b"hello").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut rest)).await;
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("200 OK"), "{text}");
    assert!(text.contains("\"body\":\"hello\""), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("\"expect\""),
        "Expect is answered by the gateway, not forwarded"
    );
}

#[tokio::test]
async fn sigterm_drains_requests_in_flight_then_exits_zero() {
    let up = upstream(|_req| async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Response::new(full("finished"))
    })
    .await;
    let mut gw = gateway_to(&format!("http://{up}"), "").await;
    let url = gw.url("/api/v1/svc/slow");
    let inflight = tokio::spawn(async move {
        client()
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(gw.addr).await.is_err(),
        "no new connections while draining"
    );
    assert_eq!(inflight.await.unwrap(), "finished");
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits after draining");
    assert!(status.success(), "{status}");
}

/// An upstream that declares and sends an `x-checksum` trailer after a
/// body that says which `TE` it was sent.
async fn trailer_upstream() -> std::net::SocketAddr {
    upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        let te = req
            .headers()
            .get("te")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", http::HeaderValue::from_static("abc123"));
        let frames = vec![
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(Bytes::from(format!(
                "te={te};"
            )))),
            Ok(Frame::trailers(trailers)),
        ];
        let mut resp = Response::new(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
            frames,
        ))));
        resp.headers_mut()
            .insert("trailer", http::HeaderValue::from_static("x-checksum"));
        resp
    })
    .await
}

#[tokio::test]
async fn trailers_pass_through_when_the_client_accepts_them() {
    let up = trailer_upstream().await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let out = raw_request(
        gw.addr,
        b"GET /api/v1/svc/t HTTP/1.1\r\nHost: gw\r\nTE: trailers\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    let lower = out.to_ascii_lowercase();
    assert!(
        out.contains("te=trailers;"),
        "TE: trailers reaches the upstream: {out}"
    );
    assert!(
        lower.contains("trailer: x-checksum"),
        "the declaration is kept: {out}"
    );
    let (_, after_body) = lower.split_once("te=trailers;").expect("body present");
    assert!(
        after_body.contains("\r\n0\r\nx-checksum: abc123\r\n\r\n"),
        "the trailer follows the last chunk: {out}"
    );
}

#[tokio::test]
async fn trailers_are_dropped_for_a_client_that_did_not_ask() {
    let up = trailer_upstream().await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let out = raw_request(
        gw.addr,
        b"GET /api/v1/svc/t HTTP/1.1\r\nHost: gw\r\nTE: gzip\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // TE other than "trailers" is hop-by-hop and never reaches the upstream.
    assert!(out.contains("te=;"), "{out}");
    assert!(
        out.ends_with("\r\n0\r\n\r\n"),
        "a complete chunked body without trailer fields: {out:?}"
    );
}

#[tokio::test]
async fn trailers_reach_an_h2_client() {
    let up = trailer_upstream().await;
    let gw = gateway_to(&format!("http://{up}"), "").await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Empty<Bytes>>();
    let resp = client
        .get(format!("http://{}/api/v1/svc/t", gw.addr).parse().unwrap())
        .await
        .expect("h2 response");
    assert_eq!(resp.status(), 200);
    let collected = resp.into_body().collect().await.expect("body");
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers arrive over h2");
    assert_eq!(trailers["x-checksum"], "abc123");
    // The gateway asks the upstream for trailers on an h2 client's behalf.
    assert_eq!(collected.to_bytes(), "te=trailers;");
}
