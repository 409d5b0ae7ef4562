//! Wire hygiene against the hardening issue: path spellings an upstream
//! could read as another route, malformed bearer credentials on optional
//! routes, `Host` rules (RFC 9112 §3.2), client headers that steer an
//! upstream, the client address behind trusted proxies, and escaping in
//! the pretty log format.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::*;

/// The status line and the body of a raw HTTP/1.1 response.
fn status_and_body(out: &str) -> (&str, &str) {
    let status = out.lines().next().unwrap_or("");
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body)
}

/// A token with `alg: none`: what a forged credential looks like.
fn alg_none_token() -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = b64.encode(
        json!({"sub": "intruder", "aud": "authenticated", "exp": now() + 3600,
               "app_metadata": {"company_id": "c-9"}})
        .to_string(),
    );
    format!("{header}.{claims}.")
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

#[tokio::test]
async fn malformed_bearer_credentials_are_401_on_optional_routes() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "opt",
        "/api/v1/opt",
        &format!("http://{up}"),
        &format!("auth = \"optional\"\n{INJECT}"),
    )))
    .await;
    let forged = alg_none_token();
    let valid = token(user_claims("u-1", "c-1"));
    for auth in [
        format!("Bearer\t{forged}"),
        format!("Bearer\t{valid}"),
        format!("bearer  {valid}"),
        "Bearer".to_owned(),
        format!("Bearer{valid}"),
        format!("Bearer {valid} extra"),
    ] {
        let raw = format!(
            "GET /api/v1/opt/x HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        );
        let out = raw_request(gw.addr, raw.as_bytes(), Duration::from_secs(3)).await;
        let shown = auth
            .replace(&forged, "<alg:none>")
            .replace(&valid, "<valid>");
        assert!(out.starts_with("HTTP/1.1 401"), "{shown:?}: {out}");
        let lower = out.to_ascii_lowercase();
        assert!(
            lower.contains("www-authenticate: bearer error=\"invalid_token\""),
            "{shown:?}: {out}"
        );
        let (_, body) = status_and_body(&out);
        assert!(serde_json::from_str::<Value>(body).is_ok(), "{out}");
    }

    // Another scheme passes unchanged, without identity.
    let r = client()
        .get(gw.url("/api/v1/opt/x"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["authorization"][0], "Basic abc");
    assert!(v["headers"].get("x-user-id").is_none(), "{v}");

    // The exact form still works.
    let r = client()
        .get(gw.url("/api/v1/opt/x"))
        .header("authorization", format!("Bearer {valid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-user-id"][0], "u-1");
}

#[tokio::test]
async fn http11_without_host_or_with_two_is_400() {
    let (up, reached) = counting_upstream().await;
    let gw = Gateway::start(&config(&route(
        "svc",
        "/api/v1/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    for raw in [
        "GET /api/v1/svc/x HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /api/v1/svc/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
        "GET /api/v1/svc/x HTTP/1.0\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
    ] {
        let out = raw_request(gw.addr, raw.as_bytes(), Duration::from_secs(3)).await;
        let (status, body) = status_and_body(&out);
        assert!(status.contains(" 400"), "{raw:?}: {out}");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{out}"));
        assert!(v["detail"].as_str().unwrap_or("").contains("Host"), "{out}");
    }
    assert_eq!(reached.load(Ordering::SeqCst), 0);
    // HTTP/1.0 may lack Host.
    let out = raw_request(
        gw.addr,
        b"GET /api/v1/svc/x HTTP/1.0\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn headers_that_steer_an_upstream_are_stripped_on_every_route() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "svc",
        "/api/v1/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    let r = client()
        .get(gw.url("/api/v1/svc/x"))
        .header("forwarded", "for=203.0.113.1;proto=https")
        .header("x-real-ip", "203.0.113.2")
        .header("x-http-method-override", "DELETE")
        .header("x-original-url", "/api/v1/admin")
        .header("x-rewrite-url", "/api/v1/admin")
        .header("x-forwarded-for", "203.0.113.3")
        .header("x-kept", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    for gone in [
        "forwarded",
        "x-real-ip",
        "x-http-method-override",
        "x-original-url",
        "x-rewrite-url",
    ] {
        assert!(v["headers"].get(gone).is_none(), "{gone} reached: {v}");
    }
    assert_eq!(v["headers"]["x-kept"][0], "1");
    assert_eq!(v["headers"]["x-forwarded-for"][0], "203.0.113.3, 127.0.0.1");
}

#[tokio::test]
async fn client_ip_is_the_rightmost_untrusted_forwarded_for_entry() {
    let up = echo_upstream().await;
    let routes = route(
        "svc",
        "/api/v1/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    );
    let xff = "198.51.100.1, 203.0.113.9, 10.1.2.3";

    // No trusted proxies: the peer is the client, whatever XFF says.
    let gw = Gateway::start(&config(&routes)).await;
    let r = client()
        .get(gw.url("/api/v1/svc/x"))
        .header("x-forwarded-for", xff)
        .header("x-request-id", "untrusted-peer")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["headers"]["x-forwarded-for"][0],
        format!("{xff}, 127.0.0.1")
    );
    let line = gw
        .wait_log(Duration::from_secs(3), |l| {
            l["request_id"] == "untrusted-peer"
        })
        .await
        .expect("request logged");
    assert_eq!(line["client_ip"], "127.0.0.1", "{line}");
    drop(gw);

    // The peer (127.0.0.1) and 10/8 trusted: the rightmost entry outside them.
    let cfg = config(&routes).replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\", \"10.0.0.0/8\", \"::1/128\"]\n",
    );
    let gw = Gateway::start(&cfg).await;
    let r = client()
        .get(gw.url("/api/v1/svc/x"))
        .header("x-forwarded-for", xff)
        .header("x-request-id", "trusted-peer")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    // X-Forwarded-For keeps appending the peer.
    assert_eq!(
        v["headers"]["x-forwarded-for"][0],
        format!("{xff}, 127.0.0.1")
    );
    let line = gw
        .wait_log(Duration::from_secs(3), |l| {
            l["request_id"] == "trusted-peer"
        })
        .await
        .expect("request logged");
    assert_eq!(line["client_ip"], "203.0.113.9", "{line}");

    // Trusted peer, no X-Forwarded-For: the peer.
    client()
        .get(gw.url("/api/v1/svc/x"))
        .header("x-request-id", "trusted-no-xff")
        .send()
        .await
        .unwrap();
    let line = gw
        .wait_log(Duration::from_secs(3), |l| {
            l["request_id"] == "trusted-no-xff"
        })
        .await
        .expect("request logged");
    assert_eq!(line["client_ip"], "127.0.0.1", "{line}");
}

/// A gateway started with `--log-format pretty`, whose stdout lines are
/// collected; the harness's `Gateway` reads JSON lines only.
struct PrettyGateway {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for PrettyGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_pretty(toml: &str) -> PrettyGateway {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    let mut child = Command::new(bin())
        .args(["--log-format", "pretty", "serve", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .env("GATEWAY_LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let addr = loop {
        let found = lines.lock().unwrap().iter().find_map(|l| {
            let rest = l.split_once("nyro-gw serving")?.1;
            let listen = rest.split_once("listen=")?.1;
            let listen = listen.split_whitespace().next()?.trim_matches('"');
            listen.parse().ok()
        });
        if let Some(a) = found {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no serving line: {:?}",
            lines.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    PrettyGateway {
        child,
        addr,
        lines,
        _dir: dir,
    }
}

#[tokio::test]
async fn pretty_log_escapes_non_ascii_and_control_characters() {
    let up = echo_upstream().await;
    let gw = start_pretty(&config(&route(
        "svc",
        "/api/v1/svc",
        &format!("http://{up}"),
        "auth = \"required\"",
    )))
    .await;
    // A real signed token whose subject holds a non-ASCII letter and a
    // terminal escape sequence.
    let t = token(user_claims("j\u{f6}hn\u{1b}[31m", "c-\u{2713}"));
    let r = client()
        .get(format!("http://{}/api/v1/svc/x", gw.addr))
        .header("authorization", format!("Bearer {t}"))
        .header("x-request-id", "pretty-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    let line = loop {
        let found = gw
            .lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("pretty-1"))
            .cloned();
        if let Some(l) = found {
            break l;
        }
        assert!(Instant::now() < deadline, "{:?}", gw.lines.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(line.is_ascii(), "{line}");
    assert!(!line.contains('\u{1b}'), "{line:?}");
    assert!(line.contains(r"j\u00f6hn\u001b[31m"), "{line}");
    assert!(line.contains(r"c-\u2713"), "{line}");
}
