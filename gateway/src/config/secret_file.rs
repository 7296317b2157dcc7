//! Client secret files: read at validation (so a bad file fails start-up or reload) and again
//! when the introspection client is built.

use std::path::Path;

/// Why a client secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// It cannot be read.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// It holds nothing but whitespace.
    #[error("the client secret file is empty")]
    Empty,
}

/// The client secret in `path`, surrounding whitespace trimmed; an empty file is refused.
pub fn read_secret_file(path: &Path) -> Result<String, SecretFileError> {
    let text = std::fs::read_to_string(path)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(SecretFileError::Empty);
    }
    Ok(secret.to_owned())
}
