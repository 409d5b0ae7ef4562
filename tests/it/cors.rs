//! CORS on the wire (contract, "On the wire"; issue 6): preflights are
//! answered by the gateway after routing and the method check and before
//! auth; every other answer to an allowed origin, the gateway's own errors
//! included, carries the CORS headers a page needs to read it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::support::*;

/// The allowed origin of most tests: Nyro's frontend in development.
const FRONTEND: &str = "http://localhost:3000";

/// Sends a preflight for `method` with `Access-Control-Request-Headers`.
async fn preflight(url: &str, origin: &str, method: &str, headers: &str) -> Response {
    client()
        .request(Method::OPTIONS, url)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .expect("preflight")
}

/// Sends a GET with `Origin`.
async fn get_from(url: &str, origin: &str) -> Response {
    client()
        .get(url)
        .header("Origin", origin)
        .send()
        .await
        .expect("get")
}

/// A response header as text ("" when absent).
fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header"))
        .unwrap_or("")
}

/// True when some `Vary` header lists `Origin`.
fn varies_on_origin(resp: &Response) -> bool {
    resp.headers().get_all("vary").iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("origin"))
    })
}

/// Asserts the headers of an actual response to `origin` with credentials.
fn assert_readable_by(resp: &Response, origin: &str) {
    let what = format!("{} {}", resp.status(), resp.url());
    assert_eq!(
        header(resp, "access-control-allow-origin"),
        origin,
        "{what}"
    );
    assert_eq!(
        header(resp, "access-control-allow-credentials"),
        "true",
        "{what}"
    );
    assert_eq!(
        header(resp, "access-control-expose-headers").to_ascii_lowercase(),
        "x-request-id, x-process-time, ratelimit, ratelimit-policy, retry-after",
        "{what}"
    );
    assert!(varies_on_origin(resp), "{what}: no Vary: Origin");
    assert!(!header(resp, "x-request-id").is_empty(), "{what}");
}

/// Asserts that `resp` lets no page read it.
fn assert_not_readable(resp: &Response) {
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
    ] {
        assert!(
            resp.headers().get(name).is_none(),
            "{} {}: unexpected {name}: {}",
            resp.status(),
            resp.url(),
            header(resp, name)
        );
    }
}

async fn detail(resp: Response) -> String {
    let v: Value = resp.json().await.expect("JSON body");
    v["detail"].as_str().expect("detail").to_owned()
}

#[tokio::test]
async fn preflight_from_allowed_origin_gets_exact_allow_headers() {
    let (up, hits) = counting_upstream().await;
    let gw = Gateway::start(&config(&route(
        "api",
        "/api",
        &format!("http://{up}"),
        "auth = \"none\"\nmethods = [\"GET\", \"POST\"]",
    )))
    .await;

    let resp = preflight(
        &gw.url("/api/things"),
        FRONTEND,
        "POST",
        "authorization, content-type",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), FRONTEND);
    assert_eq!(header(&resp, "access-control-allow-credentials"), "true");
    assert_eq!(header(&resp, "access-control-allow-methods"), "GET, POST");
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        "authorization, content-type"
    );
    assert_eq!(header(&resp, "access-control-max-age"), "600");
    assert!(varies_on_origin(&resp));
    assert!(!header(&resp, "x-request-id").is_empty());
    assert_eq!(
        detail(resp).await,
        "OK",
        "JSON like every answer of the gateway's own"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a preflight went upstream");
}

#[tokio::test]
async fn preflight_on_auth_required_route_is_answered_before_auth() {
    let (up, hits) = counting_upstream().await;
    let gw = Gateway::start(&config(&route(
        "private",
        "/private",
        &format!("http://{up}"),
        "auth = \"required\"",
    )))
    .await;

    let resp = preflight(&gw.url("/private/me"), FRONTEND, "PATCH", "authorization").await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a preflight must never be 401"
    );
    assert!(resp.headers().get("www-authenticate").is_none());
    assert_eq!(header(&resp, "access-control-allow-origin"), FRONTEND);
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        "authorization"
    );
    // No `methods` on the route: every method is allowed.
    assert!(header(&resp, "access-control-allow-methods").contains("PATCH"));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn preflight_from_disallowed_origin_is_400_without_allow_origin() {
    let (up, hits) = counting_upstream().await;
    let gw = Gateway::start(&config(&route(
        "private",
        "/private",
        &format!("http://{up}"),
        "auth = \"required\"",
    )))
    .await;

    let resp = preflight(
        &gw.url("/private/me"),
        "https://evil.example",
        "POST",
        "authorization",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_not_readable(&resp);
    assert!(varies_on_origin(&resp));
    assert!(resp.headers().get("access-control-allow-methods").is_none());
    assert!(resp.headers().get("access-control-allow-headers").is_none());
    assert_eq!(detail(resp).await, "Disallowed CORS origin");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // The operator's log line names the refused origin; the client's
    // detail does not.
    let line = gw
        .wait_log(Duration::from_secs(3), |v| v["status"] == 400)
        .await
        .expect("a log line for the refused preflight");
    assert!(
        line.to_string().contains("https://evil.example"),
        "the refused Origin is missing from {line}"
    );
}

#[tokio::test]
async fn preflight_on_unrouted_path_is_404() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "api",
        "/api",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;

    let resp = preflight(&gw.url("/nowhere"), FRONTEND, "POST", "authorization").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().get("access-control-allow-methods").is_none());
    assert_eq!(detail(resp).await, "Not Found");
}

#[tokio::test]
async fn preflight_for_method_outside_route_methods_is_405() {
    let (up, hits) = counting_upstream().await;
    let gw = Gateway::start(&config(&route(
        "api",
        "/api",
        &format!("http://{up}"),
        "auth = \"none\"\nmethods = [\"GET\"]",
    )))
    .await;

    let resp = preflight(&gw.url("/api/x"), FRONTEND, "DELETE", "authorization").await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(header(&resp, "allow").contains("GET"));
    assert!(resp.headers().get("access-control-allow-methods").is_none());
    // A refusal like any other: the page can read why.
    assert_readable_by(&resp, FRONTEND);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn configured_max_age_allow_headers_and_expose_headers_are_sent() {
    let up = echo_upstream().await;
    let cors = format!(
        "allowed_origins = [\"{FRONTEND}\"]\nmax_age = \"1h\"\n\
         allow_headers = [\"Authorization\", \"Content-Type\"]\n\
         expose_headers = [\"X-Request-ID\", \"X-Trace\"]"
    );
    let gw = Gateway::start(&config_with_cors(
        &cors,
        &route("api", "/api", &format!("http://{up}"), "auth = \"none\""),
    ))
    .await;

    let resp = preflight(&gw.url("/api/x"), FRONTEND, "POST", "x-anything").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-max-age"), "3600");
    assert_eq!(
        header(&resp, "access-control-allow-headers").to_ascii_lowercase(),
        "authorization, content-type"
    );

    let resp = get_from(&gw.url("/api/x"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "access-control-expose-headers").to_ascii_lowercase(),
        "x-request-id, x-trace"
    );
}

#[tokio::test]
async fn route_cors_origins_replace_the_default() {
    let up = echo_upstream().await;
    let routes = [
        route(
            "partner",
            "/partner",
            &format!("http://{up}"),
            "auth = \"none\"\ncors_origins = [\"https://partner.example\"]",
        ),
        route("api", "/api", &format!("http://{up}"), "auth = \"none\""),
    ]
    .concat();
    let gw = Gateway::start(&config(&routes)).await;

    // The route's own list allows the partner and no longer the default.
    let resp = preflight(
        &gw.url("/partner/x"),
        "https://partner.example",
        "POST",
        "content-type",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        "https://partner.example"
    );
    let resp = preflight(&gw.url("/partner/x"), FRONTEND, "POST", "content-type").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_not_readable(&resp);
    let resp = get_from(&gw.url("/partner/x"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_not_readable(&resp);
    let resp = get_from(&gw.url("/partner/x"), "https://partner.example").await;
    assert_readable_by(&resp, "https://partner.example");

    // Other routes keep [cors].allowed_origins.
    let resp = preflight(
        &gw.url("/api/x"),
        "https://partner.example",
        "POST",
        "content-type",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = preflight(&gw.url("/api/x"), FRONTEND, "POST", "content-type").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), FRONTEND);
}

#[tokio::test]
async fn wildcard_origin_matches_whole_labels_only() {
    let up = echo_upstream().await;
    let cors = format!("allowed_origins = [\"{FRONTEND}\", \"https://*.vercel.app\"]");
    let gw = Gateway::start(&config_with_cors(
        &cors,
        &route("api", "/api", &format!("http://{up}"), "auth = \"none\""),
    ))
    .await;
    let url = gw.url("/api/x");

    for origin in [
        "https://my-app-git-x.vercel.app",
        "https://nyro-frontend-abc123-nyro.vercel.app",
    ] {
        let resp = preflight(&url, origin, "POST", "authorization").await;
        assert_eq!(resp.status(), StatusCode::OK, "{origin}");
        assert_eq!(header(&resp, "access-control-allow-origin"), origin);
        let resp = get_from(&url, origin).await;
        assert_readable_by(&resp, origin);
    }
    for origin in [
        "https://vercel.app.evil.com",
        "https://x.vercel.app.evil.com",
        "https://evilvercel.app",
        "https://vercel.app",
        "http://my-app.vercel.app",
    ] {
        let resp = preflight(&url, origin, "POST", "authorization").await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{origin}");
        assert_not_readable(&resp);
        let resp = get_from(&url, origin).await;
        assert_not_readable(&resp);
    }
}

#[tokio::test]
async fn null_origin_is_refused_unless_listed() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "api",
        "/api",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    let resp = preflight(&gw.url("/api/x"), "null", "POST", "authorization").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_not_readable(&resp);
    let resp = get_from(&gw.url("/api/x"), "null").await;
    assert_not_readable(&resp);

    let gw = Gateway::start(&config_with_cors(
        "allowed_origins = [\"null\"]",
        &route("api", "/api", &format!("http://{up}"), "auth = \"none\""),
    ))
    .await;
    let resp = preflight(&gw.url("/api/x"), "null", "POST", "authorization").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), "null");
    let resp = get_from(&gw.url("/api/x"), "null").await;
    assert_readable_by(&resp, "null");
}

#[tokio::test]
async fn actual_response_to_allowed_origin_replaces_upstream_cors_headers() {
    let up = upstream(|_req| async {
        hyper::Response::builder()
            .header("content-type", "application/json")
            .header("access-control-allow-origin", "*")
            .header("access-control-allow-credentials", "false")
            .header("access-control-expose-headers", "X-Upstream-Secret")
            .header("access-control-allow-methods", "GET")
            .header("access-control-max-age", "99999")
            .header("vary", "Accept-Encoding")
            .body(full(r#"{"from":"upstream"}"#))
            .unwrap()
    })
    .await;
    let gw = Gateway::start(&config(&route(
        "api",
        "/api",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;

    let resp = get_from(&gw.url("/api/x"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_readable_by(&resp, FRONTEND);
    assert_eq!(
        resp.headers()
            .get_all("access-control-allow-origin")
            .iter()
            .count(),
        1
    );
    assert!(resp.headers().get("access-control-allow-methods").is_none());
    assert!(resp.headers().get("access-control-max-age").is_none());
    // The upstream's own Vary survives next to the gateway's.
    assert!(
        resp.headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Accept-Encoding"))
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["from"], "upstream");

    // A disallowed origin, or none at all, gets no CORS headers, not even
    // the upstream's `*`, and still `Vary: Origin` (the answer depends on it).
    let resp = get_from(&gw.url("/api/x"), "https://evil.example").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_not_readable(&resp);
    assert!(varies_on_origin(&resp));
    let resp = client().get(gw.url("/api/x")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_not_readable(&resp);
    assert!(varies_on_origin(&resp));
}

#[tokio::test]
async fn origin_is_echoed_byte_for_byte() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config(&route(
        "api",
        "/api",
        &format!("http://{up}"),
        "auth = \"none\"",
    )))
    .await;
    // Origins compare case-insensitively, and the answer repeats what the
    // client sent (browsers compare ACAO to their serialized origin).
    let resp = get_from(&gw.url("/api/x"), "http://LOCALHOST:3000").await;
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        "http://LOCALHOST:3000"
    );
}

#[tokio::test]
async fn gateway_errors_carry_cors_headers_for_allowed_origin() {
    let up = echo_upstream().await;
    let dead = dead_addr().await;
    let garbage = raw_upstream(|mut s| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"this is not HTTP\r\n\r\n").await;
    })
    .await;
    let routes = [
        route(
            "private",
            "/private",
            &format!("http://{up}"),
            "auth = \"required\"",
        ),
        route(
            "down",
            "/down",
            &format!("http://{dead}"),
            "auth = \"none\"",
        ),
        route(
            "broken",
            "/broken",
            &format!("http://{garbage}"),
            "auth = \"none\"",
        ),
        route("soon", "/soon", "", "auth = \"none\""),
        route(
            "readonly",
            "/readonly",
            &format!("http://{up}"),
            "auth = \"none\"\nmethods = [\"GET\"]",
        ),
    ]
    .concat();
    let gw = Gateway::start(&config(&routes)).await;

    let resp = get_from(&gw.url("/private/me"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_readable_by(&resp, FRONTEND);
    assert_eq!(detail(resp).await, "Not authenticated");

    let resp = client()
        .post(gw.url("/private/me"))
        .header("Origin", FRONTEND)
        .header("Authorization", "Bearer x.y.z")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_readable_by(&resp, FRONTEND);

    let resp = get_from(&gw.url("/nowhere"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_readable_by(&resp, FRONTEND);
    assert_eq!(detail(resp).await, "Not Found");

    let resp = client()
        .delete(gw.url("/readonly/x"))
        .header("Origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_readable_by(&resp, FRONTEND);

    let resp = get_from(&gw.url("/soon/x"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
    assert_readable_by(&resp, FRONTEND);

    let resp = get_from(&gw.url("/broken/x"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_readable_by(&resp, FRONTEND);

    let resp = get_from(&gw.url("/down/x"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_readable_by(&resp, FRONTEND);
    assert_eq!(detail(resp).await, "Upstream service unavailable.");

    // 400s too: a repeated Authorization, a path refused by hygiene.
    let resp = client()
        .get(gw.url("/private/me"))
        .header("Origin", FRONTEND)
        .header("Authorization", "Bearer a.b.c")
        .header("Authorization", "Bearer d.e.f")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_readable_by(&resp, FRONTEND);
    assert_eq!(detail(resp).await, "Repeated Authorization header");
    let resp = get_from(&gw.url("/private//me"), FRONTEND).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_readable_by(&resp, FRONTEND);

    // The same errors to a disallowed origin stay unreadable.
    let resp = get_from(&gw.url("/private/me"), "https://evil.example").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_not_readable(&resp);
    let resp = get_from(&gw.url("/nowhere"), "https://evil.example").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_not_readable(&resp);
}

#[tokio::test]
async fn star_without_credentials_answers_star() {
    let up = echo_upstream().await;
    let gw = Gateway::start(&config_with_cors(
        "allowed_origins = [\"*\"]\nallow_credentials = false",
        &route("api", "/api", &format!("http://{up}"), "auth = \"none\""),
    ))
    .await;

    let resp = preflight(
        &gw.url("/api/x"),
        "https://anyone.example",
        "PUT",
        "content-type",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    assert!(
        resp.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        "content-type"
    );

    let resp = get_from(&gw.url("/api/x"), "https://anyone.example").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    assert!(
        resp.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    assert_eq!(
        header(&resp, "access-control-expose-headers").to_ascii_lowercase(),
        "x-request-id, x-process-time, ratelimit, ratelimit-policy, retry-after"
    );
}

#[tokio::test]
async fn check_config_refuses_star_with_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("star.toml");
    std::fs::write(
        &bad,
        config_with_cors(
            "allowed_origins = [\"*\"]",
            &route("api", "/api", "http://127.0.0.1:9", "auth = \"none\""),
        ),
    )
    .unwrap();
    let out = cli(dir.path(), &["check-config", bad.to_str().unwrap()], &[]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("allow_credentials"), "{text}");
    assert!(text.contains("star.toml:"), "no file:line:col in {text}");

    // Per route too.
    let bad_route = dir.path().join("route.toml");
    std::fs::write(
        &bad_route,
        config(&route(
            "api",
            "/api",
            "http://127.0.0.1:9",
            "auth = \"none\"\ncors_origins = [\"*\"]",
        )),
    )
    .unwrap();
    let out = cli(
        dir.path(),
        &["check-config", bad_route.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));

    // And the same star without credentials is fine.
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        config_with_cors(
            "allowed_origins = [\"*\"]\nallow_credentials = false",
            &route("api", "/api", "http://127.0.0.1:9", "auth = \"none\""),
        ),
    )
    .unwrap();
    let out = cli(dir.path(), &["check-config", good.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
