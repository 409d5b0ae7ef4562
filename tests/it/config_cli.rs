//! `nyro-gw check-config`, `serve` on a bad config, `--help` and
//! `--version`, run as the built binary on fixture files in a temporary
//! directory.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{SECRET, cli, cli_within, config_dir, stderr, stdout};

/// Two routes, one without an upstream (a warning at 14:12). Valid when
/// `GATEWAY_JWT_SECRET` is set.
const VALID: &str = r#"[server]
listen = "127.0.0.1:0"
[auth]
secret = "${GATEWAY_JWT_SECRET}"
[[routes]]
name = "ingest"
prefix = "/api/v1/ingest"
upstream = "http://127.0.0.1:9"
[routes.inject]
"X-User-ID" = "sub"
[[routes]]
name = "auth"
prefix = "/api/v1/auth"
upstream = ""
auth = "none"
"#;

/// Three errors (3:19, 5:11 without `GATEWAY_JWT_SECRET`, 8:10) and one
/// warning (9:12), listening on `port` if it were ever served.
fn invalid(port: u16) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:{port}"
request_timeout = "ten seconds"
[auth]
secret = "${{GATEWAY_JWT_SECRET}}"
[[routes]]
name = "ingest"
prefix = "api/v1/ingest"
upstream = ""
auth = "none"
"#
    )
}

/// The diagnostics `invalid()` yields, as check-config prints them for a
/// file named `gateway.toml`.
const INVALID_DIAGNOSTICS: &[&str] = &[
    "gateway.toml:3:19: error: request_timeout: invalid duration \"ten seconds\" (expected a number and a unit, e.g. \"10s\"",
    "gateway.toml:5:11: error: secret: environment variable GATEWAY_JWT_SECRET is not set",
    "gateway.toml:8:10: error: prefix \"api/v1/ingest\" must start with \"/\"",
    "gateway.toml:9:12: warning: upstream is empty: this route answers 501 Not Implemented",
];

/// The lines of `text` that are diagnostics (`file:line:col: ...`).
fn diagnostic_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains(": error: ") || l.contains(": warning: "))
        .collect()
}

#[track_caller]
fn assert_diagnostics(stderr: &str, want: &[&str]) {
    let got = diagnostic_lines(stderr);
    assert_eq!(got.len(), want.len(), "stderr:\n{stderr}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.starts_with(w),
            "expected a line starting with\n  {w}\ngot\n  {g}\nstderr:\n{stderr}"
        );
    }
}

#[test]
fn check_config_on_a_valid_file_prints_the_route_table_and_exits_0() {
    let dir = config_dir(VALID);
    let o = cli(
        dir.path(),
        &["check-config", "gateway.toml"],
        &[("GATEWAY_JWT_SECRET", SECRET)],
    );
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    // The warning goes to stderr and does not fail the check.
    assert_diagnostics(
        &err,
        &["gateway.toml:14:12: warning: upstream is empty: this route answers 501"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "stdout:\n{out}");
    assert!(
        lines[0].starts_with("ROUTE")
            && lines[0].contains("PREFIX")
            && lines[0].contains("UPSTREAM")
    );
    assert!(lines[1].starts_with("ingest"), "{out}");
    assert!(lines[1].contains("/api/v1/ingest") && lines[1].contains("http://127.0.0.1:9"));
    assert!(lines[1].contains("required") && lines[1].contains("x-user-id=sub"));
    assert!(
        lines[2].starts_with("auth")
            && lines[2].contains("(none: 501)")
            && lines[2].contains("none")
    );
    assert_eq!(lines[3], "gateway.toml: ok (2 routes, 1 warning)");
}

#[test]
fn check_config_on_an_invalid_file_prints_every_problem_and_exits_1() {
    let dir = config_dir(&invalid(8080));
    let o = cli(dir.path(), &["check-config", "gateway.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert_diagnostics(&err, INVALID_DIAGNOSTICS);
    assert!(
        err.contains("gateway.toml: invalid (3 errors, 1 warning)"),
        "{err}"
    );
    assert_eq!(stdout(&o), "", "no route table for an invalid config");
}

#[test]
fn check_config_json_is_an_array_of_diagnostics_with_warnings() {
    let dir = config_dir(&invalid(8080));
    let o = cli(
        dir.path(),
        &["check-config", "gateway.toml", "--format", "json"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "stderr:\n{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let items = v.as_array().expect("an array");
    assert_eq!(items.len(), 4, "{v:#}");
    let mut keys: Vec<&str> = items[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["column", "file", "line", "message", "severity"]);
    let summary: Vec<(String, u64, u64)> = items
        .iter()
        .map(|d| {
            assert_eq!(d["file"], "gateway.toml");
            assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()));
            (
                d["severity"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("error", 3, 19),
        ("error", 5, 11),
        ("error", 8, 10),
        ("warning", 9, 12),
    ]
    .map(|(s, l, c)| (s.to_owned(), l, c));
    assert_eq!(summary, want);
    assert!(
        items[1]["message"]
            .as_str()
            .unwrap()
            .contains("GATEWAY_JWT_SECRET")
    );
}

#[test]
fn check_config_json_on_a_valid_file_exits_0_and_lists_the_warning() {
    let dir = config_dir(VALID);
    let o = cli(
        dir.path(),
        &["check-config", "--format", "json", "gateway.toml"],
        &[("GATEWAY_JWT_SECRET", SECRET)],
    );
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is only JSON");
    assert_eq!(
        v,
        serde_json::json!([{
            "severity": "warning",
            "file": "gateway.toml",
            "line": 14,
            "column": 12,
            "message": "upstream is empty: this route answers 501 Not Implemented",
        }])
    );
}

#[test]
fn check_config_defaults_to_nyro_gw_config() {
    let dir = config_dir(&invalid(8080)); // ./gateway.toml is invalid...
    let custom = dir.path().join("custom.toml");
    std::fs::write(&custom, VALID).unwrap(); // ...the named one is not.
    let o = cli(
        dir.path(),
        &["check-config"],
        &[
            ("NYRO_GW_CONFIG", custom.to_str().unwrap()),
            ("GATEWAY_JWT_SECRET", SECRET),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    assert!(
        stdout(&o).contains("custom.toml: ok (2 routes"),
        "{}",
        stdout(&o)
    );
    // An explicit path wins over the variable.
    let o = cli(
        dir.path(),
        &["check-config", "gateway.toml"],
        &[("NYRO_GW_CONFIG", custom.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn check_config_takes_config_flag_like_serve_and_token() {
    let dir = config_dir(&invalid(8080)); // ./gateway.toml is invalid...
    std::fs::write(dir.path().join("custom.toml"), VALID).unwrap(); // ...this one is not.
    for flag in ["--config", "-c"] {
        let o = cli(
            dir.path(),
            &["check-config", flag, "custom.toml"],
            &[("GATEWAY_JWT_SECRET", SECRET)],
        );
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        assert!(stdout(&o).contains("custom.toml: ok"), "{}", stdout(&o));
    }
    // A path given both ways is ambiguous: a usage error, not a guess.
    let o = cli(
        dir.path(),
        &["check-config", "gateway.toml", "--config", "custom.toml"],
        &[("GATEWAY_JWT_SECRET", SECRET)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn check_config_defaults_to_gateway_toml_in_the_current_directory() {
    let dir = config_dir(VALID);
    let o = cli(
        dir.path(),
        &["check-config"],
        &[("GATEWAY_JWT_SECRET", SECRET)],
    );
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    assert!(stdout(&o).ends_with("gateway.toml: ok (2 routes, 1 warning)\n"));
}

#[test]
fn check_config_on_a_missing_file_says_so_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let o = cli(dir.path(), &["check-config", "nope.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.starts_with("nope.toml:1:1: error: cannot read the config file:"),
        "{err}"
    );
    assert!(
        err.contains("NYRO_GW_CONFIG"),
        "the message says how to name a config: {err}"
    );
    // With no argument and no ./gateway.toml, the default is named.
    let o = cli(dir.path(), &["check-config"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("gateway.toml:1:1: error: cannot read the config file"));
}

#[test]
fn shipped_gateway_toml_passes_with_the_secret_and_names_it_without() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = cli(
        root,
        &["check-config", "gateway.toml"],
        &[("GATEWAY_JWT_SECRET", SECRET)],
    );
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    let out = stdout(&o);
    for name in ["ingest", "query", "auth"] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{out}");
    }

    let o = cli(root, &["check-config", "gateway.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.contains(
            "gateway.toml:27:11: error: secret: environment variable GATEWAY_JWT_SECRET is not set"
        ),
        "{err}"
    );
}

#[test]
fn serve_on_an_invalid_config_prints_the_diagnostics_and_never_listens() {
    // A port that is free now; the invalid config names it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = config_dir(&invalid(port));
    let o = cli_within(
        dir.path(),
        &["serve", "--config", "gateway.toml"],
        &[],
        None,
        Duration::from_secs(20),
    )
    .expect("serve kept running on an invalid config");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert_diagnostics(&err, INVALID_DIAGNOSTICS);
    assert!(err.contains("nothing was started"), "{err}");
    // Nothing ever bound the port.
    TcpListener::bind(("127.0.0.1", port)).expect("the port is still free");
}

#[test]
fn help_works_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for (args, usage) in [
        (&["--help"][..], "Usage: nyro-gw"),
        (&["serve", "--help"], "Usage: nyro-gw serve"),
        (&["check-config", "--help"], "Usage: nyro-gw check-config"),
        (&["token", "--help"], "Usage: nyro-gw token"),
        (
            &["token", "inspect", "--help"],
            "Usage: nyro-gw token inspect",
        ),
        (&["token", "mint", "--help"], "Usage: nyro-gw token mint"),
        (&["help", "check-config"], "Usage: nyro-gw check-config"),
    ] {
        let o = cli(dir.path(), args, &[]);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains(usage), "{args:?}:\n{}", stdout(&o));
    }
    let o = cli(dir.path(), &["check-config", "--help"], &[]);
    assert!(stdout(&o).contains("--format"));
}

#[test]
fn version_prints_the_crate_version() {
    let dir = tempfile::tempdir().unwrap();
    let o = cli(dir.path(), &["--version"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o).trim(),
        format!("nyro-gw {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let dir = config_dir(VALID);
    let o = cli(dir.path(), &["check-config", "--format", "yaml"], &[]);
    assert_eq!(o.status.code(), Some(2), "clap's usage error code");
    assert!(stderr(&o).contains("yaml"));
}

/// `VALID` with `[auth]` reading the key from `secret_file = "jwt"`.
fn with_secret_file() -> String {
    VALID.replace(
        "secret = \"${GATEWAY_JWT_SECRET}\"",
        "secret_file = \"jwt\"",
    )
}

#[test]
fn check_config_refuses_a_fifo_secret_file_instead_of_hanging() {
    let dir = config_dir(&with_secret_file());
    let fifo = dir.path().join("jwt");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let o = cli_within(
        dir.path(),
        &["check-config", "gateway.toml"],
        &[],
        None,
        Duration::from_secs(10),
    )
    .expect("check-config returned instead of waiting for a writer on the FIFO");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gateway.toml:4:15: error: secret_file:")
            && err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn check_config_refuses_an_oversized_secret_file() {
    let dir = config_dir(&with_secret_file());
    std::fs::write(dir.path().join("jwt"), "k".repeat(1 << 20)).unwrap();
    let o = cli(dir.path(), &["check-config", "gateway.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("larger than 64 KiB"), "{err}");
}

#[test]
fn check_config_warns_on_a_world_writable_secret_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = config_dir(&with_secret_file());
    let secret = dir.path().join("jwt");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = cli(dir.path(), &["check-config", "gateway.toml"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("writable"), "{}", stderr(&o));
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = cli(dir.path(), &["check-config", "gateway.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "a warning, not an error: {err}");
    assert!(
        err.contains("gateway.toml:4:15: warning: secret_file:") && err.contains("world-writable"),
        "{err}"
    );
}

#[test]
fn jwks_url_with_credentials_is_refused_without_echoing_the_password() {
    let text = VALID.replace(
        "secret = \"${GATEWAY_JWT_SECRET}\"",
        "secret = \"${GATEWAY_JWT_SECRET}\"\njwks_url = \"https://jwks-user:hunter2-pass@127.0.0.1/jwks.json\"\nalgorithms = [\"HS256\", \"ES256\"]",
    );
    let dir = config_dir(&text);
    for format in ["text", "json"] {
        let o = cli(
            dir.path(),
            &["check-config", "gateway.toml", "--format", format],
            &[("GATEWAY_JWT_SECRET", SECRET)],
        );
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(1), "{out}{err}");
        assert!(
            format!("{out}{err}").contains(
                "jwks_url: \\\"https://***@127.0.0.1/jwks.json\\\": credentials in the URL are not supported"
            ) || format!("{out}{err}").contains(
                "jwks_url: \"https://***@127.0.0.1/jwks.json\": credentials in the URL are not supported"
            ),
            "{out}{err}"
        );
        assert!(
            !out.contains("hunter2") && !err.contains("hunter2"),
            "{out}{err}"
        );
    }
}

#[test]
fn upstream_with_credentials_is_refused_without_echoing_the_password() {
    let text = VALID.replace(
        "upstream = \"http://127.0.0.1:9\"",
        "upstream = \"http://svc-user:hunter2-pass@127.0.0.1:9\"",
    );
    let dir = config_dir(&text);
    let o = cli(
        dir.path(),
        &["check-config", "gateway.toml"],
        &[("GATEWAY_JWT_SECRET", SECRET)],
    );
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("\"http://***@127.0.0.1:9\": credentials in the URL are not supported"),
        "{err}"
    );
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "{out}{err}"
    );
}

// ---- compile-time refusals: whatever check-config passes, serve starts ----

/// A config with one https route, the listener on `127.0.0.1:0`, and
/// `extra_server` / `extra_route` lines added to `[server]` and the route.
fn compiled(extra_server: &str, extra_route: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{extra_server}[auth]\nsecret = \"{SECRET}\"\n\
         [[routes]]\nname = \"svc\"\nprefix = \"/svc\"\nupstream = \"https://127.0.0.1:9\"\n{extra_route}"
    )
}

/// A self-signed certificate and its key, as PEM.
fn cert_and_key() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

/// check-config refuses `dir`'s `gateway.toml` with exactly one error that
/// starts with `want` (`gateway.toml:LINE:COL: error: ...`), exit 1; and
/// `serve` refuses to start on it with the same line (exit 1, bounded).
#[track_caller]
fn assert_refused_by_check_config_and_serve(dir: &Path, want: &str) {
    let o = cli(dir, &["check-config", "gateway.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "check-config passed:\n{err}");
    assert_diagnostics(&err, &[want]);
    let o = cli_within(
        dir,
        &["serve", "--config", "gateway.toml"],
        &[],
        None,
        Duration::from_secs(20),
    )
    .expect("serve started on a config check-config refused");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert_diagnostics(&err, &[want]);
}

#[test]
fn ca_file_without_a_pem_certificate_is_refused_by_check_config_at_the_key() {
    let dir = config_dir(&compiled("", "ca_file = \"ca.pem\"\n"));
    std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
    assert_refused_by_check_config_and_serve(
        dir.path(),
        "gateway.toml:9:11: error: route \"svc\": ca_file ",
    );
}

#[test]
fn ca_file_with_a_broken_certificate_is_refused_by_check_config_at_the_key() {
    let dir = config_dir(&compiled("", "ca_file = \"ca.pem\"\n"));
    std::fs::write(
        dir.path().join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_refused_by_check_config_and_serve(
        dir.path(),
        "gateway.toml:9:11: error: route \"svc\": ca_file ",
    );
}

#[test]
fn tls_cert_without_a_pem_certificate_is_refused_at_tls_cert() {
    let (_, key) = cert_and_key();
    let dir = config_dir(&compiled(
        "tls = { cert = \"tls.crt\", key = \"tls.key\" }\n",
        "",
    ));
    std::fs::write(dir.path().join("tls.crt"), "no certificate here\n").unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    assert_refused_by_check_config_and_serve(dir.path(), "gateway.toml:3:16: error: server.tls: ");
}

#[test]
fn tls_key_that_does_not_parse_is_refused_at_tls_key() {
    let (cert, _) = cert_and_key();
    let dir = config_dir(&compiled(
        "tls = { cert = \"tls.crt\", key = \"tls.key\" }\n",
        "",
    ));
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), "no key here\n").unwrap();
    assert_refused_by_check_config_and_serve(dir.path(), "gateway.toml:3:33: error: server.tls: ");
}

#[test]
fn tls_cert_and_key_that_do_not_match_are_refused_at_tls_key() {
    let (cert, _) = cert_and_key();
    let (_, other_key) = cert_and_key();
    let dir = config_dir(&compiled(
        "tls = { cert = \"tls.crt\", key = \"tls.key\" }\n",
        "",
    ));
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), other_key).unwrap();
    assert_refused_by_check_config_and_serve(
        dir.path(),
        "gateway.toml:3:33: error: server.tls: certificate and key do not form a valid pair",
    );
}

#[test]
fn a_valid_tls_pair_and_ca_file_pass_check_config() {
    let (cert, key) = cert_and_key();
    let dir = config_dir(&compiled(
        "tls = { cert = \"tls.crt\", key = \"tls.key\" }\n",
        "ca_file = \"tls.crt\"\n",
    ));
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    let o = cli(dir.path(), &["check-config", "gateway.toml"], &[]);
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
}

#[test]
fn check_config_compiles_a_jwks_route_without_fetching() {
    // A JWKS URL nothing answers: check-config compiles the config
    // (no fetch, no tokio runtime needed) and passes it.
    let dir = config_dir(
        "[server]\nlisten = \"127.0.0.1:0\"\n[auth]\njwks_url = \"http://127.0.0.1:9/jwks.json\"\n\
         algorithms = [\"RS256\"]\n[[routes]]\nname = \"svc\"\nprefix = \"/svc\"\nupstream = \"http://127.0.0.1:9\"\n",
    );
    let o = cli_within(
        dir.path(),
        &["check-config", "gateway.toml"],
        &[],
        None,
        Duration::from_secs(20),
    )
    .expect("check-config hung");
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
}
