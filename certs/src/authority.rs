//! Certificate authorities and the certificates they issue (ECDSA P-256 keys, SHA-256 signatures).

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use crate::{PkiError, SubjectSpec};

/// A certificate with its private key, in PEM and DER.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The serial number (big-endian), to revoke it in a CRL.
    pub serial: Vec<u8>,
}

/// A self-signed certificate authority that issues server and client certificates.
pub struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
    serial: Vec<u8>,
}

impl Authority {
    /// A new root CA with the given common name, valid for ten years from yesterday.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        Self::root(common_name, Duration::days(3650))
    }

    /// A root CA that expired an hour after it became valid, a day ago (to test refusals).
    pub fn expired(common_name: &str) -> Result<Self, PkiError> {
        Self::root(common_name, Duration::days(-1))
    }

    fn root(common_name: &str, validity: Duration) -> Result<Self, PkiError> {
        let mut params = ca_params(common_name)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, validity);
        let serial = serial(&mut params)?;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self { cert, key, serial })
    }

    /// An intermediate CA under this one. `key_cert_sign: false` leaves `keyCertSign` out of
    /// its keyUsage (a certificate RFC 5280 §4.2.1.3 forbids to sign certificates), to test
    /// that verifiers refuse chains through it.
    pub fn intermediate(&self, common_name: &str, key_cert_sign: bool) -> Result<Self, PkiError> {
        let mut params = ca_params(common_name)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = if key_cert_sign {
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
        } else {
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign]
        };
        set_validity(&mut params, Duration::days(1825));
        let serial = serial(&mut params)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Self { cert, key, serial })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// This CA's serial number (big-endian), to revoke it in its issuer's CRL.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// A CRL signed by this CA (PEM) listing `revoked` serial numbers, issued an hour ago, with
    /// its nextUpdate `next_update_secs` from now (negative: already past, a stale CRL).
    pub fn crl(&self, revoked: &[&[u8]], next_update_secs: i64) -> Result<String, PkiError> {
        self.crl_scoped(revoked, next_update_secs, None)
    }

    /// A partitioned CRL: like [`Authority::crl`], with an issuingDistributionPoint naming
    /// `uri` and covering end-entity certificates only.
    pub fn partitioned_crl(&self, revoked: &[&[u8]], uri: &str) -> Result<String, PkiError> {
        let idp = rcgen::CrlIssuingDistributionPoint {
            distribution_point: rcgen::CrlDistributionPoint {
                uris: vec![uri.to_owned()],
            },
            scope: Some(rcgen::CrlScope::UserCertsOnly),
        };
        self.crl_scoped(revoked, 86_400, Some(idp))
    }

    fn crl_scoped(
        &self,
        revoked: &[&[u8]],
        next_update_secs: i64,
        issuing_distribution_point: Option<rcgen::CrlIssuingDistributionPoint>,
    ) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        let next_update = now + Duration::seconds(next_update_secs);
        // thisUpdate precedes nextUpdate, also for a stale CRL.
        let this_update = (now - Duration::hours(1)).min(next_update - Duration::hours(1));
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: this_update,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.cert, &self.key)?.pem()?)
    }

    /// A TLS server certificate for the given DNS names and IP addresses.
    pub fn issue_server(&self, names: &[&str]) -> Result<IssuedCert, PkiError> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, Duration::days(825));
        self.sign(params)
    }

    /// A TLS client (transport) certificate with the given subject, valid for a year.
    pub fn issue_client(&self, subject: &SubjectSpec) -> Result<IssuedCert, PkiError> {
        self.issue_client_valid(subject, Duration::days(365))
    }

    /// A TLS client certificate valid from yesterday for `validity` (negative: already expired).
    pub fn issue_client_valid(
        &self,
        subject: &SubjectSpec,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        self.issue_client_located(subject, validity, &Locations::default())
    }

    /// A TLS client certificate that becomes valid only tomorrow (and is valid for a year).
    pub fn issue_client_not_yet_valid(
        &self,
        subject: &SubjectSpec,
    ) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = subject.to_rcgen()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = OffsetDateTime::now_utc() + Duration::days(1);
        params.not_after = params.not_before + Duration::days(365);
        self.sign(params)
    }

    /// A TLS client certificate, valid for a year, that names where its revocation status is
    /// found: an OCSP responder (authorityInfoAccess) and a CRL distribution point.
    pub fn issue_client_at(
        &self,
        subject: &SubjectSpec,
        locations: &Locations<'_>,
    ) -> Result<IssuedCert, PkiError> {
        self.issue_client_located(subject, Duration::days(365), locations)
    }

    fn issue_client_located(
        &self,
        subject: &SubjectSpec,
        validity: Duration,
        locations: &Locations<'_>,
    ) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = subject.to_rcgen()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if let Some(url) = locations.ocsp {
            params.custom_extensions.push(authority_info_access(url));
        }
        if let Some(url) = locations.crl {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.to_owned()],
            }];
        }
        set_validity(&mut params, validity);
        self.sign(params)
    }

    /// This CA as the signer of OCSP responses about the certificates it issued.
    pub fn ocsp_signer(&self) -> OcspSigner {
        OcspSigner {
            cert_der: self.cert_der(),
            key_pkcs8: self.key.serialize_der(),
            key_bits: self.key.public_key_raw().to_vec(),
        }
    }

    /// A delegated OCSP responder: a certificate this CA issues with the OCSP-signing
    /// extended key usage (`ocsp_signing: false` leaves it out, to test that it is refused).
    pub fn ocsp_responder(&self, ocsp_signing: bool) -> Result<OcspSigner, PkiError> {
        let mut params = ca_params("OCSP responder")?;
        params.extended_key_usages = if ocsp_signing {
            vec![ExtendedKeyUsagePurpose::OcspSigning]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, Duration::days(30));
        let issued = self.sign(params)?;
        let key = KeyPair::try_from(issued.key_der.as_slice())?;
        Ok(OcspSigner {
            cert_der: issued.cert_der,
            key_pkcs8: issued.key_der,
            key_bits: key.public_key_raw().to_vec(),
        })
    }

    fn sign(&self, mut params: CertificateParams) -> Result<IssuedCert, PkiError> {
        let serial = serial(&mut params)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
            serial,
        })
    }
}

/// Where a certificate says its revocation status is published.
#[derive(Debug, Clone, Copy, Default)]
pub struct Locations<'a> {
    /// The OCSP responder URL (authorityInfoAccess, id-ad-ocsp).
    pub ocsp: Option<&'a str>,
    /// The CRL distribution point URL.
    pub crl: Option<&'a str>,
}

/// A key that signs OCSP responses (ECDSA P-256 with SHA-256), with its certificate.
pub struct OcspSigner {
    /// The signer's certificate, DER (the CA itself, or a delegated responder).
    pub cert_der: Vec<u8>,
    key_pkcs8: Vec<u8>,
    /// The signer's public key bits (what a ResponderID byKey hashes).
    pub key_bits: Vec<u8>,
}

impl OcspSigner {
    /// An ECDSA P-256 SHA-256 signature (ASN.1 DER) over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let rng = SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &self.key_pkcs8,
            &rng,
        )
        .map_err(|_| PkiError::Random)?;
        Ok(key
            .sign(&rng, message)
            .map_err(|_| PkiError::Random)?
            .as_ref()
            .to_vec())
    }
}

/// authorityInfoAccess with one id-ad-ocsp access location, a URI.
fn authority_info_access(url: &str) -> rcgen::CustomExtension {
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(contents);
        out
    }
    const ID_AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let description = tlv(
        0x30,
        &[tlv(0x06, ID_AD_OCSP), tlv(0x86, url.as_bytes())].concat(),
    );
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], tlv(0x30, &description))
}

/// A random 16-byte positive serial number, set on `params` and returned.
fn serial(params: &mut CertificateParams) -> Result<Vec<u8>, PkiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&bytes));
    Ok(bytes.to_vec())
}

/// The subject every development CA has: its common name and the PKI's organisation.
fn ca_params(common_name: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "dcrgate development PKI");
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let start = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_before = start;
    params.not_after = if validity.is_negative() {
        // Already expired: valid for one hour, a day ago.
        start + Duration::hours(1)
    } else {
        start + validity
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_pem_that_parses() {
        let ca = Authority::new("test CA").unwrap();
        let server = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server.key_pem.contains("PRIVATE KEY"));
        let client = ca
            .issue_client(&SubjectSpec::ob_legacy("0015800001041RbAAI", "abc"))
            .unwrap();
        assert_ne!(client.cert_der, server.cert_der);
    }
}
