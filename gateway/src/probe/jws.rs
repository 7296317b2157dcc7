//! Request objects as a TPP signs them, on ring: PS256 (the compliant form), RS256 and
//! `alg: none` (the refused forms), with a freshly generated key for the "unpublished key"
//! scenario; and the random values a TPP draws (`jti`, tokens, ClientIds).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RsaEncoding, RsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use serde_json::{json, Value};

/// The JWS algorithms the probe signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PSS SHA-256: what OB DCR requires.
    Ps256,
    /// RSASSA-PKCS1-v1_5 SHA-256: refused by OB DCR profiles.
    Rs256,
    /// No signature at all.
    None,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Ps256 => "PS256",
            Alg::Rs256 => "RS256",
            Alg::None => "none",
        }
    }
}

/// An RSA signing key with its `kid`.
pub struct SigningKey {
    /// The key id put in every header.
    pub kid: String,
    pair: RsaKeyPair,
}

impl SigningKey {
    /// An RSA key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str, kid: &str) -> Result<Self, String> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        if body.is_empty() {
            return Err("expected a PKCS#8 PEM block (BEGIN PRIVATE KEY)".into());
        }
        let der = STANDARD
            .decode(body)
            .map_err(|e| format!("the PEM block is not base64: {e}"))?;
        Self::from_pkcs8(&der, kid)
    }

    /// An RSA key from PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8], kid: &str) -> Result<Self, String> {
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|e| format!("not an RSA PKCS#8 key ring accepts: {e}"))?;
        Ok(Self {
            kid: kid.to_owned(),
            pair,
        })
    }

    /// A fresh RSA-2048 key no one has published, with a random `kid`.
    pub fn unpublished() -> Result<Self, String> {
        let kid = format!("dcrgate-probe-unpublished-{}", random_token(6));
        let key = dcrgate_certs::RsaSigningKey::generate(&kid, 2048).map_err(|e| e.to_string())?;
        Self::from_pkcs8(&key.pkcs8_der, &kid)
    }

    /// A compact JWS of `claims` with header `{"alg","kid","typ":"JWT"}`.
    pub fn sign(&self, alg: Alg, claims: &Value) -> Result<String, String> {
        let header = json!({"alg": alg.name(), "kid": self.kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let padding: &'static dyn RsaEncoding = match alg {
            Alg::None => return Ok(format!("{input}.")),
            Alg::Ps256 => &RSA_PSS_SHA256,
            Alg::Rs256 => &RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|e| format!("signing failed: {e}"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// The payload of a compact JWS as JSON, unverified (to read an SSA's claims).
pub fn unverified_claims(jws: &str) -> Option<Value> {
    let payload = jws.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The system source does not fail on supported platforms; zeros stay well formed.
    let _ = SystemRandom::new().fill(&mut b);
    b
}

/// A random version 4 UUID, lower case.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `n` random bytes as base64url: a well-formed token no server issued.
pub fn random_token(n: usize) -> String {
    let b: [u8; 32] = random_bytes();
    URL_SAFE_NO_PAD.encode(&b[..n.min(32)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_ps256_rs256_and_none() {
        let key = SigningKey::unpublished().unwrap();
        let claims = json!({"a": 1});
        for alg in [Alg::Ps256, Alg::Rs256] {
            let jws = key.sign(alg, &claims).unwrap();
            let parts: Vec<&str> = jws.split('.').collect();
            assert_eq!(parts.len(), 3);
            assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256);
            assert_eq!(unverified_claims(&jws).unwrap(), claims);
        }
        assert!(key.sign(Alg::None, &claims).unwrap().ends_with('.'));
        assert!(SigningKey::from_pem("nope", "k").is_err());
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid_v4());
    }
}
