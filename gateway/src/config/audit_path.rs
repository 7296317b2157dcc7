//! `audit.path`, checked as `run` will use it: a file that can be opened for appending, or that
//! can be created in an existing folder. `check` thus refuses what `run` could not open.

use std::fs::OpenOptions;
use std::path::Path;

/// Why the audit file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditPathError {
    /// It names a folder.
    #[error("is a folder, not a file")]
    Folder,
    /// Its folder does not exist.
    #[error("its folder does not exist")]
    NoFolder,
    /// It cannot be opened (or created) for appending.
    #[error("cannot be opened for appending: {0}")]
    Open(#[from] std::io::Error),
}

/// Whether `path` can be appended to; a file that did not exist is created and removed again.
pub fn check_writable(path: &Path) -> Result<(), AuditPathError> {
    if path.is_dir() {
        return Err(AuditPathError::Folder);
    }
    if path.exists() {
        OpenOptions::new().append(true).open(path)?;
        return Ok(());
    }
    match path.parent() {
        Some(folder) if folder.as_os_str().is_empty() || folder.is_dir() => {}
        _ => return Err(AuditPathError::NoFolder),
    }
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_run_could_not_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_writable(dir.path()),
            Err(AuditPathError::Folder)
        ));
        assert!(matches!(
            check_writable(&dir.path().join("missing/audit.jsonl")),
            Err(AuditPathError::NoFolder)
        ));
        // A new file in an existing folder: fine, and nothing is left behind.
        let new = dir.path().join("audit.jsonl");
        check_writable(&new).unwrap();
        assert!(!new.exists());
        // An existing file is appended to, never truncated.
        std::fs::write(&new, "kept\n").unwrap();
        check_writable(&new).unwrap();
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "kept\n");
    }
}
