//! The checks behind dcrgate's fuzz targets, one function per target.
//!
//! Each function takes the raw fuzz input, feeds it to the parser or policy engine under test and
//! panics only when an invariant breaks (or the code under test panics itself), which is how
//! libFuzzer learns of a failure. The same functions run on stable Rust in `cargo test`: the
//! gateway's `tests/jws_props.rs` includes this file and feeds it every file under
//! `fuzz/corpus/` and `fuzz/regressions/`. Keep it to the crates both places have (`dcrgate`,
//! `dcrgate_policies`, `serde_json`).

use std::sync::OnceLock;

use dcrgate_jose::jwk::{JwkSet, MAX_KEYS};
use dcrgate_jose::jws::{parse_compact, parse_unsigned};
use dcrgate_policies::dn::{match_dn, Dn, DnError, MatchMode, ParseMode};
use dcrgate_policies::evaluate::{evaluate_json, RequestFacts};
use dcrgate_policies::{HostAllowlist, Profile, SoftwareStatement};
use serde_json::Value;

/// The algorithms the `jws_parse` target accepts (those of the shipped UK profile).
pub const JWS_ALGS: [&str; 2] = ["PS256", "ES256"];

/// The longest DN string `Dn::parse` accepts (its documented 8 KiB limit).
const MAX_DN_STRING: usize = 8 * 1024;

/// `jws_parse`: `parse_compact` and `parse_unsigned` never panic, and what they accept obeys
/// the header rules.
pub fn jws_parse(data: &[u8]) {
    let accepted: Vec<String> = JWS_ALGS.iter().map(|a| (*a).to_string()).collect();
    if let Ok(jws) = parse_compact(data, &accepted) {
        assert!(
            accepted.contains(&jws.alg),
            "parse_compact accepted alg {:?} outside the accepted list",
            jws.alg
        );
        assert!(!jws.kid.is_empty(), "parse_compact accepted an empty kid");
        assert!(
            !jws.signature.is_empty(),
            "parse_compact accepted an empty signature"
        );
        let body = data.trim_ascii();
        assert!(
            body.starts_with(&jws.signing_input)
                && body.get(jws.signing_input.len()) == Some(&b'.'),
            "the signing input is not the first two parts of the token"
        );
    }
    if let Ok(Some(payload)) = parse_unsigned(data) {
        // An unsigned token must never also pass as a signed one.
        assert!(
            parse_compact(data, &accepted).is_err(),
            "a token parse_unsigned accepted ({} claims) also passed parse_compact",
            payload.len()
        );
    }
}

/// `dn_parse`: both string modes and the DER reader never panic, and every DN they return
/// survives its canonical RFC 4514 form: `to_rfc4514` re-parses in strict mode to a DN that
/// matches under `StrictOrder`, and printing that again gives the same string.
pub fn dn_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for mode in [ParseMode::Strict, ParseMode::Lenient] {
            if let Ok(dn) = Dn::parse(text, mode) {
                check_canonical_round_trip(&dn, || format!("Dn::parse({text:?}, {mode:?})"));
            }
        }
    }
    if let Ok(dn) = Dn::from_der_name(data) {
        check_canonical_round_trip(&dn, || format!("Dn::from_der_name({})", hex(data)));
    }
}

/// `origin` describes the input, for the panic message; it is only built on failure.
fn check_canonical_round_trip(dn: &Dn, origin: impl Fn() -> String) {
    let canonical = dn.to_rfc4514();
    let reparsed = match Dn::parse(&canonical, ParseMode::Strict) {
        Ok(d) => d,
        // A DN can print longer than the string limit (escapes, `#hex` values); that limit is
        // documented, not a round-trip failure.
        Err(DnError::TooLong { .. }) if canonical.len() > MAX_DN_STRING => return,
        Err(e) => panic!(
            "{}: its canonical form {canonical:?} does not parse: {e}",
            origin()
        ),
    };
    if let Err(m) = match_dn(dn, &reparsed, &MatchMode::StrictOrder, &[]) {
        panic!(
            "{}: its canonical form {canonical:?} names another DN: {m}",
            origin()
        );
    }
    let again = reparsed.to_rfc4514();
    if canonical != again {
        panic!(
            "{}: the canonical form is not stable: {canonical:?} prints again as {again:?}",
            origin()
        );
    }
}

/// `policy_eval`: the input is a JSON payload, then a NUL byte, then the presented
/// certificate's DN as a string (a DN that does not parse is replaced by a fixed one, so the
/// payload is still evaluated). The payload is evaluated against the seed and UK profiles,
/// without a software statement and with one decoded from the payload itself. Must never
/// panic.
pub fn policy_eval(data: &[u8]) {
    let (json, dn) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let presented = std::str::from_utf8(dn)
        .ok()
        .and_then(|s| Dn::parse(s, ParseMode::Lenient).ok())
        .unwrap_or_else(|| fixed().cert_dn.clone());
    let ssa = SoftwareStatement::from_json(&payload).ok();
    let f = fixed();
    for profile in [&f.seed, &f.uk] {
        for software_statement in [None, ssa.as_ref()] {
            let facts = RequestFacts {
                client_id: Some("0015800001HQQrZAAX"),
                now: 1_800_000_000,
                audiences: &f.audiences,
                key_hosts: &f.hosts,
                presented_dn: &presented,
                software_statement,
            };
            let e = evaluate_json(profile, &payload, &facts);
            // Reading the verdict must not panic either.
            let _ = e.verdict.is_accept();
            let _ = e.verdict.violations().len();
        }
    }
}

struct Fixed {
    seed: Profile,
    uk: Profile,
    audiences: Vec<String>,
    hosts: HostAllowlist,
    cert_dn: Dn,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        seed: Profile::from_toml_str(include_str!("../../policies/profiles/seed-update.toml"))
            .expect("the seed profile parses"),
        uk: Profile::from_toml_str(include_str!("../../policies/profiles/uk-ob-dcr-3.3.toml"))
            .expect("the UK profile parses"),
        audiences: vec!["https://bank.example/".to_string()],
        hosts: HostAllowlist::new(&["*.tpp.example", "keystore.openbankingtest.org.uk"])
            .expect("the host allowlist parses"),
        cert_dn: Dn::parse(
            "CN=0015800001HQQrZAAX,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB",
            ParseMode::Strict,
        )
        .expect("the fixed DN parses"),
    })
}

/// `jwk_set`: `JwkSet::parse` never panics, and a set it returns holds at most `MAX_KEYS`
/// members.
pub fn jwk_set(data: &[u8]) {
    if let Ok(set) = JwkSet::parse(data) {
        assert!(
            set.len() + set.skipped() <= MAX_KEYS,
            "a key set with {} usable and {} skipped members was accepted",
            set.len(),
            set.skipped()
        );
    }
}

/// Runs the check named by a target directory (`jws_parse`, `dn_parse`, `policy_eval`,
/// `jwk_set`); `false` for an unknown name.
pub fn run_target(target: &str, data: &[u8]) -> bool {
    match target {
        "jws_parse" => jws_parse(data),
        "dn_parse" => dn_parse(data),
        "policy_eval" => policy_eval(data),
        "jwk_set" => jwk_set(data),
        _ => return false,
    }
    true
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}
