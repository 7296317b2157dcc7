//! A stand-in authorization server (in progress).
