//! Rule-by-rule tests of the policy evaluation: one compliant request, then one change per rule.

use dcrgate_policies::evaluate::Evaluation;
use dcrgate_policies::Rule;
use serde_json::{json, Value};

use crate::common::{compliant, edit, evaluate, rules, seed, CERT_DN, NOW, TPP_HOSTS};

fn run(payload: &Value) -> Evaluation {
    evaluate(&seed(), payload, CERT_DN, TPP_HOSTS, None)
}

fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    edit(compliant(), f)
}

#[test]
fn compliant_request_is_accepted_with_its_key_url() {
    let e = run(&compliant());
    assert!(e.verdict.is_accept(), "{:?}", e.verdict);
    assert_eq!(
        e.key_set_url.unwrap().as_str(),
        "https://keys.tpp.example/jwks.json"
    );
}

#[test]
fn each_rule_rejects_its_violation() {
    let cases: Vec<(&str, Value, Rule)> = vec![
        (
            "auth method",
            with(|m| {
                m.insert(
                    "token_endpoint_auth_method".into(),
                    json!("client_secret_basic"),
                );
            }),
            Rule::TokenEndpointAuthMethod,
        ),
        (
            "auth method missing",
            with(|m| {
                m.remove("token_endpoint_auth_method");
            }),
            Rule::TokenEndpointAuthMethod,
        ),
        (
            "id token alg",
            with(|m| {
                m.insert("id_token_signed_response_alg".into(), json!("RS256"));
            }),
            Rule::IdTokenSignedResponseAlg,
        ),
        (
            "request alg",
            with(|m| {
                m.insert("request_object_signing_alg".into(), json!("none"));
            }),
            Rule::RequestObjectSigningAlg,
        ),
        (
            "unknown scope",
            with(|m| {
                m.insert("scope".into(), json!("openid admin"));
            }),
            Rule::Scope,
        ),
        (
            "openid missing",
            with(|m| {
                m.insert("scope".into(), json!(["accounts"]));
            }),
            Rule::Scope,
        ),
        (
            "scope missing",
            with(|m| {
                m.remove("scope");
            }),
            Rule::Scope,
        ),
        (
            "redirect http",
            with(|m| {
                m.insert(
                    "redirect_uris".into(),
                    json!(["https://ok.example/cb", "http://tpp.example/cb"]),
                );
            }),
            Rule::RedirectUris,
        ),
        (
            "redirect loopback",
            with(|m| {
                m.insert("redirect_uris".into(), json!(["https://127.0.0.1/cb"]));
            }),
            Rule::RedirectUris,
        ),
        (
            "redirect fragment",
            with(|m| {
                m.insert("redirect_uris".into(), json!(["https://tpp.example/cb#x"]));
            }),
            Rule::RedirectUris,
        ),
        (
            "redirect empty",
            with(|m| {
                m.insert("redirect_uris".into(), json!([]));
            }),
            Rule::RedirectUris,
        ),
        (
            "org_name",
            with(|m| {
                m.remove("org_name");
            }),
            Rule::OrgName,
        ),
        (
            "expired",
            with(|m| {
                m.insert("iat".into(), json!(NOW - 600));
                m.insert("exp".into(), json!(NOW - 120));
            }),
            Rule::Expiry,
        ),
        (
            "exp missing",
            with(|m| {
                m.remove("exp");
            }),
            Rule::Expiry,
        ),
        (
            "iat future",
            with(|m| {
                m.insert("iat".into(), json!(NOW + 600));
                m.insert("exp".into(), json!(NOW + 900));
            }),
            Rule::IssuedAt,
        ),
        (
            "nbf future",
            with(|m| {
                m.insert("nbf".into(), json!(NOW + 600));
            }),
            Rule::IssuedAt,
        ),
        (
            "too long",
            with(|m| {
                m.insert("exp".into(), json!(NOW + 7200));
            }),
            Rule::Lifetime,
        ),
        (
            "aud other",
            with(|m| {
                m.insert("aud".into(), json!(["https://other.example/"]));
            }),
            Rule::Audience,
        ),
        (
            "aud missing",
            with(|m| {
                m.remove("aud");
            }),
            Rule::Audience,
        ),
        (
            "client_id",
            with(|m| {
                m.insert("client_id".into(), json!("someone-else"));
            }),
            Rule::ClientId,
        ),
        (
            "jwks missing",
            with(|m| {
                m.remove("jwks_uri");
            }),
            Rule::KeySetUrl,
        ),
        (
            "jwks http",
            with(|m| {
                m.insert(
                    "jwks_uri".into(),
                    json!("http://keys.tpp.example/jwks.json"),
                );
            }),
            Rule::KeySetUrl,
        ),
        (
            "jwks host",
            with(|m| {
                m.insert(
                    "jwks_uri".into(),
                    json!("https://169.254.169.254/latest/meta-data"),
                );
            }),
            Rule::KeySetUrl,
        ),
        (
            "dn missing",
            with(|m| {
                m.remove("tls_client_auth_dn");
            }),
            Rule::DnClaim,
        ),
        (
            "dn garbage",
            with(|m| {
                m.insert("tls_client_auth_dn".into(), json!("not a dn"));
            }),
            Rule::DnClaim,
        ),
        (
            "dn other org",
            with(|m| {
                m.insert("tls_client_auth_dn".into(), json!("CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-999999,O=Example TPP Ltd,C=GB"));
            }),
            Rule::DnMismatch,
        ),
        (
            "string exp",
            with(|m| {
                m.insert("exp".into(), json!("1800003000"));
            }),
            Rule::ClaimsMalformed,
        ),
    ];
    for (name, payload, rule) in cases {
        let e = run(&payload);
        assert_eq!(rules(&e), vec![rule], "{name}: {:?}", e.verdict);
    }
}

#[test]
fn accepts_what_real_tpps_send() {
    for (name, payload) in [
        (
            "scope as array",
            with(|m| {
                m.insert("scope".into(), json!(["openid", "fundsconfirmations"]));
            }),
        ),
        (
            "subject_dn alias",
            with(|m| {
                let dn = m.remove("tls_client_auth_dn").unwrap();
                m.insert("tls_client_auth_subject_dn".into(), dn);
            }),
        ),
        (
            "org_jwks_endpoint alias",
            with(|m| {
                let u = m.remove("jwks_uri").unwrap();
                m.insert("org_jwks_endpoint".into(), u);
            }),
        ),
        (
            "DN in certificate order, other case",
            with(|m| {
                m.insert("tls_client_auth_dn".into(), json!("C=gb,O=EXAMPLE TPP LTD,OID.2.5.4.97=PSDGB-FCA-123456,CN=0015800001HQQrZAAX"));
            }),
        ),
        (
            "exactly one hour",
            with(|m| {
                m.insert("iat".into(), json!(NOW));
                m.insert("exp".into(), json!(NOW + 3600));
            }),
        ),
        (
            "aud array",
            with(|m| {
                m.insert("aud".into(), json!(["x", "https://bank.example/"]));
            }),
        ),
        (
            "client_id equal",
            with(|m| {
                m.insert("client_id".into(), json!("client-123"));
            }),
        ),
        (
            "clock skew within leeway",
            with(|m| {
                m.insert("iat".into(), json!(NOW + 30));
            }),
        ),
    ] {
        let e = run(&payload);
        assert!(e.verdict.is_accept(), "{name}: {:?}", e.verdict);
    }
}

#[test]
fn dn_mismatch_names_the_attribute_and_comes_first() {
    let payload = with(|m| {
        m.insert(
            "tls_client_auth_dn".into(),
            json!("CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-123456,O=Other Ltd,C=GB"),
        );
        m.insert("scope".into(), json!("openid admin"));
    });
    let e = run(&payload);
    let v = e.verdict.violations();
    assert_eq!(v[0].rule, Rule::DnMismatch);
    assert!(
        v[0].message.contains("Other Ltd") && v[0].message.contains("Example TPP Ltd"),
        "{}",
        v[0].message
    );
    assert_eq!(v[1].rule, Rule::Scope);
}

#[test]
fn every_violation_is_reported_at_once() {
    let e = run(&json!({}));
    let r = rules(&e);
    for rule in [
        Rule::TokenEndpointAuthMethod,
        Rule::Scope,
        Rule::RedirectUris,
        Rule::Expiry,
        Rule::Audience,
        Rule::KeySetUrl,
        Rule::DnClaim,
    ] {
        assert!(r.contains(&rule), "{rule:?} missing from {r:?}");
    }
}
