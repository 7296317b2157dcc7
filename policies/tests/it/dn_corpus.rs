//! The DN corpus (`tests/data/dn-corpus`): real certificates, the DN strings OpenSSL, Java, Go and
//! Python print for them, and labelled near misses and variants. Every check below collects all
//! failures and reports them together.
//!
//! The gateway's verdict for a rendering is: parse (lenient unless said otherwise), then
//! `match_dn(.., StrictOrder)`. That is the corpus's own definition of equality (RFC 4514 order
//! or exactly reversed). Under `AnyOrder` a pure RDN permutation matches too; the exceptions that
//! follow from that are listed explicitly below (`ANY_ORDER_ACCEPTS_*`).

use std::collections::BTreeMap;

use base64::Engine;
use dcrgate_policies::dn::{match_dn, Dn, MatchMode, ParseMode};
use serde::Deserialize;

const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dn-corpus");

#[derive(Deserialize)]
struct Corpus {
    entries: Vec<Entry>,
    near_misses: Vec<Variant>,
    case_variants: Vec<Variant>,
    equal_variants: Vec<Variant>,
}

#[derive(Deserialize)]
struct Entry {
    cert: String,
    subject_der_b64: String,
    subject_rdns_asn1_order: Vec<Vec<AsnAva>>,
    reference_rfc4514: String,
    renderings: BTreeMap<String, String>,
    rendering_labels: BTreeMap<String, Labels>,
}

#[derive(Deserialize)]
struct AsnAva {
    oid: String,
    value: String,
}

#[derive(Deserialize)]
struct Labels {
    strict_rfc4514: String,
    lenient: String,
}

#[derive(Deserialize)]
struct Variant {
    cert: String,
    dn: String,
    kind: String,
    expected: String,
    strict_rfc4514: String,
    lenient: String,
}

/// Renderings that are `not_equal` under the corpus's order rule but match under `AnyOrder`,
/// because they only move RDNs: Go's `Subject.String()` moves 2.5.4.97 and emailAddress to the
/// end and serialNumber to the front without dropping, splitting or merging anything. (For 08
/// it splits CN+UID and for 12 it merges the OUs, so those stay unequal in every mode.)
const ANY_ORDER_ACCEPTS_RENDERINGS: &[(&str, &str)] = &[
    ("certs/02-obwac-orgid-utf8.pem", "go_subject_string"),
    ("certs/03-obwac-orgid-printable.pem", "go_subject_string"),
    ("certs/04-revolut-style-orgid-last.pem", "go_subject_string"),
    ("certs/10-serialnumber-email.pem", "go_subject_string"),
];

/// Near-miss kinds that are pure RDN permutations, so `AnyOrder` matches them by design.
const ANY_ORDER_ACCEPTS_KINDS: &[&str] = &["rdn_permuted"];

fn load() -> Corpus {
    let text = std::fs::read_to_string(format!("{CORPUS_DIR}/corpus.json"))
        .unwrap_or_else(|e| panic!("reading corpus.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing corpus.json: {e}"))
}

/// A minimal PEM reader: the base64 between the first BEGIN and END lines.
fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_else(|e| panic!("bad PEM base64: {e}"))
}

fn cert_dn(cert: &str) -> Dn {
    let pem = std::fs::read_to_string(format!("{CORPUS_DIR}/{cert}"))
        .unwrap_or_else(|e| panic!("reading {cert}: {e}"));
    Dn::from_certificate_der(&pem_to_der(&pem)).unwrap_or_else(|e| panic!("{cert}: {e}"))
}

fn certs(corpus: &Corpus) -> BTreeMap<String, Dn> {
    corpus
        .entries
        .iter()
        .map(|e| (e.cert.clone(), cert_dn(&e.cert)))
        .collect()
}

fn mode_of(lenient: bool) -> ParseMode {
    if lenient {
        ParseMode::Lenient
    } else {
        ParseMode::Strict
    }
}

/// Outcome of parsing `dn` in a mode and matching it against `cert`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    ParseError,
    Equal,
    NotEqual,
}

fn outcome(dn: &str, cert: &Dn, mode: ParseMode, match_mode: &MatchMode) -> Outcome {
    match Dn::parse(dn, mode) {
        Err(_) => Outcome::ParseError,
        Ok(claimed) => match match_dn(&claimed, cert, match_mode, &[]) {
            Ok(()) => Outcome::Equal,
            Err(_) => Outcome::NotEqual,
        },
    }
}

/// What a label says: `equal_*`, `not_equal`, or `parse_error: …` / `not_parsed: …`.
fn expected(label: &str) -> Outcome {
    if label.starts_with("equal") {
        Outcome::Equal
    } else if label == "not_equal" {
        Outcome::NotEqual
    } else if label.starts_with("parse_error") || label.starts_with("not_parsed") {
        Outcome::ParseError
    } else {
        panic!("unknown label {label:?}")
    }
}

/// Whether RDN `i` of `a` and RDN `j` of `b` match.
fn rdn_matches(a: &Dn, i: usize, b: &Dn, j: usize) -> bool {
    let one = |dn: &Dn, k: usize| {
        Dn::parse(&dn.rdns()[k].to_string(), ParseMode::Strict)
            .unwrap_or_else(|e| panic!("re-parsing RDN {k} of {dn}: {e}"))
    };
    match_dn(&one(a, i), &one(b, j), &MatchMode::AnyOrder, &[]).is_ok()
}

fn report(what: &str, checks: usize, failures: &[String]) {
    eprintln!("{what}: {checks} checks, {} failures", failures.len());
    assert!(
        failures.is_empty(),
        "{what}: {} of {checks} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_shape() {
    let c = load();
    assert_eq!(c.entries.len(), 13);
    assert_eq!(c.near_misses.len(), 122);
    assert_eq!(c.case_variants.len(), 11);
    assert_eq!(c.equal_variants.len(), 22);
    let renderings: usize = c.entries.iter().map(|e| e.renderings.len()).sum();
    assert_eq!(renderings, 13 * 11);
}

#[test]
fn certificates_subjects_and_reference_strings() {
    let c = load();
    let mut checks = 0;
    let mut fail = Vec::new();
    for e in &c.entries {
        let from_cert = cert_dn(&e.cert);
        let der = base64::engine::general_purpose::STANDARD
            .decode(&e.subject_der_b64)
            .unwrap_or_else(|err| panic!("{}: {err}", e.cert));
        checks += 1;
        match Dn::from_der_name(&der) {
            Ok(dn) if dn == from_cert => {}
            other => fail.push(format!(
                "{}: subject_der_b64 gives {other:?}, cert gives {from_cert}",
                e.cert
            )),
        }

        // The decoded RDNs are the listed ones, reversed into RFC 4514 order.
        checks += 1;
        let listed: Vec<Vec<(String, String)>> = e
            .subject_rdns_asn1_order
            .iter()
            .rev()
            .map(|rdn| {
                let mut v: Vec<_> = rdn
                    .iter()
                    .map(|a| (a.oid.clone(), a.value.clone()))
                    .collect();
                v.sort();
                v
            })
            .collect();
        let decoded: Vec<Vec<(String, String)>> = from_cert
            .rdns()
            .iter()
            .map(|rdn| {
                let mut v: Vec<_> = rdn
                    .avas()
                    .iter()
                    .map(|a| (a.oid().to_string(), a.value().to_string()))
                    .collect();
                v.sort();
                v
            })
            .collect();
        if listed != decoded {
            fail.push(format!(
                "{}: decoded {decoded:?}, corpus lists {listed:?}",
                e.cert
            ));
        }

        // Canonical string: equals the reference, parses back (both modes) to the same DN.
        let canonical = from_cert.to_rfc4514();
        checks += 1;
        if canonical != e.reference_rfc4514 {
            fail.push(format!(
                "{}: to_rfc4514 {canonical:?} != reference {:?}",
                e.cert, e.reference_rfc4514
            ));
        }
        for lenient in [false, true] {
            checks += 2;
            match Dn::parse(&canonical, mode_of(lenient)) {
                Ok(dn) if dn == from_cert => {}
                other => fail.push(format!(
                    "{}: to_rfc4514 {canonical:?} (lenient={lenient}) parses to {other:?}",
                    e.cert
                )),
            }
            match Dn::parse(&e.reference_rfc4514, mode_of(lenient)) {
                Ok(dn) if dn == from_cert => {}
                other => fail.push(format!(
                    "{}: reference (lenient={lenient}) parses to {other:?}",
                    e.cert
                )),
            }
        }
    }
    report("certificates", checks, &fail);
}

#[test]
fn renderings_match_their_labels() {
    let c = load();
    let mut checks = 0;
    let mut fail = Vec::new();
    let mut any_order_extra = Vec::new();
    for e in &c.entries {
        let cert = cert_dn(&e.cert);
        for (tool, rendering) in &e.renderings {
            let labels = &e.rendering_labels[tool];
            for (lenient, label) in [(false, &labels.strict_rfc4514), (true, &labels.lenient)] {
                checks += 1;
                let want = expected(label);
                let got = outcome(rendering, &cert, mode_of(lenient), &MatchMode::StrictOrder);
                if got != want {
                    let why = match Dn::parse(rendering, mode_of(lenient)) {
                        Err(err) => err.to_string(),
                        Ok(dn) => match match_dn(&dn, &cert, &MatchMode::StrictOrder, &[]) {
                            Err(m) => m.to_string(),
                            Ok(()) => "matches".into(),
                        },
                    };
                    fail.push(format!(
                        "{} {tool} (lenient={lenient}): {rendering:?} got {got:?}, label {label:?}: {why}",
                        e.cert
                    ));
                }
                // The label's order claim holds RDN by RDN.
                if want == Outcome::Equal && got == Outcome::Equal {
                    checks += 1;
                    if let Ok(dn) = Dn::parse(rendering, mode_of(lenient)) {
                        let n = dn.rdns().len();
                        let reversed = label == "equal_asn1_order";
                        let ok = n == cert.rdns().len()
                            && (0..n).all(|i| {
                                rdn_matches(&dn, i, &cert, if reversed { n - 1 - i } else { i })
                            });
                        if !ok {
                            fail.push(format!(
                                "{} {tool}: not in the order {label:?} says",
                                e.cert
                            ));
                        }
                    }
                }
                // AnyOrder: equal whenever StrictOrder is; the listed exceptions on top.
                checks += 1;
                let any = outcome(rendering, &cert, mode_of(lenient), &MatchMode::AnyOrder);
                if want == Outcome::Equal && any != Outcome::Equal {
                    fail.push(format!(
                        "{} {tool} (lenient={lenient}): AnyOrder got {any:?}",
                        e.cert
                    ));
                }
                if want == Outcome::NotEqual && any == Outcome::Equal && lenient {
                    any_order_extra.push((e.cert.as_str(), tool.as_str()));
                }
            }
        }
    }
    checks += 1;
    let listed: Vec<(&str, &str)> = ANY_ORDER_ACCEPTS_RENDERINGS.to_vec();
    if any_order_extra != listed {
        fail.push(format!(
            "renderings matching only under AnyOrder: {any_order_extra:?}, expected {listed:?}"
        ));
    }
    report("renderings", checks, &fail);
}

#[test]
fn near_misses_never_match() {
    let c = load();
    let certs = certs(&c);
    let mut checks = 0;
    let mut fail = Vec::new();
    for n in &c.near_misses {
        let cert = &certs[&n.cert];
        assert_eq!(n.expected, "must_not_match");
        for (lenient, label) in [(false, &n.strict_rfc4514), (true, &n.lenient)] {
            let mode = mode_of(lenient);
            checks += 1;
            let want = expected(label);
            let got = outcome(&n.dn, cert, mode, &MatchMode::StrictOrder);
            if got != want {
                fail.push(format!(
                    "{} {} (lenient={lenient}): {:?} got {got:?}, label {label:?}",
                    n.cert, n.kind, n.dn
                ));
            }
            checks += 1;
            let any = outcome(&n.dn, cert, mode, &MatchMode::AnyOrder);
            let permutation = ANY_ORDER_ACCEPTS_KINDS.contains(&n.kind.as_str());
            let want_any = if permutation { Outcome::Equal } else { want };
            if any != want_any {
                fail.push(format!(
                    "{} {} (lenient={lenient}): {:?} AnyOrder got {any:?}, want {want_any:?}",
                    n.cert, n.kind, n.dn
                ));
            }
            // A rejected claim comes with an explanation naming something from either side.
            if let Ok(dn) = Dn::parse(&n.dn, mode) {
                checks += 1;
                match match_dn(&dn, cert, &MatchMode::StrictOrder, &[]) {
                    Ok(()) => {}
                    Err(m) => {
                        let msg = m.to_string();
                        if msg.len() < 20 {
                            fail.push(format!("{} {}: terse explanation {msg:?}", n.cert, n.kind));
                        }
                    }
                }
            }
        }
    }
    report("near misses", checks, &fail);
}

/// All attribute OIDs of a DN, for an `AttributeSubset` that covers everything.
fn all_oids(dn: &Dn) -> Vec<String> {
    let mut v: Vec<String> = dn
        .rdns()
        .iter()
        .flat_map(|r| r.avas())
        .map(|a| a.oid().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn case_and_equal_variants_match() {
    let c = load();
    let certs = certs(&c);
    let mut checks = 0;
    let mut fail = Vec::new();
    for v in c.case_variants.iter().chain(&c.equal_variants) {
        let cert = &certs[&v.cert];
        assert!(v.expected.starts_with("equal"), "{}", v.expected);
        for (lenient, label) in [(false, &v.strict_rfc4514), (true, &v.lenient)] {
            let mode = mode_of(lenient);
            let want = expected(label);
            for match_mode in [MatchMode::StrictOrder, MatchMode::AnyOrder] {
                checks += 1;
                let got = outcome(&v.dn, cert, mode, &match_mode);
                if got != want || got != Outcome::Equal {
                    fail.push(format!(
                        "{} {} (lenient={lenient}, {match_mode:?}): {:?} got {got:?}, label {label:?}",
                        v.cert, v.kind, v.dn
                    ));
                }
            }
            checks += 1;
            let subset_ok = Dn::parse(&v.dn, mode).map(|dn| {
                match_dn(&dn, cert, &MatchMode::AttributeSubset, &all_oids(cert)).is_ok()
            });
            if subset_ok != Ok(true) {
                fail.push(format!(
                    "{} {}: AttributeSubset(all) got {subset_ok:?}",
                    v.cert, v.kind
                ));
            }
        }
    }
    report("case and equal variants", checks, &fail);
}

#[test]
fn cross_certificate_checks() {
    let c = load();
    let certs = certs(&c);
    let entry = |prefix: &str| {
        c.entries
            .iter()
            .find(|e| e.cert.starts_with(prefix))
            .unwrap_or_else(|| panic!("no entry {prefix}"))
    };
    let mut checks = 0;
    let mut fail = Vec::new();

    // 01 and 13 differ only in the case of O: each reference matches the other certificate.
    let (e01, e13) = (entry("certs/01-"), entry("certs/13-"));
    let (c01, c13) = (&certs[&e01.cert], &certs[&e13.cert]);
    if c01 == c13 {
        fail.push("01 and 13 should differ structurally (values are kept as written)".into());
    }
    for (reference, cert, what) in [
        (&e01.reference_rfc4514, c13, "reference 01 vs cert 13"),
        (&e13.reference_rfc4514, c01, "reference 13 vs cert 01"),
    ] {
        for mode in [MatchMode::StrictOrder, MatchMode::AnyOrder] {
            checks += 1;
            let got = outcome(reference, cert, ParseMode::Strict, &mode);
            if got != Outcome::Equal {
                fail.push(format!("{what} ({mode:?}): {got:?}"));
            }
        }
    }
    checks += 1;
    if match_dn(c01, c13, &MatchMode::StrictOrder, &[]).is_err() {
        fail.push("cert 01 vs cert 13 do not match".into());
    }

    // 02 and 03 differ only in the tag of 2.5.4.97: the same DN, and the same renderings except
    // where a tool printed the certificate's own #hex (Go re-encodes, so its output is identical).
    let (e02, e03) = (entry("certs/02-"), entry("certs/03-"));
    checks += 1;
    if certs[&e02.cert] != certs[&e03.cert] {
        fail.push("02 and 03 decode differently".into());
    }
    let mut differing = Vec::new();
    for (tool, r02) in &e02.renderings {
        let r03 = &e03.renderings[tool];
        checks += 1;
        if r02 != r03 {
            differing.push(tool.as_str());
            if !r02.contains('#') {
                fail.push(format!(
                    "02/03 {tool}: {r02:?} vs {r03:?} differ outside #hex"
                ));
            }
        }
        // Each rendering of one matches the other certificate exactly as it matches its own.
        for (r, other) in [(r02, &certs[&e03.cert]), (r03, &certs[&e02.cert])] {
            checks += 1;
            let label = &e02.rendering_labels[tool].lenient;
            let got = outcome(r, other, ParseMode::Lenient, &MatchMode::StrictOrder);
            if got != expected(label) {
                fail.push(format!(
                    "02/03 {tool}: {r:?} vs the other cert got {got:?}, label {label:?}"
                ));
            }
        }
    }
    checks += 1;
    if differing != ["java_canonical", "java_rfc2253"] {
        fail.push(format!("02/03 renderings that differ: {differing:?}"));
    }
    report("cross checks", checks, &fail);
}
