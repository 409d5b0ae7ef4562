//! Verification with real signed tokens: HS256 with a secret; ES256,
//! ES384, RS256 and EdDSA keys from rcgen, published as a JWKS by an
//! in-process HTTP server on 127.0.0.1:0.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Response, Uri};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::config::{Auth, HmacKey, Secret, SecretSource};

const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";
const ISSUER: &str = "https://proj.supabase.co/auth/v1";

/// A signing key and its public JWK.
struct TestKey {
    enc: EncodingKey,
    pem: String,
    jwk: Value,
}

fn key(alg: &'static rcgen::SignatureAlgorithm, jwt_alg: Algorithm, kid: &str) -> TestKey {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap();
    let pem = pair.serialize_pem();
    let enc = match jwt_alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    };
    let mut jwk = if jwt_alg == Algorithm::EdDSA {
        json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw())})
    } else {
        serde_json::to_value(Jwk::from_encoding_key(&enc, jwt_alg).unwrap()).unwrap()
    };
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    TestKey {
        enc,
        pem: pair.public_key_pem(),
        jwk,
    }
}

fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
        claims,
    )
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A token assembled by hand (for headers jsonwebtoken would not write).
fn raw(header: Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(sig)
    )
}

/// Re-signs header+payload built by hand with an HMAC secret.
fn raw_hs256(header: Value, claims: &Value, secret: &[u8]) -> String {
    let msg = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{msg}.{sig}")
}

fn now() -> u64 {
    now_unix()
}

fn user_claims() -> Value {
    json!({
        "sub": "8d2c-user-1", "aud": "authenticated", "iss": ISSUER,
        "exp": now() + 3600, "iat": now(), "role": "authenticated",
        "email": "ada@example.com", "session_id": "s1",
        "app_metadata": {"company_id": "c1", "provider": "email"}
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

/// A JWKS endpoint whose body and status the test can change.
struct JwksServer {
    url: Uri,
    body: Arc<Mutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new((200u16, body)));
        let hits = Arc::new(AtomicUsize::new(0));
        let (st, h) = (state.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (st, h) = (st.clone(), h.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |_req| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let (code, body) = st.lock().unwrap().clone();
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(code)
                                    .header("cache-control", "public, max-age=600")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        JwksServer {
            url: format!("http://{addr}/auth/v1/.well-known/jwks.json")
                .parse()
                .unwrap(),
            body: state,
            hits,
        }
    }

    fn set(&self, code: u16, body: String) {
        *self.body.lock().unwrap() = (code, body);
    }
}

fn config(jwks_url: Option<Uri>, algorithms: &[Algorithm]) -> Auth {
    Auth {
        audience: vec!["authenticated".into()],
        issuer: Some(ISSUER.into()),
        algorithms: algorithms.to_vec(),
        hmac: Some(HmacKey {
            secret: Secret::new(SECRET.as_bytes().to_vec()),
            source: SecretSource::Inline,
            older: Vec::new(),
        }),
        jwks_url,
        leeway: Duration::ZERO,
        required_claims: vec!["sub".into(), "aud".into(), "exp".into()],
    }
}

async fn ready(auth: &Authenticator) {
    let start = Instant::now();
    while !auth.is_ready() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "JWKS never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `Err(text)`: the refusal's Display contains `text`.
type Expect = Result<(), &'static str>;

#[tokio::test]
async fn verification_table() {
    use Algorithm::*;
    let ec = key(&rcgen::PKCS_ECDSA_P256_SHA256, ES256, "ec1");
    let ec_other = key(&rcgen::PKCS_ECDSA_P256_SHA256, ES256, "attacker");
    let ec384 = key(&rcgen::PKCS_ECDSA_P384_SHA384, ES384, "ec384");
    let rsa = key(&rcgen::PKCS_RSA_SHA256, RS256, "rsa1");
    let ed = key(&rcgen::PKCS_ED25519, EdDSA, "ed1");
    let server = JwksServer::start(jwks(&[&ec, &ec384, &rsa, &ed])).await;
    let auth = Authenticator::new(
        &config(
            Some(server.url.clone()),
            &[HS256, ES256, ES384, RS256, PS256, EdDSA],
        ),
        None,
    )
    .unwrap();
    ready(&auth).await;

    let u = user_claims();
    let t = now();
    let es = |claims: &Value| sign(ES256, &ec.enc, Some("ec1"), claims);
    let big = format!(
        "{}.{}.{}",
        "a".repeat(6000),
        "b".repeat(6000),
        "c".repeat(5500)
    );
    let zeros = raw(
        json!({"alg": "ES256", "typ": "JWT", "kid": "ec1"}),
        &u,
        &[0u8; 64],
    );
    let hs_with_pubkey = raw_hs256(
        json!({"alg": "HS256", "typ": "JWT", "kid": "ec1"}),
        &u,
        ec.pem.as_bytes(),
    );
    let anon = json!({"iss": "supabase", "ref": "proj", "role": "anon", "iat": t, "exp": t + 3600});
    let service = json!({"iss": "supabase", "ref": "proj", "role": "service_role", "iat": t, "exp": t + 3600});

    let mut cases: Vec<(&str, String, Expect)> = vec![
        ("valid HS256", hs256(&u), Ok(())),
        (
            "HS256 with a kid absent from the JWKS (hosted Supabase)",
            sign(
                HS256,
                &EncodingKey::from_secret(SECRET.as_bytes()),
                Some("supabase-legacy"),
                &u,
            ),
            Ok(()),
        ),
        ("valid ES256", es(&u), Ok(())),
        (
            "valid ES256 without kid tries keys of its algorithm",
            sign(ES256, &ec.enc, None, &u),
            Ok(()),
        ),
        (
            "valid ES384",
            sign(ES384, &ec384.enc, Some("ec384"), &u),
            Ok(()),
        ),
        (
            "valid RS256",
            sign(RS256, &rsa.enc, Some("rsa1"), &u),
            Ok(()),
        ),
        ("valid EdDSA", sign(EdDSA, &ed.enc, Some("ed1"), &u), Ok(())),
        (
            "expired 5 minutes ago",
            hs256(&with(u.clone(), "exp", json!(t - 300))),
            Err("token expired 5 minutes ago"),
        ),
        (
            "expired 2 seconds ago, no leeway",
            es(&with(u.clone(), "exp", json!(t - 2))),
            Err("token expired"),
        ),
        (
            "nbf in the future",
            hs256(&with(u.clone(), "nbf", json!(t + 600))),
            Err("not valid yet"),
        ),
        (
            "nbf in the past",
            hs256(&with(u.clone(), "nbf", json!(t - 10))),
            Ok(()),
        ),
        (
            "wrong audience",
            hs256(&with(u.clone(), "aud", json!("other-app"))),
            Err("audience mismatch: expected 'authenticated', token has 'other-app'"),
        ),
        (
            "audience list containing ours",
            hs256(&with(u.clone(), "aud", json!(["other", "authenticated"]))),
            Ok(()),
        ),
        (
            "audience list without ours",
            es(&with(u.clone(), "aud", json!(["a", "b"]))),
            Err("audience mismatch"),
        ),
        (
            "empty audience",
            hs256(&with(u.clone(), "aud", json!(""))),
            Err("audience mismatch"),
        ),
        (
            "missing audience",
            hs256(&without(u.clone(), "aud")),
            Err("required claim aud is missing"),
        ),
        (
            "wrong issuer",
            hs256(&with(
                u.clone(),
                "iss",
                json!("https://evil.example/auth/v1"),
            )),
            Err("issuer mismatch: expected 'https://proj.supabase.co/auth/v1'"),
        ),
        (
            "missing issuer when one is configured",
            hs256(&without(u.clone(), "iss")),
            Err("required claim iss is missing"),
        ),
        (
            "missing sub",
            hs256(&without(u.clone(), "sub")),
            Err("required claim sub is missing"),
        ),
        (
            "empty sub",
            es(&with(u.clone(), "sub", json!(""))),
            Err("required claim sub is missing"),
        ),
        (
            "missing exp",
            hs256(&without(u.clone(), "exp")),
            Err("required claim exp is missing"),
        ),
        (
            "string exp",
            hs256(&with(u.clone(), "exp", json!((t + 3600).to_string()))),
            Err("claim exp is not a number"),
        ),
        (
            "float exp",
            hs256(&with(u.clone(), "exp", json!((t + 3600) as f64 + 0.5))),
            Ok(()),
        ),
        (
            "HS256 with another secret",
            sign(
                HS256,
                &EncodingKey::from_secret(b"another-secret-another-secret-0123"),
                None,
                &u,
            ),
            Err("signature is invalid"),
        ),
        (
            "ES256 signed by another key under our kid",
            sign(ES256, &ec_other.enc, Some("ec1"), &u),
            Err("signature is invalid"),
        ),
        (
            "tampered payload",
            {
                let good = es(&u);
                let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
                parts[1] = b64(with(u.clone(), "sub", json!("admin"))
                    .to_string()
                    .as_bytes());
                parts.join(".")
            },
            Err("signature is invalid"),
        ),
        (
            "ECDSA signature of zeros (CVE-2022-21449)",
            zeros,
            Err("signature is invalid"),
        ),
        (
            "HS256 signed with the public key PEM as secret (algorithm confusion)",
            hs_with_pubkey,
            Err("signature is invalid"),
        ),
        (
            "unknown kid",
            sign(ES256, &ec_other.enc, Some("nope"), &u),
            Err("unknown key id 'nope'"),
        ),
        (
            "HS384 not in the allowlist",
            sign(
                HS384,
                &EncodingKey::from_secret(SECRET.as_bytes()),
                None,
                &u,
            ),
            Err("algorithm HS384 is not allowed"),
        ),
        (
            "unknown algorithm name",
            raw(json!({"alg": "XS999"}), &u, b"sig"),
            Err("algorithm XS999 is not allowed"),
        ),
        (
            "ES384 token naming the ES256 key",
            sign(ES384, &ec384.enc, Some("ec1"), &u),
            Err("key 'ec1' is for ES256, not ES384"),
        ),
        (
            "PS256 token naming the RS256-pinned key",
            sign(PS256, &rsa.enc, Some("rsa1"), &u),
            Err("key 'rsa1' is for RS256, not PS256"),
        ),
        (
            "crit header",
            raw_hs256(
                json!({"alg": "HS256", "crit": ["exp"], "exp": 1}),
                &u,
                SECRET.as_bytes(),
            ),
            Err("crit"),
        ),
        (
            "jku pointing elsewhere is ignored (attacker key, unknown kid)",
            {
                let mut h = Header::new(ES256);
                h.kid = Some("attacker".into());
                h.jku = Some("https://evil.example/jwks.json".into());
                jsonwebtoken::encode(&h, &u, &ec_other.enc).unwrap()
            },
            Err("unknown key id 'attacker'"),
        ),
        (
            "jku on a token signed with our key changes nothing",
            {
                let mut h = Header::new(ES256);
                h.kid = Some("ec1".into());
                h.jku = Some("https://evil.example/jwks.json".into());
                h.x5u = Some("https://evil.example/cert.pem".into());
                jsonwebtoken::encode(&h, &u, &ec.enc).unwrap()
            },
            Ok(()),
        ),
        (
            "embedded jwk header is not trusted",
            {
                let mut h = Header::new(ES256);
                h.kid = Some("ec1".into());
                h.jwk = Some(serde_json::from_value(ec_other.jwk.clone()).unwrap());
                jsonwebtoken::encode(&h, &u, &ec_other.enc).unwrap()
            },
            Err("signature is invalid"),
        ),
        (
            "Supabase anon key (role, no sub)",
            hs256(&anon),
            Err("token is the Supabase anon key, not a user's token"),
        ),
        (
            "Supabase service_role key (role, no sub)",
            hs256(&service),
            Err("token is the Supabase service_role key"),
        ),
        ("garbage", "not-a-token".into(), Err("malformed token")),
        (
            "three garbage parts",
            "a.b.c".into(),
            Err("malformed token"),
        ),
        (
            "four parts",
            format!("{}.x", hs256(&u)),
            Err("malformed token"),
        ),
        (
            "empty",
            String::new(),
            Err("malformed token: the token is empty"),
        ),
        (
            "payload not an object",
            raw_hs256(json!({"alg": "HS256"}), &json!([1, 2]), SECRET.as_bytes()),
            Err("malformed token: the payload is not a JSON object"),
        ),
        (
            "oversized (17 KiB)",
            big,
            Err("token is larger than 16 KiB"),
        ),
    ];
    for alg in ["none", "None", "NONE", "nOnE"] {
        cases.push((
            "alg none",
            raw(json!({"alg": alg, "typ": "JWT"}), &u, b""),
            Err("algorithm none is not allowed"),
        ));
        cases.push((
            "alg none with a signature",
            raw(json!({"alg": alg}), &u, b"xyz"),
            Err("algorithm none is not allowed"),
        ));
    }

    for (name, token, expect) in &cases {
        let got = auth.verify(token).await;
        match (expect, &got) {
            (Ok(()), Ok(v)) => assert_eq!(v.subject(), u["sub"].as_str(), "{name}"),
            (Err(text), Err(e)) => {
                let msg = assert_refusal(name, e, text);
                assert!(
                    !msg.contains(SECRET) && (token.is_empty() || !msg.contains(token.as_str())),
                    "{name}: leaks"
                );
            }
            _ => panic!("{name}: expected {expect:?}, got {got:?}"),
        }
    }
    // A second pass answers the same (asymmetric ones from the cache).
    for (name, token, expect) in &cases {
        assert_eq!(
            auth.verify(token).await.is_ok(),
            expect.is_ok(),
            "second pass: {name}"
        );
    }
}

#[tokio::test]
async fn leeway_and_extra_required_claims_come_from_the_config() {
    let mut cfg = config(None, &[Algorithm::HS256]);
    cfg.leeway = Duration::from_secs(60);
    cfg.required_claims = vec!["sub".into(), "aud".into(), "exp".into(), "role".into()];
    let auth = Authenticator::new(&cfg, None).unwrap();
    let u = user_claims();
    assert!(
        auth.verify(&hs256(&with(u.clone(), "exp", json!(now() - 30))))
            .await
            .is_ok(),
        "within leeway"
    );
    let err = auth
        .verify(&hs256(&with(u.clone(), "exp", json!(now() - 120))))
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::Expired { ago: err_ago(&err) });
    let err = auth
        .verify(&hs256(&with(u.clone(), "role", json!(""))))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "required claim role is missing");
    assert!(auth.is_ready(), "no JWKS: ready at once");
}

fn err_ago(e: &TokenError) -> u64 {
    match e {
        TokenError::Expired { ago } if (119..=122).contains(ago) => *ago,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rotated_key_is_accepted_within_ten_seconds_and_bogus_kids_do_not_hammer() {
    let old = key(&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256, "old");
    let new = key(&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256, "new");
    let server = JwksServer::start(jwks(&[&old])).await;
    let auth =
        Authenticator::new(&config(Some(server.url.clone()), &[Algorithm::ES256]), None).unwrap();
    ready(&auth).await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // A flood of made-up kids right after a fetch: no fetch at all yet.
    for i in 0..200 {
        let t = sign(
            Algorithm::ES256,
            &new.enc,
            Some(&format!("bogus-{i}")),
            &user_claims(),
        );
        assert!(matches!(
            auth.verify(&t).await,
            Err(TokenError::UnknownKid(_))
        ));
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "unknown kids within 5 s must not fetch"
    );

    server.set(200, jwks(&[&old, &new]));
    let token = sign(Algorithm::ES256, &new.enc, Some("new"), &user_claims());
    let first_use = Instant::now();
    loop {
        match auth.verify(&token).await {
            Ok(_) => break,
            Err(TokenError::UnknownKid(_)) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            first_use.elapsed() < Duration::from_secs(10),
            "rotated key not picked up within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One deferred re-fetch (plus at most one from the request path).
    let hits = server.hits.load(Ordering::SeqCst);
    assert!((2..=3).contains(&hits), "hits = {hits}");
}

#[tokio::test]
async fn cached_keys_survive_a_failing_endpoint_and_a_reload() {
    let ec = key(&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256, "ec1");
    let server = JwksServer::start(jwks(&[&ec])).await;
    let cfg = config(
        Some(server.url.clone()),
        &[Algorithm::HS256, Algorithm::ES256],
    );
    let auth = Authenticator::new(&cfg, None).unwrap();
    ready(&auth).await;
    let store = auth.jwks().unwrap().clone();

    server.set(500, "oops".into());
    assert!(store.refresh_now().await.is_err());
    server.set(200, "{\"not\": \"a jwks\"}".into());
    assert!(store.refresh_now().await.is_err());
    assert!(store.last_error().is_some());

    // The next config generation reuses the store: ready at once, old keys.
    let next = Authenticator::new(&cfg, Some(store.clone())).unwrap();
    assert!(next.is_ready());
    assert!(Arc::ptr_eq(next.jwks().unwrap(), &store));
    let token = sign(Algorithm::ES256, &ec.enc, Some("ec1"), &user_claims());
    assert!(next.verify(&token).await.is_ok());
    drop(auth);
}

#[tokio::test]
async fn unreachable_jwks_is_not_ready_and_refuses_asymmetric_tokens_but_not_hmac() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url: Uri = format!("http://{}/jwks.json", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let auth = Authenticator::new(
        &config(Some(url), &[Algorithm::HS256, Algorithm::ES256]),
        None,
    )
    .unwrap();
    let ec = key(&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256, "ec1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!auth.is_ready());
    let err = auth
        .verify(&sign(
            Algorithm::ES256,
            &ec.enc,
            Some("ec1"),
            &user_claims(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::KeysUnavailable);
    assert!(auth.verify(&hs256(&user_claims())).await.is_ok());
}

#[test]
fn hmac_only_authenticator_needs_no_runtime_but_jwks_does() {
    assert!(Authenticator::new(&config(None, &[Algorithm::HS256]), None).is_ok());
    let cfg = config(
        Some(
            "https://proj.supabase.co/auth/v1/.well-known/jwks.json"
                .parse()
                .unwrap(),
        ),
        &[Algorithm::ES256],
    );
    assert!(matches!(
        Authenticator::new(&cfg, None),
        Err(AuthBuildError::NoRuntime)
    ));
}

#[test]
fn minted_tokens_verify_and_keep_given_claims() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let auth = Authenticator::new(&config(None, &[Algorithm::HS256]), None).unwrap();
    let claims = json!({"sub": "u1", "app_metadata": {"company_id": "c1"}});
    let Value::Object(map) = claims else {
        unreachable!()
    };
    let token = mint_token(
        SECRET.as_bytes(),
        Algorithm::HS256,
        map,
        "authenticated",
        Some(ISSUER),
        Duration::from_secs(3600),
    )
    .unwrap();
    let v = rt.block_on(auth.verify(&token)).unwrap();
    assert_eq!(v.claims["aud"], "authenticated");
    assert_eq!(v.claims["iss"], ISSUER, "filled from the config");
    assert!(v.exp >= now() + 3590);
    let mut given = serde_json::Map::new();
    given.insert("aud".into(), json!("mine"));
    given.insert("exp".into(), json!(1));
    given.insert("iss".into(), json!("https://given.example"));
    let token = mint_token(
        SECRET.as_bytes(),
        Algorithm::HS256,
        given,
        "authenticated",
        Some("https://minted.example"),
        Duration::from_secs(60),
    )
    .unwrap();
    let decoded = verify::decode_parts(&token).ok().unwrap();
    assert_eq!(decoded.claims["aud"], "mine");
    assert_eq!(decoded.claims["exp"], 1);
    assert_eq!(decoded.claims["iss"], "https://given.example");
    assert!(matches!(
        mint_token(
            b"k",
            Algorithm::ES256,
            serde_json::Map::new(),
            "a",
            None,
            Duration::ZERO
        ),
        Err(MintError::NotHmac(_))
    ));
}

/// Regression: with `required_claims = ["exp"]` jsonwebtoken checks `aud`
/// only when present, so tokens without a usable `aud` (the Supabase anon
/// and service_role keys among them) were accepted. `audience` and `issuer`
/// are enforced whatever `required_claims` says.
#[tokio::test]
async fn audience_and_issuer_are_enforced_whatever_required_claims_says() {
    let mut cfg = config(None, &[Algorithm::HS256]);
    cfg.required_claims = vec!["exp".into()];
    let auth = Authenticator::new(&cfg, None).unwrap();
    let u = user_claims();
    let t = now();
    let cases: Vec<(&str, Value, Expect)> = vec![
        ("valid", u.clone(), Ok(())),
        (
            "no sub is fine when sub is not required",
            without(u.clone(), "sub"),
            Ok(()),
        ),
        (
            "no aud",
            without(u.clone(), "aud"),
            Err("required claim aud is missing"),
        ),
        (
            "null aud",
            with(u.clone(), "aud", Value::Null),
            Err("required claim aud is missing"),
        ),
        (
            "numeric aud",
            with(u.clone(), "aud", json!(5)),
            Err("claim aud is not a string or a list of strings"),
        ),
        (
            "list of numbers as aud",
            with(u.clone(), "aud", json!([5])),
            Err("claim aud is not a string or a list of strings"),
        ),
        (
            "our audience beside a number",
            with(u.clone(), "aud", json!(["authenticated", 5])),
            Err("claim aud is not a string or a list of strings"),
        ),
        (
            "empty aud list",
            with(u.clone(), "aud", json!([])),
            Err("audience mismatch"),
        ),
        (
            "no iss",
            without(u.clone(), "iss"),
            Err("required claim iss is missing"),
        ),
        (
            "numeric iss",
            with(u.clone(), "iss", json!(5)),
            Err(
                "issuer must be a single string equal to 'https://proj.supabase.co/auth/v1', token has 5",
            ),
        ),
        (
            "Supabase anon key",
            json!({"iss": ISSUER, "ref": "proj", "role": "anon", "iat": t, "exp": t + 3600}),
            Err("token is the Supabase anon key"),
        ),
        (
            "Supabase service_role key",
            json!({"iss": ISSUER, "ref": "proj", "role": "service_role", "iat": t, "exp": t + 3600}),
            Err("token is the Supabase service_role key"),
        ),
        (
            "Supabase anon key from another issuer",
            json!({"iss": "supabase", "ref": "proj", "role": "anon", "iat": t, "exp": t + 3600}),
            Err("token is the Supabase anon key"),
        ),
    ];
    check_cases(&auth, &cases).await;
}

/// Regression: jsonwebtoken accepts a list `iss` when any element matches,
/// so `["<ours>", "https://evil"]` passed. `iss` must be one string.
#[tokio::test]
async fn issuer_must_be_a_single_string_equal_to_the_configured_one() {
    let auth = Authenticator::new(&config(None, &[Algorithm::HS256]), None).unwrap();
    let u = user_claims();
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "list holding ours and another",
            with(u.clone(), "iss", json!([ISSUER, "https://evil"])),
            Err("issuer must be a single string equal to 'https://proj.supabase.co/auth/v1'"),
        ),
        (
            "list holding only ours",
            with(u.clone(), "iss", json!([ISSUER])),
            Err("issuer must be a single string"),
        ),
        (
            "ours with a trailing slash",
            with(u.clone(), "iss", json!(format!("{ISSUER}/"))),
            Err("issuer mismatch"),
        ),
        ("ours", u.clone(), Ok(())),
    ];
    check_cases(&auth, &cases).await;
}

/// Regression: `sub = "   "` was accepted as a subject.
#[tokio::test]
async fn whitespace_only_sub_counts_as_empty() {
    for required in [vec!["sub", "aud", "exp"], vec!["exp"]] {
        let mut cfg = config(None, &[Algorithm::HS256]);
        cfg.required_claims = required.iter().map(|s| s.to_string()).collect();
        let auth = Authenticator::new(&cfg, None).unwrap();
        let u = user_claims();
        let cases: Vec<(&str, Value, Expect)> = vec![
            (
                "spaces",
                with(u.clone(), "sub", json!("   ")),
                Err("required claim sub is missing"),
            ),
            (
                "tab and newline",
                with(u.clone(), "sub", json!("\t\n")),
                Err("required claim sub is missing"),
            ),
            (
                "interior space",
                with(u.clone(), "sub", json!("user 1")),
                Ok(()),
            ),
        ];
        check_cases(&auth, &cases).await;
    }
}

/// Runs `(name, claims, expect)` cases as HS256 tokens.
async fn check_cases(auth: &Authenticator, cases: &[(&str, Value, Expect)]) {
    for (name, claims, expect) in cases {
        let got = auth.verify(&hs256(claims)).await;
        match (expect, &got) {
            (Ok(()), Ok(_)) => {}
            (Err(text), Err(e)) => {
                assert_refusal(name, e, text);
            }
            _ => panic!("{name}: expected {expect:?}, got {got:?}"),
        }
    }
}

/// Regression: while the JWKS endpoint was down at start-up the retry
/// backoff grew to 60 s, so readiness (and every asymmetric token) waited
/// up to a minute after the endpoint recovered. Before the first success
/// retries are at most 5 s apart.
#[tokio::test]
async fn jwks_down_at_start_is_fetched_within_seconds_of_recovering() {
    let ec = key(&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256, "ec1");
    let server = JwksServer::start(String::new()).await;
    server.set(503, "down".into());
    let auth =
        Authenticator::new(&config(Some(server.url.clone()), &[Algorithm::ES256]), None).unwrap();
    // Down for 8.5 s: retries at about 0, 1, 3 and 7 s (then 15 s with a
    // 60 s cap, 12 s with a 5 s one).
    tokio::time::sleep(Duration::from_millis(8500)).await;
    assert!(!auth.is_ready());
    let hits = server.hits.load(Ordering::SeqCst);
    assert!((3..=5).contains(&hits), "retries while down: {hits}");
    server.set(200, jwks(&[&ec]));
    let recovered = Instant::now();
    while !auth.is_ready() {
        assert!(
            recovered.elapsed() < Duration::from_millis(5500),
            "not ready 5.5 s after the JWKS came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = sign(Algorithm::ES256, &ec.enc, Some("ec1"), &user_claims());
    assert!(auth.verify(&token).await.is_ok());
}

/// Regression: a token without `kid` that needed JWKS keys while none
/// were loaded was refused without a re-fetch, so it waited for the
/// background refresh (10 min by default). It now triggers one, under the
/// same 5 s limit as an unknown `kid`.
#[tokio::test]
async fn token_needing_keys_when_none_are_loaded_triggers_a_rate_limited_fetch() {
    let ec = key(&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256, "ec1");
    let server = JwksServer::start(r#"{"keys": []}"#.into()).await;
    let auth =
        Authenticator::new(&config(Some(server.url.clone()), &[Algorithm::ES256]), None).unwrap();
    ready(&auth).await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    assert_eq!(auth.jwks().unwrap().key_count(), 0);

    // Within 5 s of the last fetch: refused, no fetch however many tokens.
    let no_kid = sign(Algorithm::ES256, &ec.enc, None, &user_claims());
    for _ in 0..100 {
        assert_eq!(
            auth.verify(&no_kid).await.unwrap_err(),
            TokenError::NoKeyForAlgorithm("ES256".into())
        );
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "rate limited");

    // The issuer publishes a key; a token arriving after the 5 s is
    // verified at once, with one fetch.
    server.set(200, jwks(&[&ec]));
    tokio::time::sleep(REFETCH_WAIT).await;
    let hits = server.hits.load(Ordering::SeqCst);
    assert!(auth.verify(&no_kid).await.is_ok());
    assert!(
        server.hits.load(Ordering::SeqCst) <= hits + 1,
        "one fetch for the token"
    );
}

/// Just over the 5 s re-fetch limit.
const REFETCH_WAIT: Duration = Duration::from_millis(5200);

/// Checks a refusal's description: it names `text` and is safe to put in
/// a `WWW-Authenticate` quoted string. Returns it for further checks.
fn assert_refusal(name: &str, e: &impl std::fmt::Display, text: &str) -> String {
    let msg = e.to_string();
    assert!(
        msg.contains(text),
        "{name}: got {msg:?}, want it to contain {text:?}"
    );
    assert!(
        msg.bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
        "{name}: unsafe description {msg:?}"
    );
    msg
}

#[test]
fn clean_keeps_80_quotable_characters_and_marks_a_cut() {
    assert_eq!(clean("kid \"x\"\n"), "kid ?x??");
    let long = "k".repeat(81);
    assert_eq!(clean(&long), format!("{}...", &long[..80]));
    assert_eq!(clean(&long[..80]), long[..80]);
}
