//! Where a TPP key set may be fetched from: an https URL whose host is on the allowlist.
//!
//! The key set URL comes from the request, so it is attacker-controlled until this check
//! passes; the gateway never connects anywhere a request names without it.

use url::{Host, Url};

use crate::uri::is_invisible_format;

/// Why a key set URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyUrlError {
    /// Not a URL.
    #[error("key set URL is not a valid URL: {0}")]
    Invalid(String),
    /// Not https.
    #[error("key set URL must use https, not {0}")]
    NotHttps(String),
    /// Carries user:password.
    #[error("key set URL must not carry credentials")]
    Credentials,
    /// Has a fragment.
    #[error("key set URL must not have a fragment")]
    Fragment,
    /// The host is not on the allowlist.
    #[error("key set host {0} is not on the allowlist")]
    HostNotAllowed(String),
}

/// A host allowlist: exact host names (`keystore.example.com`), or `*.example.com` for any
/// subdomain of example.com (not example.com itself). Comparison is ASCII case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAllowlist {
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl HostAllowlist {
    /// Build from patterns; returns the first invalid pattern as an error message.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut list = HostAllowlist::default();
        for p in patterns {
            let p = p.as_ref().trim().to_ascii_lowercase();
            if let Some(rest) = p.strip_prefix("*.") {
                if rest.is_empty() || rest.contains('*') || !rest.contains('.') {
                    return Err(format!(
                        "`{p}`: a wildcard must be `*.` before a domain with at least two labels"
                    ));
                }
                list.suffixes.push(format!(".{rest}"));
            } else if p.is_empty()
                || p.contains('*')
                || p.contains('/')
                || p.contains(':') && !p.starts_with('[')
            {
                return Err(format!("`{p}` is not a host name or `*.domain` pattern"));
            } else {
                list.exact.push(p);
            }
        }
        Ok(list)
    }

    /// Whether `host` (a name or an IP literal as it appears in a URL) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.exact.contains(&host) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }

    /// Whether the allowlist is empty (then every key set URL is refused).
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }
}

/// Check a key set URL taken from a request: https, no credentials, no fragment, host allowed.
pub fn check_key_set_url(raw: &str, allowlist: &HostAllowlist) -> Result<Url, KeyUrlError> {
    // The registry stores the raw string: refuse what a URL parser would silently repair.
    if let Some(c) = raw
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '\\' || is_invisible_format(*c))
    {
        return Err(KeyUrlError::Invalid(format!(
            "contains U+{:04X}, which a URL may not carry",
            u32::from(c)
        )));
    }
    if raw.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
            .contains('@')
    }) {
        return Err(KeyUrlError::Credentials);
    }
    let url = Url::parse(raw).map_err(|e| KeyUrlError::Invalid(e.to_string()))?;
    if url.scheme() != "https" {
        return Err(KeyUrlError::NotHttps(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(KeyUrlError::Credentials);
    }
    if url.fragment().is_some() {
        return Err(KeyUrlError::Fragment);
    }
    let host = match url.host() {
        Some(Host::Domain(d)) => d.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => format!("[{ip}]"),
        None => return Err(KeyUrlError::Invalid("no host".into())),
    };
    if !allowlist.allows(&host) {
        return Err(KeyUrlError::HostNotAllowed(host));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> HostAllowlist {
        HostAllowlist::new(&["keystore.openbanking.org.uk", "*.tpp.example"]).unwrap()
    }

    #[test]
    fn allows_exact_and_subdomains_only() {
        let l = list();
        assert!(check_key_set_url("https://keystore.openbanking.org.uk/a/b.jwks", &l).is_ok());
        assert!(check_key_set_url("https://KEYSTORE.openbanking.org.uk/x", &l).is_ok());
        assert!(check_key_set_url("https://keys.tpp.example/x", &l).is_ok());
        assert_eq!(
            check_key_set_url("https://tpp.example/x", &l),
            Err(KeyUrlError::HostNotAllowed("tpp.example".into()))
        );
        assert!(check_key_set_url("https://eviltpp.example/x", &l).is_err());
        assert!(check_key_set_url("https://keystore.openbanking.org.uk.evil.com/x", &l).is_err());
    }

    #[test]
    fn refuses_http_credentials_fragment_and_junk() {
        let l = list();
        assert_eq!(
            check_key_set_url("http://keystore.openbanking.org.uk/x", &l),
            Err(KeyUrlError::NotHttps("http".into()))
        );
        assert_eq!(
            check_key_set_url("https://u:p@keystore.openbanking.org.uk/x", &l),
            Err(KeyUrlError::Credentials)
        );
        assert_eq!(
            check_key_set_url("https://keystore.openbanking.org.uk/x#f", &l),
            Err(KeyUrlError::Fragment)
        );
        assert!(matches!(
            check_key_set_url("not a url", &l),
            Err(KeyUrlError::Invalid(_))
        ));
        assert!(check_key_set_url("https://169.254.169.254/latest", &l).is_err());
        for sneaky in [
            "https://keys.tpp.example/a\tb",
            "https://keys.tpp.example/a\nb",
            "https://keys.tpp.example\\@evil.example/",
            "https://keys.tpp.example/\u{202E}",
            "https://keys.tpp.example/ x",
        ] {
            assert!(
                matches!(check_key_set_url(sneaky, &l), Err(KeyUrlError::Invalid(_))),
                "{sneaky:?}"
            );
        }
        assert_eq!(
            check_key_set_url("https://u@keys.tpp.example/x", &l),
            Err(KeyUrlError::Credentials)
        );
        assert_eq!(
            check_key_set_url("https://@keys.tpp.example/x", &l),
            Err(KeyUrlError::Credentials)
        );
        assert!(check_key_set_url("file:///etc/passwd", &l).is_err());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(HostAllowlist::new(&["*"]).is_err());
        assert!(HostAllowlist::new(&["*.com"]).is_err());
        assert!(HostAllowlist::new(&["a/b"]).is_err());
        assert!(HostAllowlist::new(&["a.*.com"]).is_err());
        assert!(HostAllowlist::new::<&str>(&[]).unwrap().is_empty());
    }
}
