//! A TPP key host: https on 127.0.0.1 with a sandbox certificate, serving JWK sets by path,
//! and able to misbehave on request (slow, garbage, oversized, redirecting, wrong type) so the
//! gateway's fail-closed paths can be shown. Counts fetches per path.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::SandboxError;

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
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = service_fn(move |req| handle(req, r.clone(), h.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
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

type Body = BoxBody<Bytes, Infallible>;

async fn handle(
    req: Request<Incoming>,
    routes: Arc<Mutex<HashMap<String, Serve>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
) -> Result<Response<Body>, Infallible> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
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
    let answer = |status: u16, content_type: Option<&str>, body: Body| {
        let mut r = Response::new(body);
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        r
    };
    let full = |text: String| Full::new(Bytes::from(text)).boxed();
    Ok(match what {
        Serve::Json(body) => answer(200, Some("application/json"), full(body)),
        Serve::Typed(body, ct) => answer(200, Some(ct), full(body)),
        Serve::Slow(d, body) => {
            tokio::time::sleep(d).await;
            answer(200, Some("application/json"), full(body))
        }
        Serve::Redirect(to) => {
            let mut r = answer(302, None, full(String::new()));
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Serve::Status(code) => answer(code, None, full(String::new())),
        Serve::Huge(n) => answer(200, Some("application/json"), Spaces { left: n }.boxed()),
    })
}

/// `left` bytes of spaces, sent in 16 KiB frames, with their exact length declared.
struct Spaces {
    left: usize,
}

impl hyper::body::Body for Spaces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        const BLOCK: usize = 16 * 1024;
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let k = this.left.min(BLOCK);
        this.left -= k;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; k])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left as u64)
    }
}
