//! Bearer access tokens on registration management routes (RFC 7592, RFC 8705).

pub mod introspection;
