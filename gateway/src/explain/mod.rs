//! `dcrgate explain`: the gateway's verdict on a request object and a transport certificate, for
//! a TPP support desk.
//!
//! The gateway's checks are run on the files a TPP sent, at the time it sent them: the
//! ClientId's form, the body size, the request object's JWS header rules, the software
//! statement's form and every policy rule, each reported as passed, failed or not applicable;
//! the certificate chain and its revocation against a configuration's CA bundle and CRLs; and,
//! when their keys are given, the request object's and the software statement's signatures and
//! the bearer token. They are the gateway's own functions ([`crate::checks`] and the verifiers of
//! the request path) and answer with the same [`crate::reason::Reason`] ids. What has no key
//! material is NOT CHECKED, and the verdict is then never an acceptance. A software statement's
//! claims are used whether or not its signature could be checked, so that its rules are
//! explained too.
//!
//! - [`inputs`]: the command line and the files it names, read and checked.
//! - [`decode`]: lenient decoding of what was sent.
//! - [`ssa`]: the software statement's offline checks.
//! - [`chain`]: the transport certificate's chain against the configured client CA bundle.
//! - [`revocation`]: the transport certificate against the configured CRLs.
//! - [`signatures`]: the signatures and the bearer token, against the key material given.
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
pub const SSA_NOTE: &str = "decoded; its claims are used whether or not its signature could be \
                            checked (see Software statement signature)";
