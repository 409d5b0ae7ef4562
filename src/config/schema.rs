//! The key schema of `gateway.toml`, checked on the parsed document before
//! deserializing so that every unknown key is reported at once, with the
//! closest known key as a suggestion.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::Sink;

const ROOT: &[&str] = &["server", "admin", "auth", "cors", "routes"];
const SERVER: &[&str] = &[
    "listen",
    "connect_timeout",
    "request_timeout",
    "shutdown_grace",
    "max_body",
    "tls",
    "header_read_timeout",
    "max_connections",
    "max_upstream_connections",
    "trusted_proxies",
    "tunnel_idle_timeout",
];
const TLS: &[&str] = &["cert", "key"];
const ADMIN: &[&str] = &["listen"];
const AUTH: &[&str] = &[
    "audience",
    "issuer",
    "algorithms",
    "secret",
    "secret_file",
    "jwks_url",
    "leeway",
    "required_claims",
];
const CORS: &[&str] = &[
    "allowed_origins",
    "allow_credentials",
    "max_age",
    "allow_headers",
    "expose_headers",
];
const ROUTE: &[&str] = &[
    "name",
    "prefix",
    "upstream",
    "auth",
    "strip_prefix",
    "methods",
    "cors_origins",
    "timeout",
    "http2",
    "ca_file",
    "inject",
    "upgrades",
];
const INJECT_TABLE: &[&str] = &["claim", "required"];

/// Reports every key the schema does not know.
pub fn check(doc: &DeTable<'_>, sink: &mut Sink<'_>) {
    check_table(doc, ROOT, "", sink);
    for (key, value) in doc {
        let section: &[&str] = match key.get_ref().as_ref() {
            "server" => SERVER,
            "admin" => ADMIN,
            "auth" => AUTH,
            "cors" => CORS,
            "routes" => {
                if let DeValue::Array(routes) = value.get_ref() {
                    for route in routes.iter() {
                        if let DeValue::Table(t) = route.get_ref() {
                            check_route(t, sink);
                        }
                    }
                }
                continue;
            }
            _ => continue,
        };
        if let DeValue::Table(t) = value.get_ref() {
            let name = key.get_ref().as_ref();
            check_table(t, section, name, sink);
            if name == "server"
                && let Some(DeValue::Table(tls)) = get(t, "tls")
            {
                check_table(tls, TLS, "server.tls", sink);
            }
        }
    }
}

fn check_route(t: &DeTable<'_>, sink: &mut Sink<'_>) {
    check_table(t, ROUTE, "[[routes]]", sink);
    if let Some(DeValue::Table(inject)) = get(t, "inject") {
        for (_, v) in inject {
            if let DeValue::Table(entry) = v.get_ref() {
                check_table(entry, INJECT_TABLE, "an inject entry", sink);
            }
        }
    }
}

fn get<'a, 'i>(t: &'a DeTable<'i>, key: &str) -> Option<&'a DeValue<'i>> {
    t.iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v.get_ref())
}

fn check_table(t: &DeTable<'_>, known: &[&str], section: &str, sink: &mut Sink<'_>) {
    for (key, _) in t {
        let k: &Spanned<_> = key;
        let name = k.get_ref().as_ref();
        if known.contains(&name) {
            continue;
        }
        let place = if section.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in {section}")
        };
        let hint = match closest(name, known) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; known keys: {}", known.join(", ")),
        };
        sink.error(k.span(), format!("unknown key `{name}` {place}{hint}"));
    }
}

/// The known key nearest to `name` by edit distance, if near enough.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("upstrem", ROUTE), Some("upstream"));
        assert_eq!(closest("Strip-Prefix", ROUTE), Some("strip_prefix"));
        assert_eq!(closest("zzzzzz", ROUTE), None);
        assert_eq!(closest("secret_fle", AUTH), Some("secret_file"));
    }
}
