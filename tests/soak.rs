//! Soak: minutes of mixed load against the real gateway binary, with real
//! upstreams on loopback and a config reload every second; then checks
//! that nothing leaked and no request was lost or answered wrongly.
//!
//! Ignored in the normal run. `bench/soak.sh` is the one command;
//! directly: `NYRO_SOAK_SECS=60 cargo test --release --test soak --
//! --ignored --nocapture`. `NYRO_GW_BIN` picks the binary under test
//! (default: the one cargo built). See bench/README.md for what is
//! checked and why.

#[path = "it/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

use support::{
    SECRET, TestBody, dead_addr, full, raw_upstream, sign, token, upstream, user_claims,
};

/// Every request's deadline, connection and body included.
const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// `[server] header_read_timeout` in the soak's config: a connection
/// without a complete request head by then (counted from accept) is closed
/// by the gateway (README `[server]`).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long past `HEADER_READ_TIMEOUT` a client that sends no complete
/// head waits for the gateway's close before it calls the connection held
/// (a wrong answer). Generous: a busy gateway accepts late, and its clock
/// starts at accept.
const CUT_SLACK: Duration = Duration::from_secs(7);
/// A close seen this much before `HEADER_READ_TIMEOUT` (measured from
/// before `connect`, so earlier than the gateway's accept) is premature.
const CUT_EARLY: Duration = Duration::from_millis(50);
/// The latest close (ms after connect) of a client cut at the timeout, to
/// show the margin left to `CUT_SLACK`.
static SLOWEST_CUT_MS: AtomicU64 = AtomicU64::new(0);
/// Silent connections open at a time, each reopened once the gateway has
/// closed it.
const SILENT_CONNECTIONS: usize = 200;
/// Slow clients at a time (complete their head well within the timeout),
/// and the header bytes each sends, one per `SLOW_EVERY`.
const SLOW_CLIENTS: usize = 4;
const SLOW_BYTES: &[u8] = b"X-Slow";
const SLOW_EVERY: Duration = Duration::from_millis(250);
/// Clients that dribble header bytes, one per `DRIBBLE_EVERY`, for ever:
/// the gateway must cut them at the timeout.
const DRIBBLE_CLIENTS: usize = 8;
const DRIBBLE_EVERY: Duration = Duration::from_millis(400);
/// Clients that send part of the HTTP/2 preface and then nothing.
const PREFACE_CLIENTS: usize = 8;
/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The `/hang` route's timeout.
const HANG_TIMEOUT: &str = "1s";

/// What a request (or connection) of the soak is, and what it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Valid,
    BadSignature,
    Expired,
    Garbage,
    Missing,
    MalformedBearer,
    SemicolonPath,
    BadChunk,
    Stream,
    Upload,
    Upstream500,
    UpstreamReset,
    Unreachable,
    UpstreamHangs,
    Silent,
    Slow,
    Dribble,
    PartialPreface,
}

impl Kind {
    /// The outcomes that count as right (README "On the wire").
    fn expected(self) -> &'static [&'static str] {
        match self {
            Kind::Valid | Kind::Stream | Kind::Upload => &["200"],
            Kind::BadSignature
            | Kind::Expired
            | Kind::Garbage
            | Kind::Missing
            | Kind::MalformedBearer
            | Kind::Slow => &["401"],
            // A refused path (README "On the wire"); the body of a bad
            // chunk size is checked to be the gateway's own.
            Kind::SemicolonPath | Kind::BadChunk => &["400"],
            // The upstream's own 500, passed through (its body checked).
            Kind::Upstream500 => &["500"],
            Kind::UpstreamReset => &["502"],
            Kind::Unreachable => &["503"],
            Kind::UpstreamHangs => &["504"],
            // No complete head by `header_read_timeout`: closed by the
            // gateway (408 would do too), not before, and never answered.
            Kind::Silent | Kind::Dribble | Kind::PartialPreface => &["closed by gateway", "408"],
        }
    }
}

/// Counts per (kind, outcome), and the first few wrong answers in full.
#[derive(Default)]
struct Tally {
    counts: Mutex<BTreeMap<(Kind, String), u64>>,
    wrong: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, kind: Kind, outcome: String, detail: impl FnOnce() -> String) {
        if !kind.expected().contains(&outcome.as_str()) {
            let mut w = self.wrong.lock().unwrap();
            if w.len() < 20 {
                w.push(format!("{kind:?}: {outcome}: {}", detail()));
            }
        }
        *self
            .counts
            .lock()
            .unwrap()
            .entry((kind, outcome))
            .or_default() += 1;
    }

    fn wrong_total(&self) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .iter()
            .filter(|((k, o), _)| !k.expected().contains(&o.as_str()))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The byte at `i` of every streamed body: not periodic at any chunk size.
fn pattern_byte(i: usize) -> u8 {
    ((i ^ (i >> 8) ^ (i >> 17)).wrapping_mul(31) % 251) as u8
}

fn pattern(from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(pattern_byte).collect()
}

/// FNV-1a, to compare an uploaded body without echoing it.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A tiny deterministic generator (xorshift), one per worker.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The application upstream: identity echo, streamed downloads, uploads,
/// and a 500.
async fn app_upstream() -> SocketAddr {
    upstream(|req: Request<Incoming>| async move {
        let path = req.uri().path().to_owned();
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        if path.starts_with("/api/v1/query") {
            let who = format!("{}|{}", header("x-user-id"), header("x-company-id"));
            return Response::new(full(who));
        }
        if let Some(n) = path.strip_prefix("/stream/") {
            let total: usize = n.parse().unwrap_or(0);
            let chunks = futures_util::stream::unfold(0usize, move |sent| async move {
                if sent >= total {
                    return None;
                }
                let len = (total - sent).min(8192);
                if (sent / 8192) % 8 == 7 {
                    sleep(Duration::from_millis(1)).await;
                }
                let frame = Frame::data(Bytes::from(pattern(sent, len)));
                Some((
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(frame),
                    sent + len,
                ))
            });
            let body: TestBody = StreamBody::new(chunks).boxed();
            return Response::new(body);
        }
        if path == "/upload" {
            let mut body = req.into_body();
            let (mut n, mut h) = (0usize, FNV_START);
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else {
                    return Response::builder().status(400).body(full("cut")).unwrap();
                };
                if let Some(d) = frame.data_ref() {
                    n += d.len();
                    h = fnv(d, h);
                }
            }
            return Response::new(full(format!("{n}:{h:x}")));
        }
        if path.starts_with("/fail") {
            return Response::builder()
                .status(500)
                .body(full("upstream says boom"))
                .unwrap();
        }
        Response::builder().status(404).body(full("?")).unwrap()
    })
    .await
}

/// Reads the request head, then resets the connection (RST) before any
/// response: the gateway must answer 502.
async fn reset_upstream() -> SocketAddr {
    raw_upstream(|mut s: TcpStream| async move {
        let mut buf = [0u8; 4096];
        let _ = timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await
}

/// Reads the request and never answers, until the gateway hangs up (or
/// 30 s pass): the gateway must answer 504 at the route's timeout.
async fn hanging_upstream() -> SocketAddr {
    raw_upstream(|mut s: TcpStream| async move {
        let mut buf = [0u8; 4096];
        let _ = timeout(Duration::from_secs(30), async {
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    })
    .await
}

struct Upstreams {
    app: SocketAddr,
    reset: SocketAddr,
    hang: SocketAddr,
    dead: SocketAddr,
}

/// The soak's config; `variant` toggles a harmless setting (the CORS
/// preflight max age) so every rewrite is a real reload.
fn config(u: &Upstreams, variant: bool) -> String {
    let max_age = if variant { "11m" } else { "10m" };
    let hrt = HEADER_READ_TIMEOUT.as_secs();
    let app = u.app;
    let route = |name: &str, prefix: &str, up: SocketAddr, extra: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nprefix = \"{prefix}\"\nupstream = \"http://{up}\"\n{extra}\n"
        )
    };
    let inject = "[routes.inject]\n\"X-User-ID\" = \"sub\"\n\"X-Company-ID\" = { claim = \"app_metadata.company_id\", required = true }\n";
    [
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
connect_timeout = "1s"
request_timeout = "10s"
shutdown_grace = "2s"
header_read_timeout = "{hrt}s"

[admin]
listen = "127.0.0.1:0"

[auth]
audience = "authenticated"
algorithms = ["HS256"]
secret = "{SECRET}"
required_claims = ["sub", "aud", "exp"]

[cors]
allowed_origins = ["http://localhost:3000"]
max_age = "{max_age}"

"#
        ),
        route(
            "query",
            "/api/v1/query",
            app,
            &format!("auth = \"required\"\n{inject}"),
        ),
        route("stream", "/stream", app, "auth = \"required\""),
        route("upload", "/upload", app, "auth = \"required\""),
        route("fail", "/fail", app, "auth = \"none\""),
        route("reset", "/reset", u.reset, "auth = \"none\""),
        route("dead", "/dead", u.dead, "auth = \"none\""),
        route(
            "hang",
            "/hang",
            u.hang,
            &format!("auth = \"none\"\ntimeout = \"{HANG_TIMEOUT}\""),
        ),
    ]
    .concat()
}

/// The gateway process under test, killed on drop.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    /// Warnings, errors and anything on stderr (bounded).
    notable: Arc<Mutex<Vec<String>>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway_bin() -> PathBuf {
    std::env::var_os("NYRO_GW_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nyro-gw")))
}

async fn start_gateway(config_path: &Path) -> Gateway {
    let bin = gateway_bin();
    let mut child = Command::new(&bin)
        .arg("serve")
        .arg("--config")
        .arg(config_path)
        .env_remove("NYRO_GW_CONFIG")
        .env_remove("RUST_LOG")
        // No per-request lines (info): the soak's own tally is the record.
        .env(
            "GATEWAY_LOG_LEVEL",
            "warn,nyro_gw::cmd::serve=info,nyro_gw::reload=info",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let notable = Arc::new(Mutex::new(Vec::new()));
    let listens = Arc::new(Mutex::new((None, None)));
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    for (pipe, is_err) in [
        (Box::new(out) as Box<dyn std::io::Read + Send>, false),
        (Box::new(err), true),
    ] {
        let notable = notable.clone();
        let listens = listens.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let msg = v["message"].as_str().unwrap_or("");
                let addr = v["listen"].as_str().and_then(|s| s.parse().ok());
                if msg == "nyro-gw serving" {
                    listens.lock().unwrap().0 = addr;
                } else if msg.starts_with("admin listener") {
                    listens.lock().unwrap().1 = addr;
                }
                let level = v["level"].as_str().unwrap_or("");
                if is_err || matches!(level, "WARN" | "ERROR" | "warn" | "error") {
                    let mut n = notable.lock().unwrap();
                    if n.len() < 200 {
                        n.push(line);
                    }
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let (Some(addr), Some(admin)) = *listens.lock().unwrap() {
            return Gateway {
                child,
                addr,
                admin,
                notable,
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "gateway exited with {status} before serving: {:#?}",
                notable.lock().unwrap()
            );
        }
        assert!(Instant::now() < deadline, "gateway did not start");
        sleep(Duration::from_millis(20)).await;
    }
}

/// Resident memory (KiB) and open file descriptors of `pid`, from /proc.
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

/// The admin `/config` document.
async fn admin_config(admin: SocketAddr) -> Value {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = timeout(
        REQUEST_DEADLINE,
        c.get(format!("http://{admin}/config")).send(),
    )
    .await;
    match r {
        Ok(Ok(r)) => r.json().await.unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Writes the config the way editors do: a new file renamed over the old.
fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Everything a load phase needs.
struct Ctx {
    gw: SocketAddr,
    client: reqwest::Client,
    tally: Arc<Tally>,
    valid: Vec<(String, String)>,
    bad_signature: String,
    expired: String,
}

/// One HTTP request of `kind`; returns the outcome and a detail for the
/// report when it is wrong.
async fn one_request(ctx: &Ctx, kind: Kind, rng: &mut Rng) -> (String, String) {
    let url = |p: &str| format!("http://{}{p}", ctx.gw);
    let (user, tok) = &ctx.valid[rng.below(ctx.valid.len() as u64) as usize];
    let rb = match kind {
        Kind::Valid => ctx.client.get(url("/api/v1/query/items")).bearer_auth(tok),
        Kind::BadSignature => ctx
            .client
            .get(url("/api/v1/query/items"))
            .bearer_auth(&ctx.bad_signature),
        Kind::Expired => ctx
            .client
            .get(url("/api/v1/query/items"))
            .bearer_auth(&ctx.expired),
        Kind::Garbage => ctx
            .client
            .get(url("/api/v1/query/items"))
            .bearer_auth("not.a.token"),
        Kind::Missing => ctx.client.get(url("/api/v1/query/items")),
        // A valid token in a value that is not exactly `Bearer <token>`:
        // 401, not the 200 a lenient parser would give.
        Kind::MalformedBearer => {
            let value = match rng.below(4) {
                0 => format!("Bearer  {tok}"),
                1 => format!("Bearer\t{tok}"),
                2 => format!("Bearer {tok} x"),
                _ => format!("Bearer {tok},"),
            };
            ctx.client
                .get(url("/api/v1/query/items"))
                .header(reqwest::header::AUTHORIZATION, value)
        }
        // A valid token, a path with `;`: 400 before anything else.
        Kind::SemicolonPath => {
            let path = if rng.below(2) == 0 {
                "/api/v1/query;jsessionid=1/items"
            } else {
                "/api/v1/query/items;x"
            };
            ctx.client.get(url(path)).bearer_auth(tok)
        }
        Kind::Stream => {
            let n = 1 + rng.below(1 << 20);
            ctx.client
                .get(url(&format!("/stream/{n}")))
                .bearer_auth(tok)
        }
        Kind::Upstream500 => ctx.client.get(url("/fail")),
        Kind::UpstreamReset => ctx.client.get(url("/reset/x")),
        Kind::Unreachable => ctx.client.get(url("/dead/x")),
        Kind::UpstreamHangs => ctx.client.get(url("/hang/x")),
        Kind::Upload
        | Kind::BadChunk
        | Kind::Silent
        | Kind::Slow
        | Kind::Dribble
        | Kind::PartialPreface => {
            unreachable!(
                "see one_upload, one_bad_chunk, one_silent, one_slow, one_dribble, one_preface"
            )
        }
    };
    let r = match rb.timeout(REQUEST_DEADLINE).send().await {
        Ok(r) => r,
        Err(e) => return ("error".into(), format!("{e:?}")),
    };
    let status = r.status().as_u16().to_string();
    let url_path = r.url().path().to_owned();
    let body = match r.bytes().await {
        Ok(b) => b,
        Err(e) => return (format!("{status} body cut"), format!("{e:?}")),
    };
    let body_ok = match (kind, status.as_str()) {
        (Kind::Valid, "200") => body == format!("{user}|company-soak").as_bytes(),
        (Kind::Stream, "200") => {
            let n: usize = url_path
                .strip_prefix("/stream/")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            body.len() == n && body.iter().enumerate().all(|(i, b)| *b == pattern_byte(i))
        }
        (Kind::Upstream500, "500") => body == "upstream says boom",
        _ => true,
    };
    if body_ok {
        (status, String::new())
    } else {
        let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        (
            format!("{status} wrong body"),
            format!("{} bytes: {shown}", body.len()),
        )
    }
}

/// An upload, checked against what the upstream counted.
async fn one_upload(ctx: &Ctx, rng: &mut Rng) -> (String, String) {
    let (_, tok) = &ctx.valid[rng.below(ctx.valid.len() as u64) as usize];
    let n = 1 + rng.below(512 << 10) as usize;
    let chunk = 1 + rng.below(32 << 10) as usize;
    let pieces: Vec<Result<Bytes, std::io::Error>> = (0..n)
        .step_by(chunk)
        .map(|at| Ok(Bytes::from(pattern(at, chunk.min(n - at)))))
        .collect();
    let want = format!("{n}:{:x}", fnv(&pattern(0, n), FNV_START));
    let send = ctx
        .client
        .post(format!("http://{}/upload", ctx.gw))
        .bearer_auth(tok)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .timeout(REQUEST_DEADLINE)
        .send()
        .await;
    let r = match send {
        Ok(r) => r,
        Err(e) => return ("error".into(), format!("{e:?}")),
    };
    let status = r.status().as_u16().to_string();
    match r.text().await {
        Ok(t) if status != "200" || t == want => (status, String::new()),
        Ok(t) => (
            format!("{status} wrong body"),
            format!("got {t}, want {want}"),
        ),
        Err(e) => (format!("{status} body cut"), format!("{e:?}")),
    }
}

/// Waits, reading, for the gateway to close a connection that has no
/// complete request head, while `writer` (which only ever returns its
/// write error) sends what it likes. `start` is taken before `connect`, so
/// the gateway's deadline (accept + `HEADER_READ_TIMEOUT`) is never before
/// `start + HEADER_READ_TIMEOUT`.
async fn until_cut<R, W>(rd: &mut R, start: Instant, writer: W) -> (String, String)
where
    R: tokio::io::AsyncRead + Unpin,
    W: std::future::Future<Output = std::io::Error>,
{
    let mut buf = [0u8; 1024];
    let give_up = tokio::time::Instant::from_std(start + HEADER_READ_TIMEOUT + CUT_SLACK);
    let answer = tokio::select! {
        r = rd.read(&mut buf) => match r {
            Ok(n) => buf[..n].to_vec(),
            // A reset: the gateway closed with our bytes unread.
            Err(_) => Vec::new(),
        },
        // Writing into a closed connection fails: cut as well.
        _ = writer => Vec::new(),
        () = tokio::time::sleep_until(give_up) => {
            return ("held past timeout".into(), format!("open after {:?}", start.elapsed()));
        }
    };
    let at = start.elapsed();
    SLOWEST_CUT_MS.fetch_max(at.as_millis() as u64, Ordering::Relaxed);
    let text = String::from_utf8_lossy(&answer[..answer.len().min(120)]).into_owned();
    if at + CUT_EARLY < HEADER_READ_TIMEOUT {
        return ("closed early".into(), format!("after {at:?}: {text}"));
    }
    match () {
        () if answer.is_empty() => ("closed by gateway".into(), String::new()),
        () if answer.starts_with(b"HTTP/1.1 408 ") => ("408".into(), String::new()),
        () => ("answered".into(), format!("after {at:?}: {text}")),
    }
}

/// A client that connects and sends nothing: the gateway must close it at
/// `header_read_timeout`.
async fn one_silent(gw: SocketAddr) -> (String, String) {
    let start = Instant::now();
    let mut s = match TcpStream::connect(gw).await {
        Ok(s) => s,
        Err(e) => return ("connect error".into(), e.to_string()),
    };
    until_cut(&mut s, start, std::future::pending()).await
}

/// A client that sends part of the HTTP/2 preface (1 to 23 of its 24
/// bytes, so the gateway cannot yet tell HTTP/1 from HTTP/2), then
/// nothing: closed at `header_read_timeout` like a silent one.
async fn one_preface(gw: SocketAddr, rng: &mut Rng) -> (String, String) {
    let start = Instant::now();
    let mut s = match TcpStream::connect(gw).await {
        Ok(s) => s,
        Err(e) => return ("connect error".into(), e.to_string()),
    };
    let part = 1 + rng.below(H2_PREFACE.len() as u64 - 1) as usize;
    if let Err(e) = s.write_all(&H2_PREFACE[..part]).await {
        return ("error".into(), e.to_string());
    }
    until_cut(&mut s, start, std::future::pending()).await
}

/// A client that sends its request line, then header bytes one per
/// `DRIBBLE_EVERY` for ever: the gateway must cut it at
/// `header_read_timeout` and never answer it normally (a 401 after the
/// deadline would mean the timeout is only counted between bytes).
async fn one_dribble(gw: SocketAddr) -> (String, String) {
    let start = Instant::now();
    let mut s = match TcpStream::connect(gw).await {
        Ok(s) => s,
        Err(e) => return ("connect error".into(), e.to_string()),
    };
    let (mut rd, mut wr) = s.split();
    let writer = async move {
        let head: &[u8] = b"GET /api/v1/query/dribble HTTP/1.1\r\nHost: soak\r\nX-Dribble: ";
        if let Err(e) = wr.write_all(head).await {
            return e;
        }
        loop {
            sleep(DRIBBLE_EVERY).await;
            if let Err(e) = wr.write_all(b"a").await {
                return e;
            }
        }
    };
    until_cut(&mut rd, start, writer).await
}

/// A client that sends its request line, then header bytes one per
/// `SLOW_EVERY` (done well within `header_read_timeout`), then the rest;
/// no token, so the answer is 401.
async fn one_slow(gw: SocketAddr) -> (String, String) {
    let run = async {
        let mut s = TcpStream::connect(gw).await?;
        s.write_all(b"GET /api/v1/query/slow HTTP/1.1\r\nHost: soak\r\n")
            .await?;
        for b in SLOW_BYTES {
            sleep(SLOW_EVERY).await;
            s.write_all(&[*b]).await?;
        }
        s.write_all(b": 1\r\nConnection: close\r\n\r\n").await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    match timeout(REQUEST_DEADLINE, run).await {
        Err(_) => ("timeout".into(), String::new()),
        Ok(Err(e)) => ("error".into(), e.to_string()),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out);
            let status = text
                .strip_prefix("HTTP/1.1 ")
                .and_then(|t| t.get(..3))
                .unwrap_or("no status")
                .to_owned();
            (status, text.chars().take(120).collect())
        }
    }
}

/// An authenticated chunked upload whose second chunk size is not hex:
/// the gateway's own 400 (`Malformed request body.`), whatever the
/// upstream made of the cut body.
async fn one_bad_chunk(ctx: &Ctx, rng: &mut Rng) -> (String, String) {
    let (_, tok) = &ctx.valid[rng.below(ctx.valid.len() as u64) as usize];
    let raw = format!(
        "POST /upload HTTP/1.1\r\nHost: soak\r\nAuthorization: Bearer {tok}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n"
    );
    let run = async {
        let mut s = TcpStream::connect(ctx.gw).await?;
        s.write_all(raw.as_bytes()).await?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // Until the close; a reset after the answer still leaves it whole.
        loop {
            match s.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok::<_, std::io::Error>(out)
    };
    match timeout(REQUEST_DEADLINE, run).await {
        Err(_) => ("timeout".into(), String::new()),
        Ok(Err(e)) => ("error".into(), e.to_string()),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out);
            let status = text
                .strip_prefix("HTTP/1.1 ")
                .and_then(|t| t.get(..3))
                .unwrap_or("no status")
                .to_owned();
            if status == "400" && !text.contains("Malformed request body.") {
                return ("400 wrong body".into(), text.chars().take(200).collect());
            }
            (status, text.chars().take(200).collect())
        }
    }
}

/// How many workers of each kind run at once.
const WORKERS: &[(Kind, usize)] = &[
    (Kind::Valid, 4),
    (Kind::BadSignature, 1),
    (Kind::Expired, 1),
    (Kind::Garbage, 1),
    (Kind::Missing, 1),
    (Kind::MalformedBearer, 1),
    (Kind::SemicolonPath, 1),
    (Kind::BadChunk, 1),
    (Kind::Stream, 2),
    (Kind::Upload, 2),
    (Kind::Upstream500, 1),
    (Kind::UpstreamReset, 1),
    (Kind::Unreachable, 1),
    (Kind::UpstreamHangs, 2),
    (Kind::Silent, SILENT_CONNECTIONS),
    (Kind::Slow, SLOW_CLIENTS),
    (Kind::Dribble, DRIBBLE_CLIENTS),
    (Kind::PartialPreface, PREFACE_CLIENTS),
];

/// Runs every worker and the reloader for `length`, then stops them and
/// waits (bounded) for the last requests. Returns the config writes made.
async fn phase(
    ctx: Arc<Ctx>,
    length: Duration,
    config_path: &Path,
    upstreams: &Arc<Upstreams>,
    seed: u64,
) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut n = 0u64;
    for &(kind, count) in WORKERS.iter().filter(|(k, _)| selected(*k)) {
        for _ in 0..count {
            n += 1;
            let (ctx, stop) = (ctx.clone(), stop.clone());
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (n << 32 | 1));
            tasks.push(tokio::spawn(async move {
                // Spread the starts over a second.
                sleep(Duration::from_millis(rng.below(1000))).await;
                while !stop.load(Ordering::Relaxed) {
                    let (outcome, detail) = match kind {
                        Kind::Silent => one_silent(ctx.gw).await,
                        Kind::Slow => one_slow(ctx.gw).await,
                        Kind::Dribble => one_dribble(ctx.gw).await,
                        Kind::PartialPreface => one_preface(ctx.gw, &mut rng).await,
                        Kind::BadChunk => one_bad_chunk(&ctx, &mut rng).await,
                        Kind::Upload => one_upload(&ctx, &mut rng).await,
                        _ => match timeout(REQUEST_DEADLINE, one_request(&ctx, kind, &mut rng))
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => ("timeout".into(), String::new()),
                        },
                    };
                    ctx.tally.record(kind, outcome, || detail);
                    if matches!(
                        kind,
                        Kind::Upstream500
                            | Kind::UpstreamReset
                            | Kind::Unreachable
                            | Kind::BadChunk
                    ) {
                        // Error paths log a warning each; keep their rate
                        // (and the log volume) moderate.
                        sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
    }
    let writes = Arc::new(AtomicU64::new(0));
    let reloader = {
        let (stop, writes) = (stop.clone(), writes.clone());
        let (path, ups) = (config_path.to_owned(), upstreams.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && reloading() {
                sleep(Duration::from_secs(1)).await;
                let w = writes.fetch_add(1, Ordering::Relaxed) + seed;
                write_config(&path, &config(&ups, w % 2 == 1));
            }
        })
    };
    sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let all = futures_util::future::join_all(tasks);
    assert!(
        timeout(REQUEST_DEADLINE * 2, all).await.is_ok(),
        "load workers did not stop"
    );
    let _ = timeout(Duration::from_secs(5), reloader).await;
    writes.load(Ordering::Relaxed)
}

/// `NYRO_SOAK_KINDS`: a comma-separated subset of the kinds (their names
/// as in the table, e.g. `Valid,Upload`), to find which load a regression
/// comes from; all when unset.
fn selected(kind: Kind) -> bool {
    match std::env::var("NYRO_SOAK_KINDS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .any(|k| k.trim().eq_ignore_ascii_case(&format!("{kind:?}"))),
        _ => true,
    }
}

/// `NYRO_SOAK_RELOAD=0` stops the config rewrites (to tell a leak per
/// reload from one per request).
fn reloading() -> bool {
    std::env::var("NYRO_SOAK_RELOAD").map_or(true, |v| v != "0")
}

fn soak_secs() -> u64 {
    std::env::var("NYRO_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run by bench/soak.sh"]
async fn soak_mixed_load_with_reloads_leaks_nothing_and_answers_everything_right() {
    let total = Duration::from_secs(soak_secs().max(20));
    let warm = (total / 5).clamp(Duration::from_secs(10), Duration::from_secs(30));
    let main = total - warm;
    let settle = Duration::from_secs(3);

    let upstreams = Arc::new(Upstreams {
        app: app_upstream().await,
        reset: reset_upstream().await,
        hang: hanging_upstream().await,
        dead: dead_addr().await,
    });
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("gateway.toml");
    std::fs::write(&config_path, config(&upstreams, false)).unwrap();
    let gw = start_gateway(&config_path).await;
    let pid = gw.child.id();
    println!(
        "soak: {} against {} (pid {pid}) for {}s ({}s warm-up)",
        gateway_bin().display(),
        gw.addr,
        total.as_secs(),
        warm.as_secs()
    );
    let generation_start = admin_config(gw.admin).await["generation"]
        .as_u64()
        .expect("the admin listener reports the config generation");

    let tally = Arc::new(Tally::default());
    let valid: Vec<(String, String)> = (0..8)
        .map(|i| {
            let sub = format!("user-{i}");
            let t = token(user_claims(&sub, "company-soak"));
            (sub, t)
        })
        .collect();
    let mut expired = user_claims("late", "company-soak");
    expired["exp"] = json!(support::now() - 600);
    let ctx = |tally: &Arc<Tally>| {
        Arc::new(Ctx {
            gw: gw.addr,
            // A fresh client (and connection pool) per phase, dropped at
            // the phase's end so its idle connections close.
            // Pooled connections are dropped after 1 s idle, well before
            // the gateway's keep-alive limit (`header_read_timeout`): a
            // request sent on a connection the server is closing at that
            // moment fails, a race every HTTP/1 client must avoid (RFC
            // 9112 §9.3.1) and not what this soak is about.
            client: reqwest::Client::builder()
                .no_proxy()
                .pool_idle_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
            tally: tally.clone(),
            valid: valid.clone(),
            bad_signature: sign(
                user_claims("mallory", "company-soak"),
                b"another-secret-that-is-long-enough-000",
            ),
            expired: token(expired.clone()),
        })
    };

    // Each phase returns once every worker has finished its connection:
    // the silent, dribbling and preface clients only when the gateway has
    // closed theirs. So at both measurements no client connection is open
    // (the reqwest pools are dropped with their phase and idle ones close
    // within the settle time), and the fd counts compare like with like.
    let mut writes = phase(ctx(&tally), warm, &config_path, &upstreams, 1).await;
    sleep(settle).await;
    let (rss0, fd0) = usage(pid);
    // The trend under load, ten samples over the main phase: a leak climbs
    // steadily, allocator noise does not. The fd samples include the
    // client connections open at that moment (about 230).
    let trend = tokio::spawn(async move {
        let mut samples = Vec::new();
        for _ in 0..10 {
            sleep(main / 10).await;
            samples.push(usage(pid));
        }
        samples
    });
    writes += phase(ctx(&tally), main, &config_path, &upstreams, 2).await;
    let trend = trend.await.unwrap_or_default();
    sleep(settle).await;
    let (rss1, fd1) = usage(pid);

    let cfg = admin_config(gw.admin).await;
    let reloads = cfg["generation"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(generation_start);
    let alive = matches!(
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .status(),
        Ok(s) if s.success()
    );

    // The report.
    println!("\n{:<16} {:<24} {:>9}  right?", "kind", "outcome", "count");
    for ((kind, outcome), n) in tally.counts.lock().unwrap().iter() {
        let ok = if kind.expected().contains(&outcome.as_str()) {
            "yes"
        } else {
            "NO"
        };
        println!("{:<16} {:<24} {:>9}  {ok}", format!("{kind:?}"), outcome, n);
    }
    let requests: u64 = tally.counts.lock().unwrap().values().sum();
    println!("\nrequests and connections: {requests}");
    println!(
        "RSS: {rss0} KiB after warm-up, {rss1} KiB at the end ({:+.1} %)",
        (rss1 as f64 - rss0 as f64) * 100.0 / rss0.max(1) as f64
    );
    println!(
        "RSS under load through the main phase (KiB): {:?}",
        trend.iter().map(|t| t.0).collect::<Vec<_>>()
    );
    println!(
        "open fds under load through the main phase: {:?}",
        trend.iter().map(|t| t.1).collect::<Vec<_>>()
    );
    println!("open fds: {fd0} after warm-up, {fd1} at the end");
    println!(
        "idle clients cut {} ms after connect at the latest (timeout {} ms, held past {} ms)",
        SLOWEST_CUT_MS.load(Ordering::Relaxed),
        HEADER_READ_TIMEOUT.as_millis(),
        (HEADER_READ_TIMEOUT + CUT_SLACK).as_millis()
    );
    println!(
        "config rewrites: {writes}, reloads applied: {reloads}, last reload error: {}",
        cfg["last_reload_error"]
    );
    for w in tally.wrong.lock().unwrap().iter() {
        println!("wrong: {w}");
    }
    let notable = gw.notable.lock().unwrap().clone();
    let stderr: Vec<&String> = notable.iter().filter(|l| !l.starts_with('{')).collect();
    for l in &stderr {
        println!("gateway stderr: {l}");
    }

    // The conditions.
    let mut failed = Vec::new();
    if !alive {
        failed.push("the gateway exited".to_owned());
    }
    let wrong = tally.wrong_total();
    if wrong > 0 {
        failed.push(format!("{wrong} requests lost or answered wrongly"));
    }
    for &(kind, _) in WORKERS.iter().filter(|(k, _)| selected(*k)) {
        let seen: u64 = tally
            .counts
            .lock()
            .unwrap()
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum();
        if seen == 0 {
            failed.push(format!("no {kind:?} request completed"));
        }
    }
    if rss0 == 0 || rss1 as f64 > rss0 as f64 * 1.2 {
        failed.push(format!("RSS grew more than 20 %: {rss0} -> {rss1} KiB"));
    }
    if fd0.abs_diff(fd1) > 10 {
        failed.push(format!("open fds moved by more than 10: {fd0} -> {fd1}"));
    }
    if reloading() && reloads * 5 < writes * 4 {
        failed.push(format!(
            "only {reloads} of {writes} config rewrites were applied"
        ));
    }
    if !cfg["last_reload_error"].is_null() {
        failed.push(format!("a reload failed: {}", cfg["last_reload_error"]));
    }
    if !stderr.is_empty() {
        failed.push("the gateway wrote to stderr".to_owned());
    }
    assert!(failed.is_empty(), "soak failed: {failed:#?}");
    println!("soak passed");
}
