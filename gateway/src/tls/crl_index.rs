//! The configured CRLs as an index, consulted after the chain itself verified: revoked serials in
//! a set per issuer, each CRL's signature verified once per issuer key (then remembered), so a
//! handshake costs a parse of its certificates and a few lookups rather than a CRL signature
//! verification (rustls-webpki verifies the CRL's signature on every chain it checks).
//!
//! A CRL is consulted for a certificate whose issuer name it carries, and only once its
//! signature verified with that issuer's key: the next certificate of the presented chain with
//! that subject, or a CA of the client CA bundle. Delta CRLs and partitioned CRLs (an
//! issuingDistributionPoint) are refused at load: their scope is not the whole issuer.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use dcrgate_ocsp::signature::verify;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::tls::crl::{CrlError, LoadedCrl};

/// A revocation check's result, the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationResult {
    /// Not revoked, per a current CRL of its issuer (every checked certificate of the chain).
    Good,
    /// Revoked.
    Revoked,
    /// No CRL for its issuer.
    Unknown,
    /// The issuer's CRL is past its nextUpdate.
    Unavailable,
}

impl RevocationResult {
    /// Every result, for metric pre-registration.
    pub const ALL: [RevocationResult; 4] = [
        RevocationResult::Good,
        RevocationResult::Revoked,
        RevocationResult::Unknown,
        RevocationResult::Unavailable,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationResult::Good => "good",
            RevocationResult::Revoked => "revoked",
            RevocationResult::Unknown => "unknown",
            RevocationResult::Unavailable => "unavailable",
        }
    }
}

/// One CRL, indexed.
struct Indexed {
    next_update: Option<i64>,
    revoked: HashSet<Vec<u8>>,
    /// The signed part, its algorithm and signature, to verify with the issuer's key.
    tbs: Vec<u8>,
    algorithm: String,
    signature: Vec<u8>,
    /// Issuer keys (SPKI DER) the signature was checked with, and the outcome.
    checked: Mutex<HashMap<Vec<u8>, bool>>,
}

/// The CRLs by issuer name (DER), with the client CA bundle's CA keys by subject.
pub struct CrlIndex {
    by_issuer: HashMap<Vec<u8>, Indexed>,
    ca_keys: HashMap<Vec<u8>, Vec<u8>>,
}

/// A serial number without leading zero bytes (DER integers may carry one for the sign).
fn serial_key(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    &raw[start..]
}

const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
const OID_ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";

impl CrlIndex {
    /// Index `crls`; `cas` are the client CA bundle's certificates (DER).
    pub fn build(crls: &[LoadedCrl], cas: &[Vec<u8>]) -> Result<Self, CrlError> {
        let mut by_issuer = HashMap::new();
        for loaded in crls {
            let refuse = |reason: String| CrlError::NotCrl {
                path: loaded.path.clone(),
                reason,
            };
            let (_, crl) = CertificateRevocationList::from_der(loaded.der.as_ref())
                .map_err(|e| refuse(e.to_string()))?;
            for ext in crl.extensions() {
                let oid = ext.oid.to_id_string();
                if oid == OID_DELTA_CRL_INDICATOR || oid == OID_ISSUING_DISTRIBUTION_POINT {
                    return Err(refuse(format!(
                        "a delta or partitioned CRL (extension {oid}) is not supported: give the \
                         issuer's complete CRL"
                    )));
                }
                if ext.critical {
                    return Err(refuse(format!("unsupported critical extension {oid}")));
                }
            }
            let issuer = crl.issuer().as_raw().to_vec();
            let indexed = Indexed {
                next_update: loaded.next_update,
                revoked: crl
                    .iter_revoked_certificates()
                    .map(|r| serial_key(r.raw_serial()).to_vec())
                    .collect(),
                tbs: crl.tbs_cert_list.as_ref().to_vec(),
                algorithm: crl.signature_algorithm.algorithm.to_id_string(),
                signature: crl.signature_value.data.to_vec(),
                checked: Mutex::new(HashMap::new()),
            };
            if by_issuer.insert(issuer, indexed).is_some() {
                return Err(refuse(format!(
                    "another configured CRL has the same issuer ({})",
                    loaded.issuer_dn
                )));
            }
        }
        let mut ca_keys = HashMap::new();
        for der in cas {
            if let Ok((_, ca)) = X509Certificate::from_der(der) {
                ca_keys.insert(ca.subject().as_raw().to_vec(), ca.public_key().raw.to_vec());
            }
        }
        Ok(Self { by_issuer, ca_keys })
    }

    /// For a fetched CRL, before it replaces the one in force: whether it is one the index
    /// accepts (complete, no unsupported critical extension) and, when a CA of the bundle
    /// has its issuer's name, whether that CA signed it (`None`: no bundle CA has the name;
    /// the issuer is an intermediate, checked at the handshake).
    pub fn check_one(crl: &LoadedCrl, cas: &[Vec<u8>]) -> Result<Option<bool>, CrlError> {
        let index = Self::build(std::slice::from_ref(crl), cas)?;
        Ok(index.by_issuer.iter().next().and_then(|(issuer, indexed)| {
            index
                .ca_keys
                .get(issuer)
                .map(|spki| indexed.signed_by(spki))
        }))
    }

    /// The status of each certificate of `chain` (leaf first) the scope covers: the leaf, and
    /// with `intermediates` every further certificate. The worst status wins (revoked, then
    /// stale, then unknown). A certificate that does not parse is unknown.
    pub fn status(&self, chain: &[&[u8]], intermediates: bool, now: i64) -> RevocationResult {
        let parsed: Vec<Option<X509Certificate<'_>>> = chain
            .iter()
            .map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
            .collect();
        let checked = if intermediates { parsed.len() } else { 1 };
        let mut worst = RevocationResult::Good;
        for (i, cert) in parsed.iter().take(checked).enumerate() {
            let status = match cert {
                Some(cert) => self.one(cert, &parsed[i + 1..], now),
                None => RevocationResult::Unknown,
            };
            worst = match (worst, status) {
                (RevocationResult::Revoked, _) | (_, RevocationResult::Revoked) => {
                    RevocationResult::Revoked
                }
                (RevocationResult::Unavailable, _) | (_, RevocationResult::Unavailable) => {
                    RevocationResult::Unavailable
                }
                (RevocationResult::Unknown, _) | (_, RevocationResult::Unknown) => {
                    RevocationResult::Unknown
                }
                _ => RevocationResult::Good,
            };
        }
        worst
    }

    /// The status of `cert` from its issuer's CRL; `rest` are the certificates presented after
    /// it (where its issuer may be).
    pub fn one(
        &self,
        cert: &X509Certificate<'_>,
        rest: &[Option<X509Certificate<'_>>],
        now: i64,
    ) -> RevocationResult {
        let issuer = cert.issuer().as_raw();
        let Some(crl) = self.by_issuer.get(issuer) else {
            return RevocationResult::Unknown;
        };
        let issuer_key = rest
            .iter()
            .flatten()
            .find(|c| c.subject().as_raw() == issuer)
            .map(|c| c.public_key().raw)
            .or_else(|| self.ca_keys.get(issuer).map(Vec::as_slice));
        let Some(key) = issuer_key else {
            return RevocationResult::Unknown;
        };
        if !crl.signed_by(key) {
            return RevocationResult::Unknown;
        }
        if crl.revoked.contains(serial_key(cert.raw_serial())) {
            return RevocationResult::Revoked;
        }
        match crl.next_update {
            Some(next) if next < now => RevocationResult::Unavailable,
            _ => RevocationResult::Good,
        }
    }
}

impl Indexed {
    /// Whether the CRL's signature verifies with the issuer key `spki` (checked once per key).
    fn signed_by(&self, spki: &[u8]) -> bool {
        let mut checked = self
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ok) = checked.get(spki) {
            return *ok;
        }
        let ok = verify(spki, &self.algorithm, &self.tbs, &self.signature);
        // Bounded: one entry per distinct issuer key presented for this issuer name.
        if checked.len() < 64 {
            checked.insert(spki.to_vec(), ok);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CrlFile;
    use crate::tls::crl;
    use dcrgate_certs::{Authority, SubjectSpec};

    const NOW: i64 = i64::MAX / 4;

    fn loaded(dir: &std::path::Path, name: &str, pem: &str) -> LoadedCrl {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        crl::load(&CrlFile {
            issuer: name.into(),
            path,
            url: None,
        })
        .unwrap()
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn a_crl_counts_only_when_signed_by_the_issuer_of_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("TPP CA").unwrap();
        // Another CA with the very same subject name: its CRL names the same issuer.
        let impostor = Authority::new("TPP CA").unwrap();
        let leaf = ca.issue_client(&SubjectSpec::common_name("tpp")).unwrap();
        let chain = [leaf.cert_der.as_slice()];
        let genuine = loaded(
            dir.path(),
            "genuine",
            &ca.crl(&[&leaf.serial], 3600).unwrap(),
        );
        let index = CrlIndex::build(&[genuine], &[ca.cert_der()]).unwrap();
        assert_eq!(index.status(&chain, true, now()), RevocationResult::Revoked);
        // The impostor's CRL says nothing is revoked: it is not the issuer's, so unknown.
        let forged = loaded(dir.path(), "forged", &impostor.crl(&[], 3600).unwrap());
        let index = CrlIndex::build(&[forged], &[ca.cert_der()]).unwrap();
        assert_eq!(index.status(&chain, true, now()), RevocationResult::Unknown);
        // Without the issuer's key (not in the bundle, not in the chain): unknown too.
        let genuine = loaded(
            dir.path(),
            "genuine",
            &ca.crl(&[&leaf.serial], 3600).unwrap(),
        );
        let index = CrlIndex::build(&[genuine], &[]).unwrap();
        assert_eq!(index.status(&chain, true, now()), RevocationResult::Unknown);
    }

    #[test]
    fn good_stale_and_the_worst_status_of_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let root = Authority::new("root").unwrap();
        let issuing = root.intermediate("issuing", true).unwrap();
        let leaf = issuing
            .issue_client(&SubjectSpec::common_name("tpp"))
            .unwrap();
        let issuing_der = issuing.cert_der();
        let chain = [leaf.cert_der.as_slice(), issuing_der.as_slice()];
        let fresh = loaded(dir.path(), "issuing", &issuing.crl(&[], 3600).unwrap());
        // The leaf's issuer has a current CRL; the intermediate's issuer (the root) has none.
        let index = CrlIndex::build(std::slice::from_ref(&fresh), &[root.cert_der()]).unwrap();
        assert_eq!(index.status(&chain, false, now()), RevocationResult::Good);
        assert_eq!(index.status(&chain, true, now()), RevocationResult::Unknown);
        let root_crl = loaded(
            dir.path(),
            "root",
            &root.crl(&[issuing.serial()], 3600).unwrap(),
        );
        let index = CrlIndex::build(&[fresh.clone(), root_crl], &[root.cert_der()]).unwrap();
        assert_eq!(index.status(&chain, false, now()), RevocationResult::Good);
        assert_eq!(index.status(&chain, true, now()), RevocationResult::Revoked);
        // Past nextUpdate.
        let index = CrlIndex::build(&[fresh], &[root.cert_der()]).unwrap();
        assert_eq!(
            index.status(&chain, false, NOW),
            RevocationResult::Unavailable
        );
        // A certificate that does not parse has no known status.
        assert_eq!(
            index.status(&[b"junk".as_slice()], false, now()),
            RevocationResult::Unknown
        );
    }

    #[test]
    fn partitioned_crls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("TPP CA").unwrap();
        let pem = ca
            .partitioned_crl(&[], "http://crl.example/part1.crl")
            .unwrap();
        let partitioned = loaded(dir.path(), "part", &pem);
        let e = CrlIndex::build(&[partitioned], &[]).err().expect("refused");
        assert!(e.to_string().contains("partitioned"), "{e}");
    }

    #[test]
    fn two_crls_of_one_issuer_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("TPP CA").unwrap();
        let a = loaded(dir.path(), "a", &ca.crl(&[], 3600).unwrap());
        let b = loaded(dir.path(), "b", &ca.crl(&[], 3600).unwrap());
        assert!(CrlIndex::build(&[a, b], &[]).is_err());
    }

    #[test]
    fn serials_compare_without_leading_zero_bytes() {
        assert_eq!(serial_key(&[0, 0, 0x81, 2]), [0x81, 2]);
        assert_eq!(serial_key(&[0x7f]), [0x7f]);
        assert!(serial_key(&[0, 0]).is_empty());
    }
}
