//! `Authorization: Bearer <token>` extraction (RFC 6750 §2.1; the scheme is
//! case-insensitive per RFC 9110 §11.1).

use http::HeaderMap;
use http::header::AUTHORIZATION;

pub use crate::error::BearerError;

/// Extracts the bearer token (RFC 6750 §2.1:
/// `credentials = "Bearer" 1*SP b64token`, where this gateway accepts
/// exactly one space, as every client sends it).
///
/// `Ok(None)` when there is no `Authorization` header or it does not
/// start with `Bearer` (another scheme, e.g. `Basic …`); `Err(Repeated)`
/// when the header appears more than once; `Err(Malformed)` when it starts
/// with `Bearer` in any case but is not `Bearer`, one space, and a
/// `b64token` (`[A-Za-z0-9-._~+/]+=*`).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let mut all = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(BearerError::Repeated);
    }
    let bytes = value.as_bytes();
    if !bytes
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"bearer"))
    {
        return Ok(None);
    }
    let Some(token) = bytes[6..].strip_prefix(b" ") else {
        return Err(BearerError::Malformed);
    };
    if !token.is_ascii() {
        return Err(BearerError::NotAscii);
    }
    if !is_b64token(token) {
        return Err(BearerError::Malformed);
    }
    // Checked ASCII above, so this cannot fail.
    std::str::from_utf8(token)
        .map(Some)
        .map_err(|_| BearerError::NotAscii)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
/// (RFC 6750 §2.1). Every request with a token pays for this scan, so it
/// tests each byte without a branch, a chunk at a time, which the compiler
/// turns into vector compares.
fn is_b64token(t: &[u8]) -> bool {
    let body = t.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
    let chunks = t[..body].chunks_exact(16);
    let rest = chunks.remainder();
    body > 0
        && chunks.into_iter().all(|chunk| {
            chunk
                .iter()
                .fold(0u8, |bad, &b| bad | u8::from(!b64token_char(b)))
                == 0
        })
        && rest.iter().all(|&b| b64token_char(b))
}

/// A byte `b64token` allows before its trailing `=`s.
#[inline(always)]
fn b64token_char(c: u8) -> bool {
    let letter = (c | 0x20).wrapping_sub(b'a') < 26;
    let digit = c.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (c == b'-')
        | (c == b'.')
        | (c == b'_')
        | (c == b'~')
        | (c == b'+')
        | (c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn b64token_chars_are_exactly_rfc_6750s() {
        for c in 0..=255u8 {
            let want = c.is_ascii_alphanumeric() || b"-._~+/".contains(&c);
            assert_eq!(b64token_char(c), want, "byte {c:#04x}");
            // Also through the chunked scan, at every position of a chunk.
            for at in [0, 5, 31, 32, 40] {
                let mut t = vec![b'a'; 41];
                t[at] = c;
                // A trailing `=` is padding, allowed.
                let want = want || (c == b'=' && at == t.len() - 1);
                assert_eq!(is_b64token(&t), want, "byte {c:#04x} at {at}");
            }
        }
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn b64token_table_matches_the_rfc_grammar() {
        for b in 0..=255u8 {
            let rfc = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64token(&[b]), rfc, "byte {b:#04x}");
            assert_eq!(
                is_b64token(&[b, b'=', b'=']),
                rfc,
                "byte {b:#04x} then padding"
            );
        }
        assert!(!is_b64token(b"==="), "padding alone");
        assert!(!is_b64token(b"a=b"), "padding inside");
    }

    #[test]
    fn bearer_extraction_table() {
        type Case<'a> = (&'a [&'a [u8]], Result<Option<&'a str>, BearerError>);
        let cases: &[Case] = &[
            (&[], Ok(None)),
            (&[b"Basic dXNlcjpwYXNz"], Ok(None)),
            (&[b"Bearer abc.def.ghi"], Ok(Some("abc.def.ghi"))),
            (&[b"bearer abc.def.ghi"], Ok(Some("abc.def.ghi"))),
            (&[b"BEARER abc=="], Ok(Some("abc=="))),
            (&[b"Bearer a-b_c~d+e/f.g"], Ok(Some("a-b_c~d+e/f.g"))),
            (&[b"BEARER   abc "], Err(BearerError::Malformed)),
            (&[b"bearer  abc"], Err(BearerError::Malformed)),
            (&[b"Bearer\tabc"], Err(BearerError::Malformed)),
            (&[b"Bearer"], Err(BearerError::Malformed)),
            (&[b"Bearer "], Err(BearerError::Malformed)),
            (&[b"Bearer ="], Err(BearerError::Malformed)),
            (&[b"Bearerabc"], Err(BearerError::Malformed)),
            (&[b"Bearer abc def"], Err(BearerError::Malformed)),
            (&[b"Bearer a=b"], Err(BearerError::Malformed)),
            (&[b"Bear abc"], Ok(None)),
            (&[b"Basic"], Ok(None)),
            (&[b"Bearer caf\xc3\xa9"], Err(BearerError::NotAscii)),
            (&[b"Bearer a", b"Bearer b"], Err(BearerError::Repeated)),
            (&[b"Basic x", b"Bearer b"], Err(BearerError::Repeated)),
        ];
        for (input, want) in cases {
            let h = headers(input);
            assert_eq!(&bearer_token(&h), want, "{input:?}");
        }
    }
}
