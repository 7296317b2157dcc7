//! Signed OCSP responses, for responders in tests and the sandbox: the signer's key signs the
//! ResponseData through a callback, so this crate holds no private key.

use crate::cert_id::CertId;
use crate::der;
use crate::response::{CertStatus, BASIC_OID};
use crate::time::format_generalized;

/// ecdsa-with-SHA256, the signature algorithm of the development PKI's keys.
pub const ECDSA_SHA256_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

/// One answer to put in a response.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The certificate.
    pub cert_id: CertId,
    /// Its status.
    pub status: CertStatus,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: Option<i64>,
}

/// A response with only a status (no responseBytes): `1` malformedRequest, `2` internalError,
/// `3` tryLater, `6` unauthorized.
pub fn status_only(status: u8) -> Vec<u8> {
    der::constructed(der::SEQUENCE, &[&der::tlv(der::ENUMERATED, &[status])])
}

fn time(secs: i64) -> Vec<u8> {
    der::tlv(der::GENERALIZED_TIME, format_generalized(secs).as_bytes())
}

/// A successful basic response: `entries`, responder named by the SHA-1 `responder_key_sha1`
/// of its key, produced at `produced_at`, signed by `sign` under the algorithm `algorithm_oid`
/// (OID contents), with `certs` (DER) attached.
pub fn response(
    entries: &[Entry],
    responder_key_sha1: &[u8],
    produced_at: i64,
    certs: &[Vec<u8>],
    algorithm_oid: &[u8],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let singles: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| {
            let status = match e.status {
                CertStatus::Good => der::tlv(der::context(0, false), &[]),
                CertStatus::Revoked { at } => der::tlv(der::context(1, true), &time(at)),
                CertStatus::Unknown => der::tlv(der::context(2, false), &[]),
            };
            let mut parts = vec![e.cert_id.to_der(), status, time(e.this_update)];
            if let Some(next) = e.next_update {
                parts.push(der::tlv(der::context(0, true), &time(next)));
            }
            der::tlv(der::SEQUENCE, &parts.concat())
        })
        .collect();
    let responder = der::tlv(
        der::context(2, true),
        &der::tlv(der::OCTET_STRING, responder_key_sha1),
    );
    let tbs = der::constructed(
        der::SEQUENCE,
        &[
            &responder,
            &time(produced_at),
            &der::tlv(der::SEQUENCE, &singles.concat()),
        ],
    );
    let signature = sign(&tbs);
    let algorithm = der::constructed(der::SEQUENCE, &[&der::tlv(der::OID, algorithm_oid)]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut basic_parts = vec![tbs, algorithm, der::tlv(der::BIT_STRING, &bits)];
    if !certs.is_empty() {
        let list = der::tlv(der::SEQUENCE, &certs.concat());
        basic_parts.push(der::tlv(der::context(0, true), &list));
    }
    let basic = der::tlv(der::SEQUENCE, &basic_parts.concat());
    let bytes = der::constructed(
        der::SEQUENCE,
        &[
            &der::tlv(der::OID, BASIC_OID),
            &der::tlv(der::OCTET_STRING, &basic),
        ],
    );
    der::constructed(
        der::SEQUENCE,
        &[
            &der::tlv(der::ENUMERATED, &[0]),
            &der::tlv(der::context(0, true), &bytes),
        ],
    )
}
