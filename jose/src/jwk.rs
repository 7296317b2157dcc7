//! JWK sets (RFC 7517): the TPP's published keys, parsed into [`VerifyingKey`]s by `kid`.
//!
//! Keys that cannot be used are left out rather than failing the whole set (a key set may
//! carry encryption keys or algorithms dcrgate does not use), and a set with more than
//! [`MAX_KEYS`] members is refused as a whole. What one verification can cost is bounded
//! here, before any request names a key: RSA moduli from [`MIN_RSA_BITS`] to the configured
//! maximum (default [`DEFAULT_MAX_RSA_BITS`]), public exponent 65537 only, and at most one key
//! of each type per `kid` (the first usable one; later duplicates are never tried, so a set of
//! a hundred keys sharing one `kid` costs one verification, not a hundred).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::listing::KeyListing;
use crate::verify::VerifyingKey;

/// Most members accepted in one key set.
pub const MAX_KEYS: usize = 100;
/// Smallest RSA modulus accepted, bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted unless configured otherwise, bits.
pub const DEFAULT_MAX_RSA_BITS: usize = 4096;
/// Largest RSA modulus any configuration may accept, bits.
pub const MAX_RSA_BITS: usize = 8192;
/// The only RSA public exponent accepted (65537, big-endian).
const RSA_E: [u8; 3] = [1, 0, 1];

/// Why a key set document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkSetError {
    /// Not a JSON object with a `keys` array.
    #[error("not a JWK set: {0}")]
    Malformed(String),
    /// Too many members.
    #[error("the key set has {0} keys, more than the {MAX_KEYS} accepted")]
    TooManyKeys(usize),
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// A parsed key set: usable keys by `kid`.
#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    keys: HashMap<String, Vec<VerifyingKey>>,
    skipped: usize,
    listing: KeyListing,
}

impl JwkSet {
    /// Parse a key set document, RSA moduli up to [`DEFAULT_MAX_RSA_BITS`].
    pub fn parse(bytes: &[u8]) -> Result<Self, JwkSetError> {
        Self::parse_with(bytes, DEFAULT_MAX_RSA_BITS)
    }

    /// Parse a key set document, RSA moduli up to `max_rsa_bits` (at most [`MAX_RSA_BITS`]).
    pub fn parse_with(bytes: &[u8], max_rsa_bits: usize) -> Result<Self, JwkSetError> {
        let max_rsa_bits = max_rsa_bits.clamp(MIN_RSA_BITS, MAX_RSA_BITS);
        let raw: RawSet =
            serde_json::from_slice(bytes).map_err(|e| JwkSetError::Malformed(e.to_string()))?;
        if raw.keys.len() > MAX_KEYS {
            return Err(JwkSetError::TooManyKeys(raw.keys.len()));
        }
        let mut set = JwkSet {
            listing: KeyListing::from_members(&raw.keys),
            ..JwkSet::default()
        };
        for value in raw.keys {
            match serde_json::from_value::<RawKey>(value)
                .ok()
                .and_then(|k| usable(k, max_rsa_bits))
            {
                Some((kid, key)) => {
                    let same_kid = set.keys.entry(kid).or_default();
                    if same_kid.iter().any(|k| k.same_type(&key)) {
                        // A duplicate kid of the same type is never tried.
                        set.skipped += 1;
                    } else {
                        same_kid.push(key);
                    }
                }
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// The usable keys with this `kid`: at most one per key type.
    pub fn get(&self, kid: &str) -> &[VerifyingKey] {
        self.keys.get(kid).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every member the set lists, usable for signing or not (revocation and transport
    /// certificate checks).
    pub fn listing(&self) -> &KeyListing {
        &self.listing
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    /// Whether no key was usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many members were left out as unusable (or as duplicates of a `kid`).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Roughly how many bytes the parsed set holds (the key set cache's weigher).
    pub fn weight(&self) -> usize {
        self.keys
            .iter()
            .map(|(kid, keys)| kid.len() + 48 + keys.iter().map(|k| k.weight()).sum::<usize>())
            .sum::<usize>()
            + self.listing.weight()
            + 64
    }
}

fn b64(s: Option<&String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s?.trim_end_matches('=')).ok()
}

fn usable(k: RawKey, max_rsa_bits: usize) -> Option<(String, VerifyingKey)> {
    let kid = k.kid.clone().filter(|s| !s.is_empty())?;
    if k.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let key = match k.kty.as_str() {
        "RSA" => {
            let n = strip_zeros(b64(k.n.as_ref())?);
            let e = strip_zeros(b64(k.e.as_ref())?);
            let bits = n
                .first()
                .map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
            if !(MIN_RSA_BITS..=max_rsa_bits).contains(&bits) || e != RSA_E {
                return None;
            }
            VerifyingKey::Rsa { n, e }
        }
        "EC" if k.crv.as_deref() == Some("P-256") => {
            let (x, y) = (b64(k.x.as_ref())?, b64(k.y.as_ref())?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            VerifyingKey::P256 { point }
        }
        _ => return None,
    };
    Some((kid, key))
}

/// `v` without its leading zero bytes (JWK integers are unsigned big-endian).
pub(crate) fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let first = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    v.drain(..first);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_jwk(kid: &str, bytes: usize) -> String {
        let mut n = vec![0xC5u8; bytes];
        n[0] |= 0x80;
        format!(
            r#"{{"kty":"RSA","kid":"{kid}","n":"{}","e":"AQAB"}}"#,
            URL_SAFE_NO_PAD.encode(n)
        )
    }

    #[test]
    fn keeps_usable_keys_by_kid() {
        let doc = format!(
            r#"{{"keys":[{},{},{},{{"kty":"oct","kid":"s","k":"AAAA"}},{{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}}]}}"#,
            rsa_jwk("a", 256),
            rsa_jwk("weak", 128),
            rsa_jwk("a", 384)
        );
        let set = JwkSet::parse(doc.as_bytes()).unwrap();
        assert_eq!(set.get("a").len(), 1, "one key per kid and type");
        assert!(
            set.get("weak").is_empty(),
            "1024-bit RSA must not be usable"
        );
        assert!(set.get("s").is_empty());
        assert!(set.get("enc").is_empty());
        assert_eq!(set.skipped(), 4);
    }

    #[test]
    fn bounds_what_one_verification_can_cost() {
        let with_e = |kid: &str, bytes: usize, e: &[u8]| {
            let mut n = vec![0xC5u8; bytes];
            n[0] |= 0x80;
            format!(
                r#"{{"kty":"RSA","kid":"{kid}","n":"{}","e":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(n),
                URL_SAFE_NO_PAD.encode(e)
            )
        };
        let doc = format!(
            r#"{{"keys":[{},{},{},{},{},{}]}}"#,
            with_e("e3", 256, &[3]),
            with_e("e-big", 256, &[1, 0, 0, 1]),
            with_e("ok", 256, &[1, 0, 1]),
            with_e("b4096", 512, &[1, 0, 1]),
            with_e("b4104", 513, &[1, 0, 1]),
            with_e("b8192", 1024, &[1, 0, 1]),
        );
        let set = JwkSet::parse(doc.as_bytes()).unwrap();
        assert!(set.get("e3").is_empty() && set.get("e-big").is_empty());
        assert_eq!(set.get("ok").len(), 1);
        assert_eq!(set.get("b4096").len(), 1);
        assert!(set.get("b4104").is_empty() && set.get("b8192").is_empty());
        let wide = JwkSet::parse_with(doc.as_bytes(), 8192).unwrap();
        assert_eq!(wide.get("b8192").len(), 1);
        // A hundred keys under one kid: one candidate.
        let many = format!(
            r#"{{"keys":[{}]}}"#,
            vec![with_e("same", 512, &[1, 0, 1]); MAX_KEYS].join(",")
        );
        let set = JwkSet::parse(many.as_bytes()).unwrap();
        assert_eq!(set.get("same").len(), 1);
        assert_eq!(set.skipped(), MAX_KEYS - 1);
        assert!(set.weight() < 1024, "{}", set.weight());
    }

    #[test]
    fn refuses_garbage_and_huge_sets() {
        assert!(JwkSet::parse(b"<html>").is_err());
        assert!(JwkSet::parse(br#"{"nokeys":[]}"#).is_err());
        let many = format!(
            r#"{{"keys":[{}]}}"#,
            vec![rsa_jwk("k", 256); MAX_KEYS + 1].join(",")
        );
        assert_eq!(
            JwkSet::parse(many.as_bytes()).unwrap_err(),
            JwkSetError::TooManyKeys(MAX_KEYS + 1)
        );
    }
}
