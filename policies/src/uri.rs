//! URL-valued metadata a registry would store and later follow or hand to a browser: redirect
//! URIs (RFC 6749 §3.1.2) and the other URLs of RFC 7591 §2 (`logo_uri`, `request_uris`, ...).
//!
//! The whole value is checked, never a prefix, and the raw string is checked before any URL
//! parser sees it: URL parsers silently drop tabs and newlines and turn `\` into `/`, so two
//! parsers (this one and the registry's) could otherwise read two different hosts out of one
//! string. Refused: anything longer than the bound; control, whitespace, bidi and zero-width
//! characters, `\` and the other characters RFC 3986 never allows; userinfo (`user@host`, the
//! classic way to make `https://bank.example@evil.example/` look like the bank); fragments
//! where the rules say so; non-https where the rules say so; loopback hosts (names and
//! literals in every spelling, IPv4-mapped included) unless allowed; and private, link-local
//! and other non-public IP literals always.

use std::net::IpAddr;

use url::{Host, Url};

use crate::net;

/// How one kind of URL is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriRules {
    /// Only `https`.
    pub require_https: bool,
    /// Loopback hosts are allowed (native apps only; never for server-side TPPs).
    pub allow_loopback: bool,
    /// A `#fragment` is allowed.
    pub allow_fragment: bool,
    /// Longest value accepted, in bytes.
    pub max_length: usize,
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriProblem {
    /// Longer than the bound.
    #[error("is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A character no URI may carry.
    #[error("contains {} at byte {position}, which a URI may not carry", describe(*.ch))]
    Character {
        /// The character.
        ch: char,
        /// Its byte offset.
        position: usize,
    },
    /// Not an absolute URI.
    #[error("is not an absolute URI ({0})")]
    NotAbsolute(String),
    /// Carries a fragment.
    #[error("has a fragment")]
    Fragment,
    /// Not https.
    #[error("does not use https")]
    NotHttps,
    /// Carries userinfo before the host.
    #[error("carries userinfo (`…@`) before the host")]
    Userinfo,
    /// Has no host.
    #[error("has no host")]
    NoHost,
    /// Points at a loopback or unspecified host.
    #[error("points at a loopback or unspecified host")]
    Loopback,
    /// Points at a private, link-local or otherwise non-public IP literal.
    #[error("points at the non-public address {0}")]
    NonPublic(IpAddr),
}

fn describe(ch: char) -> String {
    match ch {
        ' ' => "a space".into(),
        '\\' => "a backslash".into(),
        c if c.is_ascii_graphic() => format!("`{c}`"),
        c => format!("U+{:04X}", u32::from(c)),
    }
}

/// Characters that make a string not a URI (or make two parsers disagree about it).
fn forbidden(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || is_invisible_format(c)
        || matches!(c, '\\' | '"' | '<' | '>' | '`' | '{' | '}' | '|' | '^')
}

/// Bidi controls and zero-width characters: invisible in a UI, meaningful to a machine.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// Check one URL against `rules`; the parsed URL when it is acceptable.
pub fn check_uri(raw: &str, rules: &UriRules) -> Result<Url, UriProblem> {
    if raw.len() > rules.max_length {
        return Err(UriProblem::TooLong {
            len: raw.len(),
            max: rules.max_length,
        });
    }
    if let Some((position, ch)) = raw.char_indices().find(|(_, c)| forbidden(*c)) {
        return Err(UriProblem::Character { ch, position });
    }
    // Userinfo is judged on the raw authority, so no parser's notion of where it ends matters.
    if let Some((_, rest)) = raw.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(UriProblem::Userinfo);
        }
    }
    let url = Url::parse(raw).map_err(|e| UriProblem::NotAbsolute(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UriProblem::Userinfo);
    }
    if !rules.allow_fragment && url.fragment().is_some() {
        return Err(UriProblem::Fragment);
    }
    if rules.require_https && url.scheme() != "https" {
        return Err(UriProblem::NotHttps);
    }
    let ip = match url.host() {
        None if rules.require_https => return Err(UriProblem::NoHost),
        None => None,
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if (d == "localhost" || d.ends_with(".localhost")) && !rules.allow_loopback {
                return Err(UriProblem::Loopback);
            }
            None
        }
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
    };
    if let Some(ip) = ip {
        if net::is_loopback(ip) {
            if !rules.allow_loopback {
                return Err(UriProblem::Loopback);
            }
        } else if !net::is_public(ip) {
            return Err(UriProblem::NonPublic(ip));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIRECT: UriRules = UriRules {
        require_https: true,
        allow_loopback: false,
        allow_fragment: false,
        max_length: 2048,
    };

    #[test]
    fn accepts_https_hosts() {
        for ok in [
            "https://tpp.example/cb",
            "https://tpp.example:8443/cb?x=1",
            "https://8.8.8.8/cb",
            "https://[2606:4700::1111]/cb",
            "https://tpp.example/a%20b",
        ] {
            assert!(check_uri(ok, &REDIRECT).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_each_kind() {
        let long_userinfo = format!("https://{}@127.0.0.1/cb", "a".repeat(200));
        let long_localhost = format!("https://{}@localhost/cb", "a".repeat(200));
        let late_fragment = format!("https://tpp.example/{}#frag", "a".repeat(200));
        for (bad, want) in [
            ("http://tpp.example/cb", UriProblem::NotHttps),
            ("https://localhost/cb", UriProblem::Loopback),
            ("https://app.localhost./cb", UriProblem::Loopback),
            ("https://LOCALHOST/cb", UriProblem::Loopback),
            ("https://127.0.0.1/cb", UriProblem::Loopback),
            ("https://127.1.2.3/cb", UriProblem::Loopback),
            ("https://2130706433/cb", UriProblem::Loopback),
            ("https://0x7f.1/cb", UriProblem::Loopback),
            ("https://[::1]/cb", UriProblem::Loopback),
            ("https://[::ffff:127.0.0.1]/cb", UriProblem::Loopback),
            ("https://[::ffff:7f00:1]/cb", UriProblem::Loopback),
            ("https://[::127.0.0.1]/cb", UriProblem::Loopback),
            ("https://0.0.0.0/cb", UriProblem::Loopback),
            ("https://tpp.example/cb#frag", UriProblem::Fragment),
            ("https://user@tpp.example/cb", UriProblem::Userinfo),
            ("https://user:pw@tpp.example/cb", UriProblem::Userinfo),
            ("https://@tpp.example/cb", UriProblem::Userinfo),
            (&long_userinfo, UriProblem::Userinfo),
            (&long_localhost, UriProblem::Userinfo),
            (&late_fragment, UriProblem::Fragment),
        ] {
            assert_eq!(check_uri(bad, &REDIRECT), Err(want), "{bad}");
        }
        for bad in [
            "https://10.0.0.1/cb",
            "https://169.254.169.254/latest",
            "https://[fd00::1]/cb",
            "https://[::ffff:192.168.0.1]/cb",
            "https://[fe80::1]/cb",
        ] {
            assert!(
                matches!(check_uri(bad, &REDIRECT), Err(UriProblem::NonPublic(_))),
                "{bad}"
            );
        }
        for (bad, ch) in [
            ("https://tpp.example/c\rb", '\r'),
            ("https://tpp.example/c\nb", '\n'),
            ("https://tpp.example/c\tb", '\t'),
            ("https://tpp.example\\@evil.example/", '\\'),
            ("https://tpp.example/ cb", ' '),
            ("https://tpp.example/\u{0}", '\u{0}'),
            ("https://tpp.example/\u{85}", '\u{85}'),
            ("https://tpp.example/\u{202E}bc", '\u{202E}'),
            ("https://tpp.example/\u{200B}", '\u{200B}'),
            ("https://tpp.example/<script>", '<'),
        ] {
            assert!(
                matches!(check_uri(bad, &REDIRECT), Err(UriProblem::Character { ch: c, .. }) if c == ch),
                "{bad:?}"
            );
        }
        for bad in ["/relative", "", "tpp.example/cb"] {
            assert!(check_uri(bad, &REDIRECT).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_length_bound_is_exact() {
        let at = |n: usize| format!("https://tpp.example/{}", "a".repeat(n - 20));
        assert_eq!(at(2048).len(), 2048);
        assert!(check_uri(&at(2048), &REDIRECT).is_ok());
        assert_eq!(
            check_uri(&at(2049), &REDIRECT),
            Err(UriProblem::TooLong {
                len: 2049,
                max: 2048
            })
        );
    }

    #[test]
    fn loopback_only_where_allowed_and_private_never() {
        let native = UriRules {
            allow_loopback: true,
            ..REDIRECT
        };
        assert!(check_uri("https://localhost/cb", &native).is_ok());
        assert!(check_uri("https://127.0.0.1/cb", &native).is_ok());
        assert!(check_uri("https://[::ffff:127.0.0.1]/cb", &native).is_ok());
        assert!(check_uri("https://10.0.0.1/cb", &native).is_err());
        let lax = UriRules {
            require_https: false,
            allow_fragment: true,
            ..REDIRECT
        };
        assert!(check_uri("http://tpp.example/cb#x", &lax).is_ok());
        assert_eq!(
            check_uri("http://tpp.example/cb#x", &REDIRECT),
            Err(UriProblem::Fragment)
        );
    }

    #[test]
    fn messages_name_the_character() {
        let e = check_uri("https://a.example/\u{202E}", &REDIRECT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "contains U+202E at byte 18, which a URI may not carry"
        );
        let e = check_uri("https://a.example\\x", &REDIRECT).unwrap_err();
        assert!(e.to_string().contains("a backslash"), "{e}");
    }
}
