//! Wire hygiene against the hardening issue: path spellings an upstream
//! could read as another route, malformed bearer credentials on optional
//! routes, `Host` rules (RFC 9112 §3.2), client headers that steer an
//! upstream, the client address behind trusted proxies, and escaping in
//! the pretty log format.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::Response;
use serde_json::{Value, json};

use crate::support::*;

/// An upstream that counts the requests reaching it and echoes nothing
/// but "reached".
async fn counting_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let reached = Arc::new(AtomicUsize::new(0));
    let hits = reached.clone();
    let addr = upstream(move |_req: hyper::Request<hyper::body::Incoming>| {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            Response::new(full("reached"))
        }
    })
    .await;
    (addr, reached)
}

/// The status line and the body of a raw HTTP/1.1 response.
fn status_and_body(out: &str) -> (&str, &str) {
    let status = out.lines().next().unwrap_or("");
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body)
}

#[tokio::test]
async fn path_spellings_that_lead_outside_the_route_are_400_and_never_forwarded() {
    let (up, reached) = counting_upstream().await;
    let gw = Gateway::start(&config(&format!(
        "{}{}",
        route("x", "/api/v1/x", &format!("http://{up}"), "auth = \"none\""),
        route(
            "ingest",
            "/api/v1/x/ingest",
            &format!("http://{up}"),
            "auth = \"required\""
        ),
    )))
    .await;
    for (path, why) in [
        // Node's WHATWG URL parser reads `\` as `/`, and `..` then climbs:
        // this reached the protected `ingest` handler with no user.
        (&b"/api/v1/x/..\\ingest/a"[..], "backslash"),
        (b"/api/v1/x/a\\b", "backslash"),
        (b"/api/v1/x/a%00b", "NUL"),
        (b"/api/v1/x/a;jsessionid=1", "semicolon"),
        (b"/api/v1/x/..;/ingest/a", "semicolon"),
        (b"/api/v1/x;/a", "semicolon"),
    ] {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(path);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
        let out = raw_request(gw.addr, &raw, Duration::from_secs(3)).await;
        let shown = String::from_utf8_lossy(path);
        assert!(out.starts_with("HTTP/1.1 400"), "{shown}: {out}");
        let (_, body) = status_and_body(&out);
        let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{shown}: {out}"));
        assert!(
            v["detail"].as_str().unwrap_or("").contains(why),
            "{shown}: {out}"
        );
    }
    // A raw NUL byte in the request target: hyper's parser refuses it
    // (400, empty body) before the gateway sees it; never forwarded.
    let raw = b"GET /api/v1/x/a\0b HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    let out = raw_request(gw.addr, raw, Duration::from_secs(3)).await;
    assert!(out.starts_with("HTTP/1.1 400"), "raw NUL: {out}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );

    // An encoded semicolon is data, not a matrix parameter: it passes.
    let raw = b"GET /api/v1/x/a%3Bb HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    let out = raw_request(gw.addr, raw, Duration::from_secs(3)).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}
