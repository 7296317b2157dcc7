//! Media types from a `Content-Type` header: the type/subtype, lower-cased, parameters dropped.

use http::HeaderMap;

/// The media type of `headers`' Content-Type (`application/jwt; charset=x` → `application/jwt`).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether `headers`' media type is one of `accepted` (given in lower case).
pub fn is_one_of(headers: &HeaderMap, accepted: &[&str]) -> bool {
    media_type(headers).is_some_and(|m| accepted.contains(&m.as_str()))
}
