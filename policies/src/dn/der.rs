//! DER `Name` decoding and BER attribute-value decoding.
//!
//! The `Name` structure (`SEQUENCE OF SET OF SEQUENCE { OID, ANY }`) is walked here rather than
//! with `x509_parser::x509::X509Name::from_der`: x509-parser 0.16 ignores bytes left over inside
//! a container, so a malformed trailing RDN or AVA would be silently dropped. This walker
//! requires every container to be consumed exactly. x509-parser is used to parse whole
//! certificates and locate the subject's raw TLV.
//!
//! Attribute values (from DER, or from a `#hex` value in a DN string) decode by tag: UTF8String,
//! PrintableString, IA5String, NumericString and VisibleString as UTF-8, TeletexString as
//! Latin-1, BMPString as UTF-16BE (UCS-2), UniversalString as UCS-4BE. Only the text is kept,
//! never the tag. Any other universal or non-universal primitive or constructed type is kept as
//! an opaque value, re-encoded in a canonical (minimal-length) TLV.

use super::DnError;

/// Upper bound on RDNs in a DN and AVAs in an RDN (both parsers).
pub(crate) const MAX_RDNS: usize = 64;
/// Upper bound on AVAs in one RDN.
pub(crate) const MAX_AVAS: usize = 64;

/// A decoded attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AvaValue {
    /// A character string type: its text.
    Text(String),
    /// Any other type: its canonical TLV encoding.
    Binary(Vec<u8>),
}

/// One BER element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// 0 universal, 1 application, 2 context-specific, 3 private.
    class: u8,
    constructed: bool,
    tag: u32,
    content: &'a [u8],
}

/// Reads one definite-length element. Returns it and the bytes after it.
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let (&id, mut rest) = input.split_first().ok_or("truncated: missing tag")?;
    let class = id >> 6;
    let constructed = id & 0x20 != 0;
    let mut tag = u32::from(id & 0x1f);
    if tag == 0x1f {
        tag = 0;
        let mut n = 0;
        loop {
            let (&b, r) = rest.split_first().ok_or("truncated tag")?;
            rest = r;
            if n == 0 && b == 0x80 {
                return Err("non-minimal tag encoding".into());
            }
            n += 1;
            if n > 4 {
                return Err("tag number too large".into());
            }
            tag = (tag << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        if tag < 0x1f {
            return Err("non-minimal tag encoding".into());
        }
    }
    let (&l, r) = rest.split_first().ok_or("truncated: missing length")?;
    rest = r;
    let len = if l < 0x80 {
        usize::from(l)
    } else if l == 0x80 {
        return Err("indefinite length is not supported".into());
    } else {
        let n = usize::from(l & 0x7f);
        if n > 4 {
            return Err("length too large".into());
        }
        let bytes = rest.get(..n).ok_or("truncated length")?;
        rest = rest.get(n..).unwrap_or_default();
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let content = rest
        .get(..len)
        .ok_or("truncated: content shorter than its length")?;
    let after = rest.get(len..).unwrap_or_default();
    Ok((
        Tlv {
            class,
            constructed,
            tag,
            content,
        },
        after,
    ))
}

/// Reads exactly one element filling all of `input`.
fn read_single(input: &[u8]) -> Result<Tlv<'_>, String> {
    let (tlv, rest) = read_tlv(input)?;
    if !rest.is_empty() {
        return Err(format!("{} trailing byte(s) after the element", rest.len()));
    }
    Ok(tlv)
}

/// Canonical (DER-style minimal) encoding of an element.
fn encode_tlv(tlv: &Tlv<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(tlv.content.len() + 8);
    let id = (tlv.class << 6) | if tlv.constructed { 0x20 } else { 0 };
    if tlv.tag < 0x1f {
        // tag < 31 fits in the low five bits.
        out.push(id | (tlv.tag as u8));
    } else {
        out.push(id | 0x1f);
        let mut groups = Vec::new();
        let mut t = tlv.tag;
        loop {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
            if t == 0 {
                break;
            }
        }
        let last = groups.len() - 1;
        for (i, g) in groups.iter().rev().enumerate() {
            out.push(if i < last { g | 0x80 } else { *g });
        }
    }
    let len = tlv.content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(tlv.content);
    out
}

/// Decodes an attribute value element to text (string types) or an opaque value.
fn decode_value(tlv: &Tlv<'_>) -> Result<AvaValue, DnError> {
    const UTF8: u32 = 12;
    const NUMERIC: u32 = 18;
    const PRINTABLE: u32 = 19;
    const TELETEX: u32 = 20;
    const IA5: u32 = 22;
    const VISIBLE: u32 = 26;
    const UNIVERSAL: u32 = 28;
    const BMP: u32 = 30;
    let is_string = tlv.class == 0
        && matches!(
            tlv.tag,
            UTF8 | NUMERIC | PRINTABLE | TELETEX | IA5 | VISIBLE | UNIVERSAL | BMP
        );
    if !is_string {
        return Ok(AvaValue::Binary(encode_tlv(tlv)));
    }
    if tlv.constructed {
        return Err(DnError::BadBer(
            "constructed string encodings are not supported".into(),
        ));
    }
    let c = tlv.content;
    let text = match tlv.tag {
        TELETEX => c.iter().map(|&b| char::from(b)).collect(),
        BMP => {
            if c.len() % 2 != 0 {
                return Err(DnError::BadBer("BMPString of odd length".into()));
            }
            let units = c.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| DnError::BadBer("BMPString with an unpaired surrogate".into()))?
        }
        UNIVERSAL => {
            if c.len() % 4 != 0 {
                return Err(DnError::BadBer(
                    "UniversalString length is not a multiple of 4".into(),
                ));
            }
            c.chunks_exact(4)
                .map(|q| char::from_u32(u32::from_be_bytes([q[0], q[1], q[2], q[3]])))
                .collect::<Option<String>>()
                .ok_or_else(|| {
                    DnError::BadBer("UniversalString with an invalid code point".into())
                })?
        }
        // UTF8String, and the ASCII types (read as UTF-8, tolerating CAs that put UTF-8 or
        // out-of-charset characters in PrintableString).
        _ => String::from_utf8(c.to_vec())
            .map_err(|_| DnError::BadBer("string value is not valid UTF-8".into()))?,
    };
    Ok(AvaValue::Text(text))
}

/// Decodes the BER encoding of one attribute value (the bytes of a `#hex` value).
pub(crate) fn decode_ber_value(bytes: &[u8]) -> Result<AvaValue, DnError> {
    let tlv = read_single(bytes).map_err(DnError::BadBer)?;
    decode_value(&tlv)
}

/// Decodes a DER OID's content octets to its dotted form. Arcs must fit in a `u64`.
fn decode_oid(content: &[u8]) -> Result<String, DnError> {
    let bad = |why: &str| DnError::Der(format!("bad OBJECT IDENTIFIER: {why}"));
    if content.is_empty() {
        return Err(bad("empty"));
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut fresh = true;
    for &b in content {
        if fresh && b == 0x80 {
            return Err(bad("non-minimal sub-identifier"));
        }
        fresh = false;
        if acc > (u64::MAX >> 7) {
            return Err(bad("arc too large"));
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (first, second) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                arcs.push(acc);
            }
            acc = 0;
            fresh = true;
        }
    }
    if !fresh {
        return Err(bad("truncated"));
    }
    Ok(arcs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

/// One decoded AVA: dotted OID and value.
pub(crate) type RawAva = (String, AvaValue);

/// Walks a DER `Name` TLV (all of `input`). Returns the RDNs in ASN.1 order (most general
/// first), each as its AVAs in encoded order.
pub(crate) fn decode_name(input: &[u8]) -> Result<Vec<Vec<RawAva>>, DnError> {
    let der = |e: String| DnError::Der(e);
    let name = read_single(input).map_err(der)?;
    if name.class != 0 || !name.constructed || name.tag != 16 {
        return Err(DnError::Der("Name is not a SEQUENCE".into()));
    }
    let mut rdns = Vec::new();
    let mut rest = name.content;
    while !rest.is_empty() {
        if rdns.len() >= MAX_RDNS {
            return Err(DnError::TooManyRdns { max: MAX_RDNS });
        }
        let (set, r) = read_tlv(rest).map_err(der)?;
        rest = r;
        if set.class != 0 || !set.constructed || set.tag != 17 {
            return Err(DnError::Der(
                "RelativeDistinguishedName is not a SET".into(),
            ));
        }
        let mut avas = Vec::new();
        let mut inner = set.content;
        if inner.is_empty() {
            return Err(DnError::Der("empty RelativeDistinguishedName".into()));
        }
        while !inner.is_empty() {
            if avas.len() >= MAX_AVAS {
                return Err(DnError::TooManyAvas { max: MAX_AVAS });
            }
            let (seq, r) = read_tlv(inner).map_err(der)?;
            inner = r;
            if seq.class != 0 || !seq.constructed || seq.tag != 16 {
                return Err(DnError::Der(
                    "AttributeTypeAndValue is not a SEQUENCE".into(),
                ));
            }
            let (oid, r) = read_tlv(seq.content).map_err(der)?;
            if oid.class != 0 || oid.constructed || oid.tag != 6 {
                return Err(DnError::Der(
                    "attribute type is not an OBJECT IDENTIFIER".into(),
                ));
            }
            let value =
                read_single(r).map_err(|e| DnError::Der(format!("attribute value: {e}")))?;
            avas.push((decode_oid(oid.content)?, decode_value(&value)?));
        }
        rdns.push(avas);
    }
    Ok(rdns)
}

/// The raw subject `Name` TLV of a DER certificate.
pub(crate) fn certificate_subject(cert_der: &[u8]) -> Result<&[u8], DnError> {
    use x509_parser::prelude::FromDer;
    let (rest, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der)
        .map_err(|e| DnError::Der(format!("certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(DnError::Der(format!(
            "certificate: {} trailing byte(s)",
            rest.len()
        )));
    }
    Ok(cert.tbs_certificate.subject.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        match decode_ber_value(bytes) {
            Ok(AvaValue::Text(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn string_types_decode_to_text() {
        assert_eq!(text(&[0x0c, 3, b'a', b'b', b'c']), "abc");
        assert_eq!(text(&[0x13, 3, b'a', b'b', b'c']), "abc");
        assert_eq!(text(&[0x16, 1, b'@']), "@");
        assert_eq!(text(&[0x12, 2, b'1', b'2']), "12");
        assert_eq!(text(&[0x1a, 1, b'x']), "x");
        assert_eq!(text(&[0x14, 2, b'M', 0xfc]), "Mü");
        assert_eq!(text(&[0x1e, 4, 0, b'M', 0, 0xfc]), "Mü");
        assert_eq!(text(&[0x1c, 4, 0, 1, 0xf6, 0x00]), "\u{1F600}");
        assert_eq!(text(&[0x0c, 0]), "");
        // Long-form length.
        assert_eq!(text(&[0x0c, 0x81, 1, b'z']), "z");
    }

    #[test]
    fn bad_ber_is_rejected() {
        for bad in [
            &[][..],
            &[0x0c],
            &[0x0c, 2, b'a'],
            &[0x0c, 1, b'a', b'b'],
            &[0x0c, 0x80, b'a', 0, 0],
            &[0x0c, 0x85, 1, 1, 1, 1, 1],
            &[0x0c, 1, 0xff],
            &[0x1e, 1, 0],
            &[0x1e, 2, 0xd8, 0],
            &[0x1c, 4, 0, 0x11, 0, 0],
            &[0x2c, 3, 0x0c, 1, b'a'],
            &[0x1f, 0x80, 0x01, 0],
        ] {
            assert!(decode_ber_value(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn other_types_are_opaque_and_canonical() {
        assert_eq!(
            decode_ber_value(&[0x04, 0x81, 2, 0xab, 0xcd]).ok(),
            Some(AvaValue::Binary(vec![0x04, 2, 0xab, 0xcd]))
        );
        assert_eq!(
            decode_ber_value(&[0x9f, 0x81, 0x00, 0]).ok(),
            Some(AvaValue::Binary(vec![0x9f, 0x81, 0x00, 0]))
        );
        let long = vec![0x61u8; 300];
        let mut tlv = vec![0x04, 0x82, 0x01, 0x2c];
        tlv.extend_from_slice(&long);
        assert_eq!(decode_ber_value(&tlv).ok(), Some(AvaValue::Binary(tlv)));
    }

    #[test]
    fn oids() {
        assert_eq!(
            decode_oid(&[0x55, 0x04, 0x61]).ok().as_deref(),
            Some("2.5.4.97")
        );
        assert_eq!(
            decode_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01])
                .ok()
                .as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(
            decode_oid(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19])
                .ok()
                .as_deref(),
            Some("0.9.2342.19200300.100.1.25")
        );
        assert!(decode_oid(&[]).is_err());
        assert!(decode_oid(&[0x55, 0x84]).is_err());
        assert!(decode_oid(&[0x55, 0x80, 0x01]).is_err());
        assert!(
            decode_oid(&[0x55, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
                .is_err()
        );
    }

    #[test]
    fn name_structure_must_be_exact() {
        // SEQUENCE { SET { SEQUENCE { 2.5.4.3, UTF8String "a" } } }
        let good = [
            0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a',
        ];
        let rdns = decode_name(&good).unwrap_or_default();
        assert_eq!(rdns.len(), 1);
        // Trailing garbage inside the AVA SEQUENCE (x509-parser would ignore it).
        let bad = [
            0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a', 0,
        ];
        assert!(decode_name(&bad).is_err());
        // Trailing garbage inside the SET.
        let bad = [
            0x30, 0x0d, 0x31, 0x0b, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a', 0,
        ];
        assert!(decode_name(&bad).is_err());
        // After the Name.
        let mut bad = good.to_vec();
        bad.push(0);
        assert!(decode_name(&bad).is_err());
        // Empty SET.
        assert!(decode_name(&[0x30, 0x02, 0x31, 0x00]).is_err());
        // Empty Name is fine.
        assert_eq!(decode_name(&[0x30, 0x00]).map(|r| r.len()).ok(), Some(0));
    }

    /// `tag` and `content` read back from one element.
    fn tlv_of(bytes: &[u8]) -> Result<(u8, bool, u32, Vec<u8>), String> {
        read_single(bytes).map(|t| (t.class, t.constructed, t.tag, t.content.to_vec()))
    }

    #[test]
    fn high_tag_numbers_are_read_minimal_and_bounded() {
        // Tag 31 is the smallest that needs the high form; 30 in the high form is non-minimal.
        assert_eq!(tlv_of(&[0x1f, 0x1f, 0]), Ok((0, false, 31, vec![])));
        assert_eq!(
            tlv_of(&[0x1f, 0x1e, 0]).err().as_deref(),
            Some("non-minimal tag encoding")
        );
        // A leading 0x80 group is non-minimal; a later one is not.
        assert_eq!(
            tlv_of(&[0x1f, 0x80, 0x20, 0]).err().as_deref(),
            Some("non-minimal tag encoding")
        );
        assert_eq!(
            tlv_of(&[0x1f, 0x81, 0x80, 0x00, 0]),
            Ok((0, false, 1 << 14, vec![]))
        );
        // Four groups are the most accepted.
        assert_eq!(
            tlv_of(&[0x1f, 0x81, 0x80, 0x80, 0x00, 0]),
            Ok((0, false, 1 << 21, vec![]))
        );
        assert_eq!(
            tlv_of(&[0x1f, 0x81, 0x80, 0x80, 0x80, 0x00, 0])
                .err()
                .as_deref(),
            Some("tag number too large")
        );
        // Class and constructed bits.
        assert_eq!(tlv_of(&[0xbf, 0x1f, 1, 7]), Ok((2, true, 31, vec![7])));
    }

    #[test]
    fn lengths_are_read_definite_and_bounded() {
        assert_eq!(
            tlv_of(&[0x04, 0x7f]).err().as_deref(),
            Some("truncated: content shorter than its length")
        );
        assert_eq!(
            tlv_of(&[0x04, 0x80, 0, 0]).err().as_deref(),
            Some("indefinite length is not supported")
        );
        // Up to four length octets.
        assert_eq!(
            tlv_of(&[0x04, 0x84, 0, 0, 0, 1, 0x41]),
            Ok((0, false, 4, vec![0x41]))
        );
        assert_eq!(
            tlv_of(&[0x04, 0x85, 0, 0, 0, 0, 1, 0x41]).err().as_deref(),
            Some("length too large")
        );
        let mut long = vec![0x04, 0x82, 0x01, 0x02];
        long.extend(std::iter::repeat_n(9u8, 258));
        assert_eq!(tlv_of(&long).map(|t| t.3.len()), Ok(258));
    }

    #[test]
    fn encoding_is_canonical_at_the_boundaries() {
        let enc = |class, constructed, tag, content: &[u8]| {
            encode_tlv(&Tlv {
                class,
                constructed,
                tag,
                content,
            })
        };
        assert_eq!(enc(0, false, 30, &[]), vec![0x1e, 0]);
        assert_eq!(enc(0, false, 31, &[]), vec![0x1f, 0x1f, 0]);
        assert_eq!(enc(2, true, 200, &[5]), vec![0xbf, 0x81, 0x48, 1, 5]);
        let c127 = vec![1u8; 127];
        assert_eq!(enc(0, false, 4, &c127)[..2], [0x04, 0x7f]);
        let c128 = vec![1u8; 128];
        assert_eq!(enc(0, false, 4, &c128)[..3], [0x04, 0x81, 0x80]);
        let c256 = vec![1u8; 256];
        assert_eq!(enc(0, false, 4, &c256)[..4], [0x04, 0x82, 0x01, 0x00]);
        // Whatever is read is written back identically when it was canonical.
        for canonical in [&[0x9f, 0x81, 0x48, 1, 5][..], &[0x24, 0][..]] {
            let t = read_single(canonical).unwrap();
            assert_eq!(encode_tlv(&t), canonical);
        }
    }

    #[test]
    fn oid_arcs_may_reach_u64_max_and_no_further() {
        fn base128(mut v: u64) -> Vec<u8> {
            let mut groups = vec![(v & 0x7f) as u8];
            v >>= 7;
            while v > 0 {
                groups.push(0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            groups.reverse();
            groups
        }
        let mut max = vec![0x2a];
        max.extend(base128(u64::MAX));
        assert_eq!(
            decode_oid(&max).ok().as_deref(),
            Some("1.2.18446744073709551615")
        );
        let mut over = vec![0x2a, 0x82];
        over.extend(base128(u64::MAX));
        assert!(decode_oid(&over).is_err());
    }

    #[test]
    fn every_element_of_a_name_needs_its_class_form_and_tag() {
        // SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String "a" } } }, then one identifier
        // octet changed at a time: the class alone, the constructed bit alone.
        let good = [
            0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a',
        ];
        assert!(decode_name(&good).is_ok());
        for (at, id) in [
            (0, 0xb0), // Name: context class
            (0, 0x10), // Name: primitive
            (2, 0xb1), // RDN: context class
            (2, 0x11), // RDN: primitive
            (4, 0xb0), // AVA: context class
            (4, 0x10), // AVA: primitive
            (6, 0x86), // type: context class
            (6, 0x26), // type: constructed
        ] {
            let mut bad = good;
            bad[at] = id;
            assert!(decode_name(&bad).is_err(), "{at}: {id:#04x}");
        }
    }
}
