//! Fetching a key set: the gateway's one outbound call a request can cause, so an SSRF surface.
//!
//! The URL has already passed the policy's checks (https, allowlisted host). Here: the host's
//! addresses are resolved once and, unless configured otherwise, refused if any is loopback,
//! private, link-local or otherwise non-public (DNS rebinding, cloud metadata); the connection
//! goes to a vetted address; TLS is verified against the configured roots; redirects are never
//! followed; the response must be 200 with a JSON content type; the body is read only up to the
//! size bound; and the whole exchange runs under one deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use url::Url;

use crate::config::KeySets;
use crate::jose::jwk::{JwkSet, JwkSetError};
use crate::outbound::{connect_any, read_answer, AnswerError};
use crate::tls::pem::{load_ca_bundle, PemError};

/// Why a key set could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The whole fetch took longer than the deadline.
    #[error("timed out")]
    Timeout,
    /// The host name did not resolve.
    #[error("host name did not resolve")]
    Dns,
    /// The host resolves to an address the gateway will not connect to.
    #[error("host resolves to a non-public address")]
    ForbiddenAddress,
    /// No TCP connection could be made.
    #[error("connection failed")]
    Connect,
    /// The TLS handshake failed (untrusted certificate, wrong name, ...).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// HTTP-level failure.
    #[error("HTTP exchange failed")]
    Http,
    /// A redirect, which is never followed.
    #[error("answered with a redirect ({0}), which is not followed")]
    Redirect(u16),
    /// A status other than 200.
    #[error("answered with status {0}")]
    Status(u16),
    /// Not a JSON content type.
    #[error("answered with a non-JSON content type")]
    ContentType,
    /// Larger than the bound.
    #[error("the key set is larger than {0} bytes")]
    TooLarge(usize),
    /// Not a usable JWK set.
    #[error("{0}")]
    Parse(#[from] JwkSetError),
}

impl FetchError {
    /// A closed-set label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout => "timeout",
            FetchError::Dns => "dns",
            FetchError::ForbiddenAddress => "forbidden_address",
            FetchError::Connect => "connect",
            FetchError::Tls(_) => "tls",
            FetchError::Http => "http",
            FetchError::Redirect(_) => "redirect",
            FetchError::Status(_) => "status",
            FetchError::ContentType => "content_type",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Parse(_) => "parse",
        }
    }
}

/// The fetcher could not be set up from configuration.
#[derive(Debug, thiserror::Error)]
pub enum FetcherSetupError {
    /// The extra CA bundle is unusable.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// rustls refused the client configuration.
    #[error("key host TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Fetches key sets under the configured bounds.
#[derive(Clone)]
pub struct KeySetFetcher {
    tls: TlsConnector,
    timeout: Duration,
    max_bytes: usize,
    allow_private: bool,
    rsa_max_bits: usize,
}

impl KeySetFetcher {
    /// Build from the `[key_sets]` configuration.
    pub fn new(cfg: &KeySets) -> Result<Self, FetcherSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        if cfg.use_public_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(path) = &cfg.extra_ca_file {
            roots.roots.extend(load_ca_bundle(path)?.roots);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            tls: TlsConnector::from(Arc::new(tls)),
            timeout: cfg.fetch_timeout,
            max_bytes: cfg.max_bytes,
            allow_private: cfg.allow_private_addresses,
            rsa_max_bits: cfg.rsa_max_bits,
        })
    }

    /// Fetch and parse the key set at `url` (already checked against the allowlist).
    pub async fn fetch(&self, url: &Url) -> Result<JwkSet, FetchError> {
        tokio::time::timeout(self.timeout, self.fetch_within_deadline(url))
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    async fn fetch_within_deadline(&self, url: &Url) -> Result<JwkSet, FetchError> {
        let host = url.host_str().ok_or(FetchError::Dns)?;
        let bare_host = host.trim_matches(|c| c == '[' || c == ']');
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare_host, port))
            .await
            .map_err(|_| FetchError::Dns)?
            .collect();
        if addrs.is_empty() {
            return Err(FetchError::Dns);
        }
        if !self.allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(FetchError::ForbiddenAddress);
        }
        let tcp = connect_any(&addrs).await.ok_or(FetchError::Connect)?;
        let name = ServerName::try_from(bare_host.to_owned())
            .map_err(|e| FetchError::Tls(e.to_string()))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| FetchError::Tls(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|_| FetchError::Http)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let request = Request::get(path)
            .header(header::HOST, authority)
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .header(
                header::USER_AGENT,
                concat!("dcrgate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|_| FetchError::Http)?;
        let result = self.exchange(&mut sender, request).await;
        driver.abort();
        result
    }

    async fn exchange(
        &self,
        sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        request: Request<Empty<Bytes>>,
    ) -> Result<JwkSet, FetchError> {
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| FetchError::Http)?;
        let buf = read_answer(
            response,
            &["application/json", "application/jwk-set+json"],
            self.max_bytes,
        )
        .await
        .map_err(|e| match e {
            AnswerError::Redirect(s) => FetchError::Redirect(s),
            AnswerError::Status(s) => FetchError::Status(s),
            AnswerError::ContentType => FetchError::ContentType,
            AnswerError::TooLarge(n) => FetchError::TooLarge(n),
            AnswerError::Body(_) => FetchError::Http,
        })?;
        Ok(JwkSet::parse_with(&buf, self.rsa_max_bits)?)
    }
}

pub use dcrgate_policies::net::is_public;
