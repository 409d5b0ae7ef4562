//! Overlapping HMAC secrets (README "Rotating the HMAC secret"): every
//! listed secret verifies, the first signs, a removed one stops verifying
//! at the reload that removes it, and logs and metrics name the position of
//! the secret that verified a token, never its value.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, Gateway};

const OLD: &str = "old-secret-that-is-long-enough-0123456789";
const NEW: &str = "new-secret-that-is-long-enough-9876543210";

/// A gateway config whose `[auth] secret` line is `secret_line`.
fn with_secret(up: std::net::SocketAddr, secret_line: &str) -> String {
    let toml = support::config(&format!(
        "[admin]\nlisten = \"127.0.0.2:0\"\n\n{}",
        support::route(
            "api",
            "/api",
            &format!("http://{up}"),
            "auth = \"required\""
        )
    ));
    support::with_auth(&toml, secret_line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_tokens_working_until_the_old_secret_is_removed() {
    let up = support::echo_upstream().await;
    let gw = Gateway::start(&with_secret(up, &format!("secret = [\"{OLD}\"]"))).await;
    let old_token = support::sign(support::user_claims("u1", "c1"), OLD.as_bytes());
    let new_token = support::sign(support::user_claims("u2", "c1"), NEW.as_bytes());
    let c = support::client();
    let url = gw.url("/api/me");
    assert_eq!(
        c.get(&url)
            .bearer_auth(&old_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(&url)
            .bearer_auth(&new_token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // A stream of requests with the old token while the new secret is added.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let stream = {
        let (stop, failed, sent) = (stop.clone(), failed.clone(), sent.clone());
        let (c, url, t) = (c.clone(), url.clone(), old_token.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let ok =
                    matches!(c.get(&url).bearer_auth(&t).send().await, Ok(r) if r.status() == 200);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.write_config(&with_secret(
        up,
        &format!("secret = [\"{NEW}\", \"{OLD}\"]"),
    ));
    gw.signal("HUP");
    gw.wait_reloaded(2).await;
    assert_eq!(
        c.get(&url)
            .bearer_auth(&new_token)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the new secret verifies once added"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(25), stream)
        .await
        .unwrap()
        .unwrap();
    assert!(sent.load(Ordering::Relaxed) > 10, "too few requests sent");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "old-secret requests failed while both secrets were listed"
    );

    // The old token is cached now; removing its secret refuses it at once.
    assert_eq!(
        c.get(&url)
            .bearer_auth(&old_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    gw.write_config(&with_secret(up, &format!("secret = [\"{NEW}\"]")));
    gw.signal("HUP");
    gw.wait_reloaded(3).await;
    assert_eq!(
        c.get(&url)
            .bearer_auth(&old_token)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "a cached verification outlived its removed secret"
    );
    assert_eq!(
        c.get(&url)
            .bearer_auth(&new_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        !gw.logs().iter().any(|l| l.contains(OLD) || l.contains(NEW)),
        "a secret reached the log"
    );
}

#[tokio::test]
async fn the_secret_that_verified_is_named_by_position_in_logs_and_metrics() {
    let up = support::echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // One secret per line; the blank line is dropped.
    std::fs::write(dir.path().join("jwt"), format!("{NEW}\n\n{OLD}\n")).unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, with_secret(up, "secret_file = \"jwt\"")).unwrap();
    let gw = Gateway::start_in(dir, config, &[], &[]).await;
    let c = support::client();
    let url = gw.url("/api/me");
    for (secret, sub) in [(OLD, "by-old"), (NEW, "by-new")] {
        let t = support::sign(support::user_claims(sub, "c1"), secret.as_bytes());
        assert_eq!(
            c.get(&url).bearer_auth(&t).send().await.unwrap().status(),
            200
        );
    }
    // The log is read from the process's output by another task, so a
    // line can arrive after the response it belongs to: wait for it.
    for (sub, position) in [("by-new", 1), ("by-old", 2)] {
        let line = gw
            .wait_log(Duration::from_secs(5), |v| {
                v["message"] == "request" && v["user_id"] == sub
            })
            .await
            .unwrap_or_else(|| panic!("no request line for {sub}:\n{}", gw.logs().join("\n")));
        assert_eq!(line["secret_position"], position, "{line}");
    }
    let metrics = gw.admin_get("/metrics").await;
    for want in [
        "nyro_token_verifications_total{secret_position=\"1\"} 1",
        "nyro_token_verifications_total{secret_position=\"2\"} 1",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }
}

fn secret_config(dir: &std::path::Path, secret_line: &str) {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[auth]\n{secret_line}\n[[routes]]\nname = \"api\"\nprefix = \"/api\"\nupstream = \"http://127.0.0.1:9\"\n"
    );
    std::fs::write(dir.join("gateway.toml"), text).unwrap();
}

#[test]
fn token_mint_signs_with_the_first_secret_and_an_unset_old_one_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    secret_config(
        dir.path(),
        "secret = [\"${NEW_SECRET}\", \"${OLD_SECRET:-}\"]",
    );
    let o = support::cli(
        dir.path(),
        &[
            "token",
            "mint",
            "--claims",
            r#"{"sub":"u1"}"#,
            "-c",
            "gateway.toml",
        ],
        &[("NEW_SECRET", NEW)],
    );
    assert!(o.status.success(), "{}", support::stderr(&o));
    let token = support::stdout(&o).trim().to_owned();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["authenticated"]);
    jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(NEW.as_bytes()),
        &v,
    )
    .expect("signed with the first secret");

    // With both set, the old one verifies too.
    let old = support::sign(support::user_claims("u1", "c1"), OLD.as_bytes());
    let o = support::cli(
        dir.path(),
        &["token", "inspect", &old, "-c", "gateway.toml"],
        &[("NEW_SECRET", NEW), ("OLD_SECRET", OLD)],
    );
    let out = support::stdout(&o);
    assert!(out.contains("secret 2"), "{out}");
    assert!(!out.contains(OLD) && !out.contains(NEW), "{out}");
}

#[test]
fn check_config_checks_every_secret_and_warns_beyond_two() {
    let dir = tempfile::tempdir().unwrap();
    let a = "a".repeat(40);
    let b = "b".repeat(40);
    let c = "c".repeat(40);
    secret_config(dir.path(), &format!("secret = [\"{a}\", \"{b}\", \"{c}\"]"));
    let o = support::cli(dir.path(), &["check-config"], &[]);
    let err = support::stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("gateway.toml:4:10: warning: 3 HMAC secrets are listed"),
        "{err}"
    );
    secret_config(dir.path(), &format!("secret = [\"{a}\", \"short\"]"));
    let o = support::cli(dir.path(), &["check-config"], &[]);
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gateway.toml:4:55: error: secret 2: the HMAC secret is 5 bytes"),
        "{err}"
    );
    assert!(!err.contains(&a), "a secret reached the output: {err}");
}
