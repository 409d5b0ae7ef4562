//! `Authorization: Bearer <token>` extraction (RFC 6750 §2.1; the scheme is
//! case-insensitive per RFC 9110 §11.1).

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// Why the `Authorization` header cannot be used; every variant maps to
/// 400 with `WWW-Authenticate: Bearer error="invalid_request"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// The header appears more than once: which one counts is ambiguous.
    #[error("the Authorization header is repeated")]
    Repeated,
    /// A Bearer credential that is not visible ASCII.
    #[error("the bearer token holds characters outside visible ASCII")]
    NotAscii,
}

/// Extracts the bearer token. `Ok(None)` when there is no `Authorization`
/// header or its scheme is not `Bearer`; `Err(Repeated)` when the header
/// appears more than once. Surrounding spaces are trimmed; an empty token
/// is returned as `""` (and then refused as malformed by verification).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let mut all = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(BearerError::Repeated);
    }
    let bytes = value.as_bytes();
    let scheme_len = bytes.iter().position(|b| *b == b' ').unwrap_or(bytes.len());
    if !bytes[..scheme_len].eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    let text = value.to_str().map_err(|_| BearerError::NotAscii)?;
    Ok(Some(text[scheme_len..].trim_matches(' ')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_extraction_table() {
        type Case<'a> = (&'a [&'a [u8]], Result<Option<&'a str>, BearerError>);
        let cases: &[Case] = &[
            (&[], Ok(None)),
            (&[b"Basic dXNlcjpwYXNz"], Ok(None)),
            (&[b"Bearer abc.def.ghi"], Ok(Some("abc.def.ghi"))),
            (&[b"bearer abc.def.ghi"], Ok(Some("abc.def.ghi"))),
            (&[b"BEARER   abc "], Ok(Some("abc"))),
            (&[b"Bearer"], Ok(Some(""))),
            (&[b"Bearerabc"], Ok(None)),
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
