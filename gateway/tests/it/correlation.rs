//! Correlation: every answer carries `X-Request-Id` and `x-fapi-interaction-id` (the client's
//! when it is one UUID, else a new one); the registry gets the same two; the request's log
//! lines carry both with the route and ClientId; and no log line carries a colour code.

use dcrgate_sandbox::http1::RawResponse;

use crate::common::{assert_rejection, Harness, Put, CLIENT_ID};

const SENT: &str = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910";

fn ids(r: &RawResponse) -> (String, String) {
    let request_id = r.header("x-request-id").expect("X-Request-Id").to_owned();
    let interaction = r
        .header("x-fapi-interaction-id")
        .expect("x-fapi-interaction-id")
        .to_owned();
    assert_eq!(request_id.len(), 32, "{request_id}");
    assert!(request_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(interaction.len(), 36, "{interaction}");
    (request_id, interaction)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ids_reach_the_registry_and_come_back_on_every_answer() {
    let h = Harness::start().await;
    let put = Put::jwt(h.compliant_jwt()).headers(&[("x-fapi-interaction-id", SENT)]);
    let r = h.put(put).await;
    assert_eq!(r.status, 200);
    let (request_id, interaction) = ids(&r);
    assert_eq!(interaction, SENT);
    let seen = h.registry.requests();
    let forwarded = seen.last().expect("forwarded");
    assert_eq!(forwarded.header("x-request-id"), Some(request_id.as_str()));
    assert_eq!(forwarded.header("x-fapi-interaction-id"), Some(SENT));

    // Not a UUID (or two of them): replaced by a new one, upstream and in the answer.
    for extra in [
        vec![("x-fapi-interaction-id", "not-a-uuid")],
        vec![
            ("x-fapi-interaction-id", SENT),
            ("x-fapi-interaction-id", SENT),
        ],
        vec![("x-fapi-interaction-id", "7f6e5d4c3b2a41908f7e6d5c4b3a2910")],
    ] {
        let r = h.put(Put::jwt(h.compliant_jwt()).headers(&extra)).await;
        assert_eq!(r.status, 200);
        let (request_id, interaction) = ids(&r);
        assert_ne!(interaction, SENT, "{extra:?}");
        let seen = h.registry.requests();
        let forwarded = seen.last().expect("forwarded");
        let values: Vec<&str> = forwarded
            .headers
            .iter()
            .filter(|(n, _)| n == "x-fapi-interaction-id")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values, [interaction.as_str()], "{extra:?}");
        assert_eq!(forwarded.header("x-request-id"), Some(request_id.as_str()));
    }

    // The gateway's own answers: 401, 404, 400.
    let requests_before = h.registry.count();
    let no_token = h
        .put(
            Put::jwt(h.compliant_jwt())
                .no_bearer()
                .headers(&[("x-fapi-interaction-id", SENT)]),
        )
        .await;
    assert_rejection(&no_token, 401, "invalid_token");
    let (no_token_id, interaction) = ids(&no_token);
    assert_eq!(interaction, SENT);
    let unknown = h
        .send(b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(unknown.status, 404);
    ids(&unknown);
    let bad = h.put(Put::jwt("not a jwt")).await;
    assert_eq!(bad.status, 400);
    ids(&bad);
    assert_eq!(h.registry.count(), requests_before);

    // The refusal's log line carries the ids, the route and the ClientId.
    let log = h.gateway.stderr_log();
    let line = log
        .lines()
        .find(|l| l.contains(&no_token_id) && l.contains("rejected"))
        .unwrap_or_else(|| panic!("no log line with {no_token_id}: {log}"));
    assert!(line.contains(&format!("interaction_id={SENT}")), "{line}");
    assert!(line.contains("route=register_update"), "{line}");
    assert!(line.contains(&format!("client_id={CLIENT_ID}")), "{line}");
    // Logs go to a file here, as to collectors: never a colour code.
    assert!(!log.contains('\u{1b}'), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_carries_the_ids_and_its_log_line_too() {
    let h = Harness::start_with(|cfg| {
        cfg.set(
            "upstream",
            "url",
            format!("http://127.0.0.1:{}", crate::common::closed_port()),
        );
    })
    .await;
    let put = Put::jwt(h.compliant_jwt()).headers(&[("x-fapi-interaction-id", SENT)]);
    let r = h.put(put).await;
    assert_rejection(&r, 502, "temporarily_unavailable");
    let (request_id, interaction) = ids(&r);
    assert_eq!(interaction, SENT);
    let log = h.gateway.stderr_log();
    let line = log
        .lines()
        .find(|l| l.contains("forwarding failed"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&format!("request_id={request_id}")), "{line}");
    assert!(line.contains(&format!("interaction_id={SENT}")), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_upstream_is_the_audit_records_id() {
    let h = Harness::start_with(|cfg| {
        cfg.set("audit", "path", "audit.jsonl");
    })
    .await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200);
    let (answered, _) = ids(&r);
    let seen = h.registry.requests();
    let upstream = seen[0]
        .header("x-request-id")
        .expect("forwarded id")
        .to_owned();
    let path = h.files.path().join("audit.jsonl");
    let mut records: Vec<serde_json::Value> = Vec::new();
    for _ in 0..100 {
        records = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["request_id"], upstream.as_str());
    assert_eq!(upstream, answered);
}
