//! Trust anchors the operator chose: key sets of software-statement directories and of the
//! bank's authorization server, and the verification of software statements against them.

pub mod anchor;
pub mod error;
pub mod form;
pub mod ssa;

pub use anchor::{AnchorError, TrustedKeys};
pub use error::SsaError;
pub use ssa::{Directory, SsaVerifier, Verified};
