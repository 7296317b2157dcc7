//! The transport certificate's revocation status, from the CRL files of the configuration
//! (`--config` with a `[revocation]` section): read locally, nothing fetched. The certificate is
//! checked as the gateway checks it at the handshake, under its issuer's policy, without
//! intermediates (a certificate issued by an intermediate CA is reported as not checkable
//! offline). Where the certificate says its status is published (OCSP responder, CRL
//! distribution points) is printed; an OCSP responder is not asked offline.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use serde::Serialize;

use super::inputs::Deployment;
use crate::config::{RevocationMode, RevocationOrder};
use crate::tls::crl;
use crate::tls::ocsp::responder_uri;
use crate::tls::ocsp::OcspCache;
use crate::tls::pem::{load_certs, load_client_ca_bundle};
use crate::tls::revocation::{RevocationResult, RevocationVerifier};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

/// What revocation says of the transport certificate.
#[derive(Debug, Clone, Serialize)]
pub struct RevocationReport {
    /// `good`, `revoked`, `unknown`, `unavailable`, `ocsp_not_asked` or `not_checked`.
    pub status: &'static str,
    /// What that means, and where it comes from.
    pub detail: String,
    /// Whether the gateway's handshake would fail on it.
    pub refuses_handshake: bool,
    /// The policy of its issuer: `name (mode, order)`.
    pub issuer_policy: Option<String>,
    /// The OCSP responder it names (authorityInfoAccess).
    pub ocsp_responder: Option<String>,
    /// The CRL distribution points it names.
    pub crl_distribution_points: Vec<String>,
}

/// Where a certificate says its status is published.
fn locations(der: &[u8]) -> (Option<String>, Vec<String>) {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return (None, Vec::new());
    };
    let ocsp = responder_uri(&cert).map(str::to_owned);
    let mut points = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(cdp) = ext.parsed_extension() {
            for point in cdp.points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    points.extend(names.iter().filter_map(|n| match n {
                        GeneralName::URI(uri) => Some((*uri).to_owned()),
                        _ => None,
                    }));
                }
            }
        }
    }
    (ocsp, points)
}

/// The status of the certificate `der` under the deployment's revocation settings.
pub fn examine(der: &[u8], deployment: Option<&Deployment>, now: i64) -> RevocationReport {
    let (ocsp_responder, crl_distribution_points) = locations(der);
    let mut report = judge(der, deployment, now, ocsp_responder.as_deref());
    report.ocsp_responder = ocsp_responder;
    report.crl_distribution_points = crl_distribution_points;
    report
}

fn not_checked(detail: String) -> RevocationReport {
    RevocationReport {
        status: "not_checked",
        detail,
        refuses_handshake: false,
        issuer_policy: None,
        ocsp_responder: None,
        crl_distribution_points: Vec::new(),
    }
}

fn judge(
    der: &[u8],
    deployment: Option<&Deployment>,
    now: i64,
    responder: Option<&str>,
) -> RevocationReport {
    let Some(d) = deployment else {
        return not_checked("no --config: the CRLs of a deployment are not known".into());
    };
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
    let Some(policy) = X509Certificate::from_der(der)
        .ok()
        .map(|(_, c)| verifier.policy_for(c.issuer().as_raw()).clone())
    else {
        return not_checked("the certificate does not parse".into());
    };
    let described = format!(
        "{} ({}, {})",
        policy.name,
        policy.mode.as_str(),
        policy.order.as_str()
    );
    let mode = policy.mode;
    if mode == RevocationMode::Off {
        return RevocationReport {
            issuer_policy: Some(described),
            ..not_checked(format!(
                "its issuer's revocation policy is off in {}",
                d.path.display()
            ))
        };
    }
    let when = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    let result = match verifier.crl_status(&CertificateDer::from(der.to_vec()), &[], when) {
        Ok(result) => result,
        Err(e) => {
            return not_checked(format!(
                "the certificate does not verify against listener.client_ca without its \
                 intermediates ({e})"
            ))
        }
    };
    if let (Some(url), RevocationOrder::OcspThenCrl, false) =
        (responder, policy.order, result == RevocationResult::Revoked)
    {
        let allowed = url::Url::parse(url).ok().is_some_and(|u| {
            u.host_str().is_some_and(|h| {
                d.revocation
                    .ocsp
                    .allowed_hosts
                    .contains(&h.to_ascii_lowercase())
            })
        });
        return RevocationReport {
            status: "ocsp_not_asked",
            detail: format!(
                "its issuer's CRL says {}; the gateway asks its OCSP responder {url} at the \
                 connection's first request{} (not asked offline; CRLs of {})",
                result.as_str(),
                if allowed {
                    ""
                } else {
                    ", except that its host is not in revocation.allowed_hosts: no answer"
                },
                d.path.display()
            ),
            refuses_handshake: false,
            issuer_policy: Some(described),
            ..not_checked(String::new())
        };
    }
    let (refuses, detail) = match (result, mode) {
        (RevocationResult::Good, _) => (false, "not on its issuer's CRL".to_owned()),
        (RevocationResult::Revoked, _) => (
            true,
            "REVOKED: on its issuer's CRL; the TLS handshake fails".to_owned(),
        ),
        (RevocationResult::Unknown, RevocationMode::Require) => (
            true,
            "no CRL for its issuer; under mode require the TLS handshake fails".to_owned(),
        ),
        (RevocationResult::Unavailable, RevocationMode::Require) => (
            true,
            "its issuer's CRL is past its nextUpdate; under mode require the TLS \
             handshake fails"
                .to_owned(),
        ),
        (RevocationResult::Unknown, _) => (
            false,
            "no CRL for its issuer; accepted under mode prefer".to_owned(),
        ),
        (RevocationResult::Unavailable, _) => (
            false,
            "its issuer's CRL is past its nextUpdate; accepted under mode prefer".to_owned(),
        ),
    };
    RevocationReport {
        status: result.as_str(),
        detail: format!("{detail} (CRLs of {})", d.path.display()),
        refuses_handshake: refuses,
        issuer_policy: Some(described),
        ..not_checked(String::new())
    }
}
