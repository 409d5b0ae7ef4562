//! The per-worker HTTP/1.1 upstream pool (README "Performance"): a
//! connection is reused once its response has been read to the end, a
//! response abandoned midway closes its connection instead of handing it
//! to the next request, and idle connections close after 10 s even when
//! no request comes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

use crate::support::*;

/// What the upstream saw: connections by accept order, and when each
/// closed.
#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    closed: Mutex<Vec<(usize, Instant)>>,
}

impl Seen {
    fn closed_at(&self, conn: usize) -> Option<Instant> {
        let closed = self.closed.lock().unwrap();
        closed.iter().find(|(c, _)| *c == conn).map(|(_, t)| *t)
    }
}

/// An upstream answering `/slow` with one chunk and then nothing (the
/// body never ends), and anything else with the connection's number and
/// the `Host` it was sent.
async fn numbered_upstream() -> (SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let state = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let conn = state.accepted.fetch_add(1, Ordering::SeqCst);
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    let body: TestBody = if req.uri().path() == "/slow" {
                        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
                            Frame::data(Bytes::from(vec![b'x'; 16 * 1024])),
                        )]);
                        StreamBody::new(first.chain(futures_util::stream::pending()))
                            .map_err(Into::into)
                            .boxed()
                    } else {
                        let host = req.headers().get("host").map(|h| h.to_str().unwrap());
                        full(json!({ "conn": conn, "host": host }).to_string())
                    };
                    Ok::<_, std::convert::Infallible>(Response::new(body))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
                state.closed.lock().unwrap().push((conn, Instant::now()));
            });
        }
    });
    (addr, seen)
}

/// One worker, so that every request uses the same pool.
fn one_worker(upstream: SocketAddr) -> String {
    config(&route(
        "svc",
        "/svc",
        &format!("http://{upstream}"),
        "auth = \"none\"\nstrip_prefix = true",
    ))
    .replace("[server]\n", "[server]\nworkers = 1\n")
}

async fn get_json(url: &str) -> Value {
    let resp = tokio::time::timeout(Duration::from_secs(10), client().get(url).send())
        .await
        .expect("an answer within 10 s")
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection_with_its_host() {
    let (up, seen) = numbered_upstream().await;
    let gw = Gateway::start(&one_worker(up)).await;
    for i in 0..10 {
        let answer = get_json(&gw.url("/svc/x")).await;
        assert_eq!(answer["conn"], 0, "request {i}: {answer}");
        assert_eq!(answer["host"], up.to_string(), "request {i}: {answer}");
    }
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn abandoned_response_closes_its_connection_instead_of_reusing_it() {
    let (up, seen) = numbered_upstream().await;
    let gw = Gateway::start(&one_worker(up)).await;
    // Warm the pool: connection 0 serves a whole response, then idles.
    assert_eq!(get_json(&gw.url("/svc/x")).await["conn"], 0);

    // `/slow` takes connection 0 and never finishes its body; the client
    // reads the head and one chunk, then leaves.
    let mut slow = tokio::time::timeout(
        Duration::from_secs(10),
        client().get(gw.url("/svc/slow")).send(),
    )
    .await
    .expect("the head within 10 s")
    .unwrap();
    assert_eq!(slow.status(), 200);
    let chunk = tokio::time::timeout(Duration::from_secs(10), slow.chunk())
        .await
        .expect("a chunk within 10 s")
        .unwrap();
    assert!(chunk.is_some_and(|c| !c.is_empty()));
    drop(slow);

    // The half-read connection is closed, never handed to a new request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.closed_at(0).is_none() {
        assert!(Instant::now() < deadline, "connection 0 still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = get_json(&gw.url("/svc/x")).await;
    assert_eq!(answer["conn"], 1, "{answer}");
}

#[tokio::test]
async fn idle_upstream_connection_closes_after_the_idle_timeout() {
    let (up, seen) = numbered_upstream().await;
    let gw = Gateway::start(&one_worker(up)).await;
    assert_eq!(get_json(&gw.url("/svc/x")).await["conn"], 0);
    let idle_from = Instant::now();
    // Idle for 10 s, then closed by the next sweep (every 5 s).
    let deadline = idle_from + Duration::from_secs(25);
    let closed = loop {
        if let Some(at) = seen.closed_at(0) {
            break at;
        }
        assert!(Instant::now() < deadline, "still open after 25 s idle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let idled = closed.duration_since(idle_from);
    assert!(
        idled >= Duration::from_secs(9) && idled <= Duration::from_secs(16),
        "closed after {idled:?} idle"
    );
    // The gateway still serves, on a new connection.
    assert_eq!(get_json(&gw.url("/svc/x")).await["conn"], 1);
}
