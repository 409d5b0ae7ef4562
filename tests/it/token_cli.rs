//! `nyro-gw token mint` and `token inspect`, run as the built binary on
//! fixture configs in a temporary directory.

use std::path::Path;
use std::process::Output;

use crate::support::{self, stderr, stdout};

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
    support::cli(dir, args, &[])
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
    assert!(o.status.success(), "{}", stderr(&o));
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
    assert!(!out.contains(SECRET) && !stderr(&o).contains(SECRET));
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
    // The token itself is valid, but no protected route forwards it.
    assert!(out.contains("ACCEPTED"), "{out}");
    assert_eq!(o.status.code(), Some(1), "{out}");
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
    let o = support::cli_stdin(
        dir.path(),
        &["token", "inspect", "-", "--format", "json"],
        &format!("{token}\n"),
    );
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
    let err = stderr(&o);
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
    let err = stderr(&o);
    assert!(err.contains("GATEWAY_JWT_SECRET"), "{err}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn mint_refuses_claims_that_are_not_an_object() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    let o = run(dir.path(), &["token", "mint", "--claims", "[1,2]"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("must be a JSON object"));
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
        assert!(o.status.success(), "{}", stderr(&o));
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

/// `token mint --key` with the given extra arguments, run in `dir`.
fn mint_key(dir: &Path, key: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "token",
        "mint",
        "--claims",
        r#"{"sub":"key-user","email":"key-user@example.com","app_metadata":{"company_id":"c9"}}"#,
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(dir, &args)
}

/// The decoded JSON of a token's header (0) or payload (1).
fn segment(token: &str, i: usize) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').nth(i).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test]
async fn minted_es256_token_is_accepted_by_a_gateway_reading_its_jwks() {
    use crate::support::{Gateway, INJECT, client};
    let dir = tempfile::tempdir().unwrap();
    let (pem, jwk) = support::es256_key("bench-1");
    let key = dir.path().join("es256.pem");
    std::fs::write(&key, pem).unwrap();
    let serving = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let jwks_addr = support::jwks_server(&[jwk], serving).await;
    let up = support::echo_upstream().await;

    // No gateway.toml in `dir`: --key needs no config, and `aud` defaults
    // to "authenticated", what the gateway checks by default.
    let o = mint_key(dir.path(), &key, &["--kid", "bench-1", "--ttl", "10m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = stdout(&o).trim().to_owned();
    assert_eq!(segment(&token, 0)["alg"], "ES256");
    assert_eq!(segment(&token, 0)["kid"], "bench-1");
    assert_eq!(segment(&token, 1)["aud"], "authenticated");

    let gw = Gateway::start(&format!(
        r#"
[server]
listen = "127.0.0.1:0"
[auth]
algorithms = ["ES256"]
jwks_url = "http://{jwks_addr}/.well-known/jwks.json"
[[routes]]
name = "req"
prefix = "/req"
upstream = "http://{up}"
auth = "required"
{INJECT}
"#
    ))
    .await;
    gw.wait_ready(
        std::time::Duration::from_secs(10),
        "ready once the JWKS is fetched",
    )
    .await;
    let r = client()
        .get(gw.url("/req/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-user-id"][0], "key-user");
    assert_eq!(v["headers"]["x-company-id"][0], "c9");

    // The same kid signed by another key is refused: the JWKS decides.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other_path = dir.path().join("other.pem");
    std::fs::write(&other_path, other.serialize_pem()).unwrap();
    let o = mint_key(dir.path(), &other_path, &["--kid", "bench-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = client()
        .get(gw.url("/req/x"))
        .bearer_auth(stdout(&o).trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn mint_with_a_key_signs_with_the_algorithm_of_the_key_type() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&rcgen::SignatureAlgorithm, Algorithm); 3] = [
        (&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256),
        (&rcgen::PKCS_ECDSA_P384_SHA384, Algorithm::ES384),
        (&rcgen::PKCS_ED25519, Algorithm::EdDSA),
    ];
    for (kind, alg) in cases {
        let kp = rcgen::KeyPair::generate_for(kind).unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, kp.serialize_pem()).unwrap();
        let o = mint_key(dir.path(), &key, &[]);
        assert!(o.status.success(), "{alg:?}: {}", stderr(&o));
        let token = stdout(&o).trim().to_owned();
        let public = kp.public_key_pem();
        let decoding = match alg {
            Algorithm::EdDSA => DecodingKey::from_ed_pem(public.as_bytes()),
            _ => DecodingKey::from_ec_pem(public.as_bytes()),
        }
        .unwrap();
        let mut v = Validation::new(alg);
        v.set_audience(&["authenticated"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &v)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(data.header.alg, alg);
        assert_eq!(data.header.kid, None, "no --kid, no kid");
        assert_eq!(data.claims["sub"], "key-user");
    }
}

#[test]
fn mint_with_a_key_takes_aud_and_iss_from_the_config_and_warns_on_its_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path());
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "audience = \"authenticated\"",
        "audience = \"api\"\nissuer = \"https://issuer.test\"",
    );
    std::fs::write(&path, text).unwrap();
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = dir.path().join("es256.pem");
    std::fs::write(&key, kp.serialize_pem()).unwrap();
    // ./gateway.toml is found without --config, as for HMAC minting.
    let o = mint_key(dir.path(), &key, &["--kid", "k"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let claims = segment(stdout(&o).trim(), 1);
    assert_eq!(claims["aud"], "api");
    assert_eq!(claims["iss"], "https://issuer.test");
    let err = stderr(&o);
    assert!(
        err.contains("does not list ES256"),
        "the config allows HS256 only: {err}"
    );
}

#[test]
fn mint_with_a_key_refuses_what_cannot_sign_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cases = [
        ("public.pem", kp.public_key_pem(), "which cannot sign"),
        (
            "sec1.pem",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".to_owned(),
            "openssl pkcs8 -topk8",
        ),
        ("text.pem", "not a key\n".to_owned(), "no PEM block found"),
    ];
    for (name, text, want) in cases {
        let key = dir.path().join(name);
        std::fs::write(&key, text).unwrap();
        let o = mint_key(dir.path(), &key, &[]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = stderr(&o);
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.contains(name), "{name}: names the file: {err}");
        assert!(stdout(&o).is_empty(), "{name}");
    }
    let missing = dir.path().join("missing.pem");
    let o = mint_key(dir.path(), &missing, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cannot read the key file"), "{err}");
    // --kid names a key; an HMAC secret is not one.
    config(dir.path());
    let o = run(
        dir.path(),
        &["token", "mint", "--claims", "{}", "--kid", "k"],
    );
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(stderr(&o).contains("--key"));
}

/// `token inspect` and the running gateway ask the same rules
/// (`auth::decide`): for every token and route, the status inspect shows
/// is the status the gateway answers, and a refusal's reason is the one
/// the gateway's `detail` gives.
#[tokio::test]
async fn token_inspect_and_the_gateway_give_every_route_the_same_status() {
    use crate::support::{Gateway, client, echo_upstream};
    use base64::Engine;
    let up = echo_upstream().await;
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[auth]
audience = "authenticated"
algorithms = ["HS256"]
secret = "{SECRET}"
[[routes]]
name = "ingest"
prefix = "/ingest"
upstream = "http://{up}"
auth = "required"
[routes.inject]
"X-User-ID" = "sub"
"X-Company-ID" = {{ claim = "app_metadata.company_id", required = true }}
[[routes]]
name = "optional"
prefix = "/optional"
upstream = "http://{up}"
auth = "optional"
[routes.inject]
"X-Role" = "role"
[[routes]]
name = "public"
prefix = "/public"
upstream = "http://{up}"
auth = "none"
[[routes]]
name = "later"
prefix = "/later"
upstream = ""
auth = "required"
"#
    );
    let gw = Gateway::start(&toml).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();
    let mint_with = |config: &str, claims: &str| support::mint_cli(Path::new(config), claims, &[]);
    let other_dir = tempfile::tempdir().unwrap();
    let other_cfg = other_dir.path().join("other.toml");
    std::fs::write(
        &other_cfg,
        std::fs::read_to_string(config(other_dir.path()))
            .unwrap()
            .replace(SECRET, "another-secret-long-enough-0123456789abcdef"),
    )
    .unwrap();
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let tokens = [
        (
            "valid",
            mint_with(&cfg, r#"{"sub":"u1","app_metadata":{"company_id":"c1"}}"#),
        ),
        ("no company", mint_with(&cfg, r#"{"sub":"u1"}"#)),
        (
            "company not injectable",
            mint_with(&cfg, r#"{"sub":"u1","app_metadata":{"company_id":" c1 "}}"#),
        ),
        (
            "role an object",
            mint_with(
                &cfg,
                r#"{"sub":"u1","role":{"a":1},"app_metadata":{"company_id":"c1"}}"#,
            ),
        ),
        (
            "expired",
            mint_with(&cfg, r#"{"sub":"u1","exp":1700000000}"#),
        ),
        (
            "other audience",
            mint_with(&cfg, r#"{"sub":"u1","aud":"some-other-api"}"#),
        ),
        (
            "other secret",
            mint_with(other_cfg.to_str().unwrap(), r#"{"sub":"u1"}"#),
        ),
        (
            "unsigned",
            format!(
                "{}.{}.",
                enc(r#"{"alg":"none","typ":"JWT"}"#),
                enc(r#"{"sub":"u1","aud":"authenticated","exp":9999999999}"#)
            ),
        ),
    ];
    for (what, token) in &tokens {
        let o = run(
            dir.path(),
            &[
                "token", "inspect", token, "--config", &cfg, "--format", "json",
            ],
        );
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{what}: {}", stdout(&o)));
        let rows = v["routes"].as_array().unwrap();
        assert_eq!(rows.len(), 4, "{what}: {v}");
        for row in rows {
            let prefix = row["prefix"].as_str().unwrap();
            let r = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                client()
                    .get(gw.url(&format!("{prefix}/x")))
                    .bearer_auth(token)
                    .send(),
            )
            .await
            .expect("answered in time")
            .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            assert_eq!(
                u64::from(status),
                row["status"].as_u64().unwrap(),
                "{what} on {prefix}: inspect says {row}, the gateway {body}"
            );
            if status == 401 || status == 403 {
                let detail = body["detail"].as_str().unwrap_or_default();
                let reason = row["outcome"].as_str().unwrap();
                assert!(
                    detail.ends_with(reason),
                    "{what} on {prefix}: inspect says {reason:?}, the gateway {detail:?}"
                );
            }
        }
    }
}
