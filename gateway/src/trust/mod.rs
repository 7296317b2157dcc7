//! Trust anchors the operator chose: key sets of software-statement directories and of the
//! bank's authorization server, the verification of software statements against them, and
//! the directory's own revocation of the keys and certificates a statement names.

pub mod anchor;
pub mod directory;
pub mod error;
pub mod form;
pub mod ssa;

pub use anchor::{AnchorError, TrustedKeys};
pub use error::SsaError;
pub use ssa::{Directory, SsaVerifier, Verified};
