//! Message framing and hop-by-hop headers, checked before anything else reads the request:
//! the parts of a request head that decide where a body ends or which headers survive the hop.
//!
//! - `Content-Length` must be one plain decimal: repeats of the same number (`N, N`, or two
//!   headers) collapse to it, and the upstream gets the verified body's length once; a sign,
//!   hex, an empty member or two different numbers are refused.
//! - `Transfer-Encoding` may only be `chunked` (RFC 9112 §6.1: a coding the server does not
//!   implement gets 501; `gzip, chunked` is not silently treated as `chunked`).
//! - `Connection` may not nominate a header the gateway checks or forwards: a hop-by-hop
//!   nomination of `Authorization` (or `Content-Type`, `Host`, ...) would remove the checked
//!   header after admission.
//! - `Expect`: only `100-continue`, answered by the gateway itself before it reads the body
//!   (any other expectation gets 417); it is never forwarded.

use http::HeaderMap;

use crate::config::ForwardHeaders;
use crate::reason::Reason;
use crate::rejection::Rejection;

/// End-to-end headers the gateway reads to decide on a request.
const CHECKED: [&str; 7] = [
    "authorization",
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "expect",
    "x-request-id",
];

fn bad_request(reason: Reason, text: String) -> Rejection {
    Rejection::new(reason, text).closing()
}

/// Refuse a `Content-Length` that is not one plain decimal number. Repeats of the same number
/// (two headers, or `N, N`) are one value (RFC 9110 §8.6) and the upstream gets it once; any
/// disagreement, sign, hex digit or empty member is refused.
pub fn check_content_length(headers: &HeaderMap) -> Result<(), Rejection> {
    let mut value: Option<&str> = None;
    for header in headers.get_all(http::header::CONTENT_LENGTH) {
        let text = header.to_str().unwrap_or("\u{0}");
        for member in text.split(',') {
            let member = member.trim_matches([' ', '\t']);
            let digits = !member.is_empty()
                && member.len() <= 19
                && member.bytes().all(|b| b.is_ascii_digit());
            if !digits || value.is_some_and(|v| v != member) {
                return Err(bad_request(
                    Reason::ContentLengthInvalid,
                    "Content-Length must be one decimal number".into(),
                ));
            }
            value = Some(member);
        }
    }
    Ok(())
}

/// Only `Transfer-Encoding: chunked` is implemented; any other coding (or list) gets 501.
pub fn check_transfer_encoding(headers: &HeaderMap) -> Result<(), Rejection> {
    let codings: Vec<String> = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    if codings.is_empty() || codings == ["chunked"] {
        return Ok(());
    }
    Err(Rejection::new(
        Reason::TransferEncodingUnsupported,
        "only Transfer-Encoding: chunked is supported",
    )
    .closing())
}

/// Refuse a `Connection` header that nominates a header the gateway checks or forwards.
pub fn check_connection(headers: &HeaderMap, forwarded: &ForwardHeaders) -> Result<(), Rejection> {
    for value in headers.get_all(http::header::CONNECTION) {
        for token in String::from_utf8_lossy(value.as_bytes()).split(',') {
            let token = token.trim().to_ascii_lowercase();
            let end_to_end = CHECKED.contains(&token.as_str())
                || token.starts_with("x-dcrgate-")
                || forwarded.allows(&token);
            if end_to_end {
                return Err(bad_request(
                    Reason::ConnectionNominatesHeader,
                    format!(
                        "the Connection header nominates `{}`, an end-to-end header this gateway checks; it cannot be hop-by-hop",
                        crate::logsafe::clip(&token, 64)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether the client waits for `100 Continue`; `Err` for any other expectation (417).
pub fn expects_continue(headers: &HeaderMap) -> Result<bool, Rejection> {
    let mut continue_ = false;
    for value in headers.get_all(http::header::EXPECT) {
        if value
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"100-continue")
        {
            continue_ = true;
        } else {
            return Err(Rejection::new(
                Reason::ExpectationFailed,
                "only Expect: 100-continue is supported",
            )
            .closing());
        }
    }
    Ok(continue_)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::proxy::test_headers as headers;

    #[test]
    fn content_length_is_one_decimal() {
        assert!(check_content_length(&headers(&[("content-length", "42")])).is_ok());
        assert!(check_content_length(&headers(&[("content-length", "42, 42")])).is_ok());
        assert!(check_content_length(&headers(&[])).is_ok());
        for bad in [
            "42, 43",
            "+42",
            "0x2a",
            "-1",
            "4 2",
            "",
            "42,",
            "99999999999999999999",
        ] {
            let r = check_content_length(&headers(&[("content-length", bad)])).unwrap_err();
            assert_eq!(
                (r.status(), r.reason.id()),
                (400, "content_length_invalid"),
                "{bad}"
            );
        }
        let two = headers(&[("content-length", "42"), ("content-length", "42")]);
        assert!(check_content_length(&two).is_ok());
        let differ = headers(&[("content-length", "42"), ("content-length", "43")]);
        assert!(check_content_length(&differ).is_err());
    }

    #[test]
    fn only_chunked_is_a_transfer_coding() {
        assert!(check_transfer_encoding(&headers(&[("transfer-encoding", "chunked")])).is_ok());
        assert!(check_transfer_encoding(&headers(&[("transfer-encoding", "Chunked")])).is_ok());
        for bad in [
            "gzip, chunked",
            "chunked, identity",
            "identity",
            "gzip",
            "chunked, chunked",
        ] {
            let r = check_transfer_encoding(&headers(&[("transfer-encoding", bad)])).unwrap_err();
            assert_eq!(r.status(), 501, "{bad}");
        }
        let split = headers(&[
            ("transfer-encoding", "gzip"),
            ("transfer-encoding", "chunked"),
        ]);
        assert_eq!(check_transfer_encoding(&split).unwrap_err().status(), 501);
    }

    #[test]
    fn connection_may_not_nominate_checked_headers() {
        let f = ForwardHeaders::default();
        for ok in [
            "close",
            "keep-alive",
            "Keep-Alive, close",
            "upgrade",
            "x-unrelated",
        ] {
            assert!(
                check_connection(&headers(&[("connection", ok)]), &f).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "Authorization",
            "close, authorization",
            "content-type",
            "Content-Length",
            "host",
            "transfer-encoding",
            "x-fapi-interaction-id",
            "user-agent",
            "X-DCRGate-Client-DN",
            "x-request-id",
            "keep-alive, accept",
        ] {
            let r = check_connection(&headers(&[("connection", bad)]), &f).unwrap_err();
            assert_eq!(
                (r.status(), r.reason.id()),
                (400, "connection_nominates_header"),
                "{bad}"
            );
        }
        let split = headers(&[("connection", "close"), ("connection", "authorization")]);
        assert!(check_connection(&split, &f).is_err());
    }

    #[test]
    fn expectations() {
        assert!(!expects_continue(&headers(&[])).unwrap());
        assert!(expects_continue(&headers(&[("expect", "100-Continue")])).unwrap());
        assert_eq!(
            expects_continue(&headers(&[("expect", "200-ok")]))
                .unwrap_err()
                .status(),
            417
        );
    }
}
