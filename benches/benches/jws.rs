//! Criterion benchmarks of the JOSE work on a compliant update: compact JWS parsing (header
//! rules, strict JSON) of a realistic DCR request object, PS256 verification on ring with an
//! RSA-2048 key, and ES256 for comparison.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dcrgate::jose::jws::parse_compact;
use dcrgate::jose::verify::{verify, VerifyingKey};
use dcrgate_benches::payload;
use dcrgate_certs::RsaSigningKey;
use dcrgate_sandbox::tpp::Signer;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The shared compliant payload as a request object: claims plus a `jti` and `client_id`.
fn claims() -> Value {
    let mut m = payload(now());
    m.insert("client_id".into(), json!("client-1"));
    m.insert("jti".into(), json!("5f0c7a1e-3a53-4d0b-9a67-0b8c3f7d2e11"));
    Value::Object(m)
}

fn es256_token(claims: &Value) -> (String, VerifyingKey) {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("P-256 key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("P-256 key pair");
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "ec-1", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key.sign(&rng, input.as_bytes()).expect("ES256 signature");
    let point = key.public_key().as_ref().to_vec();
    (
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())),
        VerifyingKey::P256 { point },
    )
}

fn jws(c: &mut Criterion) {
    let claims = claims();
    let rsa = RsaSigningKey::generate("bench-kid-1", 2048).expect("RSA key");
    let ps_key = VerifyingKey::Rsa {
        n: rsa.n.clone(),
        e: rsa.e.clone(),
    };
    let signer = Signer::new(rsa).expect("signer");
    let ps256 = signer.sign(&claims);
    let ps_algs = vec!["PS256".to_owned()];
    let parsed = parse_compact(ps256.as_bytes(), &ps_algs).expect("PS256 token parses");
    verify("PS256", &ps_key, &parsed.signing_input, &parsed.signature).expect("PS256 verifies");
    println!("request object: {} bytes (PS256, RSA-2048)", ps256.len());

    c.bench_function("jws/parse_compact", |b| {
        b.iter(|| parse_compact(black_box(ps256.as_bytes()), &ps_algs))
    });
    c.bench_function("jws/verify_ps256", |b| {
        b.iter(|| {
            verify(
                "PS256",
                &ps_key,
                black_box(&parsed.signing_input),
                black_box(&parsed.signature),
            )
        })
    });
    c.bench_function("jws/parse_and_verify_ps256", |b| {
        b.iter(|| {
            let j = parse_compact(black_box(ps256.as_bytes()), &ps_algs).expect("parses");
            verify(&j.alg, &ps_key, &j.signing_input, &j.signature)
        })
    });

    let (es256, es_key) = es256_token(&claims);
    let es_algs = vec!["ES256".to_owned()];
    let parsed = parse_compact(es256.as_bytes(), &es_algs).expect("ES256 token parses");
    verify("ES256", &es_key, &parsed.signing_input, &parsed.signature).expect("ES256 verifies");
    c.bench_function("jws/verify_es256", |b| {
        b.iter(|| {
            verify(
                "ES256",
                &es_key,
                black_box(&parsed.signing_input),
                black_box(&parsed.signature),
            )
        })
    });
    c.bench_function("jws/parse_and_verify_es256", |b| {
        b.iter(|| {
            let j = parse_compact(black_box(es256.as_bytes()), &es_algs).expect("parses");
            verify(&j.alg, &es_key, &j.signing_input, &j.signature)
        })
    });
}

criterion_group!(benches, jws);
criterion_main!(benches);
