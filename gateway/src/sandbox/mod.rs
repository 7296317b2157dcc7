//! A sandbox around the gateway: a stand-in legacy registry, a TPP key host, a sample TPP that
//! signs request objects, an mTLS client, and a development PKI written to disk. `dcrgate demo`
//! runs on it, and so do the integration tests. Everything listens on 127.0.0.1 only.

pub mod auth_server;
pub mod client;
pub mod demo;
pub mod http1;
pub mod keyhost;
pub mod pki;
pub mod registry;
pub mod tpp;

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
