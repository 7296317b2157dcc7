//! RFC 7662 token introspection (in progress).
