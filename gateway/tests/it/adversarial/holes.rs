//! The holes hostile testing found, each tested as a class: shadow mode never forwards an
//! unverified request; identity headers reach the registry by no name; hop-by-hop nominations,
//! framing tricks and expectations are answered by the gateway; URL-valued and OB-constrained
//! metadata, inline keys and DN claims with invisible characters are refused; what one key set
//! can cost (CPU, cache memory, fetches) is bounded; client chains through a CA certificate
//! that may not sign certificates are refused; and logs at `trace` hold no secret and no
//! forged line. Every refusal shows the registry saw nothing, and a compliant request still
//! gets 200 afterwards.

use super::*;

use common::tpp_subject;
use dcrgate_certs::Authority;
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::tpp::Signer;
use dcrgate_sandbox::world::{JWKS_PATH, SEED_PROFILE};

/// The seed profile with `[shadow]`, `[software_statement]` and `[replay]` replaced.
fn seed_profile_with(shadow: &str, presence: &str, require_jti: bool) -> String {
    let p = SEED_PROFILE
        .replace("all = false\nrules = []", shadow)
        .replace(
            "presence = \"optional\"",
            &format!("presence = \"{presence}\""),
        )
        .replace(
            "require_jti = false",
            &format!("require_jti = {require_jti}"),
        );
    assert!(
        p.contains(shadow) && p.contains(presence),
        "the seed profile changed shape"
    );
    p
}

/// A gateway on `profile`.
async fn gateway_with_profile(profile: String) -> Harness {
    Harness::start_setup(move |cfg, s| {
        s.write("edited.toml", &profile);
        cfg.set("policy", "profile", "edited.toml");
    })
    .await
}

/// `PUT` of `jwt` with these extra header lines (raw, so any name can be sent).
fn put_with(jwt: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    Put::jwt(jwt).headers(extra).bytes()
}

// ---------------------------------------------------------------------------------------------
// 1. Shadow mode never forwards what was not verified
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_shadow_never_forwards_an_unverified_or_replayable_request() {
    let mut h =
        gateway_with_profile(seed_profile_with("all = true\nrules = []", "refused", true)).await;
    let stranger = Signer::generate(KID).expect("key");
    let evil_host = h.claims_with(|m| {
        m.insert("jwks_uri".into(), json!("https://evil.example/jwks.json"));
    });
    let no_key_set = h.claims_with(|m| {
        m.remove("jwks_uri");
    });
    let cases = vec![
        Refusal::new(
            "signed with a key the TPP never published",
            stranger.sign(&h.claims()),
            400,
            "invalid_client_metadata",
        )
        .mentioning("signature"),
        Refusal::new(
            "a stranger's signature and a key set off the allowlist",
            stranger.sign(&evil_host),
            400,
            "invalid_client_metadata",
        )
        .mentioning("allowlist"),
        Refusal::new(
            "the TPP's signature and a key set off the allowlist",
            h.tpp.sign(&evil_host),
            400,
            "invalid_client_metadata",
        )
        .mentioning("allowlist"),
        Refusal::new(
            "no key set URL at all",
            stranger.sign(&no_key_set),
            400,
            "invalid_client_metadata",
        )
        .mentioning("jwks_uri"),
        Refusal::new(
            "a software statement the profile refuses (so never verifies)",
            h.tpp.sign(&h.claims_with(|m| {
                m.insert(
                    "software_statement".into(),
                    json!("eyJhbGciOiJub25lIn0.e30."),
                );
            })),
            400,
            "invalid_software_statement",
        ),
        Refusal::new(
            "inline keys beside jwks_uri",
            h.tpp.sign(&h.claims_with(|m| {
                m.insert("jwks".into(), json!({"keys": []}));
            })),
            400,
            "invalid_client_metadata",
        )
        .mentioning("jwks"),
        Refusal::new(
            "no exp (nothing to bound the replay window)",
            h.tpp.sign(&h.claims_with(|m| {
                m.remove("exp");
            })),
            400,
            "invalid_client_metadata",
        ),
        Refusal::new(
            "no jti under replay protection",
            h.tpp.sign(&h.claims_with(|m| {
                m.remove("jti");
            })),
            400,
            "invalid_client_metadata",
        )
        .mentioning("jti"),
        Refusal::new(
            "aud of another server",
            h.tpp.sign(&h.claims_with(|m| {
                m.insert("aud".into(), json!("https://other-bank.example/"));
            })),
            400,
            "invalid_client_metadata",
        ),
    ];
    let mut failures = Failures::default();
    assert_refusals(&h, &cases, &mut failures).await;

    // A forged request with a jti does not burn it: the genuine one with the same jti passes,
    // and a replay of the genuine one is refused, in shadow as anywhere.
    let jti = dcrgate_sandbox::tpp::uuid_v4();
    let same_jti = h.claims_with(|m| {
        m.insert("jti".into(), json!(jti));
    });
    let forged = h.put_jwt(&stranger.sign(&same_jti)).await;
    failures.check("forged jti", || {
        assert_rejection(&forged, 400, "invalid_client_metadata");
    });
    let genuine = h.tpp.sign(&same_jti);
    let first = h.put_jwt(&genuine).await;
    let replay = h.put_jwt(&genuine).await;
    failures.check("genuine then replayed", || {
        assert_eq!(
            first.status,
            200,
            "{}",
            String::from_utf8_lossy(&first.body)
        );
        assert_rejection(&replay, 400, "invalid_client_metadata");
        assert_eq!(h.registry.count(), 1);
    });
    // What shadow is for still works: a shadowable violation, correctly signed, is forwarded.
    let shadowed = h.tpp.sign(&h.claims_with(|m| {
        m.insert("redirect_uris".into(), json!(["http://tpp.example/cb"]));
    }));
    let r = h.put_jwt(&shadowed).await;
    failures.check("shadowable violation", || {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(h.registry.count(), 2);
    });
    check_metrics(
        &h,
        cases.len(),
        &[
            ("signature_invalid", 2),
            ("jwks_uri", 3),
            ("jti_replayed", 1),
        ],
        &["evil.example"],
        &mut failures,
    )
    .await;
    failures.assert_none();
    assert_unharmed(&mut h).await;
}

#[test]
fn a_profile_that_shadows_a_binding_rule_does_not_load() {
    for rule in [
        "jwks_uri",
        "exp",
        "jti",
        "software_statement",
        "aud",
        "jwks",
    ] {
        let profile = seed_profile_with(
            &format!("all = false\nrules = [\"{rule}\"]"),
            "optional",
            false,
        );
        let err = dcrgate_policies::Profile::from_toml_str(&profile).expect_err(rule);
        assert!(err.to_string().contains("never in shadow"), "{rule}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Identity headers reach the registry by no name
// ---------------------------------------------------------------------------------------------

/// Every identity-bearing spelling a client might send, and some it might invent, all stripped.
/// (RFC 9440 `Client-Cert` and `Client-Cert-Chain` are not stripped but refused from anyone but
/// the trusted front proxy: see `front_proxy::a_direct_tpp_always_gets_the_certificate_header_refused`.)
const SPOOFS: [&str; 20] = [
    "X-SSL-Cert",
    "X-SSL-Client-Cert",
    "X-SSL-Client-S-DN",
    "X-ARR-ClientCert",
    "X-Amzn-Mtls-Clientcert",
    "X-Amzn-Mtls-Clientcert-Leaf",
    "X-Forwarded-Tls-Client-Cert",
    "X-Forwarded-Tls-Client-Cert-Info",
    "X-Forwarded-Client-Cert",
    "X-Client-Subject",
    "X-Client-DN",
    "X-Client-Verify",
    "SSL-Client-Cert",
    "X_DCRGate_Client_DN",
    "X_Client_DN",
    "X-DCRGate-Client-DN",
    "X-DCRGate-Client-Cert-SHA256",
    "X-DCRGate-Anything",
    "Forwarded",
    "X-Forwarded-For",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_never_reach_the_registry_by_any_name() {
    let mut h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let spoof_value = "CN=attacker,O=Evil Ltd,C=GB";
    let mut extra: Vec<(&str, &str)> = SPOOFS.iter().map(|n| (*n, spoof_value)).collect();
    extra.push(("X-Request-Id", "spoofed-request-id"));
    extra.push((
        "X-Fapi-Interaction-Id",
        "93bac548-d2de-4546-b106-880a5018460d",
    ));
    extra.push(("X_Fapi_Interaction_Id", "spoofed"));
    extra.push(("Accept", "application/json"));
    extra.push(("User-Agent", "tpp-client/1.0"));
    extra.push(("Cookie", "session=stolen"));
    let r = h.send(&put_with(&jwt, &extra)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = h.registry.requests();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    let allowed = [
        "host",
        "content-length",
        "authorization",
        "content-type",
        "accept",
        "user-agent",
        "x-fapi-interaction-id",
        "x-dcrgate-client-dn",
        "x-dcrgate-client-cert-sha256",
        "x-request-id",
    ];
    for (name, value) in &got.headers {
        assert!(
            allowed.contains(&name.as_str()),
            "the registry got a header off the allowlist: {name}: {value}"
        );
        assert!(
            !value.contains("attacker") && !value.contains("spoofed"),
            "{name}: {value}"
        );
    }
    assert_eq!(
        got.header("x-fapi-interaction-id"),
        Some("93bac548-d2de-4546-b106-880a5018460d")
    );
    assert_eq!(got.header("user-agent"), Some("tpp-client/1.0"));
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        got.header("x-dcrgate-client-dn"),
        Some(
            "CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB"
        )
    );
    assert_eq!(
        got.header("x-dcrgate-client-cert-sha256"),
        Some(common::cert_thumbprint(&h.tpp.transport.cert_der).as_str())
    );
    let id = got
        .header("x-request-id")
        .expect("the gateway's request id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        got.headers
            .iter()
            .filter(|(n, _)| n == "x-dcrgate-client-dn")
            .count(),
        1
    );
    assert_eq!(got.body.as_ref(), jwt.as_bytes());
    assert_unharmed(&mut h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarded_header_allowlist_is_configurable() {
    let mut h = Harness::start_with(|cfg| {
        cfg.set(
            "upstream",
            "forward_headers",
            toml::Value::Array(
                ["authorization", "content-type", "x-bank-*"]
                    .map(|s| toml::Value::String(s.into()))
                    .to_vec(),
            ),
        );
    })
    .await;
    let jwt = h.compliant_jwt();
    let r = h
        .send(&put_with(
            &jwt,
            &[
                ("X-Bank-Trace", "t-1"),
                ("X-Bank_Trace", "underscore"),
                ("User-Agent", "tpp/1"),
                (
                    "X-Fapi-Interaction-Id",
                    "93bac548-d2de-4546-b106-880a5018460d",
                ),
            ],
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let got = &h.registry.requests()[0];
    assert_eq!(got.header("x-bank-trace"), Some("t-1"));
    assert_eq!(got.header("x-bank_trace"), None);
    assert_eq!(got.header("user-agent"), None);
    // Not on this allowlist, yet sent: the gateway sets the interaction id itself (the
    // client's, being a UUID).
    assert_eq!(
        got.header("x-fapi-interaction-id"),
        Some("93bac548-d2de-4546-b106-880a5018460d")
    );
    assert!(got.header("authorization").is_some());
    assert_unharmed(&mut h).await;

    // An allowlist that would let identity or framing through is refused by `check`.
    for bad in ["x-dcrgate-client-dn", "x_bank", "transfer-encoding", "x-*"] {
        let mut cfg = h.config.clone();
        cfg.set(
            "upstream",
            "forward_headers",
            toml::Value::Array(vec![toml::Value::String(bad.into())]),
        );
        let path = cfg
            .write(h.files.path(), "bad-allowlist.toml")
            .expect("config");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcrgate"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .expect("dcrgate check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("upstream.forward_headers"),
            "{bad}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Hop-by-hop nominations, framing and expectations
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_may_not_nominate_what_the_gateway_checked() {
    let mut h = gateway_with_profile(seed_profile_with(
        "all = false\nrules = []",
        "optional",
        true,
    ))
    .await;
    // One signed request object (one jti) for every case: if any refusal burnt it, the last
    // send of it would be refused as a replay.
    let jwt = h.compliant_jwt();
    let nominations = [
        "Authorization",
        "authorization",
        "close, Authorization",
        "Content-Type",
        "Content-Length",
        "Host",
        "Transfer-Encoding",
        "Expect",
        "X-Request-Id",
        "X-DCRGate-Client-DN",
        "X-Fapi-Interaction-Id",
        "User-Agent",
        "Accept",
        "keep-alive, te, content-type",
    ];
    let mut failures = Failures::default();
    for nomination in nominations {
        let ex = exchange(
            &h,
            &put_with(&jwt, &[("Connection", nomination)]),
            Duration::from_millis(500),
        )
        .await;
        failures.check(nomination, || {
            let r = ex.responses.first().expect("an answer");
            let description = assert_rejection(r, 400, "invalid_request");
            assert!(description.contains("Connection"), "{description}");
            assert!(ex.closed, "the connection stays open");
            h.assert_not_forwarded();
        });
    }
    // Hop-by-hop tokens that name nothing checked are fine.
    let r = h
        .send(&put_with(
            &jwt,
            &[("Connection", "keep-alive, x-unrelated")],
        ))
        .await;
    failures.check("harmless nomination", || {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let got = &h.registry.requests()[0];
        assert!(got.header("authorization").is_some() && got.header("content-type").is_some());
    });
    check_metrics(
        &h,
        nominations.len(),
        &[("connection_nominates_header", nominations.len())],
        &[],
        &mut failures,
    )
    .await;
    failures.assert_none();
    assert_unharmed(&mut h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_and_expectations_are_settled_by_the_gateway() {
    let mut h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let body = jwt.as_bytes();
    let len = body.len();
    let target = format!("/register/{CLIENT_ID}");
    let mut failures = Failures::default();

    // `N, N` is one value: forwarded with a single Content-Length of the verified body.
    let ex = exchange(
        &h,
        &raw(
            &target,
            &headers_with(&[format!("Content-Length: {len}, {len}")]),
            body,
        ),
        Duration::from_millis(500),
    )
    .await;
    failures.check("Content-Length: N, N", || {
        assert_answer(
            "first",
            ex.responses.first().expect("answer"),
            Answer::Forwarded,
        );
        let got = h.registry.requests();
        let got = got.last().expect("forwarded");
        let lengths: Vec<&String> = got
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(lengths, [&len.to_string()]);
        assert_eq!(got.body.as_ref(), body);
    });
    let forwarded = h.registry.count();

    // Refused, never forwarded: lengths that disagree or are not decimal, unknown codings.
    let chunked_body = chunked(body, 100);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "Content-Length: N, M",
            raw(
                &target,
                &headers_with(&[format!("Content-Length: {len}, {}", len + 1)]),
                body,
            ),
            400,
        ),
        (
            "Transfer-Encoding: gzip, chunked",
            raw(
                &target,
                &headers_with(&["Transfer-Encoding: gzip, chunked".into()]),
                &chunked_body,
            ),
            501,
        ),
        (
            "Transfer-Encoding: chunked, chunked",
            raw(
                &target,
                &headers_with(&["Transfer-Encoding: chunked, chunked".into()]),
                &chunked_body,
            ),
            501,
        ),
        (
            "Transfer-Encoding: gzip then chunked",
            raw(
                &target,
                &headers_with(&[
                    "Transfer-Encoding: gzip".into(),
                    "Transfer-Encoding: chunked".into(),
                ]),
                &chunked_body,
            ),
            501,
        ),
        (
            "Expect: something else",
            raw(
                &target,
                &headers_with(&[format!("Content-Length: {len}"), "Expect: 200-ok".into()]),
                body,
            ),
            417,
        ),
    ];
    for (name, bytes, status) in &cases {
        let ex = exchange(&h, bytes, Duration::from_millis(500)).await;
        failures.check(name, || {
            let r = ex.responses.first().expect("an answer");
            assert_eq!(r.status, *status, "{}", String::from_utf8_lossy(&r.body));
            // The gateway's JSON where its phases ran; a pingora 400 only for what it refuses
            // before them (both are refusals, never forwarded).
            if r.json().is_some() || *status != 400 {
                assert_rejection(r, *status, "invalid_request");
            }
            assert_eq!(
                h.registry.count(),
                forwarded,
                "forwarded: {:?}",
                h.registry.requests()
            );
        });
    }

    // Expect: 100-continue: the gateway says 100 before the body is sent, then decides.
    let head = format!(
        "PUT {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jwt\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
    );
    let mut tls = h.client.connect().await.expect("handshake");
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.flush().await.expect("flush");
    let mut interim = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), tls.read(&mut interim))
        .await
        .expect("100 Continue within 3 s (before the body is sent)")
        .expect("read");
    let interim = String::from_utf8_lossy(&interim[..n]).into_owned();
    failures.check("100 Continue", || {
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim:?}");
    });
    tls.write_all(body).await.expect("body");
    let r = tokio::time::timeout(IO_TIMEOUT, read_response(&mut tls))
        .await
        .expect("final answer")
        .expect("response");
    failures.check("after 100 Continue", || {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let got = h.registry.requests();
        let got = got.last().expect("forwarded");
        assert_eq!(got.header("expect"), None, "Expect was forwarded");
        assert_eq!(got.body.as_ref(), body);
    });
    failures.assert_none();
    assert_unharmed(&mut h).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Metadata the registry would believe
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_metadata_is_refused_and_never_forwarded() {
    let mut h = Harness::start().await;
    let pad = "a".repeat(200);
    let redirect = |uri: String| {
        h.tpp.sign(&h.claims_with(|m| {
            m.insert(
                "redirect_uris".into(),
                json!(["https://tpp.example/callback", uri]),
            );
        }))
    };
    let member = |name: &str, value: Value| {
        h.tpp.sign(&h.claims_with(|m| {
            m.insert(name.into(), value);
        }))
    };
    let dn_with = |ch: char| {
        let dn = format!("CN=0015800001HQQrZAAX{ch},organizationIdentifier=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB");
        member("tls_client_auth_dn", json!(dn))
    };
    let meta = |name: &str, value: Value| {
        Refusal::new(
            format!("{name} = {value}"),
            member(name, value),
            400,
            "invalid_client_metadata",
        )
    };
    let cases = vec![
        Refusal::new(
            "userinfo at loopback after 200 bytes",
            redirect(format!("https://{pad}@127.0.0.1/cb")),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "userinfo at localhost after 200 bytes",
            redirect(format!("https://{pad}@localhost/cb")),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "a fragment after 200 bytes",
            redirect(format!("https://tpp.example/{pad}#fragment")),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "IPv4-mapped loopback",
            redirect("https://[::ffff:127.0.0.1]/cb".into()),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "IPv4-compatible loopback",
            redirect("https://[::127.0.0.1]/cb".into()),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "a private literal",
            redirect("https://10.0.0.7/cb".into()),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "CR LF",
            redirect("https://tpp.example/cb\r\nX-Evil: 1".into()),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "TAB",
            redirect("https://tpp.example/c\tb".into()),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "backslash",
            redirect("https://tpp.example\\@evil.example/cb".into()),
            400,
            "invalid_redirect_uri",
        ),
        Refusal::new(
            "over-long",
            redirect(format!("https://tpp.example/{}", "a".repeat(2100))),
            400,
            "invalid_redirect_uri",
        ),
        meta("jwks", json!({"keys": []})).mentioning("jwks"),
        meta("logo_uri", json!("http://tpp.example/logo.png")),
        meta("logo_uri#fr", json!("https://user@tpp.example/logo.png")),
        meta("client_uri", json!("https://169.254.169.254/latest")),
        meta("policy_uri", json!("https://[::ffff:10.0.0.1]/p")),
        meta("tos_uri", json!("https://localhost/tos")),
        meta("initiate_login_uri", json!("https://tpp.example/#x")),
        meta("request_uris", json!(["https://tpp.example/r"])),
        meta("sector_identifier_uri", json!("https://tpp.example/s")),
        meta("tls_client_auth_san_dns", json!("tpp.example")).mentioning("tls_client_auth_san_dns"),
        meta("tls_client_auth_san_uri", json!("https://tpp.example")),
        meta("response_types", json!(["id_token token"])).mentioning("response_types"),
        meta("response_types", json!(["code", "token"])),
        meta("grant_types", json!(["implicit"])),
        meta("grant_types", json!(["password"])),
        meta("application_type", json!("desktop")),
        meta("token_endpoint_auth_signing_alg", json!("RS256")),
        meta("token_endpoint_auth_signing_alg", json!("none")),
        Refusal::new(
            "DN with NUL",
            dn_with('\u{0}'),
            400,
            "invalid_client_metadata",
        )
        .mentioning("U+0000"),
        Refusal::new(
            "DN with a newline",
            dn_with('\n'),
            400,
            "invalid_client_metadata",
        )
        .mentioning("U+000A"),
        Refusal::new(
            "DN with a C1 control",
            dn_with('\u{85}'),
            400,
            "invalid_client_metadata",
        )
        .mentioning("U+0085"),
        Refusal::new(
            "DN with a bidi override",
            dn_with('\u{202E}'),
            400,
            "invalid_client_metadata",
        )
        .mentioning("U+202E"),
        Refusal::new(
            "DN with a zero-width space",
            dn_with('\u{200B}'),
            400,
            "invalid_client_metadata",
        )
        .mentioning("U+200B"),
        Refusal::new(
            "DN with a BOM",
            dn_with('\u{FEFF}'),
            400,
            "invalid_client_metadata",
        )
        .mentioning("at character 21"),
    ];
    let mut failures = Failures::default();
    let refused = assert_refusals(&h, &cases, &mut failures).await;
    failures.check("every case was a gateway refusal", || {
        assert_eq!(refused, cases.len());
    });
    // What OB DCR 3.3 allows still passes.
    let ok = h.tpp.sign(&h.claims_with(|m| {
        m.insert("response_types".into(), json!(["code id_token"]));
        m.insert(
            "grant_types".into(),
            json!(["authorization_code", "client_credentials", "refresh_token"]),
        );
        m.insert("application_type".into(), json!("web"));
        m.insert("logo_uri".into(), json!("https://tpp.example/logo.png"));
        m.insert("token_endpoint_auth_signing_alg".into(), json!("PS256"));
    }));
    let r = h.put_jwt(&ok).await;
    failures.check("OB 3.3 metadata", || {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    });
    check_metrics(
        &h,
        cases.len(),
        &[
            ("redirect_uris", 10),
            ("metadata_uri", 8),
            ("jwks", 1),
            ("tls_client_auth_san", 2),
            ("response_types", 2),
            ("grant_types", 2),
            ("application_type", 1),
            ("token_endpoint_auth_signing_alg", 2),
            ("tls_client_auth_dn", 6),
        ],
        &["169.254.169.254", "evil.example"],
        &mut failures,
    )
    .await;
    failures.assert_none();
    assert_unharmed(&mut h).await;
}

// ---------------------------------------------------------------------------------------------
// 5. What one key set can cost
// ---------------------------------------------------------------------------------------------

/// An RSA JWK with a made-up odd modulus of `bytes` bytes and exponent `e`.
fn fake_rsa_jwk(kid: &str, bytes: usize, e: &[u8]) -> String {
    let mut n = vec![0xA7u8; bytes];
    n[0] |= 0x80;
    n[bytes - 1] |= 1;
    format!(
        r#"{{"kty":"RSA","use":"sig","kid":"{kid}","n":"{}","e":"{}"}}"#,
        b64(n),
        b64(e)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_key_set_can_cost_is_bounded() {
    let mut h = Harness::start().await;
    let kid = "hostile-kid";
    let header = json!({"alg": "PS256", "kid": kid, "typ": "JWT"});
    let with_set = |path: &str, doc: String| {
        h.key_host.set(path, Serve::Json(doc));
        h.claims_with(|m| {
            m.insert("jwks_uri".into(), json!(h.key_host.url(path)));
        })
    };
    // A hundred 4096-bit keys under one kid, and a forged JWS with a 1024-byte signature.
    let hundred = format!(
        r#"{{"keys":[{}]}}"#,
        vec![fake_rsa_jwk(kid, 512, &[1, 0, 1]); 100].join(",")
    );
    let claims = with_set("/hundred.json", hundred);
    let forged_long = unsigned(&header, &claims, &[0x5A; 1024]);
    let forged_exact = unsigned(&header, &claims, &[0x5A; 512]);
    let big = with_set(
        "/rsa8192.json",
        format!(r#"{{"keys":[{}]}}"#, fake_rsa_jwk(kid, 1024, &[1, 0, 1])),
    );
    let e3 = with_set(
        "/e3.json",
        format!(r#"{{"keys":[{}]}}"#, fake_rsa_jwk(kid, 256, &[3])),
    );
    let cases = vec![
        Refusal::new(
            "1024-byte signature, 100 keys under the kid",
            forged_long,
            400,
            "invalid_client_metadata",
        )
        .mentioning("1024 bytes"),
        Refusal::new(
            "a well-sized forgery, 100 keys under the kid",
            forged_exact,
            400,
            "invalid_client_metadata",
        )
        .mentioning("does not verify"),
        Refusal::new(
            "an 8192-bit key (above the default bound)",
            unsigned(&header, &big, &[0x5A; 1024]),
            400,
            "invalid_client_metadata",
        )
        .mentioning("no usable key"),
        Refusal::new(
            "a key with e = 3",
            unsigned(&header, &e3, &[0x5A; 256]),
            400,
            "invalid_client_metadata",
        )
        .mentioning("no usable key"),
    ];
    let mut failures = Failures::default();
    // No timing assertion here: what these cost is measured in benches/.
    assert_refusals(&h, &cases, &mut failures).await;
    // One fetch per new URL, even for an unknown kid (the fresh fetch is the refetch).
    failures.check("fetches", || {
        assert_eq!(h.key_host.hits("/hundred.json"), 1);
        assert_eq!(h.key_host.hits("/rsa8192.json"), 1);
        assert_eq!(h.key_host.hits("/e3.json"), 1);
    });
    let fresh = with_set("/fresh.json", h.tpp.jwks());
    let unknown = h.put_jwt(&h.tpp.sign_with_header(&header, &fresh)).await;
    failures.check("unknown kid on a new URL", || {
        assert_rejection(&unknown, 400, "invalid_client_metadata");
        assert_eq!(
            h.key_host.hits("/fresh.json"),
            1,
            "fetched twice for one unknown kid"
        );
    });
    // A 3072-bit key is verified (off the event loop) and accepted.
    let key3072 = dcrgate_certs::RsaSigningKey::generate("tpp-3072", 3072).expect("RSA-3072");
    let signer = Signer::new(key3072).expect("signer");
    let claims = with_set("/rsa3072.json", signer.jwks());
    let r = h.put_jwt(&signer.sign(&claims)).await;
    failures.check("RSA-3072", || {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    });
    failures.assert_none();
    assert_unharmed(&mut h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_fill_the_key_set_cache() {
    let mut h = Harness::start_with(|cfg| {
        cfg.set("key_sets", "max_urls_per_host", 2);
    })
    .await;
    // The compliant URL and ?v=1 fill the host's share; ?v=2 and ?v=3 are fetched per request.
    assert_unharmed(&mut h).await;
    let url = |v: u32| format!("{}?v={v}", h.jwks_uri);
    let mut failures = Failures::default();
    for v in [1, 2, 3] {
        for _ in 0..2 {
            let jwt = h.tpp.sign(&h.claims_with(|m| {
                m.insert("jwks_uri".into(), json!(url(v)));
            }));
            let r = h.put_jwt(&jwt).await;
            failures.check(&format!("v={v}"), || {
                assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            });
        }
    }
    failures.check("per-host bound", || {
        assert_eq!(h.key_host.hits(JWKS_PATH), 1, "the first URL stays cached");
        assert_eq!(h.key_host.hits(&format!("{JWKS_PATH}?v=1")), 1, "cached");
        assert_eq!(
            h.key_host.hits(&format!("{JWKS_PATH}?v=2")),
            2,
            "not cached: host full"
        );
        assert_eq!(
            h.key_host.hits(&format!("{JWKS_PATH}?v=3")),
            2,
            "not cached: host full"
        );
    });
    failures.assert_none();
    assert_unharmed(&mut h).await;
}

// ---------------------------------------------------------------------------------------------
// 6. Client chains through a CA that may not sign certificates
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_through_a_ca_without_key_cert_sign_is_refused_at_the_handshake() {
    let root = Authority::new("chain test root").expect("root");
    let good = root.intermediate("issuing CA", true).expect("intermediate");
    let bad = root
        .intermediate("not a signing CA", false)
        .expect("intermediate");
    let root_pem = root.cert_pem();
    let mut h = Harness::start_setup(|cfg, s| {
        let sandbox = std::fs::read_to_string(s.dir.join("client-ca.pem")).expect("client CA");
        s.write("client-ca-and-root.pem", &format!("{sandbox}{root_pem}"));
        cfg.set("listener", "client_ca", "client-ca-and-root.pem");
    })
    .await;
    let client_under = |ca: &Authority| {
        let leaf = ca.issue_client(&tpp_subject()).expect("leaf");
        TppClient::with_chain(
            &h.pki.server_ca.cert_pem(),
            &[leaf.cert_der.clone(), ca.cert_der()],
            &leaf.key_der,
            h.gateway_addr(),
        )
        .expect("client")
    };
    let jwt = h.compliant_jwt();
    let raw_put = put_with(&jwt, &[]);
    let ok = client_under(&good).send(&raw_put).await.expect("answer");
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let refused = client_under(&bad).send(&raw_put).await;
    assert!(
        !refused.as_ref().is_ok_and(|r| r.status == 200),
        "a chain through a CA without keyCertSign was served: {:?}",
        refused.map(|r| r.status)
    );
    assert_eq!(h.registry.count(), 1, "{:?}", h.registry.requests());
    // A client CA bundle holding such a CA does not pass `check`.
    let bundle = format!("{root_pem}{}", bad.cert_pem());
    std::fs::write(h.files.path().join("bad-bundle.pem"), bundle).expect("bundle");
    let mut cfg = h.config.clone();
    cfg.set("listener", "client_ca", "bad-bundle.pem");
    let path = cfg
        .write(h.files.path(), "bad-bundle.toml")
        .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("dcrgate check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("keyCertSign"), "{stderr}");
    assert_unharmed(&mut h).await;
}

// ---------------------------------------------------------------------------------------------
// 7. Logs: no secret at any level, no forged line
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_secret_and_no_forged_line() {
    for format in ["text", "json"] {
        let mut h = Harness::start_env(&[("RUST_LOG", "trace")], |cfg, _| {
            cfg.set("server", "log_format", format);
        })
        .await;
        let jwt = h.compliant_jwt();
        let ok = h.put_jwt(&jwt).await;
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
        let forging = h.tpp.sign(&h.claims_with(|m| {
            m.insert(
                "scope".into(),
                json!([
                    "openid",
                    "admin\nERROR forged line dcrgate::proxy: accepted",
                    "x\r\u{1b}[2J\u{202E}"
                ]),
            );
        }));
        let r = h.put_jwt(&forging).await;
        assert_rejection(&r, 400, "invalid_client_metadata");
        let refused = h
            .put(
                Put::jwt(b"{}")
                    .bearer("secret-token-abc.def")
                    .content_type("application/json"),
            )
            .await;
        assert_eq!(refused.status, 415);
        assert_unharmed(&mut h).await;
        // Let the last request's log lines land.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = h.gateway.stderr_log();
        assert!(
            log.lines().count() > 3,
            "{format}: too little logged to prove anything:\n{log}"
        );
        let signature = jwt.rsplit('.').next().expect("signature");
        let payload = jwt.split('.').nth(1).expect("payload");
        let key_n = b64(&h.tpp.signer.key.n);
        for secret in [
            TOKEN,
            "secret-token-abc.def",
            jwt.as_str(),
            signature,
            payload,
            key_n.as_str(),
        ] {
            assert!(
                !log.contains(secret),
                "{format}: the log carries a secret ({}…)",
                &secret[..12.min(secret.len())]
            );
        }
        assert!(
            !log.to_ascii_lowercase().contains("authorization: bearer"),
            "{format}"
        );
        for line in log.lines() {
            assert!(
                !line.starts_with("ERROR forged"),
                "{format}: a forged line: {line}"
            );
            assert!(
                !line.contains('\u{1b}') && !line.contains('\u{202E}') && !line.contains('\r'),
                "{format}: raw control in {line:?}"
            );
        }
        assert!(
            log.contains("\\nERROR forged line"),
            "{format}: the claim is logged escaped:\n{log}"
        );
        if format == "json" {
            for line in log.lines().filter(|l| l.starts_with('{')) {
                serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            }
        }
    }
}
