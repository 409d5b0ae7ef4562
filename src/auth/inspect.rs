//! Helpers for `token inspect`: decoding without verifying, times for
//! people, and advice on each refusal in words a new user understands.

use serde_json::Value;

use super::TokenError;

/// A token's header and claims, decoded but NOT verified.
#[derive(Debug, Clone)]
pub(crate) struct Unverified {
    /// The JOSE header.
    pub(crate) header: Value,
    /// The payload.
    pub(crate) claims: Value,
}

/// Decodes header and payload without checking anything else (so even an
/// `alg: none` token, or one over the gateway's 16 KiB cap, can be shown).
/// Errors name the broken part. The decoding is the verifier's own
/// (`verify::split`), so the two cannot read a token differently.
pub(crate) fn decode_unverified(token: &str) -> Result<Unverified, TokenError> {
    let parts = super::verify::split(token)?;
    Ok(Unverified {
        header: parts.header?,
        claims: parts.claims?,
    })
}

/// `2025-06-01 10:00:00 UTC`.
pub(crate) fn format_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A compact span: `40s`, `55m`, `3h5m`, `26h`, `3d`.
pub(crate) fn compact_span(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3_599 => format!("{}m", secs / 60),
        3_600..=35_999 if secs % 3600 >= 60 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        3_600..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// `in 55m` or `3h ago` (`expired 3h ago` for `exp`).
pub(crate) fn relative(claim: &str, unix: i64, now: i64) -> String {
    let d = unix - now;
    if d > 0 {
        format!("in {}", compact_span(d.unsigned_abs()))
    } else if claim == "exp" {
        format!("expired {} ago", compact_span(d.unsigned_abs()))
    } else {
        format!("{} ago", compact_span(d.unsigned_abs()))
    }
}

/// What a person can do about a refusal.
pub(crate) fn hint(err: &TokenError) -> Option<&'static str> {
    Some(match err {
        TokenError::Expired { .. } => {
            "Tokens are short-lived: its exp (expiry time) has passed, so every route answers 401. \
             Sign in again or refresh the session to get a new access token \
             (`nyro-gw token mint` makes one for tests)."
        }
        TokenError::NotYetValid { .. } => {
            "Its nbf (not-before time) is in the future: the issuer's clock or this machine's is off. \
             A small [auth].leeway absorbs clock skew."
        }
        TokenError::Audience { .. } => {
            "The aud (audience) claim says which API the token is meant for; the gateway accepts only \
             the audiences listed in [auth].audience. Supabase user tokens carry \"authenticated\". \
             Use a token meant for this API, or change [auth].audience."
        }
        TokenError::Issuer { .. } | TokenError::IssuerNotString { .. } => {
            "The iss claim names who issued the token and must equal [auth].issuer exactly \
             (for Supabase: https://<project>.supabase.co/auth/v1). The token may come from another project."
        }
        TokenError::BadSignature => {
            "The token was not signed by a key this config trusts: check that [auth].secret is this \
             Supabase project's JWT secret (or jwks_url this project's JWKS), or the token was altered."
        }
        TokenError::UnknownKid(_) => {
            "The kid (key id) names a key the JWKS does not publish: the token comes from another \
             project, or its key was rotated out."
        }
        TokenError::KeysUnavailable => {
            "The JWKS could not be fetched, so asymmetric tokens cannot be checked yet."
        }
        TokenError::AlgorithmNotAllowed(_) | TokenError::Unsigned => {
            "Only the algorithms in [auth].algorithms are accepted (\"none\" never is). Supabase's \
             legacy secret signs HS256; its asymmetric signing keys use ES256 or RS256."
        }
        TokenError::KeyAlgorithmMismatch { .. } => {
            "The key named by kid is published for another algorithm; a token may not choose how its key is used."
        }
        TokenError::MissingClaim(_) => {
            "Every token must carry exp and aud (and iss when [auth].issuer is set), plus the claims \
             listed in [auth].required_claims (default: sub, aud, exp); an empty or blank string \
             counts as missing."
        }
        TokenError::ProjectKey(_) => {
            "The anon and service_role keys identify the Supabase project, not a user. Send the \
             access_token of a signed-in user's session instead."
        }
        TokenError::TooLarge => {
            "The gateway refuses tokens over 16 KiB before reading them; a Supabase access token \
             is about 1 KiB. Large custom claims (e.g. added by an auth hook) are the usual cause: \
             keep claims small, and look data up server-side instead."
        }
        TokenError::Malformed(_) | TokenError::Critical | TokenError::NoKeyForAlgorithm(_) => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn utc_and_relative_times() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_735_689_599), "2024-12-31 23:59:59 UTC");
        assert_eq!(relative("exp", 1_000 + 3_300, 1_000), "in 55m");
        assert_eq!(relative("exp", 1_000, 1_000 + 3 * 3600), "expired 3h ago");
        assert_eq!(relative("iat", 1_000, 1_040), "40s ago");
        assert_eq!(compact_span(3_900), "1h5m");
        assert_eq!(compact_span(3 * 86_400), "3d");
    }

    #[test]
    fn decodes_alg_none_and_reports_broken_parts() {
        let t = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#)
        );
        let u = decode_unverified(&t).unwrap();
        assert_eq!(u.header["alg"], "none");
        assert_eq!(u.claims["sub"], "x");
        assert_eq!(
            decode_unverified("a.%%.c").unwrap_err().to_string(),
            "malformed token: the header is not base64url"
        );
    }

    /// Inspect's decoding is the verifier's: where inspect cannot decode a
    /// token the verifier refuses it for the same reason, and where the
    /// verifier decodes one inspect shows the same header and claims.
    #[test]
    fn inspect_and_the_verifier_decode_alike() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let (h, p) = (enc(r#"{"alg":"HS256"}"#), enc(r#"{"sub":"x"}"#));
        let tokens = [
            format!("{h}.{p}.c2ln"),
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.x"),
            format!("%%.{p}.c2ln"),
            format!("{h}.%%.c2ln"),
            format!("{}.{p}.c2ln", enc("not json")),
            format!("{h}.{}.c2ln", enc("{")),
            "a.b.c".to_owned(),
        ];
        for t in &tokens {
            match (decode_unverified(t), super::super::verify::decode_parts(t)) {
                (Ok(u), Ok(d)) => {
                    assert_eq!(u.header, Value::Object(d.header), "{t}");
                    assert_eq!(u.claims, Value::Object(d.claims), "{t}");
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{t}"),
                (Err(a), Ok(_)) => panic!("{t}: inspect cannot decode ({a}), the verifier can"),
                (Ok(_), Err(b)) => {
                    panic!("{t}: the verifier refuses ({b}) what inspect decodes")
                }
            }
        }
    }
}
