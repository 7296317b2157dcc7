//! dcrgate's registration policy engine: pure, synchronous and free of I/O.
//!
//! The gateway parses a request, verifies what it can on the wire (TLS, JWS signature) and hands
//! this crate the decoded claims, the identity the client's certificate proved and the facts of
//! the request (path ClientId, the current time, the accepted audiences). [`evaluate`] returns a
//! [`Verdict`]: accept, or reject with every [`Violation`] found, each with a stable rule id, an
//! RFC 7591 error code and a sentence a TPP developer can act on.
//!
//! Modules:
//! - [`dn`]: RFC 4514 / DER distinguished names, RFC 4518 preparation and structural matching.
//! - [`claims`]: the registration claims as TPPs send them (aliases, string-or-array scopes).
//! - [`profile`]: policy profiles, the TOML files operators keep under `policies/`.
//! - [`ssa`]: software statement claims.
//! - [`key_url`]: where a TPP key set may be fetched from (https, host allowlist).
//! - [`uri`]: redirect URIs and the other URL-valued metadata, checked whole.
//! - [`net`]: which IP addresses are public (key set hosts, URL literals).
//! - [`text`]: echoing client values in messages, bounded.
//! - [`verdict`]: rule ids, error codes, violations and verdicts.
//! - [`evaluate`](mod@evaluate): the rules themselves.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod claims;
pub mod dn;
pub mod evaluate;
pub mod key_url;
pub mod net;
pub mod profile;
pub mod ssa;
pub mod text;
pub mod uri;
pub mod verdict;

pub use claims::{ClaimError, RegistrationClaims};
pub use evaluate::{evaluate, Evaluation, ReplayKey, RequestFacts, RotationDecision};
pub use key_url::{HostAllowlist, KeyUrlError};
pub use profile::{Presence, Profile, ProfileError, RotationMode};
pub use ssa::SoftwareStatement;
pub use verdict::{ErrorCode, Rule, Verdict, Violation};
