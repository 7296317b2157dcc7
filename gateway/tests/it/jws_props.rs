//! Property tests of compact JWS parsing (`parse_compact`, `parse_unsigned`): arbitrary input
//! never panics, the header rules hold for every spelling, and a compliant token round-trips its
//! payload. Also runs the fuzz targets' checks (`fuzz/src/lib.rs`) over every file under
//! `fuzz/corpus/` and `fuzz/regressions/`, so they are exercised on stable Rust without
//! cargo-fuzz.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dcrgate::jose::jws::{parse_compact, parse_unsigned, JwsError};
use proptest::prelude::*;
use serde_json::{Map, Value};

#[path = "../../../fuzz/src/lib.rs"]
mod fuzz_checks;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token(header: &Value, payload: &Value, signature: &[u8]) -> Vec<u8> {
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(payload.to_string()),
        b64(signature)
    )
    .into_bytes()
}

fn accepted() -> Vec<String> {
    vec!["PS256".into(), "ES256".into()]
}

/// Any JSON value, a few levels deep. Numbers are integers or multiples of 1/8, which print and
/// parse back exactly.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..5).prop_map(object),
        ]
    })
}

fn object(m: BTreeMap<String, Value>) -> Value {
    Value::Object(m.into_iter().collect::<Map<_, _>>())
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(".{0,12}", json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// One part of a three-part token: base64url-alphabet noise, base64url of arbitrary bytes, or
/// base64url of arbitrary JSON.
fn token_part() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,80}",
        prop::collection::vec(any::<u8>(), 0..64).prop_map(b64),
        json_value().prop_map(|v| b64(v.to_string())),
    ]
}

/// `none` with each letter's case chosen independently.
fn none_any_case() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), 4).prop_map(|upper| {
        "none"
            .chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

fn kid() -> impl Strategy<Value = String> {
    "[ -~]{1,40}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_compact(&body, &accepted());
        let _ = parse_unsigned(&body);
    }

    #[test]
    fn arbitrary_three_part_tokens_never_panic(
        h in token_part(),
        p in token_part(),
        s in token_part(),
    ) {
        let body = format!("{h}.{p}.{s}");
        let _ = parse_compact(body.as_bytes(), &accepted());
        let _ = parse_unsigned(body.as_bytes());
    }

    // Any `alg` string, e.g. one with no char boundary at byte 2 (the `jws_parse` fuzz target
    // found that panic: fuzz/regressions/jws_parse/alg-not-char-boundary).
    #[test]
    fn any_header_object_never_panics(
        alg in proptest::option::of(".{0,8}"),
        kid in proptest::option::of(kid()),
        extra in json_object(),
        payload in json_object(),
        signature in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut header = extra;
        if let Some(alg) = alg {
            header.insert("alg".into(), Value::String(alg));
        }
        if let Some(kid) = kid {
            header.insert("kid".into(), Value::String(kid));
        }
        let body = token(&Value::Object(header), &Value::Object(payload), &signature);
        let _ = parse_compact(&body, &accepted());
        let _ = parse_unsigned(&body);
    }

    #[test]
    fn alg_none_in_any_case_is_refused(
        alg in none_any_case(),
        kid in proptest::option::of(kid()),
        extra in json_object(),
        payload in json_object(),
        signature in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut header = extra;
        header.insert("alg".into(), Value::String(alg.clone()));
        if let Some(kid) = kid {
            header.insert("kid".into(), Value::String(kid));
        }
        let body = token(&Value::Object(header), &Value::Object(payload), &signature);
        // Refused even when the policy's list names it.
        let mut list = accepted();
        list.push(alg);
        prop_assert_eq!(parse_compact(&body, &list).unwrap_err(), JwsError::AlgNone);
        prop_assert_eq!(parse_compact(&body, &accepted()).unwrap_err(), JwsError::AlgNone);
    }

    #[test]
    fn headers_naming_keys_or_extensions_are_refused(
        alg in prop::sample::select(vec!["PS256", "ES256"]),
        kid in kid(),
        member in prop::sample::select(vec!["jku", "x5u", "jwk", "x5c", "crit", "b64"]),
        value in json_value(),
        payload in json_object(),
        signature in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut header = Map::new();
        header.insert("alg".into(), Value::String(alg.into()));
        header.insert("kid".into(), Value::String(kid));
        header.insert(member.into(), value);
        let body = token(&Value::Object(header), &Value::Object(payload), &signature);
        let expected = match member {
            "crit" => JwsError::Crit,
            "b64" => JwsError::Unencoded,
            key => JwsError::HeaderKey(key),
        };
        prop_assert_eq!(parse_compact(&body, &accepted()).unwrap_err(), expected);
    }

    #[test]
    fn a_ps256_token_round_trips_its_payload(
        kid in kid(),
        typ in proptest::option::of("[A-Za-z+/-]{1,20}"),
        payload in json_object(),
        signature in prop::collection::vec(any::<u8>(), 1..512),
    ) {
        let mut header = Map::new();
        header.insert("alg".into(), Value::String("PS256".into()));
        header.insert("kid".into(), Value::String(kid.clone()));
        if let Some(typ) = &typ {
            header.insert("typ".into(), Value::String(typ.clone()));
        }
        let body = token(&Value::Object(header), &Value::Object(payload.clone()), &signature);
        let jws = parse_compact(&body, &accepted()).unwrap();
        prop_assert_eq!(&jws.alg, "PS256");
        prop_assert_eq!(&jws.kid, &kid);
        prop_assert_eq!(&jws.typ, &typ);
        prop_assert_eq!(&jws.payload, &payload);
        prop_assert_eq!(&jws.signature, &signature);
        let last_dot = body.iter().rposition(|b| *b == b'.').unwrap();
        prop_assert_eq!(&jws.signing_input[..], &body[..last_dot]);
        // A signed token is never taken for an unsigned one.
        prop_assert_eq!(parse_unsigned(&body).unwrap(), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn an_unsigned_token_is_read_only_with_alg_exactly_none(
        alg in none_any_case(),
        payload in json_object(),
    ) {
        let header = serde_json::json!({ "alg": alg });
        let body = token(&header, &Value::Object(payload.clone()), b"");
        let got = parse_unsigned(&body).unwrap();
        if alg == "none" {
            prop_assert_eq!(got, Some(payload));
        } else {
            prop_assert_eq!(got, None);
        }
        prop_assert!(parse_compact(&body, &accepted()).is_err());
    }
}

/// Every file under `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` passes that
/// target's check. A failure names the file and the panic.
///
/// A regression input whose name starts with `open-` reproduces a known failure that is not
/// fixed yet: it must still fail. Once the code is fixed it passes, and this test asks for the
/// prefix to be dropped, which turns it into an ordinary regression input.
#[test]
fn fuzz_corpus_and_regressions_pass_the_fuzz_checks() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut ran = 0;
    let mut failures = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(targets) = std::fs::read_dir(fuzz.join(kind)) else {
            continue;
        };
        for target in targets {
            let target = target.unwrap().path();
            if !target.is_dir() {
                continue;
            }
            let name = target.file_name().unwrap().to_string_lossy().into_owned();
            let mut files: Vec<_> = std::fs::read_dir(&target)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for file in files {
                let data = std::fs::read(&file).unwrap();
                let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
                let shown = format!("{kind}/{name}/{file_name}");
                let open = kind == "regressions" && file_name.starts_with("open-");
                let outcome =
                    catch_unwind(AssertUnwindSafe(|| fuzz_checks::run_target(&name, &data)));
                match (outcome, open) {
                    (Ok(false), _) => {
                        failures.push(format!("{shown}: no fuzz target named {name:?}"))
                    }
                    (Ok(true), false) => ran += 1,
                    (Ok(true), true) => failures.push(format!(
                        "{shown}: passes now; rename it without the `open-` prefix (and re-enable \
                         any test marked #[ignore] for it)"
                    )),
                    (Err(_), true) => {
                        ran += 1;
                        eprintln!("{shown}: known open failure, still failing");
                    }
                    (Err(panic), false) => {
                        let msg = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failures.push(format!("{shown}: {msg}"));
                    }
                }
            }
        }
    }
    assert!(
        ran >= 4,
        "expected the seed corpus under fuzz/corpus, ran {ran} inputs"
    );
    assert!(
        failures.is_empty(),
        "{} fuzz input(s) fail their check:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
