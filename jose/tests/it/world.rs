//! Keys and signatures the tests make: a fresh RSA-2048 key (PS256) and a fresh P-256 key
//! (ES256), with their public halves as [`VerifyingKey`]s and as JWK members.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dcrgate_certs::RsaSigningKey;
use dcrgate_jose::verify::VerifyingKey;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PSS_SHA256,
};

/// An RSA key of `bits` bits.
pub struct Rsa {
    /// The generated key.
    pub key: RsaSigningKey,
    pair: RsaKeyPair,
}

impl Rsa {
    /// A fresh key.
    pub fn new(bits: usize) -> Self {
        let key = RsaSigningKey::generate("rsa", bits).expect("RSA key");
        let pair = RsaKeyPair::from_pkcs8(&key.pkcs8_der).expect("ring takes the PKCS#8");
        Self { key, pair }
    }

    /// A PS256 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PSS_SHA256, &SystemRandom::new(), message, &mut sig)
            .expect("sign");
        sig
    }

    /// The public half.
    pub fn public(&self) -> VerifyingKey {
        VerifyingKey::Rsa {
            n: self.key.n.clone(),
            e: self.key.e.clone(),
        }
    }
}

/// A P-256 key.
pub struct P256 {
    pair: EcdsaKeyPair,
}

impl P256 {
    /// A fresh key.
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("pair");
        Self { pair }
    }

    /// An ES256 signature (r || s, 64 bytes) over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .expect("sign")
            .as_ref()
            .to_vec()
    }

    /// The public half.
    pub fn public(&self) -> VerifyingKey {
        VerifyingKey::P256 {
            point: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// The public half as a JWK member with `kid`.
    pub fn jwk(&self, kid: &str) -> String {
        let point = self.pair.public_key().as_ref();
        ec_jwk(kid, "P-256", &point[1..33], &point[33..65])
    }
}

/// An EC JWK member from its parts.
pub fn ec_jwk(kid: &str, crv: &str, x: &[u8], y: &[u8]) -> String {
    format!(
        r#"{{"kty":"EC","kid":"{kid}","crv":"{crv}","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    )
}

/// An RSA JWK member with a modulus of `bytes` bytes (top bit set) and exponent 65537.
pub fn rsa_jwk(kid: &str, bytes: usize) -> String {
    let mut n = vec![0xC5u8; bytes];
    n[0] |= 0x80;
    format!(
        r#"{{"kty":"RSA","kid":"{kid}","n":"{}","e":"AQAB"}}"#,
        URL_SAFE_NO_PAD.encode(n)
    )
}
