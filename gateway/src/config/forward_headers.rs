//! Which client-sent request headers reach the registry: an allowlist, never a deny-list.
//!
//! Identity headers come in too many spellings (`Client-Cert`, `X-SSL-Cert`, `X-ARR-ClientCert`,
//! `X-Amzn-Mtls-Clientcert`, `X-Forwarded-Tls-Client-Cert`, ...) for a deny-list to win, and
//! CGI/WSGI stacks read `X_Client_DN` as `X-Client-DN`. So the upstream request carries only
//! the headers on the allowlist (`upstream.forward_headers`, exact names or `prefix-*`), never a
//! name containing `_` (as nginx drops them by default), plus what the gateway sets itself:
//! `Host`, `Content-Length` of the verified body, and its identity and request id headers.

use http::HeaderName;

/// The default allowlist.
pub const DEFAULT_FORWARD_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "accept",
    "user-agent",
    "x-fapi-*",
];

/// Names no allowlist may carry: hop-by-hop and framing headers (the gateway frames the
/// upstream request itself), and the identity headers the gateway sets itself (its own, and
/// RFC 9440 `Client-Cert` / `Client-Cert-Chain`).
const NEVER_FORWARDED: [&str; 14] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "expect",
    "x-request-id",
    "forwarded",
    "client-cert",
    "client-cert-chain",
];

/// Why an allowlist entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    /// Not a header name (or `prefix-*`).
    #[error("`{0}` is not a header name or a `prefix-*` pattern")]
    NotAName(String),
    /// Contains `_`.
    #[error("`{0}` contains `_`: such names are never forwarded")]
    Underscore(String),
    /// Names a header the gateway frames or sets itself.
    #[error("`{0}` is set by the gateway itself and cannot be forwarded from the client")]
    Reserved(String),
    /// A prefix too short to mean anything (`*`, `x-*`).
    #[error("`{0}`: a prefix pattern needs at least 4 characters before `*`")]
    TooBroad(String),
}

/// The headers forwarded upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardHeaders {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl Default for ForwardHeaders {
    fn default() -> Self {
        Self::new(&DEFAULT_FORWARD_HEADERS).unwrap_or(Self {
            exact: Vec::new(),
            prefixes: Vec::new(),
        })
    }
}

fn reserved(name: &str) -> bool {
    NEVER_FORWARDED.contains(&name) || name.starts_with("x-dcrgate-") || name.starts_with("proxy-")
}

impl ForwardHeaders {
    /// Build from entries: exact names, or `prefix-*`.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, AllowlistError> {
        let mut list = Self {
            exact: Vec::new(),
            prefixes: Vec::new(),
        };
        for entry in entries {
            let raw = entry.as_ref().trim().to_ascii_lowercase();
            if raw.contains('_') {
                return Err(AllowlistError::Underscore(raw));
            }
            let (name, prefix) = match raw.strip_suffix('*') {
                Some(p) => (p.to_owned(), true),
                None => (raw.clone(), false),
            };
            if name.is_empty() || HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(AllowlistError::NotAName(raw));
            }
            if prefix {
                if name.len() < 4 {
                    return Err(AllowlistError::TooBroad(raw));
                }
                if NEVER_FORWARDED.iter().any(|r| r.starts_with(&name))
                    || "x-dcrgate-".starts_with(&name)
                    || "proxy-".starts_with(&name)
                {
                    return Err(AllowlistError::Reserved(raw));
                }
                list.prefixes.push(name);
            } else {
                if reserved(&name) {
                    return Err(AllowlistError::Reserved(raw));
                }
                list.exact.push(name);
            }
        }
        Ok(list)
    }

    /// Whether a client-sent header `name` (lower case, as `http` stores it) is forwarded.
    pub fn allows(&self, name: &str) -> bool {
        !name.contains('_')
            && !reserved(name)
            && (self.exact.iter().any(|e| e == name)
                || self.prefixes.iter().any(|p| name.starts_with(p.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_forwards_only_the_listed_headers() {
        let f = ForwardHeaders::default();
        for ok in [
            "authorization",
            "content-type",
            "accept",
            "user-agent",
            "x-fapi-interaction-id",
            "x-fapi-auth-date",
        ] {
            assert!(f.allows(ok), "{ok}");
        }
        for spoof in [
            "client-cert",
            "client-cert-chain",
            "x-ssl-cert",
            "x-arr-clientcert",
            "x-amzn-mtls-clientcert",
            "x-forwarded-tls-client-cert",
            "x-forwarded-tls-client-cert-info",
            "x-client-subject",
            "x-client-dn",
            "x_dcrgate_client_dn",
            "x_client_dn",
            "x-fapi_interaction-id",
            "x-dcrgate-client-dn",
            "x-request-id",
            "forwarded",
            "x-forwarded-for",
            "connection",
            "transfer-encoding",
            "content-length",
            "host",
            "expect",
            "te",
            "cookie",
        ] {
            assert!(!f.allows(spoof), "{spoof}");
        }
    }

    #[test]
    fn entries_are_validated() {
        assert!(ForwardHeaders::new(&["x-bank-trace", "x-bank-*"]).is_ok());
        for (bad, want) in [
            ("x_bank", AllowlistError::Underscore("x_bank".into())),
            ("*", AllowlistError::NotAName("*".into())),
            ("x-*", AllowlistError::TooBroad("x-*".into())),
            (
                "x-dcrgate-client-dn",
                AllowlistError::Reserved("x-dcrgate-client-dn".into()),
            ),
            ("x-dcr*", AllowlistError::Reserved("x-dcr*".into())),
            ("connection", AllowlistError::Reserved("connection".into())),
            ("transfer-*", AllowlistError::Reserved("transfer-*".into())),
            ("bad name", AllowlistError::NotAName("bad name".into())),
        ] {
            assert_eq!(ForwardHeaders::new(&[bad]), Err(want), "{bad}");
        }
    }
}
