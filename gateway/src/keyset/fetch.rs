//! Fetching a key set: the gateway's one outbound call a request can cause, so an SSRF surface.
//!
//! The URL has already passed the policy's checks (https, allowlisted host). Here: the host's
//! addresses are resolved once and, unless configured otherwise, refused if any is loopback,
//! private, link-local or otherwise non-public (DNS rebinding, cloud metadata); the connection
//! goes to a vetted address (through the shared [`crate::outbound`] client, which keeps one idle
//! connection per key host for a short while); TLS is verified against the configured roots;
//! redirects are never followed; the response must be 200 with a JSON content type; the body is
//! read only up to the size bound; and the whole exchange runs under one deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header;
use url::Url;

use crate::config::KeySets;
use crate::jose::jwk::{JwkSet, JwkSetError};
use crate::outbound::pool::PoolLimits;
use crate::outbound::{request_to, AnswerError, Expect, HttpsClient, OutboundError, Target};
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

/// The TLS client configuration for key hosts (and CRL distribution points): the public roots
/// when `key_sets.use_public_roots`, and `key_sets.extra_ca_file`.
pub fn key_host_tls(cfg: &KeySets) -> Result<rustls::ClientConfig, FetcherSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    if cfg.use_public_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = &cfg.extra_ca_file {
        roots.roots.extend(load_ca_bundle(path)?.roots);
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Idle connections kept to key hosts: one per host, for a short while (a TPP's key host is
/// not the gateway's to hold connections open to).
const KEY_HOST_POOL: PoolLimits = PoolLimits {
    per_endpoint: 1,
    endpoints: 64,
    idle: Duration::from_secs(30),
};

/// Fetches key sets under the configured bounds.
#[derive(Clone)]
pub struct KeySetFetcher {
    client: HttpsClient,
    timeout: Duration,
    max_bytes: usize,
    allow_private: bool,
    rsa_max_bits: usize,
}

impl KeySetFetcher {
    /// Build from the `[key_sets]` configuration.
    pub fn new(cfg: &KeySets) -> Result<Self, FetcherSetupError> {
        let tls = key_host_tls(cfg)?;
        Ok(Self {
            client: HttpsClient::new(tls, KEY_HOST_POOL),
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
        let port = url.port_or_known_default().unwrap_or(443);
        let request = request_to(http::Method::GET, url)
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .body(Bytes::new())
            .map_err(|_| FetchError::Http)?;
        let target = Target {
            host,
            port,
            allow_private: self.allow_private,
            plaintext: false,
        };
        let expect = Expect {
            content_types: &["application/json", "application/jwk-set+json"],
            max_bytes: self.max_bytes,
        };
        let buf = self
            .client
            .fetch(target, request, expect)
            .await
            .map_err(|e| match e {
                OutboundError::Dns => FetchError::Dns,
                OutboundError::ForbiddenAddress => FetchError::ForbiddenAddress,
                OutboundError::Connect => FetchError::Connect,
                OutboundError::Tls(m) => FetchError::Tls(m),
                OutboundError::Request | OutboundError::Transport(_) => FetchError::Http,
                OutboundError::Answer(AnswerError::Redirect(s)) => FetchError::Redirect(s),
                OutboundError::Answer(AnswerError::Status(s)) => FetchError::Status(s),
                OutboundError::Answer(AnswerError::ContentType) => FetchError::ContentType,
                OutboundError::Answer(AnswerError::TooLarge(n)) => FetchError::TooLarge(n),
                OutboundError::Answer(AnswerError::Body(_)) => FetchError::Http,
            })?;
        Ok(JwkSet::parse_with(&buf, self.rsa_max_bits)?)
    }
}

pub use dcrgate_policies::net::is_public;
