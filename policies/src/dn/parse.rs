//! RFC 4514 string parser, with an optional lenient mode for RFC 2253 §4 / RFC 1779 forms.
//!
//! Strict mode is the RFC 4514 §3 grammar alone. Lenient mode additionally accepts: spaces
//! around `,` `+` `=` and at both ends; `;` as an RDN separator; `"quoted"` values (with `\`
//! escapes inside); the `OID.` / `oid.` prefix; the `E` and `S` aliases; unescaped `<` and `>`;
//! and unescaped trailing spaces in a value (they are dropped, as RFC 2253 §4 allows).
//!
//! Positions in errors are byte offsets into the input. Escaped bytes (`\XX`) must form valid
//! UTF-8 together with the rest of the value. `#hex` values are BER-decoded (see `der`).

use super::der::{decode_ber_value, AvaValue, MAX_AVAS, MAX_RDNS};
use super::oid::{is_numeric_oid, lookup_descriptor};
use super::{Ava, DnError, ParseMode, Rdn};

/// Longest DN string accepted, in bytes.
pub(crate) const MAX_DN_LEN: usize = 8 * 1024;

/// Parses a DN string into RDNs, in the order written.
pub(crate) fn parse(s: &str, mode: ParseMode) -> Result<Vec<Rdn>, DnError> {
    if s.len() > MAX_DN_LEN {
        return Err(DnError::TooLong {
            len: s.len(),
            max: MAX_DN_LEN,
        });
    }
    let mut p = Parser {
        src: s,
        b: s.as_bytes(),
        pos: 0,
        lenient: mode == ParseMode::Lenient,
    };
    p.skip_spaces();
    let mut rdns = Vec::new();
    if p.at_end() {
        return Ok(rdns);
    }
    loop {
        if rdns.len() >= MAX_RDNS {
            return Err(DnError::TooManyRdns { max: MAX_RDNS });
        }
        rdns.push(p.rdn()?);
        p.skip_spaces();
        match p.peek() {
            None => return Ok(rdns),
            Some(b',') => {}
            Some(b';') if p.lenient => {}
            Some(_) => return Err(p.unexpected()),
        }
        let sep = p.pos;
        p.pos += 1;
        p.skip_spaces();
        if p.at_end() {
            return Err(DnError::TrailingSeparator { pos: sep });
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    lenient: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// Lenient mode only: skip SPACEs.
    fn skip_spaces(&mut self) {
        if self.lenient {
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
        }
    }

    /// The character at `pos` as an "unexpected character" error.
    fn unexpected(&self) -> DnError {
        let ch = self
            .src
            .get(self.pos..)
            .and_then(|r| r.chars().next())
            .unwrap_or('\u{FFFD}');
        DnError::UnexpectedChar { ch, pos: self.pos }
    }

    fn rdn(&mut self) -> Result<Rdn, DnError> {
        let mut avas = vec![self.ava()?];
        loop {
            self.skip_spaces();
            if self.peek() != Some(b'+') {
                break;
            }
            let sep = self.pos;
            self.pos += 1;
            self.skip_spaces();
            if self.at_end() {
                return Err(DnError::TrailingSeparator { pos: sep });
            }
            if avas.len() >= MAX_AVAS {
                return Err(DnError::TooManyAvas { max: MAX_AVAS });
            }
            avas.push(self.ava()?);
        }
        Ok(Rdn::from_avas(avas))
    }

    fn ava(&mut self) -> Result<Ava, DnError> {
        let oid = self.attribute_type()?;
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return Err(DnError::ExpectedEquals { pos: self.pos });
        }
        self.pos += 1;
        self.skip_spaces();
        let value = match self.peek() {
            Some(b'#') => self.hexstring()?,
            Some(b'"') if self.lenient => AvaValue::Text(self.quoted()?),
            _ => AvaValue::Text(self.string()?),
        };
        Ok(Ava::from_value(oid, value))
    }

    /// `attributeType = descr / numericoid`, plus `OID.` in lenient mode. Returns a dotted OID.
    fn attribute_type(&mut self) -> Result<String, DnError> {
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() => {
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'-') {
                    self.pos += 1;
                }
                let descr = self.src.get(start..self.pos).unwrap_or_default();
                if self.lenient && descr.eq_ignore_ascii_case("oid") && self.peek() == Some(b'.') {
                    self.pos += 1;
                    return self.numeric_oid();
                }
                lookup_descriptor(descr, self.lenient)
                    .map(str::to_string)
                    .ok_or_else(|| DnError::UnknownAttributeType(descr.to_string()))
            }
            Some(c) if c.is_ascii_digit() => self.numeric_oid(),
            _ => Err(DnError::BadAttributeType { pos: start }),
        }
    }

    fn numeric_oid(&mut self) -> Result<String, DnError> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit() || c == b'.') {
            self.pos += 1;
        }
        let oid = self.src.get(start..self.pos).unwrap_or_default();
        let followed_by_keychar =
            matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'-');
        if followed_by_keychar || !is_numeric_oid(oid) {
            return Err(DnError::BadAttributeType { pos: start });
        }
        Ok(oid.to_string())
    }

    /// `"#" hexstring`: BER of the value.
    fn hexstring(&mut self) -> Result<AvaValue, DnError> {
        let start = self.pos;
        self.pos += 1; // '#'
        let digits_start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_hexdigit()) {
            self.pos += 1;
        }
        let digits = self.b.get(digits_start..self.pos).unwrap_or_default();
        self.skip_spaces();
        match self.peek() {
            None | Some(b',' | b'+') => {}
            Some(b';') if self.lenient => {}
            Some(_) => {
                return Err(DnError::BadHexString {
                    pos: start,
                    reason: format!("unexpected character at {}", self.pos),
                });
            }
        }
        if digits.is_empty() || digits.len() % 2 != 0 {
            return Err(DnError::BadHexString {
                pos: start,
                reason: format!("{} hex digits; need a non-zero even number", digits.len()),
            });
        }
        let bytes: Vec<u8> = digits
            .chunks_exact(2)
            .map(|p| (hex_val(p[0]) << 4) | hex_val(p[1]))
            .collect();
        decode_ber_value(&bytes)
    }

    /// Lenient: `"` *( quotechar / pair ) `"`.
    fn quoted(&mut self) -> Result<String, DnError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut buf = Vec::new();
        loop {
            match self.peek() {
                None => return Err(DnError::UnterminatedQuote { pos: start }),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.escape(&mut buf)?;
                }
                Some(0) => return Err(self.unexpected()),
                Some(c) => {
                    buf.push(c);
                    self.pos += 1;
                }
            }
        }
        let value = String::from_utf8(buf).map_err(|_| DnError::InvalidUtf8 { pos: start })?;
        // After the closing quote only spaces, a separator or the end may follow; the caller
        // checks the separator.
        self.skip_spaces();
        match self.peek() {
            None | Some(b',' | b'+' | b';') => Ok(value),
            Some(_) => Err(self.unexpected()),
        }
    }

    /// An unquoted RFC 4514 `string`.
    fn string(&mut self) -> Result<String, DnError> {
        let start = self.pos;
        let mut buf: Vec<u8> = Vec::new();
        // Length of `buf` up to and including the last character that is not an unescaped space.
        let mut keep = 0usize;
        let mut trailing_space_at = None;
        while let Some(c) = self.peek() {
            match c {
                b',' | b'+' => break,
                b';' if self.lenient => break,
                b'\\' => {
                    self.escape(&mut buf)?;
                    keep = buf.len();
                    trailing_space_at = None;
                    continue;
                }
                b'"' | b';' | 0 => return Err(self.unexpected()),
                b'<' | b'>' if !self.lenient => return Err(self.unexpected()),
                b' ' => {
                    if self.pos == start && !self.lenient {
                        return Err(DnError::UnescapedSpace { pos: self.pos });
                    }
                    if trailing_space_at.is_none() {
                        trailing_space_at = Some(self.pos);
                    }
                    buf.push(c);
                }
                _ => {
                    buf.push(c);
                    keep = buf.len();
                    trailing_space_at = None;
                }
            }
            self.pos += 1;
        }
        if let Some(pos) = trailing_space_at {
            if !self.lenient {
                return Err(DnError::UnescapedSpace { pos });
            }
            buf.truncate(keep);
        }
        String::from_utf8(buf).map_err(|_| DnError::InvalidUtf8 { pos: start })
    }

    /// `pair = ESC ( ESC / special / hexpair )`, at `pos` (the backslash).
    fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), DnError> {
        let at = self.pos;
        let next = self.b.get(at + 1).copied();
        match next {
            Some(c @ (b'\\' | b' ' | b'#' | b'=' | b'"' | b'+' | b',' | b';' | b'<' | b'>')) => {
                buf.push(c);
                self.pos += 2;
                Ok(())
            }
            Some(h) if h.is_ascii_hexdigit() => match self.b.get(at + 2).copied() {
                Some(l) if l.is_ascii_hexdigit() => {
                    buf.push((hex_val(h) << 4) | hex_val(l));
                    self.pos += 3;
                    Ok(())
                }
                _ => Err(DnError::BadHexEscape { pos: at }),
            },
            _ => Err(DnError::InvalidEscape { pos: at }),
        }
    }
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}
