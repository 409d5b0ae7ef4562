//! TLS on both sides, the admin listener, and `serve --dev`.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use crate::support::*;

struct Pki {
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    Pki {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
    }
}

#[tokio::test]
async fn tls_listener_speaks_http1_and_h2_by_alpn() {
    let up = echo_upstream().await;
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &p.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &p.key_pem).unwrap();
    let cfg = config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    ))
    .replace(
        "[server]\n",
        "[server]\ntls = { cert = \"tls.crt\", key = \"tls.key\" }\n",
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, cfg).unwrap();
    let gw = Gateway::start_in(dir, path, &[], &[]).await;
    let url = format!("https://localhost:{}/svc/x", gw.addr.port());
    let cert = reqwest::Certificate::from_pem(p.cert_pem.as_bytes()).unwrap();
    let h1 = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert.clone()])
        .http1_only()
        .build()
        .unwrap();
    let r = h1.get(&url).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-forwarded-proto"][0], "https");
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert])
        .build()
        .unwrap();
    let r = h2.get(&url).send().await.unwrap();
    assert_eq!(
        r.version(),
        reqwest::Version::HTTP_2,
        "h2 negotiated by ALPN"
    );
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn https_upstream_verified_with_ca_file() {
    let p = pki();
    // A TLS upstream answering with a fixed body.
    let certs =
        vec![rustls_pki_types::CertificateDer::from_pem_slice(p.cert_pem.as_bytes()).unwrap()];
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(p.key_pem.as_bytes()).unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(s) = acceptor.accept(s).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let body = format!("secure {:?} {}", req.version(), req.uri().path());
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(full(body)))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &p.cert_pem).unwrap();
    let cfg = config(
        &[
            route(
                "trusted",
                "/trusted",
                &format!("https://localhost:{port}"),
                "auth = \"none\"\nca_file = \"ca.pem\"",
            ),
            route(
                "untrusted",
                "/untrusted",
                &format!("https://localhost:{port}"),
                "auth = \"none\"",
            ),
        ]
        .concat(),
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, cfg).unwrap();
    let gw = Gateway::start_in(dir, path, &[], &[]).await;
    let r = client().get(gw.url("/trusted/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "secure HTTP/2.0 /trusted/x",
        "h2 chosen by ALPN"
    );
    // Without the CA the certificate is refused: never proxied unverified.
    let r = client().get(gw.url("/untrusted/x")).send().await.unwrap();
    assert!(r.status() == 502 || r.status() == 503, "{}", r.status());
}

#[tokio::test]
async fn admin_serves_metrics_and_a_redacted_config() {
    let up = echo_upstream().await;
    let cfg = config(&route(
        "svc",
        "/svc",
        &format!("http://{up}"),
        "auth = \"none\"",
    ));
    let gw = Gateway::start(&with_admin(&cfg)).await;
    for _ in 0..3 {
        client().get(gw.url("/svc/x")).send().await.unwrap();
    }
    client().get(gw.url("/nope")).send().await.unwrap();
    // One liveness answer on both ports, so a probe reads the same on either.
    let public = client().get(gw.url("/health")).send().await.unwrap();
    let public = public.text().await.unwrap();
    assert_eq!(gw.admin_get("/health").await, public);
    assert!(public.contains("\"status\":\"healthy\""), "{public}");
    let m = gw.admin_get("/metrics").await;
    assert!(
        m.contains("nyro_requests_total{route=\"svc\",method=\"GET\",class=\"2xx\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("nyro_requests_total{route=\"(none)\",method=\"GET\",class=\"4xx\"} 1"),
        "{m}"
    );
    assert!(m.contains("nyro_config_generation 1"), "{m}");
    let c: Value = serde_json::from_str(&gw.admin_get("/config").await).unwrap();
    assert_eq!(c["generation"], 1);
    assert_eq!(c["config"]["routes"][0]["name"], "svc");
    assert_eq!(c["config"]["auth"]["secret"], "*** (inline)");
    let text = c.to_string();
    assert!(!text.contains(SECRET), "the secret is redacted");
    // The admin port is not the public one, and the public one has no /metrics.
    assert_eq!(
        client()
            .get(gw.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn dev_mode_runs_without_a_secret_and_prints_a_working_curl_line() {
    let up = echo_upstream().await;
    let cfg = with_auth(
        &config(&route("svc", "/svc", &format!("http://{up}"), INJECT)),
        "secret = \"${NYRO_TEST_UNSET_SECRET}\"",
    );
    let gw = Gateway::start_with(&cfg, &[], &["--dev", "--log-format", "json"]).await;
    let (_, token) = gw.printed_curl().await;
    assert!(
        gw.logs().iter().any(|l| l.contains("ephemeral")),
        "the ephemeral secret is announced"
    );
    let r = client()
        .get(gw.url("/svc/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-user-id"][0], "dev-user");
    // Without --dev the same config refuses to start, naming the variable.
    let dir = config_dir(&cfg);
    let out = cli(dir.path(), &["serve", "--config", "gateway.toml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("NYRO_TEST_UNSET_SECRET"));
}
