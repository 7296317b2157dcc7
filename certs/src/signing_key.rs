//! RSA signing keys for TPPs (request objects are signed PS256) and their public JWKs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;

use crate::PkiError;

/// An RSA key pair: the private half as PKCS#8 DER (for ring), the public half as JWK parts.
#[derive(Clone)]
pub struct RsaSigningKey {
    /// The key id published in the JWK.
    pub kid: String,
    /// The private key, PKCS#8 DER.
    pub pkcs8_der: Vec<u8>,
    /// The modulus, big-endian.
    pub n: Vec<u8>,
    /// The public exponent, big-endian.
    pub e: Vec<u8>,
}

impl std::fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaSigningKey")
            .field("kid", &self.kid)
            .field("bits", &(self.n.len() * 8))
            .finish_non_exhaustive()
    }
}

impl RsaSigningKey {
    /// A fresh key of `bits` bits (2048 for anything real; smaller only to test refusals).
    pub fn generate(kid: &str, bits: usize) -> Result<Self, PkiError> {
        let mut rng = rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, bits).map_err(|e| PkiError::Rsa(e.to_string()))?;
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|e| PkiError::Rsa(e.to_string()))?;
        Ok(Self {
            kid: kid.to_owned(),
            pkcs8_der: pkcs8.as_bytes().to_vec(),
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
        })
    }

    /// The public key as a JWK object (JSON text), `use: sig`, `alg: PS256`.
    pub fn public_jwk(&self) -> String {
        format!(
            r#"{{"kty":"RSA","use":"sig","alg":"PS256","kid":"{}","n":"{}","e":"{}"}}"#,
            self.kid,
            URL_SAFE_NO_PAD.encode(&self.n),
            URL_SAFE_NO_PAD.encode(&self.e)
        )
    }

    /// A JWK Set (JSON text) holding the public halves of `keys`.
    pub fn jwks(keys: &[&RsaSigningKey]) -> String {
        let members: Vec<String> = keys.iter().map(|k| k.public_jwk()).collect();
        format!(r#"{{"keys":[{}]}}"#, members.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_accepts_the_pkcs8() {
        let k = RsaSigningKey::generate("k1", 2048).unwrap();
        assert!(ring::signature::RsaKeyPair::from_pkcs8(&k.pkcs8_der).is_ok());
        assert_eq!(k.n.len(), 256);
        assert!(k.public_jwk().contains(r#""kid":"k1""#));
    }
}
