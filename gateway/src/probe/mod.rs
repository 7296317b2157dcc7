//! `dcrgate probe`: a TPP in a box. It plays a TPP against any DCR endpoint (dcrgate in front
//! or not): signs request objects with the TPP's key, presents its transport certificate, gets
//! a bearer token, and reports scenario by scenario whether the endpoint answered as a
//! compliant one must.
//!
//! - [`args`]: flags and the `--config` file, resolved into settings.
//! - [`jws`]: PS256 / RS256 / `none` request objects on ring, random values.
//! - [`client`]: bounded HTTP/1.1 over mTLS (or plain TCP for http://).
//! - [`token`]: the bearer token: given, or a client credentials grant (discovery optional).
//! - [`scenarios`]: the catalogue: what is sent and what a compliant endpoint answers.
//! - [`run`]: building, sending and judging each scenario.
//! - [`report`]: table, JSON and JUnit XML.
//!
//! Only the endpoint, the token endpoint and the discovery document named are contacted.
//! Scenarios that write at a compliant endpoint run only with `--allow-writes`.

pub mod args;
pub mod client;
pub mod jws;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod token;

use std::path::PathBuf;

pub use args::ProbeArgs;
use args::{OutputFormat, Settings};

/// Why the probe cannot run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A required setting is missing.
    #[error("missing setting: --{0}")]
    Missing(&'static str),
    /// Two settings exclude each other.
    #[error("conflicting settings: {0}")]
    Conflict(&'static str),
    /// A file cannot be read.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The `--config` file is not valid.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key or certificate file holds nothing usable.
    #[error("{}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The transport certificate's subject cannot be read.
    #[error("transport certificate: {0}")]
    Certificate(String),
    /// The endpoint URL is not usable.
    #[error("endpoint {url}: {reason}")]
    Endpoint {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// TLS set-up.
    #[error("TLS: {0}")]
    Tls(String),
    /// The discovery document cannot be had.
    #[error("discovery document {url}: {reason}")]
    Discovery {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No bearer token from the token endpoint.
    #[error("token endpoint {url}: {reason}")]
    Token {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The audience is neither given nor in a discovery document.
    #[error("missing setting: --audience (or a --discovery document with an issuer)")]
    NoAudience,
    /// Writing the JUnit file.
    #[error("{}: {reason}", path.display())]
    Junit {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The async runtime.
    #[error("runtime: {0}")]
    Runtime(String),
}

/// Run the probe; the exit code: 0 every scenario run passed, 1 one failed, 2 unusable input.
pub fn command(args: &ProbeArgs) -> u8 {
    match probe(args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("dcrgate probe: {e}");
            2
        }
    }
}

fn probe(args: &ProbeArgs) -> Result<bool, ProbeError> {
    let settings = Settings::load(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProbeError::Runtime(e.to_string()))?;
    let outcomes = runtime.block_on(probe_endpoint(&settings))?;
    let endpoint = settings.endpoint.to_string();
    match settings.format {
        OutputFormat::Text => print!("{}", report::text(&endpoint, &outcomes)),
        OutputFormat::Json => println!("{}", report::json(&endpoint, &outcomes)),
    }
    if let Some(path) = &settings.junit {
        std::fs::write(path, report::junit(&endpoint, &outcomes)).map_err(|e| {
            ProbeError::Junit {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
    }
    Ok(report::all_passed(&outcomes))
}

async fn probe_endpoint(settings: &Settings) -> Result<Vec<report::Outcome>, ProbeError> {
    let client = client::Client::new(settings)?;
    let discovery = match &settings.discovery {
        Some(url) => Some(token::discover(&client, url).await?),
        None => None,
    };
    let token = token::bearer_token(&client, settings, discovery.as_ref()).await?;
    let audience = settings
        .audience
        .clone()
        .or_else(|| discovery.as_ref().and_then(|d| d.issuer.clone()))
        .ok_or(ProbeError::NoAudience)?;
    let ctx = run::Context {
        settings,
        client: &client,
        token,
        discovery,
        audience,
    };
    Ok(run::run_all(&ctx).await)
}
