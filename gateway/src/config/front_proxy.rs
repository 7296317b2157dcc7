//! `[front_proxy]`, validated: the subjects (RFC 4514, kept canonical) or thumbprints that
//! recognise the front proxy's client certificate, and the networks it connects from.

use std::net::IpAddr;

use dcrgate_policies::dn::{Dn, ParseMode};

use super::file::FrontProxySection;
use super::validate::Validator;
use super::{ConfigError, FrontProxy};

impl Validator<'_> {
    /// `[front_proxy]`, validated; `None` when it names no certificate (the mode is off).
    pub fn front_proxy(&self, f: &FrontProxySection) -> Result<Option<FrontProxy>, ConfigError> {
        if f.subjects.is_empty() && f.thumbprints.is_empty() {
            if !f.source_addresses.is_empty() {
                return Err(self.invalid(
                    "front_proxy.subjects",
                    "name the front proxy's certificate (subjects or thumbprints) to use \
                     source_addresses",
                ));
            }
            return Ok(None);
        }
        let subjects = f
            .subjects
            .iter()
            .map(|s| {
                Dn::parse(s, ParseMode::Strict)
                    .map(|dn| dn.to_rfc4514())
                    .map_err(|e| self.invalid("front_proxy.subjects", format!("`{s}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for t in &f.thumbprints {
            let ok = t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(self.invalid(
                    "front_proxy.thumbprints",
                    format!("`{t}` is not a SHA-256 thumbprint in base64url (43 characters)"),
                ));
            }
        }
        let source_addresses = f
            .source_addresses
            .iter()
            .map(|a| {
                network(a).ok_or_else(|| {
                    self.invalid(
                        "front_proxy.source_addresses",
                        format!("`{a}` is not an IP address or CIDR block"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(FrontProxy {
            subjects,
            thumbprints: f.thumbprints.clone(),
            source_addresses,
        }))
    }
}

/// `10.0.0.0/8`, `2001:db8::/32` or a bare address.
pub fn network(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let addr: IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) && b.len() <= 3 => {
            b.parse::<u8>().ok().filter(|b| *b <= max)?
        }
        Some(_) => return None,
        None => max,
    };
    Some((addr, bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::in_network;

    #[test]
    fn networks_parse_and_contain() {
        let (net, bits) = network("10.0.0.0/8").expect("cidr");
        assert!(in_network("10.1.2.3".parse().unwrap(), net, bits));
        assert!(!in_network("11.0.0.1".parse().unwrap(), net, bits));
        assert!(in_network("::ffff:10.9.9.9".parse().unwrap(), net, bits));
        let (net, bits) = network("192.0.2.7").expect("address");
        assert_eq!(bits, 32);
        assert!(in_network("192.0.2.7".parse().unwrap(), net, bits));
        assert!(!in_network("192.0.2.8".parse().unwrap(), net, bits));
        let (net, bits) = network("2001:db8::/32").expect("v6");
        assert!(in_network("2001:db8:1::1".parse().unwrap(), net, bits));
        assert!(!in_network("10.0.0.1".parse().unwrap(), net, bits));
        assert_eq!(network("0.0.0.0/0").map(|n| n.1), Some(0));
        assert!(in_network(
            "8.8.8.8".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "::/129",
            "10.0.0.0/-1",
        ] {
            assert_eq!(network(bad), None, "{bad}");
        }
    }
}
