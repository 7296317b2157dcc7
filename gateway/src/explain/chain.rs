//! The transport certificate's chain, checked as the gateway's handshake checks it against the
//! `--config` client CA bundle (`listener.client_ca`), at the time of the request, with the
//! intermediates the `--cert` file carries after the leaf.

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use serde::Serialize;

use super::inputs::Inputs;
use crate::tls::reload::{refusal, ReloadableClientVerifier};

/// What the client CA bundle says of the certificate.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    /// `trusted`, `refused` (the handshake fails) or `not_checked`.
    pub status: &'static str,
    /// On refusal: the `dcrgate_tls_handshakes_total` result (`unknown_ca`, `expired`, ...).
    pub refusal: Option<&'static str>,
    /// What that means, and where it comes from.
    pub detail: String,
}

impl ChainReport {
    /// Whether the gateway's handshake would fail on it.
    pub fn refuses_handshake(&self) -> bool {
        self.status == "refused"
    }
}

/// The chain of `inputs`' certificate against its deployment's client CA bundle, at `now`.
pub fn examine(inputs: &Inputs, now: i64) -> ChainReport {
    let Some(d) = &inputs.deployment else {
        return ChainReport {
            status: "not_checked",
            refusal: None,
            detail: "no --config: the client CA bundle is not known".into(),
        };
    };
    let verifier = match ReloadableClientVerifier::load(&d.client_ca) {
        Ok(v) => v,
        Err(e) => {
            return ChainReport {
                status: "not_checked",
                refusal: None,
                detail: format!("{}: {e}", d.client_ca.display()),
            }
        }
    };
    let leaf = CertificateDer::from(inputs.certificate_der.clone());
    let intermediates: Vec<CertificateDer<'static>> = inputs
        .intermediates
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let when = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    match verifier.verify_client_cert(&leaf, &intermediates, when) {
        Ok(_) => ChainReport {
            status: "trusted",
            refusal: None,
            detail: format!(
                "chains to listener.client_ca ({}) with {} intermediate(s)",
                d.client_ca.display(),
                intermediates.len()
            ),
        },
        Err(e) => ChainReport {
            status: "refused",
            refusal: Some(refusal(&e)),
            detail: format!(
                "the TLS handshake fails: {} ({e}) against listener.client_ca ({})",
                refusal(&e),
                d.client_ca.display()
            ),
        },
    }
}
