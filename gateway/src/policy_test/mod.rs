//! `dcrgate policy test` and `dcrgate policy diff`: example requests with the verdict each
//! profile is meant to reach, kept beside the profiles and evaluated offline through the checks
//! the gateway runs (the same [`crate::explain`] evaluation: the gateway's envelope checks, the
//! DN match and every policy rule).
//!
//! - [`case`]: a case file (claims or a JWT file, the certificate subject or a PEM, optional
//!   software statement claims, the time of the request, the expected verdict), read and
//!   turned into explain inputs.
//! - [`run`]: a case evaluated, compared with what it expects.
//! - [`output`]: results as text, JSON or JUnit XML.
//! - [`diff`]: which cases change verdict between two profiles.
//! - [`command`]: the two commands as the binary runs them.
//!
//! Signatures are not part of a case: the request object's and the software statement's are
//! encoded with a placeholder signature, and the explanation never verifies one.

pub mod case;
pub mod command;
pub mod diff;
pub mod output;
pub mod run;

pub use case::{Case, CaseError, Expect};
pub use diff::Change;
pub use run::{collect, evaluate, CaseResult, Observed};
