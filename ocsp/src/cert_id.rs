//! CertID (RFC 6960 §4.1.1): which certificate a request or a single response is about.

use ring::digest;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der::{self, Reader};
use crate::ParseError;

/// SHA-1, the hash every responder understands for CertIDs (RFC 5019).
const SHA1_OID: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// SHA-256.
const SHA256_OID: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// The hash of a CertID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (what requests use).
    Sha1,
    /// SHA-256.
    Sha256,
}

impl HashAlgorithm {
    fn oid(self) -> &'static [u8] {
        match self {
            HashAlgorithm::Sha1 => SHA1_OID,
            HashAlgorithm::Sha256 => SHA256_OID,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlgorithm::Sha256 => &digest::SHA256,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// A certificate named by its issuer's name and key hashes and its serial number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    /// The hash of the two issuer hashes.
    pub hash: HashAlgorithm,
    /// Hash of the issuer's subject name (DER).
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's public key (the subjectPublicKey bits).
    pub issuer_key_hash: Vec<u8>,
    /// The serial number, big-endian, without leading zero bytes.
    pub serial: Vec<u8>,
}

/// A serial number's magnitude without the leading zero bytes DER may carry.
pub fn serial_magnitude(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    &raw[start..]
}

impl CertId {
    /// The SHA-1 CertID of `cert` (DER), issued by `issuer` (DER). Refused when `issuer`'s
    /// subject is not `cert`'s issuer name.
    pub fn for_certificate(cert: &[u8], issuer: &[u8]) -> Result<Self, ParseError> {
        let (_, cert) = X509Certificate::from_der(cert).map_err(|_| ParseError::Certificate)?;
        let (_, issuer) = X509Certificate::from_der(issuer).map_err(|_| ParseError::Certificate)?;
        if cert.issuer().as_raw() != issuer.subject().as_raw() {
            return Err(ParseError::Malformed("issuer certificate of another name"));
        }
        Ok(Self::from_parts(
            HashAlgorithm::Sha1,
            issuer.subject().as_raw(),
            &issuer.public_key().subject_public_key.data,
            cert.raw_serial(),
        ))
    }

    /// The CertID from the issuer's name (DER), the issuer's public key bits and a serial.
    pub fn from_parts(
        hash: HashAlgorithm,
        issuer_name: &[u8],
        issuer_key: &[u8],
        serial: &[u8],
    ) -> Self {
        Self {
            hash,
            issuer_name_hash: hash.digest(issuer_name),
            issuer_key_hash: hash.digest(issuer_key),
            serial: serial_magnitude(serial).to_vec(),
        }
    }

    /// The DER encoding.
    pub fn to_der(&self) -> Vec<u8> {
        let algorithm = der::constructed(
            der::SEQUENCE,
            &[
                &der::tlv(der::OID, self.hash.oid()),
                &der::tlv(der::NULL, &[]),
            ],
        );
        der::constructed(
            der::SEQUENCE,
            &[
                &algorithm,
                &der::tlv(der::OCTET_STRING, &self.issuer_name_hash),
                &der::tlv(der::OCTET_STRING, &self.issuer_key_hash),
                &der::unsigned_integer(&self.serial),
            ],
        )
    }

    /// Parse the CertID SEQUENCE at the front of `r`.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let bad = || ParseError::Malformed("CertID");
        let seq = r.expect(der::SEQUENCE).ok_or_else(bad)?;
        let mut fields = der::inner(seq);
        let alg = fields.expect(der::SEQUENCE).ok_or_else(bad)?;
        let mut alg = der::inner(alg);
        let oid = alg.expect(der::OID).ok_or_else(bad)?;
        let hash = match oid.contents {
            SHA1_OID => HashAlgorithm::Sha1,
            SHA256_OID => HashAlgorithm::Sha256,
            _ => return Err(ParseError::Malformed("CertID hash algorithm")),
        };
        let name = fields.expect(der::OCTET_STRING).ok_or_else(bad)?;
        let key = fields.expect(der::OCTET_STRING).ok_or_else(bad)?;
        let serial = fields.expect(der::INTEGER).ok_or_else(bad)?;
        if !fields.is_empty() || serial.contents.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            hash,
            issuer_name_hash: name.contents.to_vec(),
            issuer_key_hash: key.contents.to_vec(),
            serial: serial_magnitude(serial.contents).to_vec(),
        })
    }
}
