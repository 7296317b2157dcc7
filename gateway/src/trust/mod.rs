//! Trust anchors the operator chose: key sets of software-statement directories and of the
//! bank's authorization server, and the verification of software statements against them.

pub mod anchor;
pub mod ssa;

pub use anchor::{AnchorError, TrustedKeys};
pub use ssa::{Directory, SsaError, SsaVerifier, Verified};
