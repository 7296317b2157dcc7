//! OCSPResponse (RFC 6960 §4.2.1) parsed down to its BasicOCSPResponse: the signed data, the
//! signature, the responder, and each single response. Nothing here is trusted yet; see
//! [`crate::verify`].

use crate::cert_id::CertId;
use crate::der::{self, Reader};
use crate::time::parse_generalized;
use crate::ParseError;

/// The media type of a response body.
pub const CONTENT_TYPE: &str = "application/ocsp-response";

/// id-pkix-ocsp-basic.
pub(crate) const BASIC_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// Most single responses and certificates read from one response.
const MAX_ITEMS: usize = 64;

/// Who signed the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponderId {
    /// The signer's subject name (DER).
    ByName(Vec<u8>),
    /// SHA-1 of the signer's public key bits.
    ByKey(Vec<u8>),
}

/// A certificate's status as the responder states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked at this time (seconds since the epoch).
    Revoked {
        /// revocationTime.
        at: i64,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// One answer of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleResponse {
    /// The certificate it is about.
    pub cert_id: CertId,
    /// Its status.
    pub status: CertStatus,
    /// When the status was known to be correct.
    pub this_update: i64,
    /// When newer information will be available (absent: at any time).
    pub next_update: Option<i64>,
}

/// A successful response of the basic type, unverified.
#[derive(Debug, Clone)]
pub struct BasicResponse {
    /// The DER ResponseData, what the signature covers.
    pub tbs: Vec<u8>,
    /// The signature algorithm, dotted OID.
    pub signature_algorithm: String,
    /// The signature bits.
    pub signature: Vec<u8>,
    /// The responder.
    pub responder: ResponderId,
    /// producedAt.
    pub produced_at: i64,
    /// The single responses.
    pub responses: Vec<SingleResponse>,
    /// Certificates that came with it (DER), to find a delegated responder's.
    pub certs: Vec<Vec<u8>>,
}

/// Parse a DER OCSPResponse; a status other than successful is [`ParseError::Status`].
pub fn parse(input: &[u8]) -> Result<BasicResponse, ParseError> {
    let bad = |what| ParseError::Malformed(what);
    let mut outer = Reader::new(input);
    let response = outer.expect(der::SEQUENCE).ok_or(bad("OCSPResponse"))?;
    if !outer.is_empty() {
        return Err(bad("OCSPResponse"));
    }
    let mut response = der::inner(response);
    let status = response
        .expect(der::ENUMERATED)
        .ok_or(bad("responseStatus"))?;
    let [code] = status.contents else {
        return Err(bad("responseStatus"));
    };
    if *code != 0 {
        return Err(ParseError::Status(*code));
    }
    let bytes = response
        .expect(der::context(0, true))
        .ok_or(bad("responseBytes"))?;
    let bytes = der::inner(bytes)
        .expect(der::SEQUENCE)
        .ok_or(bad("responseBytes"))?;
    let mut bytes = der::inner(bytes);
    let kind = bytes.expect(der::OID).ok_or(bad("responseType"))?;
    if kind.contents != BASIC_OID {
        return Err(ParseError::ResponseType);
    }
    let basic = bytes.expect(der::OCTET_STRING).ok_or(bad("response"))?;
    parse_basic(basic.contents)
}

fn parse_basic(input: &[u8]) -> Result<BasicResponse, ParseError> {
    let bad = |what| ParseError::Malformed(what);
    let mut outer = Reader::new(input);
    let basic = outer
        .expect(der::SEQUENCE)
        .ok_or(bad("BasicOCSPResponse"))?;
    let mut basic = der::inner(basic);
    let tbs = basic.expect(der::SEQUENCE).ok_or(bad("ResponseData"))?;
    let algorithm = basic
        .expect(der::SEQUENCE)
        .ok_or(bad("signatureAlgorithm"))?;
    let algorithm = der::inner(algorithm)
        .expect(der::OID)
        .and_then(|o| der::oid_string(o.contents))
        .ok_or(bad("signatureAlgorithm"))?;
    let signature = basic.expect(der::BIT_STRING).ok_or(bad("signature"))?;
    let signature = match signature.contents.split_first() {
        Some((0, bits)) => bits.to_vec(),
        _ => return Err(bad("signature")),
    };
    let mut certs = Vec::new();
    if let Some(list) = basic.optional(der::context(0, true)) {
        let seq = der::inner(list).expect(der::SEQUENCE).ok_or(bad("certs"))?;
        let mut seq = der::inner(seq);
        while !seq.is_empty() {
            let cert = seq.expect(der::SEQUENCE).ok_or(bad("certs"))?;
            certs.push(cert.raw.to_vec());
            if certs.len() > MAX_ITEMS {
                return Err(bad("certs"));
            }
        }
    }

    let mut data = der::inner(tbs);
    if let Some(version) = data.optional(der::context(0, true)) {
        // v1 (0) is the only version.
        if version.contents != [der::INTEGER, 1, 0] {
            return Err(bad("version"));
        }
    }
    let responder = match data.any() {
        Some(e) if e.tag == der::context(1, true) => {
            let name = der::inner(e)
                .expect(der::SEQUENCE)
                .ok_or(bad("responderID"))?;
            ResponderId::ByName(name.raw.to_vec())
        }
        Some(e) if e.tag == der::context(2, true) => {
            let key = der::inner(e)
                .expect(der::OCTET_STRING)
                .ok_or(bad("responderID"))?;
            ResponderId::ByKey(key.contents.to_vec())
        }
        _ => return Err(bad("responderID")),
    };
    let produced_at = data
        .expect(der::GENERALIZED_TIME)
        .and_then(|t| parse_generalized(t.contents))
        .ok_or(bad("producedAt"))?;
    let list = data.expect(der::SEQUENCE).ok_or(bad("responses"))?;
    let mut list = der::inner(list);
    let mut responses = Vec::new();
    while !list.is_empty() {
        let one = list.expect(der::SEQUENCE).ok_or(bad("SingleResponse"))?;
        responses.push(single(one)?);
        if responses.len() > MAX_ITEMS {
            return Err(bad("responses"));
        }
    }
    Ok(BasicResponse {
        tbs: tbs.raw.to_vec(),
        signature_algorithm: algorithm,
        signature,
        responder,
        produced_at,
        responses,
        certs,
    })
}

fn single(e: der::Element<'_>) -> Result<SingleResponse, ParseError> {
    let bad = || ParseError::Malformed("SingleResponse");
    let mut r = der::inner(e);
    let cert_id = CertId::read(&mut r)?;
    let status = match r.any() {
        Some(s) if s.tag == der::context(0, false) && s.contents.is_empty() => CertStatus::Good,
        Some(s) if s.tag == der::context(1, true) => {
            let at = der::inner(s)
                .expect(der::GENERALIZED_TIME)
                .and_then(|t| parse_generalized(t.contents))
                .ok_or_else(bad)?;
            CertStatus::Revoked { at }
        }
        Some(s) if s.tag == der::context(2, false) && s.contents.is_empty() => CertStatus::Unknown,
        _ => return Err(bad()),
    };
    let this_update = r
        .expect(der::GENERALIZED_TIME)
        .and_then(|t| parse_generalized(t.contents))
        .ok_or_else(bad)?;
    let next_update = match r.optional(der::context(0, true)) {
        Some(n) => Some(
            der::inner(n)
                .expect(der::GENERALIZED_TIME)
                .and_then(|t| parse_generalized(t.contents))
                .ok_or_else(bad)?,
        ),
        None => None,
    };
    Ok(SingleResponse {
        cert_id,
        status,
        this_update,
        next_update,
    })
}
