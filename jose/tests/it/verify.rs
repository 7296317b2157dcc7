//! Verification: each algorithm accepts its own key's real signature and nothing else.

use dcrgate_jose::verify::{verify, SignatureError, VerifyingKey};

use crate::world::{Rsa, P256};

const MESSAGE: &[u8] = b"eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJ0cHAifQ";

#[test]
fn ps256_verifies_its_own_signature_only() {
    let rsa = Rsa::new(2048);
    let sig = rsa.sign(MESSAGE);
    assert_eq!(verify("PS256", &rsa.public(), MESSAGE, &sig), Ok(()));

    let mut flipped = sig.clone();
    flipped[17] ^= 1;
    assert_eq!(
        verify("PS256", &rsa.public(), MESSAGE, &flipped),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify("PS256", &rsa.public(), b"another message", &sig),
        Err(SignatureError::Invalid)
    );
    let other = Rsa::new(2048);
    assert_eq!(
        verify("PS256", &other.public(), MESSAGE, &sig),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn es256_verifies_its_own_signature_only() {
    let ec = P256::new();
    let sig = ec.sign(MESSAGE);
    assert_eq!(sig.len(), 64);
    assert_eq!(verify("ES256", &ec.public(), MESSAGE, &sig), Ok(()));
    let mut flipped = sig.clone();
    flipped[40] ^= 1;
    assert_eq!(
        verify("ES256", &ec.public(), MESSAGE, &flipped),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify("ES256", &P256::new().public(), MESSAGE, &sig),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn a_signature_of_the_wrong_length_is_refused_before_any_arithmetic() {
    let rsa = Rsa::new(2048);
    let sig = rsa.sign(MESSAGE);
    for len in [0, 1, 255, 257, 512, 1024] {
        let mut s = sig.clone();
        s.resize(len, 0);
        assert_eq!(
            verify("PS256", &rsa.public(), MESSAGE, &s),
            Err(SignatureError::Length {
                got: len,
                want: 256
            }),
            "{len}"
        );
    }
    let ec = P256::new();
    let sig = ec.sign(MESSAGE);
    for len in [0, 32, 63, 65, 72, 256] {
        let mut s = sig.clone();
        s.resize(len, 0);
        assert_eq!(
            verify("ES256", &ec.public(), MESSAGE, &s),
            Err(SignatureError::Length { got: len, want: 64 }),
            "{len}"
        );
    }
}

#[test]
fn a_key_of_the_other_type_never_verifies() {
    let rsa = Rsa::new(2048);
    let ec = P256::new();
    let rsa_sig = rsa.sign(MESSAGE);
    let ec_sig = ec.sign(MESSAGE);
    assert_eq!(
        verify("PS256", &ec.public(), MESSAGE, &rsa_sig),
        Err(SignatureError::WrongKeyType("PS256"))
    );
    assert_eq!(
        verify("ES256", &rsa.public(), MESSAGE, &ec_sig),
        Err(SignatureError::WrongKeyType("ES256"))
    );
    for alg in ["RS256", "HS256", "none", "ps256", "PS384", ""] {
        assert_eq!(
            verify(alg, &rsa.public(), MESSAGE, &rsa_sig),
            Err(SignatureError::UnsupportedAlg),
            "{alg}"
        );
    }
}

#[test]
fn key_types_fits_cost_and_weight() {
    let rsa2048 = Rsa::new(2048).public();
    let ec = P256::new().public();
    assert!(rsa2048.same_type(&VerifyingKey::Rsa {
        n: vec![1],
        e: vec![3]
    }));
    assert!(!rsa2048.same_type(&ec));
    assert!(ec.same_type(&P256::new().public()));

    assert!(rsa2048.fits("PS256") && !rsa2048.fits("ES256") && !rsa2048.fits("RS256"));
    assert!(ec.fits("ES256") && !ec.fits("PS256"));

    // Only RSA above 2048 bits is run off the event loop.
    assert!(!rsa2048.is_costly());
    assert!(!ec.is_costly());
    let rsa2056 = VerifyingKey::Rsa {
        n: vec![0xC5; 257],
        e: vec![1, 0, 1],
    };
    assert!(rsa2056.is_costly());

    // Weight: the key bytes plus a fixed overhead per key.
    assert_eq!(rsa2048.weight(), 256 + 3 + 48);
    assert_eq!(ec.weight(), 65 + 24);
    assert_eq!(rsa2056.weight(), 257 + 3 + 48);
}
