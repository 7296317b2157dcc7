//! The upstream registry failing, clients too slow to send their request, and clients that
//! cannot prove who they are.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    assert_rejection, closed_port, tpp_subject, Harness, Put, CLIENT_ID, IO_TIMEOUT, TOKEN,
};
use dcrgate::config::file::LimitsSection;
use dcrgate_certs::Authority;
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::http1::read_response;
use dcrgate_sandbox::registry::Behaviour;
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_not_listening_is_502_json() {
    let h = Harness::start_with(|cfg| {
        cfg.set(
            "upstream",
            "url",
            format!("http://127.0.0.1:{}", closed_port()),
        );
    })
    .await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    let d = assert_rejection(&r, 502, "temporarily_unavailable");
    assert!(d.contains("registry"), "{d}");
    // The (real) registry was not the upstream and saw nothing.
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_registry_is_504_json() {
    let h = Harness::start_with(|cfg| {
        cfg.set("upstream", "read_timeout_ms", 500);
    })
    .await;
    h.registry
        .set_behaviour(Behaviour::Slow(Duration::from_secs(3)));
    let r = h.put_jwt(&h.compliant_jwt()).await;
    let d = assert_rejection(&r, 504, "temporarily_unavailable");
    assert!(d.contains("in time"), "{d}");
    // It was forwarded once (the registry is just slow), and not retried.
    assert_eq!(h.registry.count(), 1);
}

/// The seed profile with replay protection required (every compliant update carries a jti).
fn with_required_jti(setup: &common::Setup<'_>) {
    let profile =
        dcrgate_sandbox::world::SEED_PROFILE.replace("require_jti = false", "require_jti = true");
    assert_ne!(profile, dcrgate_sandbox::world::SEED_PROFILE);
    setup.write("seed-update.toml", &profile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_registry_never_received_keeps_its_jti_usable() {
    let mut h = Harness::start_setup(|cfg, setup| {
        with_required_jti(setup);
        cfg.set(
            "upstream",
            "url",
            format!("http://127.0.0.1:{}", closed_port()),
        );
    })
    .await;
    let jwt = h.compliant_jwt();
    // The registry refuses the connection: 502, and the jti is released.
    let r = h.put_jwt(&jwt).await;
    assert_rejection(&r, 502, "temporarily_unavailable");
    let series = r#"dcrgate_replay_checks_total{result="released",store="memory"}"#;
    h.assert_metric_becomes(series, 1.0).await;
    // The registry is back (the configuration names it again): the same signed request passes.
    let registry = format!("http://{}", h.registry.addr());
    h.config.set("upstream", "url", registry);
    h.reconfigure().await;
    let r = h.put_jwt(&jwt).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Once received, it is used: a replay is refused.
    let r = h.put_jwt(&jwt).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    assert_eq!(h.registry.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_may_have_reached_the_registry_keeps_its_jti_used() {
    let h = Harness::start_setup(|cfg, setup| {
        with_required_jti(setup);
        cfg.set("upstream", "read_timeout_ms", 500);
    })
    .await;
    h.registry
        .set_behaviour(Behaviour::Slow(Duration::from_secs(3)));
    let jwt = h.compliant_jwt();
    let r = h.put_jwt(&jwt).await;
    assert_rejection(&r, 504, "temporarily_unavailable");
    h.registry.set_behaviour(Behaviour::Normal);
    // The registry saw it (and may have applied it): sending it again is a replay.
    let r = h.put_jwt(&jwt).await;
    let d = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(d.contains("jti"), "{d}");
    assert_eq!(h.registry.count(), 1);
}

/// Read until the peer closes or errors (bounded by `within`); returns what arrived, or `None`
/// if the connection was still open when the time ran out.
async fn read_until_closed<R: AsyncRead + Unpin>(rd: &mut R, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dripping_its_request_head_is_cut_off() {
    let h = Harness::start_with(|cfg| {
        cfg.set("limits", "header_timeout_ms", 1000);
    })
    .await;
    let head = format!(
        "PUT /register/{CLIENT_ID} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jwt\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 10\r\n\r\n"
    );
    let tls = h.client.connect().await.expect("handshake");
    let started = Instant::now();
    let (mut rd, mut wr) = tokio::io::split(tls);
    // One byte every 300 ms: each read is quick, the head as a whole is not (~40 s).
    let bytes = head.into_bytes();
    let writer = tokio::spawn(async move {
        for b in bytes {
            if wr.write_all(&[b]).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let closed = read_until_closed(&mut rd, Duration::from_secs(5)).await;
    writer.abort();
    let elapsed = started.elapsed();
    let got = closed.unwrap_or_else(|| panic!("still open after {elapsed:?}"));
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 4"),
        "unexpected answer {:?}",
        String::from_utf8_lossy(&got)
    );
    h.assert_not_forwarded();
    h.assert_metric_becomes(r#"dcrgate_client_timeouts_total{stage="head"}"#, 1.0)
        .await;
}

/// The head clock of a finished connection must not cut a later one that reuses its addresses
/// (and, the server's lowest free descriptor being reused, its descriptor): a client that
/// closes after one request, then a client from the same local port that keeps its connection
/// busy past the first one's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_connections_head_clock_never_cuts_a_later_connection_from_the_same_address() {
    let h = Harness::start_with(|cfg| {
        cfg.set("limits", "header_timeout_ms", 1000);
    })
    .await;
    // A free local port for both connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let close = Put::jwt(h.compliant_jwt())
        .headers(&[("Connection", "close")])
        .bytes();
    let mut first = h
        .client
        .connect_from(local)
        .await
        .expect("first connection");
    first.write_all(&close).await.expect("write");
    assert_eq!(read_response(&mut first).await.expect("answer").status, 200);
    drop(first);
    // The gateway closed first (Connection: close), so the port is free at once on this side.
    let mut second = None;
    for _ in 0..50 {
        match h.client.connect_from(local).await {
            Ok(tls) => {
                second = Some(tls);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let mut second = second.expect("a second connection from the same address");
    // Requests every 150 ms for 2.5 s: well past the first connection's deadline (1 s after
    // its request ended), each head well within this connection's own.
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        let raw = Put::jwt(h.compliant_jwt()).bytes();
        second
            .write_all(&raw)
            .await
            .expect("the connection is open");
        let r = tokio::time::timeout(Duration::from_secs(5), read_response(&mut second))
            .await
            .expect("an answer in time")
            .unwrap_or_else(|e| panic!("request {answered} on the live connection failed: {e}"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        answered += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(answered >= 10, "{answered}");
    let (samples, _) = h.metrics_when(|_| true).await;
    assert_eq!(
        samples.get(r#"dcrgate_client_timeouts_total{stage="head"}"#),
        Some(0.0),
        "a live connection was cut as too slow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_completes_the_handshake_and_sends_nothing_is_cut_off() {
    let h = Harness::start_with(|cfg| {
        cfg.set("limits", "header_timeout_ms", 1000);
    })
    .await;
    let mut tls = h.client.connect().await.expect("handshake");
    let closed = read_until_closed(&mut tls, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "an idle connection was kept open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dripping_its_body_gets_408_and_nothing_is_forwarded() {
    let h = Harness::start_with(|cfg| {
        cfg.set("limits", "body_timeout_ms", 1000);
    })
    .await;
    let jwt = h.compliant_jwt();
    let raw = Put::jwt(&jwt).bytes();
    let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let (head, body) = raw.split_at(head_len);
    let (head, body) = (head.to_vec(), body.to_vec());
    let tls = h.client.connect().await.expect("handshake");
    let (mut rd, mut wr) = tokio::io::split(tls);
    let writer = tokio::spawn(async move {
        if wr.write_all(&head).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        for b in body {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if wr.write_all(&[b]).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
    });
    let answer = tokio::time::timeout(Duration::from_secs(5), read_response(&mut rd))
        .await
        .expect("an answer within 5 s")
        .expect("a 408 answer, not a bare close");
    writer.abort();
    let d = assert_rejection(&answer, 408, "invalid_request");
    assert!(d.contains("body"), "{d}");
    h.assert_not_forwarded();
    let (samples, text) = h
        .metrics_when(|s| {
            s.get(r#"dcrgate_rejections_total{reason="body_timeout",route="register_update"}"#)
                == Some(1.0)
        })
        .await;
    assert_eq!(
        samples.get(r#"dcrgate_rejections_total{reason="body_timeout",route="register_update"}"#),
        Some(1.0),
        "{text}"
    );
}

/// A client that opens a TCP connection and stalls inside (or before) the TLS handshake is cut
/// off at the head timeout, which counts from accept: the handshake gets no clock of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_cut_at_the_head_timeout() {
    let h = Harness::start_with(|cfg| {
        cfg.set("limits", "header_timeout_ms", 1000);
    })
    .await;
    // Nothing at all; the first 6 bytes of a ClientHello record announcing 512 bytes; a whole
    // record header plus part of the handshake header.
    let stalls: [&[u8]; 3] = [
        b"",
        b"\x16\x03\x01\x02\x00\x01",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for (i, prefix) in stalls.iter().enumerate() {
        let mut tcp = tokio::net::TcpStream::connect(h.gateway_addr())
            .await
            .expect("connect");
        tcp.write_all(prefix).await.expect("write");
        let started = Instant::now();
        let closed = read_until_closed(&mut tcp, Duration::from_secs(6)).await;
        let got =
            closed.unwrap_or_else(|| panic!("stall {i}: still open after {:?}", started.elapsed()));
        assert!(got.is_empty() || got[0] == 0x15, "stall {i}: {got:?}");
        let want = (i + 1) as f64;
        let (samples, text) = h
            .metrics_when(|s| s.get(r#"dcrgate_client_timeouts_total{stage="head"}"#) == Some(want))
            .await;
        assert_eq!(
            samples.get(r#"dcrgate_client_timeouts_total{stage="head"}"#),
            Some(want),
            "stall {i}: {text}"
        );
    }
    h.assert_not_forwarded();
}

/// After a request is answered, a kept-alive connection gets the head timeout again for its next
/// request: idle past it, the connection is closed (and counted), the answered request stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_idle_after_its_request_is_cut_at_the_head_timeout() {
    let h = Harness::start_with(|cfg| {
        cfg.set("limits", "header_timeout_ms", 1000);
    })
    .await;
    let mut tls = h.client.connect().await.expect("handshake");
    let raw = Put::jwt(h.compliant_jwt()).bytes();
    tls.write_all(&raw).await.expect("write");
    let r = tokio::time::timeout(IO_TIMEOUT, read_response(&mut tls))
        .await
        .expect("an answer in time")
        .expect("an answer");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let started = Instant::now();
    // Half a request head, then nothing.
    tls.write_all(format!("PUT /register/{CLIENT_ID} HTTP/1.1\r\nHost: local").as_bytes())
        .await
        .expect("write");
    let closed = read_until_closed(&mut tls, Duration::from_secs(6)).await;
    assert!(closed.is_some(), "still open after {:?}", started.elapsed());
    assert_eq!(
        h.registry.count(),
        1,
        "only the answered request reached the registry"
    );
    h.assert_metric_becomes(r#"dcrgate_client_timeouts_total{stage="head"}"#, 1.0)
        .await;
}

#[test]
fn the_default_head_timeout_is_ten_seconds() {
    let limits = LimitsSection::default();
    assert_eq!(limits.header_timeout_ms, 10_000);
    assert_eq!(limits.body_timeout_ms, 10_000);
    assert_eq!(limits.max_body_bytes, 65_536);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let h = Harness::start().await;
    let rogue_ca = Authority::new("dcrgate sandbox TPP CA").expect("CA");
    let rogue_cert = rogue_ca.issue_client(&tpp_subject()).expect("cert");
    let rogue = TppClient::new(
        &h.pki.server_ca.cert_pem(),
        Some(&rogue_cert),
        h.gateway_addr(),
    )
    .expect("client");
    let raw = Put::jwt(h.compliant_jwt()).bytes();
    let result = rogue.send(&raw).await;
    assert!(
        result.is_err(),
        "answered a foreign certificate: {result:?}"
    );
    // A CA of another name: an unknown issuer.
    let other_ca = Authority::new("another TPP CA").expect("CA");
    let other_cert = other_ca.issue_client(&tpp_subject()).expect("cert");
    let other = TppClient::new(
        &h.pki.server_ca.cert_pem(),
        Some(&other_cert),
        h.gateway_addr(),
    )
    .expect("client");
    assert!(
        other.send(&raw).await.is_err(),
        "answered an unknown CA's certificate"
    );
    // An expired certificate of the trusted CA is refused too.
    let old = h
        .pki
        .client_ca
        .issue_client_valid(&tpp_subject(), time::Duration::days(-1))
        .expect("cert");
    let expired =
        TppClient::new(&h.pki.server_ca.cert_pem(), Some(&old), h.gateway_addr()).expect("client");
    assert!(
        expired.send(&raw).await.is_err(),
        "answered an expired certificate"
    );
    // And one not valid yet.
    let early = h
        .pki
        .client_ca
        .issue_client_not_yet_valid(&tpp_subject())
        .expect("cert");
    let early = TppClient::new(&h.pki.server_ca.cert_pem(), Some(&early), h.gateway_addr())
        .expect("client");
    assert!(
        early.send(&raw).await.is_err(),
        "answered a certificate not valid yet"
    );
    h.assert_not_forwarded();
    // Each refused handshake is counted by why (the rogue CA has the trusted CA's name: its
    // signature does not verify).
    for result in ["bad_certificate", "unknown_ca", "expired", "not_yet_valid"] {
        let series = format!("dcrgate_tls_handshakes_total{{result=\"{result}\"}}");
        h.assert_metric_becomes(&series, 1.0).await;
    }
    // Each refusal is one WARN line naming the certificate; the same certificate again
    // within the minute is counted, not logged again.
    assert!(
        other.send(&raw).await.is_err(),
        "answered an unknown CA's certificate"
    );
    let series = r#"dcrgate_tls_handshakes_total{result="unknown_ca"}"#;
    h.metrics_when(|s| s.get(series) == Some(2.0)).await;
    let log = h.gateway.stderr_log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("client certificate refused at the handshake"))
        .collect();
    assert_eq!(refusals.len(), 4, "{log}");
    let serial: String = other_cert
        .serial
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let unknown = refusals
        .iter()
        .find(|l| l.contains("result=\"unknown_ca\""))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(unknown.contains("CN=another TPP CA"), "{unknown}");
    assert!(unknown.contains("CN=0015800001HQQrZAAX"), "{unknown}");
    assert!(unknown.contains(&serial), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_tls_session_still_carries_the_client_identity() {
    let h = Harness::start().await;
    let mut kinds = Vec::new();
    for i in 1..=3 {
        let mut tls = h.client.connect().await.expect("handshake");
        kinds.push(tls.get_ref().1.handshake_kind());
        let raw = Put::jwt(h.compliant_jwt()).bytes();
        tls.write_all(&raw).await.expect("write");
        let r = tokio::time::timeout(IO_TIMEOUT, read_response(&mut tls))
            .await
            .expect("in time")
            .expect("response");
        assert_eq!(
            r.status,
            200,
            "connection {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // The harness' readiness probe already used this client's session cache, so every
    // connection here may resume; at least the later ones must have.
    assert!(
        kinds[1..]
            .iter()
            .all(|k| *k == Some(HandshakeKind::Resumed)),
        "{kinds:?}"
    );
    let seen = h.registry.requests();
    assert_eq!(seen.len(), 3);
    for req in &seen {
        assert_eq!(
            req.header("x-dcrgate-client-dn"),
            Some(h.tpp.subject.to_rfc4514().as_str())
        );
        assert_eq!(
            req.header("x-dcrgate-client-cert-sha256"),
            Some(common::cert_thumbprint(&h.tpp.transport.cert_der).as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_name_is_resolved_again_in_the_background_and_requests_follow_it() {
    let mut h = Harness::start().await;
    let port = h.registry.addr().port();
    h.config
        .set("upstream", "url", format!("http://localhost:{port}"));
    h.config.set("upstream", "resolve_seconds", 1);
    h.reconfigure().await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // The resolver looks the name up every second; localhost keeps its address.
    let same = r#"dcrgate_upstream_resolutions_total{result="same"}"#;
    let (samples, text) = h
        .metrics_when(|s| s.get(same).is_some_and(|v| v >= 2.0))
        .await;
    assert!(samples.get(same).is_some_and(|v| v >= 2.0), "{text}");
    assert_eq!(
        samples.get(r#"dcrgate_upstream_resolutions_total{result="failed"}"#),
        Some(0.0),
        "{text}"
    );
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.registry.count(), 2);
}

/// The registry's own answers, errors and redirects too, are relayed as they are (with the
/// gateway's ids) and counted by status class; they are not the gateway's rejections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registrys_answers_are_relayed_and_counted_by_class() {
    let h = Harness::start().await;
    for (code, class) in [(503, "5xx"), (302, "3xx"), (409, "4xx"), (201, "2xx")] {
        h.registry.set_behaviour(Behaviour::Status(code));
        let r = h.put_jwt(&h.compliant_jwt()).await;
        assert_eq!(r.status, code, "{}", String::from_utf8_lossy(&r.body));
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("the registry's JSON");
        assert_eq!(body["status"], code, "the registry's own body");
        assert!(r.header("x-request-id").is_some());
        if code == 302 {
            assert_eq!(r.header("location"), Some("/elsewhere"));
        }
        let series = format!("dcrgate_upstream_responses_total{{class=\"{class}\"}}");
        h.assert_metric_becomes(&series, 1.0).await;
    }
    assert_eq!(h.registry.count(), 4);
    let (samples, _) = h.metrics_when(|_| true).await;
    assert_eq!(
        samples.get(r#"dcrgate_requests_total{outcome="accepted",route="register_update"}"#),
        Some(4.0),
        "a registry error is the registry's answer to an accepted request"
    );
}
