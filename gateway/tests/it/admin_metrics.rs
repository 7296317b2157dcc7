//! The admin listener: health, and Prometheus metrics that count outcomes by closed-set labels
//! and never carry a ClientId, a DN or a URL.

use crate::common;

use common::{Harness, CLIENT_ID, KID};
use dcrgate_sandbox::world::JWKS_PATH;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_200_and_unknown_admin_paths_are_404() {
    let h = Harness::start().await;
    let r = h.admin_get("/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok\n");
    assert_eq!(h.admin_get("/nope").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_outcomes_without_identifying_anyone() {
    let h = Harness::start().await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200);
    let mismatch = h.claims_with(|m| {
        m.insert(
            "tls_client_auth_dn".into(),
            json!("CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-999999,O=Example TPP Ltd,C=GB"),
        );
    });
    let r = h.put_jwt(&h.tpp.sign(&mismatch)).await;
    assert_eq!(r.status, 403);

    let accepted = r#"dcrgate_requests_total{outcome="accepted",route="register_update"}"#;
    let rejected = r#"dcrgate_requests_total{outcome="rejected",route="register_update"}"#;
    let (samples, text) = h
        .metrics_when(|s| s.get(accepted) == Some(1.0) && s.get(rejected) == Some(1.0))
        .await;
    assert_eq!(samples.get(accepted), Some(1.0), "{text}");
    assert_eq!(samples.get(rejected), Some(1.0), "{text}");
    assert_eq!(
        samples.get(r#"dcrgate_rejections_total{reason="dn_mismatch",route="register_update"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        samples.get(r#"dcrgate_key_set_fetches_total{result="ok"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        samples.get(r#"dcrgate_upstream_responses_total{class="2xx"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        samples.get(
            r#"dcrgate_request_duration_seconds_count{outcome="accepted",route="register_update"}"#
        ),
        Some(1.0),
        "{text}"
    );

    // Nothing that identifies a TPP, a key or a location.
    let dn = h.tpp.subject.to_rfc4514();
    let key_host_port = h.key_host.addr().port().to_string();
    for leak in [
        CLIENT_ID,
        KID,
        JWKS_PATH,
        "://",
        "localhost",
        "127.0.0.1",
        "/register",
        "0015800001HQQrZAAX",
        "PSDGB-FCA",
        dn.as_str(),
    ] {
        assert!(!text.contains(leak), "metrics mention {leak:?}:\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains(&format!(":{key_host_port}")),
            "metrics mention the key host port: {line}"
        );
    }
}
