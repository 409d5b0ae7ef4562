//! `nyro-gw token mint` and `token inspect`, run as the built binary on
//! fixture configs in a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

const SECRET: &str = "cli-test-secret-that-is-long-enough-0123456789";

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("gateway.toml");
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[auth]
audience = "authenticated"
algorithms = ["HS256"]
secret = "{SECRET}"
[[routes]]
name = "ingest"
prefix = "/api/v1/ingest"
upstream = "http://127.0.0.1:9"
auth = "required"
[routes.inject]
"X-User-ID" = "sub"
"X-Company-ID" = {{ claim = "app_metadata.company_id", required = true }}
[[routes]]
name = "public"
prefix = "/api/v1/auth"
upstream = "http://127.0.0.1:9"
auth = "none"
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nyro-gw"))
        .args(args)
        .current_dir(dir)
        .env_remove("NYRO_GW_CONFIG")
        .env_remove("GATEWAY_JWT_SECRET")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mint(dir: &Path, claims: &str) -> String {
    let cfg = config(dir);
    let o = run(
        dir,
        &[
            "token",
            "mint",
            "--claims",
            claims,
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let token = stdout(&o);
    assert!(
        token.ends_with('\n') && token.trim().split('.').count() == 3,
        "{token:?}"
    );
    token.trim().to_owned()
}

#[test]
fn minted_token_is_accepted_and_the_route_table_shows_injected_headers() {
    let dir = tempfile::tempdir().unwrap();
    let token = mint(
        dir.path(),
        r#"{"sub":"user-1","app_metadata":{"company_id":"c1"}}"#,
    );
    let o = run(dir.path(), &["token", "inspect", &token]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("ACCEPTED"), "{out}");
    assert!(
        out.contains("X-User-ID: user-1") && out.contains("X-Company-ID: c1"),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !String::from_utf8_lossy(&o.stderr).contains(SECRET));
}

#[test]
fn missing_company_id_is_a_403_on_the_route_that_requires_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = mint(dir.path(), r#"{"sub":"user-1"}"#);
    let o = run(
        dir.path(),
        &["token", "inspect", &format!("Bearer {token}")],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "the token itself is valid: {out}");
    assert!(
        out.contains("403 required claim \"app_metadata.company_id\" is missing"),
        "{out}"
    );
}

#[test]
fn expired_token_is_refused_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let token = mint(dir.path(), r#"{"sub":"u1","exp":1700000000}"#);
    let o = run(dir.path(), &["token", "inspect", &token]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("REFUSED") && out.contains("expired"), "{out}");
    assert!(out.contains("Sign in again"), "{out}");
    assert!(out.contains("401 token expired"), "{out}");
}

#[test]
fn wrong_audience_is_refused_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let token = mint(dir.path(), r#"{"sub":"u1","aud":"some-other-api"}"#);
    let o = run(dir.path(), &["token", "inspect", &token]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("audience mismatch: expected 'authenticated', token has 'some-other-api'"),
        "{out}"
    );
    assert!(out.contains("[auth].audience"), "{out}");
}

#[test]
fn json_format_parses_and_stdin_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let token = mint(
        dir.path(),
        r#"{"sub":"u1","app_metadata":{"company_id":"c1"}}"#,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_nyro-gw"))
        .args(["token", "inspect", "-", "--format", "json"])
        .current_dir(dir.path())
        .env_remove("NYRO_GW_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{token}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["accepted"], true);
    assert_eq!(v["signature_checked"], true);
    assert_eq!(v["claims"]["sub"], "u1");
    assert_eq!(v["routes"][0]["status"], 200);
    assert_eq!(
        v["routes"][0]["inject"][0],
        serde_json::json!(["X-User-ID", "u1"])
    );
}

#[test]
fn without_a_config_the_token_is_only_decoded() {
    let with_cfg = tempfile::tempdir().unwrap();
    let token = mint(with_cfg.path(), r#"{"sub":"u1"}"#);
    let empty = tempfile::tempdir().unwrap();
    let o = run(empty.path(), &["token", "inspect", &token]);
    let out = stdout(&o);
    assert!(out.contains("signature was NOT checked"), "{out}");
    assert!(out.contains("\"sub\": \"u1\""), "{out}");
    assert_eq!(o.status.code(), Some(1), "nothing was accepted");
}

#[test]
fn garbage_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    let o = run(dir.path(), &["token", "inspect", "not-a-token"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("malformed token"), "{}", stdout(&o));
}

#[test]
fn mint_without_an_hmac_secret_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.toml");
    std::fs::write(
        &path,
        r#"
[server]
listen = "127.0.0.1:0"
[auth]
algorithms = ["ES256"]
jwks_url = "https://proj.supabase.co/auth/v1/.well-known/jwks.json"
[[routes]]
name = "r"
prefix = "/r"
upstream = "http://127.0.0.1:9"
auth = "required"
"#,
    )
    .unwrap();
    let o = run(
        dir.path(),
        &[
            "token",
            "mint",
            "--claims",
            r#"{"sub":"u1"}"#,
            "--config",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no HMAC secret"), "{err}");
}

#[test]
fn mint_with_an_unset_secret_variable_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(config(dir.path()))
        .unwrap()
        .replace(SECRET, "${GATEWAY_JWT_SECRET}");
    std::fs::write(&path, text).unwrap();
    let o = run(
        dir.path(),
        &["token", "mint", "--claims", r#"{"sub":"u1"}"#],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("GATEWAY_JWT_SECRET"), "{err}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn mint_refuses_claims_that_are_not_an_object() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    let o = run(dir.path(), &["token", "mint", "--claims", "[1,2]"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("must be a JSON object"));
}

/// Regression: `token mint` did not fill `iss`, so with `[auth].issuer`
/// set the minted token was refused by `serve` and `token inspect`.
#[test]
fn mint_fills_the_configured_issuer_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path());
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "audience = \"authenticated\"",
        "audience = \"authenticated\"\nissuer = \"https://proj.supabase.co/auth/v1\"",
    );
    std::fs::write(&path, text).unwrap();
    let mint = |claims: &str| {
        let o = run(dir.path(), &["token", "mint", "--claims", claims]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        stdout(&o).trim().to_owned()
    };
    let inspect = |token: &str| {
        let o = run(dir.path(), &["token", "inspect", token, "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), v)
    };

    let (code, v) = inspect(&mint(r#"{"sub":"u1","app_metadata":{"company_id":"c1"}}"#));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["claims"]["iss"], "https://proj.supabase.co/auth/v1");

    let (code, v) = inspect(&mint(r#"{"sub":"u1","iss":"https://other.example"}"#));
    assert_eq!(code, Some(1), "a given iss is kept: {v}");
    assert_eq!(v["claims"]["iss"], "https://other.example");
    assert!(
        v["reason"].as_str().unwrap().contains("issuer mismatch"),
        "{v}"
    );
}

/// Regression: a token over the 16 KiB cap printed an empty route table
/// and no header or claims, without saying why.
#[test]
fn token_over_the_size_cap_is_refused_plainly_and_still_shown() {
    let dir = tempfile::tempdir().unwrap();
    let padding = "p".repeat(17 * 1024);
    let token = mint(
        dir.path(),
        &format!(r#"{{"sub":"u1","app_metadata":{{"company_id":"c1"}},"padding":"{padding}"}}"#),
    );
    let size = token.len();
    assert!(size > 16 * 1024);

    let o = run(dir.path(), &["token", "inspect", &token]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("token is larger than 16 KiB ({size} bytes")),
        "{out}"
    );
    assert!(out.contains("\"sub\": \"u1\""), "claims still shown: {out}");
    assert!(
        out.contains("\"alg\": \"HS256\""),
        "header still shown: {out}"
    );
    assert!(out.contains("401 token is larger than 16 KiB"), "{out}");

    let o = run(
        dir.path(),
        &["token", "inspect", &token, "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["accepted"], false);
    assert_eq!(v["size"], size);
    assert_eq!(v["claims"]["sub"], "u1");
    assert_eq!(v["routes"][0]["status"], 401);
    assert_eq!(v["routes"][1]["status"], 200, "auth = none never reads it");

    // Too large and not a token at all; and without a config.
    let junk = "x".repeat(17 * 1024);
    let o = run(dir.path(), &["token", "inspect", &junk]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("token is larger than 16 KiB (17408 bytes"),
        "{}",
        stdout(&o)
    );
    let empty = tempfile::tempdir().unwrap();
    let o = run(empty.path(), &["token", "inspect", &token]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("token is larger than 16 KiB"), "{out}");
    assert!(out.contains("\"sub\": \"u1\""), "{out}");
}

/// Regression: a route whose upstream is empty was listed as answering
/// 200; the gateway answers 501 there once auth has passed.
#[test]
fn route_without_upstream_is_shown_as_501() {
    let dir = tempfile::tempdir().unwrap();
    // mint() writes the base config; the routes without upstream go after.
    let token = mint(
        dir.path(),
        r#"{"sub":"u1","app_metadata":{"company_id":"c1"}}"#,
    );
    let path = dir.path().join("gateway.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(
        r#"
[[routes]]
name = "later"
prefix = "/api/v1/later"
upstream = ""
auth = "required"
[routes.inject]
"X-User-ID" = "sub"
[[routes]]
name = "open-later"
prefix = "/api/v1/open-later"
upstream = ""
auth = "none"
"#,
    );
    std::fs::write(&path, text).unwrap();
    let o = run(
        dir.path(),
        &["token", "inspect", &token, "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = |name: &str| {
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no route {name}: {v}"))
    };
    assert_eq!(row("ingest")["status"], 200);
    for name in ["later", "open-later"] {
        let r = row(name);
        assert_eq!(r["status"], 501, "{r}");
        assert!(
            r["outcome"].as_str().unwrap().contains("no upstream"),
            "{r}"
        );
        assert_eq!(r["inject"], serde_json::json!([]), "nothing is sent: {r}");
    }

    let o = run(dir.path(), &["token", "inspect", &token]);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("later "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("501"), "{line}");
}
