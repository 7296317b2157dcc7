//! Criterion benchmarks of the client identity: building it from an OBWAC-shaped transport
//! certificate (X.509 parse, DN parse, SHA-256 thumbprint — once per TLS handshake), and the
//! per-request lookup, which downcasts the connection's TLS extension and clones an `Arc`.

use std::any::Any;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dcrgate::tls::identity::ClientIdentity;
use dcrgate_certs::Authority;

fn identity(c: &mut Criterion) {
    let ca = Authority::new("bench TPP CA").expect("CA");
    let cert = dcrgate_benches::transport_cert(&ca);
    let der = cert.cert_der;
    println!(
        "transport certificate: {} bytes DER (ECDSA P-256)",
        der.len()
    );
    c.bench_function("identity/from_der", |b| {
        b.iter(|| ClientIdentity::from_der(black_box(&der)))
    });

    // What the handshake callback stores in pingora's SslDigestExtension, and what each
    // request does with it (`extension.get::<Arc<ClientIdentity>>().cloned()`).
    let stored: Arc<dyn Any + Send + Sync> =
        Arc::new(Arc::new(ClientIdentity::from_der(&der).expect("identity")));
    c.bench_function("identity/per_request_lookup", |b| {
        b.iter(|| {
            black_box(&stored)
                .downcast_ref::<Arc<ClientIdentity>>()
                .cloned()
        })
    });
}

criterion_group!(benches, identity);
criterion_main!(benches);
