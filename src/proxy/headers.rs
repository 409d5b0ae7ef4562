//! Header rewriting between client and upstream: pure functions, each with
//! the rule it implements.

use std::net::IpAddr;

use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// `X-Request-ID`.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `X-Process-Time`: seconds from request to response headers.
pub(crate) static X_PROCESS_TIME: HeaderName = HeaderName::from_static("x-process-time");
/// `X-Forwarded-For`.
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop headers of RFC 9110 §7.6.1, plus the non-standard ones
/// proxies have always dropped (`Keep-Alive`, `Proxy-Connection`). Parsed
/// names, so removing them costs a lookup and no parse. `Trailer` is not
/// on the list: it is end-to-end (RFC 9110 §6.6.2), and hyper's HTTP/1.1
/// encoder sends only the trailer fields it declares.
static HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Removes hop-by-hop headers (RFC 9110 §7.6.1): the fixed list and every
/// name listed in `Connection`. With `upgrade`, `Connection: upgrade` and
/// `Upgrade` are kept so a protocol switch can pass (RFC 9110 §7.8).
///
/// Runs twice per proxied request, so it avoids work: one pass over the
/// names finds which fixed-list headers are present (usually none on a
/// request, `Connection` on a response), only those are removed, and a
/// `Connection` token is parsed into a name only when such a header is
/// present and not already on the fixed list.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let mut present = 0u16;
    for k in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == k) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| {
            !HOP_BY_HOP
                .iter()
                .any(|h| h.as_str().eq_ignore_ascii_case(t))
        })
        .filter(|t| headers.contains_key(*t))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(&name);
    }
    let upgrade_value = if upgrade {
        headers.get(UPGRADE).cloned()
    } else {
        None
    };
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if let Some(u) = upgrade_value {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, u);
    }
}

/// True when an HTTP/1.1 request asks to switch protocols: `Upgrade`
/// present and `Connection` naming `upgrade` (RFC 9110 §7.8).
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// The protocol every route tunnels without listing it.
pub(crate) const WEBSOCKET: &str = "websocket";

/// The `Upgrade` value to forward: the client's offered protocols
/// (RFC 9110 §7.8, `name[/version]`, compared case-insensitively) that are
/// `websocket` or listed in `allowed` (a route's `upgrades`, lower-case),
/// in the client's order; `None` when none is, and the request is then
/// forwarded without `Upgrade`. A listed `name` allows every version of
/// it, a listed `name/version` that version only. `h2c` never passes:
/// configuration refuses to list it (RFC 9113 §3.1 deprecates it), and
/// its tunnel would carry requests that skip every identity check.
pub(crate) fn allowed_upgrade(headers: &HeaderMap, allowed: &[String]) -> Option<HeaderValue> {
    let permitted = |offer: &str| {
        let name = offer.split('/').next().unwrap_or(offer);
        if name.eq_ignore_ascii_case("h2c") {
            return false;
        }
        name.eq_ignore_ascii_case(WEBSOCKET)
            || allowed
                .iter()
                .any(|a| a.eq_ignore_ascii_case(offer) || a.eq_ignore_ascii_case(name))
    };
    let kept: Vec<&str> = headers
        .get_all(UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && permitted(t))
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join(", ")).ok()
}

/// True when a 101's `Upgrade` names one of the protocols `offered` (the
/// value forwarded by `allowed_upgrade`): an upstream may only switch to
/// what was asked for (RFC 9110 §7.8).
pub(crate) fn upgrade_was_offered(offered: &HeaderValue, response: &HeaderMap) -> bool {
    let offers: Vec<&str> = offered
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let chosen: Vec<&str> = response
        .get_all(UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    !chosen.is_empty()
        && chosen.iter().all(|c| {
            offers.iter().any(|o| {
                o.eq_ignore_ascii_case(c)
                    || o.split('/')
                        .next()
                        .is_some_and(|n| n.eq_ignore_ascii_case(c.split('/').next().unwrap_or(c)))
            })
        })
}

/// Drops `Content-Length` from a response head that also has
/// `Transfer-Encoding`: the transfer coding frames the body (RFC 9112
/// §6.3, rule 3), and a length forwarded beside it would make the
/// client-side encoder cut the body short. Returns true when it did, so
/// the caller can log the upstream's mistake.
pub(crate) fn drop_length_beside_transfer_encoding(headers: &mut HeaderMap) -> bool {
    if headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH) {
        headers.remove(CONTENT_LENGTH);
        return true;
    }
    false
}

/// True when `TE` asks for trailers; such requests keep `TE: trailers`
/// (the one TE value a proxy forwards, RFC 9110 §10.1.4).
pub(crate) fn wants_trailers(headers: &HeaderMap) -> bool {
    headers
        .get(TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
}

/// The request id to use: the client's `X-Request-ID` when it is sane
/// (1-128 characters of `[A-Za-z0-9._:+=/-]`), else a new UUID v4.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._:+=/-".contains(c))
        {
            return v.clone();
        }
    }
    // Made shared from the start (`from_owner`): the id is cloned into the
    // upstream request, the response and the log context, and a `Bytes`
    // made from a `Vec` would allocate again at its first clone.
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The peer's address as `X-Forwarded-For` writes it (IPv4-mapped IPv6
/// addresses in their IPv4 form). Computed once per connection.
pub(crate) fn forwarded_for(peer: IpAddr) -> HeaderValue {
    HeaderValue::try_from(peer.to_canonical().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Sets `X-Forwarded-For` (appending `peer`, from `forwarded_for`, to what
/// the client sent), `X-Forwarded-Proto` and `X-Forwarded-Host` (the host
/// the client asked for). These are the de-facto headers; RFC 7239
/// `Forwarded` is not sent.
pub(crate) fn set_forwarded(
    headers: &mut HeaderMap,
    peer: &HeaderValue,
    tls: bool,
    client_host: Option<HeaderValue>,
) {
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => {
            let mut joined = Vec::with_capacity(prev.len() + 2 + peer.len());
            joined.extend_from_slice(prev.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(peer.as_bytes());
            HeaderValue::from_maybe_shared(bytes::Bytes::from(joined)).ok()
        }
        _ => Some(peer.clone()),
    };
    if let Some(v) = xff {
        headers.insert(&X_FORWARDED_FOR, v);
    }
    headers.insert(
        &X_FORWARDED_PROTO,
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    match client_host {
        Some(h) => {
            headers.insert(&X_FORWARDED_HOST, h);
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
}

/// Removes every request header a client could forge an injected one
/// with: each injected name, and any spelling of it with `_` for `-`
/// (`X_User_ID`), which CGI-style servers (WSGI, PHP) map to the same
/// variable as `X-User-ID`. Runs on every request: the second pass only
/// when a header name holds an underscore at all.
pub fn strip_forgeable(headers: &mut HeaderMap, injected: &[HeaderName]) {
    if headers.keys().any(|k| injected.contains(k)) {
        for name in injected {
            headers.remove(name);
        }
    }
    if injected.is_empty() || !headers.keys().any(|k| k.as_str().contains('_')) {
        return;
    }
    let same = |a: &str, b: &str| {
        a.len() == b.len()
            && a.bytes()
                .zip(b.bytes())
                .all(|(x, y)| x == y || (matches!(x, b'-' | b'_') && matches!(y, b'-' | b'_')))
    };
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|k| injected.iter().any(|n| same(n.as_str(), k.as_str())))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
}

/// Client headers that tell an upstream (or a framework in front of it)
/// something only a proxy should: who the client is, or which method or
/// path to act on instead of the one the gateway routed and authorized.
/// `Forwarded` (RFC 7239) and `X-Real-IP` would let a client pick the
/// address an upstream sees, since the gateway appends only to
/// `X-Forwarded-For`; `X-HTTP-Method-Override` (and its siblings
/// `X-HTTP-Method`, `X-Method-Override`) sidesteps a route's `methods` on
/// upstreams that honour it; `X-Original-URL` and `X-Rewrite-URL` make
/// IIS and Symfony serve another path than the one routed.
static STEERING: [HeaderName; 7] = [
    HeaderName::from_static("forwarded"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
];

/// Removes framing and host headers the upstream client will set itself,
/// and the client's steering headers (see `STEERING`), on every route.
pub(crate) fn strip_for_upstream(headers: &mut HeaderMap) {
    headers.remove(HOST);
    headers.remove(TRANSFER_ENCODING);
    // One pass over the request's few headers instead of a hashed lookup
    // per steering name: most requests carry none of them.
    if headers.keys().any(|k| STEERING.contains(k)) {
        for name in &STEERING {
            headers.remove(name);
        }
    }
}

/// The client's address behind `trusted` proxies, from the peer and the
/// de-facto `X-Forwarded-For` list (each proxy appends the address it
/// received the request from; RFC 7239 §5.2 and §7.4 describe the same
/// chain for `Forwarded`, which this gateway strips instead of reading).
///
/// Only the entries trusted proxies appended can be believed, and those
/// are at the right end: so the answer is the peer when the peer is not
/// trusted; else the rightmost `X-Forwarded-For` entry (all header lines
/// in order, comma-separated) that is not in a trusted range; else,
/// when every entry is trusted, the leftmost one. An entry that is not an
/// address (`unknown`, a garbled value) ends the walk: what is left of it
/// was not written by a trusted proxy, so the last trusted hop before it
/// is the answer. `1.2.3.4:5678` and `[::1]:80` are read without their
/// port; IPv4-mapped IPv6 addresses are compared in their IPv4 form.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    // Right to left, without collecting: the header's lines are walked
    // from the last, each line's entries from the last.
    let lines = headers.get_all(&X_FORWARDED_FOR).iter().rev();
    for entry in lines.flat_map(|l| l.to_str().unwrap_or("").rsplit(',')) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some(ip) = parse_node(entry) else {
            return client;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            return client;
        }
    }
    client
}

/// An `X-Forwarded-For` entry as an address: `1.2.3.4`, `::1`,
/// `1.2.3.4:5678`, `[::1]` or `[::1]:80`.
fn parse_node(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = entry.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// `X-Process-Time` as the Python gateway sent it: seconds, as a decimal
/// with six places (microseconds, rounded), formatted on the stack.
pub(crate) fn process_time(elapsed: std::time::Duration) -> HeaderValue {
    let micros = (elapsed.as_nanos() + 500) / 1000;
    // Written right to left: 6 decimals, ".", then the seconds (u128
    // seconds need at most 39 digits), without the formatting machinery.
    let mut buf = [0u8; 48];
    let mut at = buf.len();
    let (mut secs, mut frac) = (micros / 1_000_000, micros % 1_000_000);
    for _ in 0..6 {
        at -= 1;
        buf[at] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    at -= 1;
    buf[at] = b'.';
    loop {
        at -= 1;
        buf[at] = b'0' + (secs % 10) as u8;
        secs /= 10;
        if secs == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&buf[at..]).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("te", "gzip"),
            ("trailer", "x"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("x-end-to-end", "kept"),
            ("authorization", "Bearer kept"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["x-end-to-end", "trailer", "authorization"]);
    }

    #[test]
    fn upgrade_survives_when_asked() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(is_upgrade_request(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["sec-websocket-key"], "k");
        assert!(!is_upgrade_request(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn only_websocket_and_listed_upgrades_are_forwarded() {
        let listed = ["custom-proto".to_owned(), "v/2".to_owned()];
        let cases: &[(&str, &[String], Option<&str>)] = &[
            ("websocket", &[], Some("websocket")),
            ("WebSocket", &[], Some("WebSocket")),
            ("h2c", &[], None),
            ("h2c", &["h2c".to_owned()], None),
            ("H2C/1", &listed, None),
            ("h2c, websocket", &[], Some("websocket")),
            ("custom-proto", &[], None),
            ("Custom-Proto/3", &listed, Some("Custom-Proto/3")),
            ("v/2", &listed, Some("v/2")),
            ("v/3", &listed, None),
            ("TLS/1.0, custom-proto", &listed, Some("custom-proto")),
            ("", &listed, None),
        ];
        for (offer, allowed, want) in cases {
            let h = map(&[("upgrade", offer)]);
            let got = allowed_upgrade(&h, allowed);
            assert_eq!(
                got.as_ref().map(|v| v.to_str().unwrap()),
                *want,
                "{offer:?} with {allowed:?}"
            );
        }
        assert_eq!(allowed_upgrade(&HeaderMap::new(), &listed), None);
    }

    #[test]
    fn a_101_must_name_an_offered_protocol() {
        let offered = HeaderValue::from_static("websocket, custom-proto");
        for (chosen, ok) in [
            ("websocket", true),
            ("WebSocket", true),
            ("custom-proto/2", true),
            ("h2c", false),
            ("websocket, h2c", false),
            ("", false),
        ] {
            let h = map(&[("upgrade", chosen)]);
            assert_eq!(upgrade_was_offered(&offered, &h), ok, "{chosen:?}");
        }
        assert!(!upgrade_was_offered(&offered, &HeaderMap::new()));
    }

    #[test]
    fn transfer_encoding_wins_over_content_length() {
        let mut h = map(&[("content-length", "5"), ("transfer-encoding", "chunked")]);
        assert!(drop_length_beside_transfer_encoding(&mut h));
        assert!(!h.contains_key("content-length"));
        assert_eq!(h["transfer-encoding"], "chunked");
        for pairs in [
            &[("content-length", "5")][..],
            &[("transfer-encoding", "chunked")],
        ] {
            let mut h = map(pairs);
            assert!(!drop_length_beside_transfer_encoding(&mut h));
            assert_eq!(h.len(), 1);
        }
    }

    #[test]
    fn request_id_keeps_sane_values_only() {
        assert_eq!(request_id(&map(&[("x-request-id", "abc-123")])), "abc-123");
        for insane in ["", "has space", "quote\"", &"x".repeat(129)] {
            let id = request_id(&map(&[("x-request-id", insane)]));
            assert_ne!(id, insane);
            assert_eq!(id.len(), 36, "a UUID for {insane:?}");
        }
        assert_eq!(request_id(&HeaderMap::new()).len(), 36);
    }

    #[test]
    fn forwarded_headers() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "forged"),
        ]);
        set_forwarded(
            &mut h,
            &forwarded_for("127.0.0.1".parse().unwrap()),
            false,
            Some(HeaderValue::from_static("gw.example:8080")),
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "gw.example:8080");
        let mut h = HeaderMap::new();
        set_forwarded(
            &mut h,
            &forwarded_for("::ffff:10.0.0.1".parse().unwrap()),
            true,
            None,
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    #[test]
    fn client_ip_is_the_rightmost_untrusted_forwarded_for_entry() {
        let nets = |list: &[&str]| -> Vec<ipnet::IpNet> {
            list.iter().map(|n| n.parse().unwrap()).collect()
        };
        let lb = ["10.0.0.0/8", "127.0.0.0/8", "fd00::/8"];
        // (peer, X-Forwarded-For lines, trusted, expected)
        let cases: &[(&str, &[&str], &[&str], &str)] = &[
            // Nothing trusted: the peer, whatever the header says.
            ("127.0.0.1", &["203.0.113.9"], &[], "127.0.0.1"),
            ("203.0.113.5", &["10.0.0.1"], &lb, "203.0.113.5"),
            // Trusted peer, no header: the peer.
            ("10.0.0.2", &[], &lb, "10.0.0.2"),
            // The rightmost entry outside the trusted ranges; what a client
            // wrote further left is ignored.
            (
                "10.0.0.2",
                &["198.51.100.1, 203.0.113.9, 10.1.2.3"],
                &lb,
                "203.0.113.9",
            ),
            (
                "10.0.0.2",
                &["198.51.100.1", "203.0.113.9,10.1.2.3"],
                &lb,
                "203.0.113.9",
            ),
            ("10.0.0.2", &["203.0.113.9"], &lb, "203.0.113.9"),
            // Every entry trusted: the leftmost.
            ("10.0.0.2", &["10.9.9.9, 10.1.1.1"], &lb, "10.9.9.9"),
            // Garbage ends the walk at the last trusted hop.
            (
                "10.0.0.2",
                &["203.0.113.9, unknown, 10.1.1.1"],
                &lb,
                "10.1.1.1",
            ),
            ("10.0.0.2", &["nonsense"], &lb, "10.0.0.2"),
            // Ports, brackets, IPv6, IPv4-mapped peers and entries.
            (
                "10.0.0.2",
                &["203.0.113.9:4711, 10.1.1.1"],
                &lb,
                "203.0.113.9",
            ),
            ("10.0.0.2", &["[2001:db8::1]:443"], &lb, "2001:db8::1"),
            ("10.0.0.2", &["[2001:db8::2]"], &lb, "2001:db8::2"),
            ("fd00::1", &["2001:db8::3, fd12::1"], &lb, "2001:db8::3"),
            (
                "::ffff:10.0.0.2",
                &["::ffff:203.0.113.9"],
                &lb,
                "203.0.113.9",
            ),
            // Empty entries are skipped.
            ("10.0.0.2", &["203.0.113.9, , "], &lb, "203.0.113.9"),
        ];
        for (peer, lines, trusted, want) in cases {
            let mut h = HeaderMap::new();
            for l in *lines {
                h.append(&X_FORWARDED_FOR, HeaderValue::from_str(l).unwrap());
            }
            let got = client_ip(peer.parse().unwrap(), &h, &nets(trusted));
            assert_eq!(got.to_string(), *want, "{peer} {lines:?} {trusted:?}");
        }
    }

    #[test]
    fn steering_headers_are_stripped() {
        let mut h = map(&[
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("x-http-method-override", "DELETE"),
            ("x-http-method", "DELETE"),
            ("x-method-override", "DELETE"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("host", "gw"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-kept", "1"),
        ]);
        strip_for_upstream(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["x-forwarded-for", "x-kept"]);
    }

    #[test]
    fn forgeable_spellings_of_injected_headers_go() {
        let mut h = map(&[
            ("x-user-id", "forged"),
            ("x_user_id", "forged"),
            ("x-user_id", "forged"),
            ("x_company-id", "forged"),
            ("x_request_id", "kept"),
            ("x-user-idx", "kept"),
            ("content-type", "kept"),
        ]);
        let injected = [
            HeaderName::from_static("x-user-id"),
            HeaderName::from_static("x-company-id"),
        ];
        strip_forgeable(&mut h, &injected);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-type", "x-user-idx", "x_request_id"]);
    }

    #[test]
    fn process_time_has_six_decimals() {
        use std::time::Duration;
        for (d, want) in [
            (Duration::ZERO, "0.000000"),
            (Duration::from_nanos(499), "0.000000"),
            (Duration::from_nanos(1_500), "0.000002"),
            (Duration::from_micros(1_234_567), "1.234567"),
            (Duration::from_nanos(999_999_600), "1.000000"),
            (Duration::from_secs(120), "120.000000"),
        ] {
            assert_eq!(process_time(d), want, "{d:?}");
        }
        // Same text as the `format!("{:.6}")` it replaces, away from ties.
        for n in [0u64, 7, 1_000, 12_345_678, 987_654_321_987] {
            let d = Duration::from_nanos(n * 1_000 + 123);
            assert_eq!(process_time(d), format!("{:.6}", d.as_secs_f64()));
        }
    }

    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let ids: std::collections::HashSet<_> = (0..1000)
            .map(|_| {
                let id = request_id(&HeaderMap::new());
                let u = uuid::Uuid::parse_str(id.to_str().unwrap()).unwrap();
                assert_eq!(u.get_version_num(), 4);
                u
            })
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn connection_listed_names_go_whatever_their_case() {
        let mut h = map(&[
            ("connection", "Keep-Alive, X-Hop, x-absent, close"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("x-kept", "1"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["x-kept"]);
    }
}
