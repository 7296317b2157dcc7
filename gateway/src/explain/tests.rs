//! The explanation's unit tests: each check and rule on generated certificates and JWTs.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dcrgate_policies::{Profile, Rule};
use serde_json::Value;

use super::decode::decode_tolerant;
use super::*;
use crate::jose::jws::JwsError;
use dcrgate_certs::SubjectSpec;
use dcrgate_sandbox::pki::SandboxPki;
use dcrgate_sandbox::tpp::unsigned;
use serde_json::json;

const NOW: i64 = 1_750_000_000;

fn subject() -> SubjectSpec {
    SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-123456", "0015800001HQQrZAAX")
}

fn claims() -> Value {
    json!({
        "iss": "tpp-1",
        "aud": "https://bank.example/",
        "iat": NOW - 10,
        "exp": NOW + 3000,
        "client_id": "tpp-1",
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_dn": subject().to_rfc4514(),
        "id_token_signed_response_alg": "PS256",
        "request_object_signing_alg": "PS256",
        "redirect_uris": ["https://tpp.example/callback"],
        "jwks_uri": "https://keys.tpp.example/jwks",
        "org_name": "Example TPP Ltd",
        "scope": "openid accounts",
    })
}

fn jwt(claims: &Value) -> String {
    unsigned(
        &json!({"alg": "PS256", "kid": "k1", "typ": "JWT"}),
        claims,
        b"not a real signature",
    )
}

fn seed() -> Profile {
    Profile::from_toml_str(SEED_PROFILE).expect("seed profile")
}

fn inputs_for(jwt: &str, profile: Profile) -> Inputs {
    inputs_with_subject(jwt, profile, &subject())
}

fn inputs_with_subject(jwt: &str, profile: Profile, subject: &SubjectSpec) -> Inputs {
    let pki = SandboxPki::generate().expect("PKI");
    let cert = pki.transport_cert(subject).expect("certificate");
    Inputs::from_parts(
        jwt.as_bytes(),
        Path::new("request.jwt"),
        cert.cert_pem.as_bytes(),
        Path::new("tpp.pem"),
        profile,
        "test".into(),
    )
    .expect("inputs")
}

fn rule<'a>(report: &'a Report, id: &str) -> &'a RuleResult {
    report
        .rules
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no rule {id}"))
}

#[test]
fn compliant_request_is_accepted_and_ssa_rules_skip() {
    let report = explain(&inputs_for(&jwt(&claims()), seed()), NOW);
    assert!(report.passes_what_was_checked(), "{}", report.render_text());
    assert_eq!(report.rules.len(), Rule::ALL.len());
    assert_eq!(rule(&report, "ssa_time").result, Outcome::Skip);
    assert_eq!(rule(&report, "client_id").result, Outcome::Skip);
    assert_eq!(rule(&report, "aud").result, Outcome::Skip);
    assert_eq!(rule(&report, "scope").result, Outcome::Pass);
    assert_eq!(report.key_set_hosts.values, ["keys.tpp.example"]);
    assert_eq!(
        report.key_set_url.as_deref(),
        Some("https://keys.tpp.example/jwks")
    );
    assert_eq!(
        report.tls_client_auth_dn.canonical.as_deref(),
        Some(report.certificate.subject.as_str())
    );
    let text = report.render_text();
    assert!(
        text.contains("Request object signature: NOT CHECKED: no --jwks"),
        "{text}"
    );
    assert!(text.contains("Verdict: NOT CHECKED"), "{text}");
    assert!(!text.contains("Verdict: ACCEPT"), "{text}");
    assert!(text.contains("Now:      2025-06-15T15:06:40Z"), "{text}");
}

#[test]
fn header_rule_failure_still_explains_the_claims() {
    let token = unsigned(&json!({"alg": "none"}), &claims(), b"");
    let report = explain(&inputs_for(&token, seed()), NOW);
    assert!(!report.passes_what_was_checked());
    assert_eq!(report.findings[0].id, "jws_alg_none");
    assert_eq!(report.verdict.decided_by, Some("jws_alg_none"));
    assert_eq!(report.verdict.status, Some(400));
    // The claims were still evaluated: every rule passes or does not apply.
    assert!(report.rules.iter().all(|r| r.result != Outcome::Fail));
    assert!(report.render_text().contains("unsigned JWS (alg none)"));
}

#[test]
fn explicit_client_id_and_audience_are_checked() {
    let mut inputs = inputs_for(&jwt(&claims()), seed());
    inputs.client_id = Some("someone-else".into());
    inputs.audiences = vec!["https://other-bank.example/".into()];
    let report = explain(&inputs, NOW);
    assert_eq!(rule(&report, "client_id").result, Outcome::Fail);
    assert_eq!(rule(&report, "aud").result, Outcome::Fail);
    assert_eq!(report.client_id_source, "from --client-id");
}

#[test]
fn malformed_claims_skip_the_other_rules() {
    let mut c = claims();
    c["exp"] = json!("tomorrow");
    let report = explain(&inputs_for(&jwt(&c), seed()), NOW);
    assert_eq!(rule(&report, "claims_malformed").result, Outcome::Fail);
    assert_eq!(rule(&report, "scope").result, Outcome::Skip);
    assert_eq!(report.verdict.decided_by, Some("claims_malformed"));
    // The DN is still compared from the raw claim.
    assert!(report.dn_match.as_ref().is_some_and(|m| m.matched));
}

#[test]
fn unsigned_software_statement_is_decoded_and_refused_where_the_profile_says() {
    let ssa = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(
            json!({"iss": "dir", "iat": NOW, "software_id": "tpp-1",
                   "software_jwks_endpoint": "https://keys.tpp.example/jwks",
                   "software_redirect_uris": ["https://tpp.example/callback"],
                   "software_roles": ["AISP"]})
            .to_string()
        )
    );
    let mut c = claims();
    c["software_statement"] = json!(ssa);
    let report = explain(&inputs_for(&jwt(&c), seed()), NOW);
    let s = report.software_statement.as_ref().expect("decoded");
    assert!(!s.verified);
    assert_eq!(s.alg.as_deref(), Some("none"));
    assert_eq!(report.findings[0].id, "ssa_unsigned");
    assert_eq!(report.verdict.error, Some("invalid_software_statement"));
    assert_eq!(rule(&report, "ssa_roles").result, Outcome::Pass);
    assert_eq!(rule(&report, "jwks_uri").result, Outcome::Skip);
    assert!(report
        .render_text()
        .contains("Software statement signature: NOT CHECKED"));
}

#[test]
fn shadow_rules_are_recorded_not_enforced() {
    let shadow = || {
        Profile::from_toml_str("name = \"trial\"\n[shadow]\nrules = [\"scope\"]").expect("profile")
    };
    let mut c = claims();
    c["scope"] = json!("openid admin");
    let report = explain(&inputs_for(&jwt(&c), shadow()), NOW);
    assert!(report.passes_what_was_checked(), "{}", report.render_text());
    assert_eq!(report.verdict.would_reject, ["scope"]);
    let scope = rule(&report, "scope");
    assert_eq!((scope.result, scope.shadow), (Outcome::Fail, true));
    let text = report.render_text();
    assert!(text.contains("in shadow: recorded, not enforced"), "{text}");
    assert!(text.contains("Shadow rules would reject"), "{text}");
    // A violation outside the shadow stops the request, and (as at the gateway) the enforced
    // violations alone decide the answer: the shadowed scope is not the TPP's problem.
    c["exp"] = json!(NOW - 3600);
    let report = explain(&inputs_for(&jwt(&c), shadow()), NOW);
    assert!(!report.passes_what_was_checked());
    assert_eq!(report.verdict.decided_by, Some("exp"));
    let description = report.verdict.description.as_deref().unwrap_or_default();
    assert!(!description.contains("admin"), "{description}");
    assert!(report.verdict.would_reject.is_empty());
}

#[test]
fn tolerant_decoding_accepts_padding_and_the_standard_alphabet() {
    use base64::engine::general_purpose::STANDARD;
    let token = format!(
        "{}.{}.sig",
        STANDARD.encode(r#"{"alg":"PS256","kid":"k?>"}"#),
        STANDARD.encode(r#"{"a":"??>"}"#)
    );
    let t = decode_tolerant(token.as_bytes()).expect("decodes");
    assert_eq!(t.payload["a"], "??>");
    assert!(t.header.is_ok());
    assert!(matches!(
        decode_tolerant(b"only.two"),
        Err(JwsError::NotCompact)
    ));
    assert!(decode_tolerant(b"a.!!!.c").is_err());
}

#[test]
fn bad_inputs_name_the_file() {
    let pki = SandboxPki::generate().expect("PKI");
    let cert = pki.transport_cert(&subject()).expect("certificate");
    let token = jwt(&claims());
    let e = Inputs::from_parts(
        b"hello",
        Path::new("req.txt"),
        cert.cert_pem.as_bytes(),
        Path::new("c.pem"),
        seed(),
        String::new(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("req.txt: not a JWT"), "{e}");
    let e = Inputs::from_parts(
        token.as_bytes(),
        Path::new("req.jwt"),
        cert.key_pem.as_bytes(),
        Path::new("key.pem"),
        seed(),
        String::new(),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("key.pem: not a certificate"),
        "{e}"
    );
    let e = Inputs::from_parts(
        token.as_bytes(),
        Path::new("req.jwt"),
        b"junk",
        Path::new("c.der"),
        seed(),
        String::new(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("c.der: not an X.509"), "{e}");
    // DER works as well as PEM.
    assert!(Inputs::from_parts(
        token.as_bytes(),
        Path::new("req.jwt"),
        &cert.cert_der,
        Path::new("c.der"),
        seed(),
        String::new(),
    )
    .is_ok());
}

#[test]
fn json_report_has_the_rules_and_verdict() {
    let report = explain(&inputs_for(&jwt(&claims()), seed()), NOW);
    let v: Value = serde_json::from_str(&report.to_json().expect("json")).expect("parses");
    // Every check that could be made passes; the signature could not be checked.
    assert_eq!(v["verdict"]["outcome"], "not_checked");
    assert_eq!(v["rules"].as_array().map(Vec::len), Some(Rule::ALL.len()));
    assert_eq!(v["rules"][0]["id"], "claims_malformed");
    assert_eq!(v["rules"][0]["result"], "pass");
    assert_eq!(v["signatures"]["request_object"]["status"], "not_checked");
}

#[test]
fn rotation_names_the_alternative_that_decided() {
    let text = SEED_PROFILE.replace(
        "mode = \"deny\"\nattributes = [\"organizationIdentifier\", \"O\"]",
        "mode = \"same-organisation\"\nattributes = [[\"organizationIdentifier\", \"O\"], [\"OU\", \"O\"]]",
    );
    assert_ne!(
        text, SEED_PROFILE,
        "the seed profile's rotation section changed"
    );
    let profile = Profile::from_toml_str(&text).expect("profile");
    let mut c = claims();
    // A legacy Open Banking certificate rotating to another of the same organisation: OU, O.
    let legacy = SubjectSpec::ob_legacy("0015800001HQQrZAAX", "2Xb8gyL7vsNMkS0yGJQ3rZ");
    let next = SubjectSpec::ob_legacy("0015800001HQQrZAAX", "new-software-cert");
    c["tls_client_auth_dn"] = json!(next.to_rfc4514());
    let report = explain(
        &inputs_with_subject(&jwt(&c), profile.clone(), &legacy),
        NOW,
    );
    assert!(report.passes_what_was_checked(), "{}", report.render_text());
    let rotation = report.rotation.as_ref().expect("a rotation");
    assert_eq!(
        (rotation.decision, rotation.compared_on.as_deref()),
        ("accepted", Some("OU, O"))
    );
    assert!(report
        .render_text()
        .contains("Certificate rotation (same-organisation): accepted, compared on OU, O"));
    // An OBWAC certificate of another organisation: the first alternative decides, and refuses.
    let other = SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-999999", "0015800001HQQrZAAX");
    c["tls_client_auth_dn"] = json!(other.to_rfc4514());
    let report = explain(&inputs_for(&jwt(&c), profile), NOW);
    assert_eq!(report.verdict.decided_by, Some("dn_mismatch"));
    let rotation = report.rotation.as_ref().expect("a rotation");
    assert_eq!(
        (rotation.decision, rotation.compared_on.as_deref()),
        ("denied", Some("organizationIdentifier, O"))
    );
}
