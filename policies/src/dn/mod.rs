//! Distinguished names: RFC 4514 strings and DER `Name`s, RFC 4518 preparation, and matching.
//!
//! The question this module answers is whether the DN a client claims (the
//! `tls_client_auth_dn` registration claim, an RFC 4514 string) names the subject of the
//! certificate it presented (a DER `Name`).
//!
//! - [`Dn::parse`] reads a string in [`ParseMode::Strict`] (the RFC 4514 grammar alone) or
//!   [`ParseMode::Lenient`] (also RFC 2253 §4 / RFC 1779 forms, as tools print them: spaces
//!   around separators, `;`, `"quoted"` values, `OID.2.5.4.97`, `E`/`S`). Attribute types are
//!   descriptors (case-insensitive) or dotted OIDs; `#hex` values are BER-decoded, and the text
//!   they hold is compared, never the ASN.1 tag.
//! - [`Dn::from_der_name`] / [`Dn::from_certificate_der`] read a DER `Name`.
//! - Every value is prepared once, when the DN is built, with [`prepare_case_ignore`] (RFC 4518
//!   for RFC 4517 caseIgnoreMatch: map, full case fold, NFKC, insignificant spaces), so matching
//!   is plain string comparison. It applies to every attribute type, `C`, `serialNumber`, `DC`
//!   and `emailAddress` included. Values of non-string ASN.1 types are kept as opaque `#hex`
//!   and compare byte for byte.
//! - [`match_dn`] compares two DNs in a [`MatchMode`] and says precisely what differs
//!   ([`DnMismatch`]).
//!
//! **Order.** A [`Dn`] holds its RDNs in RFC 4514 order, most specific first (`CN=…,O=…,C=…`).
//! A DN parsed from a string keeps the order it was written in; a DN read from DER is reversed
//! from the ASN.1 order (`C, O, …, CN`) so both compare naturally. The AVAs of a multi-valued
//! RDN form a set; they are kept in a canonical order (known types in a fixed order, `CN` before
//! `UID`, then by OID and prepared value), so structural equality (`==`) does not depend on the
//! order they were written in. `==` compares the values exactly; use [`match_dn`] for
//! caseIgnoreMatch semantics.
//!
//! Inputs are attacker-controlled: parsing never panics, DN strings are limited to 8 KiB, and a
//! DN to 64 RDNs of at most 64 AVAs each.

mod der;
mod matcher;
mod oid;
mod parse;
mod prepare;

use std::fmt;

pub use matcher::{match_dn, DnMismatch, MatchMode};
pub use oid::{attribute_name, attribute_oid};
pub use prepare::prepare_case_ignore;

use der::AvaValue;

/// How strictly [`Dn::parse`] reads a DN string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseMode {
    /// The RFC 4514 §3 grammar only.
    Strict,
    /// RFC 4514 plus the RFC 2253 §4 / RFC 1779 leniencies: spaces around `,` `+` `=` and at
    /// both ends, `;` as RDN separator, `"quoted"` values, the `OID.` prefix, `E` and `S` as
    /// aliases of `emailAddress` and `ST`, unescaped `<` `>`, and unescaped trailing spaces
    /// (dropped).
    #[default]
    Lenient,
}

/// A parsed distinguished name, RDNs in RFC 4514 order (most specific first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn {
    rdns: Vec<Rdn>,
}

/// A relative distinguished name: a non-empty set of [`Ava`]s, in canonical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    avas: Vec<Ava>,
}

/// An attribute type and value: the type's dotted OID, the decoded value and its RFC 4518
/// prepared form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    oid: String,
    name: String,
    value: String,
    prepared: String,
    /// The value is not a character string: `value` is `#` and the hex of its TLV.
    binary: bool,
}

/// Why a DN could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// The string is longer than the limit.
    #[error("DN is {len} bytes long; at most {max} are accepted")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many RDNs.
    #[error("DN has more than {max} RDNs")]
    TooManyRdns {
        /// The limit.
        max: usize,
    },
    /// Too many AVAs in one RDN.
    #[error("an RDN has more than {max} attributes")]
    TooManyAvas {
        /// The limit.
        max: usize,
    },
    /// No attribute type (descriptor or dotted OID) where one must be.
    #[error("bad attribute type at {pos}: expected a name like `CN` or a dotted OID")]
    BadAttributeType {
        /// Byte offset.
        pos: usize,
    },
    /// A well-formed descriptor that is not known.
    #[error("unknown attribute type `{0}` (use its dotted OID)")]
    UnknownAttributeType(String),
    /// The attribute type is not followed by `=`.
    #[error("expected '=' at {pos}")]
    ExpectedEquals {
        /// Byte offset.
        pos: usize,
    },
    /// A character that is not allowed here (e.g. an unescaped `"`, `;` or `<` in strict mode).
    #[error("unexpected {ch:?} at {pos}; special characters in a value must be escaped with '\\'")]
    UnexpectedChar {
        /// The character.
        ch: char,
        /// Byte offset.
        pos: usize,
    },
    /// Strict mode: an unescaped leading or trailing space in a value.
    #[error("unescaped leading or trailing space at {pos}; write it as '\\ '")]
    UnescapedSpace {
        /// Byte offset.
        pos: usize,
    },
    /// A `\` not followed by a special character or two hex digits.
    #[error("invalid escape at {pos}: '\\' must be followed by one of ,+\"\\<>;#= or space, or by two hex digits")]
    InvalidEscape {
        /// Byte offset of the backslash.
        pos: usize,
    },
    /// A `\X` with only one hex digit.
    #[error("bad hex escape at {pos}: '\\' must be followed by two hex digits")]
    BadHexEscape {
        /// Byte offset of the backslash.
        pos: usize,
    },
    /// The bytes of a value (after `\XX` escapes) are not UTF-8.
    #[error("the escaped bytes of the value at {pos} are not valid UTF-8")]
    InvalidUtf8 {
        /// Byte offset of the value.
        pos: usize,
    },
    /// A `#` value that is not an even number of hex digits.
    #[error(
        "bad #hex value at {pos}: {reason} (a value starting with '#' must be escaped as '\\#')"
    )]
    BadHexString {
        /// Byte offset of the `#`.
        pos: usize,
        /// What is wrong.
        reason: String,
    },
    /// A `#hex` or DER value whose BER does not decode.
    #[error("bad BER-encoded value: {0}")]
    BadBer(String),
    /// Lenient mode: a quoted value without its closing quote.
    #[error("quoted value starting at {pos} is not terminated")]
    UnterminatedQuote {
        /// Byte offset of the opening quote.
        pos: usize,
    },
    /// A `,` `;` or `+` at the end.
    #[error("separator at {pos} is not followed by an attribute")]
    TrailingSeparator {
        /// Byte offset of the separator.
        pos: usize,
    },
    /// A malformed DER `Name` or certificate.
    #[error("bad DER: {0}")]
    Der(String),
}

impl Ava {
    fn from_value(oid: String, value: AvaValue) -> Ava {
        let name = oid::canonical_name(&oid).map_or_else(|| oid.clone(), str::to_string);
        match value {
            AvaValue::Text(value) => Ava {
                prepared: prepare_case_ignore(&value),
                oid,
                name,
                value,
                binary: false,
            },
            AvaValue::Binary(tlv) => {
                let mut value = String::with_capacity(1 + 2 * tlv.len());
                value.push('#');
                for b in tlv {
                    value.push_str(&format!("{b:02x}"));
                }
                Ava {
                    prepared: value.clone(),
                    oid,
                    name,
                    value,
                    binary: true,
                }
            }
        }
    }

    /// The attribute type's dotted OID, e.g. `"2.5.4.97"`.
    pub fn oid(&self) -> &str {
        &self.oid
    }

    /// The canonical descriptor (`"CN"`, `"organizationIdentifier"`, …), or the dotted OID for a
    /// type without one.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as decoded (escapes and BER removed), not prepared. For a value of a
    /// non-string ASN.1 type: `#` and the lower-case hex of its TLV.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The RFC 4518 caseIgnoreMatch form of the value; two values match when these are equal.
    pub fn prepared(&self) -> &str {
        &self.prepared
    }

    /// Canonical order inside an RDN.
    fn sort_key(&self) -> (usize, &str, bool, &str, &str) {
        (
            oid::rank(&self.oid),
            &self.oid,
            self.binary,
            &self.prepared,
            &self.value,
        )
    }

    /// Same type and same prepared value.
    pub(crate) fn matches(&self, other: &Ava) -> bool {
        self.oid == other.oid && self.binary == other.binary && self.prepared == other.prepared
    }
}

impl fmt::Display for Ava {
    /// `name=value` with minimal RFC 4514 escaping.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        f.write_str("=")?;
        if self.binary {
            f.write_str(&self.value)
        } else {
            f.write_str(&escape_value(&self.value))
        }
    }
}

/// RFC 4514 §2.4 escaping: `"` `+` `,` `;` `<` `>` `\` always, `#` and space at the start,
/// space at the end, and (beyond the minimum, so printed DNs stay on one line) C0 controls and
/// DEL as `\XX`.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

impl Rdn {
    fn from_avas(mut avas: Vec<Ava>) -> Rdn {
        avas.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        Rdn { avas }
    }

    /// The AVAs (at least one), in canonical order.
    pub fn avas(&self) -> &[Ava] {
        &self.avas
    }

    /// Same multiset of (type, prepared value).
    pub(crate) fn matches(&self, other: &Rdn) -> bool {
        // Both are sorted by a key that starts with (type, binary, prepared), so equal
        // multisets line up.
        self.avas.len() == other.avas.len()
            && self.avas.iter().zip(&other.avas).all(|(a, b)| a.matches(b))
    }
}

impl fmt::Display for Rdn {
    /// The AVAs joined with `+`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ava) in self.avas.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            fmt::Display::fmt(ava, f)?;
        }
        Ok(())
    }
}

impl Dn {
    /// Parses an RFC 4514 string. The empty string (and, in lenient mode, a string of spaces)
    /// is the empty DN.
    pub fn parse(s: &str, mode: ParseMode) -> Result<Dn, DnError> {
        parse::parse(s, mode).map(|rdns| Dn { rdns })
    }

    /// Reads a DER `Name` TLV (all of `name_der`, e.g. a certificate's raw subject). The RDNs
    /// are stored reversed, in RFC 4514 order.
    pub fn from_der_name(name_der: &[u8]) -> Result<Dn, DnError> {
        let mut rdns = Vec::new();
        for avas in der::decode_name(name_der)? {
            let avas = avas
                .into_iter()
                .map(|(oid, value)| Ava::from_value(oid, value))
                .collect();
            rdns.push(Rdn::from_avas(avas));
        }
        rdns.reverse();
        Ok(Dn { rdns })
    }

    /// The subject of a DER certificate.
    pub fn from_certificate_der(cert_der: &[u8]) -> Result<Dn, DnError> {
        Dn::from_der_name(der::certificate_subject(cert_der)?)
    }

    /// The RDNs, in RFC 4514 order (most specific first).
    pub fn rdns(&self) -> &[Rdn] {
        &self.rdns
    }

    /// Whether this is the empty DN (no RDNs).
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// Canonical RFC 4514 string: descriptor names where known (CN O OU C L ST STREET DC UID
    /// serialNumber organizationIdentifier emailAddress ...), dotted OID otherwise, minimal RFC
    /// 4514 escaping, the original (unprepared) values, RFC 4514 order.
    pub fn to_rfc4514(&self) -> String {
        self.to_string()
    }

    /// Values of one attribute type, in order. `oid` is a dotted OID (`"2.5.4.97"`); a
    /// descriptor (`"organizationIdentifier"`) works too.
    pub fn values_of(&self, oid: &str) -> Vec<&str> {
        let oid = attribute_oid(oid).unwrap_or_else(|| oid.to_string());
        self.rdns
            .iter()
            .flat_map(|r| &r.avas)
            .filter(|a| a.oid == oid)
            .map(|a| a.value.as_str())
            .collect()
    }
}

impl fmt::Display for Dn {
    /// Same as [`Dn::to_rfc4514`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            fmt::Display::fmt(rdn, f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
