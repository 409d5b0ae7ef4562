//! Connection limits: the header-read deadline from accept on every
//! protocol, the cap on open client connections (and the file-descriptor
//! limit under it), HTTP/2 stream concurrency, and the cap on connections
//! per upstream host.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame (RFC 9113 §6.5).
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A config whose `[server]` table also holds `server_extra`, with one
/// unauthenticated route `/svc` to `upstream`.
fn config_server(server_extra: &str, upstream: SocketAddr) -> String {
    config(&route(
        "svc",
        "/svc",
        &format!("http://{upstream}"),
        "auth = \"none\"",
    ))
    .replace("[server]\n", &format!("[server]\n{server_extra}\n"))
}

/// Reads (and discards) until the peer closes; returns how long that took
/// from `since`, or None when it is still open after `limit`.
async fn closed_after(stream: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.ok()?;
    Some(since.elapsed())
}

/// Asserts that a connection that sent `bytes` is closed about one
/// `header_read_timeout` (1 s) after it was opened.
async fn assert_closed_after_one_second(addr: SocketAddr, bytes: &[u8]) {
    let opened = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let took = closed_after(&mut s, opened, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "connection that sent {:?} still open after 5 s",
                String::from_utf8_lossy(bytes)
            )
        });
    assert!(
        took >= Duration::from_millis(800),
        "closed after {took:?}, before header_read_timeout"
    );
}

#[tokio::test]
async fn silent_connection_is_closed_after_header_read_timeout() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config_server("header_read_timeout = \"1s\"", up)).await;
    assert_closed_after_one_second(gw.addr, b"").await;
}

#[tokio::test]
async fn partial_http1_head_is_closed_after_header_read_timeout() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config_server("header_read_timeout = \"1s\"", up)).await;
    assert_closed_after_one_second(gw.addr, b"GET /svc/x HTTP/1.1\r\nHost: x\r\n").await;
}

#[tokio::test]
async fn partial_h2_preface_is_closed_after_header_read_timeout() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config_server("header_read_timeout = \"1s\"", up)).await;
    assert_closed_after_one_second(gw.addr, &H2_PREFACE[..10]).await;
}

#[tokio::test]
async fn h2c_preface_without_a_request_is_closed_after_header_read_timeout() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config_server("header_read_timeout = \"1s\"", up)).await;
    assert_closed_after_one_second(gw.addr, &[H2_PREFACE, EMPTY_SETTINGS].concat()).await;
}

/// Reads one HTTP/1 response with a `Content-Length` body; its status.
async fn read_response(s: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a whole response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("a content-length")
        .trim()
        .parse()
        .unwrap();
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed within the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    head[9..12].parse().unwrap()
}

const GET_SVC: &[u8] = b"GET /svc/x HTTP/1.1\r\nHost: x\r\n\r\n";

/// Each later HTTP/1 head gets `header_read_timeout` again, counted from
/// the end of the previous response (README, `[server]` keys): requests
/// each sent within it keep the connection past it, and a connection that
/// then starts a head it never finishes, or sends nothing, is closed.
#[tokio::test]
async fn each_later_http1_head_gets_header_read_timeout_again() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config_server("header_read_timeout = \"1s\"", up)).await;
    for rest in [&b"GET /svc/x HTTP/1.1\r\nHost"[..], b""] {
        let opened = Instant::now();
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        for _ in 0..3 {
            s.write_all(GET_SVC).await.unwrap();
            assert_eq!(read_response(&mut s).await, 200);
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        assert!(opened.elapsed() > Duration::from_millis(1800));
        s.write_all(GET_SVC).await.unwrap();
        assert_eq!(read_response(&mut s).await, 200, "open 1.8 s after accept");
        let answered = Instant::now();
        s.write_all(rest).await.unwrap();
        let took = closed_after(&mut s, answered, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("still open 5 s after {rest:?}"));
        assert!(
            took >= Duration::from_millis(800),
            "closed {took:?} after the last answer, before header_read_timeout"
        );
    }
}

#[tokio::test]
async fn tls_handshake_that_never_starts_is_closed() {
    let up = echo_upstream().await;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), ck.signing_key.serialize_pem()).unwrap();
    let cfg = config_server(
        "header_read_timeout = \"1s\"\ntls = { cert = \"tls.crt\", key = \"tls.key\" }",
        up,
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, cfg).unwrap();
    let gw = Gateway::start_in(dir, path, &[], &[]).await;
    assert_closed_after_one_second(gw.addr, b"").await;
}

/// GET `path` on an HTTP/1.1 or h2c connection already open.
async fn get(sender: &mut Sender, path: &str) -> Response<Incoming> {
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = match sender {
        Sender::H1(s) => tokio::time::timeout(Duration::from_secs(5), s.send_request(req)).await,
        Sender::H2(s) => {
            let req = {
                let (mut parts, body) = req.into_parts();
                parts.version = http::Version::HTTP_2;
                parts.uri = format!("http://localhost{path}").parse().unwrap();
                Request::from_parts(parts, body)
            };
            tokio::time::timeout(Duration::from_secs(5), s.send_request(req)).await
        }
    };
    resp.expect("response within 5 s")
        .unwrap_or_else(|e| panic!("{path}: {e:?}"))
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

async fn h1(addr: SocketAddr) -> Sender {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    Sender::H1(sender)
}

async fn h2c(addr: SocketAddr) -> Sender {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    Sender::H2(sender)
}

#[tokio::test]
async fn connection_that_sent_a_request_in_time_outlives_header_read_timeout() {
    let (up, _) = connection_counting_upstream(Duration::from_millis(1500)).await;
    let gw = Gateway::start(&config_server("header_read_timeout = \"1s\"", up)).await;
    for name in ["HTTP/1.1", "h2c"] {
        let opened = Instant::now();
        let mut sender = match name {
            "h2c" => h2c(gw.addr).await,
            _ => h1(gw.addr).await,
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The answer comes 2 s after accept, past header_read_timeout.
        assert_eq!(get(&mut sender, "/svc/first").await.status(), 200, "{name}");
        assert!(opened.elapsed() > Duration::from_millis(1800));
        if let Sender::H2(_) = sender {
            assert_eq!(
                get(&mut sender, "/svc/second").await.status(),
                200,
                "the deadline ended with the first request head"
            );
        }
    }
}

#[tokio::test]
async fn at_max_connections_accept_pauses_and_health_still_answers_after_slot_frees() {
    let up = echo_upstream().await;
    let cfg = with_admin(&config_server("max_connections = 2", up));
    let gw = Gateway::start(&cfg).await;
    let silent1 = TcpStream::connect(gw.addr).await.unwrap();
    let _silent2 = TcpStream::connect(gw.addr).await.unwrap();
    // The third connection waits in the kernel's backlog: no answer.
    let mut third = h1(gw.addr).await;
    let pending = get(&mut third, "/svc/third");
    tokio::pin!(pending);
    assert!(
        tokio::time::timeout(Duration::from_millis(1000), &mut pending)
            .await
            .is_err(),
        "a third connection was served with max_connections = 2"
    );
    assert_eq!(gw.admin_get("/health").await, nyro_gw::state::HEALTHY);
    drop(silent1);
    let resp = tokio::time::timeout(Duration::from_secs(3), pending)
        .await
        .expect("served once a slot freed");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn fd_limit_lowers_max_connections_so_health_answers_under_150_silent_connections() {
    // prlimit (util-linux) sets the child's descriptor limit; Linux only.
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prlimit (util-linux) is needed under CI=true"
        );
        eprintln!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let up = echo_upstream().await;
    let cfg = with_admin(&config_server("", up));
    let gw = Gateway::start_wrapped(&["prlimit", "--nofile=128", "--"], &cfg).await;
    let mut silent = Vec::new();
    for _ in 0..150 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = tokio::time::timeout(Duration::from_secs(3), gw.admin_get("/health")).await;
    assert_eq!(
        health.expect("/health answered under 150 silent connections"),
        nyro_gw::state::HEALTHY
    );
    assert!(
        gw.find_log(|v| v["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_connections lowered")))
            .is_some(),
        "a warning says max_connections was lowered:\n{}",
        gw.logs().join("\n")
    );
    assert!(
        gw.find_log(|v| v["message"] == "accept failed").is_none(),
        "the gateway ran out of file descriptors:\n{}",
        gw.logs().join("\n")
    );
}

/// Reads frames from an h2c connection until the server's first SETTINGS
/// frame, and returns its (identifier, value) pairs (RFC 9113 §6.5.1).
async fn server_settings(addr: SocketAddr) -> Vec<(u16, u32)> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[H2_PREFACE, EMPTY_SETTINGS].concat())
        .await
        .unwrap();
    let read = async {
        loop {
            let mut head = [0u8; 9];
            s.read_exact(&mut head).await.unwrap();
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            s.read_exact(&mut payload).await.unwrap();
            // SETTINGS without the ACK flag.
            if head[3] == 4 && head[4] & 1 == 0 {
                return payload
                    .chunks_exact(6)
                    .map(|c| {
                        (
                            u16::from_be_bytes([c[0], c[1]]),
                            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                        )
                    })
                    .collect::<Vec<_>>();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("server SETTINGS within 5 s")
}

#[tokio::test]
async fn h2_client_gets_max_concurrent_streams_128() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config_server("", up)).await;
    let settings = server_settings(gw.addr).await;
    // SETTINGS_MAX_CONCURRENT_STREAMS is 0x3.
    assert!(settings.contains(&(3, 128)), "{settings:?}");
}

/// Sends `n` GETs at once, each on its own client, and returns each one's
/// status and time to answer.
async fn concurrent_gets(url: &str, n: usize) -> Vec<(u16, Duration)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move {
                let start = Instant::now();
                let r = tokio::time::timeout(Duration::from_secs(10), client().get(url).send())
                    .await
                    .expect("answer within 10 s")
                    .unwrap();
                (r.status().as_u16(), start.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.sort();
    out
}

#[tokio::test]
async fn upstream_connections_capped_per_host_then_503() {
    let (up, accepted) = connection_counting_upstream(Duration::from_secs(3)).await;
    let cfg = config_server("max_upstream_connections = 2", up)
        .replace("connect_timeout = \"2s\"", "connect_timeout = \"1s\"");
    let gw = Gateway::start(&cfg).await;
    let answers = concurrent_gets(&gw.url("/svc/slow"), 3).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 503], "{answers:?}");
    assert!(
        answers[2].1 < Duration::from_millis(2500),
        "the 503 came after connect_timeout, not after the upstream answered: {answers:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "upstream connections");
}

/// An upstream answering after `delay`; the most requests it ever held
/// at once.
async fn in_flight_upstream(delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let seen = peak.clone();
    let addr = upstream(move |_req| {
        let (now, peak) = (now.clone(), peak.clone());
        async move {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Response::new(full("done"))
        }
    })
    .await;
    (addr, seen)
}

#[tokio::test]
async fn request_waiting_at_the_upstream_cap_gets_the_connection_that_frees() {
    // Two workers, so that the two clients' connections land on different
    // workers (connections go to the least busy): the freed place must
    // reach a request waiting on the other worker, whose pool cannot use
    // the first worker's idle connection (that one closes to free it).
    let (up, peak) = in_flight_upstream(Duration::from_millis(300)).await;
    let cfg = config_server("max_upstream_connections = 1\nworkers = 2", up);
    let gw = Gateway::start(&cfg).await;
    let answers = concurrent_gets(&gw.url("/svc/x"), 2).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200], "{answers:?}");
    assert_eq!(peak.load(Ordering::SeqCst), 1, "requests upstream at once");
    // The second waited for the first (about 600 ms), well within the
    // 2 s connect_timeout it would otherwise have hit.
    let slowest = answers.iter().map(|a| a.1).max().unwrap_or_default();
    assert!(slowest >= Duration::from_millis(550), "{answers:?}");
    assert!(slowest < Duration::from_millis(1900), "{answers:?}");
}
