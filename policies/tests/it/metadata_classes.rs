//! Hostile metadata, class by class: every URL-valued member checked whole (not a prefix), the
//! members OB DCR 3.3 constrains, inline key material, the SAN/DN mix, DN claims with invisible
//! characters, and which rules a profile may put in shadow.

use dcrgate_policies::evaluate::Evaluation;
use dcrgate_policies::{ErrorCode, Profile, ProfileError, Rule};
use serde_json::{json, Map, Value};

use crate::common::{edit, evaluate, seed, CERT_DN, TPP_HOSTS};

const CLAIM_DN: &str =
    "CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB";

/// The shared compliant update, without a `jti` and with the DN claim written compactly.
fn compliant() -> Value {
    edit(crate::common::compliant(), |m| {
        m.remove("jti");
        m.insert("tls_client_auth_dn".into(), json!(CLAIM_DN));
    })
}

fn run_with(profile: &Profile, payload: &Value) -> Evaluation {
    evaluate(profile, payload, CERT_DN, TPP_HOSTS, None)
}

fn run(payload: &Value) -> Evaluation {
    run_with(&seed(), payload)
}

fn with(f: impl FnOnce(&mut Map<String, Value>)) -> Value {
    edit(compliant(), f)
}

/// The only rule broken, and its message.
fn only(e: &Evaluation) -> (Rule, String) {
    let v = e.verdict.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    (v[0].rule, v[0].message.clone())
}

#[test]
fn the_fixture_is_compliant() {
    assert!(run(&compliant()).verdict.is_accept());
}

#[test]
fn redirect_uris_are_checked_whole_not_on_a_prefix() {
    let pad = "a".repeat(200);
    let bad = [
        format!("https://{pad}@127.0.0.1/cb"),
        format!("https://{pad}@localhost/cb"),
        format!("https://{pad}@evil.example/cb"),
        format!("https://tpp.example/{pad}#fragment"),
        format!("https://tpp.example/{pad}\r\nX-Injected: 1"),
        "https://[::ffff:127.0.0.1]/cb".to_string(),
        "https://[::127.0.0.1]/cb".to_string(),
        "https://[::ffff:10.0.0.1]/cb".to_string(),
        "https://10.0.0.1/cb".to_string(),
        "https://192.168.1.1/cb".to_string(),
        "https://169.254.169.254/cb".to_string(),
        "https://2130706433/cb".to_string(),
        "https://tpp.example/c\tb".to_string(),
        "https://tpp.example\\@evil.example/cb".to_string(),
        "https://user@tpp.example/cb".to_string(),
        format!("https://tpp.example/{}", "a".repeat(2048)),
    ];
    for uri in &bad {
        let e = run(&with(|m| {
            m.insert(
                "redirect_uris".into(),
                json!(["https://tpp.example/ok", uri]),
            );
        }));
        let (rule, message) = only(&e);
        assert_eq!(rule, Rule::RedirectUris, "{uri}");
        assert_eq!(rule.error_code(), ErrorCode::InvalidRedirectUri);
        assert!(
            message.len() < 600,
            "the message is bounded: {}",
            message.len()
        );
    }
    // The bound is configurable, and exact.
    let text = include_str!("../../profiles/seed-update.toml").replace(
        "max_length = 2048\n\n[url_claims]",
        "max_length = 100\n\n[url_claims]",
    );
    let p = Profile::from_toml_str(&text).unwrap();
    assert_eq!(p.redirect_uris.max_length, 100);
    let at = |n: usize| format!("https://tpp.example/{}", "a".repeat(n - 20));
    assert!(run_with(
        &p,
        &with(|m| {
            m.insert("redirect_uris".into(), json!([at(100)]));
        })
    )
    .verdict
    .is_accept());
    assert_eq!(
        only(&run_with(
            &p,
            &with(|m| {
                m.insert("redirect_uris".into(), json!([at(101)]));
            })
        ))
        .0,
        Rule::RedirectUris
    );
}

#[test]
fn every_url_valued_member_is_vetted_in_every_language() {
    let hostile = [
        "http://tpp.example/x",
        "https://user@tpp.example/x",
        "https://127.0.0.1/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://10.1.2.3/x",
        "https://localhost/x",
        "https://tpp.example/x#f",
        "https://tpp.example/\nx",
    ];
    for claim in [
        "logo_uri",
        "client_uri",
        "policy_uri",
        "tos_uri",
        "initiate_login_uri",
    ] {
        for name in [
            claim.to_string(),
            format!("{claim}#fr"),
            format!("{claim}#ja-Jpan-JP"),
        ] {
            let ok = run(&with(|m| {
                m.insert(name.clone(), json!("https://tpp.example/x"));
            }));
            assert!(ok.verdict.is_accept(), "{name}: {:?}", ok.verdict);
            for bad in hostile {
                let e = run(&with(|m| {
                    m.insert(name.clone(), json!(bad));
                }));
                let (rule, message) = only(&e);
                assert_eq!(rule, Rule::MetadataUri, "{name} {bad}");
                assert!(message.contains(&name), "{message}");
            }
            let e = run(&with(|m| {
                m.insert(name.clone(), json!(["https://tpp.example/x"]));
            }));
            assert_eq!(only(&e).0, Rule::ClaimsMalformed, "{name} as an array");
        }
    }
    // Members the registry itself would fetch are refused by default, and vetted when allowed.
    for (claim, value) in [
        ("request_uris", json!(["https://tpp.example/r"])),
        ("sector_identifier_uri", json!("https://tpp.example/s")),
    ] {
        let e = run(&with(|m| {
            m.insert(claim.into(), value.clone());
        }));
        let (rule, message) = only(&e);
        assert_eq!(rule, Rule::MetadataUri);
        assert!(message.contains("not accepted"), "{message}");
        let text = include_str!("../../profiles/seed-update.toml").replace(
            &format!("{claim} = \"refuse\""),
            &format!("{claim} = \"allow\""),
        );
        let allow = Profile::from_toml_str(&text).unwrap();
        assert!(run_with(
            &allow,
            &with(|m| {
                m.insert(claim.into(), value.clone());
            })
        )
        .verdict
        .is_accept());
        let bad = if claim == "request_uris" {
            json!(["https://tpp.example/r", "https://169.254.169.254/r"])
        } else {
            json!("https://169.254.169.254/s")
        };
        assert_eq!(
            only(&run_with(
                &allow,
                &with(|m| {
                    m.insert(claim.into(), bad);
                })
            ))
            .0,
            Rule::MetadataUri
        );
    }
    // A profile can refuse a member outright.
    let text = include_str!("../../profiles/seed-update.toml")
        .replace("logo_uri = \"allow\"", "logo_uri = \"refuse\"");
    let refuse = Profile::from_toml_str(&text).unwrap();
    assert_eq!(
        only(&run_with(
            &refuse,
            &with(|m| {
                m.insert("logo_uri#de".into(), json!("https://tpp.example/logo.png"));
            })
        ))
        .0,
        Rule::MetadataUri
    );
}

#[test]
fn key_set_urls_with_characters_a_parser_would_repair_are_refused() {
    for bad in [
        "https://keys.tpp.example/jw\tks.json",
        "https://keys.tpp.example/jw\nks.json",
        "https://keys.tpp.example\\@evil.example/",
        "https://u@keys.tpp.example/jwks.json",
    ] {
        let e = run(&with(|m| {
            m.insert("jwks_uri".into(), json!(bad));
        }));
        assert_eq!(only(&e).0, Rule::KeySetUrl, "{bad:?}");
        assert!(e.key_set_url.is_none());
    }
}

#[test]
fn inline_keys_and_the_san_mix_are_refused() {
    let e = run(&with(|m| {
        m.insert("jwks".into(), json!({"keys": []}));
    }));
    assert_eq!(only(&e).0, Rule::InlineJwks);
    let e = run(&with(|m| {
        m.remove("jwks_uri");
        m.insert("jwks".into(), json!({"keys": []}));
    }));
    let rules = crate::common::rules(&e);
    assert!(rules.contains(&Rule::InlineJwks) && rules.contains(&Rule::KeySetUrl));
    for san in [
        "tls_client_auth_san_dns",
        "tls_client_auth_san_uri",
        "tls_client_auth_san_ip",
        "tls_client_auth_san_email",
        "tls_client_auth_san_other",
    ] {
        let e = run(&with(|m| {
            m.insert(san.into(), json!("tpp.example"));
        }));
        let (rule, message) = only(&e);
        assert_eq!(rule, Rule::TlsClientAuthSan);
        assert!(message.contains(san), "{message}");
    }
    // Explicit nulls are absent members.
    assert!(run(&with(|m| {
        m.insert("jwks".into(), Value::Null);
        m.insert("tls_client_auth_san_dns".into(), Value::Null);
    }))
    .verdict
    .is_accept());
}

#[test]
fn ob_constrained_metadata_is_checked_where_present() {
    for profile in [
        seed(),
        Profile::from_toml_str(include_str!("../../profiles/uk-ob-dcr-3.3.toml")).unwrap(),
    ] {
        let c = &profile.claims;
        assert_eq!(c.response_types, ["code", "code id_token"]);
        assert!(c.grant_types.contains(&"client_credentials".to_string()));
    }
    let cases: Vec<(&str, Value, Option<Rule>)> = vec![
        ("response_types", json!(["code"]), None),
        ("response_types", json!(["code id_token"]), None),
        ("response_types", json!(["id_token  code"]), None),
        (
            "response_types",
            json!(["id_token token"]),
            Some(Rule::ResponseTypes),
        ),
        (
            "response_types",
            json!(["code id_token token"]),
            Some(Rule::ResponseTypes),
        ),
        (
            "response_types",
            json!(["token"]),
            Some(Rule::ResponseTypes),
        ),
        ("response_types", json!([]), Some(Rule::ResponseTypes)),
        ("response_types", json!("code"), Some(Rule::ClaimsMalformed)),
        (
            "grant_types",
            json!(["authorization_code", "client_credentials", "refresh_token"]),
            None,
        ),
        ("grant_types", json!(["implicit"]), Some(Rule::GrantTypes)),
        ("grant_types", json!(["password"]), Some(Rule::GrantTypes)),
        ("grant_types", json!([]), Some(Rule::GrantTypes)),
        ("application_type", json!("web"), None),
        ("application_type", json!("mobile"), None),
        (
            "application_type",
            json!("desktop"),
            Some(Rule::ApplicationType),
        ),
        (
            "application_type",
            json!("WEB"),
            Some(Rule::ApplicationType),
        ),
        ("token_endpoint_auth_signing_alg", json!("PS256"), None),
        (
            "token_endpoint_auth_signing_alg",
            json!("RS256"),
            Some(Rule::TokenEndpointAuthSigningAlg),
        ),
        (
            "token_endpoint_auth_signing_alg",
            json!("none"),
            Some(Rule::TokenEndpointAuthSigningAlg),
        ),
    ];
    for (claim, value, want) in cases {
        let e = run(&with(|m| {
            m.insert(claim.into(), value.clone());
        }));
        match want {
            None => assert!(e.verdict.is_accept(), "{claim}={value}: {:?}", e.verdict),
            Some(rule) => {
                assert_eq!(only(&e).0, rule, "{claim}={value}");
                assert_eq!(rule.error_code(), ErrorCode::InvalidClientMetadata);
            }
        }
    }
}

#[test]
fn dn_claims_with_invisible_characters_are_refused_naming_the_position() {
    let base: Vec<char> = CLAIM_DN.chars().collect();
    for ch in [
        '\u{0}', '\u{1}', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}', '\u{200b}',
        '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202e}', '\u{2066}',
        '\u{2069}', '\u{feff}', '\u{61c}', '\u{ad}',
    ] {
        for at in [0, 3, base.len()] {
            let mut s = base.clone();
            s.insert(at, ch);
            let dn: String = s.into_iter().collect();
            let e = run(&with(|m| {
                m.insert("tls_client_auth_dn".into(), json!(dn));
            }));
            let (rule, message) = only(&e);
            assert_eq!(rule, Rule::DnClaim, "U+{:04X} at {at}", u32::from(ch));
            assert_eq!(rule.error_code(), ErrorCode::InvalidClientMetadata);
            assert!(
                message.contains(&format!("U+{:04X}", u32::from(ch)))
                    && message.contains(&format!("at character {at}")),
                "{message}"
            );
        }
    }
    // Ordinary non-ASCII is fine.
    let e = run(&with(|m| {
        m.insert(
            "tls_client_auth_dn".into(),
            json!("CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB"),
        );
    }));
    assert!(e.verdict.is_accept());
}

#[test]
fn binding_rules_can_never_be_shadowed() {
    let never: Vec<Rule> = Rule::ALL
        .iter()
        .copied()
        .filter(|r| !r.shadowable())
        .collect();
    for rule in &never {
        let text = include_str!("../../profiles/seed-update.toml")
            .replace("rules = []", &format!("rules = [\"{}\"]", rule.id()));
        assert!(
            matches!(
                Profile::from_toml_str(&text),
                Err(ProfileError::Invalid {
                    key: "shadow.rules",
                    ..
                })
            ),
            "{}",
            rule.id()
        );
    }
    let text = include_str!("../../profiles/seed-update.toml").replace("all = false", "all = true");
    let all = Profile::from_toml_str(&text).unwrap();
    for rule in Rule::ALL {
        assert_eq!(all.is_shadowed(rule), rule.shadowable(), "{}", rule.id());
    }
    // Even a hand-built profile cannot shadow them.
    let mut forced = seed();
    forced.shadow = Rule::ALL.to_vec();
    for rule in &never {
        assert!(!forced.is_shadowed(*rule), "{}", rule.id());
    }
}
