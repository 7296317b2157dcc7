//! Subject names with the attribute shapes real Open Banking transport certificates carry.

use rcgen::{DistinguishedName, DnType, DnValue};

use crate::PkiError;

/// One subject attribute, in the order it is written into the certificate (ASN.1 order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// countryName (2.5.4.6), a PrintableString.
    Country(String),
    /// organizationName (2.5.4.10).
    Organization(String),
    /// organizationalUnitName (2.5.4.11).
    OrganizationalUnit(String),
    /// organizationIdentifier (2.5.4.97), as eIDAS / OBWAC certificates carry it.
    OrganizationIdentifier(String),
    /// commonName (2.5.4.3).
    CommonName(String),
}

/// The subject of a certificate to issue, attributes in certificate (ASN.1) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSpec {
    /// The attributes, each its own RDN.
    pub attributes: Vec<Attribute>,
}

impl SubjectSpec {
    /// An Open Banking legacy transport certificate: `C=GB, O=OpenBanking, OU=<org id>, CN=<software id>`.
    pub fn ob_legacy(org_id: &str, software_id: &str) -> Self {
        Self {
            attributes: vec![
                Attribute::Country("GB".into()),
                Attribute::Organization("OpenBanking".into()),
                Attribute::OrganizationalUnit(org_id.into()),
                Attribute::CommonName(software_id.into()),
            ],
        }
    }

    /// An OBWAC / eIDAS transport certificate:
    /// `C=GB, O=<name>, organizationIdentifier=<PSD id>, CN=<software id>`.
    pub fn obwac(org_name: &str, org_identifier: &str, software_id: &str) -> Self {
        Self {
            attributes: vec![
                Attribute::Country("GB".into()),
                Attribute::Organization(org_name.into()),
                Attribute::OrganizationIdentifier(org_identifier.into()),
                Attribute::CommonName(software_id.into()),
            ],
        }
    }

    /// A subject with only a common name.
    pub fn common_name(cn: &str) -> Self {
        Self {
            attributes: vec![Attribute::CommonName(cn.into())],
        }
    }

    /// The subject as an RFC 4514 string (reverse of certificate order). Values are escaped
    /// minimally; intended for the sample TPPs, whose values need no escaping.
    pub fn to_rfc4514(&self) -> String {
        self.attributes
            .iter()
            .rev()
            .map(|a| {
                let (name, value) = a.name_and_value();
                format!("{name}={}", escape(value))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    pub(crate) fn to_rcgen(&self) -> Result<DistinguishedName, PkiError> {
        let mut dn = DistinguishedName::new();
        for attribute in &self.attributes {
            let (ty, value) = match attribute {
                Attribute::Country(v) => (DnType::CountryName, printable("C", v)?),
                Attribute::Organization(v) => (DnType::OrganizationName, utf8(v)),
                Attribute::OrganizationalUnit(v) => (DnType::OrganizationalUnitName, utf8(v)),
                Attribute::OrganizationIdentifier(v) => {
                    (DnType::CustomDnType(vec![2, 5, 4, 97]), utf8(v))
                }
                Attribute::CommonName(v) => (DnType::CommonName, utf8(v)),
            };
            dn.push(ty, value);
        }
        Ok(dn)
    }
}

impl Attribute {
    fn name_and_value(&self) -> (&'static str, &str) {
        match self {
            Attribute::Country(v) => ("C", v),
            Attribute::Organization(v) => ("O", v),
            Attribute::OrganizationalUnit(v) => ("OU", v),
            Attribute::OrganizationIdentifier(v) => ("organizationIdentifier", v),
            Attribute::CommonName(v) => ("CN", v),
        }
    }
}

fn utf8(v: &str) -> DnValue {
    DnValue::Utf8String(v.to_owned())
}

fn printable(attribute: &'static str, v: &str) -> Result<DnValue, PkiError> {
    v.try_into()
        .map(DnValue::PrintableString)
        .map_err(|e: rcgen::Error| PkiError::Subject {
            attribute,
            reason: e.to_string(),
        })
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4514_is_reverse_of_certificate_order() {
        let s = SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-123456", "0015800001HQQrZAAX");
        assert_eq!(
            s.to_rfc4514(),
            "CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB"
        );
    }

    #[test]
    fn escapes_specials() {
        let s = SubjectSpec::common_name("Acme, Ltd");
        assert_eq!(s.to_rfc4514(), "CN=Acme\\, Ltd");
    }
}
