//! The proxy's hardening rules: which `Upgrade` protocols are tunnelled and
//! for how long, identity names in request trailers, who is blamed for a
//! broken request body, and response framing the upstream got wrong.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A config with `server_extra` added to `[server]` and `routes` after it.
fn config_with_server(server_extra: &str, routes: &str) -> String {
    config(routes).replacen(
        "shutdown_grace = \"5s\"\n",
        &format!("shutdown_grace = \"5s\"\n{server_extra}\n"),
        1,
    )
}

/// Reads one HTTP/1.1 head (through the blank line) from `s`; what
/// followed it in the same reads is returned as the second value.
async fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return (String::from_utf8_lossy(&buf).into_owned(), Vec::new()),
        }
    }
}

/// A raw upstream that switches protocols whenever a request asks for any
/// `Upgrade` at all (as a server accepting h2c does) and then echoes every
/// byte; a request without `Upgrade` gets 200 with its head as the body.
/// Every head it received is kept in the returned list.
async fn switching_upstream() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let addr = raw_upstream(move |mut s| {
        let seen = seen.clone();
        async move {
            let (head, _) = read_head(&mut s).await;
            seen.lock().unwrap().push(head.clone());
            let upgrade = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("upgrade").then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            if upgrade.is_empty() {
                let body = head.to_ascii_lowercase();
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                return;
            }
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {upgrade}\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        }
    })
    .await;
    (addr, heads)
}

/// Sends an upgrade request for `protocol` on a new connection and returns
/// the connection with the response head read.
async fn ask_upgrade(gw: &Gateway, path: &str, protocol: &str, extra: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade{extra}\r\nUpgrade: {protocol}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (head, _) = read_head(&mut s).await;
    (s, head)
}

#[tokio::test]
async fn h2c_upgrade_is_never_tunnelled() {
    let (up, heads) = switching_upstream().await;
    let cfg = config(
        &[
            route("open", "/open", &format!("http://{up}"), "auth = \"none\""),
            route(
                "user",
                "/user",
                &format!("http://{up}"),
                &format!("auth = \"required\"\n{INJECT}"),
            ),
        ]
        .concat(),
    );
    let gw = Gateway::start(&cfg).await;
    let tok = token(user_claims("user-1", "c-1"));
    for (path, auth) in [
        ("/open/x", String::new()),
        ("/user/x", format!("\r\nAuthorization: Bearer {tok}")),
    ] {
        let (mut s, head) = ask_upgrade(
            &gw,
            path,
            "h2c",
            &format!(", HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA{auth}"),
        )
        .await;
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "{path}: forwarded as a plain request, not switched:\n{head}"
        );
        let forwarded = heads.lock().unwrap().last().cloned().unwrap();
        let lower = forwarded.to_ascii_lowercase();
        assert!(
            !lower.contains("upgrade") && !lower.contains("http2-settings"),
            "{path}: the h2c offer must not reach the upstream:\n{forwarded}"
        );
        // The connection still speaks HTTP/1.1 to the gateway: a forged
        // identity sent now is a new request, stripped like any other.
        let _ = s.shutdown().await;
    }
}

#[tokio::test]
async fn a_listed_upgrade_tunnels_and_an_unlisted_one_is_dropped() {
    let (up, heads) = switching_upstream().await;
    let cfg = config(
        &[
            route(
                "listed",
                "/listed",
                &format!("http://{up}"),
                "auth = \"none\"\nupgrades = [\"Custom-Proto\"]",
            ),
            route(
                "plain",
                "/plain",
                &format!("http://{up}"),
                "auth = \"none\"",
            ),
        ]
        .concat(),
    );
    let gw = Gateway::start(&cfg).await;

    let (mut s, head) = ask_upgrade(&gw, "/listed/x", "custom-proto", "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut buf))
        .await
        .expect("echo within 3 s")
        .unwrap();
    assert_eq!(&buf, b"ping");

    let (_s, head) = ask_upgrade(&gw, "/plain/x", "custom-proto", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let forwarded = heads.lock().unwrap().last().cloned().unwrap();
    assert!(
        !forwarded.to_ascii_lowercase().contains("upgrade"),
        "an unlisted protocol is dropped from the forwarded request:\n{forwarded}"
    );
}

#[tokio::test]
async fn an_idle_tunnel_closes_after_tunnel_idle_timeout() {
    let (up, _) = switching_upstream().await;
    let cfg = config_with_server(
        "tunnel_idle_timeout = \"1s\"",
        &route(
            "listed",
            "/listed",
            &format!("http://{up}"),
            "auth = \"none\"\nupgrades = [\"custom-proto\"]",
        ),
    );
    let gw = Gateway::start(&cfg).await;
    let (mut s, head) = ask_upgrade(&gw, "/listed/x", "custom-proto", "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Traffic keeps it open past the timeout...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut buf))
            .await
            .expect("echo within 3 s")
            .expect("tunnel still open while in use");
    }
    // ...silence closes it.
    let quiet = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("the idle tunnel is closed within 5 s")
        .ok();
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(rest.is_empty());
}

/// An upstream that answers with the trailers of the request it got.
async fn trailer_echo_upstream() -> std::net::SocketAddr {
    upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        let collected = req.into_body().collect().await;
        let out = match collected {
            Ok(c) => {
                let trailers: serde_json::Map<String, Value> = c
                    .trailers()
                    .map(|t| {
                        t.iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_owned(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({ "body": String::from_utf8_lossy(&c.to_bytes()), "trailers": trailers })
            }
            Err(e) => json!({ "error": e.to_string() }),
        };
        Response::new(full(out.to_string()))
    })
    .await
}

fn trailer_gateway_config(up: std::net::SocketAddr) -> String {
    config(&route(
        "svc",
        "/api/v1/svc",
        &format!("http://{up}"),
        &format!("auth = \"optional\"\n{INJECT}"),
    ))
}

#[tokio::test]
async fn identity_names_in_h1_request_trailers_are_stripped() {
    let up = trailer_echo_upstream().await;
    let gw = Gateway::start(&trailer_gateway_config(up)).await;
    let out = raw_request(
        gw.addr,
        b"POST /api/v1/svc/t HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\
Trailer: X-User-ID, X_Company_ID, X-Other\r\nConnection: close\r\n\r\n\
5\r\nhello\r\n0\r\nX-User-ID: admin\r\nX_Company_ID: c-admin\r\nX-Other: kept\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{out}"));
    assert_eq!(v["body"], "hello", "{v}");
    assert_eq!(v["trailers"], json!({ "x-other": "kept" }), "{v}");
}

#[tokio::test]
async fn identity_names_in_h2_request_trailers_are_stripped() {
    let up = trailer_echo_upstream().await;
    let gw = Gateway::start(&trailer_gateway_config(up)).await;
    type Frames = StreamBody<
        futures_util::stream::Iter<
            std::vec::IntoIter<Result<Frame<Bytes>, std::convert::Infallible>>,
        >,
    >;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Frames>();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-user-id", http::HeaderValue::from_static("admin"));
    trailers.insert("x-company-id", http::HeaderValue::from_static("c-admin"));
    trailers.insert("x-other", http::HeaderValue::from_static("kept"));
    let body = StreamBody::new(futures_util::stream::iter(vec![
        Ok(Frame::data(Bytes::from_static(b"hello"))),
        Ok(Frame::trailers(trailers)),
    ]));
    let req = hyper::Request::post(format!("http://{}/api/v1/svc/t", gw.addr))
        .header("trailer", "x-user-id, x-company-id, x-other")
        .body(body)
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .expect("in time")
        .expect("h2 response");
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["body"], "hello", "{v}");
    assert_eq!(v["trailers"], json!({ "x-other": "kept" }), "{v}");
}

/// The request log line of `path` (the one with a status).
async fn request_line(gw: &Gateway, path: &str) -> Value {
    gw.wait_log(Duration::from_secs(5), |l| {
        l["path"] == path && l["status"].is_u64()
    })
    .await
    .unwrap_or_else(|| panic!("no log line for {path}:\n{}", gw.logs().join("\n")))
}

#[tokio::test]
async fn malformed_request_bodies_are_the_clients_fault() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    let long_ext = format!("5;ext={}\r\nhello\r\n0\r\n\r\n", "x".repeat(20 * 1024));
    let cases: [(&str, String); 3] = [
        ("/svc/bad-size", "zz\r\nhello\r\n0\r\n\r\n".to_owned()),
        ("/svc/lf-only", "5\nhello\n0\n\n".to_owned()),
        ("/svc/long-extension", long_ext),
    ];
    for (path, body) in &cases {
        let raw =
            format!("POST {path} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
        let out = raw_request(gw.addr, raw.as_bytes(), Duration::from_secs(3)).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{path}:\n{out}");
        assert!(!out.contains("Upstream service"), "{path}:\n{out}");
        let line = request_line(&gw, path).await;
        assert_eq!(line["status"], 400, "{line}");
        assert_eq!(line["blame"], "client", "{line}");
    }
}

#[tokio::test]
async fn a_client_aborting_its_upload_is_logged_499_on_the_client() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    for (path, head, close) in [
        ("/svc/length", "Content-Length: 100000", false),
        ("/svc/chunked", "Transfer-Encoding: chunked", false),
        ("/svc/closed", "Content-Length: 100000", true),
    ] {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        let body = if head.contains("chunked") {
            "a\r\n0123456789\r\n"
        } else {
            "0123456789"
        };
        s.write_all(format!("POST {path} HTTP/1.1\r\nHost: gw\r\n{head}\r\n\r\n{body}").as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Gone mid-upload: nothing more will come (half-closed, or gone).
        if close {
            drop(s);
            let line = request_line(&gw, path).await;
            assert_eq!(line["status"], 499, "{line}");
            assert_eq!(line["blame"], "client", "{line}");
            continue;
        }
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
        let out = String::from_utf8_lossy(&out);
        assert!(!out.contains(" 502 "), "{path}:\n{out}");
        let line = request_line(&gw, path).await;
        assert_eq!(line["status"], 499, "{line}");
        assert_eq!(line["blame"], "client", "{line}");
    }
}

/// A gateway whose `/svc` route (auth none) goes to an upstream that
/// answers at once and streams the request body back as it arrives.
async fn body_echo_gateway() -> Gateway {
    let up = upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        let body = req
            .into_body()
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            .boxed();
        Response::new(body)
    })
    .await;
    Gateway::start(&config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await
}

#[tokio::test]
async fn a_body_error_after_the_response_head_closes_the_connection_blaming_the_client() {
    let gw = body_echo_gateway().await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"POST /svc/stream HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await
    .unwrap();
    let (head, _) = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s.write_all(b"zz\r\nbroken\r\n").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("the gateway closes the connection")
        .ok();
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        !rest.ends_with("0\r\n\r\n"),
        "the response must not look complete: {rest:?}"
    );
    let line = gw
        .wait_log(Duration::from_secs(5), |l| {
            l["route"] == "svc" && l["blame"].is_string() && l["status"].is_null()
        })
        .await
        .unwrap_or_else(|| panic!("no body-failure line:\n{}", gw.logs().join("\n")));
    assert_eq!(line["blame"], "client", "{line}");
}

#[tokio::test]
async fn chunked_framing_wins_over_an_upstream_content_length() {
    let up = raw_upstream(|mut s| async move {
        let _ = read_head(&mut s).await;
        let _ = s
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
a\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
            )
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await;
    let gw = Gateway::start(&config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    let r = client().get(gw.url("/svc/both")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.expect("a complete body"),
        "0123456789abcdefghij"
    );
    let line = gw
        .wait_log(Duration::from_secs(3), |l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Content-Length"))
        })
        .await
        .unwrap_or_else(|| panic!("no warning:\n{}", gw.logs().join("\n")));
    assert_eq!(line["blame"], "upstream", "{line}");
}

#[test]
fn check_config_refuses_h2c_in_upgrades_with_its_place_and_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.toml"),
        "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:9\"\nauth = \"none\"\nupgrades = [\"websocket\", \"h2c\"]\n",
    )
    .unwrap();
    let out = cli(dir.path(), &["check-config", "gateway.toml"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains(": error: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.starts_with("gateway.toml:6:26: error: upgrades: \"h2c\" is never tunnelled"),
        "{line}"
    );
    assert!(line.contains("remove it"), "{line}");
}

/// An HTTP/2 request body fed from a channel: send `Ok` frames, then an
/// `Err` to make the client reset its stream.
type FedBody = StreamBody<
    std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send>,
    >,
>;

fn fed_body() -> (
    tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    FedBody,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, StreamBody::new(Box::pin(stream)))
}

#[tokio::test]
async fn an_h2_client_resetting_its_upload_is_logged_499_on_the_client() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<FedBody>();
    let (tx, body) = fed_body();
    let req = hyper::Request::post(format!("http://{}/svc/h2-abort", gw.addr))
        .body(body)
        .unwrap();
    let pending = tokio::spawn(async move { client.request(req).await });
    tx.send(Ok(Frame::data(Bytes::from_static(b"partial"))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.send(Err(std::io::Error::other("client gave up")))
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), pending).await;
    let line = request_line(&gw, "/svc/h2-abort").await;
    assert_eq!(line["status"], 499, "{line}");
    assert_eq!(line["blame"], "client", "{line}");
}

#[tokio::test]
async fn an_h2_body_error_after_the_response_head_resets_the_stream_blaming_the_client() {
    let gw = body_echo_gateway().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<FedBody>();
    let (tx, body) = fed_body();
    let req = hyper::Request::post(format!("http://{}/svc/h2-stream", gw.addr))
        .body(body)
        .unwrap();
    tx.send(Ok(Frame::data(Bytes::from_static(b"hello"))))
        .await
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .expect("head in time")
        .expect("head");
    assert_eq!(resp.status(), 200);
    tx.send(Err(std::io::Error::other("client gave up")))
        .await
        .unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
        .await
        .expect("the stream ends in time");
    assert!(rest.is_err(), "the response must not look complete");
    let line = gw
        .wait_log(Duration::from_secs(5), |l| {
            l["route"] == "svc" && l["blame"].is_string() && l["status"].is_null()
        })
        .await
        .unwrap_or_else(|| panic!("no body-failure line:\n{}", gw.logs().join("\n")));
    assert_eq!(line["blame"], "client", "{line}");
}
