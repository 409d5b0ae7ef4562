//! Upstream clients: hyper-util's pooled client over hyper-rustls.
//!
//! One client exists per distinct (protocol, extra CA, connect timeout);
//! routes share it, and `Pools` keeps it across reloads so connection
//! pools survive a config change that does not touch the upstream.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::RequestBody;

/// The connector: TCP (with `TCP_NODELAY` and the connect timeout), then
/// TLS for `https://`.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled upstream client.
pub type UpstreamClient = Client<Connector, RequestBody>;

/// What makes two routes need different clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// HTTP/2 with prior knowledge (h2c) for `http://` upstreams.
    pub http2_prior_knowledge: bool,
    /// Extra trusted roots, with a hash of the file's content so an edited
    /// file builds a new client.
    pub ca_file: Option<(PathBuf, u64)>,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read or holds no certificate.
    #[error("ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS client setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Clients kept across reloads.
#[derive(Default)]
pub struct Pools {
    clients: Mutex<HashMap<ClientKey, UpstreamClient>>,
}

impl Pools {
    /// The client for `key`, reusing the existing one.
    pub fn get(&self, key: &ClientKey) -> Result<UpstreamClient, ClientError> {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let client = build(key)?;
        map.insert(key.clone(), client.clone());
        Ok(client)
    }

    /// Drops clients no route of the active config uses any more.
    pub fn retain(&self, used: &[ClientKey]) {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| used.contains(k));
    }
}

/// Reads a PEM CA bundle and hashes it (for `ClientKey`).
pub fn ca_key(path: &std::path::Path) -> Result<(PathBuf, u64), ClientError> {
    let bytes = std::fs::read(path).map_err(|e| ClientError::CaFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((path.to_owned(), crate::config::hash_bytes(&bytes)))
}

fn root_store(ca_file: Option<&PathBuf>) -> Result<rustls::RootCertStore, ClientError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let err = |reason: String| ClientError::CaFile {
            path: path.clone(),
            reason,
        };
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
            let cert = cert.map_err(|e| err(e.to_string()))?;
            roots.add(cert).map_err(|e| err(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(err("no PEM certificate in the file".into()));
        }
    }
    Ok(roots)
}

/// Builds a client for `key`.
pub fn build(key: &ClientKey) -> Result<UpstreamClient, ClientError> {
    let roots = root_store(key.ca_file.as_ref().map(|(p, _)| p))?;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(key.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .retry_canceled_requests(true)
        .set_host(true);
    if key.http2_prior_knowledge {
        builder.http2_only(true);
    }
    Ok(builder.build(connector))
}
