//! Shadow mode, for a bank adopting a profile: rules in shadow are evaluated and recorded as
//! `would_reject` (metric and audit record) and the request is forwarded anyway; rules not in
//! shadow, and the cryptographic checks, are still enforced.

use crate::common;

use common::{assert_rejection, Harness};
use dcrgate_sandbox::tpp::Signer;
use dcrgate_sandbox::world::SEED_PROFILE;
use serde_json::{json, Value};

async fn shadow_gateway(shadow: &'static str) -> Harness {
    Harness::start_setup(|cfg, s| {
        let profile = SEED_PROFILE.replace("all = false\nrules = []", shadow);
        assert_ne!(
            profile, SEED_PROFILE,
            "the profile has a [shadow] section to replace"
        );
        s.write("shadow.toml", &profile);
        cfg.set("policy", "profile", "shadow.toml");
        cfg.set("audit", "path", "audit.jsonl");
    })
    .await
}

async fn audit(h: &Harness, n: usize) -> Vec<Value> {
    crate::common::audit_records(&h.files.path().join("audit.jsonl"), n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadowed_rule_is_recorded_and_forwarded_and_the_others_enforced() {
    let h = shadow_gateway("all = false\nrules = [\"dn_mismatch\"]").await;
    let other_org = h.tpp.sign(&h.claims_with(|m| {
        m.insert(
            "tls_client_auth_dn".into(),
            json!("CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-999999,O=Example TPP Ltd,C=GB"),
        );
    }));
    let r = h.put_jwt(&other_org).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.registry.count(), 1, "forwarded in shadow");

    // Not in shadow: enforced.
    let bad_scope = h.tpp.sign(&h.claims_with(|m| {
        m.insert("scope".into(), json!("openid admin"));
    }));
    assert_rejection(&h.put_jwt(&bad_scope).await, 400, "invalid_client_metadata");
    // A shadowed and an enforced violation together: enforced, and the answer (status, error,
    // description, metric reason) comes from the enforced violation alone, not the shadowed
    // 403 the profile is only trying out.
    let both = h.tpp.sign(&h.claims_with(|m| {
        m.insert("scope".into(), json!("openid admin"));
        m.insert("tls_client_auth_dn".into(), json!("CN=someone else"));
    }));
    let description = assert_rejection(&h.put_jwt(&both).await, 400, "invalid_client_metadata");
    assert!(description.contains("scope"), "{description}");
    assert!(!description.contains("tls_client_auth_dn"), "{description}");
    assert_eq!(h.registry.count(), 1);

    let (samples, text) = h
        .metrics_when(|s| {
            s.get(r#"dcrgate_shadow_would_reject_total{reason="dn_mismatch"}"#) == Some(1.0)
        })
        .await;
    assert_eq!(
        samples.get(r#"dcrgate_requests_total{outcome="would_reject",route="register_update"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        samples.get(r#"dcrgate_rejections_total{reason="scope",route="register_update"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        samples.get(r#"dcrgate_rejections_total{reason="dn_mismatch",route="register_update"}"#),
        None,
        "a shadowed rule is never a rejection reason:
{text}"
    );
    let records = audit(&h, 3).await;
    assert_eq!(records[0]["verdict"], "would_reject");
    assert_eq!(records[0]["reasons"], json!(["dn_mismatch"]));
    assert_eq!(records[0]["status"], 200);
    assert_eq!(records[1]["verdict"], "rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_shadow_never_lets_a_bad_signature_through() {
    let h = shadow_gateway("all = true\nrules = []").await;
    // Policy violations pass in shadow...
    let http_redirect = h.tpp.sign(&h.claims_with(|m| {
        m.insert("redirect_uris".into(), json!(["http://tpp.example/cb"]));
    }));
    assert_eq!(h.put_jwt(&http_redirect).await.status, 200);
    // ... but a request object signed by someone else does not, nor does an unsigned one.
    let stranger = Signer::generate(common::KID).expect("key");
    let forged = stranger.sign(&h.claims());
    assert_rejection(&h.put_jwt(&forged).await, 400, "invalid_client_metadata");
    let none = dcrgate_sandbox::tpp::unsigned(
        &json!({"alg": "none", "kid": common::KID}),
        &h.claims(),
        b"",
    );
    assert_rejection(&h.put_jwt(&none).await, 400, "invalid_client_metadata");
    assert_eq!(h.registry.count(), 1);
}
