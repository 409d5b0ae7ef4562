//! Thread per core (`[server] workers`, README): several workers share one
//! listening socket, each serving the connections it accepted.

use std::time::Duration;

use crate::support::*;

/// `serve` on a config listening on `addr`, run to its exit (it must not
/// start): exit status and stderr.
fn serve_on(addr: std::net::SocketAddr) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let toml = config(&route(
        "svc",
        "/svc",
        "http://127.0.0.1:9",
        "auth = \"none\"",
    ))
    .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\""));
    assert!(toml.contains(&addr.to_string()), "{toml}");
    std::fs::write(&path, toml).unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("NYRO_GW_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a second gateway on {addr} kept running: it must refuse the port");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

/// One unauthenticated route `/svc` to `up`, served by `workers` workers.
fn workers_config(up: std::net::SocketAddr, workers: usize) -> String {
    config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    ))
    .replace("[server]\n", &format!("[server]\nworkers = {workers}\n"))
}

#[tokio::test]
async fn a_second_gateway_on_the_same_port_fails_with_address_in_use() {
    let up = echo_upstream().await;
    let first = Gateway::start(&workers_config(up, 2)).await;
    let addr = first.addr;
    let (status, err) = tokio::task::spawn_blocking(move || serve_on(addr))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("in use"),
        "{err}"
    );
    // The first one still serves.
    let resp = client().get(first.url("/svc/x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// CPU ticks (user + system) of each `nyro-worker-*` thread of `pid`.
fn worker_ticks(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let name = name.trim().to_owned();
        if !name.starts_with("nyro-worker-") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.push((name, ticks));
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_configured_workers_run_and_serve_from_the_shared_socket() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&with_admin(&workers_config(up, 3))).await;
    let serving = gw.find_log(|v| v["message"] == "nyro-gw serving").unwrap();
    assert_eq!(serving["workers"], 3, "{serving}");
    let names: Vec<String> = worker_ticks(gw.pid()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["nyro-worker-0", "nyro-worker-1", "nyro-worker-2"]);

    // Many connections at once, each with several requests, then kept
    // open: every worker holds a share of them (an accepted connection
    // goes to the worker holding the fewest; simultaneous accepts may
    // tip the balance by a few).
    let url = gw.url("/svc/spread");
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // A client of its own: its own connection.
            let c = client();
            for _ in 0..40 {
                let r = c.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
            c
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        let c = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("load finished")
            .unwrap();
        open.push(c);
    }
    let held = worker_connections(&gw, 3).await;
    assert_eq!(held.iter().sum::<i64>(), 48, "{held:?}");
    assert!(held.iter().all(|&n| n >= 8), "{held:?}");
    drop(open);
}

/// `nyro_worker_connections{worker="N"}` from the admin page.
async fn worker_connections(gw: &Gateway, workers: usize) -> Vec<i64> {
    let page = gw.admin_get("/metrics").await;
    (0..workers)
        .map(|w| {
            let series = format!("nyro_worker_connections{{worker=\"{w}\"}} ");
            page.lines()
                .find_map(|l| l.strip_prefix(&series))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {series} in\n{page}"))
        })
        .collect()
}

#[tokio::test]
async fn accepted_connections_go_to_the_least_busy_worker() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&with_admin(&workers_config(up, 2))).await;
    // One connection at a time, each kept open after its request: whichever
    // worker the kernel wakes, each new one goes to the worker holding fewer.
    let mut open = Vec::new();
    for i in 0..20 {
        let c = client();
        let r = tokio::time::timeout(Duration::from_secs(10), c.get(gw.url("/svc/x")).send())
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert_eq!(r.status(), 200, "connection {i}");
        r.bytes().await.unwrap();
        open.push(c);
    }
    assert_eq!(worker_connections(&gw, 2).await, [10, 10]);
    // Closed connections are counted out.
    drop(open);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = worker_connections(&gw, 2).await;
        if now == [0, 0] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still counted: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The CPUs in a `/proc/.../status` file's `Cpus_allowed_list` ("0-3,6").
fn cpus_allowed(status_file: &str) -> Vec<usize> {
    let status = std::fs::read_to_string(status_file).unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status_file}"))
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

/// Each `nyro-worker-*` thread of `pid`, in worker order, with the CPUs
/// it may run on.
fn worker_affinity(pid: u32) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| {
            let dir = t.unwrap().path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            let name = name.trim().to_owned();
            name.starts_with("nyro-worker-")
                .then(|| (name, cpus_allowed(&dir.join("status").to_string_lossy())))
        })
        .collect();
    out.sort();
    out
}

/// A gateway with `workers` workers (and `extra` in `[server]`), once
/// every worker has answered: each holds one of the connections.
async fn started(up: std::net::SocketAddr, workers: usize, extra: &str) -> Gateway {
    let toml = workers_config(up, workers).replace("[server]\n", &format!("[server]\n{extra}\n"));
    let gw = Gateway::start(&with_admin(&toml)).await;
    let mut open = Vec::new();
    for _ in 0..workers {
        let c = client();
        let r = c.get(gw.url("/svc/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        open.push(c);
    }
    assert!(
        worker_connections(&gw, workers)
            .await
            .iter()
            .all(|&n| n == 1)
    );
    gw
}

#[tokio::test]
async fn workers_are_pinned_one_per_cpu_when_there_is_one_cpu_each() {
    // The CPUs this test may run on; the gateway inherits them.
    let mine = cpus_allowed("/proc/self/status");
    let up = echo_upstream().await;

    let gw = started(up, mine.len(), "").await;
    let pinned = worker_affinity(gw.pid());
    let expected: Vec<(String, Vec<usize>)> = mine
        .iter()
        .enumerate()
        .map(|(i, &cpu)| (format!("nyro-worker-{i}"), vec![cpu]))
        .collect();
    assert_eq!(pinned, expected, "worker i on the i-th CPU of {mine:?}");
    let line = gw
        .find_log(|v| v["message"] == "workers pinned, one per CPU")
        .expect("the pinning is logged");
    assert_eq!(line["cpus"], format!("{mine:?}"), "{line}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&gw.admin_get("/config").await).unwrap()["config"]
            ["server"]["pin_workers"],
        true
    );
    drop(gw);

    // Turned off: every worker may run on every CPU.
    let gw = started(up, mine.len(), "pin_workers = false").await;
    assert!(
        worker_affinity(gw.pid())
            .iter()
            .all(|(_, cpus)| *cpus == mine),
        "{:?}",
        worker_affinity(gw.pid())
    );
    assert!(
        gw.find_log(|v| v["message"] == "workers pinned, one per CPU")
            .is_none()
    );
    drop(gw);

    // More workers than CPUs (as under a CPU quota, fewer): none pinned.
    let gw = started(up, mine.len() + 1, "").await;
    let affinity = worker_affinity(gw.pid());
    assert_eq!(affinity.len(), mine.len() + 1);
    assert!(
        affinity.iter().all(|(_, cpus)| *cpus == mine),
        "{affinity:?}"
    );
}
