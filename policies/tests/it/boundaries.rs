//! The edges of every bound the policy core checks: each is accepted exactly at its limit and
//! refused one step past it, and each switch changes what it says it changes.

use std::net::IpAddr;

use dcrgate_policies::evaluate::normalise_uuid;
use dcrgate_policies::key_url::{check_key_set_url, KeyUrlError};
use dcrgate_policies::net::is_public;
use dcrgate_policies::uri::{check_uri, UriProblem, UriRules};
use dcrgate_policies::{HostAllowlist, Rule};
use serde_json::json;

use crate::common::{compliant, edit, evaluate, rules, seed, CERT_DN, NOW, TPP_HOSTS};

fn violated(profile: &dcrgate_policies::Profile, payload: &serde_json::Value) -> Vec<Rule> {
    rules(&evaluate(profile, payload, CERT_DN, TPP_HOSTS, None))
}

#[test]
fn iat_and_nbf_may_be_ahead_by_the_leeway_and_no_more() {
    let p = seed();
    let leeway = p.request.clock_leeway_seconds;
    for claim in ["iat", "nbf"] {
        let at = edit(compliant(), |m| {
            m.insert(claim.into(), json!(NOW + leeway));
        });
        assert!(
            !violated(&p, &at).contains(&Rule::IssuedAt),
            "{claim} at the limit"
        );
        let past = edit(compliant(), |m| {
            m.insert(claim.into(), json!(NOW + leeway + 1));
        });
        assert!(
            violated(&p, &past).contains(&Rule::IssuedAt),
            "{claim} past the limit"
        );
    }
}

#[test]
fn the_lifetime_may_reach_its_maximum_plus_leeway_and_no_more() {
    let p = seed();
    let limit = p.request.max_lifetime_seconds + p.request.clock_leeway_seconds;
    let with_lifetime = |lifetime: i64| {
        edit(compliant(), |m| {
            m.insert("iat".into(), json!(NOW - 10));
            m.insert("exp".into(), json!(NOW - 10 + lifetime));
        })
    };
    assert!(!violated(&p, &with_lifetime(limit)).contains(&Rule::Lifetime));
    assert!(violated(&p, &with_lifetime(limit + 1)).contains(&Rule::Lifetime));
    // The refusal names the limit it applied: the maximum plus the leeway.
    let e = evaluate(&p, &with_lifetime(limit + 1), CERT_DN, TPP_HOSTS, None);
    let message = &e.verdict.violations()[0].message;
    assert!(
        message.contains(&format!("maximum of {limit}s")),
        "{message}"
    );
}

#[test]
fn require_iat_decides_whether_a_missing_iat_is_refused() {
    let no_iat = edit(compliant(), |m| {
        m.remove("iat");
    });
    let mut p = seed();
    p.request.require_iat = true;
    assert!(violated(&p, &no_iat).contains(&Rule::IssuedAt));
    p.request.require_iat = false;
    assert!(!violated(&p, &no_iat).contains(&Rule::IssuedAt));
    // With iat present, the switch changes nothing.
    p.request.require_iat = true;
    assert!(!violated(&p, &compliant()).contains(&Rule::IssuedAt));
}

#[test]
fn a_jti_is_a_uuid_of_exactly_the_right_shape() {
    assert_eq!(
        normalise_uuid("3F1C9B2E-5A7D-4C1E-9F2A-0B6D8E4C2A11").as_deref(),
        Some("3f1c9b2e-5a7d-4c1e-9f2a-0b6d8e4c2a11")
    );
    for bad in [
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
        "3f1c9b2e-5a7d-4c1e-9f2a-0b6d8e4c2a1",
        "3f1c9b2e-5a7d-4c1e-9f2a-0b6d8e4c2a111",
        "3f1c9b2e5a7d-4c1e-9f2a-0b6d8e4c2a11-",
        "",
    ] {
        assert_eq!(normalise_uuid(bad), None, "{bad}");
    }
}

#[test]
fn a_key_set_url_with_any_credential_is_refused() {
    let hosts = HostAllowlist::new(&["keys.tpp.example"]).unwrap();
    for url in [
        "https://user@keys.tpp.example/jwks",
        "https://:pass@keys.tpp.example/jwks",
        "https://user:pass@keys.tpp.example/jwks",
    ] {
        assert_eq!(
            check_key_set_url(url, &hosts).err(),
            Some(KeyUrlError::Credentials),
            "{url}"
        );
    }
    assert!(check_key_set_url("https://keys.tpp.example/jwks", &hosts).is_ok());
}

#[test]
fn an_allowlist_is_empty_only_without_names_and_suffixes() {
    assert!(HostAllowlist::new::<&str>(&[]).unwrap().is_empty());
    assert!(!HostAllowlist::new(&["keys.tpp.example"])
        .unwrap()
        .is_empty());
    assert!(!HostAllowlist::new(&["*.tpp.example"]).unwrap().is_empty());
}

#[test]
fn public_means_routable_for_every_special_range_and_its_edges() {
    let public = |s: &str| is_public(s.parse::<IpAddr>().unwrap());
    for inward in [
        "0.1.2.3",
        "100.64.0.1",
        "100.127.255.255",
        "192.0.0.1",
        "198.18.0.1",
        "198.19.255.255",
        "240.0.0.1",
        "255.255.255.255",
        "::ffff:10.0.0.1",
        "::10.0.0.1",
        "64:ff9b::10.0.0.1",
        "2002:0a00:0001::1",
        "fc00::1",
        "fe80::1",
        "2001:db8::1",
    ] {
        assert!(!public(inward), "{inward}");
    }
    for outward in [
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.1",
        "192.1.0.1",
        "193.0.0.1",
        "198.17.255.255",
        "198.20.0.1",
        "223.255.255.254",
        "100.0.0.1",
        "99.64.0.1",
        "191.0.0.1",
        "197.18.0.1",
        "::ffff:8.8.8.8",
        "::8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:0808:0808::1",
        "2001:db9::1",
        "2001:4860::8888",
        "2a00:1450::1",
    ] {
        assert!(public(outward), "{outward}");
    }
}

#[test]
fn uri_rules_each_change_what_they_say() {
    let rules = |require_https| UriRules {
        require_https,
        allow_loopback: false,
        allow_fragment: false,
        max_length: 512,
    };
    assert_eq!(
        check_uri("http://tpp.example/cb", &rules(true)).err(),
        Some(UriProblem::NotHttps)
    );
    assert!(check_uri("http://tpp.example/cb", &rules(false)).is_ok());
    assert!(check_uri("https://tpp.example/cb", &rules(true)).is_ok());
    for userinfo in ["https://u:@tpp.example/cb", "https://:p@tpp.example/cb"] {
        assert_eq!(
            check_uri(userinfo, &rules(true)).err(),
            Some(UriProblem::Userinfo),
            "{userinfo}"
        );
    }
}
