//! Tests of `reload`.

use super::*;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use dcrgate_certs::{Authority, IssuedCert, SubjectSpec};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, ServerConfig, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const WAIT: Duration = Duration::from_secs(10);
const VERSIONS: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS12, &rustls::version::TLS13];

fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn client_cert(ca: &Authority, cn: &str) -> IssuedCert {
    ca.issue_client(&SubjectSpec::common_name(cn)).unwrap()
}

fn subject_der(cert_der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    cert.tbs_certificate.subject.as_raw().to_vec()
}

fn not_after_of(cert_der: &[u8]) -> i64 {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    cert.validity().not_after.timestamp()
}

fn hint_ders(hints: &[DistinguishedName]) -> Vec<Vec<u8>> {
    hints.iter().map(|h| h.as_ref().to_vec()).collect()
}

/// A PKI on disk: server CA S1 with a server certificate, client CAs CA1 and CA2.
struct Pki {
    dir: tempfile::TempDir,
    server_ca: Authority,
    client_ca1: Authority,
    client_ca2: Authority,
    client1: IssuedCert,
    client2: IssuedCert,
    chain: PathBuf,
    key: PathBuf,
    ca1_bundle: PathBuf,
    ca2_bundle: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server_ca = Authority::new("reload test server CA S1").unwrap();
        let server = server_ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        let client_ca1 = Authority::new("reload test client CA1").unwrap();
        let client_ca2 = Authority::new("reload test client CA2").unwrap();
        let client1 = client_cert(&client_ca1, "tpp one");
        let client2 = client_cert(&client_ca2, "tpp two");
        let chain = write_file(dir.path(), "server.pem", &server.cert_pem);
        let key = write_file(dir.path(), "server.key", &server.key_pem);
        let ca1_bundle = write_file(dir.path(), "ca1.pem", &client_ca1.cert_pem());
        let ca2_bundle = write_file(dir.path(), "ca2.pem", &client_ca2.cert_pem());
        Self {
            dir,
            server_ca,
            client_ca1,
            client_ca2,
            client1,
            client2,
            chain,
            key,
            ca1_bundle,
            ca2_bundle,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn server_config(
    cert: &Arc<ReloadableCert>,
    verifier: &Arc<ReloadableClientVerifier>,
) -> ServerConfig {
    ServerConfig::builder_with_provider(ring_provider())
        .with_protocol_versions(&VERSIONS)
        .unwrap()
        .with_client_cert_verifier(verifier.clone())
        .with_cert_resolver(cert.clone())
}

fn client_builder(
    trust: &[&Authority],
    version: &'static SupportedProtocolVersion,
) -> rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in trust {
        roots.add(CertificateDer::from(ca.cert_der())).unwrap();
    }
    ClientConfig::builder_with_provider(ring_provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
}

/// A client trusting `trust` for the server, presenting `identity` if any. Resumption is
/// off: every attempt is a full handshake.
fn client_config(
    trust: &[&Authority],
    identity: Option<&IssuedCert>,
    version: &'static SupportedProtocolVersion,
) -> ClientConfig {
    let builder = client_builder(trust, version);
    let mut config = match identity {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(issued.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    config
}

/// A TLS echo server on 127.0.0.1 reporting each server-side handshake result.
struct Server {
    addr: SocketAddr,
    results: mpsc::UnboundedReceiver<io::Result<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(acceptor: TlsAcceptor) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, results) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake = match timeout(WAIT, acceptor.accept(tcp)).await {
                        Ok(handshake) => handshake,
                        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "handshake")),
                    };
                    let mut tls = match handshake {
                        Ok(tls) => tls,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    // Whether the client presented a certificate.
                    let _ = tx.send(Ok(tls.get_ref().1.peer_certificates().is_some()));
                    let _ = timeout(WAIT, async {
                        let mut byte = [0u8; 1];
                        tls.read_exact(&mut byte).await?;
                        tls.write_all(&byte).await?;
                        tls.flush().await?;
                        tls.shutdown().await
                    })
                    .await;
                });
            }
        });
        Self {
            addr,
            results,
            task,
        }
    }

    /// One connection: handshake, send a byte, read it back. Returns the client's view
    /// (the server's leaf certificate, or why it failed) and the server's handshake result.
    async fn attempt(&mut self, config: ClientConfig) -> Attempt {
        let connector = TlsConnector::from(Arc::new(config));
        let addr = self.addr;
        let client = timeout(WAIT, async move {
            let tcp = TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
            let mut tls = connector.connect(name, tcp).await?;
            tls.write_all(&[0x2a]).await?;
            tls.flush().await?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await?;
            if byte != [0x2a] {
                return Err(io::Error::other("echo mismatch"));
            }
            let leaf = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|leaf| leaf.to_vec())
                .ok_or_else(|| io::Error::other("no server certificate"))?;
            Ok::<_, io::Error>(leaf)
        })
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "client")));
        let server = timeout(WAIT, self.results.recv())
            .await
            .expect("server reported the handshake in time")
            .expect("server task alive");
        Attempt {
            client: client.map_err(|e| e.to_string()),
            server,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Attempt {
    client: Result<Vec<u8>, String>,
    /// The server's handshake: whether the client presented a certificate, or why it failed.
    server: io::Result<bool>,
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client = self
            .client
            .as_ref()
            .map(|leaf| format!("server leaf of {} bytes", leaf.len()));
        f.debug_struct("Attempt")
            .field("client", &client)
            .field("server", &self.server)
            .finish()
    }
}

impl Attempt {
    /// The handshake and the echo worked; returns the server leaf the client saw.
    fn accepted(self, what: &str) -> Vec<u8> {
        assert!(
            matches!(self.server, Ok(true)),
            "{what}: server refused, or saw no client certificate: {self:?}"
        );
        match self.client {
            Ok(leaf) => leaf,
            Err(e) => panic!("{what}: client failed: {e}"),
        }
    }

    /// The handshake completed without a client certificate: the connection has no identity
    /// (the proxy refuses every request on it).
    fn anonymous(self, what: &str) {
        assert!(
            matches!(self.server, Ok(false)),
            "{what}: expected a handshake without a client certificate: {self:?}"
        );
        assert!(self.client.is_ok(), "{what}: client failed: {self:?}");
    }

    /// Both sides failed, and the server failed with a rustls error matching `expected`.
    fn refused_by_server(self, what: &str, expected: fn(&rustls::Error) -> bool) {
        assert!(self.client.is_err(), "{what}: client succeeded: {self:?}");
        let error = self
            .server
            .as_ref()
            .err()
            .and_then(|e| e.get_ref())
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert!(
            error.is_some_and(expected),
            "{what}: unexpected server outcome: {self:?}"
        );
    }

    /// The client refused the server (certificate not trusted).
    fn refused_by_client(self, what: &str) {
        let Err(client) = &self.client else {
            panic!("{what}: client succeeded: {self:?}");
        };
        assert!(
            client.contains("UnknownIssuer"),
            "{what}: unexpected client error: {self:?}"
        );
        assert!(self.server.is_err(), "{what}: server succeeded: {self:?}");
    }
}

fn unknown_issuer(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    )
}

/// For both TLS versions: `good` is accepted, `bad` refused as an unknown issuer, and a
/// client without a certificate refused because one is required.
async fn expect_client_auth(
    server: &mut Server,
    pki: &Pki,
    good: &IssuedCert,
    bad: &IssuedCert,
    stage: &str,
) {
    let trust = [&pki.server_ca];
    for version in VERSIONS {
        let v = format!("{stage}, {:?}", version.version);
        server
            .attempt(client_config(&trust, Some(good), version))
            .await
            .accepted(&format!("{v}: trusted client"));
        server
            .attempt(client_config(&trust, Some(bad), version))
            .await
            .refused_by_server(&format!("{v}: client from the other CA"), unknown_issuer);
        server
            .attempt(client_config(&trust, None, version))
            .await
            .anonymous(&format!("{v}: client without certificate"));
    }
}

#[tokio::test]
async fn client_ca_reload_switches_trust_and_keeps_asking_for_a_certificate() {
    let pki = Pki::new();
    let cert = ReloadableCert::load(&pki.chain, &pki.key).unwrap();
    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&cert, &verifier)));
    let mut server = Server::start(acceptor).await;

    expect_client_auth(&mut server, &pki, &pki.client1, &pki.client2, "CA1 loaded").await;

    verifier.reload(&pki.ca2_bundle).unwrap();
    assert!(verifier.offer_client_auth() && !verifier.client_auth_mandatory());
    expect_client_auth(
        &mut server,
        &pki,
        &pki.client2,
        &pki.client1,
        "reloaded to CA2",
    )
    .await;

    let empty = write_file(pki.dir.path(), "empty.pem", "");
    verifier.reload(&empty).unwrap_err();
    expect_client_auth(
        &mut server,
        &pki,
        &pki.client2,
        &pki.client1,
        "empty reload",
    )
    .await;

    // Back to CA1 through a bundle holding both: either CA is accepted, no certificate still
    // is not.
    let both = format!("{}{}", pki.client_ca1.cert_pem(), pki.client_ca2.cert_pem());
    let both = write_file(pki.dir.path(), "both.pem", &both);
    verifier.reload(&both).unwrap();
    let trust = [&pki.server_ca];
    for version in VERSIONS {
        for client in [&pki.client1, &pki.client2] {
            server
                .attempt(client_config(&trust, Some(client), version))
                .await
                .accepted("two-CA bundle");
        }
        server
            .attempt(client_config(&trust, None, version))
            .await
            .anonymous("two-CA bundle, no certificate");
    }
}

#[tokio::test]
async fn client_ca_reload_refuses_unusable_bundles_and_keeps_the_previous_ca() {
    let pki = Pki::new();
    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();
    verifier.reload(&pki.ca2_bundle).unwrap();

    let dir = pki.dir.path();
    let empty = write_file(dir, "empty.pem", "");
    let text = write_file(dir, "text.pem", "not a PEM file\n");
    let key_only = write_file(dir, "key-only.pem", &pki.client1.key_pem);
    let not_a_cert = write_file(
        dir,
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nAAECAwQFBgc=\n-----END CERTIFICATE-----\n",
    );
    for bundle in [&empty, &text, &key_only] {
        let err = verifier.reload(bundle).unwrap_err();
        assert!(
            matches!(err, TlsReloadError::Pem(PemError::NoCertificate(_))),
            "{}: {err:?}",
            bundle.display()
        );
    }
    let err = verifier.reload(&not_a_cert).unwrap_err();
    assert!(
        matches!(
            err,
            TlsReloadError::Pem(PemError::BadAnchor { index: 0, .. })
        ),
        "{err:?}"
    );
    let err = verifier.reload(&pki.path("missing.pem")).unwrap_err();
    assert!(
        matches!(err, TlsReloadError::Pem(PemError::Io { .. })),
        "{err:?}"
    );
    assert!(ReloadableClientVerifier::load(&empty).is_err());

    // Still CA2, a certificate still asked for (and refused without one by the proxy).
    assert!(verifier.offer_client_auth() && !verifier.client_auth_mandatory());
    assert_eq!(
        hint_ders(verifier.root_hint_subjects()),
        vec![subject_der(&pki.client_ca2.cert_der())]
    );
    let cert = ReloadableCert::load(&pki.chain, &pki.key).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&cert, &verifier)));
    let mut server = Server::start(acceptor).await;
    expect_client_auth(
        &mut server,
        &pki,
        &pki.client2,
        &pki.client1,
        "after refusals",
    )
    .await;
}

#[test]
fn root_hints_follow_reloads_and_published_slices_stay_valid() {
    let pki = Pki::new();
    let ca1 = subject_der(&pki.client_ca1.cert_der());
    let ca2 = subject_der(&pki.client_ca2.cert_der());
    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();

    let first = verifier.root_hint_subjects();
    assert_eq!(hint_ders(first), vec![ca1.clone()]);
    verifier.reload(&pki.ca2_bundle).unwrap();
    let second = verifier.root_hint_subjects();
    assert_eq!(hint_ders(second), vec![ca2.clone()]);
    // A slice handed out before the reload is still alive and unchanged.
    assert_eq!(hint_ders(first), vec![ca1.clone()]);

    // Reloading a bundle seen before reuses its slot instead of growing the arena.
    verifier.reload(&pki.ca1_bundle).unwrap();
    let third = verifier.root_hint_subjects();
    assert!(std::ptr::eq(first, third));
    verifier.reload(&pki.ca1_bundle).unwrap();
    assert!(std::ptr::eq(first, verifier.root_hint_subjects()));
    assert_eq!(
        verifier
            .hints
            .slots
            .iter()
            .filter(|s| s.get().is_some())
            .count(),
        2
    );
}

#[test]
fn root_hints_fall_back_to_none_once_the_arena_is_full() {
    let pki = Pki::new();
    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();
    let first = verifier.root_hint_subjects();
    for n in 1..MAX_HINT_SETS {
        let ca = Authority::new(&format!("reload test CA {n}")).unwrap();
        let bundle = write_file(pki.dir.path(), "rotating.pem", &ca.cert_pem());
        verifier.reload(&bundle).unwrap();
        assert_eq!(
            hint_ders(verifier.root_hint_subjects()),
            vec![subject_der(&ca.cert_der())]
        );
    }
    // One distinct set too many: the reload still succeeds, no hints are sent.
    verifier.reload(&pki.ca2_bundle).unwrap();
    assert!(verifier.root_hint_subjects().is_empty());
    assert!(verifier.offer_client_auth());
    let end_entity = CertificateDer::from(pki.client2.cert_der.clone());
    verifier
        .verify_client_cert(&end_entity, &[], UnixTime::now())
        .unwrap();
    let other = CertificateDer::from(pki.client1.cert_der.clone());
    verifier
        .verify_client_cert(&other, &[], UnixTime::now())
        .unwrap_err();
    // A set seen before is still in the arena.
    verifier.reload(&pki.ca1_bundle).unwrap();
    assert!(std::ptr::eq(first, verifier.root_hint_subjects()));
    assert_eq!(
        hint_ders(first),
        vec![subject_der(&pki.client_ca1.cert_der())]
    );
}

/// Presents one certificate and records the CA hints the server sent.
#[derive(Debug)]
struct RecordingResolver {
    key: Arc<CertifiedKey>,
    seen: std::sync::Mutex<Vec<Vec<Vec<u8>>>>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let hints = root_hint_subjects.iter().map(|h| h.to_vec()).collect();
        self.seen.lock().unwrap().push(hints);
        Some(self.key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn clients_receive_the_current_ca_hints() {
    let pki = Pki::new();
    let cert = ReloadableCert::load(&pki.chain, &pki.key).unwrap();
    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&cert, &verifier)));
    let mut server = Server::start(acceptor).await;

    let key = CertifiedKey::from_der(
        vec![CertificateDer::from(pki.client2.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.client2.key_der.clone())),
        &rustls::crypto::ring::default_provider(),
    )
    .unwrap();
    let resolver = Arc::new(RecordingResolver {
        key: Arc::new(key),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let config = |version| {
        let mut config =
            client_builder(&[&pki.server_ca], version).with_client_cert_resolver(resolver.clone());
        config.resumption = rustls::client::Resumption::disabled();
        config
    };

    for version in VERSIONS {
        server
            .attempt(config(version))
            .await
            .refused_by_server("CA2 client, CA1 loaded", unknown_issuer);
    }
    verifier.reload(&pki.ca2_bundle).unwrap();
    for version in VERSIONS {
        server
            .attempt(config(version))
            .await
            .accepted("CA2 client, CA2 loaded");
    }
    let ca1 = subject_der(&pki.client_ca1.cert_der());
    let ca2 = subject_der(&pki.client_ca2.cert_der());
    let seen = resolver.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![vec![ca1.clone()], vec![ca1], vec![ca2.clone()], vec![ca2]]
    );
}

#[tokio::test]
async fn server_cert_reload_switches_the_served_certificate() {
    let pki = Pki::new();
    let server_ca2 = Authority::new("reload test server CA S2").unwrap();
    let cert_b = server_ca2
        .issue_server(&["localhost", "127.0.0.1"])
        .unwrap();
    let chain_b = write_file(pki.dir.path(), "server-b.pem", &cert_b.cert_pem);
    let key_b = write_file(pki.dir.path(), "server-b.key", &cert_b.key_pem);
    let cert_a_der = std::fs::read_to_string(&pki.chain).unwrap();
    let cert_a_der = rustls_pemfile::certs(&mut cert_a_der.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec();
    assert_ne!(cert_a_der, cert_b.cert_der);

    let cert = ReloadableCert::load(&pki.chain, &pki.key).unwrap();
    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&cert, &verifier)));
    let mut server = Server::start(acceptor).await;
    assert_eq!(cert.not_after(), not_after_of(&cert_a_der));

    let s1 = [&pki.server_ca];
    let s2 = [&server_ca2];
    for version in VERSIONS {
        let leaf = server
            .attempt(client_config(&s1, Some(&pki.client1), version))
            .await
            .accepted("trusting S1, cert A served");
        assert_eq!(leaf, cert_a_der);
        server
            .attempt(client_config(&s2, Some(&pki.client1), version))
            .await
            .refused_by_client("trusting only S2, cert A served");
    }

    cert.reload(&chain_b, &key_b).unwrap();
    assert_eq!(cert.not_after(), not_after_of(&cert_b.cert_der));
    for version in VERSIONS {
        let leaf = server
            .attempt(client_config(&s2, Some(&pki.client1), version))
            .await
            .accepted("trusting S2, cert B served");
        assert_eq!(leaf, cert_b.cert_der);
        server
            .attempt(client_config(&s1, Some(&pki.client1), version))
            .await
            .refused_by_client("trusting only S1, cert B served");
        // Serving a new certificate does not relax client authentication.
        server
            .attempt(client_config(&s2, None, version))
            .await
            .anonymous("cert B served, no client certificate");
    }
}

#[tokio::test]
async fn server_cert_reload_with_unusable_files_keeps_the_old_certificate() {
    let pki = Pki::new();
    let other = pki
        .server_ca
        .issue_server(&["localhost", "127.0.0.1"])
        .unwrap();
    let dir = pki.dir.path();
    let other_chain = write_file(dir, "other.pem", &other.cert_pem);
    let other_key = write_file(dir, "other.key", &other.key_pem);
    let empty = write_file(dir, "empty.pem", "");

    let cert = ReloadableCert::load(&pki.chain, &pki.key).unwrap();
    let before = cert.not_after();
    let served = Arc::clone(&read(&cert.current));

    let err = cert.reload(&other_chain, &pki.key).unwrap_err();
    assert!(
        matches!(err, TlsReloadError::Pem(PemError::Mismatch { .. })),
        "{err:?}"
    );
    let err = cert.reload(&pki.chain, &other_key).unwrap_err();
    assert!(
        matches!(err, TlsReloadError::Pem(PemError::Mismatch { .. })),
        "{err:?}"
    );
    let err = cert.reload(&other_key, &other_key).unwrap_err();
    assert!(
        matches!(err, TlsReloadError::Pem(PemError::NoCertificate(_))),
        "{err:?}"
    );
    let err = cert.reload(&other_chain, &other_chain).unwrap_err();
    assert!(
        matches!(err, TlsReloadError::Pem(PemError::NoKey(_))),
        "{err:?}"
    );
    let err = cert.reload(&empty, &other_key).unwrap_err();
    assert!(
        matches!(err, TlsReloadError::Pem(PemError::NoCertificate(_))),
        "{err:?}"
    );
    let err = cert
        .reload(&pki.path("missing.pem"), &other_key)
        .unwrap_err();
    assert!(
        matches!(err, TlsReloadError::Pem(PemError::Io { .. })),
        "{err:?}"
    );
    assert!(ReloadableCert::load(&other_chain, &pki.key).is_err());

    assert!(Arc::ptr_eq(&served, &read(&cert.current)));
    assert_eq!(cert.not_after(), before);

    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&cert, &verifier)));
    let mut server = Server::start(acceptor).await;
    for version in VERSIONS {
        let leaf = server
            .attempt(client_config(
                &[&pki.server_ca],
                Some(&pki.client1),
                version,
            ))
            .await
            .accepted("after refused reloads");
        assert_eq!(leaf, served.cert[0].to_vec());
        assert_ne!(leaf, other.cert_der);
    }
}

/// A client certificate valid for `days` (the validity type comes from the `time` crate,
/// reached here through x509-parser).
fn client_valid_for(ca: &Authority, cn: &str, days: i64) -> IssuedCert {
    use x509_parser::time::ASN1Time;
    let validity = (ASN1Time::from_timestamp(days * 86_400).unwrap()
        - ASN1Time::from_timestamp(0).unwrap())
    .unwrap();
    ca.issue_client_valid(&SubjectSpec::common_name(cn), validity)
        .unwrap()
}

#[test]
fn not_after_follows_reloads() {
    // Client certificates, because they can be issued with a chosen validity; the resolver
    // does not care about the extended key usage.
    let pki = Pki::new();
    let short = client_valid_for(&pki.client_ca1, "short", 30);
    let long = client_valid_for(&pki.client_ca1, "long", 400);
    let dir = pki.dir.path();
    let short_chain = write_file(dir, "short.pem", &short.cert_pem);
    let short_key = write_file(dir, "short.key", &short.key_pem);
    let long_chain = write_file(dir, "long.pem", &long.cert_pem);
    let long_key = write_file(dir, "long.key", &long.key_pem);

    let cert = ReloadableCert::load(&short_chain, &short_key).unwrap();
    assert_eq!(cert.not_after(), not_after_of(&short.cert_der));
    cert.reload(&long_chain, &long_key).unwrap();
    assert_eq!(cert.not_after(), not_after_of(&long.cert_der));
    assert_eq!(
        not_after_of(&long.cert_der) - not_after_of(&short.cert_der),
        370 * 86_400
    );
    cert.reload(&short_chain, &long_key).unwrap_err();
    assert_eq!(cert.not_after(), not_after_of(&long.cert_der));
}

#[test]
fn types_are_send_sync_and_debug() {
    fn assert_traits<T: Send + Sync + fmt::Debug>() {}
    assert_traits::<ReloadableCert>();
    assert_traits::<ReloadableClientVerifier>();
    let pki = Pki::new();
    let cert = ReloadableCert::load(&pki.chain, &pki.key).unwrap();
    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();
    let cert_debug = format!("{cert:?}");
    assert!(cert_debug.starts_with("ReloadableCert"), "{cert_debug}");
    assert!(!cert_debug.contains(pki.client1.key_pem.as_str()));
    let verifier_debug = format!("{verifier:?}");
    assert!(
        verifier_debug.starts_with("ReloadableClientVerifier"),
        "{verifier_debug}"
    );
}

#[tokio::test]
async fn pingora_tls_settings_take_the_reloadable_types() {
    use pingora::listeners::tls::TlsSettings;
    use pingora::protocols::ALPN;

    use crate::metrics::Metrics;
    use crate::tls::identity::IdentityCallback;

    let pki = Pki::new();
    let cert = ReloadableCert::load(&pki.chain, &pki.key).unwrap();
    let verifier = ReloadableClientVerifier::load(&pki.ca1_bundle).unwrap();
    let metrics = Arc::new(Metrics::new().unwrap());
    let mut settings =
        TlsSettings::with_callbacks(Box::new(IdentityCallback::new(metrics, verifier.clone())))
            .unwrap();
    settings.set_cert_resolver(cert.clone());
    settings.set_client_cert_verifier(verifier.clone());
    settings.set_alpn(ALPN::H1);
    // pingora builds its own ServerConfig (TLS 1.2 and 1.3, the process default provider)
    // around the two objects; drive the resulting rustls acceptor directly.
    let acceptor = settings.build();
    let mut server = Server::start(acceptor.acceptor.clone()).await;

    expect_client_auth(
        &mut server,
        &pki,
        &pki.client1,
        &pki.client2,
        "pingora, CA1",
    )
    .await;
    verifier.reload(&pki.ca2_bundle).unwrap();
    expect_client_auth(
        &mut server,
        &pki,
        &pki.client2,
        &pki.client1,
        "pingora, CA2",
    )
    .await;
}

#[test]
fn every_refusal_is_a_closed_label() {
    use rustls::CertificateError as C;
    let errors = [
        rustls::Error::InvalidCertificate(C::UnknownIssuer),
        rustls::Error::InvalidCertificate(C::Expired),
        rustls::Error::InvalidCertificate(C::NotValidYet),
        rustls::Error::InvalidCertificate(C::Revoked),
        rustls::Error::InvalidCertificate(C::UnknownRevocationStatus),
        rustls::Error::InvalidCertificate(C::ExpiredRevocationList),
        rustls::Error::InvalidCertificate(C::BadSignature),
        rustls::Error::InvalidCertificate(C::InvalidPurpose),
        rustls::Error::General("x".into()),
    ];
    let labels: Vec<&str> = errors.iter().map(super::refusal).collect();
    assert_eq!(labels, super::REFUSALS);
}
