//! Criterion benchmarks of client certificate revocation at the handshake.
//!
//! - `revocation/verify_client_cert/*`: the verifier alone, with revocation off, with CRLs
//!   (`require`, chain scope; a CRL listing no serials and one listing 1,000), and with a cached
//!   OCSP answer (`ocsp_then_crl`, the answer fetched once from a responder on loopback).
//! - `revocation/handshake/*`: whole TLS 1.3 handshakes with client authentication, client and
//!   server in memory (no sockets), for the same settings: what revocation costs a new
//!   connection.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dcrgate::config::{
    CrlFile, OcspSettings, Revocation, RevocationMode, RevocationOrder, RevocationScope,
};
use dcrgate::outbound::pool::PoolLimits;
use dcrgate::outbound::HttpsClient;
use dcrgate::tls::crl;
use dcrgate::tls::ocsp::OcspCache;
use dcrgate::tls::revocation::{Decision, RevocationVerifier};
use dcrgate_certs::{Authority, IssuedCert, Locations, SubjectSpec};
use dcrgate_ocsp::CertStatus;
use dcrgate_sandbox::ocsp_responder::OcspResponder;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

fn verifier(ca: &Authority, revocation: &Revocation, ocsp: Arc<OcspCache>) -> RevocationVerifier {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der()))
        .expect("anchor");
    let crls = crl::load_all(&revocation.crls).expect("CRLs");
    RevocationVerifier::build(
        Arc::new(roots),
        &[ca.cert_der()],
        revocation,
        &crls,
        ocsp,
        None,
    )
    .expect("verifier")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One whole handshake between `client` and `server`, in memory.
fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) {
    let name = ServerName::try_from("localhost").expect("name");
    let mut c = ClientConnection::new(client.clone(), name).expect("client");
    let mut s = ServerConnection::new(server.clone()).expect("server");
    let mut buf = Vec::with_capacity(16 * 1024);
    for _ in 0..10 {
        if !c.is_handshaking() && !s.is_handshaking() {
            return;
        }
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).expect("client write");
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            s.read_tls(&mut rd).expect("server read");
        }
        s.process_new_packets().expect("server accepts the client");
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).expect("server write");
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            c.read_tls(&mut rd).expect("client read");
        }
        c.process_new_packets().expect("client accepts the server");
    }
    panic!("the handshake did not complete");
}

fn revocation(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ca = Authority::new("bench TPP CA").expect("CA");
    let server_ca = Authority::new("bench server CA").expect("CA");
    let served = server_ca.issue_server(&["localhost"]).expect("server cert");
    let responder = rt
        .block_on(OcspResponder::start(ca.ocsp_signer(), false))
        .expect("responder");
    let plain = dcrgate_benches::transport_cert(&ca);
    let located = ca
        .issue_client_at(
            &SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-123456", "0015800001HQQrZAAX"),
            &Locations {
                ocsp: Some(&responder.url()),
                crl: None,
            },
        )
        .expect("certificate");
    responder.set(&located.serial, CertStatus::Good);
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
    let ocsp_settings = Revocation {
        order: RevocationOrder::OcspThenCrl,
        ocsp: OcspSettings {
            allowed_hosts: vec!["localhost".into()],
            timeout: std::time::Duration::from_secs(5),
            max_cache: std::time::Duration::from_secs(3600),
            allow_private: true,
            retry: std::time::Duration::from_secs(60),
        },
        ..with("ocsp", &other_refs)
    };
    let cases: [(&str, Revocation, &IssuedCert); 4] = [
        ("off", Revocation::default(), &plain),
        ("crl_empty", with("empty", &[]), &plain),
        ("crl_1000", with("large", &other_refs), &plain),
        ("ocsp_cached", ocsp_settings, &located),
    ];
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    for (name, settings, cert) in &cases {
        let cache = Arc::new(OcspCache::new(
            Some(HttpsClient::new(tls.clone(), PoolLimits::OFF)),
            None,
        ));
        let v = Arc::new(verifier(&ca, settings, cache));
        let leaf = CertificateDer::from(cert.cert_der.clone());
        // The OCSP answer is fetched once, as a connection's first request would.
        let chain = [leaf.clone()];
        assert_eq!(rt.block_on(v.confirm(&chain)), Decision::Accept, "{name}");
        let now = UnixTime::now();
        assert!(v.verify_client_cert(&leaf, &[], now).is_ok(), "{name}");
        c.bench_function(&format!("revocation/verify_client_cert/{name}"), |b| {
            b.iter(|| v.verify_client_cert(black_box(&leaf), &[], now))
        });

        let server = Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_client_cert_verifier(v.clone())
                .with_single_cert(
                    vec![CertificateDer::from(served.cert_der.clone())],
                    PrivateKeyDer::try_from(served.key_der.clone()).expect("key"),
                )
                .expect("server config"),
        );
        let mut server_roots = RootCertStore::empty();
        server_roots
            .add(CertificateDer::from(server_ca.cert_der()))
            .expect("anchor");
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(server_roots)
            .with_client_auth_cert(
                vec![leaf.clone()],
                PrivateKeyDer::try_from(cert.key_der.clone()).expect("key"),
            )
            .expect("client config");
        // Every iteration a full handshake, as a new TPP connection.
        client.resumption = rustls::client::Resumption::disabled();
        let client = Arc::new(client);
        c.bench_function(&format!("revocation/handshake/{name}"), |b| {
            b.iter(|| handshake(&client, &server))
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, revocation);
criterion_main!(benches);
