//! The names the policy core gives things outside it: labels that metrics, audit records and
//! error bodies carry, and the text of verdicts. A rename here would break dashboards and TPP
//! integrations, so each is pinned.

use dcrgate_policies::dn::attribute_name;
use dcrgate_policies::dn::{Dn, ParseMode};
use dcrgate_policies::profile::KeySetClaim;
use dcrgate_policies::{ErrorCode, RotationDecision, Rule, Verdict, Violation};

use crate::common::{compliant, edit, evaluate, seed, CERT_DN, TPP_HOSTS};

#[test]
fn metric_and_audit_labels_are_stable() {
    assert_eq!(RotationDecision::Accepted.as_str(), "accepted");
    assert_eq!(RotationDecision::Denied.as_str(), "denied");
    assert_eq!(
        KeySetClaim::SoftwareJwksEndpoint.name(),
        "software_jwks_endpoint"
    );
    assert_eq!(KeySetClaim::OrgJwksEndpoint.name(), "org_jwks_endpoint");
}

#[test]
fn error_codes_and_violations_print_as_the_wire_says() {
    assert_eq!(ErrorCode::AccessDenied.to_string(), "access_denied");
    assert_eq!(
        ErrorCode::InvalidRedirectUri.to_string(),
        ErrorCode::InvalidRedirectUri.as_str()
    );
    assert_eq!(Rule::DnMismatch.error_code(), ErrorCode::AccessDenied);
    let v = Violation::new(Rule::Scope, "scope admin not allowed");
    assert_eq!(
        v.to_string(),
        format!("{}: scope admin not allowed", Rule::Scope.id())
    );
}

#[test]
fn a_verdict_accepts_only_without_violations() {
    assert!(Verdict::from_violations(Vec::new()).is_accept());
    let refused = Verdict::from_violations(vec![Violation::new(Rule::Scope, "x")]);
    assert!(!refused.is_accept());
    let e = evaluate(&seed(), &compliant(), CERT_DN, TPP_HOSTS, None);
    assert!(e.verdict.is_accept(), "{:?}", e.verdict);
    let bad = edit(compliant(), |m| {
        m.insert("scope".into(), serde_json::json!("openid admin"));
    });
    assert!(!evaluate(&seed(), &bad, CERT_DN, TPP_HOSTS, None)
        .verdict
        .is_accept());
}

#[test]
fn known_attribute_types_have_their_descriptors() {
    assert_eq!(attribute_name("2.5.4.97"), Some("organizationIdentifier"));
    assert_eq!(attribute_name("2.5.4.3"), Some("CN"));
    assert_eq!(attribute_name("1.2.3.4.5"), None);
}

#[test]
fn only_the_empty_dn_is_empty() {
    assert!(Dn::parse("", ParseMode::Strict).unwrap().is_empty());
    assert!(!Dn::parse(CERT_DN, ParseMode::Strict).unwrap().is_empty());
}
