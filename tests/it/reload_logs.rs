//! What reloads log (README "Reload"): a config back in sync after a
//! refusal says so, a SIGHUP that finds nothing to do says so, a changed
//! route names the setting and its old and new value, and a warning that
//! still stands is not logged again on every reload.

use std::time::Duration;

use serde_json::Value;

use crate::support::{self, Gateway};

fn cfg(upstream: &str) -> String {
    support::config(&format!(
        "{}{}",
        support::route("reports", "/reports", upstream, "auth = \"none\""),
        support::route("stub", "/stub", "", "auth = \"none\""),
    ))
}

fn is(v: &Value, message: &str) -> bool {
    v["message"] == message
}

async fn wait(gw: &Gateway, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    gw.wait_log(Duration::from_secs(5), pred)
        .await
        .unwrap_or_else(|| panic!("no {what} line:\n{}", gw.logs().join("\n")))
}

#[tokio::test]
async fn reload_logs_say_what_changed_and_when_nothing_did() {
    let gw = Gateway::start(&cfg("http://127.0.0.1:9001")).await;
    let count = |needle: &str| gw.logs().iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("upstream is empty"), 1, "{}", gw.logs().join("\n"));

    // SIGHUP with nothing changed: answered at info level.
    gw.signal("HUP");
    let line = wait(&gw, "unchanged", |v| {
        is(v, "config unchanged; nothing to reload")
    })
    .await;
    assert_eq!(line["level"], "INFO", "{line}");

    // The diff names the setting, old -> new; the standing warning is not repeated.
    gw.write_config(&cfg("http://127.0.0.1:9002"));
    gw.signal("HUP");
    let line = wait(&gw, "reloaded", |v| is(v, "config reloaded")).await;
    let changes = line["changes"].as_str().unwrap();
    assert!(
        changes
            .contains("route \"reports\": upstream http://127.0.0.1:9001 -> http://127.0.0.1:9002"),
        "{changes}"
    );
    assert_eq!(count("upstream is empty"), 1, "{}", gw.logs().join("\n"));

    // Refused, then restored: back in sync, and said so.
    gw.write_config("[server\n");
    gw.signal("HUP");
    wait(&gw, "refused", |v| {
        is(
            v,
            "config reload refused; the previous config keeps serving",
        )
    })
    .await;
    gw.write_config(&cfg("http://127.0.0.1:9002"));
    gw.signal("HUP");
    let line = wait(&gw, "in sync", |v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("config in sync again"))
    })
    .await;
    assert_eq!(line["level"], "INFO", "{line}");
}
