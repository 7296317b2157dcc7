//! Key sets: which members become keys, and what the parsed set says of itself.

use dcrgate_certs::RsaSigningKey;
use dcrgate_jose::jwk::JwkSet;
use dcrgate_jose::verify::verify;

use crate::world::{ec_jwk, rsa_jwk, Rsa, P256};

fn set(members: &[String]) -> JwkSet {
    JwkSet::parse(format!(r#"{{"keys":[{}]}}"#, members.join(",")).as_bytes()).expect("a set")
}

#[test]
fn a_published_p256_key_verifies_its_signatures() {
    let ec = P256::new();
    let keys = set(&[ec.jwk("ec-1")]);
    let found = keys.get("ec-1");
    assert_eq!(found.len(), 1);
    let sig = ec.sign(b"message");
    assert_eq!(verify("ES256", &found[0], b"message", &sig), Ok(()));
}

#[test]
fn a_published_rsa_key_verifies_its_signatures() {
    let rsa = Rsa::new(2048);
    let keys = JwkSet::parse(RsaSigningKey::jwks(&[&rsa.key]).as_bytes()).expect("set");
    let found = keys.get("rsa");
    assert_eq!(found.len(), 1);
    let sig = rsa.sign(b"message");
    assert_eq!(verify("PS256", &found[0], b"message", &sig), Ok(()));
}

#[test]
fn only_p256_points_of_the_right_size_are_keys() {
    let x = [7u8; 32];
    let y = [9u8; 32];
    let keys = set(&[
        ec_jwk("p256", "P-256", &x, &y),
        ec_jwk("p384", "P-384", &x, &y),
        ec_jwk("no-crv", "", &x, &y),
        ec_jwk("short-x", "P-256", &x[..31], &y),
        ec_jwk("short-y", "P-256", &x, &y[..31]),
        ec_jwk("long-x", "P-256", &[7u8; 33], &y),
        ec_jwk("long-y", "P-256", &x, &[9u8; 33]),
    ]);
    assert_eq!(keys.get("p256").len(), 1);
    for kid in ["p384", "no-crv", "short-x", "short-y", "long-x", "long-y"] {
        assert!(keys.get(kid).is_empty(), "{kid}");
    }
    assert_eq!(keys.skipped(), 6);
}

#[test]
fn use_must_be_sig_when_present() {
    let member = |kid: &str, use_: Option<&str>| {
        let m = rsa_jwk(kid, 256);
        match use_ {
            Some(u) => m.replacen('{', &format!(r#"{{"use":"{u}","#), 1),
            None => m,
        }
    };
    let keys = set(&[
        member("absent", None),
        member("sig", Some("sig")),
        member("enc", Some("enc")),
        member("empty", Some("")),
    ]);
    assert_eq!(keys.get("absent").len(), 1);
    assert_eq!(keys.get("sig").len(), 1);
    assert!(keys.get("enc").is_empty());
    assert!(keys.get("empty").is_empty());
}

#[test]
fn modulus_bits_are_counted_exactly() {
    // 2048 bits exactly (top bit set in 256 bytes) is accepted; 2047 bits (256 bytes, top bit
    // clear) is not; 4096 bits is the default ceiling and 4097 bits is over it.
    let with_top = |kid: &str, bytes: usize, top: u8| {
        let mut n = vec![0xC5u8; bytes];
        n[0] = top;
        format!(
            r#"{{"kty":"RSA","kid":"{kid}","n":"{}","e":"AQAB"}}"#,
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, n)
        )
    };
    let keys = set(&[
        with_top("b2048", 256, 0x80),
        with_top("b2047", 256, 0x40),
        with_top("b4096", 512, 0xFF),
        with_top("b4097", 513, 0x01),
        with_top("b4089", 512, 0x01),
    ]);
    assert_eq!(keys.get("b2048").len(), 1);
    assert!(keys.get("b2047").is_empty());
    assert_eq!(keys.get("b4096").len(), 1);
    assert!(keys.get("b4097").is_empty());
    assert_eq!(keys.get("b4089").len(), 1);
}

#[test]
fn a_set_counts_its_keys_and_its_weight() {
    let empty = set(&[]);
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    assert_eq!(empty.weight(), 64);

    let ec = P256::new();
    let one = set(&[rsa_jwk("a", 256)]);
    assert!(!one.is_empty());
    assert_eq!(one.len(), 1);
    // kid + per-kid overhead + the key (n + e + 48) + the set's overhead + its listing
    // (the kid + 32, one thumbprint of 75).
    assert_eq!(one.listing().weight(), (1 + 32) + 75);
    assert_eq!(one.weight(), 1 + 48 + (256 + 3 + 48) + 64 + (1 + 32) + 75);

    // Two types under one kid count as two keys.
    let two = set(&[rsa_jwk("a", 256), ec.jwk("a"), ec.jwk("bb")]);
    assert_eq!(two.len(), 3);
    assert_eq!(two.get("a").len(), 2);
    assert_eq!(
        two.weight(),
        (1 + 48 + (256 + 3 + 48) + (65 + 24)) + (2 + 48 + (65 + 24)) + 64 + two.listing().weight()
    );
    // Two kids, two thumbprints (the EC key is listed under both kids).
    assert_eq!(two.listing().weight(), (1 + 32) + (2 + 32) + 2 * 75);

    // Only unusable members: empty, and what was skipped is counted.
    let none = set(&[rsa_jwk("weak", 128), rsa_jwk("", 256)]);
    assert!(none.is_empty());
    assert_eq!(none.len(), 0);
    assert_eq!(none.skipped(), 2);
}
