//! The admin listener: never public. `GET /metrics` (Prometheus text),
//! `GET /config` (the active config with secrets redacted, its generation,
//! hash and load time, and the last reload error), `GET /health`.

use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use prometheus_client::encoding::prometheus_text;
use serde_json::{Value, json};

use crate::config::{Config, SecretSource};
use crate::error::json_response;
use crate::state::Shared;

/// Answers one admin request.
pub(crate) fn handle<B>(req: Request<B>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return json_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let rt = shared.runtime.load();
    match req.uri().path() {
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(shared.metrics.render(rt.is_ready()))));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
            );
            r
        }
        "/config" => {
            let status = shared.reload.lock().map(|s| s.clone()).unwrap_or_default();
            let body = json!({
                "generation": rt.generation,
                "hash": format!("{:016x}", rt.hash),
                "source": rt.source,
                "loaded_at_unix": rt.loaded_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                "last_reload_attempt_unix": status.last_attempt.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                "last_reload_error": status.last_error,
                "ready": rt.is_ready(),
                "config": describe(&rt.config),
            });
            let mut r = Response::new(Full::new(Bytes::from(
                serde_json::to_vec_pretty(&body).unwrap_or_default(),
            )));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        "/health" => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                crate::state::HEALTHY.as_bytes(),
            )));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        _ => json_response(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// The config as JSON, with every secret replaced by a description of its
/// source.
pub(crate) fn describe(c: &Config) -> Value {
    let secret = c.auth.hmac.as_ref().map(|h| {
        let described = match &h.source {
            SecretSource::Inline => "*** (inline)".to_owned(),
            SecretSource::File(p) => format!("*** (from {})", p.display()),
            SecretSource::Ephemeral => "*** (ephemeral, --dev)".to_owned(),
        };
        // How many overlap during a rotation, never their values.
        match h.older.len() {
            0 => described,
            n => format!("{described}, {} secrets", n + 1),
        }
    });
    let origins = |o: &[crate::config::OriginRule]| -> Vec<String> {
        o.iter()
            .map(|r| match r {
                crate::config::OriginRule::Any => "*".to_owned(),
                crate::config::OriginRule::Exact(s) => s.clone(),
                crate::config::OriginRule::Wildcard {
                    scheme,
                    suffix,
                    port,
                } => {
                    format!(
                        "{scheme}://*.{suffix}{}",
                        port.map(|p| format!(":{p}")).unwrap_or_default()
                    )
                }
            })
            .collect()
    };
    json!({
        "server": {
            "listen": c.server.listen.to_string(),
            "connect_timeout": crate::config::values::format_duration(c.server.connect_timeout),
            "request_timeout": crate::config::values::format_duration(c.server.request_timeout),
            "shutdown_grace": crate::config::values::format_duration(c.server.shutdown_grace),
            "max_body": c.server.max_body,
            "tls": c.server.tls.as_ref().map(|t| json!({"cert": t.cert, "key": t.key})),
            "trusted_proxies": c.server.trusted_proxies.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            "tunnel_idle_timeout": crate::config::values::format_duration(c.server.tunnel_idle_timeout),
            "workers": c.server.workers,
            "pin_workers": c.server.pin_workers,
        },
        "auth": {
            "audience": c.auth.audience,
            "issuer": c.auth.issuer,
            "algorithms": c.auth.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
            "secret": secret,
            "jwks_url": c.auth.jwks_url.as_ref().map(|u| u.to_string()),
            "leeway": crate::config::values::format_duration(c.auth.leeway),
            "required_claims": c.auth.required_claims,
        },
        "cors": {
            "allowed_origins": origins(&c.cors.allowed_origins),
            "allow_credentials": c.cors.allow_credentials,
            "max_age": crate::config::values::format_duration(c.cors.max_age),
        },
        "routes": c.routes.iter().map(|r| json!({
            "name": r.name,
            "prefix": r.prefix,
            "upstream": r.upstream.as_ref().map(|u| u.url.clone()),
            "auth": r.auth.as_str(),
            "strip_prefix": r.strip_prefix,
            "methods": r.methods.as_ref().map(|m| m.iter().map(|m| m.as_str().to_owned()).collect::<Vec<_>>()),
            "cors_origins": origins(&r.cors.allowed_origins),
            "timeout": r.timeout.map(crate::config::values::format_duration),
            "http2": r.http2,
            "upgrades": r.upgrades,
            "inject": r.inject.iter().map(|i| json!({"header": i.header.as_str(), "claim": i.claim.to_string(), "required": i.required})).collect::<Vec<_>>(),
            "limits": limits(&r.limits),
        })).collect::<Vec<_>>(),
        "rate_limit": {
            // The password, if the URL has one, is never shown.
            "redis_url": c.rate_limit.redis_url.as_ref().map(|u| u.redacted()),
            "on_redis_error": c.rate_limit.on_redis_error.as_str(),
            "timeout": crate::config::values::format_duration(c.rate_limit.timeout),
            "limits": limits(&c.rate_limit.limits),
        },
    })
}

fn limits(list: &[crate::config::Limit]) -> Vec<Value> {
    list.iter()
        .map(|l| json!({"name": l.name, "key": l.key.to_string(), "rate": l.rate.to_string(), "burst": l.burst}))
        .collect()
}
