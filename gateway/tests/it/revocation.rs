//! Client certificate revocation from CRLs (`[revocation]`), with real CRLs signed by the test
//! CAs: a revoked transport certificate fails the handshake in `require` and `prefer` mode; an
//! unknown status or a stale CRL fails closed under `require` and open under `prefer`; a revoked
//! intermediate refuses every certificate under it (scope `chain`, not `leaf`); a CRL reload
//! reaches connections already open; and the checks and CRL times are in the metrics. Nothing
//! refused reaches the registry.

use std::net::SocketAddr;
use std::path::Path;

use dcrgate_certs::{Authority, IssuedCert};
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::http1::read_response;
use tokio::io::AsyncWriteExt;

use crate::common::{assert_rejection, tpp_subject, Harness, Put};

/// A day, in seconds: the nextUpdate of a current CRL.
const DAY: i64 = 86_400;

/// Write each `(issuer, crl_pem)` into the config folder, set `[revocation]` to `mode` and
/// `scope`, reload (SIGHUP) and wait until the new configuration runs.
async fn revoke(h: &mut Harness, mode: &str, scope: &str, crls: &[(&str, String)]) {
    let dir = h.files.path().to_owned();
    let mut entries = Vec::new();
    for (issuer, pem) in crls {
        let file = format!("{issuer}.crl.pem");
        std::fs::write(dir.join(&file), pem).expect("CRL file");
        let mut t = toml::Table::new();
        t.insert("issuer".into(), (*issuer).into());
        t.insert("file".into(), file.into());
        entries.push(toml::Value::Table(t));
    }
    h.config
        .set("revocation", "mode", mode)
        .set("revocation", "scope", scope)
        .set("revocation", "crl", toml::Value::Array(entries));
    h.reconfigure().await;
}

fn addr(h: &Harness) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], h.gateway.listen))
}

/// A client presenting `cert` (issued directly by the sandbox TPP CA).
fn client(h: &Harness, cert: &IssuedCert) -> TppClient {
    TppClient::new(&h.pki.server_ca.cert_pem(), Some(cert), addr(h)).expect("client")
}

/// Whether a compliant update over `client` is answered 200. A refused certificate fails the
/// handshake, or (a session resumed from before the reload, which rustls does not verify
/// again) gets no identity: 403 `access_denied`.
async fn accepted(h: &Harness, client: &TppClient) -> bool {
    match client.send(&Put::jwt(h.compliant_jwt()).bytes()).await {
        Ok(r) if r.status == 200 => true,
        Ok(r) => {
            let description = assert_rejection(&r, 403, "access_denied");
            assert!(
                description.contains("no verified client certificate"),
                "{description}"
            );
            false
        }
        Err(_) => false,
    }
}

async fn checks(h: &Harness, result: &str) -> f64 {
    let series = format!("dcrgate_revocation_checks_total{{result=\"{result}\"}}");
    let (samples, _) = h.metrics_when(|s| s.get(&series).is_some()).await;
    samples.get(&series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_transport_certificate_fails_the_handshake_in_require_and_prefer_mode() {
    let mut h = Harness::start().await;
    assert!(accepted(&h, &h.client).await, "before any CRL");
    let ca = &h.pki.client_ca;
    let crl = ca.crl(&[&h.tpp.transport.serial], DAY).expect("CRL");
    let sibling = ca
        .issue_client(&tpp_subject())
        .expect("another certificate");
    revoke(&mut h, "require", "chain", &[("tpp-ca", crl.clone())]).await;

    assert!(
        !accepted(&h, &h.client).await,
        "a revoked certificate was served"
    );
    assert!(
        accepted(&h, &client(&h, &sibling)).await,
        "an unrevoked one was refused"
    );
    assert_eq!(checks(&h, "revoked").await, 1.0);
    assert_eq!(checks(&h, "good").await, 1.0);
    // The CRL's times are exported under the configured issuer name.
    let (samples, text) = h.metrics_when(|_| true).await;
    let next = samples.get(r#"dcrgate_crl_next_update_timestamp_seconds{issuer="tpp-ca"}"#);
    let this = samples.get(r#"dcrgate_crl_this_update_timestamp_seconds{issuer="tpp-ca"}"#);
    let now = dcrgate_sandbox::tpp::now() as f64;
    assert!(next.is_some_and(|t| t > now + 80_000.0), "{text}");
    assert!(this.is_some_and(|t| t < now), "{text}");

    // prefer fails open on unknown status only: a revoked certificate stays refused.
    revoke(&mut h, "prefer", "chain", &[("tpp-ca", crl)]).await;
    assert!(
        !accepted(&h, &h.client).await,
        "prefer let a revoked certificate through"
    );

    // A CRL file that no longer parses is refused (no SIGHUP: the file watch sees it) and the
    // previous CRL stays in force.
    std::fs::write(h.files.path().join("tpp-ca.crl.pem"), "not a CRL").expect("CRL file");
    h.wait_reloads("invalid", 1.0).await;
    assert!(
        !accepted(&h, &client(&h, &h.tpp.transport)).await,
        "the old CRL was dropped"
    );
    assert!(accepted(&h, &client(&h, &sibling)).await);
    assert_eq!(h.registry.count(), 3, "{:?}", h.registry.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_status_and_a_stale_crl_fail_closed_under_require_and_open_under_prefer() {
    let mut h = Harness::start().await;
    // A CRL of another CA only: the TPP certificate's issuer has none (unknown status).
    let other = Authority::new("another CA").expect("CA");
    let unrelated = vec![("other-ca", other.crl(&[], DAY).expect("CRL"))];
    revoke(&mut h, "require", "chain", &unrelated).await;
    assert!(
        !accepted(&h, &h.client).await,
        "require accepted an unknown status"
    );
    assert_eq!(checks(&h, "unknown").await, 1.0);
    revoke(&mut h, "prefer", "chain", &unrelated).await;
    assert!(
        accepted(&h, &h.client).await,
        "prefer refused an unknown status"
    );
    assert_eq!(checks(&h, "unknown").await, 2.0);

    // The issuer's CRL is past its nextUpdate.
    let stale = vec![("tpp-ca", h.pki.client_ca.crl(&[], -3600).expect("CRL"))];
    revoke(&mut h, "require", "chain", &stale).await;
    assert!(
        !accepted(&h, &h.client).await,
        "require accepted a stale CRL"
    );
    assert_eq!(checks(&h, "unavailable").await, 1.0);
    revoke(&mut h, "prefer", "chain", &stale).await;
    assert!(accepted(&h, &h.client).await, "prefer refused a stale CRL");
    assert_eq!(checks(&h, "unavailable").await, 2.0);
    assert_eq!(h.registry.count(), 2, "{:?}", h.registry.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_intermediate_refuses_every_certificate_under_it() {
    let mut h = Harness::start().await;
    let issuing = h
        .pki
        .client_ca
        .intermediate("TPP issuing CA", true)
        .expect("CA");
    let leaf = issuing.issue_client(&tpp_subject()).expect("leaf");
    let chained = TppClient::with_chain(
        &h.pki.server_ca.cert_pem(),
        &[leaf.cert_der.clone(), issuing.cert_der()],
        &leaf.key_der,
        addr(&h),
    )
    .expect("client");
    assert!(
        accepted(&h, &chained).await,
        "the chain is trusted before any CRL"
    );
    let crls = vec![
        (
            "tpp-root",
            h.pki.client_ca.crl(&[issuing.serial()], DAY).expect("CRL"),
        ),
        ("tpp-issuing", issuing.crl(&[], DAY).expect("CRL")),
    ];
    revoke(&mut h, "require", "chain", &crls).await;
    assert!(
        !accepted(&h, &chained).await,
        "a certificate under a revoked CA was served"
    );
    // Scope leaf checks the leaf alone (against its issuing CA's CRL, which lists nothing).
    revoke(&mut h, "require", "leaf", &crls).await;
    assert!(
        accepted(&h, &chained).await,
        "scope leaf checked the intermediate"
    );
    assert_eq!(h.registry.count(), 2, "{:?}", h.registry.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_reload_reaches_connections_already_open() {
    let mut h = Harness::start().await;
    let ca_crl = |revoked: &[&[u8]]| h.pki.client_ca.crl(revoked, DAY).expect("CRL");
    let nothing = vec![("tpp-ca", ca_crl(&[]))];
    let revoked = vec![("tpp-ca", ca_crl(&[&h.tpp.transport.serial]))];
    revoke(&mut h, "require", "chain", &nothing).await;
    let mut tls = h.client.connect().await.expect("handshake");
    let raw = Put::jwt(h.compliant_jwt()).bytes();
    tls.write_all(&raw).await.expect("write");
    let first = read_response(&mut tls).await.expect("first answer");
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );

    // The certificate is revoked while the connection stays open: its next request is refused.
    revoke(&mut h, "require", "chain", &revoked).await;
    let raw = Put::jwt(h.compliant_jwt()).bytes();
    tls.write_all(&raw).await.expect("write");
    let second = read_response(&mut tls).await.expect("second answer");
    let description = assert_rejection(&second, 403, "access_denied");
    assert!(description.contains("no longer trusted"), "{description}");
    assert_eq!(second.header("connection"), Some("close"));
    assert_eq!(h.registry.count(), 1, "{:?}", h.registry.requests());
    let series = r#"dcrgate_rejections_total{reason="certificate_no_longer_trusted",route="register_update"}"#;
    let (samples, text) = h.metrics_when(|s| s.get(series).is_some()).await;
    assert_eq!(samples.get(series), Some(1.0), "{text}");
}

#[tokio::test]
async fn dcrgate_check_refuses_unusable_revocation_settings() {
    let h = Harness::start().await;
    let dir = h.files.path();
    std::fs::write(dir.join("not-a-crl.pem"), h.pki.client_ca.cert_pem()).expect("file");
    let crl = h.pki.client_ca.crl(&[], DAY).expect("CRL");
    std::fs::write(dir.join("ok.crl.pem"), &crl).expect("file");
    let entry = |issuer: &str, file: &str| {
        let mut t = toml::Table::new();
        t.insert("issuer".into(), issuer.into());
        t.insert("file".into(), file.into());
        toml::Value::Table(t)
    };
    let cases: Vec<(&str, Vec<toml::Value>, &str)> = vec![
        ("require", vec![], "revocation.mode"),
        (
            "require",
            vec![entry("x", "missing.crl")],
            "revocation.crl.file",
        ),
        (
            "require",
            vec![entry("x", "not-a-crl.pem")],
            "revocation.crl.file",
        ),
        (
            "prefer",
            vec![entry("bad name", "ok.crl.pem")],
            "revocation.crl.issuer",
        ),
        (
            "prefer",
            vec![entry("a", "ok.crl.pem"), entry("a", "ok.crl.pem")],
            "revocation.crl.issuer",
        ),
    ];
    for (mode, crls, key) in cases {
        let mut cfg = h.config.clone();
        cfg.set("revocation", "mode", mode)
            .set("revocation", "crl", toml::Value::Array(crls));
        let path = cfg.write(dir, "check.toml").expect("config");
        let out = check(&path);
        assert!(!out.status.success(), "{mode} {key}: accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    let mut cfg = h.config.clone();
    cfg.set("revocation", "mode", "require").set(
        "revocation",
        "crl",
        toml::Value::Array(vec![entry("tpp-ca", "ok.crl.pem")]),
    );
    let path = cfg.write(dir, "check.toml").expect("config");
    let out = check(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(config: &Path) -> std::process::Output {
    crate::common::dcrgate_check(&[], config)
}

#[tokio::test]
async fn explain_reports_the_certificate_revocation_status_from_the_configured_crls() {
    let mut h = Harness::start().await;
    let crl = h
        .pki
        .client_ca
        .crl(&[&h.tpp.transport.serial], DAY)
        .expect("CRL");
    let sibling = h
        .pki
        .client_ca
        .issue_client(&tpp_subject())
        .expect("certificate");
    revoke(&mut h, "require", "chain", &[("tpp-ca", crl)]).await;
    let dir = h.files.path();
    let jwt = dir.join("explain.jwt");
    std::fs::write(&jwt, h.compliant_jwt()).expect("JWT");
    let explain = |cert: &IssuedCert, name: &str| {
        let path = dir.join(name);
        std::fs::write(&path, &cert.cert_pem).expect("certificate");
        std::process::Command::new(env!("CARGO_BIN_EXE_dcrgate"))
            .args(["explain", "--jwt"])
            .arg(&jwt)
            .arg("--cert")
            .arg(&path)
            .arg("--config")
            .arg(dir.join("dcrgate.toml"))
            .args(["--client-id", crate::common::CLIENT_ID])
            .output()
            .expect("dcrgate explain")
    };
    let out = explain(&h.tpp.transport, "revoked.pem");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Certificate revocation: revoked: REVOKED"),
        "{text}"
    );
    assert!(
        text.contains("Verdict: REJECT — the TLS handshake fails (revocation)"),
        "{text}"
    );
    let out = explain(&sibling, "sibling.pem");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Certificate revocation: good"), "{text}");
    assert_eq!(out.status.code(), Some(3), "{text}");
}

/// An open connection is verified again once after a reload, not on every request after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_connection_is_verified_again_once_per_reload() {
    let mut h = Harness::start().await;
    let nothing = vec![("tpp-ca", h.pki.client_ca.crl(&[], DAY).expect("CRL"))];
    revoke(&mut h, "require", "chain", &nothing).await;
    let mut tls = h.client.connect().await.expect("handshake");
    let put = |h: &Harness| Put::jwt(h.compliant_jwt()).bytes();
    tls.write_all(&put(&h)).await.expect("write");
    assert_eq!(read_response(&mut tls).await.expect("answer").status, 200);
    let before = checks(&h, "good").await;
    // A reload that revokes nothing: the connection's chain is verified once more, then trusted.
    revoke(&mut h, "require", "chain", &nothing).await;
    for _ in 0..3 {
        tls.write_all(&put(&h)).await.expect("write");
        assert_eq!(read_response(&mut tls).await.expect("answer").status, 200);
    }
    assert_eq!(checks(&h, "good").await, before + 1.0);
}

/// A plain HTTP server on loopback answering every request with `body` as a CRL.
async fn plain_crl_server(body: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut head = [0u8; 2048];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut head).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (port, task)
}

/// Point `[[revocation.crl]]` of `tpp-ca` at `url` (its file not written yet), mode
/// `require`, a margin that keeps every CRL due and a one-second retry; waits for the reload.
async fn fetch_from(h: &mut Harness, url: &str, file: &str) {
    let ok = r#"dcrgate_config_reloads_total{result="ok"}"#;
    let (samples, _) = h.metrics_when(|_| true).await;
    let before = samples.get(ok).unwrap_or(0.0);
    let mut t = toml::Table::new();
    t.insert("issuer".into(), "tpp-ca".into());
    t.insert("file".into(), file.into());
    t.insert("url".into(), url.into());
    h.config
        .set("revocation", "mode", "require")
        .set(
            "revocation",
            "crl",
            toml::Value::Array(vec![toml::Value::Table(t)]),
        )
        .set("revocation", "refresh_margin_seconds", 10 * DAY)
        .set("revocation", "retry_seconds", 1)
        .set("revocation", "allow_private_addresses", true);
    h.config
        .write(h.files.path(), "dcrgate.toml")
        .expect("config");
    h.gateway.signal("HUP");
    let (samples, text) = h
        .metrics_when(|s| s.get(ok).is_some_and(|n| n > before))
        .await;
    assert!(samples.get(ok).is_some_and(|n| n > before), "{text}");
}

/// Wait (bounded) until a compliant update over `client` is accepted (`true`) or refused.
async fn becomes(h: &Harness, client: &TppClient, want: bool) -> bool {
    for _ in 0..60 {
        if accepted(h, client).await == want {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    false
}

async fn fetches(h: &Harness, result: &str, at_least: f64) -> f64 {
    let series = format!("dcrgate_crl_fetches_total{{issuer=\"tpp-ca\",result=\"{result}\"}}");
    let (samples, _) = h
        .metrics_when(|s| s.get(&series).is_some_and(|n| n >= at_least))
        .await;
    samples.get(&series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_from_its_distribution_point_is_fetched_checked_and_refreshed() {
    use dcrgate_sandbox::keyhost::Serve;
    let mut h = Harness::start().await;
    let empty = empty_crl(&h);
    h.key_host.set(
        "/crl/tpp-ca.crl",
        Serve::Typed(empty, "application/pkix-crl"),
    );
    let url = h.key_host.url("/crl/tpp-ca.crl");
    fetch_from(&mut h, &url, "tpp-ca.crl").await;
    // Fetched, written, reloaded by the file watch: the certificate's status is good.
    assert!(becomes(&h, &h.client, true).await, "never accepted");
    assert!(h.files.path().join("tpp-ca.crl").exists());
    assert!(fetches(&h, "ok", 1.0).await >= 1.0);

    // The distribution point now lists the certificate: refused after the next refresh.
    let revoked = h
        .pki
        .client_ca
        .crl(&[&h.tpp.transport.serial], DAY)
        .expect("CRL");
    h.key_host.set(
        "/crl/tpp-ca.crl",
        Serve::Typed(revoked.clone(), "application/pkix-crl"),
    );
    assert!(
        becomes(&h, &h.client, false).await,
        "the refreshed CRL was not used"
    );
    let written = std::fs::read(h.files.path().join("tpp-ca.crl")).expect("the file");

    // What the point serves next is refused, and the CRL in force stays: another CA's CRL,
    // one under the same CA name signed by another key, garbage, and an error status.
    let other = Authority::new("another CA").expect("CA");
    let forger = Authority::new("dcrgate sandbox TPP CA").expect("CA");
    for bad in [
        other.crl(&[], DAY).expect("CRL"),
        forger.crl(&[], DAY).expect("CRL"),
        "not a CRL".to_owned(),
    ] {
        let before = fetches(&h, "refused", 0.0).await;
        h.key_host
            .set("/crl/tpp-ca.crl", Serve::Typed(bad, "application/pkix-crl"));
        assert!(fetches(&h, "refused", before + 1.0).await > before);
    }
    h.key_host.set("/crl/tpp-ca.crl", Serve::Status(500));
    assert!(fetches(&h, "failed", 1.0).await >= 1.0);
    assert_eq!(
        std::fs::read(h.files.path().join("tpp-ca.crl")).expect("the file"),
        written,
        "a refused CRL replaced the one in force"
    );
    assert!(
        !accepted(&h, &h.client).await,
        "the revoked certificate came back"
    );

    // Plain http (a CRL is signed): the same CRL, fetched into a new file.
    let (port, server) = plain_crl_server(empty_crl(&h)).await;
    fetch_from(
        &mut h,
        &format!("http://127.0.0.1:{port}/tpp-ca.crl"),
        "tpp-ca-http.crl",
    )
    .await;
    assert!(
        becomes(&h, &h.client, true).await,
        "the http CRL was not used"
    );
    server.abort();
}

fn empty_crl(h: &Harness) -> String {
    h.pki.client_ca.crl(&[], DAY).expect("CRL")
}
