//! `dcrgate explain`: an offline verdict on a request object and a transport certificate, for a
//! TPP support desk.
//!
//! The checks the gateway makes before it fetches anything are run on the files a TPP sent: the
//! ClientId's form, the body size, the request object's JWS header rules, the software
//! statement's form and every policy rule, each reported as passed, failed or not applicable.
//! They are the gateway's own functions ([`crate::checks`]) and answer with the same
//! [`crate::reason::Reason`] ids. Nothing is fetched and no signature is verified. A software
//! statement is decoded without verification and used as if verified, so that its rules are
//! explained too.
//!
//! - [`inputs`]: the command line and the files it names, read and checked.
//! - [`decode`]: lenient decoding of what was sent.
//! - [`ssa`]: the software statement's offline checks.
//! - [`revocation`]: the transport certificate against the configured CRLs.
//! - [`verdict`]: the checks and the policy run, rule by rule, and the verdict.
//! - [`report`]: the result, as JSON or text.

pub mod chain;
pub mod decode;
pub mod inputs;
pub mod report;
pub mod revocation;
pub mod signatures;
pub mod ssa;
#[cfg(test)]
mod tests;
pub mod verdict;

pub use inputs::{Deployment, ExplainArgs, ExplainError, Inputs};
pub use report::{Finding, Outcome, Report, RuleResult};
pub use verdict::{explain, explain_verified, now};

/// The shipped seed profile, used when neither `--policy` nor `--config` names one.
pub const SEED_PROFILE: &str = include_str!("../../../policies/profiles/seed-update.toml");

/// What the software statement's decoding does not prove.
pub const SSA_NOTE: &str = "decoded WITHOUT verification (offline): its signature and issuer \
                            were not checked; its claims are used as if verified";
