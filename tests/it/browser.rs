//! CORS end to end in a real browser (issue 6): headless Chromium, driven
//! over the Chrome DevTools Protocol, loads a page from an allowed origin and
//! from a disallowed one (two loopback ports are two origins) and calls the
//! gateway with `fetch(…, {credentials: "include"})` and an `Authorization`
//! header, which forces a preflight. Only a browser applies the CORS rules
//! for real: what it lets the page read is what Nyro's frontend will read,
//! here the upstream's JSON, `X-Request-ID`, the gateway's own 401 and 503,
//! and nothing at all from an origin the route's policy leaves out.
//!
//! Needs Debian's `chromium` (`.ci/install-browser.sh`); `NYRO_CHROMIUM`
//! names another binary. Without one the test fails when `CI` is set and
//! is skipped loudly otherwise.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::*;

/// The longest any single step may take (browser start, page load, one fetch).
const STEP: Duration = Duration::from_secs(20);

/// The page the browser loads, from either origin.
const PAGE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cors-page.html"
));

#[tokio::test]
async fn browser_reads_gateway_answers_only_from_allowed_origin() {
    let Some(chromium) = find_chromium() else {
        return;
    };

    // Two page servers: two ports of 127.0.0.1 are two origins.
    let allowed_page = page_server().await;
    let other_page = page_server().await;
    let allowed_origin = format!("http://{allowed_page}");
    let other_origin = format!("http://{other_page}");

    let up = echo_upstream().await;
    let routes = [
        route(
            "open",
            "/api/open",
            &format!("http://{up}"),
            "auth = \"none\"",
        ),
        route(
            "private",
            "/api/private",
            &format!("http://{up}"),
            "auth = \"required\"",
        ),
        route(
            "down",
            "/api/down",
            &format!("http://{}", dead_addr().await),
            "auth = \"none\"",
        ),
        // Only the other origin may call this one: a policy per route.
        route(
            "partner",
            "/api/partner",
            &format!("http://{up}"),
            &format!("auth = \"none\"\ncors_origins = [\"{other_origin}\"]"),
        ),
    ]
    .concat();
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
connect_timeout = "2s"
request_timeout = "10s"
shutdown_grace = "2s"

[auth]
secret = "{SECRET}"

[cors]
allowed_origins = ["{allowed_origin}"]

{routes}
"#
    );
    let gw = Gateway::start(&toml).await;

    let browser = Chromium::launch(&chromium).await;
    let mut cdp = browser.connect().await;
    let result = scenario(&mut cdp, &gw, &allowed_origin, &other_origin).await;
    if let Err(why) = result {
        panic!(
            "{why}\n--- gateway log ---\n{}\n--- chromium stderr (last lines) ---\n{}",
            gw.logs().join("\n"),
            browser.stderr_tail(40)
        );
    }
}

/// The browser's part of the test; an `Err` carries what went wrong.
async fn scenario(
    cdp: &mut Cdp,
    gw: &Gateway,
    allowed_origin: &str,
    other_origin: &str,
) -> Result<(), String> {
    // A credentialed JSON POST with a bearer token, as Nyro's frontend sends.
    let post_with_token = json!({
        "method": "POST",
        "credentials": "include",
        "headers": {"Authorization": "Bearer x.y.z", "Content-Type": "application/json"},
        "body": "{}",
    });

    // 1. From the allowed origin: the preflight passes, the page reads the
    //    upstream's JSON and the exposed X-Request-ID.
    let page = cdp.open(allowed_origin).await?;
    let url = gw.url("/api/open/echo?from=allowed");
    let r = cdp.call_gateway(&page, &url, &post_with_token).await?;
    check(r["fetched"] == true, "allowed origin: fetch failed", &r)?;
    check(r["status"] == 200, "allowed origin: status", &r)?;
    check(r["json"]["method"] == "POST", "echoed method", &r)?;
    check(r["json"]["path"] == "/api/open/echo", "echoed path", &r)?;
    check(
        r["json"]["headers"]["authorization"][0] == "Bearer x.y.z",
        "Authorization reached the upstream",
        &r,
    )?;
    check(
        r["requestId"].is_string() && r["requestId"] == r["json"]["headers"]["x-request-id"][0],
        "X-Request-ID readable by the page and equal to the upstream's",
        &r,
    )?;
    check(
        r["processTime"].is_string(),
        "X-Process-Time readable by the page",
        &r,
    )?;
    expect_log(gw, "OPTIONS", "/api/open/echo", 200, "the preflight").await?;

    // 2. The gateway's own 401 is readable: status and detail.
    let no_token = json!({
        "method": "POST",
        "credentials": "include",
        "headers": {"Content-Type": "application/json"},
        "body": "{}",
    });
    let r = cdp
        .call_gateway(&page, &gw.url("/api/private/me"), &no_token)
        .await?;
    check(
        r["fetched"] == true,
        "401 must be readable, not blocked",
        &r,
    )?;
    check(r["status"] == 401, "status of the required route", &r)?;
    check(
        r["json"]["detail"] == "Not authenticated",
        "401 detail readable",
        &r,
    )?;
    check(r["requestId"].is_string(), "X-Request-ID on the 401", &r)?;
    expect_log(gw, "OPTIONS", "/api/private/me", 200, "preflight, not 401").await?;

    // The same with a token the gateway refuses: the preflight on an
    // auth-required route carries no token and must not be refused.
    let r = cdp
        .call_gateway(&page, &gw.url("/api/private/token"), &post_with_token)
        .await?;
    check(
        r["fetched"] == true,
        "401 with a token must be readable",
        &r,
    )?;
    check(r["status"] == 401, "bad token status", &r)?;
    check(r["json"]["detail"].is_string(), "bad token detail", &r)?;

    // The gateway's 5xx is readable too.
    let r = cdp
        .call_gateway(&page, &gw.url("/api/down/x"), &post_with_token)
        .await?;
    check(r["fetched"] == true, "503 must be readable", &r)?;
    check(r["status"] == 503, "status of a dead upstream", &r)?;
    check(
        r["json"]["detail"] == "Upstream service unavailable.",
        "503 detail readable",
        &r,
    )?;

    // A route whose cors_origins leave this origin out blocks it.
    let r = cdp
        .call_gateway(&page, &gw.url("/api/partner/x"), &post_with_token)
        .await?;
    check(
        r["fetched"] == false && r["error"] == "TypeError: Failed to fetch",
        "a route's cors_origins replace [cors].allowed_origins",
        &r,
    )?;

    // 3. From a disallowed origin the browser blocks the call: the preflight
    //    gets 400 and the POST is never sent.
    let page = cdp.open(other_origin).await?;
    let r = cdp
        .call_gateway(&page, &gw.url("/api/open/blocked"), &post_with_token)
        .await?;
    check(
        r["fetched"] == false && r["error"] == "TypeError: Failed to fetch",
        "disallowed origin must be blocked",
        &r,
    )?;
    expect_log(
        gw,
        "OPTIONS",
        "/api/open/blocked",
        400,
        "the refused preflight",
    )
    .await?;
    if gw
        .find_log(|v| v["method"] == "POST" && v["path"] == "/api/open/blocked")
        .is_some()
    {
        return Err("the browser sent the POST after a refused preflight".into());
    }

    // A simple GET needs no preflight and reaches the gateway, but its
    // answer carries no Access-Control-Allow-Origin, so the page cannot read it.
    let simple_get = json!({"method": "GET", "credentials": "include"});
    let r = cdp
        .call_gateway(&page, &gw.url("/api/open/simple"), &simple_get)
        .await?;
    check(
        r["fetched"] == false && r["error"] == "TypeError: Failed to fetch",
        "disallowed origin must not read a simple GET",
        &r,
    )?;
    expect_log(gw, "GET", "/api/open/simple", 200, "the simple GET").await?;

    // ...while the route that lists this origin answers it.
    let r = cdp
        .call_gateway(&page, &gw.url("/api/partner/x"), &post_with_token)
        .await?;
    check(r["fetched"] == true, "cors_origins lets its origin in", &r)?;
    check(r["status"] == 200, "partner route status", &r)?;
    check(r["json"]["path"] == "/api/partner/x", "partner echo", &r)?;
    Ok(())
}

fn check(ok: bool, what: &str, report: &Value) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}; the page reported {report:#}"))
    }
}

/// Waits for the gateway's log line of a request.
async fn expect_log(
    gw: &Gateway,
    method: &str,
    path: &str,
    status: u16,
    what: &str,
) -> Result<(), String> {
    gw.wait_log(Duration::from_secs(5), |v| {
        v["method"] == method && v["path"] == path && v["status"] == status
    })
    .await
    .map(drop)
    .ok_or_else(|| format!("no log line for {what}: {method} {path} -> {status}"))
}

/// Serves the test page at `/` on 127.0.0.1:0.
async fn page_server() -> std::net::SocketAddr {
    upstream(|req: hyper::Request<hyper::body::Incoming>| async move {
        let (status, ctype, body) = if req.uri().path() == "/" {
            (200, "text/html; charset=utf-8", PAGE)
        } else {
            (404, "text/plain", "not found")
        };
        hyper::Response::builder()
            .status(status)
            .header("content-type", ctype)
            .header("cache-control", "no-store")
            .body(full(body))
            .unwrap()
    })
    .await
}

/// The Chromium binary, or `None` (after a loud message) when there is
/// none outside CI. Panics in CI: a skipped browser test proves nothing.
fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NYRO_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let candidates = ["chromium", "chromium-browser", "google-chrome-stable"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::iter::once(PathBuf::from("/usr/bin/chromium")).chain(
        std::env::split_paths(&path)
            .flat_map(|dir| candidates.iter().map(move |c| dir.join(c)))
            .collect::<Vec<_>>(),
    );
    for p in found {
        if p.is_file() {
            return Some(p);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI is set but no Chromium was found (looked for /usr/bin/chromium and {candidates:?} \
             on PATH): run .ci/install-browser.sh or set NYRO_CHROMIUM"
        );
    }
    eprintln!(
        "\n==================== BROWSER TEST SKIPPED ====================\n\
         No Chromium found: the CORS browser test did NOT run.\n\
         Install it with .ci/install-browser.sh (Debian: apt-get install chromium)\n\
         or point NYRO_CHROMIUM at a Chromium/Chrome binary.\n\
         ==============================================================\n"
    );
    None
}

/// A headless Chromium in its own process group, killed (with every
/// renderer it started) on drop.
struct Chromium {
    child: Child,
    /// The DevTools WebSocket of the browser.
    ws_url: String,
    /// Everything it wrote to stderr, for failure messages.
    stderr: Arc<Mutex<Vec<String>>>,
    /// The throwaway profile; removed after the process is gone.
    _profile: tempfile::TempDir,
}

impl Chromium {
    async fn launch(bin: &Path) -> Chromium {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut cmd = Command::new(bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--disable-dev-shm-usage",
            "--no-proxy-server",
            "--password-store=basic",
            "--mute-audio",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });

        let mut browser = Chromium {
            child,
            ws_url: String::new(),
            stderr,
            _profile: profile,
        };
        let deadline = Instant::now() + STEP;
        loop {
            let found = browser.stderr.lock().unwrap().iter().find_map(|l| {
                l.split_once("DevTools listening on ")
                    .map(|(_, url)| url.trim().to_owned())
            });
            if let Some(url) = found {
                browser.ws_url = url;
                return browser;
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                panic!(
                    "chromium exited with {status} before listening:\n{}",
                    browser.stderr_tail(40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not print its DevTools URL within {STEP:?}:\n{}",
                browser.stderr_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn connect(&self) -> Cdp {
        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(&self.ws_url))
            .await
            .expect("DevTools connect timed out")
            .expect("DevTools connect");
        Cdp { ws, next_id: 0 }
    }

    fn stderr_tail(&self, n: usize) -> String {
        let lines = self.stderr.lock().unwrap();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The whole group: the browser and the zygote, GPU and renderer
        // processes it started (process_group(0) made its pid the group id).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal DevTools client: one WebSocket to the browser, page sessions
/// attached in "flatten" mode, one command at a time.
struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Cdp {
    /// Sends one command (to `session`, or to the browser) and returns its
    /// result; events that arrive meanwhile are ignored.
    async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let exchange = async {
            self.ws
                .send(Message::text(msg.to_string()))
                .await
                .map_err(|e| format!("{method}: send: {e}"))?;
            loop {
                let frame = self
                    .ws
                    .next()
                    .await
                    .ok_or_else(|| format!("{method}: DevTools connection closed"))?
                    .map_err(|e| format!("{method}: receive: {e}"))?;
                let Message::Text(text) = frame else { continue };
                let reply: Value = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("{method}: bad JSON from DevTools: {e}"))?;
                if reply["id"] != id {
                    continue;
                }
                if let Some(err) = reply.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(reply["result"].clone());
            }
        };
        tokio::time::timeout(STEP, exchange)
            .await
            .map_err(|_| format!("{method}: no answer within {STEP:?}"))?
    }

    /// Opens a new tab on `origin`/ and returns its session once the page's
    /// script is ready.
    async fn open(&mut self, origin: &str) -> Result<String, String> {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await?;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_owned();
        let url = format!("{origin}/");
        let nav = self
            .call(Some(&session), "Page.navigate", json!({"url": url}))
            .await?;
        if let Some(err) = nav.get("errorText") {
            return Err(format!("navigating to {url}: {err}"));
        }
        // Ready when the new document's script has run; evaluations that
        // race the navigation fail or see about:blank, and are retried.
        let deadline = Instant::now() + STEP;
        let probe = "typeof window.callGateway === 'function' ? location.origin : ''";
        loop {
            if let Ok(v) = self.evaluate(&session, probe).await
                && v == origin
            {
                return Ok(session);
            }
            if Instant::now() > deadline {
                return Err(format!("page {url} did not load within {STEP:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Evaluates `expression` in the page, awaiting a promise, and returns
    /// its value.
    async fn evaluate(&mut self, session: &str, expression: &str) -> Result<Value, String> {
        let r = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("exception in page: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// `fetch(url, init)` in the page; the page's report of what it could read.
    async fn call_gateway(
        &mut self,
        session: &str,
        url: &str,
        init: &Value,
    ) -> Result<Value, String> {
        let expr = format!("window.callGateway({}, {init})", Value::from(url));
        self.evaluate(session, &expr).await
    }
}
