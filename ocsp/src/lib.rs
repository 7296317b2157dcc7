//! OCSP (RFC 6960) for dcrgate, with no I/O: what a relying party needs to ask a responder
//! about one certificate and to trust its answer, and what a test responder needs to answer.
//!
//! - [`cert_id`]: the CertID of a certificate (SHA-1 of its issuer's name and key, its serial).
//! - [`request`]: an OCSPRequest for one CertID (unsigned, no nonce: answers are cached), and
//!   the CertIDs of a request (for responders).
//! - [`response`]: an OCSPResponse parsed down to its BasicOCSPResponse.
//! - [`verify`]: the answer about one CertID, once the response's signature verified with the
//!   issuer's key or a delegated responder certificate the issuer signed for OCSP signing, and
//!   only when fresh.
//! - [`signature`]: X.509 signature algorithms on ring (shared with CRL verification).
//! - [`build`]: signed responses, for responders in tests and the sandbox.
//!
//! Every parser is bounded by its input, never panics on it, and refuses what it does not
//! understand rather than guessing.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod build;
pub mod cert_id;
mod der;
pub mod request;
pub mod response;
pub mod signature;
pub mod time;
pub mod verify;

pub use cert_id::CertId;
pub use response::{BasicResponse, CertStatus, SingleResponse};
pub use verify::{Answer, VerifyError};

/// An OCSP message that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not DER of the expected shape.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The responder answered with a status other than successful.
    #[error("responder status {0} ({name})", name = response_status_name(*.0))]
    Status(u8),
    /// A response type other than id-pkix-ocsp-basic.
    #[error("unsupported response type")]
    ResponseType,
    /// A certificate in the message does not parse.
    #[error("certificate does not parse")]
    Certificate,
}

/// The name of an OCSPResponseStatus (RFC 6960 §4.2.1).
pub fn response_status_name(status: u8) -> &'static str {
    match status {
        0 => "successful",
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "unassigned",
    }
}
