//! Rate limits (README "Rate limits"), against the running binary: bursts
//! and 429s with their headers, per-company budgets, claim-less callers
//! keyed by IP, limits before auth, preflights never limited, reload, and
//! limits shared by two gateways through a real `redis-server` (started on
//! a free loopback port without persistence, plain or TLS-only; skipped
//! with a printed reason when it is not installed, and failing under
//! `CI=true`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, Gateway, client, token, user_claims};

/// A config that believes `X-Forwarded-For` from loopback, so that one
/// test client can speak for many client addresses.
fn cfg(rate_limit: &str, routes: &str) -> String {
    support::config(&format!("{rate_limit}\n{routes}")).replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\", \"::1/128\"]\n",
    )
}

fn limit(table: &str, name: &str, key: &str, rate: &str, burst: u32) -> String {
    format!("[[{table}]]\nname = \"{name}\"\nkey = \"{key}\"\nrate = \"{rate}\"\nburst = {burst}\n")
}

async fn get(gw: &Gateway, path: &str, xff: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut r = client()
        .get(gw.url(path))
        .header("x-forwarded-for", xff)
        .header("origin", "http://localhost:3000");
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    tokio::time::timeout(Duration::from_secs(5), r.send())
        .await
        .expect("answered within 5 s")
        .expect("request sent")
}

async fn status(gw: &Gateway, path: &str, xff: &str, bearer: Option<&str>) -> u16 {
    get(gw, path, xff, bearer).await.status().as_u16()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_burst_beyond_burst_gets_429_with_headers_then_passes_after_retry_after() {
    let up = support::echo_upstream().await;
    let routes = support::route("open", "/open", &format!("http://{up}"), "auth = \"none\"")
        + &limit("routes.limits", "per-ip", "ip", "2/s", 3);
    let gw = Gateway::start(&cfg("", &routes)).await;
    for i in 0..3 {
        let r = get(&gw, "/open/x", "192.0.2.1", None).await;
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(
            header(&r, "ratelimit"),
            format!("\"per-ip\";r={};t={}", 2 - i, 1 + i / 2),
            "request {i}"
        );
    }
    let r = get(&gw, "/open/x", "192.0.2.1", None).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), "1");
    assert_eq!(header(&r, "ratelimit-policy"), "\"per-ip\";q=2;w=1");
    assert_eq!(header(&r, "ratelimit"), "\"per-ip\";r=0;t=1");
    // CORS stays on, and the page may read the limit headers.
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "http://localhost:3000"
    );
    let exposed = header(&r, "access-control-expose-headers").to_ascii_lowercase();
    for h in ["ratelimit", "ratelimit-policy", "retry-after"] {
        assert!(exposed.split(", ").any(|e| e == h), "{exposed}");
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "Rate limit exceeded.");
    // Another client is not affected.
    assert_eq!(status(&gw, "/open/x", "192.0.2.2", None).await, 200);
    // After Retry-After, requests pass again.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(status(&gw, "/open/x", "192.0.2.1", None).await, 200);
    let line = gw
        .wait_log(Duration::from_secs(2), |v| v["status"] == 429)
        .await
        .expect("429 logged");
    assert_eq!(line["blame"], "client", "{line}");
}

#[tokio::test]
async fn company_budgets_are_independent_and_a_token_only_spends_its_own() {
    let up = support::echo_upstream().await;
    let routes = support::route("ingest", "/ingest", &format!("http://{up}"), "")
        + &limit(
            "routes.limits",
            "per-company",
            "claim:app_metadata.company_id",
            "1/m",
            2,
        );
    let gw = Gateway::start(&cfg("", &routes)).await;
    let a1 = token(user_claims("alice", "company-a"));
    let a2 = token(user_claims("anna", "company-a"));
    let b = token(user_claims("bob", "company-b"));
    assert_eq!(status(&gw, "/ingest/x", "192.0.2.1", Some(&a1)).await, 200);
    assert_eq!(status(&gw, "/ingest/x", "192.0.2.2", Some(&a2)).await, 200);
    // Company A is at its limit, from any user and any address.
    let r = get(&gw, "/ingest/x", "192.0.2.3", Some(&a1)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "ratelimit-policy"), "\"per-company\";q=1;w=60");
    assert_eq!(status(&gw, "/ingest/x", "192.0.2.1", Some(&a2)).await, 429);
    // Company B, from A's very address, still has its whole budget.
    assert_eq!(status(&gw, "/ingest/x", "192.0.2.1", Some(&b)).await, 200);
    assert_eq!(status(&gw, "/ingest/x", "192.0.2.1", Some(&b)).await, 200);
    assert_eq!(status(&gw, "/ingest/x", "192.0.2.1", Some(&b)).await, 429);
}

#[tokio::test]
async fn callers_without_the_claim_are_keyed_by_client_ip_and_ipv6_by_its_64() {
    let up = support::echo_upstream().await;
    let routes = support::route(
        "pub",
        "/pub",
        &format!("http://{up}"),
        "auth = \"optional\"",
    ) + &limit(
        "routes.limits",
        "per-company",
        "claim:app_metadata.company_id",
        "1/m",
        1,
    );
    let gw = Gateway::start(&cfg("", &routes)).await;
    assert_eq!(status(&gw, "/pub/x", "192.0.2.1", None).await, 200);
    assert_eq!(status(&gw, "/pub/x", "192.0.2.1", None).await, 429);
    assert_eq!(status(&gw, "/pub/x", "192.0.2.2", None).await, 200);
    // A company's token from the limited address has its own budget.
    let a = token(user_claims("alice", "company-a"));
    assert_eq!(status(&gw, "/pub/x", "192.0.2.1", Some(&a)).await, 200);
    // IPv6: one /64 is one client.
    assert_eq!(status(&gw, "/pub/x", "2001:db8:0:1::1", None).await, 200);
    assert_eq!(status(&gw, "/pub/x", "2001:db8:0:1::ffff", None).await, 429);
    assert_eq!(status(&gw, "/pub/x", "2001:db8:0:2::1", None).await, 200);
}

#[tokio::test]
async fn ip_limits_apply_before_auth_so_bad_tokens_are_limited_too() {
    let up = support::echo_upstream().await;
    let rl = limit("rate_limit.limits", "per-ip", "ip", "1/m", 3);
    let routes = support::route("api", "/api", &format!("http://{up}"), "");
    let gw = Gateway::start(&cfg(&rl, &routes)).await;
    for _ in 0..3 {
        assert_eq!(
            status(&gw, "/api/x", "192.0.2.9", Some("not.a.token")).await,
            401
        );
    }
    assert_eq!(
        status(&gw, "/api/x", "192.0.2.9", Some("not.a.token")).await,
        429
    );
    // Even a valid token from that address waits now.
    let a = token(user_claims("alice", "company-a"));
    assert_eq!(status(&gw, "/api/x", "192.0.2.9", Some(&a)).await, 429);
    assert_eq!(status(&gw, "/api/x", "192.0.2.10", Some(&a)).await, 200);
}

#[tokio::test]
async fn preflights_are_never_limited() {
    let up = support::echo_upstream().await;
    let rl = limit("rate_limit.limits", "per-ip", "ip", "1/m", 1);
    let routes = support::route("api", "/api", &format!("http://{up}"), "auth = \"none\"");
    let gw = Gateway::start(&cfg(&rl, &routes)).await;
    for _ in 0..5 {
        let r = client()
            .request(reqwest::Method::OPTIONS, gw.url("/api/x"))
            .header("origin", "http://localhost:3000")
            .header("access-control-request-method", "POST")
            .header("x-forwarded-for", "192.0.2.7")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("ratelimit").is_none());
    }
    // The budget is untouched: the first request passes, the second not.
    assert_eq!(status(&gw, "/api/x", "192.0.2.7", None).await, 200);
    assert_eq!(status(&gw, "/api/x", "192.0.2.7", None).await, 429);
}

#[tokio::test]
async fn reload_keeps_unchanged_buckets_applies_changed_ones_and_drops_removed_ones() {
    let up = support::echo_upstream().await;
    let open = "auth = \"none\"";
    let routes = |change_burst: u32, gone_limited: bool| {
        let mut s = support::route("keep", "/keep", &format!("http://{up}"), open)
            + &limit("routes.limits", "keep", "ip", "1/m", 1)
            + &support::route("change", "/change", &format!("http://{up}"), open)
            + &limit("routes.limits", "change", "ip", "1/m", change_burst)
            + &support::route("gone", "/gone", &format!("http://{up}"), open);
        if gone_limited {
            s += &limit("routes.limits", "gone", "ip", "1/m", 1);
        }
        s
    };
    let gw = Gateway::start(&cfg("", &routes(1, true))).await;
    for p in ["/keep/x", "/change/x", "/gone/x"] {
        assert_eq!(status(&gw, p, "192.0.2.1", None).await, 200, "{p}");
        assert_eq!(status(&gw, p, "192.0.2.1", None).await, 429, "{p}");
    }
    gw.write_config(&cfg("", &routes(3, false)));
    gw.signal("HUP");
    gw.wait_reloaded(2).await;
    // Unchanged: still exhausted. Changed: a new bucket at once. Removed:
    // not limited any more.
    assert_eq!(status(&gw, "/keep/x", "192.0.2.1", None).await, 429);
    for _ in 0..3 {
        assert_eq!(status(&gw, "/change/x", "192.0.2.1", None).await, 200);
    }
    assert_eq!(status(&gw, "/change/x", "192.0.2.1", None).await, 429);
    for _ in 0..3 {
        let r = get(&gw, "/gone/x", "192.0.2.1", None).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("ratelimit").is_none());
    }
}

#[test]
fn check_config_refuses_shared_names_with_different_rates_at_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[auth]\nsecret = \"0123456789abcdef0123456789abcdef\"\n\n\
[[rate_limit.limits]]\nname = \"shared\"\nkey = \"ip\"\nrate = \"10/s\"\nburst = 20\n\n\
[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:9\"\n\
[[routes.limits]]\nname = \"shared\"\nkey = \"ip\"\nrate = \"10/s\"\nburst = 30\n\n\
[[routes]]\nname = \"b\"\nprefix = \"/b\"\nupstream = \"http://127.0.0.1:9\"\n\
[[routes.limits]]\nname = \"x\"\nkey = \"claim:\"\nrate = \"10/d\"\nburst = 0\n";
    std::fs::write(dir.path().join("gateway.toml"), text).unwrap();
    let o = support::cli(dir.path(), &["check-config", "gateway.toml"], &[]);
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gateway.toml:14:1: error: limit \"shared\" is defined at 4:1 with key = \"ip\", rate = \"10/s\", burst = 20; limits sharing a name share one budget"),
        "{err}"
    );
    assert!(
        err.contains("gateway.toml:26:7: error: key \"claim:\""),
        "{err}"
    );
    assert!(
        err.contains("gateway.toml:27:8: error: rate \"10/d\""),
        "{err}"
    );
    assert!(
        err.contains("gateway.toml:28:9: error: burst must be"),
        "{err}"
    );
}

#[test]
fn token_inspect_shows_the_limits_each_route_would_apply() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[auth]\nsecret = \"{}\"\n\n{}\n{}{}",
        support::SECRET,
        limit("rate_limit.limits", "per-ip", "ip", "50/s", 100),
        support::route("ingest", "/ingest", "http://127.0.0.1:9", ""),
        limit(
            "routes.limits",
            "per-company",
            "claim:app_metadata.company_id",
            "100/s",
            200
        ),
    ) + &support::route("other", "/other", "http://127.0.0.1:9", "");
    std::fs::write(dir.path().join("gateway.toml"), text).unwrap();
    let t = token(user_claims("alice", "company-a"));
    let o = support::cli(dir.path(), &["token", "inspect", &t], &[]);
    let out = support::stdout(&o);
    assert!(o.status.success(), "{out}\n{}", support::stderr(&o));
    assert!(
        out.contains(
            "per-company: 100/s, burst 200, keyed by app_metadata.company_id = \"company-a\""
        ),
        "{out}"
    );
    assert!(
        out.contains("per-ip: 50/s, burst 100, keyed by client IP"),
        "{out}"
    );
}

// ---- Redis ---------------------------------------------------------------

/// A `redis-server` on a free loopback port, without persistence.
struct Redis {
    port: u16,
    /// `--requirepass`, when set.
    password: Option<&'static str>,
    /// Serve TLS only (`--tls-port`), with `cert_path` and `key_path`.
    tls: bool,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one, or `None` (with the reason printed) when `redis-server`
    /// is not installed; under `CI=true` that is a failure.
    async fn start() -> Option<Redis> {
        Self::start_with(None).await
    }

    async fn start_with(password: Option<&'static str>) -> Option<Redis> {
        Self::launch(password, None).await
    }

    /// One that serves TLS only, with `cert`'s certificate and key.
    async fn start_tls(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> Option<Redis> {
        Self::launch(None, Some(cert)).await
    }

    async fn launch(
        password: Option<&'static str>,
        tls: Option<&rcgen::CertifiedKey<rcgen::KeyPair>>,
    ) -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is not installed; .ci/run installs it"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Redis {
            port,
            password,
            tls: tls.is_some(),
            child: None,
            _dir: tempfile::tempdir().unwrap(),
        };
        if let Some(ck) = tls {
            std::fs::write(r.cert_path(), ck.cert.pem()).unwrap();
            std::fs::write(r.key_path(), ck.signing_key.serialize_pem()).unwrap();
        }
        r.restart().await;
        Some(r)
    }

    async fn restart(&mut self) {
        let port = self.port.to_string().into();
        let listen: Vec<std::ffi::OsString> = if self.tls {
            // The plain port off; no client certificates asked for.
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port,
                "--tls-cert-file".into(),
                self.cert_path().into(),
                "--tls-key-file".into(),
                self.key_path().into(),
                "--tls-auth-clients".into(),
                "no".into(),
            ]
        } else {
            vec!["--port".into(), port]
        };
        let child = Command::new("redis-server")
            .args(listen)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(
                self.password
                    .map(|p| ["--requirepass", p])
                    .into_iter()
                    .flatten(),
            )
            .arg("--dir")
            .arg(self._dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(self.addr()).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The TLS certificate it serves (its own root: self-signed).
    fn cert_path(&self) -> std::path::PathBuf {
        self._dir.path().join("cert.pem")
    }

    fn key_path(&self) -> std::path::PathBuf {
        self._dir.path().join("key.pem")
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_cfg(url: &str, on_error: &str, up: SocketAddr, rate: &str, burst: u32) -> String {
    let rl = format!(
        "[rate_limit]\nredis_url = \"{url}\"\non_redis_error = \"{on_error}\"\ntimeout = \"200ms\"\n"
    );
    let routes = support::route("api", "/api", &format!("http://{up}"), "auth = \"none\"")
        + &limit("routes.limits", "shared", "ip", rate, burst);
    cfg(&rl, &routes)
}

/// Waits until `gw` logs that it reached Redis.
async fn connected(gw: &Gateway) {
    gw.wait_log(Duration::from_secs(10), |v| {
        v["message"] == "connected to Redis for shared rate limits"
    })
    .await
    .expect("connected to Redis");
}

#[tokio::test]
async fn two_gateways_share_one_budget_through_redis() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let up = support::echo_upstream().await;
    let text = redis_cfg(&redis.url(), "local", up, "20/s", 10);
    let (a, b) = tokio::join!(Gateway::start(&text), Gateway::start(&text));
    connected(&a).await;
    connected(&b).await;
    let secs = 10.0;
    let start = Instant::now();
    let mut allowed = 0u32;
    let mut sent = 0u32;
    let mut last = start;
    while start.elapsed().as_secs_f64() < secs {
        let gw = if sent.is_multiple_of(2) { &a } else { &b };
        sent += 1;
        if status(gw, "/api/x", "192.0.2.50", None).await == 200 {
            allowed += 1;
            last = Instant::now();
        }
    }
    let window = last.duration_since(start).as_secs_f64();
    let expected = 10.0 + 20.0 * window;
    assert!(sent as f64 > expected * 1.5, "not enough load: {sent} sent");
    let diff = (f64::from(allowed) - expected).abs();
    assert!(
        diff <= expected * 0.05 + 1.0,
        "{allowed} allowed over {window:.2} s; expected {expected:.1} (not twice it)"
    );
}

#[tokio::test]
async fn redis_outage_falls_back_to_local_limits_and_sharing_resumes_after() {
    let Some(mut redis) = Redis::start().await else {
        return;
    };
    let up = support::echo_upstream().await;
    let text = redis_cfg(&redis.url(), "local", up, "1/m", 2);
    let (a, b) = tokio::join!(Gateway::start(&text), Gateway::start(&text));
    connected(&a).await;
    connected(&b).await;
    // Shared: two through a, and b refuses the third.
    assert_eq!(status(&a, "/api/x", "192.0.2.1", None).await, 200);
    assert_eq!(status(&a, "/api/x", "192.0.2.1", None).await, 200);
    assert_eq!(status(&b, "/api/x", "192.0.2.1", None).await, 429);

    redis.stop();
    // Each replica limits on its own, and nothing hangs.
    for gw in [&a, &b] {
        for want in [200, 200, 429] {
            let t = Instant::now();
            assert_eq!(status(gw, "/api/x", "192.0.2.2", None).await, want);
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        }
    }
    a.wait_log(Duration::from_secs(5), |v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Redis is failing"))
    })
    .await
    .expect("outage logged");
    let errors = a
        .logs()
        .iter()
        .filter(|l| l.contains("Redis is failing"))
        .count();
    assert_eq!(errors, 1, "logged once per outage");

    redis.restart().await;
    // Recovery is automatic: poll each gateway with a throwaway address
    // until it says Redis answers again.
    for (i, gw) in [&a, &b].into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut n = 0;
        while gw
            .find_log(|v| v["message"] == "Redis answers again: rate limits are shared again")
            .is_none()
        {
            assert!(Instant::now() < deadline, "gateway {i} did not recover");
            n += 1;
            let _ = status(gw, "/api/x", &format!("198.51.100.{}", n % 250), None).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(status(&a, "/api/x", "192.0.2.3", None).await, 200);
    assert_eq!(status(&a, "/api/x", "192.0.2.3", None).await, 200);
    assert_eq!(status(&b, "/api/x", "192.0.2.3", None).await, 429);
}

#[tokio::test]
async fn redis_unreachable_deny_answers_503_and_allow_lets_requests_through() {
    let dead = support::dead_addr().await;
    let up = support::echo_upstream().await;
    let url = format!("redis://{dead}");
    let gw = Gateway::start(&redis_cfg(&url, "deny", up, "1/m", 1)).await;
    for _ in 0..3 {
        let t = Instant::now();
        let r = get(&gw, "/api/x", "192.0.2.1", None).await;
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(r.status(), 503);
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            "http://localhost:3000"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["detail"], "Rate limiting is unavailable.");
    }
    let line = gw
        .wait_log(Duration::from_secs(2), |v| v["status"] == 503)
        .await
        .expect("503 logged");
    assert_eq!(line["blame"], "gateway", "{line}");
    drop(gw);

    let gw = Gateway::start(&redis_cfg(&url, "allow", up, "1/m", 1)).await;
    for _ in 0..3 {
        let r = get(&gw, "/api/x", "192.0.2.1", None).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("ratelimit").is_none());
    }
}

/// Two gateways on `text` (a `redis_cfg` with `deny` and a budget of one)
/// and `env`, once both reached Redis; checks that they share the budget
/// (without Redis, deny would answer 503): one request through the first,
/// then the second refuses.
async fn two_sharing_a_budget_of_one(text: &str, env: &[(&str, &str)]) -> (Gateway, Gateway) {
    let (a, b) = tokio::join!(
        Gateway::start_with(text, env, &[]),
        Gateway::start_with(text, env, &[]),
    );
    connected(&a).await;
    connected(&b).await;
    assert_eq!(status(&a, "/api/x", "192.0.2.1", None).await, 200);
    assert_eq!(status(&b, "/api/x", "192.0.2.1", None).await, 429);
    (a, b)
}

/// `rediss://` (README "Rate limits": TLS with the system's roots, which
/// `SSL_CERT_FILE` names here): a gateway that trusts Redis's certificate
/// shares the budget over TLS; one that does not never connects, says why
/// in its log, and `on_redis_error = "deny"` answers 503.
#[tokio::test]
async fn rediss_checks_the_certificate_and_shares_limits_over_tls() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let Some(redis) = Redis::start_tls(&cert).await else {
        return;
    };
    let up = support::echo_upstream().await;
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let text = redis_cfg(&url, "deny", up, "1/m", 1);
    let trusted = redis.cert_path();
    let trusted = [("SSL_CERT_FILE", trusted.to_str().unwrap())];
    let _shared = two_sharing_a_budget_of_one(&text, &trusted).await;

    let roots = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let other_pem = roots.path().join("other.pem");
    std::fs::write(&other_pem, other.cert.pem()).unwrap();
    let untrusted = [("SSL_CERT_FILE", other_pem.to_str().unwrap())];
    let c = Gateway::start_with(&text, &untrusted, &[]).await;
    let line = c
        .wait_log(Duration::from_secs(10), |v| {
            v["message"]
                == "cannot connect to Redis yet; rate limits follow on_redis_error until it answers"
        })
        .await
        .expect("the refused certificate logged");
    let error = line["error"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(error.contains("certificate"), "{line}");
    assert_eq!(status(&c, "/api/x", "192.0.2.2", None).await, 503);
    assert!(
        !c.logs()
            .iter()
            .any(|l| l.contains("connected to Redis for shared")),
        "{:?}",
        c.logs()
    );
}

#[tokio::test]
async fn a_redis_password_from_the_environment_works_and_is_never_logged() {
    let Some(redis) = Redis::start_with(Some("s3cret-pw")).await else {
        return;
    };
    let up = support::echo_upstream().await;
    let text = redis_cfg("${GATEWAY_REDIS_URL}", "deny", up, "1/m", 1);
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}", redis.port);
    let env = [("GATEWAY_REDIS_URL", url.as_str())];
    let (a, b) = two_sharing_a_budget_of_one(&text, &env).await;
    for gw in [&a, &b] {
        let logs = gw.logs().join("\n");
        assert!(!logs.contains("s3cret-pw"), "{logs}");
        assert!(logs.contains("redis://***@127.0.0.1"), "{logs}");
    }
}

#[tokio::test]
async fn a_redis_that_stops_answering_costs_at_most_the_timeout() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&redis_cfg(&redis.url(), "local", up, "1/m", 2)).await;
    connected(&gw).await;
    assert_eq!(status(&gw, "/api/x", "192.0.2.1", None).await, 200);
    // Paused, Redis keeps its connections open and answers nothing.
    let pid = redis.child.as_ref().expect("running").id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        statuses.push(status(&gw, "/api/x", "192.0.2.2", None).await);
        // timeout = 200ms, with room for a loaded machine.
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
    }
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The local buckets decided meanwhile.
    assert_eq!(statuses, [200, 200, 429]);
}
