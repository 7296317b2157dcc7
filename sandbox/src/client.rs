//! An mTLS client for the sandbox: presents a TPP transport certificate (or none), trusts the
//! sandbox server CA, sends raw HTTP/1.1 bytes so every malformed shape can be tried.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dcrgate_certs::IssuedCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::http1::{read_response, RawResponse};
use crate::SandboxError;

/// How long one exchange may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// A TLS client towards the gateway.
#[derive(Clone)]
pub struct TppClient {
    connector: TlsConnector,
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
}

impl TppClient {
    /// A client trusting `server_ca_pem`, presenting the certificate chain `chain` (leaf first,
    /// DER) with the leaf's PKCS#8 `key_der`.
    pub fn with_chain(
        server_ca_pem: &str,
        chain: &[Vec<u8>],
        key_der: &[u8],
        addr: SocketAddr,
    ) -> Result<Self, SandboxError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut server_ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let chain = chain.iter().cloned().map(CertificateDer::from).collect();
        let key = PrivateKeyDer::try_from(key_der.to_vec())
            .map_err(|e| SandboxError::Signing(e.to_owned()))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
        let config = Arc::new(config);
        Ok(Self {
            connector: TlsConnector::from(config.clone()),
            config,
            addr,
        })
    }

    /// A client trusting `server_ca_pem`, presenting `identity` if given.
    pub fn new(
        server_ca_pem: &str,
        identity: Option<&IssuedCert>,
        addr: SocketAddr,
    ) -> Result<Self, SandboxError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut server_ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
        let config = match identity {
            Some(id) => {
                let chain = vec![CertificateDer::from(id.cert_der.clone())];
                let key = PrivateKeyDer::try_from(id.key_der.clone())
                    .map_err(|e| SandboxError::Signing(e.to_owned()))?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        let config = Arc::new(config);
        Ok(Self {
            connector: TlsConnector::from(config.clone()),
            config,
            addr,
        })
    }

    /// The rustls configuration (shared session cache: a second connection resumes).
    pub fn config(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }

    /// Open a TLS connection (handshake done).
    pub async fn connect(&self) -> Result<TlsStream<TcpStream>, SandboxError> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name =
            ServerName::try_from("localhost").map_err(|e| SandboxError::Http(e.to_string()))?;
        Ok(self.connector.connect(name, tcp).await?)
    }

    /// Open a TLS connection from the local address `local` (the port reused: a test of what
    /// the server does when a later connection has the addresses of an earlier one).
    pub async fn connect_from(
        &self,
        local: SocketAddr,
    ) -> Result<TlsStream<TcpStream>, SandboxError> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(local)?;
        let tcp = socket.connect(self.addr).await?;
        let name =
            ServerName::try_from("localhost").map_err(|e| SandboxError::Http(e.to_string()))?;
        Ok(self.connector.connect(name, tcp).await?)
    }

    /// Send raw request bytes on a new connection and read the response.
    pub async fn send(&self, raw: &[u8]) -> Result<RawResponse, SandboxError> {
        tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            let mut tls = self.connect().await?;
            tls.write_all(raw).await?;
            tls.flush().await?;
            read_response(&mut tls).await
        })
        .await
        .map_err(|_| SandboxError::Timeout("gateway response"))?
    }

    /// `PUT /register/{client_id}` with a bearer token and a body of the given content type.
    pub async fn put(
        &self,
        client_id: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Result<RawResponse, SandboxError> {
        self.send(&put_request(client_id, bearer, content_type, body, &[]))
            .await
    }
}

/// `PUT /register/{client_id}` with the given bearer token, content type, body and extra
/// headers, as raw HTTP/1.1 bytes.
pub fn put_request(
    client_id: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let target = format!("/register/{client_id}");
    request("PUT", &target, bearer, Some(content_type), body, extra)
}

/// Any request as raw HTTP/1.1 bytes; `Content-Length` is sent when there is a content type or
/// a body.
pub fn request(
    method: &str,
    target: &str,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if content_type.is_some() || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}
