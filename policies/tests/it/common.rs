//! What the policy tests share: the fixed clock, the deployment's facts (audience, ClientId,
//! key set hosts), the shipped profiles, a compliant update, and one way to evaluate a payload
//! against a presented certificate subject and an optional software statement.
#![allow(dead_code)]

use dcrgate_policies::dn::{Dn, ParseMode};
use dcrgate_policies::evaluate::{evaluate_json, Evaluation, RequestFacts};
use dcrgate_policies::{HostAllowlist, Profile, Rule, SoftwareStatement};
use serde_json::{json, Map, Value};

/// The tests' clock, seconds since the epoch.
pub const NOW: i64 = 1_800_000_000;
/// The audience the deployment accepts.
pub const AUDIENCE: &str = "https://bank.example/";
/// The ClientId of the path.
pub const CLIENT_ID: &str = "client-123";
/// The sample TPP's transport certificate subject (OBWAC shape), as the certificate has it.
pub const CERT_DN: &str = "CN=0015800001HQQrZAAX,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB";
/// The TPP key set hosts the deployment allows.
pub const TPP_HOSTS: &[&str] = &["*.tpp.example"];

/// The shipped seed profile.
pub fn seed() -> Profile {
    Profile::from_toml_str(include_str!("../../profiles/seed-update.toml")).unwrap()
}

/// The shipped UK Open Banking DCR 3.3 profile.
pub fn uk() -> Profile {
    Profile::from_toml_str(include_str!("../../profiles/uk-ob-dcr-3.3.toml")).unwrap()
}

/// A compliant update under the seed profile, its DN claim written as TPPs usually write it.
pub fn compliant() -> Value {
    json!({
        "iss": "0015800001HQQrZAAX",
        "aud": AUDIENCE,
        "iat": NOW - 10,
        "exp": NOW + 3000,
        "jti": "3f1c9b2e-5a7d-4c1e-9f2a-0b6d8e4c2a11",
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_dn": "CN=0015800001HQQrZAAX, organizationIdentifier=PSDGB-FCA-123456, O=Example TPP Ltd, C=GB",
        "id_token_signed_response_alg": "PS256",
        "request_object_signing_alg": "PS256",
        "redirect_uris": ["https://tpp.example/cb"],
        "jwks_uri": "https://keys.tpp.example/jwks.json",
        "org_name": "Example TPP Ltd",
        "scope": "openid accounts payments"
    })
}

/// `payload` changed by `f`.
pub fn edit(mut payload: Value, f: impl FnOnce(&mut Map<String, Value>)) -> Value {
    f(payload.as_object_mut().unwrap());
    payload
}

/// Evaluate `payload` under `profile`, the certificate presenting `cert_dn`, key sets allowed
/// from `hosts`, and `ssa` as the decoded software statement (when one is carried).
pub fn evaluate(
    profile: &Profile,
    payload: &Value,
    cert_dn: &str,
    hosts: &[&str],
    ssa: Option<&Value>,
) -> Evaluation {
    let presented = Dn::parse(cert_dn, ParseMode::Strict).unwrap();
    let audiences = vec![AUDIENCE.to_string()];
    let hosts = HostAllowlist::new(hosts).unwrap();
    let decoded = ssa.map(|s| SoftwareStatement::from_json(s.as_object().unwrap()).unwrap());
    let facts = RequestFacts {
        client_id: Some(CLIENT_ID),
        now: NOW,
        audiences: &audiences,
        key_hosts: &hosts,
        presented_dn: &presented,
        software_statement: decoded.as_ref(),
    };
    evaluate_json(profile, payload.as_object().unwrap(), &facts)
}

/// The rules an evaluation found violated, in order.
pub fn rules(e: &Evaluation) -> Vec<Rule> {
    e.verdict.violations().iter().map(|v| v.rule).collect()
}
