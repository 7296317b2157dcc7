//! The sandbox's world: the shipped profiles, the audience and key set path the sample TPP
//! uses, free loopback ports, and [`SandboxConfig`], the gateway configuration `dcrgate demo`
//! and the integration tests start the gateway with.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pki::PkiFiles;
use crate::SandboxError;

/// The seed API's policy profile, embedded so the demo needs no files.
pub const SEED_PROFILE: &str = include_str!("../../policies/profiles/seed-update.toml");
/// The shipped UK Open Banking DCR 3.3 profile.
pub const UK_PROFILE: &str = include_str!("../../policies/profiles/uk-ob-dcr-3.3.toml");
/// The audience the sandbox's gateway accepts.
pub const AUDIENCE: &str = "https://bank.example/";
/// Where the sample TPP's key set is served on the key host.
pub const JWKS_PATH: &str = "/demo-tpp/jwks.json";

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it first).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A gateway configuration for the sandbox, as a TOML table the tests can adjust.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The TOML.
    pub table: toml::Table,
}

impl SandboxConfig {
    /// Listener and admin on the given ports, upstream at `upstream`, PKI files from `files`,
    /// profile file `profile` (relative to the config's folder), key host on loopback.
    pub fn new(
        listen: u16,
        admin: u16,
        upstream: SocketAddr,
        files: &PkiFiles,
        profile: &str,
    ) -> Self {
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let text = format!(
            r#"
[listener]
address = "127.0.0.1:{listen}"
certificate = "{cert}"
private_key = "{key}"
client_ca = "{client_ca}"

[admin]
address = "127.0.0.1:{admin}"

[upstream]
url = "http://{upstream}"
connect_timeout_ms = 1000
read_timeout_ms = 5000

[policy]
profile = "{profile}"
audiences = ["{AUDIENCE}"]
key_set_hosts = ["localhost"]

[routes.update]
# The sandbox registry stands in for the bearer check; banks choose jwt or introspection.
bearer = "upstream"

[rate_limits]
# Tests and the demo send bursts from one certificate; production keeps the defaults
# (5/s per certificate, burst 20; 500/s for the gateway).
per_client_per_second = 1000.0
per_client_burst = 1000.0

[key_sets]
extra_ca_file = "{server_ca}"
use_public_roots = false
# The sandbox key host is on loopback; production keeps this false.
allow_private_addresses = true

[server]
threads = 2
grace_period_seconds = 0
graceful_shutdown_timeout_seconds = 1
"#,
            cert = name(&files.gateway_cert),
            key = name(&files.gateway_key),
            client_ca = name(&files.client_ca),
            server_ca = name(&files.server_ca),
        );
        // The template is valid TOML by construction.
        let table = toml::from_str(&text).unwrap_or_default();
        Self { table }
    }

    /// The table at a dotted section path (`"routes.update"`), created if missing.
    fn section(&mut self, dotted: &str) -> Option<&mut toml::Table> {
        let mut t = &mut self.table;
        for part in dotted.split('.') {
            t = t
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()?;
        }
        Some(t)
    }

    /// Set `section.key = value`; `section` may be dotted (`"routes.read"`).
    pub fn set(&mut self, section: &str, key: &str, value: impl Into<toml::Value>) -> &mut Self {
        if let Some(t) = self.section(section) {
            t.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Append `item` to the array of tables `section.key` (`[[policy.directories]]`).
    pub fn push(&mut self, section: &str, key: &str, item: toml::Table) -> &mut Self {
        if let Some(t) = self.section(section) {
            let entry = t
                .entry(key.to_owned())
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            if let Some(a) = entry.as_array_mut() {
                a.push(toml::Value::Table(item));
            }
        }
        self
    }

    /// Write to `dir/name` and return the path. The file is written beside it and renamed into
    /// place, so a gateway watching it never reads half a file.
    pub fn write(&self, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
        let path = dir.join(name);
        let partial = dir.join(format!(".{name}.partial"));
        std::fs::write(&partial, toml::to_string(&self.table).unwrap_or_default())?;
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }
}

/// Wait until something accepts TCP connections on `addr` (bounded).
pub fn wait_for_port(addr: SocketAddr, within: Duration) -> Result<(), SandboxError> {
    let step = Duration::from_millis(50);
    for _ in 0..(within.as_millis() / step.as_millis()).max(1) {
        if TcpStream::connect_timeout(&addr, step).is_ok() {
            return Ok(());
        }
        std::thread::sleep(step);
    }
    Err(SandboxError::Timeout("port to open"))
}
