//! Decoding what a TPP sent without the gateway's rules, so that a form the gateway refuses is
//! still shown.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::jose::jws::JwsError;

/// A compact JWS decoded without its rules: the payload must be a JSON object, the header is
/// kept even when it does not decode.
pub(super) struct Tolerant {
    pub(super) header: Result<Map<String, Value>, JwsError>,
    pub(super) payload: Map<String, Value>,
}

/// Decode the parts of a compact JWS leniently (padding and the standard base64 alphabet
/// tolerated, duplicate JSON members allowed): what a TPP sent is shown even when the gateway
/// would refuse its form.
pub(super) fn decode_tolerant(token: &[u8]) -> Result<Tolerant, JwsError> {
    let parts: Vec<&[u8]> = token.trim_ascii().split(|b| *b == b'.').collect();
    let [header, payload, _signature] = parts[..] else {
        return Err(JwsError::NotCompact);
    };
    Ok(Tolerant {
        header: decode_part(header, "header"),
        payload: decode_part(payload, "payload")?,
    })
}

fn decode_part(part: &[u8], name: &'static str) -> Result<Map<String, Value>, JwsError> {
    let cleaned: Vec<u8> = part
        .iter()
        .filter(|b| **b != b'=')
        .map(|b| match b {
            b'+' => b'-',
            b'/' => b'_',
            b => *b,
        })
        .collect();
    if cleaned.is_empty() {
        return Err(JwsError::NotCompact);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cleaned)
        .map_err(|_| JwsError::Base64(name))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JwsError::Json {
            part: name,
            reason: "not an object".into(),
        }),
        Err(e) => Err(JwsError::Json {
            part: name,
            reason: e.to_string(),
        }),
    }
}
