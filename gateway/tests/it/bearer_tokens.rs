//! Bearer access tokens on `PUT /register/{ClientId}` in each mode: `jwt` (verified against the
//! authorization server's key set), `introspection` (RFC 7662 over mTLS, cached) and `upstream`
//! (forwarded for the registry to decide). A refused token is a 401 `invalid_token` with a
//! `WWW-Authenticate` challenge, never forwarded, and never written to the logs.

use crate::common;

use std::time::Duration;

use common::{assert_rejection, cert_thumbprint, Harness, Put, CLIENT_ID};
use dcrgate_certs::SubjectSpec;
use dcrgate_sandbox::auth_server::{AuthServer, AuthServerOptions};
use dcrgate_sandbox::http1::RawResponse;
use dcrgate_sandbox::pki::{write_private, SandboxPki};
use dcrgate_sandbox::tpp::{now, Signer};
use serde_json::{json, Value};

const AS_ISSUER: &str = "https://as.sandbox.example";
const AS_AUDIENCE: &str = "https://bank.example/register";
const AS_JWKS: &str = "/as/jwks";

async fn put_with_token(h: &Harness, token: &str) -> RawResponse {
    let body = h.compliant_jwt();
    h.put(Put::jwt(&body).bearer(token)).await
}

#[track_caller]
fn assert_invalid_token(r: &RawResponse) -> String {
    let d = assert_rejection(r, 401, "invalid_token");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    d
}

/// A gateway in `jwt` mode whose authorization server key set the key host serves.
async fn jwt_gateway(profile_binding: bool, client_claim: &'static str) -> (Harness, Signer) {
    let authority = Signer::generate("as-key-1").expect("AS key");
    let jwks = authority.jwks();
    let h = Harness::start_setup(|cfg, s| {
        s.key_host
            .set(AS_JWKS, dcrgate_sandbox::keyhost::Serve::Json(jwks.clone()));
        cfg.set("routes.update", "bearer", "jwt");
        cfg.set("bearer", "client_claim", client_claim);
        cfg.set("bearer.jwt", "issuer", AS_ISSUER);
        cfg.set("bearer.jwt", "audiences", vec![AS_AUDIENCE]);
        cfg.set("bearer.jwt", "key_set_url", s.key_host.url(AS_JWKS));
        if profile_binding {
            let profile = dcrgate_sandbox::world::SEED_PROFILE.replace(
                "require_certificate_binding = false",
                "require_certificate_binding = true",
            );
            s.write("seed-bound.toml", &profile);
            cfg.set("policy", "profile", "seed-bound.toml");
        }
    })
    .await;
    (h, authority)
}

fn token_claims(h: &Harness) -> Value {
    json!({
        "iss": AS_ISSUER,
        "aud": AS_AUDIENCE,
        "iat": now(),
        "exp": now() + 300,
        "client_id": CLIENT_ID,
        "scope": "registration",
        "cnf": {"x5t#S256": cert_thumbprint(&h.tpp.transport.cert_der)}
    })
}

fn edit(mut v: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(v.as_object_mut().expect("object"));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_accepts_a_bound_token_and_refuses_every_other_one_alike() {
    let (h, authority) = jwt_gateway(false, "client_id").await;
    let good = authority.sign(&token_claims(&h));
    let r = put_with_token(&h, &good).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.registry.count(), 1);

    let stranger = Signer::generate("as-key-1").expect("key");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            authority.sign(&edit(token_claims(&h), |m| {
                m.insert("exp".into(), json!(now() - 600));
            })),
            "expired",
        ),
        (
            "wrong issuer",
            authority.sign(&edit(token_claims(&h), |m| {
                m.insert("iss".into(), json!("https://evil.example"));
            })),
            "issued",
        ),
        (
            "wrong audience",
            authority.sign(&edit(token_claims(&h), |m| {
                m.insert("aud".into(), json!("https://elsewhere.example"));
            })),
            "intended",
        ),
        (
            "another client's valid token",
            authority.sign(&edit(token_claims(&h), |m| {
                m.insert("client_id".into(), json!("another-client"));
            })),
            "client",
        ),
        (
            "bound to another certificate",
            authority.sign(&edit(token_claims(&h), |m| {
                m.insert("cnf".into(), json!({"x5t#S256": "AAAA"}));
            })),
            "certificate",
        ),
        (
            "signed by another key with the same kid",
            stranger.sign(&token_claims(&h)),
            "signature",
        ),
        (
            "not yet valid",
            authority.sign(&edit(token_claims(&h), |m| {
                m.insert("nbf".into(), json!(now() + 600));
            })),
            "not valid yet",
        ),
        ("opaque", "opaque-token-123".to_owned(), "malformed"),
    ];
    for (name, token, needle) in &cases {
        let r = put_with_token(&h, token).await;
        let d = assert_invalid_token(&r);
        assert!(d.contains(needle), "{name}: {d}");
    }
    assert_eq!(h.registry.count(), 1, "a refused token was forwarded");
    let (samples, _) = h
        .metrics_when(|s| {
            s.get("dcrgate_bearer_checks_total{mode=\"jwt\",result=\"token_client\"}") == Some(1.0)
        })
        .await;
    assert_eq!(
        samples.get("dcrgate_bearer_checks_total{mode=\"jwt\",result=\"ok\"}"),
        Some(1.0)
    );
    let log = h.gateway.stderr_log();
    for (_, token, _) in &cases {
        assert!(!log.contains(token.as_str()), "a token reached the log");
    }
    assert!(!log.contains(&good), "a token reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_can_require_certificate_binding_and_read_the_client_from_azp() {
    let (h, authority) = jwt_gateway(true, "azp").await;
    let unbound = authority.sign(&edit(token_claims(&h), |m| {
        m.remove("cnf");
        m.remove("client_id");
        m.insert("azp".into(), json!(CLIENT_ID));
    }));
    let d = assert_invalid_token(&put_with_token(&h, &unbound).await);
    assert!(d.contains("bound"), "{d}");
    h.assert_not_forwarded();
    let bound_azp = authority.sign(&edit(token_claims(&h), |m| {
        m.insert("client_id".into(), json!("someone-else"));
        m.insert("azp".into(), json!(CLIENT_ID));
    }));
    let r = put_with_token(&h, &bound_azp).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// A gateway in `introspection` mode, authenticating to the authorization server with its own
/// client certificate; the authorization server has its own PKI.
async fn introspection_gateway() -> (Harness, AuthServer) {
    let as_pki = SandboxPki::generate().expect("AS PKI");
    let gateway_client = as_pki
        .transport_cert(&SubjectSpec::common_name("dcrgate introspection client"))
        .expect("client cert");
    let server = AuthServer::start(
        &as_pki.key_host.cert_pem,
        &as_pki.key_host.key_pem,
        AuthServerOptions {
            client_ca_pem: Some(as_pki.client_ca.cert_pem()),
            basic: None,
        },
    )
    .await
    .expect("AS");
    let endpoint = server.url("/introspect");
    let h = Harness::start_setup(|cfg, s| {
        s.write("as-ca.pem", &as_pki.server_ca.cert_pem());
        s.write("introspect-client.pem", &gateway_client.cert_pem);
        write_private(
            &s.dir.join("introspect-client.key"),
            &gateway_client.key_pem,
        )
        .expect("key");
        cfg.set("routes.update", "bearer", "introspection");
        cfg.set("bearer.introspection", "endpoint", endpoint.clone());
        cfg.set("bearer.introspection", "ca_file", "as-ca.pem");
        cfg.set(
            "bearer.introspection",
            "certificate",
            "introspect-client.pem",
        );
        cfg.set(
            "bearer.introspection",
            "private_key",
            "introspect-client.key",
        );
        cfg.set("bearer.introspection", "timeout_ms", 1000);
    })
    .await;
    (h, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_mode_checks_activity_client_and_binding_and_caches() {
    let (h, server) = introspection_gateway().await;
    let thumb = cert_thumbprint(&h.tpp.transport.cert_der);
    let active = |client: &str, cnf: &str| {
        json!({"active": true, "client_id": client, "exp": now() + 300,
               "token_type": "Bearer", "cnf": {"x5t#S256": cnf}})
    };
    server.set_token("good-token", active(CLIENT_ID, &thumb));
    server.set_token("other-client-token", active("another-client", &thumb));
    server.set_token("other-cert-token", active(CLIENT_ID, "AAAA"));
    server.set_token("revoked-token", json!({"active": false}));

    for _ in 0..2 {
        let r = put_with_token(&h, "good-token").await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(
        server.introspections(),
        1,
        "the second check came from the cache"
    );
    assert!(
        server.saw_client_certificate(),
        "the gateway authenticated with its certificate"
    );

    for (token, needle) in [
        ("other-client-token", "client"),
        ("other-cert-token", "certificate"),
        ("revoked-token", "not active"),
        ("unknown-token", "not active"),
    ] {
        let d = assert_invalid_token(&put_with_token(&h, token).await);
        assert!(d.contains(needle), "{token}: {d}");
    }
    assert_eq!(h.registry.count(), 2);
    let form = server.last_form();
    assert!(form.iter().any(|(k, _)| k == "token"), "{form:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_endpoint_down_or_slow_fails_closed() {
    let (h, server) = introspection_gateway().await;
    server.set_token(
        "slow-token",
        json!({"active": true, "client_id": CLIENT_ID, "exp": now() + 300}),
    );
    server.set_delay(Duration::from_secs(3));
    let r = put_with_token(&h, "slow-token").await;
    let d = assert_rejection(&r, 503, "temporarily_unavailable");
    assert!(d.contains("could not be checked"), "{d}");
    drop(server);
    let r = put_with_token(&h, "slow-token").await;
    assert_rejection(&r, 503, "temporarily_unavailable");
    h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_mode_forwards_the_token_for_the_registry_to_decide() {
    let h = Harness::start().await;
    let r = put_with_token(&h, "opaque-token-for-the-registry").await;
    assert_eq!(r.status, 200);
    let seen = h.registry.requests();
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer opaque-token-for-the-registry")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_token_gives_the_gateways_verdict_on_a_bearer_token() {
    let (h, authority) = jwt_gateway(false, "client_id").await;
    let dir = h.files.path();
    let jwt = dir.join("explain-request.jwt");
    std::fs::write(&jwt, h.compliant_jwt()).expect("request");
    let cert = dir.join("explain-tpp.pem");
    std::fs::write(&cert, &h.tpp.transport.cert_pem).expect("cert");
    let config = dir.join("dcrgate.toml");
    let explain = |token: &str| {
        let file = dir.join("explain-token.txt");
        std::fs::write(&file, format!("{token}\n")).expect("token");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcrgate"))
            .args(["explain", "--format", "json", "--client-id", CLIENT_ID])
            .arg("--jwt")
            .arg(&jwt)
            .arg("--cert")
            .arg(&cert)
            .arg("--config")
            .arg(&config)
            .arg("--token")
            .arg(&file)
            .output()
            .expect("explain runs");
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    let good = authority.sign(&token_claims(&h));
    let (code, v) = explain(&good);
    assert_eq!(v["signatures"]["bearer_token"]["status"], "verified", "{v}");
    assert_eq!(
        code,
        Some(3),
        "the request object's signature is not checked: {v}"
    );
    assert_eq!(put_with_token(&h, &good).await.status, 200);

    // An expired token and a token of another client: explain and the gateway agree.
    for (name, token) in [
        (
            "expired",
            authority.sign(&edit(token_claims(&h), |m| {
                m.insert("exp".into(), json!(now() - 600));
            })),
        ),
        (
            "other client",
            authority.sign(&edit(token_claims(&h), |m| {
                m.insert("client_id".into(), json!("someone-else"));
            })),
        ),
    ] {
        let (code, v) = explain(&token);
        assert_eq!(code, Some(1), "{name}: {v}");
        assert_eq!(
            v["signatures"]["bearer_token"]["status"], "failed",
            "{name}"
        );
        assert_eq!(v["verdict"]["status"], 401, "{name}: {v}");
        assert_eq!(v["verdict"]["error"], "invalid_token", "{name}");
        let r = put_with_token(&h, &token).await;
        assert_invalid_token(&r);
    }
    // --token without --config is unusable input.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .arg("explain")
        .arg("--jwt")
        .arg(&jwt)
        .arg("--cert")
        .arg(&cert)
        .arg("--token")
        .arg(dir.join("explain-token.txt"))
        .output()
        .expect("explain runs");
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_authorization_server_key_set_is_a_503_never_a_pass() {
    // The authorization server's key set cannot be had from the start (nothing is cached).
    let authority = Signer::generate("as-key-1").expect("AS key");
    let h = Harness::start_setup(|cfg, s| {
        s.key_host
            .set(AS_JWKS, dcrgate_sandbox::keyhost::Serve::Status(500));
        cfg.set("routes.update", "bearer", "jwt");
        cfg.set("bearer.jwt", "issuer", AS_ISSUER);
        cfg.set("bearer.jwt", "audiences", vec![AS_AUDIENCE]);
        cfg.set("bearer.jwt", "key_set_url", s.key_host.url(AS_JWKS));
    })
    .await;
    let token = authority.sign(&token_claims(&h));
    let r = put_with_token(&h, &token).await;
    let d = assert_rejection(&r, 503, "temporarily_unavailable");
    assert!(d.contains("try again later"), "{d}");
    h.assert_not_forwarded();
    let key = r#"dcrgate_bearer_checks_total{mode="jwt",result="token_keys_unavailable"}"#;
    h.assert_metric_becomes(key, 1.0).await;
}

/// Under the shipped UK profile (which requires certificate-bound tokens), a `jwt`-mode token is
/// checked before the software statement: a bound token with a valid SSA passes, an unbound or
/// foreign-bound one is a 401 and the statement's key set is never fetched for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_uk_profile_the_token_must_be_certificate_bound() {
    use crate::software_statements::{Chain, SSA_JWKS};
    let authority = Signer::generate("as-key-1").expect("AS key");
    let jwks = authority.jwks();
    let c = Chain::start_with(move |cfg, s| {
        s.key_host
            .set(AS_JWKS, dcrgate_sandbox::keyhost::Serve::Json(jwks.clone()));
        cfg.set("routes.update", "bearer", "jwt");
        cfg.set("bearer.jwt", "issuer", AS_ISSUER);
        cfg.set("bearer.jwt", "audiences", vec![AS_AUDIENCE]);
        cfg.set("bearer.jwt", "key_set_url", s.key_host.url(AS_JWKS));
    })
    .await;
    let h = &c.h;
    let request = |jti: &str| {
        let mut claims = c.request_with_ssa(&c.ssa_with(|_| {}));
        claims["jti"] = json!(jti);
        h.tpp.sign(&claims)
    };
    let bound = authority.sign(&token_claims(h));
    let unbound = authority.sign(&edit(token_claims(h), |m| {
        m.remove("cnf");
    }));
    let foreign = authority.sign(&edit(token_claims(h), |m| {
        m.insert("cnf".into(), json!({"x5t#S256": "AAAA"}));
    }));
    for (name, token, jti) in [
        ("unbound", &unbound, "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a7b"),
        (
            "bound elsewhere",
            &foreign,
            "4f5a6b7c-8d9e-4f0a-9b2c-3d4e5f6a7b8c",
        ),
    ] {
        let r = h.put(Put::jwt(request(jti)).bearer(token)).await;
        let d = assert_invalid_token(&r);
        assert!(d.contains("certificate"), "{name}: {d}");
    }
    h.assert_not_forwarded();
    assert_eq!(h.key_host.hits(SSA_JWKS), 0, "fetched for a refused token");
    let r = h
        .put(Put::jwt(request("5a6b7c8d-9e0f-4a1b-8c3d-4e5f6a7b8c9d")).bearer(&bound))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.registry.count(), 1);
    let seen = h.registry.requests();
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {bound}").as_str())
    );
}
