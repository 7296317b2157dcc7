//! Just enough DER: reading tag-length-value elements (definite lengths only, at most four
//! length bytes) and writing them.

/// Universal and context tags used by OCSP.
pub const SEQUENCE: u8 = 0x30;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const ENUMERATED: u8 = 0x0a;
pub const GENERALIZED_TIME: u8 = 0x18;

/// A context-specific tag: `[n]`, constructed or primitive.
pub const fn context(n: u8, constructed: bool) -> u8 {
    0x80 | if constructed { 0x20 } else { 0 } | n
}

/// One element: its tag, its contents, and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
    pub raw: &'a [u8],
}

/// Elements read one after another from a byte string.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element's tag, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element, whatever its tag.
    pub fn any(&mut self) -> Option<Element<'a>> {
        let (&tag, after_tag) = self.rest.split_first()?;
        // High tag numbers (0x1f) never occur in OCSP.
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, after_len) = after_tag.split_first()?;
        let (len, body) = if first < 0x80 {
            (usize::from(first), after_len)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || after_len.len() < n {
                return None;
            }
            let len = after_len[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &after_len[n..])
        };
        if body.len() < len {
            return None;
        }
        let header = self.rest.len() - body.len();
        let raw = &self.rest[..header + len];
        let contents = &body[..len];
        self.rest = &body[len..];
        Some(Element { tag, contents, raw })
    }

    /// The next element, which must have `tag`.
    pub fn expect(&mut self, tag: u8) -> Option<Element<'a>> {
        if self.peek_tag() != Some(tag) {
            return None;
        }
        self.any()
    }

    /// The next element when it has `tag`; nothing consumed otherwise.
    pub fn optional(&mut self, tag: u8) -> Option<Element<'a>> {
        if self.peek_tag() == Some(tag) {
            self.any()
        } else {
            None
        }
    }
}

/// The contents of a SEQUENCE (or other constructed element), as a reader.
pub fn inner<'a>(e: Element<'a>) -> Reader<'a> {
    Reader::new(e.contents)
}

/// Encode one element.
pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// A SEQUENCE (or any constructed `tag`) of already-encoded parts.
pub fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// A positive INTEGER from big-endian magnitude bytes (a leading zero added when needed).
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed = {
        let start = magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(magnitude.len());
        &magnitude[start..]
    };
    let mut contents = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        contents.push(0);
    }
    contents.extend_from_slice(trimmed);
    tlv(INTEGER, &contents)
}

/// Dotted form of an OID's contents (`None` when malformed).
pub fn oid_string(contents: &[u8]) -> Option<String> {
    let (&first, rest) = contents.split_first()?;
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    let mut open = false;
    for b in std::iter::once(first).chain(rest.iter().copied()) {
        if value > (u64::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u64::from(b & 0x7f);
        open = b & 0x80 != 0;
        if !open {
            arcs.push(value);
            value = 0;
        }
    }
    if open {
        return None;
    }
    let head = *arcs.first()?;
    let (a, b) = match head {
        0..=39 => (0, head),
        40..=79 => (1, head - 40),
        _ => (2, head - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in &arcs[1..] {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let body = vec![7u8; len];
            let enc = tlv(OCTET_STRING, &body);
            let mut r = Reader::new(&enc);
            let e = r.expect(OCTET_STRING).unwrap();
            assert_eq!(e.contents.len(), len);
            assert_eq!(e.raw, enc.as_slice());
            assert!(r.is_empty());
        }
    }

    #[test]
    fn refuses_truncation_indefinite_and_oversized_lengths() {
        assert!(Reader::new(&[0x30, 0x05, 1, 2]).any().is_none());
        assert!(Reader::new(&[0x30, 0x80, 0, 0]).any().is_none());
        assert!(Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).any().is_none());
        assert!(Reader::new(&[0x30]).any().is_none());
        assert!(Reader::new(&[0x1f, 0x01, 0]).any().is_none());
    }

    #[test]
    fn integers_keep_their_sign_and_oids_print_dotted() {
        assert_eq!(unsigned_integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(unsigned_integer(&[]), [0x02, 0x01, 0x00]);
        assert_eq!(
            oid_string(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01]).unwrap(),
            "1.3.6.1.5.5.7.48.1"
        );
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]).unwrap(),
            "1.2.840.10045.4.3.2"
        );
        assert!(oid_string(&[0x2b, 0x86]).is_none());
    }
}
