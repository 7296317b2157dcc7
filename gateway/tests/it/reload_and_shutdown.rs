//! Change without downtime: policy and configuration reload on file change and on SIGHUP
//! (validated first; an invalid file keeps the running version), the served certificate and the
//! client CA bundle reload with client authentication still required, in-flight requests finish
//! on the version they started with, graceful shutdown lets in-flight requests finish, and a
//! zero-downtime upgrade hands the listening sockets to a new process.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{assert_rejection, tpp_subject, Harness, Put};
use dcrgate_certs::Authority;
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::registry::Behaviour;
use dcrgate_sandbox::world::SEED_PROFILE;
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// The seed profile with request objects limited to 10 minutes (the harness signs 50-minute
/// ones).
fn short_lived() -> String {
    let p = SEED_PROFILE.replace("max_lifetime_seconds = 3600", "max_lifetime_seconds = 600");
    assert_ne!(p, SEED_PROFILE);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_profile_file_is_picked_up_and_an_invalid_one_is_refused() {
    let h = Harness::start().await;
    let profile = h.files.path().join("seed-update.toml");
    assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);

    // A valid change: request objects may live 10 minutes at most.
    std::fs::write(&profile, short_lived()).expect("write profile");
    h.wait_reloads("ok", 1.0).await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    let d = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(d.contains("lifetime"), "{d}");

    // An invalid file: refused, counted, and the running profile stays.
    std::fs::write(
        &profile,
        "name = \"broken\"\n[claims]\nallowed_scopes = []\n",
    )
    .expect("write");
    h.wait_reloads("invalid", 1.0).await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    let ok = h.tpp.sign(&h.claims_with(|m| {
        let iat = m["iat"].as_i64().unwrap_or_default();
        m.insert("exp".into(), json!(iat + 300));
    }));
    assert_eq!(h.put_jwt(&ok).await.status, 200);
    assert!(h.gateway.stderr_log().contains("reload refused"));
    assert_eq!(h.registry.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_in_flight_requests_finish_on_their_version() {
    let mut h = Harness::start().await;
    // Start a request and hold its body back.
    let jwt = h.compliant_jwt();
    let raw = Put::jwt(&jwt).bytes();
    let split = raw.len() - 10;
    let mut tls = h.client.connect().await.expect("connect");
    tls.write_all(&raw[..split]).await.expect("head");
    tls.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Reload to a profile that would refuse it, by SIGHUP (the file change alone would also do).
    std::fs::write(h.files.path().join("seed-update.toml"), short_lived()).expect("write");
    h.hangup("ok").await;

    // The started request completes under the version it started with.
    tls.write_all(&raw[split..])
        .await
        .expect("rest of the body");
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        dcrgate_sandbox::http1::read_response(&mut tls),
    )
    .await
    .expect("in time")
    .expect("response");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // A new request sees the new version.
    assert_rejection(
        &h.put_jwt(&h.compliant_jwt()).await,
        400,
        "invalid_client_metadata",
    );
    assert!(h.gateway.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_and_client_ca_reload_keep_client_authentication_required() {
    let h = Harness::start().await;
    let addr = SocketAddr::from(([127, 0, 0, 1], h.gateway.listen));
    // New PKI: a new server CA and certificate, a new TPP CA and a TPP certificate from it.
    let server_ca = Authority::new("rotated server CA").expect("CA");
    let gateway = server_ca
        .issue_server(&["localhost", "127.0.0.1"])
        .expect("cert");
    let tpp_ca = Authority::new("rotated TPP CA").expect("CA");
    let new_tpp = tpp_ca.issue_client(&tpp_subject()).expect("TPP cert");
    let dir = h.files.path();
    std::fs::write(dir.join("client-ca.pem"), tpp_ca.cert_pem()).expect("CA file");
    dcrgate_sandbox::pki::write_private(&dir.join("gateway.key"), &gateway.key_pem).expect("key");
    std::fs::write(dir.join("gateway.pem"), &gateway.cert_pem).expect("cert");
    h.hangup("ok").await;

    let new_client = TppClient::new(&server_ca.cert_pem(), Some(&new_tpp), addr).expect("client");
    let r = new_client
        .send(&Put::jwt(h.compliant_jwt()).bytes())
        .await
        .expect("the new TPP certificate is accepted");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // The old TPP CA is no longer trusted, and a client without a certificate is still refused.
    let old_tpp = TppClient::new(&server_ca.cert_pem(), Some(&h.tpp.transport), addr).expect("c");
    assert!(
        old_tpp
            .send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .is_err(),
        "a certificate from the replaced CA was accepted"
    );
    let anonymous = TppClient::new(&server_ca.cert_pem(), None, addr).expect("client");
    let r = anonymous
        .send(&Put::jwt(h.compliant_jwt()).bytes())
        .await
        .expect("a JSON refusal");
    let d = common::assert_rejection(&r, 403, "access_denied");
    assert!(d.contains("no client certificate"), "{d}");
    // Clients that only trust the old server CA no longer connect: the new certificate is served.
    assert!(h.client.connect().await.is_err());
    let (_, cert) = x509_parser::parse_x509_certificate(&gateway.cert_der).expect("cert");
    let (samples, _) = h.metrics_when(|_| true).await;
    assert_eq!(
        samples.get("dcrgate_served_certificate_expiry_timestamp_seconds"),
        Some(cert.validity().not_after.timestamp() as f64)
    );
    assert_eq!(h.registry.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_certificate_pair_is_refused_and_the_old_one_served() {
    let h = Harness::start().await;
    let other = Authority::new("other").expect("CA");
    let stray = other.issue_server(&["localhost"]).expect("cert");
    // A key that does not belong to the certificate.
    dcrgate_sandbox::pki::write_private(&h.files.path().join("gateway.key"), &stray.key_pem)
        .expect("key");
    h.hangup("invalid").await;
    assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_then_exits() {
    let h = Harness::start_with(|cfg| {
        cfg.set("server", "grace_period_seconds", 4);
        cfg.set("server", "graceful_shutdown_timeout_seconds", 1);
    })
    .await;
    h.registry
        .set_behaviour(Behaviour::Slow(Duration::from_millis(1500)));
    let jwt = h.compliant_jwt();
    let raw = Put::jwt(&jwt).bytes();
    let client = h.client.clone();
    let in_flight = tokio::spawn(async move { client.send(&raw).await });
    // Let the request reach the registry, then ask the gateway to stop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.registry.count() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.registry.count(), 1);
    h.gateway.signal("TERM");
    // The listener closes at once (the load balancer sends new connections elsewhere) ...
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut refused = false;
    while !refused && Instant::now() < deadline {
        refused = h.client.connect().await.is_err();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "new connections were still accepted during the drain"
    );
    // ... while the request in flight is answered.
    let r = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("in time")
        .expect("task")
        .expect("the in-flight request was answered");
    assert_eq!(r.status, 200);
    let mut h = h;
    let status = h.gateway.wait_exit(Duration::from_secs(10));
    assert!(status.is_some(), "the gateway did not exit after SIGTERM");
    assert!(
        h.client.connect().await.is_err(),
        "still accepting after exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_downtime_upgrade_hands_the_sockets_to_a_new_process() {
    // The old process accepts for the grace period, then gives what it accepted the shutdown
    // timeout to finish: on a loaded machine a handshake accepted late needs more than a second.
    let mut h = Harness::start_with(|cfg| {
        cfg.set("server", "grace_period_seconds", 1);
        cfg.set("server", "graceful_shutdown_timeout_seconds", 5);
    })
    .await;
    let config = h.files.path().join("dcrgate.toml");
    let mut next = common::GatewayProcess::spawn_with(
        &config,
        &["--upgrade"],
        h.files.path().join("upgraded.stderr"),
        h.gateway.listen,
        h.gateway.admin,
    );
    // The new process waits for the sockets; the old one hands them over on SIGQUIT.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(next.running(), "{}", next.stderr_log());
    h.gateway.signal("QUIT");

    // Requests keep being answered throughout the handover.
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut answered = 0;
    while Instant::now() < deadline {
        let r = h.put_jwt(&h.compliant_jwt()).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        answered += 1;
        if !h.gateway.running() && answered > 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        h.gateway.wait_exit(Duration::from_secs(15)).is_some(),
        "the old process did not exit"
    );
    // The new process serves alone now.
    for _ in 0..3 {
        assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    }
    assert!(next.running(), "{}", next.stderr_log());
    assert_eq!(h.registry.count(), answered + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_from_a_removed_ca_gets_no_identity() {
    let h = Harness::start().await;
    // Two requests on new connections: the client now holds a session to resume.
    for _ in 0..2 {
        assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    }
    // The TPP CA is removed from the bundle (replaced by another one).
    let other = Authority::new("another TPP CA").expect("CA");
    std::fs::write(h.files.path().join("client-ca.pem"), other.cert_pem()).expect("CA file");
    h.hangup("ok").await;
    // Resumption skips certificate verification in rustls; the gateway checks the chain again.
    let raw = Put::jwt(h.compliant_jwt()).bytes();
    if let Ok(r) = h.client.send(&raw).await {
        assert_rejection(&r, 403, "access_denied");
    }
    assert_eq!(h.registry.count(), 2, "a removed CA's client was forwarded");
    let (samples, text) = h
        .metrics_when(|s| {
            s.get(r#"dcrgate_tls_handshakes_total{result="untrusted_after_reload"}"#)
                .is_some()
        })
        .await;
    assert_eq!(
        samples.get(r#"dcrgate_tls_handshakes_total{result="untrusted_after_reload"}"#),
        Some(1.0),
        "the session was not resumed, so this test showed nothing:\n{text}"
    );
}

/// Lines of the file at `path` (none when it does not exist).
fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// Poll (bounded: 5 s) until the file at `path` has `n` lines.
async fn until_lines(path: &std::path::Path, n: usize) -> usize {
    for _ in 0..100 {
        if lines(path) == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lines(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_file_is_reopened_on_sighup_after_a_rotation() {
    let h = Harness::start_with(|cfg| {
        cfg.set("audit", "path", "audit.jsonl");
    })
    .await;
    let audit = h.files.path().join("audit.jsonl");
    let rotated = h.files.path().join("audit.jsonl.1");
    assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    assert_eq!(until_lines(&audit, 1).await, 1);
    // logrotate: move the file away, then SIGHUP (postrotate).
    std::fs::rename(&audit, &rotated).expect("rotate");
    h.hangup("ok").await;
    assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    assert_eq!(
        until_lines(&audit, 1).await,
        1,
        "the record went to the rotated file"
    );
    assert_eq!(lines(&rotated), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_names_every_setting_that_changes_only_on_restart() {
    let mut h = Harness::start().await;
    for (section, key, value) in [
        ("server", "grace_period_seconds", toml::Value::from(7)),
        (
            "server",
            "graceful_shutdown_timeout_seconds",
            toml::Value::from(9),
        ),
        ("server", "log_format", toml::Value::from("json")),
        ("server", "threads", toml::Value::from(3)),
        ("limits", "header_timeout_ms", toml::Value::from(4321)),
    ] {
        h.config.set(section, key, value);
    }
    h.reconfigure().await;
    let log = h.gateway.stderr_log();
    for setting in [
        "server.grace_period_seconds",
        "server.graceful_shutdown_timeout_seconds",
        "server.log_format",
        "server.threads",
        "limits.header_timeout_ms",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("changes only on restart") && l.contains(setting)),
            "{setting}:\n{log}"
        );
    }
    // The log format did not change: the running text format goes on.
    let last = log.lines().last().unwrap_or_default();
    assert!(!last.starts_with('{'), "{last}");
}

/// Each watched file (the configuration, the profile, the served certificate and key, the
/// client CA bundle, a CRL, the Redis URL file) reloads the gateway when it changes, within the watch interval
/// (2 s) and without a signal; a file replaced by a rename (a Kubernetes ConfigMap update)
/// counts as a change too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_each_watched_file_reloads_without_a_signal() {
    let mut h = Harness::start().await;
    let dir = h.files.path().to_owned();
    let crl = h.pki.client_ca.crl(&[], 86_400).expect("CRL");
    std::fs::write(dir.join("tpp-ca.crl.pem"), crl).expect("CRL file");
    let mut entry = toml::Table::new();
    entry.insert("issuer".into(), "tpp-ca".into());
    entry.insert("file".into(), "tpp-ca.crl.pem".into());
    // A Redis URL kept in a file (a mounted Secret); the replay and rate limit stores stay in
    // memory, so nothing connects to it.
    std::fs::write(
        dir.join("redis-url"),
        "redis://gw:secret@127.0.0.1:6379/0\n",
    )
    .expect("URL");
    h.config
        .set("revocation", "mode", "prefer")
        .set("revocation", "crl", toml::Value::Array(vec![entry.into()]))
        .set("redis", "url_file", "redis-url");
    h.reconfigure().await;

    let watched = [
        dir.join("dcrgate.toml"),
        dir.join("seed-update.toml"),
        h.files.pki.gateway_cert.clone(),
        h.files.pki.gateway_key.clone(),
        h.files.pki.client_ca.clone(),
        dir.join("tpp-ca.crl.pem"),
        dir.join("redis-url"),
    ];
    let mut n = h.reload_count("ok").await;
    for (i, path) in watched.iter().enumerate() {
        let contents = std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        if i % 2 == 0 {
            // Rewritten in place.
            std::fs::write(path, &contents).expect("rewrite");
        } else {
            // Replaced by a rename, as an atomic update does it.
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, &contents).expect("write");
            std::fs::rename(&tmp, path).expect("rename");
        }
        n += 1.0;
        let started = Instant::now();
        let series = "dcrgate_config_reloads_total{result=\"ok\"}";
        let (samples, text) = h.metrics_when(|s| s.get(series) == Some(n)).await;
        assert_eq!(
            samples.get(series),
            Some(n),
            "{path:?} changed, no reload after {:?}: {text}",
            started.elapsed()
        );
        assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200, "{path:?}");
    }
    assert_eq!(
        h.gateway.stderr_log().matches("SIGHUP: reloading").count(),
        1,
        "only the first reload was signalled"
    );
}
