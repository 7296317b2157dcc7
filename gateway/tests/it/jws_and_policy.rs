//! The request object: JWS header rules and signature, then the registration policy on its
//! claims. Every refusal is answered by the gateway; the registry never sees the request, and a
//! request refused before its signature is checked never makes the gateway fetch a key set.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{assert_rejection, sign_with_key, Harness, KID};
use dcrgate_certs::RsaSigningKey;
use dcrgate_sandbox::tpp::{now, unsigned};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

/// A refused request object: 400 `invalid_client_metadata`, not forwarded, no key fetch.
async fn assert_refused_before_keys(h: &Harness, jwt: &str, what: &str) -> String {
    let r = h.put_jwt(jwt).await;
    assert_eq!(
        r.status,
        400,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let description = assert_rejection(&r, 400, "invalid_client_metadata");
    h.assert_not_forwarded();
    assert_eq!(h.key_host.total_hits(), 0, "{what}: no key set fetch");
    description
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_none_is_refused() {
    let h = Harness::start().await;
    let claims = h.claims();
    for alg in ["none", "None", "NONE"] {
        let jwt = unsigned(&json!({"alg": alg, "kid": KID}), &claims, b"");
        assert_refused_before_keys(&h, &jwt, alg).await;
        // The same with a (meaningless) signature part.
        let jwt = unsigned(&json!({"alg": alg, "kid": KID}), &claims, b"sig");
        assert_refused_before_keys(&h, &jwt, alg).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let h = Harness::start().await;
    let header = json!({"alg": "HS256", "kid": KID, "typ": "JWT"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(h.claims().to_string())
    );
    // The classic confusion: the RSA public key (its JWK text, and its modulus) as HMAC secret.
    for secret in [
        h.tpp.signer.key.public_jwk().into_bytes(),
        h.tpp.signer.key.n.clone(),
    ] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        let d = assert_refused_before_keys(&h, &jwt, "HS256").await;
        assert!(d.contains("HS256"), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_with_a_valid_signature_is_refused_as_not_in_the_policy() {
    let h = Harness::start().await;
    let header = json!({"alg": "RS256", "kid": KID, "typ": "JWT"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(h.claims().to_string())
    );
    let pair = RsaKeyPair::from_pkcs8(&h.tpp.signer.key.pkcs8_der).expect("key");
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    let d = assert_refused_before_keys(&h, &jwt, "RS256").await;
    assert!(d.contains("RS256"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_without_kid_or_with_crit_or_key_members_is_refused() {
    let h = Harness::start().await;
    let claims = h.claims();
    let jwk: Value = serde_json::from_str(&h.tpp.signer.key.public_jwk()).expect("jwk");
    let headers = [
        ("no kid", json!({"alg": "PS256", "typ": "JWT"})),
        ("empty kid", json!({"alg": "PS256", "kid": ""})),
        ("kid not a string", json!({"alg": "PS256", "kid": 7})),
        ("no alg", json!({"kid": KID})),
        (
            "crit",
            json!({"alg": "PS256", "kid": KID, "crit": ["exp"], "exp": now() + 60}),
        ),
        (
            "b64",
            json!({"alg": "PS256", "kid": KID, "b64": false, "crit": ["b64"]}),
        ),
        (
            "jku",
            json!({"alg": "PS256", "kid": KID, "jku": h.jwks_uri.clone()}),
        ),
        (
            "x5u",
            json!({"alg": "PS256", "kid": KID, "x5u": "https://localhost/cert.pem"}),
        ),
        ("jwk", json!({"alg": "PS256", "kid": KID, "jwk": jwk})),
        (
            "x5c",
            json!({"alg": "PS256", "kid": KID, "x5c": [URL_SAFE_NO_PAD.encode(&h.tpp.transport.cert_der)]}),
        ),
        ("nested", json!({"alg": "PS256", "kid": KID, "cty": "JWT"})),
    ];
    for (what, header) in headers {
        // Signed with the TPP's real key: only the header makes it unacceptable.
        let jwt = h.tpp.sign_with_header(&header, &claims);
        assert_refused_before_keys(&h, &jwt, what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_members_in_claims_or_header_are_refused() {
    let h = Harness::start().await;
    let claims = h.claims().to_string();
    let header = format!(r#"{{"alg":"PS256","kid":"{KID}","typ":"JWT"}}"#);
    // A second client_id after the real one (a parser keeping the last would see "other").
    let dup_claims = format!(r#"{}, "client_id":"other"}}"#, &claims[..claims.len() - 1]);
    let jwt = h.tpp.sign_raw(header.as_bytes(), dup_claims.as_bytes());
    assert_refused_before_keys(&h, &jwt, "duplicate claim").await;
    // The same claim twice with the same value is still a duplicate.
    let dup_same = format!(
        r#"{}, "scope":"openid accounts payments"}}"#,
        &claims[..claims.len() - 1]
    );
    let jwt = h.tpp.sign_raw(header.as_bytes(), dup_same.as_bytes());
    assert_refused_before_keys(&h, &jwt, "duplicate claim, same value").await;
    let dup_header = format!(r#"{{"alg":"PS256","kid":"{KID}","alg":"none"}}"#);
    let jwt = h.tpp.sign_raw(dup_header.as_bytes(), claims.as_bytes());
    assert_refused_before_keys(&h, &jwt, "duplicate header member").await;
    // Sanity: the undoctored bytes through the same signing path are accepted.
    let jwt = h.tpp.sign_raw(header.as_bytes(), claims.as_bytes());
    assert_eq!(h.put_jwt(&jwt).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_a_jws_is_refused() {
    let h = Harness::start().await;
    let good = h.compliant_jwt();
    let parts: Vec<&str> = good.split('.').collect();
    let bodies = [
        "not-a-jws".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        "..".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}.{}", parts[0], parts[1], "!!!"),
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode("[1,2]"),
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode("not json"),
            parts[2]
        ),
        format!("{good}.{}", parts[2]),
        r#"{"alg":"PS256"}"#.to_owned(),
    ];
    for body in &bodies {
        assert_refused_before_keys(&h, body, body).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_by_another_key_with_the_same_kid_is_refused() {
    let h = Harness::start().await;
    let impostor = RsaSigningKey::generate(KID, 2048).expect("key");
    let jwt = sign_with_key(&impostor, &h.claims());
    let r = h.put_jwt(&jwt).await;
    let d = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(d.contains("signature"), "{d}");
    h.assert_not_forwarded();
    // A tampered payload under the TPP's genuine signature is refused too.
    let good = h.compliant_jwt();
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = h.claims_with(|m| {
        m.insert("scope".into(), json!("openid accounts"));
    });
    let jwt = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(tampered.to_string()),
        parts[2]
    );
    let r = h.put_jwt(&jwt).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    h.assert_not_forwarded();
    // And the genuine one still goes through.
    assert_eq!(h.put_jwt(&good).await.status, 200);
    assert_eq!(h.registry.count(), 1);
}

/// A refused policy: status and code, not forwarded, no key set fetched.
async fn assert_policy_refusal(
    h: &Harness,
    claims: &Value,
    status: u16,
    error: &str,
    what: &str,
) -> String {
    let r = h.put_jwt(&h.tpp.sign(claims)).await;
    assert_eq!(
        r.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let d = assert_rejection(&r, status, error);
    h.assert_not_forwarded();
    assert_eq!(h.key_host.total_hits(), 0, "{what}: no key set fetch");
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dn_mismatch_is_403_and_names_the_differing_attribute() {
    let h = Harness::start().await;
    let cases = [
        (
            "CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-999999,O=Example TPP Ltd,C=GB",
            "organizationIdentifier",
        ),
        (
            "CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-123456,O=Other TPP Ltd,C=GB",
            "O",
        ),
        (
            "CN=someone-else,organizationIdentifier=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB",
            "CN",
        ),
    ];
    for (dn, attribute) in cases {
        let claims = h.claims_with(|m| {
            m.insert("tls_client_auth_dn".into(), json!(dn));
        });
        let d = assert_policy_refusal(&h, &claims, 403, "access_denied", dn).await;
        assert!(
            d.contains(&format!("{attribute} differs")),
            "{dn}: description does not name {attribute}: {d}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_dn_spellings_are_accepted() {
    let h = Harness::start().await;
    let spellings = [
        // Certificate (ASN.1) order instead of RFC 4514 order.
        "C=GB,O=Example TPP Ltd,organizationIdentifier=PSDGB-FCA-123456,CN=0015800001HQQrZAAX",
        // Different case, in attribute names and values.
        "cn=0015800001hqqrzaax,ORGANIZATIONIDENTIFIER=psdgb-fca-123456,o=EXAMPLE TPP LTD,c=gb",
        // The numeric OID form of organizationIdentifier.
        "CN=0015800001HQQrZAAX,OID.2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB",
        "CN=0015800001HQQrZAAX,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB",
        // Spaces after the commas and inner runs of spaces.
        "CN=0015800001HQQrZAAX, organizationIdentifier=PSDGB-FCA-123456, O=Example  TPP Ltd, C=GB",
    ];
    for (i, dn) in spellings.iter().enumerate() {
        let claims = h.claims_with(|m| {
            m.insert("tls_client_auth_dn".into(), json!(dn));
        });
        let r = h.put_jwt(&h.tpp.sign(&claims)).await;
        assert_eq!(r.status, 200, "{dn}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(h.registry.count(), i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_aliases_are_accepted() {
    let h = Harness::start().await;
    let dn_alias = h.claims_with(|m| {
        let dn = m.remove("tls_client_auth_dn").expect("dn claim");
        m.insert("tls_client_auth_subject_dn".into(), dn);
    });
    let r = h.put_jwt(&h.tpp.sign(&dn_alias)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let jwks_alias = h.claims_with(|m| {
        let uri = m.remove("jwks_uri").expect("jwks_uri claim");
        m.insert("org_jwks_endpoint".into(), uri);
    });
    let r = h.put_jwt(&h.tpp.sign(&jwks_alias)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let scope_array = h.claims_with(|m| {
        m.insert("scope".into(), json!(["openid", "accounts", "payments"]));
    });
    let r = h.put_jwt(&h.tpp.sign(&scope_array)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.registry.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_dn_aliases_are_refused() {
    let h = Harness::start().await;
    let claims = h.claims_with(|m| {
        m.insert(
            "tls_client_auth_subject_dn".into(),
            json!("CN=other,O=Other,C=GB"),
        );
    });
    assert_policy_refusal(
        &h,
        &claims,
        400,
        "invalid_client_metadata",
        "alias conflict",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirect_uri_is_invalid_redirect_uri() {
    let h = Harness::start().await;
    for uris in [
        json!(["http://tpp.example/callback"]),
        json!(["https://tpp.example/ok", "http://tpp.example/callback"]),
    ] {
        let claims = h.claims_with(|m| {
            m.insert("redirect_uris".into(), uris.clone());
        });
        let d =
            assert_policy_refusal(&h, &claims, 400, "invalid_redirect_uri", "http redirect").await;
        assert!(d.contains("http://tpp.example/callback"), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_or_wrong_audience_or_other_client_id_is_400() {
    let h = Harness::start().await;
    let t = now();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "expired",
            h.claims_with(|m| {
                m.insert("iat".into(), json!(t - 7200));
                m.insert("exp".into(), json!(t - 3600));
            }),
            "expired",
        ),
        (
            "no exp",
            h.claims_with(|m| {
                m.remove("exp");
            }),
            "exp",
        ),
        (
            "lifetime too long",
            h.claims_with(|m| {
                m.insert("exp".into(), json!(t + 86_400));
            }),
            "lifetime",
        ),
        (
            "aud names someone else",
            h.claims_with(|m| {
                m.insert("aud".into(), json!("https://other-bank.example/"));
            }),
            "aud",
        ),
        (
            "client_id differs from the path",
            h.claims_with(|m| {
                m.insert("client_id".into(), json!("someone-else"));
            }),
            "client_id",
        ),
        (
            "token_endpoint_auth_method",
            h.claims_with(|m| {
                m.insert(
                    "token_endpoint_auth_method".into(),
                    json!("client_secret_basic"),
                );
            }),
            "token_endpoint_auth_method",
        ),
    ];
    for (what, claims, mentions) in cases {
        let d = assert_policy_refusal(&h, &claims, 400, "invalid_client_metadata", what).await;
        assert!(d.contains(mentions), "{what}: {d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_outside_the_profile_or_without_openid_is_400() {
    let h = Harness::start().await;
    for (scope, mentions) in [
        (json!("openid accounts admin"), "admin"),
        (json!(["openid", "admin"]), "admin"),
        (json!("accounts payments"), "openid"),
        (json!(["accounts"]), "openid"),
    ] {
        let claims = h.claims_with(|m| {
            m.insert("scope".into(), scope.clone());
        });
        let d = assert_policy_refusal(&h, &claims, 400, "invalid_client_metadata", "scope").await;
        assert!(d.contains(mentions), "{scope}: {d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_failure_outranks_metadata_problems() {
    // Several rules broken at once: the DN mismatch decides status and code, and every
    // violation is described so a TPP fixes its request in one round trip.
    let h = Harness::start().await;
    let claims = h.claims_with(|m| {
        m.insert("tls_client_auth_dn".into(), json!("CN=someone-else,C=GB"));
        m.insert("redirect_uris".into(), json!(["http://tpp.example/cb"]));
        m.insert("scope".into(), json!("accounts"));
    });
    let d = assert_policy_refusal(&h, &claims, 403, "access_denied", "several").await;
    for part in ["tls_client_auth_dn", "http://tpp.example/cb", "openid"] {
        assert!(d.contains(part), "{part} missing from {d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgery_cannot_burn_the_jti_of_the_genuine_request() {
    let h = Harness::start_setup(|cfg, s| {
        let profile = dcrgate_sandbox::world::SEED_PROFILE
            .replace("require_jti = false", "require_jti = true");
        s.write("jti.toml", &profile);
        cfg.set("policy", "profile", "jti.toml");
    })
    .await;
    let claims = h.claims();
    // The same claims (the same jti) signed by someone else under the TPP's kid.
    let forger = RsaSigningKey::generate(KID, 2048).expect("forger key");
    let forged = sign_with_key(&forger, &claims);
    let r = h.put_jwt(&forged).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    h.assert_not_forwarded();
    // The genuine request with that jti is still first: the jti is recorded only once the
    // signature verified.
    let genuine = h.tpp.sign(&claims);
    assert_eq!(h.put_jwt(&genuine).await.status, 200);
    // And it is recorded now.
    let r = h.put_jwt(&genuine).await;
    let d = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(d.contains("jti"), "{d}");
    assert_eq!(h.registry.count(), 1);
}

/// The memory replay store holds `replay.memory_capacity` identifiers: past it the oldest is
/// dropped and counted in `dcrgate_replay_evictions_total`, and (as documented) its request
/// object can then be replayed; identifiers still held are refused as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_replay_store_evicts_counts_and_readmits_the_oldest() {
    let h = Harness::start_setup(|cfg, s| {
        let profile = dcrgate_sandbox::world::SEED_PROFILE
            .replace("require_jti = false", "require_jti = true");
        s.write("jti.toml", &profile);
        cfg.set("policy", "profile", "jti.toml");
        cfg.set("replay", "memory_capacity", 2);
    })
    .await;
    let jwts: Vec<String> = [
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
        "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f",
    ]
    .iter()
    .map(|jti| {
        h.tpp.sign(&h.claims_with(|m| {
            m.insert("jti".into(), json!(jti));
        }))
    })
    .collect();
    for jwt in &jwts {
        assert_eq!(h.put_jwt(jwt).await.status, 200);
    }
    // The store evicts in its maintenance, which the next lookups run.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The newest is still held.
    let r = h.put_jwt(&jwts[2]).await;
    let d = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(d.contains("jti"), "{d}");
    let (samples, text) = h
        .metrics_when(|s| s.get("dcrgate_replay_evictions_total").unwrap_or(0.0) >= 1.0)
        .await;
    assert!(
        samples.get("dcrgate_replay_evictions_total").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    // The evicted oldest is accepted again: the bound the counter warns about.
    assert_eq!(h.put_jwt(&jwts[0]).await.status, 200);
    assert_eq!(h.registry.count(), 4);
}
