//! Test harness: the real `nyro-gw` binary on 127.0.0.1:0, real upstreams
//! (hyper servers in the test's runtime) on 127.0.0.1:0, real HTTP clients
//! and real signed tokens.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};

/// The HMAC secret test configs use.
pub const SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// The built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nyro-gw")
}

/// A running gateway process.
pub struct Gateway {
    /// Its public address.
    pub addr: SocketAddr,
    /// Its admin address, when configured.
    pub admin: Option<SocketAddr>,
    /// The config file it serves.
    pub config_path: PathBuf,
    /// The directory holding the config (removed on drop).
    pub dir: tempfile::TempDir,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// Starts `serve --config <tempdir>/gateway.toml` with `toml`.
    pub async fn start(toml: &str) -> Gateway {
        Self::start_with(toml, &[], &[]).await
    }

    /// Starts with extra environment variables and arguments.
    pub async fn start_with(toml: &str, env: &[(&str, &str)], args: &[&str]) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, toml).expect("write config");
        Self::start_in(dir, config_path, env, args).await
    }

    /// Starts on an existing config file. A relative `config_path` is
    /// passed as it is, with `dir` as the gateway's working directory (the
    /// default `--config ./gateway.toml` case).
    pub async fn start_in(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Gateway {
        Self::start_command(Command::new(bin()), dir, config_path, env, args).await
    }

    /// Starts with `toml` under `wrapper`, a program that runs the command
    /// after its own arguments (e.g. `["prlimit", "--nofile=128", "--"]`)
    /// by exec, so the process id stays the gateway's.
    pub async fn start_wrapped(wrapper: &[&str], toml: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, toml).expect("write config");
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(bin());
        Self::start_command(cmd, dir, config_path, &[], &[]).await
    }

    /// Starts `cmd serve --config <config_path> <args>`.
    async fn start_command(
        mut cmd: Command,
        dir: tempfile::TempDir,
        config_path: PathBuf,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Gateway {
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args(args);
        if config_path.is_relative() {
            cmd.current_dir(dir.path());
        }
        let config_path = dir.path().join(config_path);
        cmd.env_remove("NYRO_GW_CONFIG")
            .env_remove("RUST_LOG")
            .env("GATEWAY_LOG_LEVEL", "debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn nyro-gw");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(format!("STDERR: {line}"));
            }
        });
        let mut gw = Gateway {
            addr: "0.0.0.0:0".parse().unwrap(),
            admin: None,
            config_path,
            dir,
            child,
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(line) = gw.find_log(|v| v["message"] == "nyro-gw serving") {
                gw.addr = line["listen"].as_str().unwrap().parse().unwrap();
                break;
            }
            if let Ok(Some(status)) = gw.child.try_wait() {
                panic!(
                    "gateway exited with {status} before serving:\n{}",
                    gw.logs().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not start:\n{}",
                gw.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(line) = gw.find_log(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("admin listener"))
        }) {
            gw.admin = line["listen"].as_str().and_then(|s| s.parse().ok());
        }
        gw
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every line the process wrote so far (stderr lines prefixed).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The first JSON log line matching `pred`.
    pub fn find_log(&self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| pred(v))
    }

    /// Waits up to `timeout` for a JSON log line matching `pred`.
    pub async fn wait_log(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.find_log(&pred) {
                return Some(v);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The body of `GET path` on the admin listener (`/metrics`, `/config`).
    pub async fn admin_get(&self, path: &str) -> String {
        let admin = self.admin.expect("admin listener address logged");
        client()
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sends a signal (e.g. "TERM", "HUP") to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Replaces the config file in place (write, not rename).
    pub fn write_config(&self, toml: &str) {
        std::fs::write(&self.config_path, toml).unwrap();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config around `routes` (see [`route`]), with Nyro's frontend in
/// development as the only allowed CORS origin.
pub fn config(routes: &str) -> String {
    config_with_cors("allowed_origins = [\"http://localhost:3000\"]", routes)
}

/// A config with `cors` as the body of the `[cors]` table and `routes`
/// after it.
pub fn config_with_cors(cors: &str, routes: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
connect_timeout = "2s"
request_timeout = "5s"
shutdown_grace = "5s"

[auth]
secret = "{SECRET}"

[cors]
{cors}

{routes}
"#
    )
}

/// A `[[routes]]` block.
pub fn route(name: &str, prefix: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[routes]]\nname = \"{name}\"\nprefix = \"{prefix}\"\nupstream = \"{upstream}\"\n{extra}\n"
    )
}

/// The standard identity injection block.
pub const INJECT: &str = "[routes.inject]\n\"X-User-ID\" = \"sub\"\n\"X-Company-ID\" = { claim = \"app_metadata.company_id\", required = true }\n\"X-User-Email\" = \"email\"\n";

/// A real HTTP client that ignores proxy settings.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// [`client`] speaking HTTP/2 over plain TCP (h2c, prior knowledge).
pub fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 token over `claims`, signed with `SECRET`.
pub fn token(claims: Value) -> String {
    sign(claims, SECRET.as_bytes())
}

/// An HS256 token signed with `secret`.
pub fn sign(claims: Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Claims of a typical Supabase user token, valid for an hour.
pub fn user_claims(sub: &str, company: &str) -> Value {
    json!({
        "sub": sub,
        "aud": "authenticated",
        "exp": now() + 3600,
        "iat": now(),
        "email": format!("{sub}@example.com"),
        "role": "authenticated",
        "app_metadata": { "company_id": company, "provider": "email" },
        "session_id": "s-1"
    })
}

/// Body type for test upstreams.
pub type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A full body.
pub fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// Starts an upstream answering with `handler`, on 127.0.0.1:0; it runs
/// until the test's runtime ends.
pub async fn upstream<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// An upstream that answers every request with the request it received,
/// as JSON: method, path, query, version, headers (name -> list of values),
/// body (as text) and body length.
pub async fn echo_upstream() -> SocketAddr {
    upstream(|req: Request<Incoming>| async move {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut headers = serde_json::Map::new();
        for (k, v) in &parts.headers {
            let entry = headers
                .entry(k.as_str().to_owned())
                .or_insert_with(|| Value::Array(vec![]));
            entry
                .as_array_mut()
                .unwrap()
                .push(String::from_utf8_lossy(v.as_bytes()).into_owned().into());
        }
        let out = json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query(),
            "version": format!("{:?}", parts.version),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
            "body_len": body.len(),
        });
        Response::builder()
            .header("content-type", "application/json")
            .body(full(out.to_string()))
            .unwrap()
    })
    .await
}

/// A TCP server that runs `f` on every accepted connection (for upstreams
/// that misbehave below HTTP).
pub async fn raw_upstream<F, Fut>(f: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let f = Arc::new(f);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(f(stream));
        }
    });
    addr
}

/// An address nothing listens on.
pub async fn dead_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// Sends raw bytes on a new connection and returns everything read until
/// the peer closes or `timeout` passes.
pub async fn raw_request(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(timeout, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Upstreams that fail each way the gateway tells apart (README "On the
/// wire"): nothing listening (503), an answer that is not HTTP (502), a
/// reset after the request (502), and an answer after 3 s (504 under a
/// shorter route timeout).
pub struct FailingUpstreams {
    /// Nothing listens here.
    pub dead: SocketAddr,
    /// Answers `NOT HTTP AT ALL`.
    pub garbage: SocketAddr,
    /// Reads the request, then resets the connection.
    pub reset: SocketAddr,
    /// Answers 200 after 3 s.
    pub slow: SocketAddr,
}

/// Starts the [`FailingUpstreams`].
pub async fn failing_upstreams() -> FailingUpstreams {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dead = dead_addr().await;
    let garbage = raw_upstream(|mut s| async move {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
    })
    .await;
    let reset = raw_upstream(|mut s| async move {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await;
    let slow = upstream(|_req| async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Response::new(full("late"))
    })
    .await;
    FailingUpstreams {
        dead,
        garbage,
        reset,
        slow,
    }
}

// ---- Setups shared by several test files ---------------------------------
// Each was written out again in the files that needed it (issue 11).

/// `toml` (from [`config`]) with its `secret = "{SECRET}"` line replaced by
/// `lines`: other `[auth]` keys beside the secret, or another secret.
pub fn with_auth(toml: &str, lines: &str) -> String {
    let line = format!("secret = \"{SECRET}\"");
    assert!(toml.contains(&line), "no `{line}` in the config:\n{toml}");
    toml.replace(&line, lines)
}

/// `toml` (from [`config`]) with an admin listener on 127.0.0.1:0.
pub fn with_admin(toml: &str) -> String {
    assert!(toml.contains("[auth]"), "no [auth] in the config:\n{toml}");
    toml.replace("[auth]", "[admin]\nlisten = \"127.0.0.1:0\"\n\n[auth]")
}

/// An ES256 key pair: (PEM private key for signing, JWK for a JWKS).
pub fn es256_key(kid: &str) -> (String, Value) {
    use base64::Engine;
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    assert_eq!(raw.len(), 65, "uncompressed P-256 point");
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": enc(&raw[1..33]), "y": enc(&raw[33..])});
    (kp.serialize_pem(), jwk)
}

/// An ES256 token over `claims`, signed by `pem`, its header naming `kid`.
pub fn es256_token(pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.into());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A JWKS endpoint on 127.0.0.1:0 (any path) publishing `keys` while
/// `serving` is true, and answering 503 while it is false (an issuer that
/// is down).
pub async fn jwks_server(
    keys: &[Value],
    serving: Arc<std::sync::atomic::AtomicBool>,
) -> SocketAddr {
    let jwks = json!({ "keys": keys }).to_string();
    upstream(move |_req| {
        let on = serving.load(std::sync::atomic::Ordering::SeqCst);
        let body = jwks.clone();
        async move {
            let b = Response::builder();
            if on {
                b.header("content-type", "application/json")
                    .body(full(body))
                    .unwrap()
            } else {
                b.status(503).body(full("down")).unwrap()
            }
        }
    })
    .await
}

/// An upstream answering 200 to every request; the count of requests it
/// received (to prove that one never went upstream).
pub async fn counting_upstream() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let addr = upstream(move |_req| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            Response::new(full("reached"))
        }
    })
    .await;
    (addr, hits)
}

/// An upstream answering 200 after `delay` to every request; the count
/// of connections it accepted (to see the gateway's pooling and caps).
pub async fn connection_counting_upstream(
    delay: Duration,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, Infallible>(Response::new(full("done")))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

impl Gateway {
    /// Waits up to `timeout` for `GET /ready` to answer 200 (a JWKS
    /// fetched); panics with `what` otherwise.
    pub async fn wait_ready(&self, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        loop {
            let r = client().get(self.url("/ready")).send().await;
            if r.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to 5 s for the reload to `generation`; its log line.
    pub async fn wait_reloaded(&self, generation: u64) -> Value {
        self.wait_log(Duration::from_secs(5), |v| {
            v["message"] == "config reloaded" && v["generation"] == generation
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no reload to generation {generation}:\n{}",
                self.logs().join("\n")
            )
        })
    }

    /// Waits up to 10 s for the curl line `serve --dev` prints; its URL
    /// and token.
    pub async fn printed_curl(&self) -> (String, String) {
        let line = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(l) = self
                    .logs()
                    .into_iter()
                    .find(|l| l.trim_start().starts_with("curl "))
                {
                    return l;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no curl line printed:\n{}", self.logs().join("\n")));
        let token = line
            .split("Bearer ")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .expect("a token in the curl line")
            .to_owned();
        let url = line
            .split_whitespace()
            .last()
            .expect("a URL in the curl line")
            .to_owned();
        (url, token)
    }
}

/// Variables the test configs and shipped examples read: removed from
/// every command [`cli`] runs, so that the test's own environment never
/// reaches it (a test sets what it needs).
const FIXTURE_VARS: &[&str] = &[
    "NYRO_GW_CONFIG",
    "RUST_LOG",
    "GATEWAY_JWT_SECRET",
    "GATEWAY_LISTEN",
    "GATEWAY_INGEST_SERVICE_URL",
    "GATEWAY_QUERY_SERVICE_URL",
    "GATEWAY_AUTH_SERVICE_URL",
    "GATEWAY_REPORTS_SERVICE_URL",
    "VERCEL_FRONTEND_URL",
    "INGEST_HOST",
    "INGEST_TIMEOUT",
    "TLS_DIR",
    "OLD_SECRET",
    "NEW_SECRET",
];

/// How long a command of [`cli`] may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// `nyro-gw args` in `dir` with `env` set (and [`FIXTURE_VARS`] unset);
/// fails the test when it has not finished within [`CLI_TIMEOUT`].
pub fn cli(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    cli_within(dir, args, env, None, CLI_TIMEOUT)
        .unwrap_or_else(|| panic!("nyro-gw {args:?} did not finish within {CLI_TIMEOUT:?}"))
}

/// [`cli`] with `stdin` as the command's standard input.
pub fn cli_stdin(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    cli_within(dir, args, &[], Some(stdin), CLI_TIMEOUT)
        .unwrap_or_else(|| panic!("nyro-gw {args:?} did not finish within {CLI_TIMEOUT:?}"))
}

/// [`cli`], killed after `timeout`: `None` when it had not finished by
/// then (it hung). Without `stdin` its standard input is empty.
pub fn cli_within(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
    timeout: Duration,
) -> Option<std::process::Output> {
    use std::io::{Read, Write};
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir);
    for var in FIXTURE_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run nyro-gw");
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        let text = text.to_owned();
        std::thread::spawn(move || {
            let _ = w.write_all(text.as_bytes());
        });
    }
    // Read both pipes while it runs, so that a full pipe cannot stall it.
    fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = r.read_to_end(&mut out);
            out
        })
    }
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Some(std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    })
}

/// A command's standard output, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's standard error, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temporary directory holding `gateway.toml` with `text`.
pub fn config_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.toml"), text).unwrap();
    dir
}

/// `nyro-gw token mint --config <config> --claims <claims> <extra>`, run in
/// the config's directory; the token.
pub fn mint_cli(config: &std::path::Path, claims: &str, extra: &[&str]) -> String {
    let dir = config.parent().expect("the config's directory");
    let config = config.to_str().expect("a UTF-8 path");
    let mut args = vec!["token", "mint", "--config", config, "--claims", claims];
    args.extend_from_slice(extra);
    let o = cli(dir, &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).trim().to_owned()
}
