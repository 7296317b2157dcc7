//! Redirect URI rules: https, no loopback or unspecified host, no fragment (RFC 6749 §3.1.2,
//! RFC 8252 §8.3 for why loopback is for native apps only, not for TPP back ends).

use std::net::IpAddr;

use url::{Host, Url};

/// Check one redirect URI; `Err` says why it is refused.
pub fn check_redirect_uri(
    raw: &str,
    require_https: bool,
    allow_loopback: bool,
) -> Result<(), String> {
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("`{raw}` has a fragment"));
    }
    if require_https && url.scheme() != "https" {
        return Err(format!("`{raw}` does not use https"));
    }
    let loopback = match url.host() {
        None => return Err(format!("`{raw}` has no host")),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => is_local(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_local(IpAddr::V6(ip)),
    };
    if loopback && !allow_loopback {
        return Err(format!("`{raw}` points at a loopback or unspecified host"));
    }
    Ok(())
}

fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_hosts() {
        assert!(check_redirect_uri("https://tpp.example/cb", true, false).is_ok());
        assert!(check_redirect_uri("https://tpp.example:8443/cb?x=1", true, false).is_ok());
    }

    #[test]
    fn refuses_each_kind() {
        for bad in [
            "http://tpp.example/cb",
            "https://localhost/cb",
            "https://app.localhost/cb",
            "https://127.0.0.1/cb",
            "https://127.1.2.3/cb",
            "https://[::1]/cb",
            "https://0.0.0.0/cb",
            "https://tpp.example/cb#frag",
            "/relative",
            "",
        ] {
            assert!(check_redirect_uri(bad, true, false).is_err(), "{bad}");
        }
        assert!(check_redirect_uri("https://localhost/cb", true, true).is_ok());
    }
}
