//! Attribute types: the descriptor ↔ dotted-OID table, descriptor lookup and dotted-OID syntax.
//!
//! Descriptors are matched without regard to case (RFC 4512 §1.4). Every known type has one
//! canonical descriptor, used when a DN is printed; any other type prints as its dotted OID.

/// One known attribute type.
struct AttrType {
    oid: &'static str,
    /// Canonical descriptor, printed by `Dn::to_rfc4514`.
    canonical: &'static str,
    /// Other accepted spellings, in every parse mode (matched case-insensitively).
    aliases: &'static [&'static str],
    /// Spellings accepted only in lenient mode (RFC 1779 / vendor aliases).
    lenient_aliases: &'static [&'static str],
}

const fn t(
    oid: &'static str,
    canonical: &'static str,
    aliases: &'static [&'static str],
    lenient_aliases: &'static [&'static str],
) -> AttrType {
    AttrType {
        oid,
        canonical,
        aliases,
        lenient_aliases,
    }
}

/// The attribute types dcrgate knows by name.
static TABLE: &[AttrType] = &[
    t("2.5.4.3", "CN", &["commonName"], &[]),
    t("2.5.4.4", "SN", &["surname"], &[]),
    t("2.5.4.5", "serialNumber", &[], &[]),
    t("2.5.4.6", "C", &["countryName"], &[]),
    t("2.5.4.7", "L", &["localityName"], &[]),
    t("2.5.4.8", "ST", &["stateOrProvinceName"], &["S"]),
    t("2.5.4.9", "STREET", &["streetAddress"], &[]),
    t("2.5.4.10", "O", &["organizationName"], &[]),
    t("2.5.4.11", "OU", &["organizationalUnitName"], &[]),
    t("2.5.4.12", "title", &[], &[]),
    t("2.5.4.13", "description", &[], &[]),
    t("2.5.4.15", "businessCategory", &[], &[]),
    t("2.5.4.17", "postalCode", &[], &[]),
    t("2.5.4.18", "postOfficeBox", &[], &[]),
    t("2.5.4.20", "telephoneNumber", &[], &[]),
    t("2.5.4.41", "name", &[], &[]),
    t("2.5.4.42", "GN", &["givenName"], &[]),
    t("2.5.4.43", "initials", &[], &[]),
    t("2.5.4.44", "generationQualifier", &[], &[]),
    t("2.5.4.45", "x500UniqueIdentifier", &[], &[]),
    t("2.5.4.46", "dnQualifier", &[], &[]),
    t("2.5.4.65", "pseudonym", &[], &[]),
    t("2.5.4.97", "organizationIdentifier", &[], &[]),
    t("0.9.2342.19200300.100.1.1", "UID", &["userid"], &[]),
    t(
        "0.9.2342.19200300.100.1.25",
        "DC",
        &["domainComponent"],
        &[],
    ),
    t("1.2.840.113549.1.9.1", "emailAddress", &[], &["E"]),
    t("1.2.840.113549.1.9.2", "unstructuredName", &[], &[]),
    t(
        "1.3.6.1.4.1.311.60.2.1.1",
        "jurisdictionL",
        &["jurisdictionLocalityName"],
        &[],
    ),
    t(
        "1.3.6.1.4.1.311.60.2.1.2",
        "jurisdictionST",
        &["jurisdictionStateOrProvinceName"],
        &[],
    ),
    t(
        "1.3.6.1.4.1.311.60.2.1.3",
        "jurisdictionC",
        &["jurisdictionCountryName"],
        &[],
    ),
];

/// Looks a descriptor up (case-insensitively). `lenient` also accepts the RFC 1779 / vendor
/// aliases (`E`, `S`). Returns the dotted OID.
pub(crate) fn lookup_descriptor(name: &str, lenient: bool) -> Option<&'static str> {
    TABLE.iter().find_map(|a| {
        let hit = a.canonical.eq_ignore_ascii_case(name)
            || a.aliases.iter().any(|n| n.eq_ignore_ascii_case(name))
            || (lenient
                && a.lenient_aliases
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name)));
        hit.then_some(a.oid)
    })
}

/// The canonical descriptor of a dotted OID, if the type is known.
pub(crate) fn canonical_name(oid: &str) -> Option<&'static str> {
    TABLE.iter().find(|a| a.oid == oid).map(|a| a.canonical)
}

/// The descriptor of a known attribute OID (`"2.5.4.97"` → `"organizationIdentifier"`).
pub fn attribute_name(oid: &str) -> Option<&'static str> {
    canonical_name(oid)
}

/// Sort rank of a type inside a multi-valued RDN: table order for known types (so `CN` comes
/// before `UID`), after them unknown types.
pub(crate) fn rank(oid: &str) -> usize {
    TABLE
        .iter()
        .position(|a| a.oid == oid)
        .unwrap_or(TABLE.len())
}

/// Checks RFC 4512 `numericoid` syntax: `number 1*( "." number )`, no leading zeros, every arc
/// fitting in a `u64` (so the text is the one canonical spelling of the OID).
pub(crate) fn is_numeric_oid(s: &str) -> bool {
    let mut arcs = 0usize;
    for arc in s.split('.') {
        let b = arc.as_bytes();
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return false;
        }
        if b.len() > 1 && b.first() == Some(&b'0') {
            return false;
        }
        if arc.parse::<u64>().is_err() {
            return false;
        }
        arcs += 1;
    }
    arcs >= 2
}

/// Resolve a descriptor (`"O"`, `"organizationIdentifier"`, any case), a dotted OID
/// (`"2.5.4.97"`) or an `OID.`-prefixed dotted OID (`"OID.2.5.4.97"`) to a dotted OID.
///
/// Lenient aliases (`E`, `S`) are accepted too. Returns `None` for unknown descriptors and
/// malformed OIDs.
pub fn attribute_oid(name: &str) -> Option<String> {
    let name = name.trim();
    let dotted = match name.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("oid.") => name.get(4..).unwrap_or(""),
        _ => name,
    };
    if is_numeric_oid(dotted) {
        return Some(dotted.to_string());
    }
    if dotted.len() != name.len() {
        // "OID." followed by something that is not a dotted OID.
        return None;
    }
    lookup_descriptor(name, true).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_resolve_case_insensitively() {
        assert_eq!(attribute_oid("O").as_deref(), Some("2.5.4.10"));
        assert_eq!(
            attribute_oid("organizationName").as_deref(),
            Some("2.5.4.10")
        );
        assert_eq!(
            attribute_oid("ORGANIZATIONIDENTIFIER").as_deref(),
            Some("2.5.4.97")
        );
        assert_eq!(attribute_oid("serialnumber").as_deref(), Some("2.5.4.5"));
        assert_eq!(attribute_oid("E").as_deref(), Some("1.2.840.113549.1.9.1"));
        assert_eq!(
            attribute_oid("dc").as_deref(),
            Some("0.9.2342.19200300.100.1.25")
        );
        assert_eq!(attribute_oid("street").as_deref(), Some("2.5.4.9"));
        assert_eq!(
            attribute_oid("jurisdictionC").as_deref(),
            Some("1.3.6.1.4.1.311.60.2.1.3")
        );
    }

    #[test]
    fn dotted_oids_with_and_without_prefix() {
        assert_eq!(attribute_oid("2.5.4.97").as_deref(), Some("2.5.4.97"));
        assert_eq!(attribute_oid("OID.2.5.4.97").as_deref(), Some("2.5.4.97"));
        assert_eq!(attribute_oid("oid.1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(attribute_oid("2.5.4.097"), None);
        assert_eq!(attribute_oid("2"), None);
        assert_eq!(attribute_oid("2..4"), None);
        assert_eq!(attribute_oid("OID.CN"), None);
        assert_eq!(attribute_oid("1.99999999999999999999999"), None);
        assert_eq!(attribute_oid("Ltd"), None);
        assert_eq!(attribute_oid(""), None);
    }

    #[test]
    fn lenient_only_aliases() {
        assert_eq!(lookup_descriptor("E", false), None);
        assert_eq!(lookup_descriptor("e", true), Some("1.2.840.113549.1.9.1"));
        assert_eq!(lookup_descriptor("S", false), None);
        assert_eq!(lookup_descriptor("S", true), Some("2.5.4.8"));
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("2.5.4.9"), Some("STREET"));
        assert_eq!(canonical_name("1.2.840.113549.1.9.1"), Some("emailAddress"));
        assert_eq!(canonical_name("1.2.3.4"), None);
    }
}
