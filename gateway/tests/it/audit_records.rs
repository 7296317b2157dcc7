//! The audit file as documented: one JSON line per decision with exactly the documented fields,
//! each verdict it can carry, mode 0600 on creation, no token or JWT in it, and records a
//! refusing disk will not take dropped and counted while requests go on.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::{
    assert_rejection, audit_records, cert_thumbprint, Harness, Put, CLIENT_ID, TOKEN,
};

/// The documented members of an audit record (docs/operations.md, "Audit records").
const FIELDS: [&str; 12] = [
    "time",
    "request_id",
    "route",
    "client_id",
    "cert_thumbprint",
    "cert_dn",
    "software_id",
    "verdict",
    "status",
    "reasons",
    "rotation",
    "latency_ms",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_has_the_documented_fields_each_verdict_and_the_file_is_0600() {
    let h = Harness::start_with(|cfg| {
        cfg.set("audit", "path", "audit.jsonl");
        cfg.set("upstream", "read_timeout_ms", 500);
    })
    .await;
    let path = h.files.path().join("audit.jsonl");

    // accepted
    let accepted_jwt = h.tpp.sign(&h.claims_with(|m| {
        m.insert("software_id".into(), json!("sw-audit-1"));
    }));
    let r = h.put_jwt(&accepted_jwt).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // rejected: a scope beyond the profile
    let bad_scope = h.tpp.sign(&h.claims_with(|m| {
        m.insert("scope".into(), json!("openid admin"));
    }));
    let r = h.put_jwt(&bad_scope).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    // upstream_error: the registry too slow
    h.registry
        .set_behaviour(dcrgate_sandbox::registry::Behaviour::Slow(
            Duration::from_secs(2),
        ));
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_rejection(&r, 504, "temporarily_unavailable");
    h.registry
        .set_behaviour(dcrgate_sandbox::registry::Behaviour::Normal);
    // A request on an unknown route.
    let r = h
        .send(b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    assert_eq!(r.status, 404);

    let got = audit_records(&path, 4).await;
    assert_eq!(got.len(), 4, "{got:?}");
    let thumb = cert_thumbprint(&h.tpp.transport.cert_der);
    for rec in &got {
        let obj = rec.as_object().expect("an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = FIELDS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want, "{rec}");
        let time = rec["time"].as_str().expect("time");
        assert!(
            time.len() == 24 && time.ends_with('Z') && &time[10..11] == "T",
            "RFC 3339 UTC with milliseconds: {time}"
        );
        let id = rec["request_id"].as_str().expect("request_id");
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(rec["cert_thumbprint"], thumb.as_str(), "{rec}");
        assert_eq!(
            rec["cert_dn"],
            "CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB",
            "{rec}"
        );
        assert!(
            rec["latency_ms"].as_f64().is_some_and(|l| l >= 0.0),
            "{rec}"
        );
        assert!(rec["reasons"].is_array(), "{rec}");
    }
    let verdicts: Vec<(&str, u64, &str)> = got
        .iter()
        .map(|r| {
            (
                r["verdict"].as_str().expect("verdict"),
                r["status"].as_u64().expect("status"),
                r["route"].as_str().expect("route"),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("accepted", 200, "register_update"),
            ("rejected", 400, "register_update"),
            ("upstream_error", 504, "register_update"),
            ("rejected", 404, "other"),
        ]
    );
    assert_eq!(got[0]["client_id"], CLIENT_ID);
    assert_eq!(got[0]["reasons"], json!([]));
    assert_eq!(got[0]["software_id"], "sw-audit-1");
    assert!(
        got[1]["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "scope")),
        "{}",
        got[1]
    );
    assert!(got[3]["client_id"].is_null(), "{}", got[3]);

    let text = std::fs::read_to_string(&path).expect("audit file");
    for secret in [TOKEN, accepted_jwt.as_str(), bad_scope.as_str()] {
        assert!(!text.contains(secret), "a token or JWT in the audit file");
    }
    // No JWS signing input either (the header and payload segments).
    let segment = accepted_jwt.split('.').nth(1).expect("payload");
    assert!(!text.contains(segment), "a JWT payload in the audit file");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

/// A client that sends its head and part of the body, then goes away: the request is answered
/// by nobody, never forwarded, and its record says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_body_is_recorded_and_never_forwarded() {
    let h = Harness::start_with(|cfg| {
        cfg.set("audit", "path", "audit.jsonl");
    })
    .await;
    let raw = Put::jwt(h.compliant_jwt()).bytes();
    let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let mut tls = h.client.connect().await.expect("handshake");
    tls.write_all(&raw[..head_len + 10]).await.expect("write");
    tls.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(tls);
    let got = audit_records(&h.files.path().join("audit.jsonl"), 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    // The gateway refused the unreadable body, but its answer found nobody to read it.
    assert_eq!(got[0]["verdict"], "aborted", "{}", got[0]);
    assert_eq!(got[0]["status"], 0, "{}", got[0]);
    assert_eq!(got[0]["reasons"], json!(["body_unreadable"]), "{}", got[0]);
    let (samples, text) = h
        .metrics_when(|s| {
            s.get(r#"dcrgate_requests_total{outcome="aborted",route="register_update"}"#)
                == Some(1.0)
        })
        .await;
    assert_eq!(
        samples.get(r#"dcrgate_requests_total{outcome="aborted",route="register_update"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        samples
            .get(r#"dcrgate_rejections_total{reason="internal",route="register_update"}"#)
            .unwrap_or(0.0),
        0.0,
        "counted twice: {text}"
    );
    h.assert_not_forwarded();
}

/// A disk that refuses every write (`/dev/full`): requests are answered as usual, the records
/// are dropped, counted and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_full_disk_refuses_are_dropped_counted_and_logged_never_blocking() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        panic!("this test needs a /dev/full device");
    }
    let h = Harness::start_with(|cfg| {
        cfg.set("audit", "path", "/dev/full");
    })
    .await;
    for _ in 0..3 {
        let r = h.put_jwt(&h.compliant_jwt()).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(h.registry.count(), 3);
    h.assert_metric_becomes("dcrgate_audit_records_dropped_total", 3.0)
        .await;
    let log = h.gateway.stderr_log();
    assert!(
        log.contains("audit sink: write failed; records dropped"),
        "{log}"
    );
}
