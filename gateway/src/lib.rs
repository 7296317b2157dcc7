//! dcrgate: an mTLS edge gateway that forwards only compliant Open Banking dynamic client
//! registration updates (`PUT /register/{ClientId}`) to a bank's existing registry.
//!
//! The crate is thin glue around the pure policy engine in `dcrgate-policies`:
//! - [`config`]: the TOML configuration, validated.
//! - [`tls`]: the mTLS listener and the client identity from the handshake.
//! - [`conn_guard`]: deadlines for slow clients.
//! - [`jose`]: compact JWS, strict JSON, JWK sets, ring signature verification (the
//!   `dcrgate-jose` crate, re-exported).
//! - [`keyset`]: safe key set fetching and caching.
//! - [`media_type`]: Content-Type parsing.
//! - [`logsafe`]: the log subscriber: other crates capped at INFO, values escaped.
//! - [`outbound`]: what the outbound https calls share (connect, bounded answers).
//! - [`trust`]: trust anchors and software statement verification.
//! - [`bearer`]: bearer access tokens (jwt, introspection, upstream).
//! - [`replay`]: `jti` replay protection (in-process or Redis).
//! - [`rate_limit`]: per-certificate and global token buckets.
//! - [`reason`]: why a request was refused: the closed set of ids, statuses and error codes.
//! - [`rejection`]: the answers the gateway gives itself (RFC 7591 JSON).
//! - [`checks`]: the offline checks the proxy and `explain` both run.
//! - [`proxy`]: the pingora `ProxyHttp` phases.
//! - [`audit`]: one JSON record per decision.
//! - [`metrics`] and [`admin`]: Prometheus metrics and health on the admin listener;
//!   [`dependencies`]: the shared dependencies probed into `dcrgate_dependency_up`.
//! - [`generation`]: one configuration and everything built from it (services), and its builder.
//! - [`reload`]: the running generation and reloads without downtime.
//! - [`server`]: assembling and running the pingora server.
//! - [`demo`] (feature `demo`, on by default): `dcrgate demo`, the gateway started in the
//!   `dcrgate-sandbox` world.
//! - [`explain`]: `dcrgate explain`, an offline verdict on a request object and certificate.
// Two `unsafe` blocks remain, in `conn_guard` (reading a socket's cookie, borrowing a raw socket
// descriptor), allowed there with their safety arguments; everything else is safe code.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod audit;
pub mod bearer;
pub mod checks;
pub mod clock;
pub mod config;
pub mod conn_guard;
#[cfg(feature = "demo")]
pub mod demo;
pub mod dependencies;
pub mod explain;
pub mod generation;
/// JOSE (JWS, JWK sets, verification): the `dcrgate-jose` crate.
pub use dcrgate_jose as jose;
pub mod keyset;
pub mod logsafe;
pub mod media_type;
pub mod metrics;
pub mod outbound;
pub mod policy_test;
pub mod probe;
pub mod proxy;
pub mod rate_limit;
pub mod reason;
pub mod rejection;
pub mod reload;
pub mod replay;
pub mod server;
pub mod shared_redis;
pub mod tls;
pub mod trust;
pub mod upstream_address;
pub mod version;
