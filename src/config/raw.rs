//! The serde mirror of `gateway.toml`: field for field what the file says,
//! with spans, and no logic. Unknown keys are reported by `schema` (all of
//! them at once), so these structs do not deny them themselves.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
pub struct RawFile {
    pub server: Option<S<RawServer>>,
    pub admin: Option<S<RawAdmin>>,
    pub auth: Option<S<RawAuth>>,
    pub cors: Option<S<RawCors>>,
    pub routes: Option<S<Vec<S<RawRoute>>>>,
    pub rate_limit: Option<S<RawRateLimit>>,

    pub telemetry: Option<S<RawTelemetry>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [server] table")]
pub struct RawServer {
    pub listen: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub request_timeout: Option<S<String>>,
    pub shutdown_grace: Option<S<String>>,
    pub max_body: Option<S<String>>,
    pub tls: Option<S<RawTls>>,
    pub header_read_timeout: Option<S<String>>,
    pub max_connections: Option<S<i64>>,
    pub max_upstream_connections: Option<S<i64>>,
    pub trusted_proxies: Option<S<Vec<S<String>>>>,
    pub tunnel_idle_timeout: Option<S<String>>,
    pub workers: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a table: tls = { cert = \"...\", key = \"...\" }")]
pub struct RawTls {
    pub cert: Option<S<String>>,
    pub key: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [admin] table")]
pub struct RawAdmin {
    pub listen: Option<S<String>>,
}

/// A string or a list of strings (`audience`).
#[derive(Debug, Deserialize)]
// Untagged: serde prints `expecting` as the whole message.
#[serde(untagged, expecting = "expected a string or a list of strings")]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [auth] table")]
pub struct RawAuth {
    pub audience: Option<S<OneOrMany>>,
    pub issuer: Option<S<String>>,
    pub algorithms: Option<S<Vec<S<String>>>>,
    pub secret: Option<S<Secrets>>,
    pub secret_file: Option<S<String>>,
    pub jwks_url: Option<S<String>>,
    pub leeway: Option<S<String>>,
    pub required_claims: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [cors] table")]
pub struct RawCors {
    pub allowed_origins: Option<S<Vec<S<String>>>>,
    pub allow_credentials: Option<S<bool>>,
    pub max_age: Option<S<String>>,
    pub allow_headers: Option<S<Vec<S<String>>>>,
    pub expose_headers: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a [[routes]] table")]
pub struct RawRoute {
    pub name: Option<S<String>>,
    pub prefix: Option<S<String>>,
    pub upstream: Option<S<String>>,
    pub auth: Option<S<String>>,
    pub strip_prefix: Option<S<bool>>,
    pub methods: Option<S<Vec<S<String>>>>,
    pub cors_origins: Option<S<Vec<S<String>>>>,
    pub timeout: Option<S<String>>,
    pub http2: Option<S<bool>>,
    pub ca_file: Option<S<String>>,
    pub inject: Option<S<BTreeMap<S<String>, S<RawInject>>>>,
    pub upgrades: Option<S<Vec<S<String>>>>,
    pub limits: Option<S<Vec<S<RawLimit>>>>,
}

/// `"X-User-ID" = "sub"` or `"X-Company-ID" = { claim = "...", required = true }`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a claim path (\"sub\") or a table ({ claim = \"sub\", required = true })"
)]
pub enum RawInject {
    Claim(String),
    Full {
        claim: String,
        required: Option<bool>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [rate_limit] table")]
pub struct RawRateLimit {
    pub redis_url: Option<S<String>>,
    pub on_redis_error: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub limits: Option<S<Vec<S<RawLimit>>>>,
}

/// One `[[rate_limit.limits]]` or `[[routes.limits]]` entry.
#[derive(Debug, Deserialize)]
#[serde(
    expecting = "a [[limits]] table: { name = \"...\", key = \"ip\", rate = \"50/s\", burst = 100 }"
)]
pub struct RawLimit {
    pub name: Option<S<String>>,
    pub key: Option<S<String>>,
    pub rate: Option<S<String>>,
    pub burst: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "the [telemetry] table")]
pub struct RawTelemetry {
    pub otlp_endpoint: Option<S<String>>,
    pub sample_ratio: Option<S<f64>>,
}

/// `[auth] secret`: one string, or a list of them (overlapping secrets
/// during a rotation). A list keeps each entry's span.
#[derive(Debug)]
pub enum Secrets {
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
