//! `serve --dev`'s built-in echo upstream (README: "Your first five
//! minutes"): an unreachable upstream is replaced by it, so the printed
//! curl answers 200 with the identity headers; a reachable one is kept;
//! never without --dev. And the ephemeral secret's hint on a bad signature.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const ECHO_HEADER: &str = "x-nyro-dev-echo";

/// A config with routes `dead` (nothing listens) and `live` (a real
/// upstream), both injecting the identity; `secret` as given.
fn two_routes(dead: std::net::SocketAddr, live: std::net::SocketAddr, secret: &str) -> String {
    let toml = config(&format!(
        "{}{}",
        route("dead", "/dead", &format!("http://{dead}"), INJECT),
        route("live", "/live", &format!("http://{live}"), INJECT)
    ));
    with_auth(&toml, &format!("secret = \"{secret}\""))
}

#[tokio::test]
async fn dev_answers_the_printed_curl_with_200_and_the_identity_headers_from_the_shipped_config() {
    let dead = dead_addr().await;
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml")).unwrap();
    let dead_url = format!("http://{dead}");
    let gw = Gateway::start_with(
        &shipped,
        &[
            ("GATEWAY_LISTEN", "127.0.0.1:0"),
            ("GATEWAY_ADMIN_LISTEN", "127.0.0.1:0"),
            ("GATEWAY_JWT_SECRET", ""),
            // The shipped default is a cluster-internal name; a closed
            // loopback port is as unreachable, without depending on DNS.
            ("GATEWAY_INGEST_SERVICE_URL", dead_url.as_str()),
        ],
        &["--dev", "--log-format", "json"],
    )
    .await;
    let (url, token) = gw.printed_curl().await;
    assert!(url.contains("/api/v1/ingest"), "{url}");
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        client().get(&url).bearer_auth(&token).send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs().join("\n"));
    assert_eq!(r.headers()[ECHO_HEADER], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-user-id"][0], "dev-user");
    assert_eq!(v["headers"]["x-company-id"][0], "dev-company");
    assert_eq!(v["headers"]["x-user-email"][0], "dev@example.com");
    assert_eq!(v["path"], "/api/v1/ingest/");
    assert!(
        !v.to_string().contains(&token),
        "the echo does not repeat the token"
    );
    // The start-up lines say which routes were switched.
    let logs = gw.logs().join("\n");
    assert!(
        logs.contains("served by the built-in dev echo") && logs.contains("ingest"),
        "{logs}"
    );
    assert!(
        gw.find_log(|v| v["route"] == "ingest"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("built-in echo")))
            .is_some(),
        "{logs}"
    );
}

#[tokio::test]
async fn dev_keeps_a_reachable_upstream_and_echoes_only_the_unreachable_one() {
    let dead = dead_addr().await;
    let live = echo_upstream().await;
    let gw = Gateway::start_with(
        &two_routes(dead, live, "${NYRO_TEST_UNSET_SECRET}"),
        &[],
        &["--dev", "--log-format", "json"],
    )
    .await;
    let (_, token) = gw.printed_curl().await;
    for (path, echoed) in [("/live/x", false), ("/dead/x", true)] {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            client().get(gw.url(path)).bearer_auth(&token).send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", gw.logs().join("\n"));
        assert_eq!(r.headers().contains_key(ECHO_HEADER), echoed, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["headers"]["x-user-id"][0], "dev-user", "{path}");
    }
    assert!(
        gw.find_log(|v| v["route"] == "live"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("built-in echo")))
            .is_none()
    );
}

#[tokio::test]
async fn without_dev_an_unreachable_upstream_is_never_echoed() {
    let dead = dead_addr().await;
    let live = echo_upstream().await;
    let gw = Gateway::start(&two_routes(dead, live, SECRET)).await;
    let token = token(user_claims("u1", "c1"));
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        client().get(gw.url("/dead/x")).bearer_auth(&token).send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
    assert!(!r.headers().contains_key(ECHO_HEADER));
    assert!(!gw.logs().join("\n").contains("built-in echo"));
}

#[tokio::test]
async fn dev_signature_failure_says_the_ephemeral_secret_changes_on_every_start() {
    const HINT: &str = "ephemeral secret, which changes on every start";
    let live = echo_upstream().await;
    let dead = dead_addr().await;
    let bad = token(user_claims("u1", "c1")); // signed with another secret
    let send = |gw: &Gateway| client().get(gw.url("/live/x")).bearer_auth(&bad).send();
    // The ephemeral secret: the refusal is logged with the hint.
    let gw = Gateway::start_with(
        &two_routes(dead, live, "${NYRO_TEST_UNSET_SECRET}"),
        &[],
        &["--dev", "--log-format", "json"],
    )
    .await;
    let r = tokio::time::timeout(Duration::from_secs(10), send(&gw))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        gw.wait_log(Duration::from_secs(5), |v| v["message"]
            .as_str()
            .is_some_and(|m| m.contains(HINT)))
            .await
            .is_some(),
        "{}",
        gw.logs().join("\n")
    );
    // A configured secret under --dev: no such hint.
    let gw = Gateway::start_with(
        &two_routes(dead, live, "another-secret-that-is-long-enough-0123456789"),
        &[],
        &["--dev", "--log-format", "json"],
    )
    .await;
    let r = tokio::time::timeout(Duration::from_secs(10), send(&gw))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), 401);
    gw.wait_log(Duration::from_secs(2), |v| v["status"] == 401)
        .await;
    assert!(!gw.logs().join("\n").contains(HINT));
}

/// Regression: with an HMAC secret but no HS* algorithm allowed, `serve
/// --dev` printed an HS256 token (and a curl line with it) that its own
/// gateway refuses; `token mint` refuses that config. Both mint through
/// `auth::mint_for_config` now, so `--dev` prints no token and says why.
#[tokio::test]
async fn dev_prints_no_token_its_own_gateway_would_refuse() {
    let live = echo_upstream().await;
    let jwks = dead_addr().await;
    let cfg = with_auth(
        &config(&route("live", "/live", &format!("http://{live}"), INJECT)),
        &format!(
            "secret = \"{SECRET}\"\njwks_url = \"http://{jwks}/jwks.json\"\nalgorithms = [\"ES256\"]"
        ),
    );
    let gw = Gateway::start_with(&cfg, &[], &["--dev", "--log-format", "json"]).await;
    let refused = gw
        .wait_log(Duration::from_secs(10), |v| {
            v["message"] == "could not mint a dev token"
        })
        .await
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", gw.logs().join("\n")));
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("allows no HS* algorithm")),
        "{refused}"
    );
    assert!(
        !gw.logs()
            .iter()
            .any(|l| l.trim_start().starts_with("curl ")),
        "{}",
        gw.logs().join("\n")
    );
}
