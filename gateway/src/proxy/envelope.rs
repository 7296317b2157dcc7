//! The request envelope, checked before the body is parsed: a bearer token of the right form,
//! a JWT content type, and a body within the size bound, read whole under a deadline and never
//! past the bound.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use http::HeaderMap;
use pingora::proxy::Session;

use crate::checks;
use crate::reason::Reason;
use crate::rejection::Rejection;

/// Longest accepted bearer token.
pub const MAX_TOKEN_LEN: usize = 8192;

const BEARER_CHALLENGE: &str = "Bearer realm=\"dcrgate\"";
/// A malformed `Authorization` header: the challenge names the same `error` as the body
/// (`invalid_token`, with the 401).
const BEARER_INVALID: &str = crate::rejection::BEARER_INVALID_TOKEN;

/// Check `Authorization: Bearer <b64token>` (RFC 6750 §2.1). The token itself is not verified
/// here and never logged.
pub fn check_bearer(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        let missing = headers.get(http::header::AUTHORIZATION).is_none();
        let (challenge, reason, text) = if missing {
            (
                BEARER_CHALLENGE,
                Reason::BearerMissing,
                "an Authorization: Bearer access token is required",
            )
        } else {
            (
                BEARER_INVALID,
                Reason::BearerMalformed,
                "exactly one Authorization header is allowed",
            )
        };
        return Err(Rejection::new(reason, text)
            .header("WWW-Authenticate", challenge)
            .closing());
    };
    let malformed = || {
        Rejection::new(
            Reason::BearerMalformed,
            "the Authorization header must be `Bearer <token>`",
        )
        .header("WWW-Authenticate", BEARER_INVALID)
        .closing()
    };
    let bytes = value.as_bytes();
    if bytes.len() < 8 || !bytes[..7].eq_ignore_ascii_case(b"bearer ") {
        return Err(malformed());
    }
    let token = &bytes[7..];
    let b64char =
        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
    let body_len = token.iter().take_while(|b| b64char(b)).count();
    let well_formed = body_len > 0
        && token.len() <= MAX_TOKEN_LEN
        && token[body_len..].iter().all(|b| *b == b'=');
    if !well_formed {
        return Err(malformed());
    }
    // Every byte was checked to be ASCII above.
    std::str::from_utf8(token).map_err(|_| malformed())
}

/// `GET` and `DELETE` carry no body: a declared one is refused rather than dropped silently.
pub fn check_no_body(headers: &HeaderMap) -> Result<(), Rejection> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes().trim_ascii() != b"0");
    if declared || headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Err(Rejection::new(
            Reason::BodyNotAllowed,
            "GET and DELETE on /register/{ClientId} take no body",
        )
        .closing());
    }
    Ok(())
}

/// Bound the request head: at most `max_headers` header fields and `max_bytes` of names and
/// values, so an edge request cannot hand the registry arbitrary client-chosen bytes (431).
/// (A head with both Content-Length and Transfer-Encoding never gets here with both: pingora
/// frames it by Transfer-Encoding, drops Content-Length and closes the connection after the
/// answer, RFC 9112 §6.1 and §6.3.)
pub fn check_head(
    headers: &HeaderMap,
    max_headers: usize,
    max_bytes: usize,
) -> Result<(), Rejection> {
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > max_headers || bytes > max_bytes {
        return Err(Rejection::new(
        Reason::HeaderTooLarge,
            format!(
                "the request head is larger than allowed ({} header fields, {bytes} bytes; at most {max_headers} and {max_bytes})",
                headers.len()
            ),
        )
        .closing());
    }
    Ok(())
}

/// Check the content type is `application/jwt` or `application/jose` (parameters allowed).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let ok = crate::media_type::is_one_of(headers, &["application/jwt", "application/jose"]);
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            Reason::ContentType,
            "the body must be a JWT sent as application/jwt or application/jose",
        )
        .closing())
    }
}

/// Refuse a declared Content-Length above the bound before reading anything.
pub fn check_declared_length(headers: &HeaderMap, max: usize) -> Result<(), Rejection> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) => checks::body_size(usize::try_from(n).unwrap_or(usize::MAX), max),
        None => Ok(()),
    }
}

/// The answer to a body that could not be read (the connection failed under it).
pub fn unreadable() -> Rejection {
    Rejection::new(Reason::BodyUnreadable, "the request body could not be read").closing()
}

/// Read the whole body, at most `max` bytes, within `deadline`.
pub async fn read_body(
    session: &mut Session,
    max: usize,
    deadline: Duration,
) -> Result<Bytes, Rejection> {
    let read = async {
        let mut buf = BytesMut::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    checks::body_size(buf.len().saturating_add(chunk.len()), max)?;
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(buf.freeze()),
                Err(_) => return Err(unreadable()),
            }
        }
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(r) => r,
        Err(_) => Err(Rejection::new(
            Reason::BodyTimeout,
            format!(
                "the request body did not arrive within {} ms",
                deadline.as_millis()
            ),
        )
        .closing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::proxy::test_headers as headers;

    #[test]
    fn bearer_forms() {
        assert!(check_bearer(&headers(&[("authorization", "Bearer abc.DEF-_~+/==")])).is_ok());
        assert!(check_bearer(&headers(&[("authorization", "bearer abc")])).is_ok());
        for bad in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer =abc",
            "Bearer ab=c",
            "Bearerabc",
        ] {
            let r = check_bearer(&headers(&[("authorization", bad)])).unwrap_err();
            assert_eq!(
                (r.status(), r.reason.id()),
                (401, "bearer_malformed"),
                "{bad}"
            );
            assert!(r
                .headers
                .iter()
                .any(|(n, v)| *n == "WWW-Authenticate" && v.starts_with("Bearer")));
        }
        let r = check_bearer(&headers(&[])).unwrap_err();
        assert_eq!(r.reason.id(), "bearer_missing");
        let two = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(
            check_bearer(&two).unwrap_err().reason.id(),
            "bearer_malformed"
        );
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert!(check_bearer(&headers(&[("authorization", &long)])).is_err());
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/jwt",
            "application/JOSE",
            "application/jwt; charset=utf-8",
        ] {
            assert!(
                check_content_type(&headers(&[("content-type", ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in ["application/json", "text/plain", "application/jwt+json"] {
            assert_eq!(
                check_content_type(&headers(&[("content-type", bad)]))
                    .unwrap_err()
                    .status(),
                415
            );
        }
        assert_eq!(check_content_type(&headers(&[])).unwrap_err().status(), 415);
    }

    #[test]
    fn declared_length() {
        assert!(check_declared_length(&headers(&[("content-length", "65536")]), 65536).is_ok());
        assert_eq!(
            check_declared_length(&headers(&[("content-length", "65537")]), 65536)
                .unwrap_err()
                .status(),
            413
        );
    }
}
