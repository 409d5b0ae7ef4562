//! `[server]` and `[admin]`: the listeners, timeouts, connection limits,
//! TLS files and trusted proxies (README "Configuration").

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::Validator;
use crate::config::model::{Admin, Server, TlsFiles};
use crate::config::parse::parse_cidr;
use crate::config::raw::{RawAdmin, RawServer, RawTls};
use crate::config::values::parse_size;

impl Validator<'_> {
    /// `[server]`, every key with its documented default when absent.
    pub(super) fn server(&mut self, raw: Option<RawServer>) -> Option<Server> {
        let RawServer {
            listen,
            connect_timeout,
            request_timeout,
            shutdown_grace,
            max_body,
            tls,
            header_read_timeout,
            max_connections,
            max_upstream_connections,
            trusted_proxies,
            tunnel_idle_timeout,
            workers,
            pin_workers,
        } = raw.unwrap_or(RawServer {
            listen: None,
            connect_timeout: None,
            request_timeout: None,
            shutdown_grace: None,
            max_body: None,
            tls: None,
            header_read_timeout: None,
            max_connections: None,
            max_upstream_connections: None,
            trusted_proxies: None,
            tunnel_idle_timeout: None,
            workers: None,
            pin_workers: None,
        });
        let listen = match listen {
            Some(l) => self.socket_addr(&l, "listen"),
            None => Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
        };
        let connect_timeout =
            self.positive_duration(connect_timeout, Duration::from_secs(10), "connect_timeout");
        let request_timeout =
            self.positive_duration(request_timeout, Duration::from_secs(60), "request_timeout");
        let shutdown_grace =
            self.duration(shutdown_grace, Duration::from_secs(30), "shutdown_grace");
        let tunnel_idle_timeout = self.positive_duration(
            tunnel_idle_timeout,
            Duration::from_secs(300),
            "tunnel_idle_timeout",
        );
        let max_body = match max_body {
            None => Some(None),
            Some(s) => {
                let text = self.expand(&s);
                match text.map(|t| parse_size(&t)) {
                    Some(Ok(n)) => Some(Some(n)),
                    Some(Err(e)) => {
                        self.err(s.span(), format!("max_body: {e}"));
                        None
                    }
                    None => None,
                }
            }
        };
        let tls = match tls {
            None => Some(None),
            Some(t) => {
                let span = t.span();
                let RawTls { cert, key } = t.into_inner();
                match (cert, key) {
                    (Some(c), Some(k)) => {
                        let cert = self.path(&c, "tls.cert", true);
                        let key = self.path(&k, "tls.key", true);
                        Some(Some(TlsFiles {
                            cert: cert?,
                            key: key?,
                        }))
                    }
                    _ => {
                        self.err(span, "tls needs both cert and key: tls = { cert = \"/path/tls.crt\", key = \"/path/tls.key\" }");
                        None
                    }
                }
            }
        };
        let header_read_timeout = self.positive_duration(
            header_read_timeout,
            Duration::from_secs(30),
            "header_read_timeout",
        );
        let max_connections = self.count(max_connections, 10_000, "max_connections");
        let max_upstream_connections =
            self.count(max_upstream_connections, 1024, "max_upstream_connections");
        let workers = match workers {
            None => Some(None),
            Some(n) => self.count(Some(n), 2, "workers").map(Some),
        };
        let trusted_proxies = match trusted_proxies {
            None => Some(Vec::new()),
            Some(list) => self.cidrs(list.get_ref()),
        };
        Some(Server {
            trusted_proxies: trusted_proxies?,
            listen: listen?,
            connect_timeout: connect_timeout?,
            request_timeout: request_timeout?,
            shutdown_grace: shutdown_grace?,
            max_body: max_body?,
            tls: tls?,
            header_read_timeout: header_read_timeout?,
            max_connections: max_connections?,
            max_upstream_connections: max_upstream_connections?,
            tunnel_idle_timeout: tunnel_idle_timeout?,
            workers: workers?,
            pin_workers: pin_workers.is_none_or(Spanned::into_inner),
        })
    }

    /// The admin listener, and the span of its `listen` value.
    pub(super) fn admin(&mut self, raw: Spanned<RawAdmin>) -> Option<(Admin, Range<usize>)> {
        let span = raw.span();
        let RawAdmin { listen } = raw.into_inner();
        let Some(listen) = listen else {
            self.err(
                span,
                "[admin] needs listen, e.g. listen = \"127.0.0.1:9901\"",
            );
            return None;
        };
        let addr = self.socket_addr(&listen, "admin.listen")?;
        if addr.ip().is_unspecified() {
            self.warn(listen.span(), "the admin listener is reachable from every interface; it exposes the active config and metrics, keep it off public networks");
        }
        Some((Admin { listen: addr }, listen.span()))
    }

    /// `trusted_proxies`: every entry a CIDR (`"10.0.0.0/8"`,
    /// `"fd00::/8"`) or a single address (taken as /32 or /128).
    fn cidrs(&mut self, list: &[Spanned<String>]) -> Option<Vec<ipnet::IpNet>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (text, span) in self.string_list(list) {
            match parse_cidr(&text) {
                Ok(net) => out.push(net),
                Err(m) => {
                    self.err(span, format!("trusted_proxies: {m}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}
