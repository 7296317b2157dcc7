//! Compact JWS parsing (RFC 7515 §7.1) with the header rules of a registration endpoint.
//!
//! The accepted algorithms come from the policy, never from the token. Refused outright:
//! `none` (any case), HMAC algorithms (a public key must never become an HMAC secret), any
//! `crit` (dcrgate understands no extension), unencoded payloads (`b64`), nested JWTs, and
//! header-supplied keys or key locations (`jwk`, `jku`, `x5u`, `x5c`), which would let the token
//! choose the key that verifies it. `kid` is required.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::json::from_slice_strict;

/// Longest accepted `kid`.
pub const MAX_KID_LEN: usize = 256;

/// Why a request body is not an acceptable compact JWS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts separated by dots.
    #[error("the body is not a compact JWS (three base64url parts separated by dots)")]
    NotCompact,
    /// A part is not base64url without padding.
    #[error("the JWS {0} is not base64url")]
    Base64(&'static str),
    /// A part is not a JSON object (or has duplicate members).
    #[error("the JWS {part} is not a JSON object: {reason}")]
    Json {
        /// `header` or `payload`.
        part: &'static str,
        /// Why.
        reason: String,
    },
    /// No `alg`.
    #[error("the JWS header has no alg")]
    MissingAlg,
    /// `alg: none`.
    #[error("unsigned JWS (alg none) is not accepted")]
    AlgNone,
    /// An HMAC algorithm.
    #[error("symmetric JWS algorithm {0} is not accepted")]
    AlgSymmetric(String),
    /// An algorithm not in the policy's list.
    #[error("JWS algorithm {alg} is not accepted (accepted: {accepted})")]
    AlgNotAllowed {
        /// What the token said.
        alg: String,
        /// What the policy accepts.
        accepted: String,
    },
    /// No `kid`, or not a non-empty string.
    #[error("the JWS header must carry a kid (a non-empty string)")]
    MissingKid,
    /// `kid` too long.
    #[error("the JWS kid is longer than {MAX_KID_LEN} bytes")]
    KidTooLong,
    /// `crit` present.
    #[error("the JWS header lists critical extensions (crit) that are not supported")]
    Crit,
    /// `b64` present.
    #[error("unencoded JWS payloads (b64) are not accepted")]
    Unencoded,
    /// A header member that names or carries a key.
    #[error(
        "the JWS header member {0} is not accepted: keys come only from the registered key set"
    )]
    HeaderKey(&'static str),
    /// `cty: JWT`.
    #[error("nested JWTs are not accepted")]
    Nested,
    /// Empty signature.
    #[error("the JWS signature is empty")]
    EmptySignature,
}

/// A parsed compact JWS whose header passed the rules; the signature is not yet verified.
#[derive(Debug, Clone)]
pub struct CompactJws {
    /// `alg`.
    pub alg: String,
    /// `kid`.
    pub kid: String,
    /// `typ`, if any.
    pub typ: Option<String>,
    /// The claims.
    pub payload: Map<String, Value>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`.
    pub signing_input: Vec<u8>,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// Parse `body` as a compact JWS and apply the header rules; `accepted` is the policy's list.
pub fn parse_compact(body: &[u8], accepted: &[String]) -> Result<CompactJws, JwsError> {
    let body = body.trim_ascii();
    let mut parts = body.split(|b| *b == b'.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::NotCompact);
    };
    if h.is_empty() || p.is_empty() {
        return Err(JwsError::NotCompact);
    }
    let header = object(&decode(h, "header")?, "header")?;
    check_header(&header, accepted)?;
    let payload = object(&decode(p, "payload")?, "payload")?;
    let signature = decode(s, "signature")?;
    if signature.is_empty() {
        return Err(JwsError::EmptySignature);
    }
    let text = |k: &str| header.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(CompactJws {
        alg: text("alg").ok_or(JwsError::MissingAlg)?,
        kid: text("kid").ok_or(JwsError::MissingKid)?,
        typ: text("typ"),
        payload,
        signing_input: body[..h.len() + 1 + p.len()].to_vec(),
        signature,
    })
}

/// An unsigned JWS (RFC 7515 §A.5, header `{"alg":"none"}` spelled exactly so, empty signature):
/// `Ok(Some(payload))`. `Ok(None)` when the header's `alg` is anything but `none` (parse it with
/// [`parse_compact`]). Only for software statements, where a profile may allow them.
pub fn parse_unsigned(token: &[u8]) -> Result<Option<Map<String, Value>>, JwsError> {
    let token = token.trim_ascii();
    let mut parts = token.split(|b| *b == b'.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::NotCompact);
    };
    let header = object(&decode(h, "header")?, "header")?;
    if header.get("alg").and_then(Value::as_str) != Some("none") {
        return Ok(None);
    }
    if !s.is_empty() {
        return Err(JwsError::Json {
            part: "signature",
            reason: "an unsigned JWS must have an empty signature".into(),
        });
    }
    if header.keys().any(|k| k != "alg" && k != "typ") {
        return Err(JwsError::Json {
            part: "header",
            reason: "an unsigned JWS header may carry only alg and typ".into(),
        });
    }
    object(&decode(p, "payload")?, "payload").map(Some)
}

fn decode(part: &[u8], name: &'static str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwsError::Base64(name))
}

fn object(bytes: &[u8], part: &'static str) -> Result<Map<String, Value>, JwsError> {
    match from_slice_strict(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(JwsError::Json {
            part,
            reason: "not an object".into(),
        }),
        Err(e) => Err(JwsError::Json {
            part,
            reason: e.to_string(),
        }),
    }
}

fn check_header(h: &Map<String, Value>, accepted: &[String]) -> Result<(), JwsError> {
    let alg = h
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwsError::MissingAlg)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(JwsError::AlgNone);
    }
    // Bytes, not a str slice: a client-chosen alg need not have a char boundary at 2.
    if alg
        .as_bytes()
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"HS"))
    {
        return Err(JwsError::AlgSymmetric(alg.chars().take(16).collect()));
    }
    if !accepted.iter().any(|a| a == alg) {
        return Err(JwsError::AlgNotAllowed {
            alg: alg.chars().take(16).collect(),
            accepted: accepted.join(", "),
        });
    }
    const KEY_MEMBERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];
    if let Some(member) = KEY_MEMBERS.into_iter().find(|m| h.contains_key(*m)) {
        return Err(JwsError::HeaderKey(member));
    }
    if h.contains_key("crit") {
        return Err(JwsError::Crit);
    }
    if h.contains_key("b64") {
        return Err(JwsError::Unencoded);
    }
    if h.get("cty")
        .and_then(Value::as_str)
        .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
    {
        return Err(JwsError::Nested);
    }
    match h.get("kid") {
        Some(Value::String(k)) if k.len() > MAX_KID_LEN => Err(JwsError::KidTooLong),
        Some(Value::String(k)) if !k.is_empty() => Ok(()),
        _ => Err(JwsError::MissingKid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn jws(header: &str, payload: &str) -> Vec<u8> {
        format!("{}.{}.{}", b64(header), b64(payload), b64("sig")).into_bytes()
    }

    fn ps256() -> Vec<String> {
        vec!["PS256".into()]
    }

    #[test]
    fn accepts_a_well_formed_token() {
        let t = jws(
            r#"{"alg":"PS256","kid":"k1","typ":"JWT"}"#,
            r#"{"iss":"x"}"#,
        );
        let j = parse_compact(&t, &ps256()).unwrap();
        assert_eq!((j.alg.as_str(), j.kid.as_str()), ("PS256", "k1"));
        assert_eq!(j.payload["iss"], "x");
        let dot = t.iter().rposition(|b| *b == b'.').unwrap();
        assert_eq!(j.signing_input, &t[..dot]);
    }

    #[test]
    fn trailing_newline_is_tolerated() {
        let mut t = jws(r#"{"alg":"PS256","kid":"k1"}"#, "{}");
        t.extend_from_slice(b"\r\n");
        assert!(parse_compact(&t, &ps256()).is_ok());
    }

    #[test]
    fn refuses_each_header_attack() {
        let cases = [
            (r#"{"alg":"none","kid":"k"}"#, JwsError::AlgNone),
            (r#"{"alg":"nOnE","kid":"k"}"#, JwsError::AlgNone),
            (
                r#"{"alg":"HS256","kid":"k"}"#,
                JwsError::AlgSymmetric("HS256".into()),
            ),
            (
                r#"{"alg":"RS256","kid":"k"}"#,
                JwsError::AlgNotAllowed {
                    alg: "RS256".into(),
                    accepted: "PS256".into(),
                },
            ),
            (r#"{"kid":"k"}"#, JwsError::MissingAlg),
            (r#"{"alg":"PS256"}"#, JwsError::MissingKid),
            (r#"{"alg":"PS256","kid":""}"#, JwsError::MissingKid),
            (r#"{"alg":"PS256","kid":7}"#, JwsError::MissingKid),
            (
                r#"{"alg":"PS256","kid":"k","crit":["exp"],"exp":1}"#,
                JwsError::Crit,
            ),
            (
                r#"{"alg":"PS256","kid":"k","b64":false,"crit":["b64"]}"#,
                JwsError::Crit,
            ),
            (
                r#"{"alg":"PS256","kid":"k","jwk":{}}"#,
                JwsError::HeaderKey("jwk"),
            ),
            (
                r#"{"alg":"PS256","kid":"k","jku":"https://evil/"}"#,
                JwsError::HeaderKey("jku"),
            ),
            (
                r#"{"alg":"PS256","kid":"k","x5u":"https://evil/"}"#,
                JwsError::HeaderKey("x5u"),
            ),
            (
                r#"{"alg":"PS256","kid":"k","x5c":["MII"]}"#,
                JwsError::HeaderKey("x5c"),
            ),
            (r#"{"alg":"PS256","kid":"k","cty":"JWT"}"#, JwsError::Nested),
            (
                r#"{"alg":"PS256","alg":"PS256","kid":"k"}"#,
                JwsError::Json {
                    part: "header",
                    reason: String::new(),
                },
            ),
        ];
        for (header, expected) in cases {
            let got = parse_compact(&jws(header, "{}"), &ps256()).unwrap_err();
            match (&got, &expected) {
                (JwsError::Json { part: a, .. }, JwsError::Json { part: b, .. }) => {
                    assert_eq!(a, b)
                }
                _ => assert_eq!(got, expected, "{header}"),
            }
        }
        let long = format!(r#"{{"alg":"PS256","kid":"{}"}}"#, "k".repeat(300));
        assert_eq!(
            parse_compact(&jws(&long, "{}"), &ps256()).unwrap_err(),
            JwsError::KidTooLong
        );
        let b64_only = r#"{"alg":"PS256","kid":"k","b64":false}"#;
        assert_eq!(
            parse_compact(&jws(b64_only, "{}"), &ps256()).unwrap_err(),
            JwsError::Unencoded
        );
    }

    #[test]
    fn refuses_malformed_envelopes() {
        let ok_h = b64(r#"{"alg":"PS256","kid":"k"}"#);
        for body in [
            String::new(),
            "abc".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("{ok_h}..sig"),
            format!("{ok_h}.{}.", b64("{}")),
            format!("{ok_h}.{}=.{}", b64("{}"), b64("s")),
            format!("{ok_h}.{}.{}", b64("[1]"), b64("s")),
            format!("{ok_h}.{}.{}", b64(r#"{"a":1,"a":2}"#), b64("s")),
            format!("{ok_h}.{}.{}", b64("not json"), b64("s")),
        ] {
            assert!(parse_compact(body.as_bytes(), &ps256()).is_err(), "{body}");
        }
    }

    #[test]
    fn an_empty_header_or_payload_is_not_a_compact_jws() {
        let ok_h = b64(r#"{"alg":"PS256","kid":"k"}"#);
        let ok_p = b64("{}");
        for body in [
            format!(".{ok_p}.{}", b64("s")),
            format!("{ok_h}..{}", b64("s")),
            format!("..{}", b64("s")),
        ] {
            assert_eq!(
                parse_compact(body.as_bytes(), &ps256()).err(),
                Some(JwsError::NotCompact),
                "{body}"
            );
        }
    }

    #[test]
    fn a_kid_of_the_longest_length_is_accepted() {
        let jws_with_kid = |len: usize| {
            jws(
                &format!(r#"{{"alg":"PS256","kid":"{}"}}"#, "k".repeat(len)),
                "{}",
            )
        };
        assert!(parse_compact(&jws_with_kid(MAX_KID_LEN), &ps256()).is_ok());
        assert_eq!(
            parse_compact(&jws_with_kid(MAX_KID_LEN + 1), &ps256()).err(),
            Some(JwsError::KidTooLong)
        );
    }

    #[test]
    fn a_multibyte_alg_is_refused_without_panicking() {
        // Found by the jws_parse fuzz target: "P\u{c8c}..." has no char boundary at byte 2.
        let token = jws("{\"alg\":\"P\u{c8c}56\",\"kid\":\"k\"}", "{}");
        assert!(matches!(
            parse_compact(&token, &ps256()),
            Err(JwsError::AlgNotAllowed { .. })
        ));
    }

    #[test]
    fn unsigned_only_for_exact_none_with_empty_signature() {
        let ok = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"a":1}"#));
        assert_eq!(parse_unsigned(ok.as_bytes()).unwrap().unwrap()["a"], 1);
        let signed = String::from_utf8(jws(r#"{"alg":"PS256","kid":"k"}"#, "{}")).unwrap();
        assert_eq!(parse_unsigned(signed.as_bytes()).unwrap(), None);
        let none_with_sig = String::from_utf8(jws(r#"{"alg":"none"}"#, "{}")).unwrap();
        assert!(parse_unsigned(none_with_sig.as_bytes()).is_err());
        let upper = format!("{}.{}.", b64(r#"{"alg":"NONE"}"#), b64("{}"));
        assert_eq!(parse_unsigned(upper.as_bytes()).unwrap(), None);
        let extra = format!("{}.{}.", b64(r#"{"alg":"none","jku":"x"}"#), b64("{}"));
        assert!(parse_unsigned(extra.as_bytes()).is_err());
    }
}
