//! The bearer token the probe sends: the one given, or one from an OAuth client credentials
//! grant at the token endpoint (RFC 6749 §4.4, the client authenticated by its transport
//! certificate, RFC 8705 `tls_client_auth`), the endpoint given or read from an OpenID
//! discovery document.

use super::args::{Settings, TokenSource};
use super::client::{Client, Request};
use super::ProbeError;

/// What an OpenID discovery document says that the probe uses.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// `issuer`.
    pub issuer: Option<String>,
    /// `token_endpoint`.
    pub token_endpoint: Option<String>,
    /// `registration_endpoint`.
    pub registration_endpoint: Option<String>,
}

/// Fetch and read the discovery document at `url`.
pub async fn discover(client: &Client, url: &str) -> Result<Discovery, ProbeError> {
    let bad = |reason: String| ProbeError::Discovery {
        url: url.to_owned(),
        reason,
    };
    let parsed = https_or_http(url).map_err(bad)?;
    let r = client
        .send(&Request::new("GET", parsed))
        .await
        .map_err(|e| bad(e.to_string()))?;
    if r.status != 200 {
        return Err(bad(format!("answered {}", r.status)));
    }
    let doc = r
        .json()
        .ok_or_else(|| bad("the answer is not JSON".into()))?;
    let member = |name: &str| doc.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(Discovery {
        issuer: member("issuer"),
        token_endpoint: member("token_endpoint"),
        registration_endpoint: member("registration_endpoint"),
    })
}

/// The bearer token to send.
pub async fn bearer_token(
    client: &Client,
    settings: &Settings,
    discovery: Option<&Discovery>,
) -> Result<String, ProbeError> {
    let endpoint = match &settings.token {
        TokenSource::Fixed(t) => return Ok(t.clone()),
        TokenSource::Endpoint(u) => u.clone(),
        TokenSource::Discovery(d) => discovery
            .and_then(|d| d.token_endpoint.clone())
            .ok_or_else(|| ProbeError::Discovery {
                url: d.clone(),
                reason: "no token_endpoint".into(),
            })?,
    };
    let bad = |reason: String| ProbeError::Token {
        url: endpoint.clone(),
        reason,
    };
    let url = https_or_http(&endpoint).map_err(bad)?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &settings.client_id)
        .finish();
    let r = client
        .send(
            &Request::new("POST", url).body("application/x-www-form-urlencoded", form.into_bytes()),
        )
        .await
        .map_err(|e| bad(e.to_string()))?;
    if r.status != 200 {
        let error = r.member("error").unwrap_or_default();
        return Err(bad(format!("answered {} {error}", r.status)));
    }
    let token = r
        .member("access_token")
        .ok_or_else(|| bad("no access_token in the answer".into()))?;
    match r.member("token_type") {
        Some(t) if t.eq_ignore_ascii_case("bearer") => Ok(token),
        other => Err(bad(format!(
            "token_type {:?}, not Bearer",
            other.unwrap_or_default()
        ))),
    }
}

fn https_or_http(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    match url.scheme() {
        "https" | "http" if url.host_str().is_some() => Ok(url),
        _ => Err("not an https URL".into()),
    }
}
