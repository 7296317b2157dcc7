//! DN matching modes and mismatch explanations.
//!
//! Two AVAs match when they have the same attribute type and the same RFC 4518 prepared value
//! (caseIgnoreMatch); two RDNs match when they hold the same multiset of AVAs (AVA order inside a
//! multi-valued RDN is free). RDNs are never split, merged or regrouped.
//!
//! When DNs do not match, [`DnMismatch`] names the first attribute that differs and both values,
//! so that a TPP developer can fix the claim.

use super::{attribute_oid, Ava, Dn, Rdn};

/// How a claimed DN is compared with the certificate subject.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchMode {
    /// The RDN sequences are equal position by position, either in RFC 4514 order or fully
    /// reversed (certificate / ASN.1 order, as `openssl x509 -subject` prints it).
    StrictOrder,
    /// The same multiset of RDNs, in any order.
    #[default]
    AnyOrder,
    /// Only the listed attribute types are compared: for each, the multiset of prepared values
    /// must be equal. Everything else is ignored. An empty list never matches.
    AttributeSubset,
}

/// Why two DNs do not match. Attributes are named by descriptor (`O`, `organizationIdentifier`)
/// or dotted OID; values are the decoded, unprepared values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnMismatch {
    /// The same attribute has a different value.
    #[error("{attribute} differs: the claim has {claimed:?}, the certificate has {presented:?}")]
    ValueDiffers {
        /// The attribute.
        attribute: String,
        /// The claim's value.
        claimed: String,
        /// The certificate's value.
        presented: String,
    },
    /// The claim has an attribute value the certificate subject does not.
    #[error("the claim has {attribute}={claimed:?}, which is not in the certificate subject")]
    NotInCertificate {
        /// The attribute.
        attribute: String,
        /// The claim's value.
        claimed: String,
    },
    /// The certificate subject has an attribute value the claim does not.
    #[error("the certificate subject has {attribute}={presented:?}, which the claim is missing")]
    MissingFromClaim {
        /// The attribute.
        attribute: String,
        /// The certificate's value.
        presented: String,
    },
    /// The same value under a different attribute type.
    #[error("{value:?} is {claimed_attribute} in the claim but {presented_attribute} in the certificate")]
    AttributeTypeDiffers {
        /// The type in the claim.
        claimed_attribute: String,
        /// The type in the certificate.
        presented_attribute: String,
        /// The claim's value.
        value: String,
    },
    /// The same RDNs in an order that is neither RFC 4514 order nor its exact reverse.
    #[error("RDN {position} of the claim is {claimed}, but the certificate has {presented} there; list the RDNs in RFC 4514 order (or exactly reversed)")]
    OrderDiffers {
        /// 1-based position in the claim.
        position: usize,
        /// The claim's RDN at that position.
        claimed: String,
        /// The certificate's RDN at that position.
        presented: String,
    },
    /// The same attribute values, grouped into RDNs differently.
    #[error("RDN grouping differs: the claim has {claimed}, the certificate has {presented}; multi-valued RDNs (joined with '+') may not be split, merged or regrouped")]
    RdnGrouping {
        /// The claim's RDNs involved, comma-separated.
        claimed: String,
        /// The certificate's RDNs involved, comma-separated.
        presented: String,
    },
    /// `AttributeSubset` names an attribute type that is not known.
    #[error("attribute-subset matching names an unknown attribute type {0:?}")]
    UnknownSubsetAttribute(String),
    /// `AttributeSubset` with no attribute types.
    #[error("attribute-subset matching needs at least one attribute type")]
    EmptyAttributeSubset,
}

/// Compares the DN a client claims with the DN its certificate presents.
///
/// `subset` lists the attribute types (dotted OIDs; descriptors are accepted too) compared in
/// [`MatchMode::AttributeSubset`]; the other modes ignore it.
pub fn match_dn(
    claimed: &Dn,
    presented: &Dn,
    mode: &MatchMode,
    subset: &[String],
) -> Result<(), DnMismatch> {
    match mode {
        MatchMode::StrictOrder => strict_order(claimed.rdns(), presented.rdns()),
        MatchMode::AnyOrder => match multiset_difference(claimed.rdns(), presented.rdns()) {
            None => Ok(()),
            Some(m) => Err(m),
        },
        MatchMode::AttributeSubset => attribute_subset(claimed, presented, subset),
    }
}

fn strict_order(c: &[Rdn], p: &[Rdn]) -> Result<(), DnMismatch> {
    let same_len = c.len() == p.len();
    let forward = same_len && c.iter().zip(p).all(|(a, b)| a.matches(b));
    let reversed = same_len && c.iter().zip(p.iter().rev()).all(|(a, b)| a.matches(b));
    if forward || reversed {
        return Ok(());
    }
    if let Some(m) = multiset_difference(c, p) {
        return Err(m);
    }
    // Same RDNs, wrong order. Explain against the closer of the two accepted orders.
    let hits =
        |it: &mut dyn Iterator<Item = &Rdn>| c.iter().zip(it).filter(|(a, b)| a.matches(b)).count();
    let use_reversed = hits(&mut p.iter().rev()) > hits(&mut p.iter());
    let expected: Vec<&Rdn> = if use_reversed {
        p.iter().rev().collect()
    } else {
        p.iter().collect()
    };
    let (i, claimed, presented) = c
        .iter()
        .zip(expected)
        .enumerate()
        .find(|(_, (a, b))| !a.matches(b))
        .map(|(i, (a, b))| (i, a.to_string(), b.to_string()))
        .unwrap_or_default();
    Err(DnMismatch::OrderDiffers {
        position: i + 1,
        claimed,
        presented,
    })
}

/// `None` when `c` and `p` hold the same multiset of RDNs; otherwise what differs.
fn multiset_difference(c: &[Rdn], p: &[Rdn]) -> Option<DnMismatch> {
    let mut used = vec![false; p.len()];
    let mut extra_c: Vec<&Rdn> = Vec::new();
    for rc in c {
        let found = p
            .iter()
            .zip(used.iter_mut())
            .find(|(rp, u)| !**u && rc.matches(rp));
        match found {
            Some((_, u)) => *u = true,
            None => extra_c.push(rc),
        }
    }
    let extra_p: Vec<&Rdn> = p
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(r, _)| r)
        .collect();
    if extra_c.is_empty() && extra_p.is_empty() {
        return None;
    }
    Some(explain(&extra_c, &extra_p))
}

/// Explains unmatched RDNs: first by attribute, then as a grouping difference.
fn explain(c: &[&Rdn], p: &[&Rdn]) -> DnMismatch {
    let mut ca: Vec<&Ava> = c.iter().flat_map(|r| r.avas()).collect();
    let mut pa: Vec<&Ava> = p.iter().flat_map(|r| r.avas()).collect();
    remove_common(&mut ca, &mut pa);
    match (ca.first(), pa.first()) {
        (None, None) => DnMismatch::RdnGrouping {
            claimed: join(c),
            presented: join(p),
        },
        (Some(a), _) => explain_ava(a, &pa),
        (None, Some(b)) => DnMismatch::MissingFromClaim {
            attribute: b.name().to_string(),
            presented: b.value().to_string(),
        },
    }
}

/// A claimed AVA that matched nothing, against the certificate's unmatched AVAs.
fn explain_ava(a: &Ava, pa: &[&Ava]) -> DnMismatch {
    if let Some(b) = pa.iter().find(|b| b.oid() == a.oid()) {
        return DnMismatch::ValueDiffers {
            attribute: a.name().to_string(),
            claimed: a.value().to_string(),
            presented: b.value().to_string(),
        };
    }
    if let Some(b) = pa
        .iter()
        .find(|b| b.binary == a.binary && b.prepared() == a.prepared())
    {
        return DnMismatch::AttributeTypeDiffers {
            claimed_attribute: a.name().to_string(),
            presented_attribute: b.name().to_string(),
            value: a.value().to_string(),
        };
    }
    DnMismatch::NotInCertificate {
        attribute: a.name().to_string(),
        claimed: a.value().to_string(),
    }
}

/// Removes matching pairs from both lists.
fn remove_common(ca: &mut Vec<&Ava>, pa: &mut Vec<&Ava>) {
    ca.retain(|a| match pa.iter().position(|b| a.matches(b)) {
        Some(i) => {
            pa.remove(i);
            false
        }
        None => true,
    });
}

fn join(rdns: &[&Rdn]) -> String {
    rdns.iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn attribute_subset(claimed: &Dn, presented: &Dn, subset: &[String]) -> Result<(), DnMismatch> {
    if subset.is_empty() {
        return Err(DnMismatch::EmptyAttributeSubset);
    }
    for name in subset {
        let oid =
            attribute_oid(name).ok_or_else(|| DnMismatch::UnknownSubsetAttribute(name.clone()))?;
        let mut ca = avas_of(claimed, &oid);
        let mut pa = avas_of(presented, &oid);
        remove_common(&mut ca, &mut pa);
        match (ca.first(), pa.first()) {
            (None, None) => {}
            (Some(a), _) => return Err(explain_ava(a, &pa)),
            (None, Some(b)) => {
                return Err(DnMismatch::MissingFromClaim {
                    attribute: b.name().to_string(),
                    presented: b.value().to_string(),
                })
            }
        }
    }
    Ok(())
}

fn avas_of<'d>(dn: &'d Dn, oid: &str) -> Vec<&'d Ava> {
    dn.rdns()
        .iter()
        .flat_map(|r| r.avas())
        .filter(|a| a.oid() == oid)
        .collect()
}
