//! JWKS keys never fetched (README "On the wire"): the gateway cannot
//! verify, so it answers 503 `{"detail": …}` blamed on itself, not 401 on
//! the client; once keys are held, an unknown `kid` stays a 401.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn no_jwks_keys_yet_is_503_blamed_on_the_gateway_and_unknown_kid_later_401() {
    let (pem, jwk) = es256_key("key-1");
    let serving = Arc::new(AtomicBool::new(false));
    let jwks_addr = jwks_server(&[jwk], serving.clone()).await;
    let up = echo_upstream().await;
    let cfg = with_auth(
        &config(&route("req", "/req", &format!("http://{up}"), "")),
        &format!("jwks_url = \"http://{jwks_addr}/jwks.json\"\nalgorithms = [\"ES256\"]"),
    );
    let gw = Gateway::start(&cfg).await;
    let sign = |kid: &str| es256_token(&pem, kid, &user_claims("u1", "c1"));
    let r = client()
        .get(gw.url("/req/x"))
        .bearer_auth(sign("key-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("www-authenticate").is_none());
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("signing keys"),
        "{body}"
    );
    let line = gw
        .wait_log(Duration::from_secs(5), |v| {
            v["message"] == "request failed" && v["status"] == 503
        })
        .await
        .unwrap_or_else(|| panic!("no request line:\n{}", gw.logs().join("\n")));
    assert_eq!(line["blame"], "gateway", "{line}");

    serving.store(true, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = client()
            .get(gw.url("/req/x"))
            .bearer_auth(sign("key-1"))
            .send()
            .await
            .unwrap()
            .status();
        if s == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "keys never fetched");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = client()
        .get(gw.url("/req/x"))
        .bearer_auth(sign("unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "an unknown kid with keys held is the client's"
    );
}
