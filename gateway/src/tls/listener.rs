//! The TPP-facing listener's TLS settings: TLS 1.2 and 1.3 on rustls + ring, HTTP/1.1, and a
//! client certificate that must chain to the configured CA bundle.

use std::sync::Arc;

use pingora::listeners::tls::TlsSettings;
use pingora::protocols::ALPN;
use rustls::server::WebPkiClientVerifier;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tls::identity::IdentityCallback;
use crate::tls::pem::{load_ca_bundle, PemError};

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

/// Build the pingora TLS settings for the mTLS listener.
pub fn tls_settings(
    config: &Config,
    metrics: Arc<Metrics>,
) -> Result<TlsSettings, ListenerTlsError> {
    let roots = load_ca_bundle(&config.client_ca)?;
    // WebPkiClientVerifier requires a client certificate unless told otherwise: mTLS is
    // mandatory, there is no anonymous fallback.
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()?;
    let mut settings = TlsSettings::with_callbacks(Box::new(IdentityCallback::new(metrics)))
        .map_err(|e| ListenerTlsError::Pingora(e.to_string()))?;
    settings.set_client_cert_verifier(verifier);
    let path_str = |p: &std::path::Path| p.to_string_lossy().into_owned();
    settings
        .set_certificate_chain_file(&path_str(&config.certificate))
        .map_err(|e| ListenerTlsError::Pingora(e.to_string()))?;
    settings
        .set_private_key_file(&path_str(&config.private_key))
        .map_err(|e| ListenerTlsError::Pingora(e.to_string()))?;
    settings.set_alpn(ALPN::H1);
    Ok(settings)
}
