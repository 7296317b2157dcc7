//! TLS: PEM loading, the mTLS listener settings, and the client identity taken from the
//! handshake.

pub mod ca_usage;
pub mod crl;
pub mod crl_index;
pub mod crl_refresh;
pub mod identity;
pub mod listener;
pub mod no_certificate;
pub mod ocsp;
pub mod pem;
pub mod reload;
pub mod revocation;
