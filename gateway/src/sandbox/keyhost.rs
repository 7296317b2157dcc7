//! A TPP key host: https on 127.0.0.1 with a sandbox certificate, serving JWK sets by path,
//! and able to misbehave on request (slow, garbage, oversized, redirecting, wrong type) so the
//! gateway's fail-closed paths can be shown. Counts fetches per path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::sandbox::SandboxError;

/// What the key host serves at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serve {
    /// 200 with this JSON body and `application/json`.
    Json(String),
    /// 200 with this body and content type.
    Typed(String, &'static str),
    /// A 302 redirect to this location.
    Redirect(String),
    /// Wait, then serve the JSON.
    Slow(Duration, String),
    /// 200 JSON that claims and sends this many bytes.
    Huge(usize),
    /// This status with an empty body.
    Status(u16),
}

/// The running key host.
pub struct KeyHost {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Serve>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: JoinHandle<()>,
}

impl KeyHost {
    /// Start with a certificate chain and key (PEM), on an ephemeral loopback port.
    pub async fn start(cert_pem: &str, key_pem: &str) -> Result<Self, SandboxError> {
        let certs: Vec<CertificateDer<'static>> =
            rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<_, _>>()?;
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_bytes())?
            .ok_or_else(|| SandboxError::Http("no key".into()))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let routes: Arc<Mutex<HashMap<String, Serve>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, r, h) = (acceptor.clone(), r.clone(), h.clone());
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = serve_one(&mut tls, &r, &h).await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Ok(Self {
            addr,
            routes,
            hits,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The https URL of `path` (host `localhost`).
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Serve `what` at `path`.
    pub fn set(&self, path: &str, what: Serve) {
        if let Ok(mut g) = self.routes.lock() {
            g.insert(path.to_owned(), what);
        }
    }

    /// How many requests `path` has had.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .ok()
            .and_then(|g| g.get(path).copied())
            .unwrap_or(0)
    }

    /// How many requests all paths have had.
    pub fn total_hits(&self) -> usize {
        self.hits.lock().map(|g| g.values().sum()).unwrap_or(0)
    }
}

impl Drop for KeyHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    routes: &Mutex<HashMap<String, Serve>>,
    hits: &Mutex<HashMap<String, usize>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    if let Ok(mut g) = hits.lock() {
        *g.entry(path.clone()).or_default() += 1;
    }
    let what = routes
        .lock()
        .ok()
        .and_then(|g| {
            // A route without a query also serves that path with any query (`?v=2`).
            g.get(&path)
                .or_else(|| g.get(path.split('?').next().unwrap_or_default()))
                .cloned()
        })
        .unwrap_or(Serve::Status(404));
    let ok = |body: &str, ct: &str| {
        format!("HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
    };
    match what {
        Serve::Json(body) => {
            stream
                .write_all(ok(&body, "application/json").as_bytes())
                .await?
        }
        Serve::Typed(body, ct) => stream.write_all(ok(&body, ct).as_bytes()).await?,
        Serve::Slow(d, body) => {
            tokio::time::sleep(d).await;
            stream
                .write_all(ok(&body, "application/json").as_bytes())
                .await?
        }
        Serve::Redirect(to) => {
            let r = format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(r.as_bytes()).await?
        }
        Serve::Status(code) => {
            let r =
                format!("HTTP/1.1 {code} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(r.as_bytes()).await?
        }
        Serve::Huge(n) => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            let block = vec![b' '; 16 * 1024];
            let mut sent = 0;
            while sent < n {
                let k = block.len().min(n - sent);
                if stream.write_all(&block[..k]).await.is_err() {
                    break;
                }
                sent += k;
            }
        }
    }
    stream.flush().await
}
