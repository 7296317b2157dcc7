//! A sandbox around the gateway: a stand-in legacy registry, a TPP key host, a stand-in
//! authorization server, a sample TPP that signs request objects, an mTLS client that writes raw
//! requests (so tests can send malformed ones), and a development PKI written to disk.
//! `dcrgate demo` runs on it, and so do the tests. Everything listens on 127.0.0.1 only. The
//! servers are hyper's; only the client's response reader is hand-written, because the tests
//! need to see exactly what came back on the wire. It does not depend on the gateway.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth_server;
pub mod client;
pub mod http1;
pub mod keyhost;
pub mod ocsp_responder;
pub mod pki;
pub mod registry;
pub mod tpp;
pub mod world;

/// A sandbox component failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Socket or file I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Generating certificates or keys.
    #[error(transparent)]
    Pki(#[from] dcrgate_certs::PkiError),
    /// TLS set-up.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Signing.
    #[error("signing: {0}")]
    Signing(String),
    /// A peer answered something that is not HTTP/1.1.
    #[error("bad HTTP response: {0}")]
    Http(String),
    /// A wait ran out.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}
