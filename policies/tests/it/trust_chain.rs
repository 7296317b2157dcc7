//! Software statement, replay and rotation rules, against the shipped UK Open Banking profile:
//! one compliant request, then one change per rule.

use dcrgate_policies::evaluate::Evaluation;
use dcrgate_policies::{Profile, RotationDecision, Rule};
use serde_json::{json, Map, Value};

use crate::common::{evaluate, seed, uk, NOW};

const SOFTWARE_ID: &str = "2Xb8gyL7vsNMkS0yGJQ3rZ";
const CERT_DN: &str = "CN=2Xb8gyL7vsNMkS0yGJQ3rZ,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB";
const OB_LEGACY_DN: &str = "CN=2Xb8gyL7vsNMkS0yGJQ3rZ,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB";
/// Key set hosts: the directory's key store and the TPP's own.
const HOSTS: &[&str] = &["keystore.directory.example", "*.tpp.example"];

fn ssa() -> Value {
    json!({
        "iss": "OpenBanking Ltd",
        "iat": NOW - 86_400,
        "software_id": SOFTWARE_ID,
        "software_jwks_endpoint": "https://keystore.directory.example/org/2Xb8.jwks",
        "org_jwks_endpoint": "https://keystore.directory.example/org/org.jwks",
        "software_redirect_uris": ["https://tpp.example/cb", "https://tpp.example/cb2"],
        "software_roles": ["AISP", "PISP"],
        "org_id": "0015800001HQQrZAAX"
    })
}

fn request() -> Value {
    json!({
        "iss": SOFTWARE_ID,
        "aud": "https://bank.example/",
        "iat": NOW - 10,
        "exp": NOW + 3000,
        "jti": "3F1C9B2E-5A7D-4C1E-9F2A-0B6D8E4C2A11",
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_dn": CERT_DN,
        "id_token_signed_response_alg": "PS256",
        "request_object_signing_alg": "PS256",
        "redirect_uris": ["https://tpp.example/cb"],
        "scope": "openid accounts payments",
        "software_statement": "header.payload.signature"
    })
}

fn run_with(profile: &Profile, req: &Value, ssa: Option<&Value>, cert_dn: &str) -> Evaluation {
    evaluate(profile, req, cert_dn, HOSTS, ssa)
}

fn run(req: &Value, ssa: &Value) -> Evaluation {
    run_with(&uk(), req, Some(ssa), CERT_DN)
}

fn rules(e: &Evaluation) -> Vec<Rule> {
    e.verdict.violations().iter().map(|v| v.rule).collect()
}

fn edit(mut v: Value, f: impl FnOnce(&mut Map<String, Value>)) -> Value {
    f(v.as_object_mut().unwrap());
    v
}

/// The compliant request claiming the certificate subject `dn`.
fn claiming(dn: &str) -> Value {
    edit(request(), |m| {
        m.insert("tls_client_auth_dn".into(), json!(dn));
    })
}

#[test]
fn compliant_request_takes_its_key_set_from_the_ssa() {
    let e = run(&request(), &ssa());
    assert!(e.verdict.is_accept(), "{:?}", e.verdict);
    assert_eq!(
        e.key_set_url.unwrap().as_str(),
        "https://keystore.directory.example/org/2Xb8.jwks"
    );
    assert_eq!(e.software_id.as_deref(), Some(SOFTWARE_ID));
    let replay = e.replay.unwrap();
    assert_eq!(
        replay.id,
        format!("{SOFTWARE_ID}:3f1c9b2e-5a7d-4c1e-9f2a-0b6d8e4c2a11")
    );
    assert_eq!(replay.expires_at, NOW + 3000);
    assert_eq!(e.rotation, None);
}

#[test]
fn each_ssa_rule_rejects_its_violation() {
    let cases: Vec<(&str, Value, Value, Rule)> = vec![
        (
            "ssa expired",
            request(),
            edit(ssa(), |m| {
                m.insert("exp".into(), json!(NOW - 3600));
            }),
            Rule::SoftwareStatementTime,
        ),
        (
            "ssa iat in the future",
            request(),
            edit(ssa(), |m| {
                m.insert("iat".into(), json!(NOW + 3600));
            }),
            Rule::SoftwareStatementTime,
        ),
        (
            "ssa without iat",
            request(),
            edit(ssa(), |m| {
                m.remove("iat");
            }),
            Rule::SoftwareStatementTime,
        ),
        (
            "iss is not software_id",
            edit(request(), |m| {
                m.insert("iss".into(), json!("someone-else"));
            }),
            ssa(),
            Rule::SoftwareId,
        ),
        (
            "request software_id differs",
            edit(request(), |m| {
                m.insert("software_id".into(), json!("other-software"));
            }),
            ssa(),
            Rule::SoftwareId,
        ),
        (
            "redirect not in the ssa (second of two)",
            edit(request(), |m| {
                m.insert(
                    "redirect_uris".into(),
                    json!(["https://tpp.example/cb", "https://evil.example/cb"]),
                );
            }),
            ssa(),
            Rule::SoftwareRedirectUris,
        ),
        (
            "scope not granted by roles",
            edit(request(), |m| {
                m.insert("scope".into(), json!("openid accounts fundsconfirmations"));
            }),
            ssa(),
            Rule::SoftwareRoles,
        ),
        (
            "conflicting jwks_uri",
            edit(request(), |m| {
                m.insert(
                    "jwks_uri".into(),
                    json!("https://keys.tpp.example/mine.jwks"),
                );
            }),
            ssa(),
            Rule::KeySetConflict,
        ),
        (
            "ssa names no key set",
            request(),
            edit(ssa(), |m| {
                m.remove("software_jwks_endpoint");
                m.remove("org_jwks_endpoint");
            }),
            Rule::SoftwareKeySet,
        ),
        (
            "ssa key set off the allowlist",
            request(),
            edit(ssa(), |m| {
                m.insert(
                    "software_jwks_endpoint".into(),
                    json!("https://attacker.example/jwks"),
                );
            }),
            Rule::SoftwareKeySet,
        ),
        (
            "jti missing",
            edit(request(), |m| {
                m.remove("jti");
            }),
            ssa(),
            Rule::Jti,
        ),
        (
            "jti not a uuid",
            edit(request(), |m| {
                m.insert("jti".into(), json!("not-a-uuid"));
            }),
            ssa(),
            Rule::Jti,
        ),
    ];
    for (name, req, ssa, rule) in cases {
        let e = run(&req, &ssa);
        assert_eq!(rules(&e), vec![rule], "{name}: {:?}", e.verdict);
        let v = &e.verdict.violations()[0];
        let expected_code = match rule {
            Rule::SoftwareRedirectUris => "invalid_redirect_uri",
            Rule::SoftwareRoles | Rule::KeySetConflict | Rule::Jti => "invalid_client_metadata",
            _ => "invalid_software_statement",
        };
        assert_eq!(v.rule.error_code().as_str(), expected_code, "{name}");
        assert_eq!(v.rule.status(), 400, "{name}");
    }
}

#[test]
fn a_jwks_uri_the_ssa_names_is_not_a_conflict() {
    let req = edit(request(), |m| {
        m.insert(
            "jwks_uri".into(),
            json!("https://keystore.directory.example/org/org.jwks"),
        );
    });
    assert!(run(&req, &ssa()).verdict.is_accept());
}

#[test]
fn presence_required_optional_refused() {
    let without = edit(request(), |m| {
        m.remove("software_statement");
        m.insert("jwks_uri".into(), json!("https://keys.tpp.example/jwks"));
    });
    // Required (UK): absent is refused.
    let e = run_with(&uk(), &without, None, CERT_DN);
    assert!(rules(&e).contains(&Rule::SoftwareStatement), "{e:?}");
    // Optional (seed): absent is fine and the request's jwks_uri is used.
    let seed_req = edit(without.clone(), |m| {
        m.insert("org_name".into(), json!("Example TPP Ltd"));
        m.insert("iss".into(), json!("x"));
    });
    let e = run_with(&seed(), &seed_req, None, CERT_DN);
    assert!(e.verdict.is_accept(), "{:?}", e.verdict);
    assert_eq!(
        e.key_set_url.unwrap().as_str(),
        "https://keys.tpp.example/jwks"
    );
    // Carried but not verified by the gateway: fail closed.
    let e = run_with(&uk(), &request(), None, CERT_DN);
    assert_eq!(rules(&e)[0], Rule::SoftwareStatement);
    assert!(e.key_set_url.is_none());
    // Refused.
    let refusing = Profile::from_toml_str(
        "name = \"x\"\n[software_statement]\npresence = \"refused\"\n[claims]\nrequire_org_name = false",
    )
    .unwrap();
    let e = run_with(&refusing, &request(), Some(&ssa()), CERT_DN);
    assert!(rules(&e).contains(&Rule::SoftwareStatement), "{e:?}");
}

#[test]
fn ssa_max_age_is_enforced_when_set() {
    let text = include_str!("../../profiles/uk-ob-dcr-3.3.toml")
        .replace("max_age_seconds = 0", "max_age_seconds = 3600");
    let p = Profile::from_toml_str(&text).unwrap();
    let e = run_with(&p, &request(), Some(&ssa()), CERT_DN);
    assert_eq!(rules(&e), vec![Rule::SoftwareStatementTime]);
}

#[test]
fn rotation_same_organisation_accepts_a_new_certificate_of_the_same_org() {
    let new_dn = "CN=new-cert-2026,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB";
    let req = edit(request(), |m| {
        m.insert("tls_client_auth_dn".into(), json!(new_dn));
    });
    let e = run(&req, &ssa());
    assert!(e.verdict.is_accept(), "{:?}", e.verdict);
    assert_eq!(e.rotation, Some(RotationDecision::Accepted));

    // Another organisation: denied, and the message says why rotation did not apply.
    let other = claiming("CN=x,2.5.4.97=PSDGB-FCA-999999,O=Example TPP Ltd,C=GB");
    let e = run(&other, &ssa());
    assert_eq!(rules(&e), vec![Rule::DnMismatch]);
    assert_eq!(e.rotation, Some(RotationDecision::Denied));
    let msg = &e.verdict.violations()[0].message;
    assert!(msg.contains("rotation") && msg.contains("999999"), "{msg}");
}

#[test]
fn rotation_deny_refuses_any_other_dn() {
    let text = include_str!("../../profiles/uk-ob-dcr-3.3.toml")
        .replace("mode = \"same-organisation\"", "mode = \"deny\"");
    let p = Profile::from_toml_str(&text).unwrap();
    let req = claiming("CN=new-cert-2026,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB");
    let e = run_with(&p, &req, Some(&ssa()), CERT_DN);
    assert_eq!(rules(&e), vec![Rule::DnMismatch]);
    assert_eq!(e.rotation, Some(RotationDecision::Denied));
}

/// The UK profile with `rotation.attributes` replaced by `attributes`.
fn uk_rotating_on(attributes: &str) -> Profile {
    let shipped = "attributes = [[\"organizationIdentifier\", \"O\"], [\"OU\", \"O\"]]";
    let text = include_str!("../../profiles/uk-ob-dcr-3.3.toml");
    assert!(
        text.contains(shipped),
        "the UK profile ships both alternatives"
    );
    Profile::from_toml_str(&text.replace(shipped, &format!("attributes = {attributes}"))).unwrap()
}

#[test]
fn rotation_never_matches_on_attributes_both_certificates_lack() {
    // Open Banking legacy certificates carry no organizationIdentifier and all share
    // O=OpenBanking: with only the eIDAS attributes configured they must not count as one org.
    let eidas_only = uk_rotating_on("[\"organizationIdentifier\", \"O\"]");
    let req = claiming("CN=other,OU=0015800001ZZZZZZZZ,O=OpenBanking,C=GB");
    let same_org = claiming("CN=new-software-cert,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB");
    for r in [&req, &same_org] {
        let e = run_with(&eidas_only, r, Some(&ssa()), OB_LEGACY_DN);
        assert_eq!(rules(&e), vec![Rule::DnMismatch]);
        assert_eq!(
            (e.rotation, e.rotation_alternative),
            (Some(RotationDecision::Denied), None)
        );
        let msg = &e.verdict.violations()[0].message;
        assert!(
            msg.contains("does not carry all of organizationIdentifier, O"),
            "{msg}"
        );
    }
    // With OU (the legacy organisation id) configured, the same organisation rotates.
    let legacy = uk_rotating_on("[\"OU\", \"O\"]");
    let e = run_with(&legacy, &same_org, Some(&ssa()), OB_LEGACY_DN);
    assert!(e.verdict.is_accept(), "{:?}", e.verdict);
    assert_eq!(e.rotation, Some(RotationDecision::Accepted));
    let e = run_with(&legacy, &req, Some(&ssa()), OB_LEGACY_DN);
    assert_eq!(e.rotation, Some(RotationDecision::Denied));
}

#[test]
fn one_profile_rotates_both_certificate_generations_the_first_applicable_alternative_deciding() {
    let p = uk();
    assert_eq!(p.rotation_alternatives.len(), 2);
    // OBWAC / eIDAS: the first alternative (organizationIdentifier, O).
    let obwac = claiming("CN=new-cert-2026,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB");
    let e = run_with(&p, &obwac, Some(&ssa()), CERT_DN);
    assert!(e.verdict.is_accept(), "{:?}", e.verdict);
    assert_eq!(
        (e.rotation, e.rotation_alternative),
        (Some(RotationDecision::Accepted), Some(0))
    );
    // Another organisation under OBWAC: the first alternative decides, and refuses.
    let other_org = claiming("CN=x,2.5.4.97=PSDGB-FCA-999999,O=Example TPP Ltd,C=GB");
    let e = run_with(&p, &other_org, Some(&ssa()), CERT_DN);
    assert_eq!(
        (e.rotation, e.rotation_alternative),
        (Some(RotationDecision::Denied), Some(0))
    );
    let msg = &e.verdict.violations()[0].message;
    assert!(
        msg.contains("compared on organizationIdentifier, O"),
        "{msg}"
    );
    // Legacy Open Banking: no organizationIdentifier, so the second alternative (OU, O).
    let legacy = claiming("CN=new-software-cert,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB");
    let e = run_with(&p, &legacy, Some(&ssa()), OB_LEGACY_DN);
    assert!(e.verdict.is_accept(), "{:?}", e.verdict);
    assert_eq!(
        (e.rotation, e.rotation_alternative),
        (Some(RotationDecision::Accepted), Some(1))
    );
    let other_legacy = claiming("CN=other,OU=0015800001ZZZZZZZZ,O=OpenBanking,C=GB");
    let e = run_with(&p, &other_legacy, Some(&ssa()), OB_LEGACY_DN);
    assert_eq!(
        (e.rotation, e.rotation_alternative),
        (Some(RotationDecision::Denied), Some(1))
    );
    // A certificate carrying neither set cannot rotate at all.
    let bare_dn = "CN=2Xb8gyL7vsNMkS0yGJQ3rZ,C=GB";
    let bare = claiming("CN=other,C=GB");
    let e = run_with(&p, &bare, Some(&ssa()), bare_dn);
    assert_eq!(
        (e.rotation, e.rotation_alternative),
        (Some(RotationDecision::Denied), None)
    );
    let msg = &e.verdict.violations()[0].message;
    assert!(
        msg.contains(
            "carries none of the rotation attribute sets (organizationIdentifier, O; OU, O)"
        ),
        "{msg}"
    );
}

#[test]
fn rotation_alternatives_are_validated() {
    for (text, names) in [
        (
            "name = \"x\"\n[rotation]\nmode = \"same-organisation\"\nattributes = [[]]",
            "rotation.attributes",
        ),
        (
            "name = \"x\"\n[rotation]\nattributes = [[\"OU\"], []]",
            "rotation.attributes",
        ),
        (
            "name = \"x\"\n[rotation]\nattributes = [[\"OU\"], [\"bogus\"]]",
            "rotation.attributes",
        ),
        // Neither one set nor alternatives: TOML's message quotes the line.
        (
            "name = \"x\"\n[rotation]\nattributes = [[\"OU\"], \"O\"]",
            "attributes = [[\"OU\"], \"O\"]",
        ),
    ] {
        let e = Profile::from_toml_str(text).expect_err(text);
        assert!(e.to_string().contains(names), "{text}: {e}");
    }
    let one = Profile::from_toml_str("name = \"x\"\n[rotation]\nattributes = [\"OU\", \"O\"]");
    assert_eq!(
        one.unwrap().rotation_alternatives,
        [["2.5.4.11", "2.5.4.10"]]
    );
}

#[test]
fn profile_keys_are_validated() {
    for (text, key) in [
        (
            "name = \"x\"\n[rotation]\nmode = \"same-organisation\"\nattributes = []",
            "rotation.attributes",
        ),
        (
            "name = \"x\"\n[rotation]\nattributes = [\"bogus\"]",
            "rotation.attributes",
        ),
        (
            "name = \"x\"\n[software_statement]\nmax_age_seconds = -1",
            "software_statement.max_age_seconds",
        ),
        (
            "name = \"x\"\n[software_statement.roles]\nAISP = [\"admin\"]",
            "software_statement.roles",
        ),
        (
            "name = \"x\"\n[software_statement]\nkey_set_claims = []",
            "software_statement.key_set_claims",
        ),
    ] {
        match Profile::from_toml_str(text) {
            Err(dcrgate_policies::ProfileError::Invalid { key: k, .. }) => {
                assert_eq!(k, key, "{text}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn software_statement_times_are_bounded_at_their_edges() {
    let mut p = uk();
    p.software_statement.max_age_seconds = 7 * 86_400;
    let leeway = p.request.clock_leeway_seconds;
    let max_age = p.software_statement.max_age_seconds;
    let with_iat = |iat: i64| {
        edit(ssa(), |m| {
            m.insert("iat".into(), json!(iat));
        })
    };
    let time_rule = |s: &Value| {
        rules(&run_with(&p, &request(), Some(s), CERT_DN)).contains(&Rule::SoftwareStatementTime)
    };
    assert!(
        !time_rule(&with_iat(NOW + leeway)),
        "iat ahead by the leeway"
    );
    assert!(
        time_rule(&with_iat(NOW + leeway + 1)),
        "iat past the leeway"
    );
    assert!(
        !time_rule(&with_iat(NOW - max_age - leeway)),
        "as old as allowed"
    );
    assert!(time_rule(&with_iat(NOW - max_age - leeway - 1)), "older");
}

#[test]
fn a_request_key_set_url_equal_to_the_statements_is_no_conflict() {
    for same in [
        "https://keystore.directory.example/org/2Xb8.jwks",
        "https://KEYSTORE.directory.example/org/2Xb8.jwks",
        "https://keystore.directory.example:443/org/2Xb8.jwks",
    ] {
        let req = edit(request(), |m| {
            m.insert("jwks_uri".into(), json!(same));
        });
        let found = rules(&run(&req, &ssa()));
        assert!(!found.contains(&Rule::KeySetConflict), "{same}: {found:?}");
    }
}
