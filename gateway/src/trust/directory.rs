//! The Open Banking directory's own revocation (`[directory_revocation]` in the profile).
//!
//! The directory publishes a piece of software's revoked keys as key sets the software
//! statement names (`software_jwks_revoked_endpoint`, `org_jwks_revoked_endpoint`), and the
//! transport certificate as a `use: tls` member of its `software_jwks_endpoint`. After the
//! request object's signature verified, two checks read them, fetched and cached like any key
//! set (same allowlist, bounds and cache):
//!
//! - `signing_key`: the key that signed the request object is not listed as revoked (by
//!   `kid` or RFC 7638 thumbprint);
//! - `transport_certificate`: the presented certificate is listed (`x5c` or `x5t#S256` of a
//!   `use: tls` member) and not listed as revoked.
//!
//! A listed revocation always refuses (403 `access_denied`). A key set that cannot be had (not
//! named, not an allowlisted https URL, not fetchable) refuses with 503 under `require` and is
//! counted `unavailable` and logged under `prefer`. Each check is counted in
//! `dcrgate_directory_revocation_checks_total{check,result}`.

use dcrgate_policies::key_url::{check_key_set_url, HostAllowlist};
use dcrgate_policies::profile::{DirectoryCheck, DirectoryRevocationSection};
use dcrgate_policies::SoftwareStatement;

use crate::jose::listing::KeyListing;
use crate::jose::verify::VerifyingKey;
use crate::keyset::KeySetCache;
use crate::metrics::Metrics;
use crate::reason::Reason;
use crate::rejection::Rejection;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Listed where it must be, not listed as revoked.
    Good,
    /// Listed as revoked.
    Revoked,
    /// The transport certificate is not a `use: tls` key of the software key set.
    NotListed,
    /// A key set the check needs could not be had; why.
    Unavailable(String),
}

impl Finding {
    /// A closed-set label for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Finding::Good => "good",
            Finding::Revoked => "revoked",
            Finding::NotListed => "not_listed",
            Finding::Unavailable(_) => "unavailable",
        }
    }
}

/// The key sets the checks read, as far as they could be had.
#[derive(Debug, Default)]
pub struct Listings {
    /// The revoked key sets that could be had.
    pub revoked: Vec<KeyListing>,
    /// Why a revoked key set could not be had (the statement names none, or one failed).
    pub revoked_missing: Option<String>,
    /// The software key set (`software_jwks_endpoint`), or why it could not be had.
    pub software: Option<Result<KeyListing, String>>,
}

/// The signing key check: any listing naming the `kid` or one of the keys revokes; with
/// nothing listed, a revoked set that could not be had leaves the status unknown.
pub fn signing_key(listings: &Listings, kid: &str, keys: &[VerifyingKey]) -> Finding {
    let revoked = listings
        .revoked
        .iter()
        .any(|l| l.has_kid(kid) || keys.iter().any(|k| l.has_key(k)));
    match (&listings.revoked_missing, revoked) {
        (_, true) => Finding::Revoked,
        (Some(why), false) => Finding::Unavailable(why.clone()),
        (None, false) => Finding::Good,
    }
}

/// The transport certificate check, for the certificate whose DER hashes to `sha256`.
pub fn transport_certificate(listings: &Listings, sha256: &[u8; 32]) -> Finding {
    if listings
        .revoked
        .iter()
        .any(|l| l.has_certificate(sha256, None))
    {
        return Finding::Revoked;
    }
    match &listings.software {
        None => {
            Finding::Unavailable("the software statement names no software_jwks_endpoint".into())
        }
        Some(Err(why)) => Finding::Unavailable(why.clone()),
        Some(Ok(l)) if !l.has_certificate(sha256, Some("tls")) => Finding::NotListed,
        Some(Ok(_)) => match &listings.revoked_missing {
            Some(why) => Finding::Unavailable(why.clone()),
            None => Finding::Good,
        },
    }
}

/// What the checks are run against.
pub struct Subject<'a> {
    /// The verified software statement, if the request carried one.
    pub statement: Option<&'a SoftwareStatement>,
    /// The `kid` the request object was signed with.
    pub kid: &'a str,
    /// The keys with that `kid` (one of them verified the signature).
    pub keys: &'a [VerifyingKey],
    /// SHA-256 of the presented transport certificate's DER.
    pub certificate_sha256: [u8; 32],
}

/// Run the checks the profile turns on; `Ok` when the request goes on.
pub async fn check(
    section: &DirectoryRevocationSection,
    subject: &Subject<'_>,
    key_hosts: &HostAllowlist,
    cache: &KeySetCache,
    metrics: &Metrics,
) -> Result<(), Rejection> {
    if !section.is_on() {
        return Ok(());
    }
    let listings = fetch_listings(section, subject.statement, key_hosts, cache).await;
    if section.revoked_keys.is_on() {
        let finding = signing_key(&listings, subject.kid, subject.keys);
        decide("signing_key", section.revoked_keys, &finding, metrics)?;
    }
    if section.transport_certificate.is_on() {
        let finding = transport_certificate(&listings, &subject.certificate_sha256);
        decide(
            "transport_certificate",
            section.transport_certificate,
            &finding,
            metrics,
        )?;
    }
    Ok(())
}

async fn fetch_listings(
    section: &DirectoryRevocationSection,
    statement: Option<&SoftwareStatement>,
    key_hosts: &HostAllowlist,
    cache: &KeySetCache,
) -> Listings {
    let mut listings = Listings::default();
    let Some(statement) = statement else {
        listings.revoked_missing = Some("the request carries no software statement".into());
        listings.software = Some(Err("the request carries no software statement".into()));
        return listings;
    };
    let mut named = 0;
    for (claim, raw) in statement.revoked_key_set_urls() {
        named += 1;
        match listing(claim, raw, key_hosts, cache).await {
            Ok(l) => listings.revoked.push(l),
            Err(why) => listings.revoked_missing = Some(why),
        }
    }
    if named == 0 {
        listings.revoked_missing = Some("the software statement names no revoked key set".into());
    }
    if section.transport_certificate.is_on() {
        if let Some(raw) = statement.software_jwks_endpoint.as_deref() {
            listings.software =
                Some(listing("software_jwks_endpoint", raw, key_hosts, cache).await);
        }
    }
    listings
}

async fn listing(
    claim: &str,
    raw: &str,
    key_hosts: &HostAllowlist,
    cache: &KeySetCache,
) -> Result<KeyListing, String> {
    let url = check_key_set_url(raw, key_hosts).map_err(|e| format!("{claim}: {e}"))?;
    let set = cache
        .set(&url)
        .await
        .map_err(|e| format!("{claim} at {}: {e}", url.host_str().unwrap_or_default()))?;
    Ok(set.listing().clone())
}

fn decide(
    check: &'static str,
    mode: DirectoryCheck,
    finding: &Finding,
    metrics: &Metrics,
) -> Result<(), Rejection> {
    metrics
        .directory_revocation_checks
        .with_label_values(&[check, finding.as_str()])
        .inc();
    let (reason, description) = match (check, finding) {
        (_, Finding::Good) => return Ok(()),
        ("signing_key", Finding::Revoked) => (
            Reason::SigningKeyRevoked,
            "the request object's signing key is listed in the directory's revoked key set"
                .to_owned(),
        ),
        (_, Finding::Revoked) => (
            Reason::TransportCertificateRevoked,
            "the transport certificate is listed in the directory's revoked key set".to_owned(),
        ),
        (_, Finding::NotListed) => (
            Reason::TransportCertificateNotListed,
            "the transport certificate is not a use \"tls\" key of the software's key set"
                .to_owned(),
        ),
        (_, Finding::Unavailable(why)) => {
            tracing::warn!(check, reason = %why, "directory revocation status unavailable");
            if mode == DirectoryCheck::Prefer {
                return Ok(());
            }
            (
                Reason::DirectoryRevocationUnavailable,
                format!("the directory's revocation status could not be checked ({why}); try again later"),
            )
        }
    };
    Err(Rejection::new(reason, description))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use serde_json::json;

    fn rsa(n: &[u8]) -> VerifyingKey {
        VerifyingKey::Rsa {
            n: n.to_vec(),
            e: vec![1, 0, 1],
        }
    }

    fn listing(members: serde_json::Value) -> KeyListing {
        let serde_json::Value::Array(members) = members else {
            panic!("an array")
        };
        KeyListing::from_members(&members)
    }

    fn sha256(der: &[u8]) -> [u8; 32] {
        let d = ring::digest::digest(&ring::digest::SHA256, der);
        d.as_ref().try_into().unwrap()
    }

    #[test]
    fn a_signing_key_is_revoked_by_kid_or_by_thumbprint() {
        let key = rsa(&[9, 9, 9]);
        let by_kid = Listings {
            revoked: vec![listing(json!([{"kid": "k1", "kty": "RSA"}]))],
            ..Listings::default()
        };
        assert_eq!(
            signing_key(&by_kid, "k1", std::slice::from_ref(&key)),
            Finding::Revoked
        );
        assert_eq!(
            signing_key(&by_kid, "k2", std::slice::from_ref(&key)),
            Finding::Good
        );
        let n = URL_SAFE_NO_PAD.encode([9, 9, 9]);
        let by_key = Listings {
            revoked: vec![listing(
                json!([{"kid": "renamed", "kty": "RSA", "n": n, "e": "AQAB"}]),
            )],
            ..Listings::default()
        };
        assert_eq!(
            signing_key(&by_key, "k2", std::slice::from_ref(&key)),
            Finding::Revoked
        );
        assert_eq!(
            signing_key(&by_key, "k2", &[rsa(&[9, 9, 8])]),
            Finding::Good
        );
    }

    #[test]
    fn a_revoked_set_that_could_not_be_had_leaves_the_status_unknown_unless_another_revokes() {
        let missing = Listings {
            revoked_missing: Some("down".into()),
            ..Listings::default()
        };
        assert_eq!(
            signing_key(&missing, "k1", &[]),
            Finding::Unavailable("down".into())
        );
        let one_says_revoked = Listings {
            revoked: vec![listing(json!([{"kid": "k1"}]))],
            revoked_missing: Some("down".into()),
            ..Listings::default()
        };
        assert_eq!(signing_key(&one_says_revoked, "k1", &[]), Finding::Revoked);
    }

    #[test]
    fn the_transport_certificate_must_be_a_tls_key_and_not_revoked() {
        let der = b"certificate bytes";
        let h = sha256(der);
        let x5c = STANDARD.encode(der);
        let listed = |use_: &str| Listings {
            software: Some(Ok(listing(
                json!([{"kid": "t", "use": use_, "x5c": [x5c]}]),
            ))),
            ..Listings::default()
        };
        assert_eq!(transport_certificate(&listed("tls"), &h), Finding::Good);
        assert_eq!(
            transport_certificate(&listed("sig"), &h),
            Finding::NotListed
        );
        assert_eq!(
            transport_certificate(&listed("tls"), &sha256(b"another")),
            Finding::NotListed
        );
        let by_hash = Listings {
            software: Some(Ok(listing(
                json!([{"kid": "t", "use": "tls", "x5t#S256": URL_SAFE_NO_PAD.encode(h)}]),
            ))),
            ..Listings::default()
        };
        assert_eq!(transport_certificate(&by_hash, &h), Finding::Good);
        let mut revoked = listed("tls");
        revoked.revoked = vec![listing(json!([{"kid": "t", "x5c": [x5c]}]))];
        assert_eq!(transport_certificate(&revoked, &h), Finding::Revoked);
        let mut unknown = listed("tls");
        unknown.revoked_missing = Some("down".into());
        assert_eq!(
            transport_certificate(&unknown, &h),
            Finding::Unavailable("down".into())
        );
        assert!(matches!(
            transport_certificate(&Listings::default(), &h),
            Finding::Unavailable(_)
        ));
    }
}
