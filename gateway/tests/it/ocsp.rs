//! OCSP for transport certificates (`revocation.order = "ocsp_then_crl"`), with a real responder
//! on loopback signing with the test CA's key: a good answer is asked for once and cached
//! across connections and concurrent requests (single-flight); a revoked one refuses the
//! request (403 `access_denied`) and then the handshake; unknown status and a responder down
//! fail closed under `require` and open under `prefer`; answers signed by anyone but the issuer
//! or its delegated OCSP-signing responder, stale answers and responders on hosts not allowed
//! are no answer; the CRL decides when OCSP gives none; each issuing CA has its own policy; and
//! a certificate revoked while its connection is open is refused on its next request once its
//! answer expires. Nothing refused reaches the registry.

use std::net::SocketAddr;
use std::time::Duration;

use dcrgate_certs::{Authority, IssuedCert, Locations, OcspSigner};
use dcrgate_ocsp::CertStatus;
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::http1::read_response;
use dcrgate_sandbox::ocsp_responder::{Behaviour, OcspResponder};
use tokio::io::AsyncWriteExt;

use crate::common::{assert_rejection, tpp_subject, Harness, Put};

/// `[revocation]` with OCSP first for issuers without a policy of their own, `mode` for them,
/// `extra` keys on top; reload and wait until it runs.
async fn configure(h: &mut Harness, mode: &str, extra: &[(&str, toml::Value)]) {
    h.config
        .set("revocation", "mode", mode)
        .set("revocation", "order", "ocsp_then_crl")
        .set(
            "revocation",
            "allowed_hosts",
            toml::Value::Array(vec!["localhost".into()]),
        )
        .set("revocation", "allow_private_addresses", true)
        .set("revocation", "retry_seconds", 1);
    for (k, v) in extra {
        h.config.set("revocation", k, v.clone());
    }
    h.reconfigure().await;
}

fn addr(h: &Harness) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], h.gateway.listen))
}

/// A transport certificate from `ca` naming `responder`, and a client presenting it (with
/// `chain` after it).
fn tpp(h: &Harness, ca: &Authority, responder: &str, chain: &[Vec<u8>]) -> (IssuedCert, TppClient) {
    let cert = ca
        .issue_client_at(
            &tpp_subject(),
            &Locations {
                ocsp: Some(responder),
                crl: None,
            },
        )
        .expect("certificate");
    let mut ders = vec![cert.cert_der.clone()];
    ders.extend_from_slice(chain);
    let client = TppClient::with_chain(&h.pki.server_ca.cert_pem(), &ders, &cert.key_der, addr(h))
        .expect("client");
    (cert, client)
}

/// The status of a compliant update over `client` (`None`: the handshake failed), and the
/// description of a refusal, which must be 403 `access_denied`.
async fn update(h: &Harness, client: &TppClient) -> Option<(u16, String)> {
    let r = client
        .send(&Put::jwt(h.compliant_jwt()).bytes())
        .await
        .ok()?;
    if r.status == 200 {
        return Some((200, String::new()));
    }
    let description = assert_rejection(&r, 403, "access_denied");
    Some((r.status, description))
}

async fn metric(h: &Harness, series: &str) -> f64 {
    let (samples, _) = h.metrics_when(|_| true).await;
    samples.get(series).unwrap_or(0.0)
}

fn exchanges(issuer: &str, result: &str) -> String {
    format!("dcrgate_ocsp_exchanges_total{{issuer=\"{issuer}\",result=\"{result}\"}}")
}

async fn responder(signer: OcspSigner, attach: bool) -> OcspResponder {
    OcspResponder::start(signer, attach)
        .await
        .expect("responder")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_answer_is_asked_for_once_and_serves_every_connection() {
    let mut h = Harness::start().await;
    let ocsp = responder(h.pki.client_ca.ocsp_signer(), false).await;
    configure(&mut h, "require", &[]).await;
    let (cert, client) = tpp(&h, &h.pki.client_ca, &ocsp.url(), &[]);
    ocsp.set(&cert.serial, CertStatus::Good);
    for i in 0..3 {
        assert_eq!(
            update(&h, &client).await.map(|r| r.0),
            Some(200),
            "update {i}"
        );
    }
    // Concurrent connections while a slow answer is in flight share one exchange.
    ocsp.behave(Behaviour::Slow(Duration::from_millis(400)));
    let (cert2, client2) = tpp(&h, &h.pki.client_ca, &ocsp.url(), &[]);
    ocsp.set(&cert2.serial, CertStatus::Good);
    let (a, b, c, d, e, f) = tokio::join!(
        update(&h, &client2),
        update(&h, &client2),
        update(&h, &client2),
        update(&h, &client2),
        update(&h, &client2),
        update(&h, &client2)
    );
    let results = [a, b, c, d, e, f];
    assert!(
        results.iter().all(|r| r.as_ref().map(|r| r.0) == Some(200)),
        "{results:?}"
    );
    assert_eq!(ocsp.hits(), 2, "one exchange per certificate");
    assert_eq!(metric(&h, &exchanges("default", "good")).await, 2.0);
    assert_eq!(h.registry.count(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_answer_refuses_the_request_then_the_handshake() {
    let mut h = Harness::start().await;
    let ocsp = responder(h.pki.client_ca.ocsp_signer(), false).await;
    configure(&mut h, "prefer", &[]).await;
    let (cert, client) = tpp(&h, &h.pki.client_ca, &ocsp.url(), &[]);
    ocsp.set(&cert.serial, CertStatus::Revoked { at: 1 });
    let (status, description) = update(&h, &client).await.expect("the handshake passes");
    assert_eq!(status, 403);
    assert!(description.contains("revoked"), "{description}");
    // Now cached: a fresh handshake fails (a resumed one, not verified again, is refused at
    // its request).
    assert!(update(&h, &client).await.is_none_or(|r| r.0 == 403));
    assert_eq!(ocsp.hits(), 1);
    assert_eq!(metric(&h, &exchanges("default", "revoked")).await, 1.0);
    assert!(
        metric(
            &h,
            r#"dcrgate_rejections_total{reason="certificate_revoked",route="register_update"}"#
        )
        .await
            >= 1.0
    );
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_unreachable_fail_closed_under_require_and_open_under_prefer() {
    let mut h = Harness::start().await;
    let ocsp = responder(h.pki.client_ca.ocsp_signer(), false).await;
    for mode in ["require", "prefer", "off"] {
        configure(&mut h, mode, &[]).await;
        for behaviour in [
            Behaviour::Answer { valid_for: 3600 },
            Behaviour::Down,
            Behaviour::TryLater,
            Behaviour::Stale,
        ] {
            ocsp.behave(behaviour);
            // A certificate the responder has no status for: unknown, or no usable answer.
            let (_, client) = tpp(&h, &h.pki.client_ca, &ocsp.url(), &[]);
            let before = ocsp.hits();
            let got = update(&h, &client).await.map(|r| r.0);
            let want = if mode == "require" { 403 } else { 200 };
            assert_eq!(got, Some(want), "{mode} {behaviour:?}");
            let asked = ocsp.hits() - before;
            assert_eq!(asked, usize::from(mode != "off"), "{mode} {behaviour:?}");
        }
    }
    assert_eq!(metric(&h, &exchanges("default", "unknown")).await, 2.0);
    assert_eq!(metric(&h, &exchanges("default", "failed")).await, 2.0);
    // tryLater and a stale answer: an answer that is not one.
    assert_eq!(metric(&h, &exchanges("default", "invalid")).await, 4.0);
    assert_eq!(
        h.registry.count(),
        8,
        "prefer and off let every one through"
    );
    assert!(metric(&h, r#"dcrgate_rejections_total{reason="certificate_revocation_unknown",route="register_update"}"#).await >= 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_issuer_or_its_delegated_responder_may_answer() {
    let mut h = Harness::start().await;
    configure(&mut h, "require", &[]).await;
    let ca = &h.pki.client_ca;
    let stranger = Authority::new(&"x".repeat(3)).expect("CA");
    let cases = [
        ("the issuer", ca.ocsp_signer(), false, 200),
        (
            "a delegated responder",
            ca.ocsp_responder(true).expect("signer"),
            true,
            200,
        ),
        (
            "a responder without OCSP signing",
            ca.ocsp_responder(false).expect("signer"),
            true,
            403,
        ),
        (
            "another CA's responder",
            stranger.ocsp_responder(true).expect("signer"),
            true,
            403,
        ),
        ("another CA", stranger.ocsp_signer(), false, 403),
    ];
    for (who, signer, attach, want) in cases {
        let ocsp = responder(signer, attach).await;
        let (cert, client) = tpp(&h, ca, &ocsp.url(), &[]);
        ocsp.set(&cert.serial, CertStatus::Good);
        assert_eq!(update(&h, &client).await.map(|r| r.0), Some(want), "{who}");
        assert_eq!(ocsp.hits(), 1, "{who}");
    }
    assert_eq!(metric(&h, &exchanges("default", "invalid")).await, 3.0);
    assert_eq!(h.registry.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_on_a_host_not_allowed_is_never_asked() {
    let mut h = Harness::start().await;
    let ocsp = responder(h.pki.client_ca.ocsp_signer(), false).await;
    let hosts = toml::Value::Array(vec!["ocsp.example".into()]);
    configure(&mut h, "require", &[("allowed_hosts", hosts)]).await;
    let (cert, client) = tpp(&h, &h.pki.client_ca, &ocsp.url(), &[]);
    ocsp.set(&cert.serial, CertStatus::Good);
    let (status, description) = update(&h, &client).await.expect("handshake");
    assert_eq!(status, 403);
    assert!(description.contains("revocation status"), "{description}");
    assert_eq!(ocsp.hits(), 0);
    assert_eq!(metric(&h, &exchanges("default", "refused")).await, 1.0);
    // Every result of a policy that asks OCSP is exported from the start, for alerts.
    let (samples, text) = h.metrics_when(|_| true).await;
    for result in ["good", "revoked", "unknown", "failed", "invalid"] {
        assert_eq!(
            samples.get(&exchanges("default", result)),
            Some(0.0),
            "{text}"
        );
    }
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crl_decides_when_ocsp_gives_no_answer() {
    let mut h = Harness::start().await;
    let ocsp = responder(h.pki.client_ca.ocsp_signer(), false).await;
    ocsp.behave(Behaviour::Down);
    let ca = &h.pki.client_ca;
    let (_, good_client) = tpp(&h, ca, &ocsp.url(), &[]);
    let (revoked, revoked_client) = tpp(&h, ca, &ocsp.url(), &[]);
    std::fs::write(
        h.files.path().join("tpp-ca.crl.pem"),
        ca.crl(&[&revoked.serial], 86_400).expect("CRL"),
    )
    .expect("CRL file");
    let mut crl = toml::Table::new();
    crl.insert("issuer".into(), "tpp-ca".into());
    crl.insert("file".into(), "tpp-ca.crl.pem".into());
    let crls = toml::Value::Array(vec![toml::Value::Table(crl)]);
    configure(&mut h, "require", &[("crl", crls)]).await;
    assert_eq!(
        update(&h, &good_client).await.map(|r| r.0),
        Some(200),
        "on no CRL list"
    );
    // Revoked by the CRL: refused at the handshake, without asking the responder.
    let before = ocsp.hits();
    assert!(update(&h, &revoked_client).await.is_none());
    assert_eq!(ocsp.hits(), before);
    assert_eq!(h.registry.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_issuing_ca_has_its_own_policy() {
    let mut h = Harness::start().await;
    let issuing = h
        .pki
        .client_ca
        .intermediate("OB issuing CA", true)
        .expect("CA");
    let ocsp = responder(issuing.ocsp_signer(), false).await;
    let root_ocsp = responder(h.pki.client_ca.ocsp_signer(), false).await;
    let mut policy = toml::Table::new();
    policy.insert("name".into(), "ob-issuing".into());
    policy.insert(
        "subject".into(),
        "O=dcrgate development PKI, CN=OB issuing CA".into(),
    );
    policy.insert("mode".into(), "require".into());
    let issuers = toml::Value::Array(vec![toml::Value::Table(policy)]);
    // Every other issuer: off.
    configure(&mut h, "off", &[("issuer", issuers)]).await;
    let (_, under_policy) = tpp(&h, &issuing, &ocsp.url(), &[issuing.cert_der()]);
    let (_, elsewhere) = tpp(&h, &h.pki.client_ca, &root_ocsp.url(), &[]);
    // Neither responder knows its certificate: unknown.
    assert_eq!(update(&h, &under_policy).await.map(|r| r.0), Some(403));
    assert_eq!(update(&h, &elsewhere).await.map(|r| r.0), Some(200));
    assert_eq!(ocsp.hits(), 1);
    assert_eq!(root_ocsp.hits(), 0, "an issuer under `off` was asked");
    assert_eq!(metric(&h, &exchanges("ob-issuing", "unknown")).await, 1.0);
    assert_eq!(h.registry.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_on_an_open_connection_is_refused_once_its_answer_expires() {
    let mut h = Harness::start().await;
    let ocsp = responder(h.pki.client_ca.ocsp_signer(), false).await;
    configure(&mut h, "require", &[]).await;
    // Answers valid for two seconds: cached that long.
    ocsp.behave(Behaviour::Answer { valid_for: 2 });
    let (cert, client) = tpp(&h, &h.pki.client_ca, &ocsp.url(), &[]);
    ocsp.set(&cert.serial, CertStatus::Good);
    let mut tls = client.connect().await.expect("handshake");
    tls.write_all(&Put::jwt(h.compliant_jwt()).bytes())
        .await
        .expect("write");
    let first = read_response(&mut tls).await.expect("response");
    assert_eq!(first.status, 200);
    ocsp.set(&cert.serial, CertStatus::Revoked { at: 1 });
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    tls.write_all(&Put::jwt(h.compliant_jwt()).bytes())
        .await
        .expect("write");
    let second = read_response(&mut tls).await.expect("response");
    let description = assert_rejection(&second, 403, "access_denied");
    assert!(description.contains("revoked"), "{description}");
    assert_eq!(ocsp.hits(), 2);
    assert_eq!(h.registry.count(), 1);
}

#[tokio::test]
async fn dcrgate_check_refuses_unusable_ocsp_and_issuer_settings() {
    let h = Harness::start().await;
    let dir = h.files.path();
    let issuer = |name: &str, subject: &str, mode: &str| {
        let mut t = toml::Table::new();
        t.insert("name".into(), name.into());
        t.insert("subject".into(), subject.into());
        t.insert("mode".into(), mode.into());
        toml::Value::Table(t)
    };
    let hosts = |h: &[&str]| toml::Value::Array(h.iter().map(|s| (*s).into()).collect());
    let ok_issuer = issuer("ob", "CN=OB issuing CA,O=OB", "require");
    type Case<'a> = (&'a str, Vec<(&'a str, toml::Value)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        // OCSP without a single responder host allowed.
        (
            "require",
            vec![("order", "ocsp_then_crl".into())],
            "revocation.allowed_hosts",
        ),
        (
            "require",
            vec![
                ("order", "ocsp_then_crl".into()),
                ("allowed_hosts", hosts(&["https://ocsp.example"])),
            ],
            "revocation.allowed_hosts",
        ),
        // require with CRLs only and none configured, for one issuer.
        (
            "off",
            vec![("issuer", toml::Value::Array(vec![ok_issuer.clone()]))],
            "revocation.mode",
        ),
        (
            "off",
            vec![(
                "issuer",
                toml::Value::Array(vec![issuer("default", "CN=x", "prefer")]),
            )],
            "revocation.issuer.name",
        ),
        (
            "off",
            vec![(
                "issuer",
                toml::Value::Array(vec![
                    issuer("a", "CN=x", "prefer"),
                    issuer("a", "CN=y", "prefer"),
                ]),
            )],
            "revocation.issuer.name",
        ),
        (
            "off",
            vec![(
                "issuer",
                toml::Value::Array(vec![issuer("a", "CN=x,,", "prefer")]),
            )],
            "revocation.issuer.subject",
        ),
        (
            "off",
            vec![(
                "issuer",
                toml::Value::Array(vec![
                    issuer("a", "CN=x", "prefer"),
                    issuer("b", "cn=X", "prefer"),
                ]),
            )],
            "revocation.issuer.subject",
        ),
        (
            "prefer",
            vec![("ocsp_timeout_seconds", 0.into())],
            "revocation.ocsp_timeout_seconds",
        ),
        (
            "prefer",
            vec![("ocsp_max_cache_seconds", 10.into())],
            "revocation.ocsp_max_cache_seconds",
        ),
    ];
    for (mode, extra, key) in cases {
        let mut cfg = h.config.clone();
        cfg.set("revocation", "mode", mode);
        for (k, v) in &extra {
            cfg.set("revocation", k, v.clone());
        }
        let path = cfg.write(dir, "check.toml").expect("config");
        let out = crate::common::dcrgate_check(&[], &path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key} {extra:?}: accepted");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    // The same, made usable.
    let mut cfg = h.config.clone();
    let mut usable = ok_issuer;
    if let toml::Value::Table(t) = &mut usable {
        t.insert("order".into(), "ocsp_then_crl".into());
    }
    cfg.set("revocation", "mode", "off")
        .set("revocation", "issuer", toml::Value::Array(vec![usable]))
        .set("revocation", "allowed_hosts", hosts(&["ocsp.example"]));
    let path = cfg.write(dir, "check.toml").expect("config");
    let out = crate::common::dcrgate_check(&[], &path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_responder_and_the_policy_and_does_not_ask_offline() {
    let mut h = Harness::start().await;
    let ocsp = responder(h.pki.client_ca.ocsp_signer(), false).await;
    configure(&mut h, "require", &[]).await;
    let cert = h
        .pki
        .client_ca
        .issue_client_at(
            &tpp_subject(),
            &Locations {
                ocsp: Some(&ocsp.url()),
                crl: Some("http://crl.example/tpp.crl"),
            },
        )
        .expect("certificate");
    let dir = h.files.path();
    let jwt = dir.join("explain.jwt");
    std::fs::write(&jwt, h.compliant_jwt()).expect("JWT");
    let pem = dir.join("located.pem");
    std::fs::write(&pem, &cert.cert_pem).expect("certificate");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .args(["explain", "--jwt"])
        .arg(&jwt)
        .arg("--cert")
        .arg(&pem)
        .arg("--config")
        .arg(dir.join("dcrgate.toml"))
        .args(["--client-id", crate::common::CLIENT_ID])
        .output()
        .expect("dcrgate explain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Certificate revocation: ocsp_not_asked"),
        "{text}"
    );
    assert!(
        text.contains("Certificate issuer's revocation policy: default (require, ocsp_then_crl)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Certificate OCSP responder: {}", ocsp.url())),
        "{text}"
    );
    assert!(
        text.contains("Certificate CRL distribution point: http://crl.example/tpp.crl"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert_eq!(ocsp.hits(), 0, "explain asked the responder");
}
