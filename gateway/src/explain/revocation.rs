//! The transport certificate's revocation status, from the CRL files of the configuration
//! (`--config` with a `[revocation]` section): read locally, nothing fetched. The certificate is
//! checked as the gateway checks it at the handshake, without intermediates (a certificate
//! issued by an intermediate CA is reported as not checkable offline).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use serde::Serialize;

use super::inputs::Deployment;
use crate::config::RevocationMode;
use crate::tls::crl;
use crate::tls::ocsp::OcspCache;
use crate::tls::pem::{load_certs, load_client_ca_bundle};
use crate::tls::revocation::{RevocationResult, RevocationVerifier};

/// What revocation says of the transport certificate.
#[derive(Debug, Clone, Serialize)]
pub struct RevocationReport {
    /// `good`, `revoked`, `unknown`, `unavailable`, or `not_checked`.
    pub status: &'static str,
    /// What that means, and where it comes from.
    pub detail: String,
    /// Whether the gateway's handshake would fail on it.
    pub refuses_handshake: bool,
}

fn not_checked(detail: String) -> RevocationReport {
    RevocationReport {
        status: "not_checked",
        detail,
        refuses_handshake: false,
    }
}

/// The status of the certificate `der` under the deployment's revocation settings.
pub fn examine(der: &[u8], deployment: Option<&Deployment>, now: i64) -> RevocationReport {
    let Some(d) = deployment else {
        return not_checked("no --config: the CRLs of a deployment are not known".into());
    };
    let mode = d.revocation.mode;
    if mode == RevocationMode::Off {
        return not_checked(format!("revocation.mode = off in {}", d.path.display()));
    }
    let built = load_client_ca_bundle(&d.client_ca)
        .and_then(|roots| Ok((roots, load_certs(&d.client_ca)?)))
        .map_err(|e| e.to_string())
        .and_then(|(roots, cas)| {
            let cas: Vec<Vec<u8>> = cas.iter().map(|c| c.as_ref().to_vec()).collect();
            let crls = crl::load_all(&d.revocation.crls).map_err(|e| e.to_string())?;
            RevocationVerifier::build(
                Arc::new(roots),
                &cas,
                &d.revocation,
                &crls,
                Arc::new(OcspCache::new(None, None)),
                None,
            )
            .map_err(|e| e.to_string())
        });
    let verifier = match built {
        Ok(v) => v,
        Err(e) => return not_checked(format!("the CRLs of {} do not load: {e}", d.path.display())),
    };
    let when = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    let result = match verifier.status(&CertificateDer::from(der.to_vec()), &[], when) {
        Ok(result) => result,
        Err(e) => {
            return not_checked(format!(
                "the certificate does not verify against listener.client_ca without its \
                 intermediates ({e})"
            ))
        }
    };
    let (refuses, detail) = match (result, mode) {
        (RevocationResult::Good, _) => (false, "not on its issuer's CRL".to_owned()),
        (RevocationResult::Revoked, _) => (
            true,
            "REVOKED: on its issuer's CRL; the TLS handshake fails".to_owned(),
        ),
        (RevocationResult::Unknown, RevocationMode::Require) => (
            true,
            "no CRL for its issuer; under revocation.mode = require the TLS handshake fails"
                .to_owned(),
        ),
        (RevocationResult::Unavailable, RevocationMode::Require) => (
            true,
            "its issuer's CRL is past its nextUpdate; under revocation.mode = require the TLS \
             handshake fails"
                .to_owned(),
        ),
        (RevocationResult::Unknown, _) => (
            false,
            "no CRL for its issuer; accepted under revocation.mode = prefer".to_owned(),
        ),
        (RevocationResult::Unavailable, _) => (
            false,
            "its issuer's CRL is past its nextUpdate; accepted under revocation.mode = prefer"
                .to_owned(),
        ),
    };
    RevocationReport {
        status: result.as_str(),
        detail: format!("{detail} (CRLs of {})", d.path.display()),
        refuses_handshake: refuses,
    }
}
