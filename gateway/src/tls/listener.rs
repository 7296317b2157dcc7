//! The TPP-facing listener's TLS settings: TLS 1.2 and 1.3 on rustls + ring, HTTP/1.1, and a
//! client certificate that must chain to the configured CA bundle. Certificate and bundle are
//! reloadable (see [`crate::tls::reload`]).

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::tls::identity::IdentityCallback;
use crate::tls::pem::PemError;
use crate::tls::reload::{ReloadableCert, ReloadableClientVerifier};
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::ALPN;

/// The listener's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenerTlsError {
    /// A PEM file is unusable.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// rustls refused the client verifier.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// pingora refused the settings.
    #[error("TLS settings: {0}")]
    Pingora(String),
}

/// Build the pingora TLS settings for the mTLS listener around the reloadable certificate and
/// client verifier (which requires a client certificate whatever bundle it holds: there is no
/// anonymous fallback, before or after a reload).
pub fn tls_settings(
    cert: Arc<ReloadableCert>,
    verifier: Arc<ReloadableClientVerifier>,
    metrics: Arc<Metrics>,
) -> Result<TlsSettings, ListenerTlsError> {
    let callbacks = IdentityCallback::new(metrics, verifier.clone());
    let mut settings = TlsSettings::with_callbacks(Box::new(callbacks))
        .map_err(|e| ListenerTlsError::Pingora(e.to_string()))?;
    settings.set_client_cert_verifier(verifier);
    settings.set_cert_resolver(cert);
    settings.set_alpn(ALPN::H1);
    Ok(settings)
}
