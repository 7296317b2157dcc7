//! Rate limits: one client certificate over its limit gets 429 with `Retry-After` while another
//! certificate is still served; the global limit protects the registry; refusals are counted
//! and never forwarded.

use crate::common;

use std::net::SocketAddr;

use common::{tpp_subject, Harness, Put};
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::http1::RawResponse;

fn assert_429(r: &RawResponse, reason: &str) {
    let d = common::assert_rejection(r, 429, "temporarily_unavailable");
    assert!(d.contains("too many requests"), "{d}");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {r:?}"));
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(d.contains(reason), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_certificate_over_its_limit_does_not_starve_another() {
    let h = Harness::start_with(|cfg| {
        cfg.set("rate_limits", "per_client_per_second", 0.2);
        cfg.set("rate_limits", "per_client_burst", 3.0);
    })
    .await;
    for _ in 0..3 {
        assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    }
    assert_429(
        &h.put_jwt(&h.compliant_jwt()).await,
        "this client certificate",
    );
    assert_eq!(h.registry.count(), 3);

    // Another TPP certificate from the same CA has its own bucket.
    let other = h
        .pki
        .transport_cert(&tpp_subject())
        .expect("second certificate");
    let client = TppClient::new(
        &h.pki.server_ca.cert_pem(),
        Some(&other),
        SocketAddr::from(([127, 0, 0, 1], h.gateway.listen)),
    )
    .expect("client");
    let raw = Put::jwt(h.compliant_jwt()).bytes();
    let r = client.send(&raw).await.expect("answer");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (samples, text) = h
        .metrics_when(|s| s.get(r#"dcrgate_rate_limited_total{scope="client"}"#) == Some(1.0))
        .await;
    assert_eq!(
        samples.get(r#"dcrgate_rate_limited_total{scope="client"}"#),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_limit_protects_the_registry() {
    let h = Harness::start_with(|cfg| {
        cfg.set("rate_limits", "global_per_second", 0.2);
        cfg.set("rate_limits", "global_burst", 2.0);
    })
    .await;
    for _ in 0..2 {
        assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    }
    // Even a request that would be refused anyway is refused early, before any work.
    for _ in 0..3 {
        assert_429(&h.put_jwt(&h.compliant_jwt()).await, "the gateway");
    }
    assert_eq!(h.registry.count(), 2);
    let (samples, _) = h
        .metrics_when(|s| s.get(r#"dcrgate_rate_limited_total{scope="global"}"#) == Some(3.0))
        .await;
    assert_eq!(
        samples.get(r#"dcrgate_rate_limited_total{scope="global"}"#),
        Some(3.0)
    );
}
