//! `serve --dev` only: a built-in echo upstream for the routes whose
//! upstream cannot be reached when the config is loaded, so the first
//! `curl` on a laptop answers 200 and shows what an upstream would see
//! (README: "Your first five minutes").
//!
//! The echo listens on 127.0.0.1:0, on its own thread and runtime (so it
//! does not depend on how the gateway's runtime is built), and answers
//! every request with JSON: method, path, query, version and headers (name
//! -> list of values; `Authorization` redacted), plus `X-Nyro-Dev-Echo: 1`.
//! The config is rewritten before it is compiled: such a route's upstream
//! becomes `http://127.0.0.1:<echo port>`. A reload under `--dev` probes
//! again (reload.rs), so a route whose upstream comes up is served by it
//! after the next reload. Never used without `--dev`.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::config::{self, Config};

/// The response header that marks an answer from the echo.
pub(crate) const HEADER: &str = "x-nyro-dev-echo";

/// How long all probes of one config may take together.
const PROBE_BUDGET: Duration = Duration::from_millis(1500);

/// The echo's address once started; `None` inside when it could not start.
static ECHO: OnceLock<Option<SocketAddr>> = OnceLock::new();

/// The echo's address, when it has been started.
pub(crate) fn addr() -> Option<SocketAddr> {
    ECHO.get().copied().flatten()
}

/// Whether `up` points at the echo.
pub(crate) fn is_echo(up: &config::Upstream) -> bool {
    addr().is_some_and(|a| up.authority.as_str() == a.to_string())
}

/// Probes every route's upstream (TCP connect, bounded by
/// [`PROBE_BUDGET`] in all) and points each unreachable one at the echo,
/// starting it on first use. Returns the names of the routes switched.
/// Blocking: call it off the async runtime.
pub(crate) fn divert_unreachable(cfg: &mut Config) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    let mut probed = 0;
    for (i, r) in cfg.routes.iter().enumerate() {
        let Some(up) = &r.upstream else { continue };
        if is_echo(up) {
            continue;
        }
        let port = up
            .authority
            .port_u16()
            .unwrap_or(if up.https { 443 } else { 80 });
        let host = up
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tx = tx.clone();
        probed += 1;
        std::thread::spawn(move || {
            let _ = tx.send((i, reachable(&host, port)));
        });
    }
    drop(tx);
    let deadline = Instant::now() + PROBE_BUDGET;
    let mut ok = vec![false; cfg.routes.len()];
    for _ in 0..probed {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, up)) => ok[i] = up,
            Err(_) => break,
        }
    }
    let mut switched = Vec::new();
    for (r, ok) in cfg.routes.iter_mut().zip(ok) {
        let Some(up) = &r.upstream else { continue };
        if ok || is_echo(up) {
            continue;
        }
        let Some(echo) = start() else {
            tracing::warn!(route = %r.name, upstream = %up.url, "upstream not reachable from here, and the dev echo could not start; requests will get 503");
            continue;
        };
        match config::parse_upstream(&format!("http://{echo}")) {
            Ok(new) => {
                tracing::warn!(
                    route = %r.name,
                    upstream = %up.url,
                    echo = %echo,
                    "upstream not reachable from here; --dev serves this route from the built-in echo upstream \
                     (answers carry X-Nyro-Dev-Echo: 1; set the route's upstream to a running service to use it)"
                );
                r.upstream = Some(new);
                switched.push(r.name.clone());
            }
            Err(e) => tracing::warn!(error = %e, "dev echo address"),
        }
    }
    switched
}

/// Whether a TCP connection to `host:port` opens within a second.
fn reachable(host: &str, port: u16) -> bool {
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs
        .take(4)
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// Starts the echo once; its address, or None when it cannot bind.
fn start() -> Option<SocketAddr> {
    *ECHO.get_or_init(|| match spawn() {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the dev echo upstream");
            None
        }
    })
}

fn spawn() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("nyro-dev-echo".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(echo);
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        })?;
    Ok(addr)
}

/// One answer: the request as JSON.
async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body_len = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => serde_json::json!(b.to_bytes().len()),
        Err(_) => serde_json::json!("over 1 MiB or unreadable"),
    };
    let mut headers = serde_json::Map::new();
    for (k, v) in &parts.headers {
        let value = if k == http::header::AUTHORIZATION {
            "(redacted by the dev echo)".to_owned()
        } else {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        };
        if let Some(list) = headers
            .entry(k.as_str().to_owned())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            .as_array_mut()
        {
            list.push(value.into());
        }
    }
    let out = serde_json::json!({
        "echo": "nyro-gw --dev built-in echo upstream: the route's upstream was not reachable",
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": body_len,
    });
    let mut text = serde_json::to_string_pretty(&out).unwrap_or_default();
    text.push('\n');
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    h.insert(HEADER, http::HeaderValue::from_static("1"));
    Ok(resp)
}
