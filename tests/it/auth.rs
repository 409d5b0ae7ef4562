//! Authentication and identity injection through the running gateway, with
//! real HS256 tokens.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Three routes to one echo upstream: required, optional and none, all
/// declaring the standard injections.
async fn gateway() -> Gateway {
    let up = echo_upstream().await;
    let u = format!("http://{up}");
    let cfg = config(
        &[
            route("req", "/req", &u, &format!("auth = \"required\"\n{INJECT}")),
            route("opt", "/opt", &u, &format!("auth = \"optional\"\n{INJECT}")),
            route("open", "/open", &u, "auth = \"none\""),
        ]
        .concat(),
    );
    Gateway::start(&cfg).await
}

async fn get(
    gw: &Gateway,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = client().get(gw.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

fn challenge(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn valid_token_injects_identity_and_keeps_authorization() {
    let gw = gateway().await;
    let t = token(user_claims("user-1", "company-9"));
    let r = get(&gw, "/req/items", Some(&t), &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-user-id"], json!(["user-1"]));
    assert_eq!(v["headers"]["x-company-id"], json!(["company-9"]));
    assert_eq!(v["headers"]["x-user-email"], json!(["user-1@example.com"]));
    assert_eq!(
        v["headers"]["authorization"],
        json!([format!("Bearer {t}")])
    );
    let line = gw
        .wait_log(Duration::from_secs(2), |l| {
            l["route"] == "req" && l["status"] == 200
        })
        .await
        .unwrap();
    assert_eq!(line["user_id"], "user-1");
    assert_eq!(line["company_id"], "company-9");
    assert!(
        !gw.logs().iter().any(|l| l.contains(&t)),
        "the token never appears in a log line"
    );
    assert!(
        !gw.logs().iter().any(|l| l.contains(SECRET)),
        "the secret never appears in a log line"
    );
}

#[tokio::test]
async fn forged_identity_headers_are_removed_on_every_auth_mode() {
    let gw = gateway().await;
    let forged = [
        ("X-User-ID", "admin"),
        ("x-company-id", "victim-co"),
        ("X-User-Email", "ceo@victim"),
        // CGI-style servers read these as X-User-ID / X-Company-ID too.
        ("X_User_ID", "admin"),
        ("x-company_id", "victim-co"),
    ];
    // none: stripped, nothing injected.
    let v: Value = get(&gw, "/open/x", None, &forged)
        .await
        .json()
        .await
        .unwrap();
    for h in [
        "x-user-id",
        "x-company-id",
        "x-user-email",
        "x_user_id",
        "x-company_id",
    ] {
        assert!(
            v["headers"].get(h).is_none(),
            "{h} forged through auth = none: {v}"
        );
    }
    // optional without a token: stripped, nothing injected.
    let v: Value = get(&gw, "/opt/x", None, &forged)
        .await
        .json()
        .await
        .unwrap();
    for h in ["x-user-id", "x-company-id", "x-user-email"] {
        assert!(
            v["headers"].get(h).is_none(),
            "{h} forged through auth = optional: {v}"
        );
    }
    // required / optional with a token: replaced by the token's values, once.
    let t = token(user_claims("real-user", "real-co"));
    for path in ["/req/x", "/opt/x"] {
        let v: Value = get(&gw, path, Some(&t), &forged)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["headers"]["x-user-id"], json!(["real-user"]), "{path}");
        assert_eq!(v["headers"]["x-company-id"], json!(["real-co"]), "{path}");
        assert!(v["headers"].get("x_user_id").is_none(), "{path}: {v}");
    }
    // A token without the optional email claim does not let a forged email through.
    let mut claims = user_claims("u2", "c2");
    claims.as_object_mut().unwrap().remove("email");
    let v: Value = get(&gw, "/req/x", Some(&token(claims)), &forged)
        .await
        .json()
        .await
        .unwrap();
    assert!(v["headers"].get("x-user-email").is_none(), "{v}");
}

#[tokio::test]
async fn missing_and_invalid_tokens_are_401_with_rfc6750_challenges() {
    let gw = gateway().await;
    let r = get(&gw, "/req/x", None, &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(challenge(&r), "Bearer");
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Not authenticated"
    );

    let r = client()
        .get(gw.url("/req/x"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a non-Bearer scheme is no token");

    let mut expired = user_claims("u", "c");
    expired["exp"] = json!(now() - 300);
    let mut future = user_claims("u", "c");
    future["nbf"] = json!(now() + 3600);
    let mut wrong_aud = user_claims("u", "c");
    wrong_aud["aud"] = json!("someone-else");
    let mut no_sub = user_claims("u", "c");
    no_sub.as_object_mut().unwrap().remove("sub");
    let anon = json!({"iss": "supabase", "ref": "proj", "role": "anon", "iat": now(), "exp": now() + 3600});
    let cases: Vec<(String, &str, &str)> = vec![
        (token(expired), "expired", "expired"),
        (token(future), "not valid yet", "nbf"),
        (token(wrong_aud), "audience", "aud"),
        (token(no_sub), "sub", "missing sub"),
        (
            sign(
                user_claims("u", "c"),
                b"another-secret-another-secret-0123456789",
            ),
            "signature",
            "bad signature",
        ),
        (token(anon), "anon", "anon key"),
        ("not.a.jwt".into(), "malformed", "garbage"),
        ("x".repeat(17 * 1024), "", "oversized"),
        (
            // alg: none, unsigned.
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&user_claims("u", "c").to_string())
            ),
            "",
            "alg none",
        ),
    ];
    for (t, reason, what) in &cases {
        for path in ["/req/x", "/opt/x"] {
            let r = get(&gw, path, Some(t), &[]).await;
            assert_eq!(r.status(), 401, "{what} on {path}");
            let c = challenge(&r);
            assert!(
                c.starts_with("Bearer error=\"invalid_token\", error_description=\""),
                "{what}: {c}"
            );
            assert!(
                c.to_ascii_lowercase().contains(reason),
                "{what}: {c} should mention {reason:?}"
            );
            let detail = r.json::<Value>().await.unwrap()["detail"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(detail.starts_with("Invalid token"), "{what}: {detail}");
        }
    }
    // auth = "none" never looks at the token.
    assert_eq!(
        get(&gw, "/open/x", Some("garbage"), &[]).await.status(),
        200
    );
    // The operator log explains refusals without the token.
    let line = gw
        .wait_log(Duration::from_secs(2), |l| {
            l["status"] == 401 && l["error"].as_str().is_some_and(|e| e.contains("expired"))
        })
        .await;
    assert!(line.is_some(), "refusal reason logged");
    for (t, _, what) in &cases {
        if t.len() > 20 {
            assert!(
                !gw.logs().iter().any(|l| l.contains(t.as_str())),
                "{what}: token leaked into the log"
            );
        }
    }
}

#[tokio::test]
async fn claims_that_cannot_be_injected_are_403_naming_the_claim() {
    let gw = gateway().await;
    let mut missing = user_claims("u", "c");
    missing["app_metadata"] = json!({"provider": "email"});
    let mut crlf = user_claims("u", "c");
    crlf["app_metadata"]["company_id"] = json!("evil\r\nX-Admin: true");
    let mut object = user_claims("u", "c");
    object["app_metadata"]["company_id"] = json!({"id": 1});
    let mut empty = user_claims("u", "c");
    empty["app_metadata"]["company_id"] = json!("");
    for (claims, what) in [
        (missing, "missing"),
        (crlf, "CR LF"),
        (object, "object"),
        (empty, "empty"),
    ] {
        let r = get(&gw, "/req/x", Some(&token(claims)), &[]).await;
        assert_eq!(r.status(), 403, "{what}");
        let detail = r.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            detail.contains("app_metadata.company_id"),
            "{what}: {detail}"
        );
    }
    // Numbers are injected as their JSON text.
    let mut numeric = user_claims("u", "c");
    numeric["app_metadata"]["company_id"] = json!(42);
    let v: Value = get(&gw, "/req/x", Some(&token(numeric)), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["headers"]["x-company-id"], json!(["42"]));
}

/// Regression: with `required_claims = ["exp"]`, tokens without a usable
/// `aud` (Supabase anon and service_role keys among them) or with a list
/// `iss` holding ours were let through; `audience` and `issuer` are
/// enforced whatever `required_claims` says.
#[tokio::test]
async fn audience_and_issuer_are_enforced_even_when_not_in_required_claims() {
    const ISSUER: &str = "https://proj.supabase.co/auth/v1";
    let up = echo_upstream().await;
    let cfg = config(&route(
        "req",
        "/req",
        &format!("http://{up}"),
        "auth = \"required\"\n[routes.inject]\n\"X-User-ID\" = \"sub\"\n",
    ));
    let cfg = with_auth(
        &cfg,
        &format!(
            "secret = \"{SECRET}\"\naudience = \"authenticated\"\nissuer = \"{ISSUER}\"\nrequired_claims = [\"exp\"]"
        ),
    );
    let gw = Gateway::start(&cfg).await;
    let ours = |mut c: Value| {
        c["iss"] = json!(ISSUER);
        c
    };
    let t = now();
    let mut no_aud = ours(user_claims("u", "c"));
    no_aud.as_object_mut().unwrap().remove("aud");
    let mut numeric_aud = ours(user_claims("u", "c"));
    numeric_aud["aud"] = json!(5);
    let mut numeric_aud_list = ours(user_claims("u", "c"));
    numeric_aud_list["aud"] = json!([5]);
    let mut iss_list = user_claims("u", "c");
    iss_list["iss"] = json!([ISSUER, "https://evil.example"]);
    let no_iss = user_claims("u", "c");
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"iss": "supabase", "ref": "proj", "role": "anon", "iat": t, "exp": t + 3600}),
            "anon key",
            "anon",
        ),
        (
            json!({"iss": ISSUER, "ref": "proj", "role": "anon", "iat": t, "exp": t + 3600}),
            "anon key with our issuer",
            "anon",
        ),
        (
            json!({"iss": ISSUER, "ref": "proj", "role": "service_role", "iat": t, "exp": t + 3600}),
            "service_role key",
            "service_role",
        ),
        (no_aud, "no aud", "aud"),
        (numeric_aud, "aud 5", "aud"),
        (numeric_aud_list, "aud [5]", "aud"),
        (
            iss_list,
            "iss list holding ours",
            "issuer must be a single string",
        ),
        (no_iss, "no iss", "iss"),
    ];
    for (claims, what, reason) in cases {
        let r = get(&gw, "/req/x", Some(&token(claims)), &[]).await;
        assert_eq!(r.status(), 401, "{what}");
        let c = challenge(&r);
        assert!(
            c.starts_with("Bearer error=\"invalid_token\", error_description=\""),
            "{what}: {c}"
        );
        assert!(c.contains(reason), "{what}: {c} should mention {reason:?}");
    }
    let r = get(
        &gw,
        "/req/x",
        Some(&token(ours(user_claims("u1", "c")))),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-user-id"], json!(["u1"]));
}

/// Regression: a whitespace-only `sub` was accepted, and an injected claim
/// with edge whitespace went upstream where HTTP parsers strip it (" c1 "
/// arrives as "c1").
#[tokio::test]
async fn blank_sub_is_401_and_claims_with_edge_whitespace_are_not_injected() {
    let gw = gateway().await;
    let r = get(&gw, "/req/x", Some(&token(user_claims("   ", "c1"))), &[]).await;
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("sub"), "{}", challenge(&r));

    for (claims, claim, what) in [
        (user_claims("u", "   "), "app_metadata.company_id", "blank"),
        (
            user_claims("u", " c1 "),
            "app_metadata.company_id",
            "both edges",
        ),
        (
            user_claims("u", "c1 "),
            "app_metadata.company_id",
            "trailing",
        ),
        (
            user_claims(" u", "c1"),
            "sub",
            "leading, on an optional injection",
        ),
    ] {
        let r = get(&gw, "/req/x", Some(&token(claims)), &[]).await;
        assert_eq!(r.status(), 403, "{what}");
        let detail = r.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains(claim), "{what}: {detail}");
    }
    // Blank and not required: not injected; interior spaces are kept.
    let mut claims = user_claims("u", "c 1");
    claims["email"] = json!("  ");
    let r = get(&gw, "/req/x", Some(&token(claims)), &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-company-id"], json!(["c 1"]));
    assert!(v["headers"].get("x-user-email").is_none(), "{v}");
}

#[tokio::test]
async fn token_minted_by_the_cli_works_through_serve() {
    let gw = gateway().await;
    let t = mint_cli(
        &gw.config_path,
        r#"{"sub":"cli-user","app_metadata":{"company_id":"cli-co"}}"#,
        &["--ttl", "10m"],
    );
    let v: Value = get(&gw, "/req/x", Some(&t), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["headers"]["x-user-id"], json!(["cli-user"]));
    assert_eq!(v["headers"]["x-company-id"], json!(["cli-co"]));
}

/// Regression: with `[auth].issuer` set, `token mint` left out `iss` and
/// `serve` refused the token it had just minted.
#[tokio::test]
async fn token_minted_by_the_cli_carries_the_configured_issuer() {
    let up = echo_upstream().await;
    let cfg = config(&route(
        "req",
        "/req",
        &format!("http://{up}"),
        &format!("auth = \"required\"\n{INJECT}"),
    ));
    let cfg = with_auth(
        &cfg,
        &format!("secret = \"{SECRET}\"\nissuer = \"https://proj.supabase.co/auth/v1\""),
    );
    let gw = Gateway::start(&cfg).await;
    let t = mint_cli(
        &gw.config_path,
        r#"{"sub":"cli-user","app_metadata":{"company_id":"cli-co"}}"#,
        &[],
    );
    let r = get(&gw, "/req/x", Some(&t), &[]).await;
    assert_eq!(r.status(), 200, "{}", challenge(&r));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-user-id"], json!(["cli-user"]));
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_safe_secret() {
    for (secret, want) in [
        (
            "YOUR_DEFAULT_JWT_SECRET_KEY_CHANGE_ME_IN_ENV_OR_SECRET",
            "placeholder",
        ),
        ("short", "at least 32"),
    ] {
        let cfg = config(&route("r", "/r", "http://127.0.0.1:1", "")).replace(SECRET, secret);
        let dir = config_dir(&cfg);
        let out = cli(dir.path(), &["serve", "--config", "gateway.toml"], &[]);
        assert_eq!(out.status.code(), Some(1), "{secret}");
        let err = stderr(&out);
        assert!(err.contains(want), "{secret}: {err}");
        assert!(err.contains("gateway.toml:"), "names file:line:col: {err}");
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn jwks_keys_gate_readiness_and_verify_es256_tokens() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (pem, jwk) = es256_key("key-1");
    let serving = std::sync::Arc::new(AtomicBool::new(false));
    let jwks_addr = jwks_server(&[jwk], serving.clone()).await;
    let up = echo_upstream().await;
    let cfg = with_auth(
        &config(&route("req", "/req", &format!("http://{up}"), INJECT)),
        &format!(
            "secret = \"{SECRET}\"\njwks_url = \"http://{jwks_addr}/.well-known/jwks.json\"\nalgorithms = [\"HS256\", \"ES256\"]"
        ),
    );
    let gw = Gateway::start(&cfg).await;
    let r = client().get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503, "not ready before the keys are fetched");
    assert_eq!(
        client()
            .get(gw.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "but alive"
    );
    serving.store(true, Ordering::SeqCst);
    gw.wait_ready(Duration::from_secs(10), "ready once the JWKS answers")
        .await;
    let es = es256_token(&pem, "key-1", &user_claims("es-user", "es-co"));
    let r = get_with(&gw, "/req/x", &es).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-user-id"][0], "es-user");
    // HS256 tokens keep working beside it (a Supabase migration).
    assert_eq!(
        get_with(&gw, "/req/x", &token(user_claims("hs", "c")))
            .await
            .status(),
        200
    );
    // An HS256 token whose "secret" is the public key (algorithm confusion) is refused.
    let confused = sign(user_claims("attacker", "c"), pem.as_bytes());
    assert_eq!(get_with(&gw, "/req/x", &confused).await.status(), 401);
}

async fn get_with(gw: &Gateway, path: &str, token: &str) -> reqwest::Response {
    client()
        .get(gw.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_outside_ascii_is_401_saying_so() {
    let gw = gateway().await;
    let r = client()
        .get(gw.url("/req/x"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer caf\xe9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let c = challenge(&r);
    assert!(c.starts_with("Bearer error=\"invalid_token\""), "{c}");
    assert!(c.contains("outside visible ASCII"), "{c}");
}

/// RFC 7519 §4.1.4: the current time must be before `exp`, so a token is
/// refused during the second equal to its `exp` (the config's leeway is 0).
#[tokio::test]
async fn token_is_refused_in_the_second_of_its_exp() {
    let gw = gateway().await;
    // The request must happen within the second the token expires in;
    // retry when the clock ticked over meanwhile.
    for _ in 0..10 {
        let exp = now();
        let mut claims = user_claims("u-exp", "c-exp");
        claims["exp"] = json!(exp);
        claims["iat"] = json!(exp - 60);
        let r = get(&gw, "/req/x", Some(&token(claims)), &[]).await;
        if now() != exp {
            continue;
        }
        assert_eq!(r.status(), 401, "accepted at now == exp");
        let c = challenge(&r);
        assert!(c.contains("token expired"), "{c}");
        return;
    }
    panic!("never managed a request within one second");
}

/// Requests naming a `kid` the gateway does not hold share the one JWKS
/// re-fetch in flight and wait at most its timeout (5 s), instead of
/// queueing for a fetch each (5, 10, 15 s against an issuer that hangs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kid_requests_share_one_jwks_fetch() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (pem, jwk) = es256_key("key-1");
    let hang = Arc::new(AtomicBool::new(false));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (h, f) = (hang.clone(), fetches.clone());
    let jwks = json!({"keys": [jwk]}).to_string();
    let jwks_addr = upstream(move |_req| {
        let hanging = h.load(Ordering::SeqCst);
        if hanging {
            f.fetch_add(1, Ordering::SeqCst);
        }
        let body = jwks.clone();
        async move {
            if hanging {
                // Longer than the gateway's 5 s fetch timeout.
                tokio::time::sleep(Duration::from_secs(8)).await;
            }
            hyper::Response::builder()
                .header("content-type", "application/json")
                .body(full(body))
                .unwrap()
        }
    })
    .await;
    let up = echo_upstream().await;
    let cfg = with_auth(
        &config(&route("req", "/req", &format!("http://{up}"), INJECT)),
        &format!(
            "secret = \"{SECRET}\"\njwks_url = \"http://{jwks_addr}/jwks.json\"\nalgorithms = [\"HS256\", \"ES256\"]"
        ),
    );
    let gw = Gateway::start(&cfg).await;
    gw.wait_ready(Duration::from_secs(10), "never ready").await;
    let known = es256_token(&pem, "key-1", &user_claims("u", "c"));
    assert_eq!(get_with(&gw, "/req/x", &known).await.status(), 200);
    // Past the 5 s re-fetch rate limit, then the issuer hangs.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    hang.store(true, Ordering::SeqCst);

    let unknown = es256_token(&pem, "key-2", &user_claims("u", "c"));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let url = gw.url("/req/x");
        let t = unknown.clone();
        tasks.push(tokio::spawn(async move {
            let start = std::time::Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                client().get(url).bearer_auth(t).send(),
            )
            .await
            .expect("answered within 30 s")
            .unwrap();
            (r.status().as_u16(), start.elapsed())
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        let (status, took) = t.await.unwrap();
        assert_eq!(status, 401);
        assert!(
            took < Duration::from_secs(7),
            "waited {took:?}, more than one fetch timeout"
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one re-fetch for the three requests"
    );
}
