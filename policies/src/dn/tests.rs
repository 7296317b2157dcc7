//! Unit tests for the DN parser, DER reader, canonical printer and matcher.

use super::*;

fn lenient(s: &str) -> Dn {
    match Dn::parse(s, ParseMode::Lenient) {
        Ok(dn) => dn,
        Err(e) => panic!("lenient parse of {s:?} failed: {e}"),
    }
}

fn strict(s: &str) -> Dn {
    match Dn::parse(s, ParseMode::Strict) {
        Ok(dn) => dn,
        Err(e) => panic!("strict parse of {s:?} failed: {e}"),
    }
}

fn strict_err(s: &str) -> DnError {
    match Dn::parse(s, ParseMode::Strict) {
        Ok(dn) => panic!("strict parse of {s:?} succeeded: {dn}"),
        Err(e) => e,
    }
}

fn lenient_err(s: &str) -> DnError {
    match Dn::parse(s, ParseMode::Lenient) {
        Ok(dn) => panic!("lenient parse of {s:?} succeeded: {dn}"),
        Err(e) => e,
    }
}

/// `(name, value)` pairs per RDN.
fn shape(dn: &Dn) -> Vec<Vec<(String, String)>> {
    dn.rdns()
        .iter()
        .map(|r| {
            r.avas()
                .iter()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect()
        })
        .collect()
}

fn m(claimed: &str, presented: &str, mode: MatchMode) -> Result<(), DnMismatch> {
    match_dn(&lenient(claimed), &lenient(presented), &mode, &[])
}

fn subset(claimed: &str, presented: &str, attrs: &[&str]) -> Result<(), DnMismatch> {
    let attrs: Vec<String> = attrs.iter().map(|s| s.to_string()).collect();
    match_dn(
        &lenient(claimed),
        &lenient(presented),
        &MatchMode::AttributeSubset,
        &attrs,
    )
}

const ALL_MODES: [MatchMode; 2] = [MatchMode::StrictOrder, MatchMode::AnyOrder];

// ---------------------------------------------------------------- parsing

#[test]
fn short_and_long_names() {
    let a = strict("CN=x,OU=y,O=z,C=GB,L=l,ST=s,STREET=st,DC=d,UID=u");
    let b = strict("commonName=x,organizationalUnitName=y,organizationName=z,countryName=GB,localityName=l,stateOrProvinceName=s,streetAddress=st,domainComponent=d,userid=u");
    assert_eq!(a, b);
    assert_eq!(
        a.to_rfc4514(),
        "CN=x,OU=y,O=z,C=GB,L=l,ST=s,STREET=st,DC=d,UID=u"
    );
    assert_eq!(strict("cn=x"), strict("CN=x"));
    assert_eq!(strict("street=x").rdns()[0].avas()[0].oid(), "2.5.4.9");
}

#[test]
fn organization_identifier_and_oids() {
    let a = strict("organizationIdentifier=PSDGB-FCA-123456");
    let ava = &a.rdns()[0].avas()[0];
    assert_eq!(ava.oid(), "2.5.4.97");
    assert_eq!(ava.name(), "organizationIdentifier");
    assert_eq!(ava.value(), "PSDGB-FCA-123456");
    assert_eq!(ava.prepared(), "psdgb-fca-123456");
    assert_eq!(strict("2.5.4.97=PSDGB-FCA-123456"), a);
    assert_eq!(lenient("OID.2.5.4.97=PSDGB-FCA-123456"), a);
    assert_eq!(lenient("oid.2.5.4.97=PSDGB-FCA-123456"), a);
    assert_eq!(
        strict_err("OID.2.5.4.97=x"),
        DnError::UnknownAttributeType("OID".into())
    );
    // Unknown type: dotted OID is fine and prints as such.
    let u = strict("1.2.3.4=v");
    assert_eq!(u.rdns()[0].avas()[0].name(), "1.2.3.4");
    assert_eq!(u.to_rfc4514(), "1.2.3.4=v");
    assert_eq!(a.values_of("2.5.4.97"), vec!["PSDGB-FCA-123456"]);
    assert_eq!(
        a.values_of("organizationIdentifier"),
        vec!["PSDGB-FCA-123456"]
    );
    assert!(a.values_of("2.5.4.3").is_empty());
}

#[test]
fn bad_attribute_types() {
    assert_eq!(strict_err("/C=GB"), DnError::BadAttributeType { pos: 0 });
    assert_eq!(
        strict_err("CN=a, O=b"),
        DnError::BadAttributeType { pos: 5 }
    );
    assert_eq!(strict_err("2.5.04=x"), DnError::BadAttributeType { pos: 0 });
    assert_eq!(strict_err("2.5.4.=x"), DnError::BadAttributeType { pos: 0 });
    assert_eq!(strict_err("2.5x=x"), DnError::BadAttributeType { pos: 0 });
    assert_eq!(
        strict_err("Ltd=x"),
        DnError::UnknownAttributeType("Ltd".into())
    );
    assert_eq!(
        strict_err("E=a@b"),
        DnError::UnknownAttributeType("E".into())
    );
    assert_eq!(lenient("E=a@b"), strict("emailAddress=a@b"));
    assert_eq!(lenient("S=Bayern"), strict("ST=Bayern"));
    assert_eq!(strict_err("C = GB"), DnError::ExpectedEquals { pos: 1 });
    assert_eq!(strict_err("CN"), DnError::ExpectedEquals { pos: 2 });
    assert_eq!(
        lenient_err("OID.CN=x"),
        DnError::BadAttributeType { pos: 4 }
    );
}

#[test]
fn hex_values_compare_by_text_not_tag() {
    let utf8 = strict("2.5.4.97=#0c1050534447422d4643412d313233343536");
    let printable = strict("2.5.4.97=#131050534447422d4643412d313233343536");
    let plain = strict("organizationIdentifier=PSDGB-FCA-123456");
    assert_eq!(utf8, plain);
    assert_eq!(printable, plain);
    assert_eq!(utf8.to_rfc4514(), "organizationIdentifier=PSDGB-FCA-123456");
    // Upper-case hex digits, IA5String.
    assert_eq!(strict("DC=#1603434F4D"), strict("DC=COM"));
    // BMPString and TeletexString.
    assert_eq!(
        strict("L=#1e0e004d00fc006e006300680065006e"),
        strict("L=München")
    );
    assert_eq!(strict("L=#14074dfc6e6368656e"), strict("L=München"));
    // Lenient: spaces after a hexstring.
    assert_eq!(
        lenient("DC=#1603636f6d , DC=#16076578616d706c65"),
        strict("DC=com,DC=example")
    );
}

#[test]
fn bad_hex_values() {
    assert!(matches!(
        strict_err("O=#1 Payments"),
        DnError::BadHexString { pos: 2, .. }
    ));
    assert!(matches!(
        lenient_err("O=#1 Payments"),
        DnError::BadHexString { pos: 2, .. }
    ));
    assert!(matches!(strict_err("O=#"), DnError::BadHexString { .. }));
    assert!(matches!(strict_err("O=#0c0"), DnError::BadHexString { .. }));
    assert!(matches!(
        strict_err("O=#0c0161 "),
        DnError::BadHexString { .. }
    ));
    assert!(matches!(strict_err("O=#0c02"), DnError::BadBer(_)));
    assert!(matches!(strict_err("O=#0c0161ff"), DnError::BadBer(_)));
    assert!(matches!(strict_err("O=#0c01ff"), DnError::BadBer(_)));
}

#[test]
fn non_string_hex_values_are_opaque() {
    let a = strict("1.2.3=#0402ABCD");
    assert_eq!(a.rdns()[0].avas()[0].value(), "#0402abcd");
    assert_eq!(a.to_rfc4514(), "1.2.3=#0402abcd");
    assert_eq!(strict(&a.to_rfc4514()), a);
    // Non-minimal BER length re-encoded canonically.
    assert_eq!(strict("1.2.3=#048102abcd"), a);
    // A string that looks like hex is not the opaque value.
    let s = strict("1.2.3=\\#0402abcd");
    assert_eq!(s.to_rfc4514(), "1.2.3=\\#0402abcd");
    assert!(match_dn(&s, &a, &MatchMode::AnyOrder, &[]).is_err());
    assert!(match_dn(&a, &a, &MatchMode::StrictOrder, &[]).is_ok());
}

#[test]
fn escapes() {
    let dn = strict(r#"CN=a\,b\+c\"d\\e\;f\<g\>h\=i,O=\#1,OU=\ x\ "#);
    assert_eq!(
        shape(&dn),
        vec![
            vec![("CN".into(), r#"a,b+c"d\e;f<g>h=i"#.into())],
            vec![("O".into(), "#1".into())],
            vec![("OU".into(), " x ".into())],
        ]
    );
    assert_eq!(
        dn.to_rfc4514(),
        r#"CN=a\,b\+c\"d\\e\;f\<g\>h=i,O=\#1,OU=\ x\ "#
    );
    assert_eq!(
        strict(r"L=M\C3\BCnchen").rdns()[0].avas()[0].value(),
        "München"
    );
    assert_eq!(strict(r"L=M\c3\bcnchen"), strict("L=München"));
    assert_eq!(strict(r"O=Acme\2C Ltd"), strict(r"O=Acme\, Ltd"));
    // A '#' that is not leading needs no escape; '=' in a value is fine.
    assert_eq!(strict("CN=a#b=c").rdns()[0].avas()[0].value(), "a#b=c");
    // Control characters print as hex escapes and round-trip.
    let c = strict(r"CN=a\0Ab\00");
    assert_eq!(c.rdns()[0].avas()[0].value(), "a\nb\0");
    assert_eq!(c.to_rfc4514(), r"CN=a\0Ab\00");
}

#[test]
fn bad_escapes() {
    assert_eq!(strict_err(r"OU=C:\TPP"), DnError::InvalidEscape { pos: 5 });
    assert_eq!(lenient_err(r"OU=C:\TPP"), DnError::InvalidEscape { pos: 5 });
    assert_eq!(strict_err(r"OU=\C"), DnError::BadHexEscape { pos: 3 });
    assert_eq!(strict_err(r"OU=\Cx"), DnError::BadHexEscape { pos: 3 });
    assert_eq!(strict_err("OU=x\\"), DnError::InvalidEscape { pos: 4 });
    assert_eq!(
        strict_err(r"O=Soci\E9t\E9"),
        DnError::InvalidUtf8 { pos: 2 }
    );
    assert_eq!(
        lenient_err(r"O=Soci\E9t\E9"),
        DnError::InvalidUtf8 { pos: 2 }
    );
    assert_eq!(strict_err(r"O=\C3"), DnError::InvalidUtf8 { pos: 2 });
}

#[test]
fn strict_grammar() {
    assert_eq!(
        strict_err(r#"O=Say "Hello""#),
        DnError::UnexpectedChar { ch: '"', pos: 6 }
    );
    assert_eq!(
        strict_err("CN=a;b"),
        DnError::UnexpectedChar { ch: ';', pos: 4 }
    );
    assert_eq!(
        strict_err("CN=a<b"),
        DnError::UnexpectedChar { ch: '<', pos: 4 }
    );
    assert_eq!(strict_err("CN= a"), DnError::UnescapedSpace { pos: 3 });
    assert_eq!(strict_err("CN=a ,O=b"), DnError::UnescapedSpace { pos: 4 });
    assert_eq!(
        strict_err("CN=Jane Doe +UID=x"),
        DnError::UnescapedSpace { pos: 11 }
    );
    assert_eq!(strict_err("CN=a,"), DnError::TrailingSeparator { pos: 4 });
    assert_eq!(strict_err("CN=a+"), DnError::TrailingSeparator { pos: 4 });
    assert_eq!(
        strict_err("CN=a,,O=b"),
        DnError::BadAttributeType { pos: 5 }
    );
    assert_eq!(strict_err(","), DnError::BadAttributeType { pos: 0 });
    assert_eq!(
        strict_err("CN=a\0"),
        DnError::UnexpectedChar { ch: '\0', pos: 4 }
    );
    // Inner spaces and empty values are fine.
    assert_eq!(
        strict("OU=Ops  Team").rdns()[0].avas()[0].value(),
        "Ops  Team"
    );
    assert_eq!(strict("CN=,O=x").rdns()[0].avas()[0].value(), "");
    assert!(strict("").is_empty());
}

#[test]
fn lenient_forms() {
    let want = strict(r#"CN=a\;b\<c\>d=e,OU=C:\\TPP\\certs,O=Say \"Hello\" Ltd,C=GB"#);
    // Java RFC 1779 / toString.
    assert_eq!(
        lenient(r#"CN="a;b<c>d=e", OU="C:\\TPP\\certs", O="Say \"Hello\" Ltd", C=GB"#),
        want
    );
    // OpenSSL oneline, reversed (ASN.1 order), so compare reversed strings.
    let oneline =
        lenient(r#"C = GB, O = Say \"Hello\" Ltd, OU = C:\\TPP\\certs, CN = "a;b<c>d=e""#);
    assert_eq!(oneline.rdns().len(), 4);
    assert!(match_dn(&oneline, &want, &MatchMode::StrictOrder, &[]).is_ok());
    // Semicolons, spaces around '+', quoted leading/trailing spaces kept.
    assert_eq!(
        lenient("  CN = Jane Doe + UID = jdoe ; O=Example Org ;C=GB  "),
        strict("CN=Jane Doe+UID=jdoe,O=Example Org,C=GB")
    );
    assert_eq!(lenient(r#"OU=" Ops  Team ""#), strict(r"OU=\ Ops  Team\ "));
    assert_eq!(lenient(r##"O="#1 Payments""##), strict(r"O=\#1 Payments"));
    assert_eq!(lenient("CN=a<b>"), strict(r"CN=a\<b\>"));
    assert!(lenient("   ").is_empty());
    // Still errors.
    assert_eq!(
        lenient_err(r#"O="abc"#),
        DnError::UnterminatedQuote { pos: 2 }
    );
    assert_eq!(
        lenient_err(r#"O="abc"d"#),
        DnError::UnexpectedChar { ch: 'd', pos: 7 }
    );
    assert_eq!(
        lenient_err(r#"O=Say "Hello" Ltd"#),
        DnError::UnexpectedChar { ch: '"', pos: 6 }
    );
    assert_eq!(
        lenient_err("CN=a;b<c>d=e"),
        DnError::UnknownAttributeType("b".into())
    );
    assert_eq!(
        lenient_err("O=Acme, Ltd"),
        DnError::UnknownAttributeType("Ltd".into())
    );
    assert_eq!(
        lenient_err("OU=R+D"),
        DnError::UnknownAttributeType("D".into())
    );
    assert_eq!(
        lenient_err("CN=a ; "),
        DnError::TrailingSeparator { pos: 5 }
    );
    assert_eq!(
        lenient_err("CN=a + "),
        DnError::TrailingSeparator { pos: 5 }
    );
    assert_eq!(
        lenient_err("/C=GB/O=x"),
        DnError::BadAttributeType { pos: 0 }
    );
}

#[test]
fn limits() {
    let long = format!("CN={}", "a".repeat(8 * 1024));
    assert!(matches!(strict_err(&long), DnError::TooLong { .. }));
    let many = vec!["C=GB"; 65].join(",");
    assert_eq!(strict_err(&many), DnError::TooManyRdns { max: 64 });
    assert_eq!(strict(&vec!["C=GB"; 64].join(",")).rdns().len(), 64);
    let wide = vec!["C=GB"; 65].join("+");
    assert_eq!(strict_err(&wide), DnError::TooManyAvas { max: 64 });
}

#[test]
fn multi_valued_rdns() {
    let a = strict("CN=Jane Doe+UID=jdoe,O=Example Org,C=GB");
    let b = strict("UID=jdoe+CN=Jane Doe,O=Example Org,C=GB");
    assert_eq!(a, b);
    assert_eq!(b.to_rfc4514(), "CN=Jane Doe+UID=jdoe,O=Example Org,C=GB");
    assert_eq!(a.rdns()[0].avas().len(), 2);
    for mode in ALL_MODES {
        assert!(match_dn(&a, &b, &mode, &[]).is_ok());
    }
}

// ---------------------------------------------------------------- DER

/// One AVA for [`der_name`]: OID content bytes, value tag, value bytes.
type TestAva<'a> = (&'a [u8], u8, &'a [u8]);

/// Builds a DER Name from RDNs in ASN.1 order.
fn der_name(rdns: &[&[TestAva<'_>]]) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 128 {
            v.push(content.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }
    let mut seq = Vec::new();
    for rdn in rdns {
        let mut set = Vec::new();
        for (oid, tag, value) in rdn.iter() {
            let mut ava = tlv(0x06, oid);
            ava.extend(tlv(*tag, value));
            set.extend(tlv(0x30, &ava));
        }
        seq.extend(tlv(0x31, &set));
    }
    tlv(0x30, &seq)
}

const OID_C: &[u8] = &[0x55, 4, 6];
const OID_O: &[u8] = &[0x55, 4, 10];
const OID_CN: &[u8] = &[0x55, 4, 3];
const OID_UID: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];
const OID_ORGID: &[u8] = &[0x55, 4, 97];

#[test]
fn der_name_is_reversed_into_rfc4514_order() {
    let der = der_name(&[
        &[(OID_C, 0x13, b"GB")],
        &[(OID_O, 0x0c, b"Example Org")],
        &[(OID_CN, 0x0c, b"Jane Doe"), (OID_UID, 0x0c, b"jdoe")],
    ]);
    let dn = Dn::from_der_name(&der).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dn.to_rfc4514(), "CN=Jane Doe+UID=jdoe,O=Example Org,C=GB");
    assert_eq!(dn, strict("UID=jdoe+CN=Jane Doe,O=Example Org,C=GB"));
    assert_eq!(dn.values_of("2.5.4.6"), vec!["GB"]);
}

#[test]
fn der_values_compare_by_text_not_tag() {
    let a = Dn::from_der_name(&der_name(&[&[(OID_ORGID, 0x0c, b"PSDGB-FCA-1")]]));
    let b = Dn::from_der_name(&der_name(&[&[(OID_ORGID, 0x13, b"PSDGB-FCA-1")]]));
    let c = Dn::from_der_name(&der_name(&[&[(
        OID_ORGID,
        0x1e,
        b"\0P\0S\0D\0G\0B\0-\0F\0C\0A\0-\x001",
    )]]));
    assert!(a.is_ok());
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn der_errors() {
    assert!(matches!(Dn::from_der_name(&[]), Err(DnError::Der(_))));
    assert!(matches!(
        Dn::from_der_name(&[0x31, 0]),
        Err(DnError::Der(_))
    ));
    let bad_utf8 = der_name(&[&[(OID_CN, 0x0c, &[0xff])]]);
    assert!(matches!(
        Dn::from_der_name(&bad_utf8),
        Err(DnError::BadBer(_))
    ));
    assert!(matches!(
        Dn::from_certificate_der(&[0x30, 0x00]),
        Err(DnError::Der(_))
    ));
    let many: Vec<&[TestAva<'_>]> = vec![&[(OID_C, 0x13, b"GB")]; 65];
    assert_eq!(
        Dn::from_der_name(&der_name(&many)),
        Err(DnError::TooManyRdns { max: 64 })
    );
    assert_eq!(
        Dn::from_der_name(&[0x30, 0]).map(|d| d.is_empty()),
        Ok(true)
    );
}

// ---------------------------------------------------------------- matching

#[test]
fn case_ignore_match() {
    for mode in ALL_MODES {
        assert!(m(
            "STREET=Maximilianstraße 1",
            "STREET=MAXIMILIANSTRASSE 1",
            mode.clone()
        )
        .is_ok());
        assert!(m("O=Example  TPP   Ltd", "O=example tpp ltd", mode.clone()).is_ok());
        assert!(m(
            "CN=0015800001041RBAAI,C=gb",
            "CN=0015800001041RbAAI,C=GB",
            mode.clone()
        )
        .is_ok());
        assert!(m(r"OU=\ Ops  Team\ ", "OU=Ops Team", mode.clone()).is_ok());
        assert!(m("O=OpsTeam", "O=Ops Team", mode.clone()).is_err());
        assert!(m("O=Société", "O=Societe", mode.clone()).is_err());
    }
}

#[test]
fn strict_order_accepts_both_directions_only() {
    let cert = "CN=c,OU=u,O=o,C=GB";
    assert!(m(cert, cert, MatchMode::StrictOrder).is_ok());
    assert!(m("C=GB,O=o,OU=u,CN=c", cert, MatchMode::StrictOrder).is_ok());
    let err = m("CN=c,O=o,OU=u,C=GB", cert, MatchMode::StrictOrder);
    assert_eq!(
        err,
        Err(DnMismatch::OrderDiffers {
            position: 2,
            claimed: "O=o".into(),
            presented: "OU=u".into()
        })
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("O=o") && msg.contains("OU=u") && msg.contains("RDN 2"),
        "{msg}"
    );
    // Closer to the reversed order: explained against it.
    assert_eq!(
        m("C=GB,O=o,CN=c,OU=u", cert, MatchMode::StrictOrder),
        Err(DnMismatch::OrderDiffers {
            position: 3,
            claimed: "CN=c".into(),
            presented: "OU=u".into()
        })
    );
    assert!(m("CN=c,O=o,OU=u,C=GB", cert, MatchMode::AnyOrder).is_ok());
}

#[test]
fn any_order() {
    let cert = "CN=c,OU=u,O=o,C=GB";
    assert!(m("O=o,C=GB,CN=c,OU=u", cert, MatchMode::AnyOrder).is_ok());
    assert!(m("O=o,C=GB,CN=c,OU=u,OU=u", cert, MatchMode::AnyOrder).is_err());
    assert!(m("O=o,C=GB,CN=c", cert, MatchMode::AnyOrder).is_err());
}

#[test]
fn value_differs_message() {
    let err = m(
        "CN=c,O=OpenBanking Ltd,C=GB",
        "CN=c,O=OpenBanking,C=GB",
        MatchMode::AnyOrder,
    );
    assert_eq!(
        err,
        Err(DnMismatch::ValueDiffers {
            attribute: "O".into(),
            claimed: "OpenBanking Ltd".into(),
            presented: "OpenBanking".into()
        })
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        msg,
        r#"O differs: the claim has "OpenBanking Ltd", the certificate has "OpenBanking""#
    );
    let err = m(
        "organizationIdentifier=PSDGB-FCA-1,CN=c",
        "organizationIdentifier=PSDUK-FCA-1,CN=c",
        MatchMode::StrictOrder,
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("organizationIdentifier")
            && msg.contains("PSDGB-FCA-1")
            && msg.contains("PSDUK-FCA-1"),
        "{msg}"
    );
}

#[test]
fn missing_and_extra_messages() {
    let err = m("CN=c,C=GB", "CN=c,O=o,C=GB", MatchMode::StrictOrder);
    assert_eq!(
        err,
        Err(DnMismatch::MissingFromClaim {
            attribute: "O".into(),
            presented: "o".into()
        })
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("O=\"o\"") && msg.contains("missing"), "{msg}");

    let err = m("CN=c,OU=Extra,C=GB", "CN=c,C=GB", MatchMode::AnyOrder);
    assert_eq!(
        err,
        Err(DnMismatch::NotInCertificate {
            attribute: "OU".into(),
            claimed: "Extra".into()
        })
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("OU=\"Extra\"") && msg.contains("not in the certificate"),
        "{msg}"
    );

    // Empty claim.
    let err = match_dn(&strict(""), &strict("CN=c"), &MatchMode::AnyOrder, &[]);
    assert!(matches!(err, Err(DnMismatch::MissingFromClaim { .. })));
}

#[test]
fn attribute_type_differs_message() {
    let err = m(
        "CN=c,OU=OpenBanking,C=GB",
        "CN=c,O=OpenBanking,C=GB",
        MatchMode::StrictOrder,
    );
    assert_eq!(
        err,
        Err(DnMismatch::AttributeTypeDiffers {
            claimed_attribute: "OU".into(),
            presented_attribute: "O".into(),
            value: "OpenBanking".into()
        })
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("OU") && msg.contains(" O ") && msg.contains("OpenBanking"),
        "{msg}"
    );
}

#[test]
fn grouping_message() {
    let cert = "CN=Jane Doe+UID=jdoe,O=Example Org,C=GB";
    for mode in ALL_MODES {
        let err = m(
            "CN=Jane Doe,UID=jdoe,O=Example Org,C=GB",
            cert,
            mode.clone(),
        );
        assert_eq!(
            err,
            Err(DnMismatch::RdnGrouping {
                claimed: "CN=Jane Doe,UID=jdoe".into(),
                presented: "CN=Jane Doe+UID=jdoe".into()
            })
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("CN=Jane Doe+UID=jdoe") && msg.contains("grouping"),
            "{msg}"
        );
        assert!(matches!(
            m(
                "CN=Jane Doe+UID=jdoe+O=Example Org,C=GB",
                cert,
                mode.clone()
            ),
            Err(DnMismatch::RdnGrouping { .. })
        ));
    }
}

#[test]
fn attribute_subset_mode() {
    let cert = "CN=c,organizationIdentifier=PSDGB-FCA-1,O=Org,C=GB";
    assert!(subset("organizationIdentifier=psdgb-fca-1", cert, &["2.5.4.97"]).is_ok());
    assert!(subset(
        "O=ORG,organizationIdentifier=PSDGB-FCA-1",
        cert,
        &["2.5.4.97", "O"]
    )
    .is_ok());
    assert!(subset(
        "CN=other,organizationIdentifier=PSDGB-FCA-1",
        cert,
        &["2.5.4.97"]
    )
    .is_ok());
    assert_eq!(
        subset("organizationIdentifier=PSDGB-FCA-2", cert, &["2.5.4.97"]),
        Err(DnMismatch::ValueDiffers {
            attribute: "organizationIdentifier".into(),
            claimed: "PSDGB-FCA-2".into(),
            presented: "PSDGB-FCA-1".into()
        })
    );
    assert_eq!(
        subset("CN=c", cert, &["2.5.4.97"]),
        Err(DnMismatch::MissingFromClaim {
            attribute: "organizationIdentifier".into(),
            presented: "PSDGB-FCA-1".into()
        })
    );
    assert_eq!(
        subset("CN=c,OU=x", cert, &["OU"]),
        Err(DnMismatch::NotInCertificate {
            attribute: "OU".into(),
            claimed: "x".into()
        })
    );
    // Multisets: two OUs must both be there.
    assert!(subset("OU=a,OU=b", "OU=b,CN=x,OU=a", &["OU"]).is_ok());
    assert!(subset("OU=a", "OU=b,CN=x,OU=a", &["OU"]).is_err());
    assert_eq!(
        subset("CN=c", cert, &[]),
        Err(DnMismatch::EmptyAttributeSubset)
    );
    let err = subset("CN=c", cert, &["Bogus"]);
    assert_eq!(err, Err(DnMismatch::UnknownSubsetAttribute("Bogus".into())));
    assert!(err
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("Bogus"));
    assert_eq!(
        DnMismatch::EmptyAttributeSubset.to_string(),
        "attribute-subset matching needs at least one attribute type"
    );
}

#[test]
fn match_mode_serde() {
    let modes: Vec<MatchMode> =
        serde_json::from_str(r#"["strict-order","any-order","attribute-subset"]"#)
            .unwrap_or_default();
    assert_eq!(
        modes,
        vec![
            MatchMode::StrictOrder,
            MatchMode::AnyOrder,
            MatchMode::AttributeSubset
        ]
    );
    assert_eq!(MatchMode::default(), MatchMode::AnyOrder);
    assert_eq!(ParseMode::default(), ParseMode::Lenient);
}

#[test]
fn error_messages_carry_positions() {
    assert_eq!(strict_err("C = GB").to_string(), "expected '=' at 1");
    assert!(strict_err(r"OU=C:\TPP").to_string().contains("at 5"));
    assert!(strict_err("Bogus=x").to_string().contains("`Bogus`"));
}
