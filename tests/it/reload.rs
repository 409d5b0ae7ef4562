//! Hot reload, against the running binary: editors that save by rename,
//! in-place writes with SIGHUP, Kubernetes ConfigMap symlink swaps,
//! refused edits, a vanished file, secret rotation, reloads under load,
//! pools kept across reloads, and settings that need a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, Gateway};

/// `auth = "none"`: token verification is not what these tests are about.
const OPEN: &str = "auth = \"none\"";

/// The admin listener for test configs: its own loopback address, so its
/// `:0` never equals the public listener's `127.0.0.1:0`.
const ADMIN: &str = "[admin]\nlisten = \"127.0.0.2:0\"\n\n";

fn base(up: SocketAddr) -> String {
    support::route("base", "/base", &format!("http://{up}"), OPEN)
}

fn extra(up: SocketAddr) -> String {
    support::route("extra", "/extra", &format!("http://{up}"), OPEN)
}

/// Version 1: the base route only. Version 2: base plus `extra`.
fn v1(up: SocketAddr) -> String {
    support::config(&format!("{ADMIN}{}", base(up)))
}

fn v2(up: SocketAddr) -> String {
    support::config(&format!("{ADMIN}{}{}", base(up), extra(up)))
}

/// Saves the way editors do: a new file, renamed over the old one.
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `url` until it answers `status`; the time it took, or `None`
/// after `timeout`.
async fn wait_status(
    c: &reqwest::Client,
    url: &str,
    status: u16,
    timeout: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if let Ok(r) = c.get(url).send().await
            && r.status().as_u16() == status
        {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status(c: &reqwest::Client, url: &str) -> u16 {
    c.get(url).send().await.unwrap().status().as_u16()
}

/// The admin listener's `GET /config`.
async fn admin_config(gw: &Gateway) -> Value {
    serde_json::from_str(&gw.admin_get("/config").await).unwrap()
}

/// Polls the admin `/config` until `pred` holds.
async fn wait_admin(gw: &Gateway, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let v = admin_config(gw).await;
        if pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "admin /config never matched; last:\n{v:#}\nlogs:\n{}",
            gw.logs().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_msg(v: &Value, m: &str) -> bool {
    v["message"] == m
}

fn log_lines(gw: &Gateway, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    gw.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| pred(v))
        .collect()
}

fn reloaded(gw: &Gateway) -> Vec<Value> {
    log_lines(gw, |v| is_msg(v, "config reloaded"))
}

#[tokio::test]
async fn save_by_rename_adds_a_route_within_two_seconds() {
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&v1(up)).await;
    let c = support::client();
    assert_eq!(status(&c, &gw.url("/extra/x")).await, 404);

    save_by_rename(&gw.config_path, &v2(up));
    let took = wait_status(&c, &gw.url("/extra/x"), 200, Duration::from_secs(5)).await;
    let took =
        took.unwrap_or_else(|| panic!("the new route never answered:\n{}", gw.logs().join("\n")));
    assert!(
        took < Duration::from_millis(2500),
        "live after {took:?}, the contract says 2 s"
    );

    let line = gw.wait_reloaded(2).await;
    let changes = line["changes"].as_str().unwrap();
    assert!(changes.contains("route \"extra\" added"), "{changes}");
    assert!(
        !changes.contains("\"base\""),
        "base did not change: {changes}"
    );
    // A save is several file events; they make one reload. Give stray
    // events time to be debounced and checked.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(reloaded(&gw).len(), 1, "{:#?}", reloaded(&gw));
    assert_eq!(status(&c, &gw.url("/base/y")).await, 200);
}

#[tokio::test]
async fn in_place_write_with_sighup_applies_and_identical_rewrite_does_not() {
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&v1(up)).await;
    let c = support::client();

    gw.write_config(&v2(up));
    gw.signal("HUP");
    wait_status(&c, &gw.url("/extra"), 200, Duration::from_secs(5))
        .await
        .expect("route added by SIGHUP");
    gw.wait_reloaded(2).await;
    // The write's own file events are checked too, and change nothing.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let unchanged =
        |gw: &Gateway| log_lines(gw, |v| is_msg(v, "config unchanged; nothing to reload")).len();
    let before = unchanged(&gw);

    // The same bytes again, a touch, and a SIGHUP: nothing to apply.
    gw.write_config(&v2(up));
    let f = std::fs::File::options()
        .write(true)
        .open(&gw.config_path)
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    drop(f);
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while unchanged(&gw) <= before {
        assert!(
            Instant::now() < deadline,
            "no check after SIGHUP:\n{}",
            gw.logs().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(reloaded(&gw).len(), 1, "{:#?}", reloaded(&gw));
    assert_eq!(admin_config(&gw).await["generation"], 2);
}

#[cfg(unix)]
#[tokio::test]
async fn kubernetes_configmap_symlink_swap_reloads() {
    use std::os::unix::fs::symlink;
    let up = support::echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // What kubelet lays out for a ConfigMap volume.
    std::fs::create_dir(d.join("..2026_11_28_01")).unwrap();
    std::fs::write(d.join("..2026_11_28_01/gateway.toml"), v1(up)).unwrap();
    symlink("..2026_11_28_01", d.join("..data")).unwrap();
    symlink("..data/gateway.toml", d.join("gateway.toml")).unwrap();
    let config = d.join("gateway.toml");
    let gw = Gateway::start_in(dir, config, &[], &[]).await;
    let d = gw.dir.path();
    let c = support::client();
    assert_eq!(status(&c, &gw.url("/extra")).await, 404);

    // What kubelet does on an update: new folder, new symlink, atomic
    // rename over ..data, old folder removed.
    let swap = |from: &str, to: &str, text: &str| {
        std::fs::create_dir(d.join(to)).unwrap();
        std::fs::write(d.join(to).join("gateway.toml"), text).unwrap();
        symlink(to, d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        std::fs::remove_dir_all(d.join(from)).unwrap();
    };
    swap("..2026_11_28_01", "..2026_11_28_02", &v2(up));
    let took = wait_status(&c, &gw.url("/extra"), 200, Duration::from_secs(5)).await;
    let took = took
        .unwrap_or_else(|| panic!("the ConfigMap update was missed:\n{}", gw.logs().join("\n")));
    assert!(
        took < Duration::from_millis(2500),
        "live after {took:?}, the contract says 2 s"
    );
    gw.wait_reloaded(2).await;

    // And again, after the folder the first version lived in is gone.
    swap("..2026_11_28_02", "..2026_11_28_03", &v1(up));
    let took = wait_status(&c, &gw.url("/extra"), 404, Duration::from_secs(5)).await;
    let took = took.unwrap_or_else(|| {
        panic!(
            "the second ConfigMap update was missed:\n{}",
            gw.logs().join("\n")
        )
    });
    assert!(took < Duration::from_millis(2500), "live after {took:?}");
    let line = gw.wait_reloaded(3).await;
    assert!(
        line["changes"]
            .as_str()
            .unwrap()
            .contains("route \"extra\" removed"),
        "{line}"
    );
    assert_eq!(status(&c, &gw.url("/base")).await, 200);
}

#[tokio::test]
async fn invalid_edit_keeps_the_old_config_until_a_valid_one() {
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&v1(up)).await;
    let c = support::client();

    let broken = v2(up).replace(
        "request_timeout = \"5s\"",
        "request_timeout = \"ten seconds\"\nbogus_key = 1",
    );
    save_by_rename(&gw.config_path, &broken);
    gw.wait_log(Duration::from_secs(5), |v| {
        v["level"] == "ERROR"
            && v["problem"]
                .as_str()
                .is_some_and(|p| p.contains("bogus_key"))
    })
    .await
    .unwrap_or_else(|| panic!("the unknown key was not logged:\n{}", gw.logs().join("\n")));
    let problems: Vec<String> =
        log_lines(&gw, |v| v["level"] == "ERROR" && v["problem"].is_string())
            .iter()
            .map(|v| v["problem"].as_str().unwrap().to_owned())
            .collect();
    // file:line:col, as check-config prints them.
    let file = gw.config_path.display().to_string();
    let at = |needle: &str| {
        problems
            .iter()
            .find(|p| p.contains(needle))
            .unwrap_or_else(|| panic!("no problem about {needle}: {problems:#?}"))
            .clone()
    };
    for p in [at("bogus_key"), at("ten seconds")] {
        let rest = p
            .strip_prefix(&format!("{file}:"))
            .unwrap_or_else(|| panic!("not file:line:col: {p}"));
        let mut parts = rest.splitn(3, ':');
        let line: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("no line: {p}"));
        let col: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("no column: {p}"));
        assert!(line > 1 && col >= 1, "{p}");
    }

    // Old routes serve, the new one does not exist, the process lives.
    assert_eq!(status(&c, &gw.url("/base")).await, 200);
    assert_eq!(status(&c, &gw.url("/extra")).await, 404);
    let cfg = admin_config(&gw).await;
    assert_eq!(cfg["generation"], 1);
    let errors = cfg["last_reload_error"]
        .as_array()
        .expect("last_reload_error");
    assert!(
        !errors.is_empty()
            && errors
                .iter()
                .any(|e| e.as_str().unwrap().contains("bogus_key")),
        "{cfg:#}"
    );
    assert_eq!(cfg["config"]["server"]["request_timeout"], "5s");

    // Files written beside the config (a log, say) change nothing: the
    // refusal is not checked or logged again. SIGHUP does try again.
    let refusals = |gw: &Gateway| {
        log_lines(gw, |v| {
            v["level"] == "ERROR"
                && v["problem"]
                    .as_str()
                    .is_some_and(|p| p.contains("bogus_key"))
        })
        .len()
    };
    let before = refusals(&gw);
    let beside = gw.config_path.with_file_name("gateway.log");
    for i in 0..10 {
        std::fs::write(&beside, format!("line {i}\n")).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The config itself rewritten with the same bytes.
    std::fs::write(&gw.config_path, &broken).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(refusals(&gw), before, "{}", gw.logs().join("\n"));
    gw.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while refusals(&gw) == before && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refusals(&gw) > before,
        "SIGHUP retries and logs the refusal"
    );

    save_by_rename(&gw.config_path, &v2(up));
    wait_status(&c, &gw.url("/extra"), 200, Duration::from_secs(5))
        .await
        .expect("the fixed config applies");
    let cfg = wait_admin(&gw, Duration::from_secs(5), |v| v["generation"] == 2).await;
    assert!(cfg["last_reload_error"].is_null(), "{cfg:#}");
}

#[tokio::test]
async fn deleted_config_keeps_serving_and_its_return_applies() {
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&v1(up)).await;
    let c = support::client();

    std::fs::remove_file(&gw.config_path).unwrap();
    let line = gw
        .wait_log(Duration::from_secs(5), |v| {
            v["level"] == "ERROR"
                && v["problem"]
                    .as_str()
                    .is_some_and(|p| p.contains("cannot read"))
        })
        .await
        .unwrap_or_else(|| panic!("the missing file was not logged:\n{}", gw.logs().join("\n")));
    assert!(
        line["problem"].as_str().unwrap().contains("gateway.toml"),
        "{line}"
    );
    assert_eq!(status(&c, &gw.url("/base")).await, 200);
    let cfg = admin_config(&gw).await;
    assert_eq!(cfg["generation"], 1);
    assert!(cfg["last_reload_error"].is_array(), "{cfg:#}");

    // Put back as it was: nothing to apply, and the error is over.
    std::fs::write(&gw.config_path, v1(up)).unwrap();
    wait_admin(&gw, Duration::from_secs(5), |v| {
        v["last_reload_error"].is_null()
    })
    .await;
    assert_eq!(admin_config(&gw).await["generation"], 1);

    // Gone again, then back with a change: applied.
    std::fs::remove_file(&gw.config_path).unwrap();
    wait_admin(&gw, Duration::from_secs(5), |v| {
        v["last_reload_error"].is_array()
    })
    .await;
    save_by_rename(&gw.config_path, &v2(up));
    wait_status(&c, &gw.url("/extra"), 200, Duration::from_secs(5))
        .await
        .expect("the returned config applies");
    let cfg = wait_admin(&gw, Duration::from_secs(5), |v| v["generation"] == 2).await;
    assert!(cfg["last_reload_error"].is_null(), "{cfg:#}");
}

#[tokio::test]
async fn rotated_secret_file_accepts_the_new_secret_and_refuses_the_old() {
    let old_secret = "old-secret-that-is-long-enough-0123456789";
    let new_secret = "new-secret-that-is-long-enough-9876543210";
    let up = support::echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwt"), old_secret).unwrap();
    let toml = support::config(&support::route(
        "api",
        "/api",
        &format!("http://{up}"),
        "auth = \"required\"",
    ))
    .replace(
        &format!("secret = \"{}\"", support::SECRET),
        "secret_file = \"jwt\"",
    );
    assert!(toml.contains("secret_file"));
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, toml).unwrap();
    let gw = Gateway::start_in(dir, config, &[], &[]).await;
    let c = support::client();
    let old_token = support::sign(support::user_claims("u1", "c1"), old_secret.as_bytes());
    let new_token = support::sign(support::user_claims("u1", "c1"), new_secret.as_bytes());
    let call = |t: &str| c.get(gw.url("/api/me")).bearer_auth(t).send();
    assert_eq!(call(&old_token).await.unwrap().status(), 200);
    assert_eq!(call(&new_token).await.unwrap().status(), 401);

    save_by_rename(&gw.dir.path().join("jwt"), new_secret);
    let deadline = Instant::now() + Duration::from_secs(5);
    while call(&new_token).await.unwrap().status() != 200 {
        assert!(
            Instant::now() < deadline,
            "the rotated secret was not picked up:\n{}",
            gw.logs().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(call(&old_token).await.unwrap().status(), 401);
    let line = gw.wait_reloaded(2).await;
    assert!(
        line["changes"].as_str().unwrap().contains("secret"),
        "{line}"
    );
    assert!(
        !gw.logs()
            .iter()
            .any(|l| l.contains(new_secret) || l.contains(old_secret)),
        "a secret reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_reloads_under_load_fail_no_request() {
    const RELOADS: u64 = 100;
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&v1(up)).await;
    let url = gw.url("/base/load");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, stop, ok) = (url.clone(), stop.clone(), ok.clone());
        clients.push(tokio::spawn(async move {
            // One keep-alive HTTP/1.1 connection per client.
            let c = reqwest::Client::builder()
                .no_proxy()
                .http1_only()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.bytes().await {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(format!("body: {e}")),
                    },
                    Ok(r) => failures.push(format!("status {}", r.status())),
                    Err(e) => failures.push(format!("error: {e:?}")),
                }
            }
            failures
        }));
    }

    let started = Instant::now();
    for i in 0..RELOADS {
        let text = if i % 2 == 0 { v2(up) } else { v1(up) };
        save_by_rename(&gw.config_path, &text);
        gw.signal("HUP");
        let want = i + 2;
        wait_admin(&gw, Duration::from_secs(10), |v| {
            v["generation"].as_u64().is_some_and(|g| g >= want)
        })
        .await;
    }
    // Requests keep flowing a moment on the last generation.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for c in clients {
        failures.extend(c.await.unwrap());
    }
    let served = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} failed of {}: {:?}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(
        served >= 100,
        "only {served} requests in {:?}",
        started.elapsed()
    );

    let metrics = gw.admin_get("/metrics").await;
    let applied: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("nyro_config_reloads_total{result=\"applied\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no applied counter:\n{metrics}"));
    assert!(applied >= RELOADS, "{applied} applied:\n{metrics}");
    assert!(
        metrics.contains(&format!("nyro_config_generation {}", RELOADS + 1)),
        "{metrics}"
    );
    assert!(
        metrics.contains("nyro_config_reloads_total{result=\"rejected\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn upstream_connections_survive_a_reload_that_does_not_touch_them() {
    let (counted, accepted) = support::connection_counting_upstream(Duration::ZERO).await;
    let other = support::echo_upstream().await;
    let pooled = support::route("pooled", "/pooled", &format!("http://{counted}"), OPEN);
    let before = support::config(&format!("{ADMIN}{pooled}{}", base(other)));
    let after = support::config(&format!("{ADMIN}{pooled}{}{}", base(other), extra(other)));
    let gw = Gateway::start(&before).await;
    let c = support::client();

    // Sequential requests; the pause lets each upstream connection go back
    // to the pool before the next request.
    let sequential = |n: usize| {
        let (c, url) = (c.clone(), gw.url("/pooled/x"));
        async move {
            for _ in 0..n {
                assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    sequential(3).await;
    let opened = accepted.load(Ordering::SeqCst);
    assert_eq!(opened, 1, "keep-alive to the upstream");

    save_by_rename(&gw.config_path, &after);
    gw.signal("HUP");
    gw.wait_reloaded(2).await;
    sequential(3).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        opened,
        "the reload dropped the pool of an unchanged upstream"
    );
}

#[tokio::test]
async fn changed_listen_address_warns_and_the_old_listener_keeps_serving() {
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&v1(up)).await;
    let c = support::client();
    let elsewhere = support::dead_addr().await;
    let moved = v2(up).replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{elsewhere}\""),
    );
    assert!(moved.contains(&elsewhere.to_string()));

    save_by_rename(&gw.config_path, &moved);
    let warn = gw
        .wait_log(Duration::from_secs(5), |v| {
            v["level"] == "WARN"
                && v["setting"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("server.listen"))
        })
        .await
        .unwrap_or_else(|| panic!("no restart warning:\n{}", gw.logs().join("\n")));
    assert!(
        warn["message"].as_str().unwrap().contains("restart"),
        "{warn}"
    );
    // The rest of the config applied, on the old listener.
    gw.wait_reloaded(2).await;
    assert_eq!(status(&c, &gw.url("/extra")).await, 200);
    assert_eq!(status(&c, &gw.url("/base")).await, 200);
    assert!(
        tokio::net::TcpStream::connect(elsewhere).await.is_err(),
        "nothing listens on the new address"
    );
}

/// The default `--config ./gateway.toml` is relative: its directory is
/// both `.` and its absolute path, one directory to watch. A save after the
/// file was briefly missing must still reload, without SIGHUP.
#[tokio::test]
async fn relative_config_path_keeps_reloading_after_the_file_was_briefly_missing() {
    let up = support::echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.toml"), v1(up)).unwrap();
    let gw = Gateway::start_in(dir, "gateway.toml".into(), &[], &[]).await;
    let c = support::client();
    assert_eq!(status(&c, &gw.url("/extra")).await, 404);

    std::fs::remove_file(&gw.config_path).unwrap();
    wait_admin(&gw, Duration::from_secs(5), |v| {
        v["last_reload_error"].is_array()
    })
    .await;
    std::fs::write(&gw.config_path, v2(up)).unwrap();
    wait_status(&c, &gw.url("/extra"), 200, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the recreated config was not reloaded:\n{}",
                gw.logs().join("\n")
            )
        });
    // And the watch is still alive for the next save.
    save_by_rename(&gw.config_path, &v1(up));
    wait_status(&c, &gw.url("/extra"), 404, Duration::from_secs(5))
        .await
        .expect("a later save reloads too");
}

/// A `secret_file` replaced by a FIFO: the reload is refused at once
/// (reading it would wait for a writer forever), the old secret keeps
/// serving, and SIGTERM still ends the process promptly.
#[tokio::test]
async fn fifo_secret_file_is_refused_by_reload_and_sigterm_still_exits() {
    let up = support::echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwt"), support::SECRET).unwrap();
    let toml = support::config(&format!(
        "{ADMIN}{}",
        support::route(
            "api",
            "/api",
            &format!("http://{up}"),
            "auth = \"required\""
        )
    ))
    .replace(
        &format!("secret = \"{}\"", support::SECRET),
        "secret_file = \"jwt\"",
    );
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, toml).unwrap();
    let mut gw = Gateway::start_in(dir, config, &[], &[]).await;
    let c = support::client();
    let t = support::token(support::user_claims("u1", "c1"));
    let call = |t: String| c.get(gw.url("/api/me")).bearer_auth(t).send();
    assert_eq!(call(t.clone()).await.unwrap().status(), 200);

    let secret = gw.dir.path().join("jwt");
    std::fs::remove_file(&secret).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&secret)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    let line = gw
        .wait_log(Duration::from_secs(5), |v| {
            v["level"] == "ERROR"
                && v["problem"]
                    .as_str()
                    .is_some_and(|p| p.contains("not a regular file"))
        })
        .await
        .unwrap_or_else(|| panic!("the FIFO was not refused:\n{}", gw.logs().join("\n")));
    assert!(
        line["problem"].as_str().unwrap().contains("secret_file"),
        "{line}"
    );
    assert_eq!(
        call(t).await.unwrap().status(),
        200,
        "the old secret keeps serving"
    );
    let cfg = admin_config(&gw).await;
    assert_eq!(cfg["generation"], 1);

    gw.signal("TERM");
    let exit = gw.wait_exit(Duration::from_secs(5)).await;
    assert!(
        exit.is_some(),
        "SIGTERM did not end the process:\n{}",
        gw.logs().join("\n")
    );
}

/// A reload stuck in a read that never ends (here the config file itself
/// replaced by a FIFO nobody writes) must not hold up shutdown: SIGTERM
/// drains and exits without waiting for it.
#[tokio::test]
async fn sigterm_exits_while_a_reload_is_stuck_reading() {
    let up = support::echo_upstream().await;
    let mut gw = Gateway::start(&v1(up)).await;
    std::fs::remove_file(&gw.config_path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&gw.config_path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    // The watcher sees the new file and a reload starts reading it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gw.signal("TERM");
    let exit = gw.wait_exit(Duration::from_secs(5)).await;
    assert!(
        exit.is_some(),
        "SIGTERM waited for the stuck reload:\n{}",
        gw.logs().join("\n")
    );
}

#[tokio::test]
async fn changed_workers_or_pinning_warn_that_a_restart_is_needed_and_the_rest_applies() {
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&v1(up).replace("[server]\n", "[server]\nworkers = 2\n")).await;
    let c = support::client();
    save_by_rename(
        &gw.config_path,
        &v2(up).replace("[server]\n", "[server]\nworkers = 3\npin_workers = false\n"),
    );
    for (setting, says) in [
        (
            "server.workers",
            "server.workers (serving with 2, config says 3)",
        ),
        (
            "server.pin_workers",
            "server.pin_workers (serving with true, config says false)",
        ),
    ] {
        let warn = gw
            .wait_log(Duration::from_secs(5), |v| {
                v["level"] == "WARN"
                    && v["setting"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(setting))
            })
            .await
            .unwrap_or_else(|| panic!("no restart warning:\n{}", gw.logs().join("\n")));
        assert_eq!(warn["setting"], says, "{warn}");
    }
    gw.wait_reloaded(2).await;
    assert_eq!(status(&c, &gw.url("/extra")).await, 200);
}
