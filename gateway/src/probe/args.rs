//! `dcrgate probe`'s inputs: command-line flags and an optional TOML file (`--config`), the
//! flags winning, resolved into [`Settings`] with every file read and every key parsed.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;

use super::jws::SigningKey;
use super::ProbeError;

/// How the report is printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// A table for a reader, with a hint under each failure.
    Text,
    /// One JSON object.
    Json,
}

/// The flags of `dcrgate probe`; every one may also be set in the `--config` file (same names,
/// `_` for `-`).
#[derive(Debug, Clone, Default, Args)]
pub struct ProbeArgs {
    /// A TOML file with any of these settings; flags override it. Relative paths in it are
    /// resolved against its folder.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The DCR endpoint's base URL (https://host:port[/prefix]); requests go to
    /// `<endpoint>/register`. http:// is accepted (no client certificate is then presented).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The ClientId the TPP was given.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The transport certificate (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The transport certificate's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The CA bundle (PEM) the endpoint's certificate must chain to [default: public roots].
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The request-object signing key: RSA, PKCS#8 PEM.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// The signing key's `kid`, as published.
    #[arg(long)]
    pub kid: Option<String>,
    /// The URL where the signing key is published (the request's `jwks_uri`).
    #[arg(long)]
    pub jwks_uri: Option<String>,
    /// A software statement (a JWS, as the directory issued it) to carry in every request.
    #[arg(long, value_name = "FILE")]
    pub ssa: Option<PathBuf>,
    /// The request object's `aud` [default: the discovery document's `issuer`].
    #[arg(long)]
    pub audience: Option<String>,
    /// A bearer access token for the registration (used as is).
    #[arg(long)]
    pub token: Option<String>,
    /// An OAuth token endpoint: a client credentials grant for --client-id over the same mTLS.
    #[arg(long)]
    pub token_endpoint: Option<String>,
    /// An OpenID discovery document to read `token_endpoint` (and `issuer`) from.
    #[arg(long)]
    pub discovery: Option<String>,
    /// A redirect URI of the registration (repeatable) [default: the SSA's
    /// software_redirect_uris].
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// The registration's `scope` [default: "openid accounts payments"].
    #[arg(long)]
    pub scope: Option<String>,
    /// The registration's `org_name` [default: the SSA's org_name, if any].
    #[arg(long)]
    pub org_name: Option<String>,
    /// The `tls_client_auth_dn` to send [default: the transport certificate's subject].
    #[arg(long)]
    pub tls_client_auth_dn: Option<String>,
    /// Run the scenarios that write at a compliant endpoint (the compliant update, the replayed
    /// `jti`, and with --lifecycle the create and the delete).
    #[arg(long)]
    pub allow_writes: bool,
    /// Also probe POST /register, GET and DELETE /register/{ClientId}.
    #[arg(long)]
    pub lifecycle: bool,
    /// Bound on each request, connection included, in seconds [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub timeout_seconds: Option<u64>,
    /// Bound on each TCP connect and TLS handshake, in seconds [default: 5, at most the
    /// request bound].
    #[arg(long, value_name = "SECONDS")]
    pub connect_timeout_seconds: Option<u64>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// The `--config` file: the flags' settings under the same names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileArgs {
    endpoint: Option<String>,
    client_id: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    signing_key: Option<PathBuf>,
    kid: Option<String>,
    jwks_uri: Option<String>,
    ssa: Option<PathBuf>,
    audience: Option<String>,
    token: Option<String>,
    token_endpoint: Option<String>,
    discovery: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    scope: Option<String>,
    org_name: Option<String>,
    tls_client_auth_dn: Option<String>,
    #[serde(default)]
    allow_writes: bool,
    #[serde(default)]
    lifecycle: bool,
    timeout_seconds: Option<u64>,
    connect_timeout_seconds: Option<u64>,
    format: Option<OutputFormat>,
    junit: Option<PathBuf>,
}

/// How the probe gets its bearer token.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// This token.
    Fixed(String),
    /// A client credentials grant at this token endpoint.
    Endpoint(String),
    /// The token endpoint named by this discovery document.
    Discovery(String),
}

/// Everything the probe runs with, read and checked.
pub struct Settings {
    /// The base URL, without a trailing `/`.
    pub endpoint: url::Url,
    /// The ClientId.
    pub client_id: String,
    /// The transport certificate chain (DER, leaf first) and its key (DER), if any.
    pub identity: Option<Identity>,
    /// The CA bundle (PEM text), if one was given.
    pub ca_pem: Option<String>,
    /// The request-object signing key (with its kid).
    pub signing_key: SigningKey,
    /// The published key set URL.
    pub jwks_uri: Option<String>,
    /// The software statement, if any.
    pub ssa: Option<String>,
    /// The audience, if given (else the discovery document's issuer).
    pub audience: Option<String>,
    /// Where the bearer token comes from.
    pub token: TokenSource,
    /// The discovery document URL, if given.
    pub discovery: Option<String>,
    /// Redirect URIs (possibly empty: then the SSA's).
    pub redirect_uris: Vec<String>,
    /// Scope.
    pub scope: String,
    /// org_name, if given.
    pub org_name: Option<String>,
    /// tls_client_auth_dn.
    pub tls_client_auth_dn: String,
    /// Whether writes are allowed.
    pub allow_writes: bool,
    /// Whether the lifecycle routes are probed.
    pub lifecycle: bool,
    /// Bound on each request.
    pub timeout: std::time::Duration,
    /// Bound on each connect + handshake.
    pub connect_timeout: std::time::Duration,
    /// Output format.
    pub format: OutputFormat,
    /// JUnit file.
    pub junit: Option<PathBuf>,
}

/// A transport certificate chain and its private key.
pub struct Identity {
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The private key, DER (PKCS#8, PKCS#1 or SEC1).
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Settings {
    /// Merge the flags over the file and read everything they name.
    pub fn load(args: &ProbeArgs) -> Result<Self, ProbeError> {
        let (file, base) = match &args.config {
            Some(path) => {
                let text = read(path)?;
                let file: FileArgs = toml::from_str(&text).map_err(|e| ProbeError::Config {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (file, base)
            }
            None => (FileArgs::default(), PathBuf::new()),
        };
        let in_file = |p: Option<PathBuf>| p.map(|p| base.join(p));
        let required = |v: Option<String>, name: &'static str| v.ok_or(ProbeError::Missing(name));

        let endpoint_text = required(args.endpoint.clone().or(file.endpoint), "endpoint")?;
        let endpoint = parse_endpoint(&endpoint_text)?;
        let client_id = required(args.client_id.clone().or(file.client_id), "client-id")?;
        let cert = args.cert.clone().or(in_file(file.cert));
        let key = args.key.clone().or(in_file(file.key));
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some(load_identity(&cert, &key)?),
            (None, None) => None,
            _ => return Err(ProbeError::Missing("cert and key (both or neither)")),
        };
        if endpoint.scheme() == "https" && identity.is_none() {
            return Err(ProbeError::Missing(
                "cert and key (an https endpoint needs mTLS)",
            ));
        }
        let ca_pem = match args.ca.clone().or(in_file(file.ca)) {
            Some(p) => Some(read(&p)?),
            None => None,
        };
        let kid = required(args.kid.clone().or(file.kid), "kid")?;
        let key_path = args
            .signing_key
            .clone()
            .or(in_file(file.signing_key))
            .ok_or(ProbeError::Missing("signing-key"))?;
        let signing_key =
            SigningKey::from_pem(&read(&key_path)?, &kid).map_err(|reason| ProbeError::Key {
                path: key_path.clone(),
                reason,
            })?;
        let ssa = match args.ssa.clone().or(in_file(file.ssa)) {
            Some(p) => Some(read(&p)?.trim().to_owned()),
            None => None,
        };
        let jwks_uri = args.jwks_uri.clone().or(file.jwks_uri);
        if jwks_uri.is_none() && ssa.is_none() {
            return Err(ProbeError::Missing(
                "jwks-uri (or an --ssa naming the key set)",
            ));
        }
        let discovery = args.discovery.clone().or(file.discovery);
        let token = match (
            args.token.clone().or(file.token),
            args.token_endpoint.clone().or(file.token_endpoint),
            discovery.clone(),
        ) {
            (Some(t), None, _) => TokenSource::Fixed(t),
            (None, Some(u), _) => TokenSource::Endpoint(u),
            (None, None, Some(d)) => TokenSource::Discovery(d),
            (Some(_), Some(_), _) => {
                return Err(ProbeError::Conflict("token and token-endpoint"));
            }
            (None, None, None) => {
                return Err(ProbeError::Missing("token, token-endpoint or discovery"));
            }
        };
        let tls_client_auth_dn = match args.tls_client_auth_dn.clone().or(file.tls_client_auth_dn) {
            Some(dn) => dn,
            None => match &identity {
                Some(id) => subject_of(&id.chain[0])?,
                None => return Err(ProbeError::Missing("tls-client-auth-dn (no --cert)")),
            },
        };
        let timeout = std::time::Duration::from_secs(
            args.timeout_seconds
                .or(file.timeout_seconds)
                .unwrap_or(10)
                .max(1),
        );
        let connect_timeout = std::time::Duration::from_secs(
            args.connect_timeout_seconds
                .or(file.connect_timeout_seconds)
                .unwrap_or(5)
                .max(1),
        )
        .min(timeout);
        Ok(Self {
            endpoint,
            client_id,
            identity,
            ca_pem,
            signing_key,
            jwks_uri,
            ssa,
            audience: args.audience.clone().or(file.audience),
            token,
            discovery,
            redirect_uris: if args.redirect_uris.is_empty() {
                file.redirect_uris
            } else {
                args.redirect_uris.clone()
            },
            scope: args
                .scope
                .clone()
                .or(file.scope)
                .unwrap_or_else(|| "openid accounts payments".to_owned()),
            org_name: args.org_name.clone().or(file.org_name),
            tls_client_auth_dn,
            allow_writes: args.allow_writes || file.allow_writes,
            lifecycle: args.lifecycle || file.lifecycle,
            timeout,
            connect_timeout,
            format: args.format.or(file.format).unwrap_or(OutputFormat::Text),
            junit: args.junit.clone().or(in_file(file.junit)),
        })
    }
}

/// The endpoint URL: http or https, a host, no query, no fragment, no userinfo.
fn parse_endpoint(text: &str) -> Result<url::Url, ProbeError> {
    let bad = |reason: &str| ProbeError::Endpoint {
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be https (or http)"));
    }
    if url.host_str().is_none() {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("no userinfo"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

fn read(path: &Path) -> Result<String, ProbeError> {
    std::fs::read_to_string(path).map_err(|e| ProbeError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn load_identity(cert: &Path, key: &Path) -> Result<Identity, ProbeError> {
    let bad = |path: &Path, reason: String| ProbeError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let cert_pem = read(cert)?;
    let chain: Vec<Vec<u8>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "no CERTIFICATE in the file".into()));
    }
    let key_pem = read(key)?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|e| bad(key, e.to_string()))?
        .ok_or_else(|| bad(key, "no private key in the file".into()))?;
    Ok(Identity {
        chain,
        key: key_der,
    })
}

/// The certificate's subject as RFC 4514.
fn subject_of(cert_der: &[u8]) -> Result<String, ProbeError> {
    dcrgate_policies::dn::Dn::from_certificate_der(cert_der)
        .map(|dn| dn.to_rfc4514())
        .map_err(|e| ProbeError::Certificate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_or_https_without_extras() {
        assert_eq!(
            parse_endpoint("https://bank.example:8443/")
                .unwrap()
                .as_str(),
            "https://bank.example:8443/"
        );
        assert_eq!(
            parse_endpoint("https://bank.example/dcr/").unwrap().path(),
            "/dcr"
        );
        for bad in [
            "ftp://x",
            "https://u:p@bank.example",
            "https://bank.example/?a=1",
            "nope",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_file_refuses_unknown_settings() {
        assert!(toml::from_str::<FileArgs>("endpont = \"x\"").is_err());
        let f: FileArgs =
            toml::from_str("redirect_uris = [\"https://a/cb\"]\nallow_writes = true").unwrap();
        assert!(f.allow_writes);
        assert_eq!(f.redirect_uris, ["https://a/cb"]);
    }
}
