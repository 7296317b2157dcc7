//! JOSE: compact JWS parsing with the header rules a registration endpoint needs, strict JSON,
//! JWK sets, and signature verification on ring.

pub mod json;
pub mod jwk;
pub mod jws;
pub mod verify;
