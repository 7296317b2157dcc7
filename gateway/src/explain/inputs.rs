//! The inputs of an explanation: the command line, the files it names (request object,
//! certificate, profile, gateway configuration), read and checked, each error naming its file.

use std::path::{Path, PathBuf};

use dcrgate_policies::{HostAllowlist, Profile, ProfileError};
use serde_json::{Map, Value};

use super::decode::decode_tolerant;
use super::SEED_PROFILE;
use crate::config::{Config, ConfigError, ConfigFile, Limits, Revocation};
use crate::jose::jws::JwsError;
use crate::tls::identity::{ClientIdentity, IdentityError};

/// The command line, as given (`dcrgate explain` flattens it into its arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExplainArgs {
    /// The request object (compact JWS) as the TPP sent it.
    #[arg(long, value_name = "FILE")]
    pub jwt: PathBuf,
    /// The TPP transport certificate, PEM (first certificate) or DER.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// A policy profile (TOML) [default: the profile of --config, else the seed profile].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The ClientId of the path [default: the JWT's client_id claim].
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// An accepted aud value (repeatable) [default: from --config, else the JWT's aud].
    #[arg(long = "audience", value_name = "AUD")]
    pub audiences: Vec<String>,
    /// A key set host pattern (repeatable) [default: from --config, else the hosts of the
    /// key set URLs the JWT names].
    #[arg(long = "key-set-host", value_name = "HOST")]
    pub key_set_hosts: Vec<String>,
    /// A gateway configuration to take audiences, key set hosts and the profile from (and
    /// the client CA bundle the certificate chain is checked against, its CRLs, its trusted
    /// directories and its bearer token settings).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The time the request was made: unix seconds or `2026-01-01T00:00:00Z` [default: now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The TPP's key set, a JWKS file or an https URL (fetched once): the request object's
    /// signature is verified against it. Without it the signature is NOT CHECKED.
    #[arg(long, value_name = "FILE|URL")]
    pub jwks: Option<String>,
    /// The directory's key set, a JWKS file or an https URL: the software statement's
    /// signature is verified against it [default: the keys of the --config directory that
    /// issued it]. Without either it is NOT CHECKED.
    #[arg(long, value_name = "FILE|URL")]
    pub directory_jwks: Option<String>,
    /// A file holding the bearer access token the request was sent with: it is verified as
    /// the gateway verifies it under --config's route and [bearer] settings.
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
}

/// Where a key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySetArg {
    /// A JWKS file.
    File(PathBuf),
    /// An https URL.
    Url(url::Url),
}

impl KeySetArg {
    /// `text` as an https URL, else as a file path.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains("://") {
            let url = url::Url::parse(text).map_err(|e| format!("{text}: {e}"))?;
            if url.scheme() != "https" {
                return Err(format!("{text}: a key set URL must be https"));
            }
            Ok(KeySetArg::Url(url))
        } else {
            Ok(KeySetArg::File(PathBuf::from(text)))
        }
    }
}

/// An input that cannot be explained: the message names the file (or option) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The request object file does not hold a decodable compact JWS.
    #[error("{path}: not a JWT: {source}")]
    NotJwt {
        /// The file.
        path: PathBuf,
        /// What does not decode.
        source: JwsError,
    },
    /// A PEM file without a certificate.
    #[error("{path}: not a certificate: no -----BEGIN CERTIFICATE----- block in this PEM file")]
    NoPemCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A PEM certificate block that does not decode.
    #[error("{path}: not a certificate: bad PEM: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The PEM error.
        source: std::io::Error,
    },
    /// Neither PEM nor a DER X.509 certificate.
    #[error("{path}: not an X.509 certificate (PEM or DER): {source}")]
    NotCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: IdentityError,
    },
    /// The profile does not load.
    #[error("{path}: not a usable policy profile: {source}")]
    Profile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ProfileError,
    },
    /// The gateway configuration does not load (the message names file and key).
    #[error(transparent)]
    Config(#[from] Box<ConfigError>),
    /// A `--key-set-host` pattern is not acceptable.
    #[error("--key-set-host {0}")]
    KeySetHost(String),
    /// `--at` is not a time.
    #[error("--at {0}: not unix seconds or YYYY-MM-DDTHH:MM:SSZ")]
    At(String),
    /// `--jwks` or `--directory-jwks` is not a file path or an https URL.
    #[error("--{option} {message}")]
    KeySet {
        /// The option.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `--token` without `--config`.
    #[error("--token needs --config (the route's bearer mode and the [bearer] settings)")]
    TokenWithoutConfig,
}

/// What a gateway configuration contributes.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The configuration file.
    pub path: PathBuf,
    /// `policy.audiences`.
    pub audiences: Vec<String>,
    /// `policy.key_set_hosts` as written.
    pub key_set_hosts: Vec<String>,
    /// `policy.key_set_hosts`, validated.
    pub key_hosts: HostAllowlist,
    /// Trusted directories: issuer and accepted algorithms.
    pub directories: Vec<(String, Vec<String>)>,
    /// `[limits]`.
    pub limits: Limits,
    /// `listener.client_ca`.
    pub client_ca: PathBuf,
    /// `[revocation]`.
    pub revocation: Revocation,
    /// The whole validated configuration (trusted directories, key set and bearer settings).
    pub config: Box<Config>,
}

/// Everything an explanation is made from, read and checked.
#[derive(Debug)]
pub struct Inputs {
    /// The request object, whitespace trimmed.
    pub jwt: Vec<u8>,
    /// Its header, or why it does not decode.
    pub jwt_header: Result<Map<String, Value>, JwsError>,
    /// Its payload.
    pub jwt_payload: Map<String, Value>,
    /// The transport certificate.
    pub certificate: ClientIdentity,
    /// Its DER.
    pub certificate_der: Vec<u8>,
    /// The policy profile.
    pub profile: Profile,
    /// Where the profile came from.
    pub profile_source: String,
    /// `--client-id`.
    pub client_id: Option<String>,
    /// `--audience` values.
    pub audiences: Vec<String>,
    /// `--key-set-host` patterns.
    pub key_set_hosts: Vec<String>,
    /// The gateway configuration, if one was given.
    pub deployment: Option<Deployment>,
    /// `--at`: the time of the request, unix seconds.
    pub at: Option<i64>,
    /// Certificates after the first in the `--cert` file (intermediates).
    pub intermediates: Vec<Vec<u8>>,
    /// `--jwks`.
    pub request_keys: Option<KeySetArg>,
    /// `--directory-jwks`.
    pub directory_keys: Option<KeySetArg>,
    /// `--token`: the bearer token, whitespace trimmed.
    pub token: Option<String>,
}

impl Inputs {
    /// Read and check every input the arguments name.
    pub fn load(args: &ExplainArgs) -> Result<Self, ExplainError> {
        let jwt = read(&args.jwt)?;
        let cert = read(&args.cert)?;
        let mut deployment = None;
        let mut config_profile = None;
        if let Some(path) = &args.config {
            let config = Config::load(path).map_err(Box::new)?;
            let source = format!(
                "{} (named by {})",
                config.profile_path.display(),
                path.display()
            );
            config_profile = Some((config.profile.clone(), source));
            deployment = Some(Deployment::from_config(&config));
        }
        let (profile, profile_source) = match (&args.policy, config_profile) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| ExplainError::Read {
                    path: path.clone(),
                    source,
                })?;
                let profile =
                    Profile::from_toml_str(&text).map_err(|source| ExplainError::Profile {
                        path: path.clone(),
                        source,
                    })?;
                (profile, path.display().to_string())
            }
            (None, Some(from_config)) => from_config,
            (None, None) => (
                Profile::from_toml_str(SEED_PROFILE).map_err(|source| ExplainError::Profile {
                    path: PathBuf::from("policies/profiles/seed-update.toml"),
                    source,
                })?,
                "built in: policies/profiles/seed-update.toml".to_owned(),
            ),
        };
        if !args.key_set_hosts.is_empty() {
            HostAllowlist::new(&args.key_set_hosts).map_err(ExplainError::KeySetHost)?;
        }
        let mut inputs =
            Self::from_parts(&jwt, &args.jwt, &cert, &args.cert, profile, profile_source)?;
        inputs.client_id.clone_from(&args.client_id);
        inputs.audiences.clone_from(&args.audiences);
        inputs.key_set_hosts.clone_from(&args.key_set_hosts);
        inputs.deployment = deployment;
        inputs.at = match &args.at {
            Some(text) => {
                Some(crate::clock::parse_time(text).ok_or_else(|| ExplainError::At(text.clone()))?)
            }
            None => None,
        };
        let key_set = |option: &'static str, text: &Option<String>| {
            text.as_deref()
                .map(KeySetArg::parse)
                .transpose()
                .map_err(|message| ExplainError::KeySet { option, message })
        };
        inputs.request_keys = key_set("jwks", &args.jwks)?;
        inputs.directory_keys = key_set("directory-jwks", &args.directory_jwks)?;
        if let Some(path) = &args.token {
            if inputs.deployment.is_none() {
                return Err(ExplainError::TokenWithoutConfig);
            }
            let text = String::from_utf8_lossy(&read(path)?).trim().to_owned();
            inputs.token = Some(text);
        }
        Ok(inputs)
    }

    /// Inputs from file contents (`jwt_path` and `cert_path` name them in errors); no client
    /// id, audiences, key set hosts or configuration yet.
    pub fn from_parts(
        jwt: &[u8],
        jwt_path: &Path,
        cert: &[u8],
        cert_path: &Path,
        profile: Profile,
        profile_source: String,
    ) -> Result<Self, ExplainError> {
        let jwt = jwt.trim_ascii().to_vec();
        let decoded = decode_tolerant(&jwt).map_err(|source| ExplainError::NotJwt {
            path: jwt_path.to_owned(),
            source,
        })?;
        let (certificate, certificate_der) = certificate(cert, cert_path)?;
        let intermediates = intermediates(cert);
        Ok(Self {
            jwt,
            jwt_header: decoded.header,
            jwt_payload: decoded.payload,
            certificate,
            certificate_der,
            profile,
            profile_source,
            client_id: None,
            audiences: Vec::new(),
            key_set_hosts: Vec::new(),
            deployment: None,
            at: None,
            intermediates,
            request_keys: None,
            directory_keys: None,
            token: None,
        })
    }
}

impl Deployment {
    /// The parts of a loaded configuration an explanation uses.
    pub fn from_config(config: &Config) -> Self {
        // Config keeps the allowlist compiled; the patterns as written are shown to the reader.
        let key_set_hosts = std::fs::read_to_string(&config.path)
            .ok()
            .and_then(|text| toml::from_str::<ConfigFile>(&text).ok())
            .map(|file| file.policy.key_set_hosts)
            .unwrap_or_default();
        Self {
            path: config.path.clone(),
            audiences: config.audiences.clone(),
            key_set_hosts,
            key_hosts: config.key_hosts.clone(),
            directories: config
                .directories
                .iter()
                .map(|d| (d.issuer.clone(), d.algorithms.clone()))
                .collect(),
            limits: config.limits.clone(),
            client_ca: config.client_ca.clone(),
            revocation: config.revocation.clone(),
            config: Box::new(config.clone()),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ExplainError> {
    std::fs::read(path).map_err(|source| ExplainError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The certificates after the first of a PEM file (none for DER).
fn intermediates(bytes: &[u8]) -> Vec<Vec<u8>> {
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Vec::new();
    }
    rustls_pemfile::certs(&mut &bytes[..])
        .skip(1)
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect()
}

/// The first certificate of a PEM file, or a DER certificate.
fn certificate(bytes: &[u8], path: &Path) -> Result<(ClientIdentity, Vec<u8>), ExplainError> {
    let pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    let der = if pem {
        match rustls_pemfile::certs(&mut &bytes[..]).next() {
            Some(Ok(der)) => der.as_ref().to_vec(),
            Some(Err(source)) => {
                return Err(ExplainError::Pem {
                    path: path.to_owned(),
                    source,
                })
            }
            None => {
                return Err(ExplainError::NoPemCertificate {
                    path: path.to_owned(),
                })
            }
        }
    } else {
        bytes.to_vec()
    };
    let identity =
        ClientIdentity::from_der(&der).map_err(|source| ExplainError::NotCertificate {
            path: path.to_owned(),
            source,
        })?;
    Ok((identity, der))
}
