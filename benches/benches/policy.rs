//! Criterion benchmarks of the policy core: DN parsing and matching, and a full policy
//! evaluation of a compliant request (what runs per request after the JWS is parsed).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dcrgate_benches::{payload, CERT_DN, CLAIM_DN};
use dcrgate_policies::dn::{match_dn, Dn, MatchMode, ParseMode};
use dcrgate_policies::evaluate::{evaluate_json, RequestFacts};
use dcrgate_policies::{HostAllowlist, Profile};

const PROFILE: &str = include_str!("../../policies/profiles/seed-update.toml");

fn dn(c: &mut Criterion) {
    c.bench_function("dn/parse_lenient", |b| {
        b.iter(|| Dn::parse(black_box(CLAIM_DN), ParseMode::Lenient))
    });
    let claim = Dn::parse(CLAIM_DN, ParseMode::Lenient).expect("claim DN");
    let cert = Dn::parse(CERT_DN, ParseMode::Strict).expect("cert DN");
    c.bench_function("dn/match_any_order", |b| {
        b.iter(|| {
            match_dn(
                black_box(&claim),
                black_box(&cert),
                &MatchMode::AnyOrder,
                &[],
            )
        })
    });
    c.bench_function("dn/match_strict_order", |b| {
        b.iter(|| {
            match_dn(
                black_box(&claim),
                black_box(&cert),
                &MatchMode::StrictOrder,
                &[],
            )
        })
    });
}

fn policy(c: &mut Criterion) {
    let profile = Profile::from_toml_str(PROFILE).expect("profile");
    let cert = Dn::parse(CERT_DN, ParseMode::Strict).expect("cert DN");
    let audiences = vec!["https://bank.example/".to_owned()];
    let hosts = HostAllowlist::new(&["keystore.openbanking.org.uk"]).expect("allowlist");
    let now = 1_800_000_000;
    let payload = payload(now);
    let facts = RequestFacts {
        client_id: Some("client-1"),
        now,
        audiences: &audiences,
        key_hosts: &hosts,
        presented_dn: &cert,
        software_statement: None,
    };
    assert!(evaluate_json(&profile, &payload, &facts)
        .verdict
        .is_accept());
    c.bench_function("policy/evaluate_compliant", |b| {
        b.iter(|| evaluate_json(black_box(&profile), black_box(&payload), &facts))
    });
}

criterion_group!(benches, dn, policy);
criterion_main!(benches);
