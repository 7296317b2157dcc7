//! The accepted path end to end, and everything the gateway refuses before the body is parsed:
//! routes, content type, body size, bearer token. A refused request never reaches the registry.

use crate::common;

use std::time::Duration;

use common::{assert_rejection, cert_thumbprint, Harness, Put, CLIENT_ID, IO_TIMEOUT, TOKEN};
use dcrgate_sandbox::http1::read_response;
use tokio::io::AsyncWriteExt;

const MAX_BODY: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_update_is_relayed_unchanged_with_the_verified_identity() {
    let h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let spoofing = [
        ("X-Client-Cert", "MIIBforged"),
        ("X-SSL-Client-S-DN", "CN=evil"),
        ("X-Forwarded-Client-Cert", "Hash=forged;Subject=\"CN=evil\""),
        ("X-DCRGate-Client-DN", "CN=evil"),
        ("X-DCRGate-Client-Cert-SHA256", "forged-thumbprint"),
    ];
    let r = h.put(Put::jwt(&jwt).headers(&spoofing)).await;

    // The registry's answer, relayed as it gave it.
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-registry"), Some("stand-in"));
    let body = r.json().expect("JSON body");
    assert_eq!(body["client_id"], CLIENT_ID);
    assert_eq!(body["registry"], "stand-in");

    // The registry saw exactly this request, once.
    let seen = h.registry.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let req = &seen[0];
    assert_eq!(req.method, "PUT");
    assert_eq!(req.target, format!("/register/{CLIENT_ID}"));
    assert_eq!(
        req.body.as_ref(),
        jwt.as_bytes(),
        "body forwarded byte for byte"
    );
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        req.header("content-type"),
        Some("application/jwt"),
        "content type forwarded"
    );

    // Identity headers: the gateway's values, once each; client-sent ones gone.
    let count = |name: &str| req.headers.iter().filter(|(n, _)| n == name).count();
    assert_eq!(count("x-dcrgate-client-dn"), 1, "{:?}", req.headers);
    assert_eq!(
        count("x-dcrgate-client-cert-sha256"),
        1,
        "{:?}",
        req.headers
    );
    assert_eq!(
        req.header("x-dcrgate-client-dn"),
        Some(h.tpp.subject.to_rfc4514().as_str())
    );
    assert_eq!(
        req.header("x-dcrgate-client-cert-sha256"),
        Some(cert_thumbprint(&h.tpp.transport.cert_der).as_str())
    );
    for gone in [
        "x-client-cert",
        "x-ssl-client-s-dn",
        "x-forwarded-client-cert",
    ] {
        assert_eq!(req.header(gone), None, "{gone} must be stripped");
    }
    assert!(
        !req.headers
            .iter()
            .any(|(_, v)| v.contains("evil") || v.contains("forged")),
        "a spoofed value reached the registry: {:?}",
        req.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_jose_content_type_is_accepted() {
    let h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let r = h.put(Put::jwt(&jwt).content_type("application/jose")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = h.registry.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_ref(), jwt.as_bytes());
}

/// A request head without Content-Length, and `body` in chunks of `chunk` bytes.
fn chunked_request(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = format!(
        "PUT /register/{CLIENT_ID} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jwt\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for part in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_is_accepted_and_forwarded_byte_identical() {
    let h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let r = h.send(&chunked_request(jwt.as_bytes(), 97)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = h.registry.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_ref(), jwt.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_are_404() {
    let h = Harness::start().await;
    let body = h.compliant_jwt();
    // `/register` itself is a route (POST, when enabled): 405, see lifecycle_routes.rs.
    for path in ["/", "/registration/x", "/other", "/register/a/b"] {
        let raw = format!(
            "PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jwt\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = h.send(raw.as_bytes()).await;
        assert_rejection(&r, 404, "invalid_request");
    }
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_on_the_update_route_are_405_with_allow_put() {
    let h = Harness::start().await;
    let body = h.compliant_jwt();
    for method in ["GET", "POST", "DELETE", "PATCH"] {
        let raw = format!(
            "{method} /register/{CLIENT_ID} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jwt\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = h.send(raw.as_bytes()).await;
        assert_rejection(&r, 405, "invalid_request");
        assert_eq!(r.header("allow"), Some("PUT"), "{method}");
    }
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_client_ids_are_refused() {
    let h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let too_long = "a".repeat(129);
    let ids = [
        "",
        too_long.as_str(),
        "a%2Fb",
        "a%2fb",
        "..",
        ".",
        "%2e%2e",
        "a%00",
        "a/b",
        "a?x=1",
        "a%20b",
    ];
    for id in ids {
        let r = h.put(Put::jwt(&jwt).client_id(id)).await;
        assert!(
            r.status == 400 || r.status == 404,
            "ClientId {id:?}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert_rejection(&r, r.status, "invalid_request");
    }
    h.assert_not_forwarded();
    // The longest allowed ClientId passes routing (and then fails the claim comparison).
    let at_limit = "b".repeat(128);
    let r = h.put(Put::jwt(&jwt).client_id(&at_limit)).await;
    let description = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(description.contains("client_id"), "{description}");
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_target_is_400() {
    let h = Harness::start().await;
    let body = h.compliant_jwt();
    let request = |target: &str, host: &str| {
        format!(
            "PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/jwt\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Host agrees with the target's authority: the gateway itself refuses it, as JSON.
    for (target, host) in [
        (
            format!("http://localhost/register/{CLIENT_ID}"),
            "localhost",
        ),
        (
            format!("https://localhost/register/{CLIENT_ID}"),
            "localhost",
        ),
        (
            format!("https://evil.example/register/{CLIENT_ID}"),
            "evil.example",
        ),
    ] {
        let r = h.send(request(&target, host).as_bytes()).await;
        assert_rejection(&r, 400, "invalid_request");
    }
    // Host disagrees: pingora refuses the head before the gateway's phases run (its own
    // empty-bodied 400, not the gateway's JSON).
    let r = h
        .send(
            request(
                &format!("https://evil.example/register/{CLIENT_ID}"),
                "localhost",
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_content_type_is_415() {
    let h = Harness::start().await;
    let jwt = h.compliant_jwt();
    for ct in ["application/json", "text/plain", "application/jwt+json", ""] {
        let raw = if ct.is_empty() {
            format!(
                "PUT /register/{CLIENT_ID} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{jwt}",
                jwt.len()
            )
            .into_bytes()
        } else {
            Put::jwt(&jwt).content_type(ct).bytes()
        };
        let r = h.send(&raw).await;
        assert_rejection(&r, 415, "invalid_request");
    }
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_length_over_the_limit_is_413_before_any_body_is_sent() {
    let h = Harness::start().await;
    for declared in [MAX_BODY + 1, 10_000_000] {
        let head = format!(
            "PUT /register/{CLIENT_ID} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jwt\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {declared}\r\n\r\n"
        );
        let mut tls = h.client.connect().await.expect("connect");
        tls.write_all(head.as_bytes()).await.expect("write head");
        tls.flush().await.expect("flush");
        // No body byte is written: the answer must come from the head alone.
        let r = tokio::time::timeout(Duration::from_secs(5), read_response(&mut tls))
            .await
            .expect("413 arrives without the body")
            .expect("a response");
        assert_rejection(&r, 413, "invalid_request");
    }
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_growing_past_the_limit_is_413() {
    let h = Harness::start().await;
    // A body that is a valid JWT prefix, then padding, past 64 KiB in 8 KiB chunks.
    let mut body = h.compliant_jwt().into_bytes();
    body.resize(MAX_BODY + 8 * 1024, b'A');
    let raw = chunked_request(&body, 8 * 1024);
    let tls = h.client.connect().await.expect("connect");
    let (mut rd, mut wr) = tokio::io::split(tls);
    // Write while reading: the gateway may answer (and close) before the whole body is sent.
    let writer = tokio::spawn(async move {
        for part in raw.chunks(4096) {
            if wr.write_all(part).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
        wr
    });
    let r = tokio::time::timeout(IO_TIMEOUT, read_response(&mut rd))
        .await
        .expect("an answer in time")
        .expect("a response");
    assert_rejection(&r, 413, "invalid_request");
    let _ = tokio::time::timeout(IO_TIMEOUT, writer).await;
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bearer_is_401_with_a_bearer_challenge() {
    let h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let r = h.put(Put::jwt(&jwt).no_bearer()).await;
    assert_rejection(&r, 401, "invalid_token");
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bearer_is_401() {
    let h = Harness::start().await;
    let jwt = h.compliant_jwt();
    for auth in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer  ",
        "Bearer two words",
        "Bearer tok en",
        "Token abc",
    ] {
        let r = h
            .put(
                Put::jwt(&jwt)
                    .no_bearer()
                    .headers(&[("Authorization", auth)]),
            )
            .await;
        assert_rejection(&r, 401, "invalid_token");
        let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
        assert!(challenge.starts_with("Bearer"), "{auth}: {challenge}");
        // The challenge's error is the body's.
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{auth}: {challenge}"
        );
    }
    // Two Authorization headers, each well-formed, are refused as well.
    let r = h
        .put(Put::jwt(&jwt).headers(&[("Authorization", "Bearer other")]))
        .await;
    assert_rejection(&r, 401, "invalid_token");
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_rejection_keeps_the_connection_and_only_the_next_good_request_is_forwarded() {
    // A policy rejection does not close the connection; an accepted request follows on the
    // same connection and the registry sees only that one.
    let h = Harness::start().await;
    let bad = h.tpp.sign(&h.claims_with(|m| {
        m.insert("scope".into(), "openid admin".into());
    }));
    let good = h.compliant_jwt();
    let mut tls = h.client.connect().await.expect("connect");
    tls.write_all(&Put::jwt(&bad).bytes()).await.expect("write");
    let first = tokio::time::timeout(IO_TIMEOUT, read_response(&mut tls))
        .await
        .expect("in time")
        .expect("response");
    assert_rejection(&first, 400, "invalid_client_metadata");
    assert_eq!(h.registry.count(), 0);
    tls.write_all(&Put::jwt(&good).bytes())
        .await
        .expect("write");
    let second = tokio::time::timeout(IO_TIMEOUT, read_response(&mut tls))
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(second.status, 200);
    let seen = h.registry.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_ref(), good.as_bytes());
}
