//! `trusted_front_proxy` mode: a TLS terminator in front (an F5, an ALB, a CDN) that
//! authenticates to the gateway with its own client certificate and passes the TPP's on in the
//! RFC 9440 `Client-Cert` (and `Client-Cert-Chain`) header.
//!
//! The header is believed only from a connection whose own certificate is a configured front
//! proxy's (subject or thumbprint), from a configured network if any; the certificate in it is
//! then verified exactly as a presented one (the client CA bundle, the CRLs, the rule on
//! intermediates; OCSP follows in admission as for any identity) and becomes the request's
//! identity. From anyone else the header is refused, never ignored, and the front proxy's own
//! certificate never stands for a TPP: a front proxy request without the header is refused.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderMap;
use rustls::pki_types::CertificateDer;

use crate::config::FrontProxy;
use crate::reason::Reason;
use crate::rejection::Rejection;
use crate::tls::identity::ClientIdentity;
use crate::tls::reload::{refusal, ReloadableClientVerifier};

/// The RFC 9440 header carrying the client certificate.
pub const CLIENT_CERT: &str = "client-cert";
/// The RFC 9440 header carrying the rest of the chain.
pub const CLIENT_CERT_CHAIN: &str = "client-cert-chain";
/// Longest `Client-Cert` value accepted, bytes.
pub const MAX_CERT_HEADER: usize = 16 * 1024;
/// Longest `Client-Cert-Chain` value accepted (all its lines), bytes.
pub const MAX_CHAIN_HEADER: usize = 48 * 1024;
/// Most certificates in `Client-Cert-Chain`.
pub const MAX_CHAIN: usize = 8;

/// Whether `identity` is one of the front proxy's certificates.
pub fn is_front_proxy(cfg: &FrontProxy, identity: &ClientIdentity) -> bool {
    cfg.subjects.contains(&identity.canonical_dn) || cfg.thumbprints.contains(&identity.thumbprint)
}

/// The identity a request stands for: the connection's own, or, from the trusted front proxy,
/// the one its `Client-Cert` header carries (verified). Refuses the header from anyone else.
pub fn identity_for(
    connection: Arc<ClientIdentity>,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    cfg: Option<&FrontProxy>,
    verifier: &ReloadableClientVerifier,
) -> Result<Arc<ClientIdentity>, Rejection> {
    let carries = headers.contains_key(CLIENT_CERT) || headers.contains_key(CLIENT_CERT_CHAIN);
    let front = cfg.filter(|f| is_front_proxy(f, &connection));
    let Some(front) = front else {
        if carries {
            return Err(Rejection::new(
                Reason::ClientCertHeaderRefused,
                "Client-Cert and Client-Cert-Chain are accepted only from the configured front \
                 proxy; send the transport certificate in the TLS handshake",
            ));
        }
        return Ok(connection);
    };
    if !front.admits_address(peer) {
        return Err(Rejection::new(
            Reason::FrontProxyAddressRefused,
            "the front proxy's certificate was presented from an address outside \
             front_proxy.source_addresses",
        )
        .closing());
    }
    let chain = passed_on_chain(headers)?;
    let generation = verifier.verify_passed_on(&chain).map_err(|e| {
        Rejection::new(
            Reason::ClientCertNotTrusted,
            format!(
                "the client certificate the front proxy passed on is refused: {} ({e})",
                refusal(&e)
            ),
        )
    })?;
    let leaf = chain.first().map(|c| c.as_ref()).unwrap_or_default();
    let mut identity = ClientIdentity::from_der(leaf).map_err(|e| {
        Rejection::new(
            Reason::ClientCertNotTrusted,
            format!("the client certificate the front proxy passed on has no usable identity: {e}"),
        )
    })?;
    identity.chain = chain;
    identity.trust_generation = AtomicU64::new(generation);
    Ok(Arc::new(identity))
}

/// The leaf from `Client-Cert` and the rest from `Client-Cert-Chain`.
fn passed_on_chain(headers: &HeaderMap) -> Result<Vec<CertificateDer<'static>>, Rejection> {
    let malformed = |why: &str| {
        Rejection::new(
            Reason::ClientCertHeaderMalformed,
            format!("the front proxy's Client-Cert header is malformed: {why}"),
        )
    };
    let mut certs = headers.get_all(CLIENT_CERT).iter();
    let (Some(value), None) = (certs.next(), certs.next()) else {
        return Err(if headers.contains_key(CLIENT_CERT) {
            malformed("more than one Client-Cert header")
        } else {
            Rejection::new(
                Reason::FrontProxyCertificateMissing,
                "the front proxy passed no client certificate on (no Client-Cert header)",
            )
        });
    };
    if value.len() > MAX_CERT_HEADER {
        return Err(malformed("longer than 16 KiB"));
    }
    let leaf = byte_sequence(value.as_bytes()).ok_or_else(|| malformed("not a byte sequence"))?;
    let mut chain = vec![CertificateDer::from(leaf)];
    let mut total = 0;
    for line in headers.get_all(CLIENT_CERT_CHAIN) {
        total += line.len();
        if total > MAX_CHAIN_HEADER {
            return Err(malformed("Client-Cert-Chain longer than 48 KiB"));
        }
        for member in line.as_bytes().split(|b| *b == b',') {
            let der = byte_sequence(member)
                .ok_or_else(|| malformed("Client-Cert-Chain is not a list of byte sequences"))?;
            chain.push(CertificateDer::from(der));
            if chain.len() > MAX_CHAIN + 1 {
                return Err(malformed("more than 8 certificates in Client-Cert-Chain"));
            }
        }
    }
    Ok(chain)
}

/// An RFC 8941 byte sequence (`:` standard base64 `:`), surrounding spaces allowed; `None` for
/// anything else (no parameters are expected on these headers).
pub fn byte_sequence(raw: &[u8]) -> Option<Vec<u8>> {
    let trimmed = raw.trim_ascii();
    let inner = trimmed.strip_prefix(b":")?.strip_suffix(b":")?;
    if inner.is_empty()
        || !inner
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return None;
    }
    STANDARD.decode(inner).ok().filter(|d| !d.is_empty())
}

/// `der` as an RFC 8941 byte sequence, for the headers sent upstream.
pub fn encode(der: &[u8]) -> String {
    format!(":{}:", STANDARD.encode(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sequences_are_strict() {
        assert_eq!(byte_sequence(b":aGVsbG8=:"), Some(b"hello".to_vec()));
        assert_eq!(byte_sequence(b"  :aGVsbG8=:  "), Some(b"hello".to_vec()));
        assert_eq!(encode(b"hello"), ":aGVsbG8=:");
        for bad in [
            &b"aGVsbG8="[..],
            b":aGVsbG8=",
            b"::",
            b":aGVs bG8=:",
            b":aGVsbG8-:",
            b":aGVsbG8_:",
            b":aGVsbG8=:;a=1",
            b":%%%:",
            b"",
        ] {
            assert_eq!(byte_sequence(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
