//! JOSE for dcrgate: compact JWS parsing, JWK sets and signature verification, with no I/O
//! and no dependency on the proxy, so that fuzzing and benchmarks build it alone.
//!
//! - [`jws`]: compact serialization; the `alg` must be one the caller's policy lists (never
//!   taken from the token), `kid` required, `none`, HMAC, `crit`, `b64`, nested JWTs and
//!   embedded keys (`jwk`, `jku`, `x5u`, `x5c`) refused.
//! - [`json`]: strict JSON (a duplicate member name anywhere is an error).
//! - [`jwk`]: JWK sets parsed down to the keys that can ever be used, bounded in count, size and
//!   what one verification can cost.
//! - [`listing`]: what a key set lists (`kid`s, RFC 7638 thumbprints, certificates by `use`),
//!   for revoked key sets and transport certificates published as keys.
//! - [`verify`]: PS256 and ES256 on ring.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod json;
pub mod jwk;
pub mod jws;
pub mod listing;
pub mod verify;
