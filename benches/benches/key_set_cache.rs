//! Criterion benchmarks of the key set cache: a hit (the path of every compliant update after
//! the first), and an unknown `kid` inside the refetch cooldown (the path of a hostile request
//! naming made-up kids). The cache is prefilled by one real fetch over TLS from a sandbox key
//! host on 127.0.0.1; the benchmarks run inside a tokio runtime and make no further fetch.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use dcrgate::config::KeySets;
use dcrgate::keyset::{KeySetCache, KeySetError, KeySetFetcher};
use dcrgate::metrics::Metrics;
use dcrgate_certs::RsaSigningKey;
use dcrgate_sandbox::keyhost::{KeyHost, Serve};
use dcrgate_sandbox::pki::SandboxPki;
use url::Url;

const KID: &str = "bench-kid-1";

fn key_set_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let pki = SandboxPki::generate().expect("PKI");
    let dir = std::env::temp_dir().join(format!("dcrgate-bench-keyset-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_file = dir.join("server-ca.pem");
    std::fs::write(&ca_file, pki.server_ca.cert_pem()).expect("CA file");

    let key_host = rt
        .block_on(KeyHost::start(
            &pki.key_host.cert_pem,
            &pki.key_host.key_pem,
        ))
        .expect("key host");
    let key = RsaSigningKey::generate(KID, 2048).expect("RSA key");
    key_host.set("/jwks.json", Serve::Json(RsaSigningKey::jwks(&[&key])));
    let url = Url::parse(&key_host.url("/jwks.json")).expect("URL");

    let cfg = KeySets {
        extra_ca_file: Some(ca_file),
        use_public_roots: false,
        allow_private_addresses: true,
        ..KeySets::default()
    };
    let fetcher = KeySetFetcher::new(&cfg).expect("fetcher");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let cache = KeySetCache::new(&cfg, fetcher, metrics);
    let keys = rt.block_on(cache.keys(&url, KID)).expect("prefill");
    assert_eq!((keys.len(), key_host.hits("/jwks.json")), (1, 1));

    c.bench_function("key_set_cache/hit", |b| {
        b.to_async(&rt).iter(|| cache.keys(&url, KID))
    });

    // The first unknown kid refetches once; inside the cooldown the rest are refused unfetched.
    let first = rt.block_on(cache.keys(&url, "made-up-kid"));
    assert_eq!(first, Err(KeySetError::UnknownKid));
    c.bench_function("key_set_cache/unknown_kid_in_cooldown", |b| {
        b.to_async(&rt).iter(|| cache.keys(&url, "made-up-kid"))
    });
    assert_eq!(
        key_host.hits("/jwks.json"),
        2,
        "no fetch beyond the one refetch"
    );
    drop(key_host);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, key_set_cache);
criterion_main!(benches);
