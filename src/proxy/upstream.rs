//! The request sent upstream, made from the client's in one place: the
//! method kept, the path rebuilt for the target (prefix stripped, base path
//! prepended), hop-by-hop and steering headers dropped, `X-Forwarded-*`
//! and `X-Request-ID` set, the injected identity written last.

use http::header::{EXPECT, HOST, TE, UPGRADE};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue, Uri, Version};

use super::headers;
use crate::error::GatewayError;

/// What the route, the connection and the earlier phases say about
/// forwarding one request.
#[derive(Debug)]
pub(crate) struct Forward<'a> {
    /// The route's prefix when it has `strip_prefix = true` (a prefix of
    /// `/` strips nothing).
    pub(crate) strip_prefix: Option<&'a str>,
    /// The target's base path, prepended to forwarded paths (may be empty).
    pub(crate) base_path: &'a str,
    /// The peer as `X-Forwarded-For` writes it (`headers::forwarded_for`).
    pub(crate) forwarded_for: &'a HeaderValue,
    /// Whether the client's connection is TLS (`X-Forwarded-Proto`).
    pub(crate) tls: bool,
    /// The request's id, sent as `X-Request-ID`.
    pub(crate) request_id: &'a HeaderValue,
    /// The `Upgrade` offer the route allows (`headers::allowed_upgrade`):
    /// forwarded, with `Connection: upgrade`, instead of being dropped.
    pub(crate) upgrade: Option<&'a HeaderValue>,
    /// The identity headers the auth phase computed; written last, so no
    /// client header can stand in for them.
    pub(crate) injected: Vec<(HeaderName, HeaderValue)>,
}

/// Turns the client's request head into the upstream's, in place. The body
/// is the caller's (it is wrapped, not rewritten).
pub(crate) fn rewrite(parts: &mut Parts, f: Forward<'_>) -> Result<(), GatewayError> {
    let client_host = parts.headers.get(HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    // An HTTP/2 client can always take trailers; an HTTP/1.1 one says so.
    let trailers = parts.version == Version::HTTP_2 || headers::wants_trailers(&parts.headers);
    headers::strip_hop_by_hop(&mut parts.headers, f.upgrade.is_some());
    if let Some(offer) = f.upgrade {
        parts.headers.insert(UPGRADE, offer.clone());
    }
    headers::strip_for_upstream(&mut parts.headers);
    parts.headers.remove(EXPECT);
    if trailers {
        parts
            .headers
            .insert(TE, HeaderValue::from_static("trailers"));
    }
    headers::set_forwarded(&mut parts.headers, f.forwarded_for, f.tls, client_host);
    parts
        .headers
        .insert(&headers::X_REQUEST_ID, f.request_id.clone());
    for (name, value) in f.injected {
        parts.headers.insert(name, value);
    }
    parts.uri = upstream_uri(f.strip_prefix, f.base_path, &parts.uri)?;
    parts.version = Version::HTTP_11;
    Ok(())
}

/// The upstream request's URI, in origin form: the target's base path, then
/// the request's path (less `strip_prefix`) and query, byte for byte.
/// Reuses the request's path when nothing changes. The target's scheme and
/// authority are the client's to add (`UpstreamClient::send`): the
/// HTTP/1.1 pool writes origin form as it is, and copying the shared
/// authority into every request would make every worker write its
/// reference count.
fn upstream_uri(
    strip_prefix: Option<&str>,
    base_path: &str,
    uri: &Uri,
) -> Result<Uri, GatewayError> {
    let original = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let path_and_query = if strip_prefix.is_none() && base_path.is_empty() {
        original
    } else {
        let path = original.path();
        let rest = match strip_prefix {
            Some(prefix) if prefix != "/" => &path[prefix.len().min(path.len())..],
            _ => path,
        };
        let rest = if rest.is_empty() { "/" } else { rest };
        let mut s = String::with_capacity(
            base_path.len() + rest.len() + 1 + original.query().map_or(0, str::len),
        );
        s.push_str(base_path);
        s.push_str(rest);
        if let Some(q) = original.query() {
            s.push('?');
            s.push_str(q);
        }
        PathAndQuery::try_from(s).map_err(|_| GatewayError::BadRequest("Invalid request path."))?
    };
    Ok(Uri::from(path_and_query))
}

#[cfg(test)]
mod tests {
    use http::{Method, Request};

    use super::*;

    fn parts(method: Method, uri: &str, version: Version, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri(uri).version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn forward<'a>(
        strip_prefix: Option<&'a str>,
        base_path: &'a str,
        upgrade: Option<&'a HeaderValue>,
        injected: Vec<(HeaderName, HeaderValue)>,
    ) -> Forward<'a> {
        static PEER: HeaderValue = HeaderValue::from_static("10.0.0.9");
        static RID: HeaderValue = HeaderValue::from_static("rid-1");
        Forward {
            strip_prefix,
            base_path,
            forwarded_for: &PEER,
            tls: false,
            request_id: &RID,
            upgrade,
            injected,
        }
    }

    #[test]
    fn upstream_uri_table() {
        // (strip_prefix, base_path, client URI, upstream URI in origin form)
        let cases: &[(Option<&str>, &str, &str, &str)] = &[
            (None, "", "/api/x?q=1", "/api/x?q=1"),
            (Some("/api"), "", "/api/x?q=1", "/x?q=1"),
            (Some("/api"), "", "/api", "/"),
            (Some("/api"), "", "/api?q", "/?q"),
            (Some("/"), "", "/x", "/x"),
            (None, "/base", "/api/x", "/base/api/x"),
            (Some("/api"), "/base", "/api/x?a=%20b", "/base/x?a=%20b"),
            (Some("/api"), "/base", "/api", "/base/"),
            (None, "", "/a%2Fb/../c", "/a%2Fb/../c"),
            (None, "", "http://client-host/p?q", "/p?q"),
        ];
        for (strip, base, input, want) in cases {
            let mut p = parts(Method::GET, input, Version::HTTP_11, &[("host", "gw")]);
            rewrite(&mut p, forward(*strip, base, None, Vec::new())).unwrap();
            assert_eq!(p.uri.to_string(), *want, "{strip:?} {base:?} {input}");
        }
    }

    #[test]
    fn upstream_head_table() {
        let ws = HeaderValue::from_static("websocket");
        let user = (
            HeaderName::from_static("x-user-id"),
            HeaderValue::from_static("u-1"),
        );
        // (version, client headers, allowed upgrade, injected,
        //  headers upstream: name -> Some(value) or None for absent)
        type Case<'a> = (
            Version,
            &'a [(&'a str, &'a str)],
            Option<&'a HeaderValue>,
            Vec<(HeaderName, HeaderValue)>,
            &'a [(&'a str, Option<&'a str>)],
        );
        let cases: Vec<Case> = vec![
            (
                Version::HTTP_11,
                &[
                    ("host", "gw.example"),
                    ("connection", "keep-alive, x-secret"),
                    ("x-secret", "1"),
                    ("keep-alive", "timeout=5"),
                    ("expect", "100-continue"),
                    ("x-forwarded-for", "1.2.3.4"),
                    ("x-request-id", "client-chosen"),
                    ("accept", "text/plain"),
                ],
                None,
                Vec::new(),
                &[
                    ("host", None),
                    ("connection", None),
                    ("x-secret", None),
                    ("keep-alive", None),
                    ("expect", None),
                    ("te", None),
                    ("x-forwarded-for", Some("1.2.3.4, 10.0.0.9")),
                    ("x-forwarded-proto", Some("http")),
                    ("x-forwarded-host", Some("gw.example")),
                    ("x-request-id", Some("rid-1")),
                    ("accept", Some("text/plain")),
                ],
            ),
            (
                Version::HTTP_11,
                &[
                    ("host", "gw"),
                    ("connection", "upgrade"),
                    ("upgrade", "websocket"),
                    ("te", "trailers"),
                    ("x-user-id", "forged"),
                ],
                Some(&ws),
                vec![user.clone()],
                &[
                    ("upgrade", Some("websocket")),
                    ("connection", Some("upgrade")),
                    ("te", Some("trailers")),
                    ("x-user-id", Some("u-1")),
                ],
            ),
            (
                Version::HTTP_11,
                &[
                    ("host", "gw"),
                    ("connection", "upgrade"),
                    ("upgrade", "h2c"),
                ],
                None,
                Vec::new(),
                &[("upgrade", None), ("connection", None)],
            ),
            (
                Version::HTTP_2,
                &[("x-http-method-override", "DELETE")],
                None,
                Vec::new(),
                &[
                    ("te", Some("trailers")),
                    ("x-http-method-override", None),
                    ("x-forwarded-host", None),
                ],
            ),
        ];
        for (i, (version, client, upgrade, injected, want)) in cases.into_iter().enumerate() {
            let mut p = parts(Method::POST, "/p", version, client);
            rewrite(&mut p, forward(None, "", upgrade, injected)).unwrap();
            assert_eq!(p.method, Method::POST, "case {i}");
            assert_eq!(p.version, Version::HTTP_11, "case {i}");
            for (name, value) in want {
                assert_eq!(
                    p.headers.get(*name).map(|v| v.to_str().unwrap()),
                    *value,
                    "case {i}: {name}: {:?}",
                    p.headers
                );
            }
        }
    }
}
