//! The client identity proved by the TLS handshake: subject DN, SHA-256 thumbprint, validity.
//!
//! Taken from the peer certificate in pingora's `handshake_complete_callback`, once per
//! connection, and kept in the connection's `SslDigest` extension, so every request on the
//! connection (and on resumed sessions, where rustls does not re-run the verifier) sees it.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dcrgate_policies::dn::Dn;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use rustls::pki_types::CertificateDer;

use crate::metrics::Metrics;
use crate::tls::reload::ReloadableClientVerifier;

/// Who the client proved to be.
#[derive(Debug)]
pub struct ClientIdentity {
    /// The certificate subject.
    pub dn: Dn,
    /// The subject as a canonical RFC 4514 string.
    pub canonical_dn: String,
    /// SHA-256 of the certificate DER, base64url without padding (RFC 8705 `x5t#S256`).
    pub thumbprint: String,
    /// SHA-256 of the certificate DER.
    pub sha256: [u8; 32],
    /// The certificate's notAfter, seconds since the epoch.
    pub not_after: i64,
    /// When the handshake completed.
    pub handshake_at: Instant,
    /// The chain the client presented (leaf first), to verify again after a reload.
    pub chain: Vec<CertificateDer<'static>>,
    /// The client verifier's generation the chain was last verified under
    /// ([`ReloadableClientVerifier::trusts_now`]); moved forward by a re-check, so a connection
    /// is verified again once per reload, not on every request after one.
    pub trust_generation: AtomicU64,
    first_request_seen: AtomicBool,
}

/// Why a verified certificate could not be turned into an identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The DER does not parse as an X.509 certificate.
    #[error("certificate does not parse: {0}")]
    Certificate(String),
    /// The subject does not parse as a distinguished name.
    #[error("certificate subject does not parse: {0}")]
    Subject(#[from] dcrgate_policies::dn::DnError),
}

impl ClientIdentity {
    /// Build the identity from a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let dn = Dn::from_der_name(cert.tbs_certificate.subject.as_raw())?;
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(digest.as_ref());
        Ok(Self {
            sha256,
            canonical_dn: dn.to_rfc4514(),
            dn,
            thumbprint: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            not_after: cert.validity().not_after.timestamp(),
            handshake_at: Instant::now(),
            chain: Vec::new(),
            trust_generation: AtomicU64::new(0),
            first_request_seen: AtomicBool::new(false),
        })
    }

    /// Time from the handshake to the connection's first request head: `Some` once, for the
    /// first request on the connection.
    pub fn first_request_delay(&self) -> Option<Duration> {
        if self.first_request_seen.swap(true, Ordering::Relaxed) {
            None
        } else {
            Some(self.handshake_at.elapsed())
        }
    }
}

/// pingora TLS callback that records the client identity after each handshake.
pub struct IdentityCallback {
    metrics: Arc<Metrics>,
    verifier: Arc<ReloadableClientVerifier>,
}

impl IdentityCallback {
    /// A callback that counts handshakes and identity failures in `metrics`, and refuses an
    /// identity the (reloaded) client CA bundle no longer trusts.
    pub fn new(metrics: Arc<Metrics>, verifier: Arc<ReloadableClientVerifier>) -> Self {
        Self { metrics, verifier }
    }
}

#[async_trait]
impl TlsAccept for IdentityCallback {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let Some(der) = tls.peer_certificate_der() else {
            self.metrics
                .handshakes
                .with_label_values(&["no_certificate"])
                .inc();
            return None;
        };
        // A resumed session skips certificate verification: after a client CA or CRL reload,
        // check the chain against the current bundle and CRLs (a session from a removed CA or of
        // a revoked certificate gets no identity, so its requests are refused). The generation
        // is read first, so the chain is verified under it or a newer one.
        let generation = self.verifier.generation();
        let chain = tls.peer_cert_chain_der().unwrap_or_default();
        if !self.verifier.still_trusted(chain) {
            self.metrics
                .handshakes
                .with_label_values(&["untrusted_after_reload"])
                .inc();
            return None;
        }
        match ClientIdentity::from_der(der) {
            Ok(mut identity) => {
                identity.chain = chain.to_vec();
                identity.trust_generation = AtomicU64::new(generation);
                self.metrics.handshakes.with_label_values(&["ok"]).inc();
                // Stored as Arc<ClientIdentity> so each request takes a reference, not a copy.
                Some(Arc::new(Arc::new(identity)))
            }
            Err(e) => {
                tracing::warn!(error = %e, "verified client certificate has no usable identity");
                self.metrics
                    .handshakes
                    .with_label_values(&["bad_identity"])
                    .inc();
                None
            }
        }
    }
}
