//! Route matching: longest prefix on whole path segments, compiled once per
//! config. `/api/v1/ingest` matches `/api/v1/ingest` and
//! `/api/v1/ingest/x`, never `/api/v1/ingestion`; `/` matches everything.
//! Matching allocates nothing: routes are kept longest prefix first and
//! scanned (a gateway holds tens of routes, where a scan beats a trie).

/// Indexes of routes in match order.
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// (prefix, index into the runtime's route list), longest prefix first.
    entries: Vec<(String, usize)>,
}

impl Router {
    /// Builds a router over prefixes given in route order.
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a str>) -> Router {
        let mut entries: Vec<(String, usize)> = prefixes
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p.to_owned(), i))
            .collect();
        entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        Router { entries }
    }

    /// The index of the route for `path` (the request's path, without the
    /// query), if any.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.entries
            .iter()
            .find(|(p, _)| segment_prefix(path, p))
            .map(|(_, i)| *i)
    }
}

/// True when `prefix` is `path` or a whole-segment prefix of it.
pub(crate) fn segment_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Why a path is refused, if it is: a spelling that an upstream could read
/// as another path than the one the router matched, and so lead it outside
/// the route the gateway authorized:
/// - a `.` or `..` segment, literal or percent-encoded (normalized away);
/// - an empty segment, `//` (merged by nginx, among others);
/// - a percent-encoded `/` or `\` (decoded into a separator by many
///   frameworks, Starlette included);
/// - a percent-encoded unreserved character (`%61` for `a`; RFC 3986
///   §6.2.2.2: such an encoding means the same as the character, so an
///   upstream decodes it, while the router compares bytes);
/// - a literal `\` (a separator to WHATWG URL parsers, Node's among them,
///   and to IIS: `/x/..\ingest` becomes `/ingest`);
/// - a NUL, raw or `%00` (C-based servers end the path there);
/// - any `;` (a matrix parameter, RFC 3986 §3.3: Tomcat and Spring strip
///   it, so `/x/..;/ingest` is `/ingest` to them, while most other servers
///   keep it; Nyro's services use none). An encoded `%3B` is data and
///   passes.
///
/// One pass over the bytes; the usual path has no `%` and no `//`.
pub fn path_problem(path: &str) -> Option<&'static str> {
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                return Some("Path contains an empty segment (//).");
            }
            b'\\' => return Some("Path contains a backslash."),
            b';' => return Some("Path contains a semicolon (matrix parameter)."),
            0 => return Some("Path contains a NUL byte."),
            b'%' => {
                let decoded = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match decoded {
                    Some(b'/' | b'\\') => return Some("Path contains an encoded slash."),
                    Some(0) => return Some("Path contains an encoded NUL byte (%00)."),
                    Some(b'.') => {} // a dot segment only when alone; see below
                    Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'~') => {
                        return Some(
                            "Path contains a percent-encoded character that needs no encoding.",
                        );
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        i += 1;
    }
    has_dot_segment(path).then_some("Path contains dot segments.")
}

/// True when the path holds a `.` or `..` segment, literal or
/// percent-encoded.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|seg| {
        let s = seg.as_bytes();
        let is_dot = |b: &[u8]| b == b"." || b.eq_ignore_ascii_case(b"%2e");
        match s.len() {
            1 | 3 => is_dot(s),
            2 => s == b"..",
            4 => (is_dot(&s[..1]) && is_dot(&s[1..])) || (is_dot(&s[..3]) && is_dot(&s[3..])),
            6 => is_dot(&s[..3]) && is_dot(&s[3..]),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_whole_segment_prefix_wins() {
        let r = Router::new(["/api/v1/ingest", "/api/v1/query", "/api", "/api/v1/auth"]);
        let cases = [
            ("/api/v1/ingest", Some(0)),
            ("/api/v1/ingest/", Some(0)),
            ("/api/v1/ingest/x/y", Some(0)),
            ("/api/v1/ingestion", Some(2)),
            ("/api/v1/query?x", Some(2)), // the query is never part of the path given here
            ("/api/v1/auth/login", Some(3)),
            ("/api", Some(2)),
            ("/apix", None),
            ("/", None),
            ("/other", None),
        ];
        for (path, want) in cases {
            assert_eq!(r.find(path), want, "{path}");
        }
    }

    #[test]
    fn root_prefix_is_the_catch_all() {
        let r = Router::new(["/", "/api"]);
        assert_eq!(r.find("/anything"), Some(0));
        assert_eq!(r.find("/api/x"), Some(1));
        assert_eq!(r.find("/"), Some(0));
    }

    #[test]
    fn dot_segments() {
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a/..",
            "/a/%2e%2e/b",
            "/a/%2E./b",
            "/a/.%2e",
            "/a/%2e",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for ok in ["/a/b", "/a/.well-known", "/a/...", "/a/b.c", "/a/%2e%2e%2e"] {
            assert!(!has_dot_segment(ok), "{ok}");
        }
    }

    #[test]
    fn paths_an_upstream_could_read_otherwise_are_refused() {
        for (bad, why) in [
            ("/a/../b", "dot segments"),
            ("/a/%2E%2e/b", "dot segments"),
            ("/api/v1//ingest", "empty segment"),
            ("//api/v1/ingest", "empty segment"),
            ("/api/v1/ingest//", "empty segment"),
            ("/api%2Fv1/ingest", "encoded slash"),
            ("/api/v1%2fingest", "encoded slash"),
            ("/api/v1%5Cingest", "encoded slash"),
            ("/%61pi/v1/ingest", "needs no encoding"),
            ("/api/v1/%69ngest/x", "needs no encoding"),
            ("/api/v1/ingest/%7E", "needs no encoding"),
            ("/a/%2D%5F%30", "needs no encoding"),
            ("/api/v1/x/..\\ingest/a", "backslash"),
            ("/a\\b", "backslash"),
            ("/a/b%00", "NUL"),
            ("/a/b\0c", "NUL"),
            ("/a/b;c", "semicolon"),
            ("/a/..;/b", "semicolon"),
            ("/a;/b", "semicolon"),
        ] {
            let got = path_problem(bad).unwrap_or_else(|| panic!("{bad} passed"));
            assert!(got.contains(why), "{bad}: {got}");
        }
        for ok in [
            "/",
            "/api/v1/ingest/",
            "/api/v1/ingest/a%20b/%E2%9C%93/c",
            "/a/b%3Bc",
            "/a/%2e%2e%2e",
            "/a/100%25",
            "/a/%",
            "/a/%zz",
            "/a/%3A%40%2B",
        ] {
            assert_eq!(path_problem(ok), None, "{ok}");
        }
    }
}
