//! `trusted_front_proxy` mode end to end: a TLS terminator in front authenticates with its own
//! client certificate and passes the TPP's on in RFC 9440 `Client-Cert`; the gateway verifies it
//! as if presented and asserts it upstream. The header from anyone else, or anything the
//! front proxy passes on that would not pass a handshake, is refused and never forwarded.

use crate::common;

use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{assert_rejection, tpp_subject, Harness, Put};
use dcrgate_certs::{Authority, IssuedCert, SubjectSpec};
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::http1::RawResponse;

const FRONT_PROXY: &str = "front-proxy.bank.internal";

fn front_subject() -> SubjectSpec {
    SubjectSpec::common_name(FRONT_PROXY)
}

fn sf(der: &[u8]) -> String {
    format!(":{}:", STANDARD.encode(der))
}

/// A gateway that trusts the front proxy's certificate (`extra` adds settings).
async fn gateway(
    extra: impl Fn(&mut dcrgate_sandbox::world::SandboxConfig),
) -> (Harness, TppClient) {
    let h = Harness::start_with(|cfg| {
        cfg.set(
            "front_proxy",
            "subjects",
            vec![front_subject().to_rfc4514()],
        );
        extra(cfg);
    })
    .await;
    let cert = h
        .pki
        .transport_cert(&front_subject())
        .expect("front proxy certificate");
    let front = client(&h, &cert);
    (h, front)
}

fn client(h: &Harness, cert: &IssuedCert) -> TppClient {
    TppClient::new(
        &h.pki.server_ca.cert_pem(),
        Some(cert),
        SocketAddr::from(([127, 0, 0, 1], h.gateway.listen)),
    )
    .expect("client")
}

async fn send(client: &TppClient, put: Put) -> RawResponse {
    client.send(&put.bytes()).await.expect("an answer")
}

fn header<'a>(req: &'a dcrgate_sandbox::registry::RecordedRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_proxy_passes_the_tpps_certificate_on_and_it_is_what_the_registry_sees() {
    for send_client_cert in [false, true] {
        let (h, front) = gateway(|cfg| {
            cfg.set(
                "front_proxy",
                "source_addresses",
                vec!["127.0.0.1", "10.0.0.0/8"],
            );
            cfg.set("upstream", "send_client_cert", send_client_cert);
        })
        .await;
        let tpp = sf(&h.tpp.transport.cert_der);
        let r = send(
            &front,
            Put::jwt(h.compliant_jwt()).headers(&[("Client-Cert", &tpp)]),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let seen = h.registry.requests();
        assert_eq!(seen.len(), 1);
        // The TPP's identity, never the front proxy's.
        assert_eq!(
            header(&seen[0], "x-dcrgate-client-dn"),
            Some(tpp_subject().to_rfc4514().as_str())
        );
        assert_eq!(
            header(&seen[0], "x-dcrgate-client-cert-sha256"),
            Some(common::cert_thumbprint(&h.tpp.transport.cert_der).as_str())
        );
        // RFC 9440 towards the registry only when asked for, and then the verified certificate.
        let forwarded = header(&seen[0], "client-cert");
        if send_client_cert {
            assert_eq!(forwarded, Some(tpp.as_str()));
        } else {
            assert_eq!(forwarded, None);
        }
        // The DN claim is checked against the certificate passed on, not the front proxy's.
        let mut claims = h.claims();
        claims["tls_client_auth_dn"] = serde_json::json!(front_subject().to_rfc4514());
        let jwt = h.tpp.sign(&claims);
        let r = send(&front, Put::jwt(jwt).headers(&[("Client-Cert", &tpp)])).await;
        assert_rejection(&r, 403, "access_denied");
        assert_eq!(h.registry.count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_tpp_always_gets_the_certificate_header_refused() {
    // With the mode on, and off; with every rule in shadow too (identity is never in shadow).
    for setting in ["front proxy", "off", "shadow"] {
        let h = Harness::start_setup(|cfg, s| {
            if setting == "front proxy" {
                cfg.set(
                    "front_proxy",
                    "subjects",
                    vec![front_subject().to_rfc4514()],
                );
            }
            if setting == "shadow" {
                let profile =
                    dcrgate_sandbox::world::SEED_PROFILE.replace("all = false", "all = true");
                s.write("shadow.toml", &profile);
                cfg.set("policy", "profile", "shadow.toml");
            }
        })
        .await;
        let other = h
            .pki
            .transport_cert(&SubjectSpec::common_name("someone-else"))
            .expect("certificate");
        let spoof = sf(&other.cert_der);
        for headers in [
            vec![("Client-Cert", spoof.as_str())],
            vec![("client-cert", spoof.as_str())],
            vec![("CLIENT-CERT-CHAIN", spoof.as_str())],
            vec![("Client-Cert", "garbage")],
        ] {
            let r = h.put(Put::jwt(h.compliant_jwt()).headers(&headers)).await;
            let d = assert_rejection(&r, 400, "invalid_request");
            assert!(
                d.contains("accepted only from the configured front proxy"),
                "{setting}: {d}"
            );
        }
        h.assert_not_forwarded();
        // Without the header the TPP is served as before.
        assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200, "{setting}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_front_proxy_passes_on_is_verified_as_if_it_were_presented() {
    let (h, front) = gateway(|_| {}).await;
    let jwt = || Put::jwt(h.compliant_jwt());
    // Nothing passed on: the front proxy's own certificate never stands for a TPP.
    let r = send(&front, jwt()).await;
    let d = assert_rejection(&r, 403, "access_denied");
    assert!(d.contains("no Client-Cert header"), "{d}");
    // Malformed headers.
    let tpp = sf(&h.tpp.transport.cert_der);
    let huge = format!(":{}:", "A".repeat(20_000));
    for (headers, what) in [
        (
            vec![("Client-Cert", STANDARD.encode(&h.tpp.transport.cert_der))],
            "not a byte sequence",
        ),
        (
            vec![("Client-Cert", ":not base64!:".to_owned())],
            "not a byte sequence",
        ),
        (
            vec![("Client-Cert", tpp.clone()), ("Client-Cert", tpp.clone())],
            "more than one",
        ),
        (vec![("Client-Cert", huge)], "longer than 16 KiB"),
        (
            vec![
                ("Client-Cert", tpp.clone()),
                ("Client-Cert-Chain", "a, b".to_owned()),
            ],
            "not a list of byte sequences",
        ),
        (vec![("Client-Cert", ":AAAA:".to_owned())], "BadEncoding"),
    ] {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = send(&front, jwt().headers(&pairs)).await;
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert!(
            r.status == 400 || r.status == 403,
            "{what}: {} {body}",
            r.status
        );
        assert!(body.contains(what), "{what}: {body}");
    }
    // A certificate from a CA the bundle does not hold, and an expired one from the trusted CA.
    let rogue = Authority::new("dcrgate sandbox TPP CA")
        .expect("CA")
        .issue_client(&tpp_subject())
        .expect("rogue certificate");
    let expired = h
        .pki
        .client_ca
        .issue_client_valid(&tpp_subject(), time::Duration::days(-1))
        .expect("expired certificate");
    for (cert, why) in [(&rogue, "bad_certificate"), (&expired, "expired")] {
        let value = sf(&cert.cert_der);
        let r = send(&front, jwt().headers(&[("Client-Cert", &value)])).await;
        let d = assert_rejection(&r, 403, "access_denied");
        assert!(
            d.contains("passed on is refused") && d.contains(why),
            "{why}: {d}"
        );
    }
    h.assert_not_forwarded();
    let (samples, text) = h
        .metrics_when(|s| {
            s.get(r#"dcrgate_rejections_total{reason="client_cert_not_trusted",route="other"}"#)
                == Some(3.0)
        })
        .await;
    assert_eq!(
        samples.get(r#"dcrgate_rejections_total{reason="client_cert_not_trusted",route="other"}"#),
        Some(3.0),
        "{text}"
    );
    // And the genuine certificate still passes.
    let r = send(&front, jwt().headers(&[("Client-Cert", &tpp)])).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_proxy_outside_its_source_addresses_is_refused() {
    let (h, front) = gateway(|cfg| {
        cfg.set(
            "front_proxy",
            "source_addresses",
            vec!["10.0.0.0/8", "2001:db8::/32"],
        );
    })
    .await;
    let tpp = sf(&h.tpp.transport.cert_der);
    let r = send(
        &front,
        Put::jwt(h.compliant_jwt()).headers(&[("Client-Cert", &tpp)]),
    )
    .await;
    let d = assert_rejection(&r, 403, "access_denied");
    assert!(d.contains("front_proxy.source_addresses"), "{d}");
    h.assert_not_forwarded();
}

/// A sandbox configuration (nothing needs to listen for `check`) written into `files`.
fn check_config(files: &common::Files) -> dcrgate_sandbox::world::SandboxConfig {
    dcrgate_sandbox::world::SandboxConfig::new(
        18443,
        19090,
        "127.0.0.1:18080".parse().expect("addr"),
        &files.pki,
        "seed-update.toml",
    )
}

#[test]
fn check_refuses_unusable_front_proxy_settings() {
    let files = common::Files::write(&dcrgate_sandbox::pki::SandboxPki::generate().expect("PKI"));
    for (key, value, name) in [
        (
            "subjects",
            toml::Value::from(vec!["not a dn"]),
            "front_proxy.subjects",
        ),
        (
            "thumbprints",
            toml::Value::from(vec!["short"]),
            "front_proxy.thumbprints",
        ),
    ] {
        let mut cfg = check_config(&files);
        cfg.set("front_proxy", key, value);
        let path = cfg.write(files.path(), "bad.toml").expect("config");
        let out = common::dcrgate_check(&[], &path);
        assert_eq!(out.status.code(), Some(2), "{key}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(name),
            "{out:?}"
        );
    }
    let mut cfg = check_config(&files);
    cfg.set("front_proxy", "subjects", vec!["CN=front"]);
    cfg.set("front_proxy", "source_addresses", vec!["10.0.0.0/33"]);
    let path = cfg.write(files.path(), "bad.toml").expect("config");
    let out = common::dcrgate_check(&[], &path);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("front_proxy.source_addresses"),
        "{out:?}"
    );
    let mut cfg = check_config(&files);
    cfg.set("upstream", "forward_headers", vec!["client-cert"]);
    let path = cfg.write(files.path(), "bad.toml").expect("config");
    let out = common::dcrgate_check(&[], &path);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("upstream.forward_headers"),
        "{out:?}"
    );
}
