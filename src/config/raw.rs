//! The serde mirror of `gateway.toml`: field for field what the file says,
//! with spans, and no logic. Unknown keys are reported by `schema` (all of
//! them at once), so these structs do not deny them themselves.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawFile {
    pub(crate) server: Option<S<RawServer>>,
    pub(crate) admin: Option<S<RawAdmin>>,
    pub(crate) auth: Option<S<RawAuth>>,
    pub(crate) cors: Option<S<RawCors>>,
    pub(crate) routes: Option<S<Vec<S<RawRoute>>>>,
    pub(crate) rate_limit: Option<S<RawRateLimit>>,

    pub(crate) telemetry: Option<S<RawTelemetry>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [server] table")]
pub(crate) struct RawServer {
    pub(crate) listen: Option<S<String>>,
    pub(crate) connect_timeout: Option<S<String>>,
    pub(crate) request_timeout: Option<S<String>>,
    pub(crate) shutdown_grace: Option<S<String>>,
    pub(crate) max_body: Option<S<String>>,
    pub(crate) tls: Option<S<RawTls>>,
    pub(crate) header_read_timeout: Option<S<String>>,
    pub(crate) max_connections: Option<S<i64>>,
    pub(crate) max_upstream_connections: Option<S<i64>>,
    pub(crate) trusted_proxies: Option<S<Vec<S<String>>>>,
    pub(crate) tunnel_idle_timeout: Option<S<String>>,
    pub(crate) workers: Option<S<i64>>,
    pub(crate) pin_workers: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a table: tls = { cert = \"...\", key = \"...\" }")]
pub(crate) struct RawTls {
    pub(crate) cert: Option<S<String>>,
    pub(crate) key: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [admin] table")]
pub(crate) struct RawAdmin {
    pub(crate) listen: Option<S<String>>,
}

/// A string or a list of strings (`audience`).
#[derive(Debug, Deserialize)]
// Untagged: serde prints `expecting` as the whole message.
#[serde(untagged, expecting = "expected a string or a list of strings")]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [auth] table")]
pub(crate) struct RawAuth {
    pub(crate) audience: Option<S<OneOrMany>>,
    pub(crate) issuer: Option<S<String>>,
    pub(crate) algorithms: Option<S<Vec<S<String>>>>,
    pub(crate) secret: Option<S<Secrets>>,
    pub(crate) secret_file: Option<S<String>>,
    pub(crate) jwks_url: Option<S<String>>,
    pub(crate) leeway: Option<S<String>>,
    pub(crate) required_claims: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [cors] table")]
pub(crate) struct RawCors {
    pub(crate) allowed_origins: Option<S<Vec<S<String>>>>,
    pub(crate) allow_credentials: Option<S<bool>>,
    pub(crate) max_age: Option<S<String>>,
    pub(crate) allow_headers: Option<S<Vec<S<String>>>>,
    pub(crate) expose_headers: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a [[routes]] table")]
pub(crate) struct RawRoute {
    pub(crate) name: Option<S<String>>,
    pub(crate) prefix: Option<S<String>>,
    pub(crate) upstream: Option<S<String>>,
    pub(crate) auth: Option<S<String>>,
    pub(crate) strip_prefix: Option<S<bool>>,
    pub(crate) methods: Option<S<Vec<S<String>>>>,
    pub(crate) cors_origins: Option<S<Vec<S<String>>>>,
    pub(crate) timeout: Option<S<String>>,
    pub(crate) http2: Option<S<bool>>,
    pub(crate) ca_file: Option<S<String>>,
    pub(crate) inject: Option<S<BTreeMap<S<String>, S<RawInject>>>>,
    pub(crate) upgrades: Option<S<Vec<S<String>>>>,
    pub(crate) limits: Option<S<Vec<S<RawLimit>>>>,
}

/// `"X-User-ID" = "sub"` or `"X-Company-ID" = { claim = "...", required = true }`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a claim path (\"sub\") or a table ({ claim = \"sub\", required = true })"
)]
pub(crate) enum RawInject {
    Claim(String),
    Full {
        claim: String,
        required: Option<bool>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [rate_limit] table")]
pub(crate) struct RawRateLimit {
    pub(crate) redis_url: Option<S<String>>,
    pub(crate) on_redis_error: Option<S<String>>,
    pub(crate) timeout: Option<S<String>>,
    pub(crate) limits: Option<S<Vec<S<RawLimit>>>>,
}

/// One `[[rate_limit.limits]]` or `[[routes.limits]]` entry.
#[derive(Debug, Deserialize)]
#[serde(
    expecting = "a [[limits]] table: { name = \"...\", key = \"ip\", rate = \"50/s\", burst = 100 }"
)]
pub(crate) struct RawLimit {
    pub(crate) name: Option<S<String>>,
    pub(crate) key: Option<S<String>>,
    pub(crate) rate: Option<S<String>>,
    pub(crate) burst: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [telemetry] table")]
pub(crate) struct RawTelemetry {
    pub(crate) otlp_endpoint: Option<S<String>>,
    pub(crate) sample_ratio: Option<S<f64>>,
}

/// `[auth] secret`: one string, or a list of them (overlapping secrets
/// during a rotation). A list keeps each entry's span.
#[derive(Debug)]
pub(crate) enum Secrets {
    /// `secret = "..."`.
    One(String),
    /// `secret = ["...", "..."]`.
    Many(Vec<S<String>>),
}

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Secrets;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a string or a list of strings, e.g. [\"${NEW_SECRET}\", \"${OLD_SECRET:-}\"]",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secrets, E> {
                Ok(Secrets::One(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Secrets, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<S<String>>()? {
                    out.push(s);
                }
                Ok(Secrets::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}
