//! Criterion benchmarks of client certificate verification at the handshake, with revocation
//! off and with CRLs (`require`, chain scope): the cost a CRL adds per full handshake, for a CRL
//! listing no serials and one listing 1,000 (a large issuing CA's list).

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dcrgate::config::{CrlFile, Revocation, RevocationMode, RevocationScope};
use dcrgate::tls::crl;
use dcrgate::tls::revocation::RevocationVerifier;
use dcrgate_certs::Authority;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::RootCertStore;

fn verifier(ca: &Authority, revocation: &Revocation) -> RevocationVerifier {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der()))
        .expect("anchor");
    let crls = crl::load_all(&revocation.crls).expect("CRLs");
    RevocationVerifier::build(Arc::new(roots), &[ca.cert_der()], revocation, &crls, None)
        .expect("verifier")
}

fn revocation(c: &mut Criterion) {
    let ca = Authority::new("bench TPP CA").expect("CA");
    let cert = dcrgate_benches::transport_cert(&ca);
    let leaf = CertificateDer::from(cert.cert_der.clone());
    let dir = std::env::temp_dir().join(format!("dcrgate-bench-crl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // 1,000 other serials: what a CRL of a large issuing CA may list.
    let others: Vec<Vec<u8>> = (0u32..1000)
        .map(|i| {
            let mut s = vec![0x11; 16];
            s[12..].copy_from_slice(&i.to_be_bytes());
            s
        })
        .collect();
    let other_refs: Vec<&[u8]> = others.iter().map(Vec::as_slice).collect();
    let with = |name: &str, revoked: &[&[u8]]| {
        let path = dir.join(format!("{name}.crl.pem"));
        std::fs::write(&path, ca.crl(revoked, 86_400).expect("CRL")).expect("write CRL");
        Revocation {
            mode: RevocationMode::Require,
            scope: RevocationScope::Chain,
            crls: vec![CrlFile {
                issuer: name.into(),
                path,
                url: None,
            }],
            ..Revocation::default()
        }
    };
    let cases = [
        ("off", Revocation::default()),
        ("crl_empty", with("empty", &[])),
        ("crl_1000", with("large", &other_refs)),
    ];
    for (name, settings) in &cases {
        let v = verifier(&ca, settings);
        let now = UnixTime::now();
        assert!(v.verify_client_cert(&leaf, &[], now).is_ok(), "{name}");
        c.bench_function(&format!("revocation/verify_client_cert/{name}"), |b| {
            b.iter(|| v.verify_client_cert(black_box(&leaf), &[], now))
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, revocation);
criterion_main!(benches);
