//! A development PKI for dcrgate: certificate authorities, server certificates and Open Banking
//! shaped transport certificates (ECDSA P-256, signed on ring), and RSA signing keys for TPPs.
//!
//! Everything here is for the demo, the tests and operators trying the gateway out. Keys are
//! generated fresh on every call and never leave the process unless the caller writes them out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod authority;
mod signing_key;
mod subject;

pub use authority::{Authority, IssuedCert, Locations, OcspSigner};
pub use signing_key::RsaSigningKey;
pub use subject::{Attribute, SubjectSpec};

/// Why generating a piece of the development PKI failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the certificate parameters or failed to sign.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The RSA key could not be generated or encoded.
    #[error("RSA key generation failed: {0}")]
    Rsa(String),
    /// The system random number generator failed.
    #[error("no random bytes for a serial number")]
    Random,
    /// A subject attribute value is not valid for its string type.
    #[error("invalid subject attribute {attribute}: {reason}")]
    Subject {
        /// The attribute's short name.
        attribute: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
