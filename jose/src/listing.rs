//! What a key set lists, as opposed to what it lets verify: every member's `kid`, its RFC 7638
//! thumbprint and the certificates it carries (`x5c`, `x5t#S256`) with their `use`. The Open
//! Banking directory publishes revoked keys as key sets and the transport certificate of a
//! piece of software as a `use: tls` member of its key set; this is what those checks read.
//!
//! Members that cannot be read are left out, like [`crate::jwk`] does; a listing is built from
//! the same bounded document as the key set it comes with.

use std::collections::HashSet;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;

use crate::jwk::strip_zeros;
use crate::verify::VerifyingKey;

/// A certificate a key set names: the SHA-256 of its DER and the member's `use`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCertificate {
    /// SHA-256 of the certificate DER (from `x5c[0]`, or the member's `x5t#S256`).
    pub sha256: [u8; 32],
    /// The member's `use` (`sig`, `tls`, `enc`), if any.
    pub use_: Option<String>,
}

/// Every member of a key set, by identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyListing {
    kids: HashSet<String>,
    thumbprints: HashSet<String>,
    certificates: Vec<ListedCertificate>,
}

#[derive(Deserialize)]
struct RawMember {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    x5c: Option<Vec<String>>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

impl KeyListing {
    /// The listing of a key set's members (already bounded in number by the caller).
    pub fn from_members(members: &[serde_json::Value]) -> Self {
        let mut listing = KeyListing::default();
        for member in members {
            let Ok(m) = serde_json::from_value::<RawMember>(member.clone()) else {
                continue;
            };
            if let Some(kid) = m.kid.as_ref().filter(|k| !k.is_empty()) {
                listing.kids.insert(kid.clone());
            }
            if let Some(t) = member_thumbprint(&m) {
                listing.thumbprints.insert(t);
            }
            let mut hashes: Vec<[u8; 32]> = Vec::new();
            if let Some(der) = m.x5c.as_ref().and_then(|c| c.first()) {
                if let Ok(der) = STANDARD.decode(der) {
                    hashes.push(sha256(&der));
                }
            }
            if let Some(t) = m.x5t_s256.as_deref() {
                if let Ok(Ok(h)) = URL_SAFE_NO_PAD
                    .decode(t.trim_end_matches('='))
                    .map(<[u8; 32]>::try_from)
                {
                    hashes.push(h);
                }
            }
            hashes.dedup();
            for sha256 in hashes {
                listing.certificates.push(ListedCertificate {
                    sha256,
                    use_: m.use_.clone(),
                });
            }
        }
        listing
    }

    /// Whether a member has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.kids.contains(kid)
    }

    /// Whether a member is this key (by RFC 7638 thumbprint).
    pub fn has_key(&self, key: &VerifyingKey) -> bool {
        self.thumbprints.contains(&thumbprint(key))
    }

    /// Whether a member carries the certificate whose DER hashes to `sha256`, with `use`
    /// equal to `use_` when one is given (`None`: any use, or none).
    pub fn has_certificate(&self, sha256: &[u8; 32], use_: Option<&str>) -> bool {
        self.certificates
            .iter()
            .any(|c| &c.sha256 == sha256 && use_.is_none_or(|u| c.use_.as_deref() == Some(u)))
    }

    /// Whether the listing names no member (by `kid`, thumbprint or certificate).
    pub fn is_empty(&self) -> bool {
        self.kids.is_empty() && self.thumbprints.is_empty() && self.certificates.is_empty()
    }

    /// Roughly how many bytes the listing holds (for cache weighers).
    pub fn weight(&self) -> usize {
        self.kids.iter().map(|k| k.len() + 32).sum::<usize>()
            + self.thumbprints.len() * 75
            + self.certificates.len() * 64
    }
}

/// The RFC 7638 thumbprint of `key`: SHA-256 of its required members in lexicographic order,
/// base64url without padding.
pub fn thumbprint(key: &VerifyingKey) -> String {
    let canonical = match key {
        VerifyingKey::Rsa { n, e } => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(e),
            URL_SAFE_NO_PAD.encode(n)
        ),
        VerifyingKey::P256 { point } => {
            let coordinates = point.get(1..).unwrap_or_default();
            let (x, y) = coordinates.split_at(coordinates.len() / 2);
            format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            )
        }
    };
    URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()))
}

fn member_thumbprint(m: &RawMember) -> Option<String> {
    let b64 = |s: &Option<String>| {
        URL_SAFE_NO_PAD
            .decode(s.as_deref()?.trim_end_matches('='))
            .ok()
    };
    let key = match m.kty.as_deref()? {
        "RSA" => VerifyingKey::Rsa {
            n: strip_zeros(b64(&m.n)?),
            e: strip_zeros(b64(&m.e)?),
        },
        "EC" if m.crv.as_deref() == Some("P-256") => {
            let (x, y) = (b64(&m.x)?, b64(&m.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = vec![4];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            VerifyingKey::P256 { point }
        }
        _ => return None,
    };
    Some(thumbprint(&key))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        // RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let key = VerifyingKey::Rsa {
            n: URL_SAFE_NO_PAD.decode(n).unwrap(),
            e: vec![1, 0, 1],
        };
        assert_eq!(
            thumbprint(&key),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn members_are_listed_by_kid_thumbprint_and_certificate() {
        let der = b"not really a certificate, only bytes to hash";
        let listing = KeyListing::from_members(&[
            json!({"kty": "RSA", "kid": "k1", "use": "sig", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "t1", "use": "tls", "n": "AQAB", "e": "AQAB",
                   "x5c": [STANDARD.encode(der)]}),
            json!({"kid": "only-a-hash", "x5t#S256": URL_SAFE_NO_PAD.encode([7u8; 32])}),
            json!("not an object"),
            json!({"kty": "RSA", "x5t#S256": "too-short"}),
        ]);
        assert!(listing.has_kid("k1") && listing.has_kid("only-a-hash"));
        assert!(!listing.has_kid("nobody"));
        let key = VerifyingKey::Rsa {
            n: vec![1, 0, 1],
            e: vec![1, 0, 1],
        };
        assert!(listing.has_key(&key));
        let other = VerifyingKey::Rsa {
            n: vec![1, 0, 3],
            e: vec![1, 0, 1],
        };
        assert!(!listing.has_key(&other));
        let h = sha256(der);
        assert!(listing.has_certificate(&h, Some("tls")));
        assert!(listing.has_certificate(&h, None));
        assert!(!listing.has_certificate(&h, Some("sig")));
        assert!(listing.has_certificate(&[7u8; 32], None));
        assert!(!listing.has_certificate(&[7u8; 32], Some("tls")));
        assert!(!listing.has_certificate(&[8u8; 32], None));
    }

    #[test]
    fn leading_zeros_do_not_change_a_members_thumbprint() {
        let plain = KeyListing::from_members(&[json!({"kty":"RSA","n":"AQAB","e":"AQAB"})]);
        let padded = KeyListing::from_members(&[json!({"kty":"RSA","n":"AAEAAQ","e":"AQAB"})]);
        assert_eq!(plain.thumbprints, padded.thumbprints);
    }
}
