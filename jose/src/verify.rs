//! Signature verification on ring: PS256 (RSASSA-PSS, SHA-256, RSA 2048–8192 bits; the key set
//! parser bounds the modulus further) and ES256 (ECDSA P-256, fixed-width signature). The
//! algorithm is the one the policy accepted; a key of the wrong type for it never verifies, and
//! a signature whose length is not the key's is refused before any arithmetic.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

/// A public key from a TPP's key set, ready to verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyingKey {
    /// RSA: modulus and exponent, big-endian, no leading zero bytes.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// EC P-256: the uncompressed point `04 || x || y`.
    P256 {
        /// The point.
        point: Vec<u8>,
    },
}

impl VerifyingKey {
    /// Whether `other` is a key of the same type (RSA, P-256).
    pub fn same_type(&self, other: &VerifyingKey) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Whether the key fits `alg`.
    pub fn fits(&self, alg: &str) -> bool {
        matches!(
            (alg, self),
            ("PS256", VerifyingKey::Rsa { .. }) | ("ES256", VerifyingKey::P256 { .. })
        )
    }

    /// Whether verifying with this key is costly enough to run off the event loop (RSA above
    /// 2048 bits).
    pub fn is_costly(&self) -> bool {
        matches!(self, VerifyingKey::Rsa { n, .. } if n.len() > 256)
    }

    /// Roughly how many bytes the key holds.
    pub fn weight(&self) -> usize {
        match self {
            VerifyingKey::Rsa { n, e } => n.len() + e.len() + 48,
            VerifyingKey::P256 { point } => point.len() + 24,
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The key's type does not fit the algorithm.
    #[error("the key with this kid is not a key for {0}")]
    WrongKeyType(&'static str),
    /// The algorithm is not implemented.
    #[error("unsupported algorithm")]
    UnsupportedAlg,
    /// The signature's length is not the key's (checked before any arithmetic).
    #[error("the signature is {got} bytes, the key with this kid signs {want}")]
    Length {
        /// Bytes sent.
        got: usize,
        /// Bytes the key produces.
        want: usize,
    },
    /// The signature does not verify.
    #[error("the signature does not verify")]
    Invalid,
}

/// Verify `signature` over `message` with `key` under `alg`.
pub fn verify(
    alg: &str,
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    match (alg, key) {
        ("PS256", VerifyingKey::Rsa { n, .. }) if signature.len() != n.len() => {
            Err(SignatureError::Length {
                got: signature.len(),
                want: n.len(),
            })
        }
        ("ES256", VerifyingKey::P256 { .. }) if signature.len() != 64 => {
            Err(SignatureError::Length {
                got: signature.len(),
                want: 64,
            })
        }
        ("PS256", VerifyingKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PSS_2048_8192_SHA256, message, signature)
            .map_err(|_| SignatureError::Invalid),
        ("PS256", _) => Err(SignatureError::WrongKeyType("PS256")),
        ("ES256", VerifyingKey::P256 { point }) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .map_err(|_| SignatureError::Invalid)
        }
        ("ES256", _) => Err(SignatureError::WrongKeyType("ES256")),
        _ => Err(SignatureError::UnsupportedAlg),
    }
}
