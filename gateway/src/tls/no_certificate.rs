//! Connections whose client presented no certificate: their handshake completes (so that it is
//! counted as `dcrgate_tls_handshakes_total{result="no_certificate"}` and the client gets a JSON
//! 403 rather than a TLS alert), and their first request is logged at WARN once a minute per
//! peer address, so a misconfigured TPP shows in the logs without flooding them.

use std::net::IpAddr;
use std::sync::LazyLock;

use moka::sync::Cache;

use super::reload::REFUSAL_LOG_INTERVAL;

/// Peers most remembered (the oldest are forgotten first, and then logged again).
const MAX_PEERS: u64 = 10_000;

static LOGGED: LazyLock<Cache<IpAddr, ()>> = LazyLock::new(|| {
    Cache::builder()
        .max_capacity(MAX_PEERS)
        .time_to_live(REFUSAL_LOG_INTERVAL)
        .build()
});

/// Logs a request from `peer` on a connection without a client certificate, unless `peer` was
/// logged within the last [`REFUSAL_LOG_INTERVAL`]. Returns whether it logged.
pub fn log_once(peer: IpAddr) -> bool {
    let entry = LOGGED.entry(peer).or_insert(());
    if entry.is_fresh() {
        tracing::warn!(
            result = "no_certificate",
            peer = %peer,
            "a client connected without a certificate and was refused (logged once a minute per \
             address)"
        );
    }
    entry.is_fresh()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_is_logged_once_per_interval() {
        let a: IpAddr = "192.0.2.10".parse().expect("ip");
        let b: IpAddr = "192.0.2.11".parse().expect("ip");
        assert!(log_once(a));
        assert!(!log_once(a));
        assert!(log_once(b));
        assert!(!log_once(b));
    }
}
