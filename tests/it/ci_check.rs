//! `check-config` in CI (README "Validating in CI"): `--allow-missing-env`
//! checks a config without the production environment, relaxing nothing
//! else; every `${VAR:-default}` that fell back is listed, by
//! `check-config` and at `serve` start, so the two can be compared.

use std::time::Duration;

use crate::support::{self, Gateway, cli, stderr};

/// Every value that only the production environment has, and `prefix`.
fn production_config(prefix: &str) -> String {
    format!(
        r#"[server]
listen = "${{GATEWAY_LISTEN}}"
tls = {{ cert = "${{TLS_DIR}}/tls.crt", key = "/nonexistent/tls.key" }}
[auth]
secret = "${{GATEWAY_JWT_SECRET}}"
[[routes]]
name = "ingest"
prefix = "{prefix}"
upstream = "http://${{INGEST_HOST}}:8080"
timeout = "${{INGEST_TIMEOUT}}"
ca_file = "/nonexistent/ca.pem"
"#
    )
}

#[test]
fn allow_missing_env_warns_for_each_unset_variable_and_relaxes_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.toml"), production_config("api")).unwrap();

    // Without the flag: strict, as before.
    let o = cli(dir.path(), &["check-config"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("error: secret: environment variable GATEWAY_JWT_SECRET is not set"),
        "{}",
        stderr(&o)
    );

    // With it: every unset variable a warning, the prefix still an error.
    let o = cli(dir.path(), &["check-config", "--allow-missing-env"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].starts_with("gateway.toml:8:10: error: prefix \"api\" must start with \"/\""),
        "{err}"
    );
    for want in [
        "gateway.toml:2:10: warning: GATEWAY_LISTEN is not set (--allow-missing-env): server.listen is checked as if it held \"127.0.0.1:0\"",
        "gateway.toml:3:16: warning: TLS_DIR is not set (--allow-missing-env): the rest of this server.tls.cert value is not checked",
        "gateway.toml:3:44: warning: tls.key: cannot read /nonexistent/tls.key",
        "gateway.toml:5:10: warning: GATEWAY_JWT_SECRET is not set (--allow-missing-env): auth.secret is checked as if it held a secret of sufficient length",
        "gateway.toml:9:12: warning: INGEST_HOST is not set (--allow-missing-env): the rest of this routes.upstream value is not checked",
        "gateway.toml:10:11: warning: INGEST_TIMEOUT is not set (--allow-missing-env): routes.timeout is checked as if it held \"1s\"",
        "gateway.toml:11:11: warning: ca_file: cannot read /nonexistent/ca.pem",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(want)),
            "missing {want}\n{err}"
        );
    }
    assert!(
        !err.contains("placeholder-secret"),
        "the placeholder secret is shown: {err}"
    );

    // Fixed, it passes: the placeholders satisfy every key's own checks.
    std::fs::write(dir.path().join("gateway.toml"), production_config("/api")).unwrap();
    let o = cli(dir.path(), &["check-config", "--allow-missing-env"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A variable that is set is used, not replaced.
    let o = cli(
        dir.path(),
        &["check-config", "--allow-missing-env"],
        &[("INGEST_TIMEOUT", "soon")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("gateway.toml:10:11: error: timeout: invalid duration \"soon\""),
        "{}",
        stderr(&o)
    );
}

fn defaults_config() -> String {
    support::config(&support::route(
        "reports",
        "/reports",
        "${GATEWAY_REPORTS_SERVICE_URL:-http://127.0.0.1:9001}",
        "auth = \"none\"",
    ))
    .replace(
        "request_timeout = \"5s\"",
        "request_timeout = \"${INGEST_TIMEOUT:-5s}\"",
    )
}

#[test]
fn check_config_lists_each_default_used_at_info_level() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.toml"), defaults_config()).unwrap();
    let o = cli(dir.path(), &["check-config"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let infos: Vec<&str> = err.lines().filter(|l| l.contains(": info: ")).collect();
    assert_eq!(infos.len(), 2, "{err}");
    assert!(
        infos[0].contains("info: INGEST_TIMEOUT is unset or empty"),
        "{err}"
    );
    assert!(
        infos[1].contains("info: GATEWAY_REPORTS_SERVICE_URL is unset or empty"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 warnings"));

    let o = cli(
        dir.path(),
        &["check-config"],
        &[
            ("GATEWAY_REPORTS_SERVICE_URL", "http://127.0.0.1:9002"),
            ("INGEST_TIMEOUT", "3s"),
        ],
    );
    assert!(!stderr(&o).contains("info:"), "{}", stderr(&o));
}

#[tokio::test]
async fn serve_lists_each_default_used_once_at_start() {
    let gw = Gateway::start(&defaults_config()).await;
    let line = gw
        .wait_log(Duration::from_secs(5), |v| {
            v["message"] == "config default used"
                && v["diagnostic"]
                    .as_str()
                    .is_some_and(|d| d.contains("GATEWAY_REPORTS_SERVICE_URL"))
        })
        .await
        .unwrap_or_else(|| panic!("no default listed:\n{}", gw.logs().join("\n")));
    assert_eq!(line["level"], "INFO", "{line}");
    let count = gw
        .logs()
        .iter()
        .filter(|l| l.contains("config default used"))
        .count();
    assert_eq!(count, 2, "{}", gw.logs().join("\n"));
}
