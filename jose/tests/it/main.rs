//! The JOSE crate's integration tests, one binary: real signatures made in the test (RSA keys
//! generated for it, P-256 keys from ring) verified or refused, and the key set bounds.

mod jwk;
mod verify;
mod world;
