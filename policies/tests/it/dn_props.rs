//! Property tests for the DN parser, printer and matcher: no panics on any input, printing
//! round-trips, reversal is accepted, and a one-letter change is always caught.

use dcrgate_policies::dn::{match_dn, prepare_case_ignore, Dn, MatchMode, ParseMode};
use proptest::prelude::*;

/// Attribute type spellings accepted in both parse modes, with their OIDs.
const TYPES: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("commonName", "2.5.4.3"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("C", "2.5.4.6"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("street", "2.5.4.9"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("serialNumber", "2.5.4.5"),
    ("organizationIdentifier", "2.5.4.97"),
    ("2.5.4.97", "2.5.4.97"),
    ("emailAddress", "1.2.840.113549.1.9.1"),
    ("1.3.6.1.4.1.99999.1", "1.3.6.1.4.1.99999.1"),
];

const MODES: [ParseMode; 2] = [ParseMode::Strict, ParseMode::Lenient];

/// A value character: any Unicode scalar, RFC 4514 specials, spaces or letters.
fn value_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        3 => prop::sample::select(vec![',', '+', '"', '\\', '<', '>', ';', '=', '#', ' ', ' ']),
        4 => prop::char::range('a', 'z'),
        1 => prop::sample::select(vec!['ß', 'É', 'ü', '\u{301}', '\u{200B}', '\u{A0}', '\0', '\t']),
    ]
}

/// A value and, per character, whether to write it as `\XX` hex escapes.
fn value() -> impl Strategy<Value = Vec<(char, bool)>> {
    prop::collection::vec((value_char(), prop::bool::weighted(0.2)), 0..10)
}

/// Generated DN: RDNs of (type index, value), in written order.
type GenDn = Vec<Vec<(usize, Vec<(char, bool)>)>>;

fn gen_dn() -> impl Strategy<Value = GenDn> {
    prop::collection::vec(prop::collection::vec((0..TYPES.len(), value()), 1..4), 0..6)
}

fn text(v: &[(char, bool)]) -> String {
    v.iter().map(|(c, _)| *c).collect()
}

/// RFC 4514 escaping written independently of the crate's printer: every special escaped with a
/// backslash, NUL and chosen characters as hex, spaces escaped at both ends.
fn render_value(v: &[(char, bool)]) -> String {
    let mut out = String::new();
    let n = v.len();
    for (i, &(c, hex)) in v.iter().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i + 1 == n);
        if hex || c == '\0' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
        } else if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' | '#') || edge_space {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

fn render(dn: &GenDn) -> String {
    dn.iter()
        .map(|rdn| {
            rdn.iter()
                .map(|(t, v)| format!("{}={}", TYPES[*t].0, render_value(v)))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse(s: &str, mode: ParseMode) -> Result<Dn, TestCaseError> {
    Dn::parse(s, mode).map_err(|e| TestCaseError::fail(format!("parse {s:?} ({mode:?}): {e}")))
}

/// Sorted (oid, value) pairs of each RDN.
fn shape_of_gen(dn: &GenDn) -> Vec<Vec<(String, String)>> {
    dn.iter()
        .map(|rdn| {
            let mut v: Vec<_> = rdn
                .iter()
                .map(|(t, val)| (TYPES[*t].1.to_string(), text(val)))
                .collect();
            v.sort();
            v
        })
        .collect()
}

fn shape_of(dn: &Dn) -> Vec<Vec<(String, String)>> {
    dn.rdns()
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
        .collect()
}

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

/// The three modes; AttributeSubset over every attribute type present.
fn matches_all_modes(a: &Dn, b: &Dn) -> Result<(), String> {
    let mut oids = all_oids(a);
    oids.extend(all_oids(b));
    if oids.is_empty() {
        oids.push("2.5.4.3".into());
    }
    for mode in [
        MatchMode::StrictOrder,
        MatchMode::AnyOrder,
        MatchMode::AttributeSubset,
    ] {
        match_dn(a, b, &mode, &oids).map_err(|e| format!("{mode:?}: {e}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) Parsing never panics, whatever the input.
    #[test]
    fn parse_never_panics(s in any::<String>()) {
        for mode in MODES {
            let _ = Dn::parse(&s, mode);
        }
    }

    /// (a) Same, with inputs made mostly of DN syntax so the parser gets deep.
    #[test]
    fn parse_never_panics_on_dn_like_input(
        s in r#"[A-Za-z0-9=,+;#"\\ <>.\-]{0,40}|(CN|O|OID\.2\.5|2\.5\.4\.3) ?= ?[#"\\ a-f0-9C3BC,;+]{0,20}"#
    ) {
        for mode in MODES {
            if let Ok(dn) = Dn::parse(&s, mode) {
                // Whatever parses, prints to something that parses back to the same DN.
                let again = parse(&dn.to_rfc4514(), ParseMode::Strict)?;
                prop_assert_eq!(&again, &dn);
            }
        }
    }

    /// (b) Generated DNs parse to what was generated, print canonically, parse back equal, and
    /// match themselves in every mode.
    #[test]
    fn generated_dns_round_trip(g in gen_dn()) {
        let s = render(&g);
        let dn = parse(&s, ParseMode::Strict)?;
        prop_assert_eq!(shape_of(&dn), shape_of_gen(&g), "{}", s);
        prop_assert_eq!(&parse(&s, ParseMode::Lenient)?, &dn);
        let canonical = dn.to_rfc4514();
        prop_assert_eq!(canonical.clone(), dn.to_string());
        for mode in MODES {
            let back = parse(&canonical, mode)?;
            prop_assert_eq!(&back, &dn, "{:?} -> {:?}", s, canonical);
        }
        prop_assert!(matches_all_modes(&dn, &dn).is_ok(), "{:?}", matches_all_modes(&dn, &dn));
    }

    /// (c) The same RDNs written in reverse (certificate) order match in StrictOrder and AnyOrder.
    #[test]
    fn reversed_order_matches(g in gen_dn()) {
        let dn = parse(&render(&g), ParseMode::Strict)?;
        let reversed: GenDn = g.iter().rev().cloned().collect();
        let rev = parse(&render(&reversed), ParseMode::Strict)?;
        for mode in [MatchMode::StrictOrder, MatchMode::AnyOrder] {
            prop_assert!(match_dn(&rev, &dn, &mode, &[]).is_ok(), "{:?}: {} vs {}", mode, rev, dn);
            prop_assert!(match_dn(&dn, &rev, &mode, &[]).is_ok(), "{:?}: {} vs {}", mode, dn, rev);
        }
    }

    /// (d) Changing one letter of one value (to a different letter, not just its case) is
    /// always a mismatch, in every mode, with an explanation.
    #[test]
    fn one_letter_changed_never_matches(
        g in gen_dn(),
        rdn_pick in any::<prop::sample::Index>(),
        ava_pick in any::<prop::sample::Index>(),
        prefix in value(),
        suffix in value(),
        letters in (prop::char::range('a', 'z'), prop::char::range('a', 'z'), any::<bool>()),
    ) {
        let (a, b, upper) = letters;
        prop_assume!(a != b);
        let mut g = g;
        if g.is_empty() {
            g.push(vec![(0, Vec::new())]);
        }
        let r = rdn_pick.index(g.len());
        let k = ava_pick.index(g[r].len());
        let with = |letter: char| {
            let mut g2 = g.clone();
            let mut v = prefix.clone();
            v.push((letter, false));
            v.extend(suffix.iter().cloned());
            g2[r][k].1 = v;
            g2
        };
        let b = if upper { b.to_ascii_uppercase() } else { b };
        let presented = parse(&render(&with(a)), ParseMode::Strict)?;
        let claimed = parse(&render(&with(b)), ParseMode::Strict)?;
        let oid = TYPES[g[r][k].0].1.to_string();
        for mode in [MatchMode::StrictOrder, MatchMode::AnyOrder, MatchMode::AttributeSubset] {
            let res = match_dn(&claimed, &presented, &mode, std::slice::from_ref(&oid));
            prop_assert!(res.is_err(), "{:?}: {} matched {}", mode, claimed, presented);
            let msg = res.err().map(|e| e.to_string()).unwrap_or_default();
            prop_assert!(!msg.is_empty());
        }
    }

    /// Changing only the case of a letter never matters.
    #[test]
    fn case_change_matches(g in gen_dn()) {
        let upper: GenDn = g
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|(t, v)| (*t, v.iter().map(|(c, h)| (c.to_ascii_uppercase(), *h)).collect()))
                    .collect()
            })
            .collect();
        let a = parse(&render(&g), ParseMode::Strict)?;
        let b = parse(&render(&upper), ParseMode::Strict)?;
        prop_assert!(matches_all_modes(&a, &b).is_ok(), "{} vs {}: {:?}", a, b, matches_all_modes(&a, &b));
    }

    /// RFC 4518 preparation is idempotent.
    #[test]
    fn preparation_is_idempotent(s in any::<String>()) {
        let once = prepare_case_ignore(&s);
        prop_assert_eq!(prepare_case_ignore(&once), once);
    }

    /// (e) DER readers never panic on arbitrary bytes.
    #[test]
    fn der_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Dn::from_der_name(&bytes);
        let _ = Dn::from_certificate_der(&bytes);
    }

    /// (e) Nor on well-framed Names with arbitrary OIDs, tags and values, or one corrupted byte.
    #[test]
    fn der_never_panics_on_framed_names(
        rdns in prop::collection::vec(
            prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..5), any::<u8>(), prop::collection::vec(any::<u8>(), 0..8)),
                1..3,
            ),
            0..3,
        ),
        flip in any::<prop::sample::Index>(),
        flip_to in any::<u8>(),
    ) {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut v = vec![tag, content.len() as u8];
            v.extend_from_slice(content);
            v
        }
        let mut seq = Vec::new();
        for rdn in &rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in rdn {
                let mut ava = tlv(0x06, oid);
                ava.extend(tlv(*tag, value));
                set.extend(tlv(0x30, &ava));
            }
            seq.extend(tlv(0x31, &set));
        }
        // At most 3 * (2 + 2 * 19) = 120 bytes: short-form lengths throughout.
        let name = tlv(0x30, &seq);
        if let Ok(dn) = Dn::from_der_name(&name) {
            // Whatever decodes prints to a string that parses back to the same DN.
            let again = parse(&dn.to_rfc4514(), ParseMode::Strict)?;
            prop_assert_eq!(&again, &dn);
        }
        let mut corrupted = name.clone();
        let i = flip.index(corrupted.len());
        corrupted[i] = flip_to;
        let _ = Dn::from_der_name(&corrupted);
    }
}
