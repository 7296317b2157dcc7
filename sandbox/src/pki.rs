//! The sandbox's development PKI, written to a folder as PEM files the gateway config and curl
//! can point at.

use std::path::{Path, PathBuf};

use dcrgate_certs::{Authority, IssuedCert, RsaSigningKey, SubjectSpec};

use crate::SandboxError;

/// Paths of the files [`SandboxPki::write`] creates.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The server CA (trusted by clients for the gateway and the key host).
    pub server_ca: PathBuf,
    /// The gateway's certificate chain.
    pub gateway_cert: PathBuf,
    /// The gateway's key.
    pub gateway_key: PathBuf,
    /// The CA that issues TPP transport certificates (the gateway's client CA bundle).
    pub client_ca: PathBuf,
}

/// A development PKI: a server CA, a TPP (client) CA, and the gateway's and key host's
/// certificates for `localhost` / 127.0.0.1.
pub struct SandboxPki {
    /// Issues server certificates.
    pub server_ca: Authority,
    /// Issues TPP transport certificates.
    pub client_ca: Authority,
    /// The gateway's certificate.
    pub gateway: IssuedCert,
    /// The key host's certificate.
    pub key_host: IssuedCert,
}

impl SandboxPki {
    /// Generate a fresh PKI.
    pub fn generate() -> Result<Self, SandboxError> {
        let server_ca = Authority::new("dcrgate sandbox server CA")?;
        let client_ca = Authority::new("dcrgate sandbox TPP CA")?;
        let gateway = server_ca.issue_server(&["localhost", "127.0.0.1"])?;
        let key_host = server_ca.issue_server(&["localhost", "127.0.0.1"])?;
        Ok(Self {
            server_ca,
            client_ca,
            gateway,
            key_host,
        })
    }

    /// A TPP transport certificate with this subject.
    pub fn transport_cert(&self, subject: &SubjectSpec) -> Result<IssuedCert, SandboxError> {
        Ok(self.client_ca.issue_client(subject)?)
    }

    /// Write the PEM files into `dir`.
    pub fn write(&self, dir: &Path) -> Result<PkiFiles, SandboxError> {
        let files = PkiFiles {
            server_ca: dir.join("server-ca.pem"),
            gateway_cert: dir.join("gateway.pem"),
            gateway_key: dir.join("gateway.key"),
            client_ca: dir.join("client-ca.pem"),
        };
        std::fs::write(&files.server_ca, self.server_ca.cert_pem())?;
        std::fs::write(&files.gateway_cert, &self.gateway.cert_pem)?;
        write_private(&files.gateway_key, &self.gateway.key_pem)?;
        std::fs::write(&files.client_ca, self.client_ca.cert_pem())?;
        Ok(files)
    }
}

/// Write a key file readable by its owner only.
pub fn write_private(path: &Path, contents: &str) -> Result<(), SandboxError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// A sample TPP signing key (RSA-2048, for PS256).
pub fn signing_key(kid: &str) -> Result<RsaSigningKey, SandboxError> {
    Ok(RsaSigningKey::generate(kid, 2048)?)
}

/// A PKCS#8 private key (DER) as PEM (`-----BEGIN PRIVATE KEY-----`), e.g. a TPP signing key
/// written out for a tool that reads PEM.
pub fn pkcs8_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}
