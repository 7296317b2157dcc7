//! The gateway's one outbound HTTPS client (plain HTTP only where the caller asks, for signed
//! documents such as CRLs), shared by key set fetches, token introspection and
//! whatever else calls out: resolve, vet the addresses (non-public ones refused unless the
//! caller allows them), connect to the first that accepts, TLS against the caller's roots,
//! an HTTP/1.1 exchange, and the answer read under [`answer::read_answer`]'s rules.
//!
//! Connections to the same endpoint are pooled ([`pool`]): a connection whose answer was read
//! whole goes back to the pool and serves the next call, so a busy caller does not open a new
//! TLS connection per call. A pooled connection that turns out to be closed is replaced by a
//! fresh one, once. Deadlines are the caller's (each wraps its call in its own timeout), and
//! each caller maps [`OutboundError`] to its own error type.

pub mod answer;
pub mod pool;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use answer::read_answer;
pub use answer::AnswerError;
use pool::{Endpoint, Pool, PoolLimits};

/// Why an outbound call failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The host name did not resolve.
    #[error("host name did not resolve")]
    Dns,
    /// The host resolves to an address the caller does not allow.
    #[error("host resolves to a non-public address")]
    ForbiddenAddress,
    /// No TCP connection could be made.
    #[error("connection failed")]
    Connect,
    /// The TLS handshake failed (untrusted certificate, wrong name, ...).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The request could not be built.
    #[error("the request could not be built")]
    Request,
    /// The HTTP exchange failed.
    #[error("HTTP exchange failed: {0}")]
    Transport(hyper::Error),
    /// The answer was not accepted.
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

impl OutboundError {
    /// The rustls error behind a transport failure, if that is what it was (for instance a
    /// server refusing the gateway's certificate, which TLS 1.3 reports only after the
    /// handshake).
    pub fn tls_cause(&self) -> Option<String> {
        let e = match self {
            OutboundError::Transport(e) | OutboundError::Answer(AnswerError::Body(e)) => e,
            _ => return None,
        };
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(tls) = s.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
            if let Some(tls) = s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(tls.to_string());
            }
            source = s.source();
        }
        None
    }
}

/// The user agent of every outbound call.
pub const USER_AGENT: &str = concat!("dcrgate/", env!("CARGO_PKG_VERSION"));

/// A request for `url`: `method`, its path and query as the target, `Host` from its host and
/// explicit port, and the gateway's `User-Agent`. The caller adds its own headers and body.
pub fn request_to(method: http::Method, url: &url::Url) -> http::request::Builder {
    let host = url.host_str().unwrap_or_default();
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, authority)
        .header(header::USER_AGENT, USER_AGENT)
}

/// Where a call goes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The host as in the URL (IPv6 literals may be bracketed).
    pub host: &'a str,
    /// The port.
    pub port: u16,
    /// Whether the host may resolve to loopback, private or link-local addresses.
    pub allow_private: bool,
    /// Plain HTTP, no TLS: only for documents that carry their own signature (CRLs).
    pub plaintext: bool,
}

/// What an accepted answer must look like.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Accepted content types.
    pub content_types: &'a [&'a str],
    /// Largest body accepted, bytes.
    pub max_bytes: usize,
}

/// An HTTPS client with a connection pool. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct HttpsClient {
    tls: TlsConnector,
    pool: Arc<Pool>,
}

impl HttpsClient {
    /// A client with `tls` (roots, client certificate) and these pool bounds.
    pub fn new(tls: rustls::ClientConfig, limits: PoolLimits) -> Self {
        Self {
            tls: TlsConnector::from(Arc::new(tls)),
            pool: Arc::new(Pool::new(limits)),
        }
    }

    /// How many idle connections the pool holds now.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle()
    }

    /// Send `request` to `target` and return the body of an accepted answer. The request's
    /// target is its path (and query); `Host` is the caller's to set.
    pub async fn fetch(
        &self,
        target: Target<'_>,
        request: Request<Bytes>,
        expect: Expect<'_>,
    ) -> Result<Vec<u8>, OutboundError> {
        let endpoint = Endpoint::new(bare(target.host), target.port, target.plaintext);
        if let Some(mut sender) = self.pool.take(&endpoint) {
            let sent = match sender.ready().await {
                Ok(()) => sender.send_request(copy(&request)?).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(response) => return self.finish(endpoint, sender, response, expect).await,
                // Closed while idle: try once more on a fresh connection.
                Err(e) if e.is_canceled() || e.is_closed() || e.is_incomplete_message() => {}
                Err(e) => return Err(OutboundError::Transport(e)),
            }
        }
        let mut sender = self.connect(target).await?;
        let response = sender
            .send_request(copy(&request)?)
            .await
            .map_err(OutboundError::Transport)?;
        self.finish(endpoint, sender, response, expect).await
    }

    async fn finish(
        &self,
        endpoint: Endpoint,
        sender: SendRequest<Full<Bytes>>,
        response: Response<Incoming>,
        expect: Expect<'_>,
    ) -> Result<Vec<u8>, OutboundError> {
        let closing = response
            .headers()
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        let body = read_answer(response, expect.content_types, expect.max_bytes).await?;
        // Only a connection whose answer was read whole can serve another call.
        if !closing {
            self.pool.put(endpoint, sender);
        }
        Ok(body)
    }

    async fn connect(&self, target: Target<'_>) -> Result<SendRequest<Full<Bytes>>, OutboundError> {
        let host = bare(target.host);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, target.port))
            .await
            .map_err(|_| OutboundError::Dns)?
            .collect();
        if addrs.is_empty() {
            return Err(OutboundError::Dns);
        }
        if !target.allow_private
            && addrs
                .iter()
                .any(|a| !dcrgate_policies::net::is_public(a.ip()))
        {
            return Err(OutboundError::ForbiddenAddress);
        }
        let tcp = connect_any(&addrs).await.ok_or(OutboundError::Connect)?;
        if target.plaintext {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(OutboundError::Transport)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            return Ok(sender);
        }
        let name =
            ServerName::try_from(host.to_owned()).map_err(|e| OutboundError::Tls(e.to_string()))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| OutboundError::Tls(e.to_string()))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(OutboundError::Transport)?;
        // The connection's driver ends when the connection closes or its sender is dropped
        // (by the caller, or by the pool when it goes stale).
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// The host without IPv6 brackets.
fn bare(host: &str) -> &str {
    host.trim_matches(|c| c == '[' || c == ']')
}

/// The request again, for one send (the body is shared, not copied).
fn copy(request: &Request<Bytes>) -> Result<Request<Full<Bytes>>, OutboundError> {
    let mut builder = Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone())
        .version(request.version());
    if let Some(headers) = builder.headers_mut() {
        headers.extend(request.headers().clone());
    }
    builder
        .body(Full::new(request.body().clone()))
        .map_err(|_| OutboundError::Request)
}

/// TCP to the first of `addrs` that accepts, with Nagle off; `None` if none does.
async fn connect_any(addrs: &[SocketAddr]) -> Option<TcpStream> {
    for addr in addrs {
        if let Ok(s) = TcpStream::connect(addr).await {
            let _ = s.set_nodelay(true);
            return Some(s);
        }
    }
    None
}
