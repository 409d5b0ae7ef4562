//! `token inspect`'s exit status (README "Command line"): 0 only when a
//! route with auth required or optional would forward the token, 1
//! otherwise, 2 for usage; with a config that does not load, the token is
//! still decoded and printed, and it says nothing was verified.

use std::path::Path;
use std::process::Output;

use serde_json::json;

use crate::support;

const SECRET: &str = "inspect-exit-secret-that-is-long-enough-0123";

fn write_config(dir: &Path, secret: &str, upstream: &str) {
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
[auth]
secret = "{secret}"
[[routes]]
name = "ingest"
prefix = "/api/v1/ingest"
upstream = "{upstream}"
[routes.inject]
"X-Company-ID" = {{ claim = "app_metadata.company_id", required = true }}
[[routes]]
name = "open"
prefix = "/open"
upstream = "http://127.0.0.1:9"
auth = "none"
"#
    );
    std::fs::write(dir.join("gateway.toml"), text).unwrap();
}

fn inspect(dir: &Path, token: Option<&str>, stdin: &str) -> Output {
    let mut args = vec!["token", "inspect"];
    args.extend(token);
    args.extend(["--config", "gateway.toml"]);
    support::cli_stdin(dir, &args, stdin)
}

fn token(company: bool) -> String {
    let mut claims = json!({"sub": "u1", "aud": "authenticated", "exp": support::now() + 600});
    if company {
        claims["app_metadata"] = json!({"company_id": "c1"});
    }
    support::sign(claims, SECRET.as_bytes())
}

#[test]
fn inspect_exits_0_only_when_a_protected_route_would_forward_the_token() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), SECRET, "http://127.0.0.1:9");
    let o = inspect(dir.path(), Some(&token(true)), "");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Verified, but every protected route answers 403.
    let o = inspect(dir.path(), Some(&token(false)), "");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("ACCEPTED"), "{out}");
    assert!(out.contains("No route with auth"), "{out}");

    // The only protected route has no upstream: 501 does not count.
    write_config(dir.path(), SECRET, "");
    let o = inspect(dir.path(), Some(&token(true)), "");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // No token at all: a usage error.
    let o = inspect(dir.path(), None, "");
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn inspect_decodes_the_token_when_the_config_does_not_load_and_says_nothing_was_verified() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "${GATEWAY_JWT_SECRET}", "http://127.0.0.1:9");
    let o = inspect(dir.path(), Some(&token(true)), "");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("GATEWAY_JWT_SECRET is not set"), "{err}");
    assert!(
        out.contains("\"company_id\": \"c1\""),
        "claims not printed:\n{out}"
    );
    assert!(out.contains("NOTHING WAS VERIFIED"), "{out}");
    assert!(!out.contains("ACCEPTED"), "{out}");
}
