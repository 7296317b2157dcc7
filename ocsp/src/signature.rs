//! X.509 signature algorithms on ring, for OCSP responses, delegated responder certificates
//! and CRLs: RSA PKCS#1 v1.5 with SHA-256/384/512, ECDSA P-256 with SHA-256 and P-384 with
//! SHA-384, Ed25519. Anything else does not verify.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Whether `signature` over `message` verifies with the key `spki` (SubjectPublicKeyInfo DER)
/// under the signature algorithm `algorithm` (dotted OID).
pub fn verify(spki: &[u8], algorithm: &str, message: &[u8], signature: &[u8]) -> bool {
    let Ok((_, key)) = SubjectPublicKeyInfo::from_der(spki) else {
        return false;
    };
    let curve = key
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let ring_alg: &'static dyn VerificationAlgorithm = match (algorithm, curve.as_deref()) {
        ("1.2.840.113549.1.1.11", _) => &signature::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", _) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", _) => &signature::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.10045.4.3.2", Some("1.2.840.10045.3.1.7")) => &signature::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", Some("1.3.132.0.34")) => &signature::ECDSA_P384_SHA384_ASN1,
        ("1.3.101.112", _) => &signature::ED25519,
        _ => return false,
    };
    UnparsedPublicKey::new(ring_alg, key.subject_public_key.data.as_ref())
        .verify(message, signature)
        .is_ok()
}
