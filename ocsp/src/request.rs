//! OCSPRequest (RFC 6960 §4.1): one unsigned request for one certificate, without a nonce
//! (answers are cached until their nextUpdate, RFC 5019), and the reverse for responders.

use crate::cert_id::CertId;
use crate::der::{self, Reader};
use crate::ParseError;

/// The media type of a request body.
pub const CONTENT_TYPE: &str = "application/ocsp-request";

/// The DER OCSPRequest asking about `id`.
pub fn encode(id: &CertId) -> Vec<u8> {
    let request = der::constructed(der::SEQUENCE, &[&id.to_der()]);
    let list = der::constructed(der::SEQUENCE, &[&request]);
    let tbs = der::constructed(der::SEQUENCE, &[&list]);
    der::constructed(der::SEQUENCE, &[&tbs])
}

/// The CertIDs an OCSPRequest asks about (signatures and extensions are ignored).
pub fn parse(input: &[u8]) -> Result<Vec<CertId>, ParseError> {
    let bad = || ParseError::Malformed("OCSPRequest");
    let mut outer = Reader::new(input);
    let request = outer.expect(der::SEQUENCE).ok_or_else(bad)?;
    if !outer.is_empty() {
        return Err(bad());
    }
    let mut request = der::inner(request);
    let tbs = request.expect(der::SEQUENCE).ok_or_else(bad)?;
    let mut tbs = der::inner(tbs);
    tbs.optional(der::context(0, true));
    tbs.optional(der::context(1, true));
    let list = tbs.expect(der::SEQUENCE).ok_or_else(bad)?;
    let mut list = der::inner(list);
    let mut ids = Vec::new();
    while !list.is_empty() {
        let one = list.expect(der::SEQUENCE).ok_or_else(bad)?;
        let mut one = der::inner(one);
        ids.push(CertId::read(&mut one)?);
        if ids.len() > 64 {
            return Err(bad());
        }
    }
    if ids.is_empty() {
        return Err(bad());
    }
    Ok(ids)
}
