//! Replay protection for request object `jti`s (in progress).
