//! An https endpoint setting (`bearer.introspection.endpoint`), parsed once into what the
//! outbound client needs: host, port, authority and request target.

use url::Url;

use super::HttpsEndpoint;

/// Why an endpoint setting is not an acceptable https URL.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL.
    #[error("`{text}` is not a URL ({source})")]
    NotUrl {
        /// The value.
        text: String,
        /// The parse error.
        source: url::ParseError,
    },
    /// Another scheme.
    #[error("must be an https URL")]
    NotHttps,
    /// Userinfo in the URL.
    #[error("must not carry credentials; use client_secret_file")]
    Credentials,
    /// A fragment.
    #[error("must not have a fragment")]
    Fragment,
    /// No host.
    #[error("must name a host")]
    NoHost,
}

/// An https URL without credentials or fragment, split for a request to it.
pub fn https_endpoint(text: &str) -> Result<HttpsEndpoint, EndpointError> {
    let url = Url::parse(text).map_err(|source| EndpointError::NotUrl {
        text: text.to_owned(),
        source,
    })?;
    if url.scheme() != "https" {
        return Err(EndpointError::NotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::Credentials);
    }
    if url.fragment().is_some() {
        return Err(EndpointError::Fragment);
    }
    let host = url.host_str().ok_or(EndpointError::NoHost)?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    Ok(HttpsEndpoint {
        host,
        port,
        authority,
        target,
    })
}
