//! What this binary is: the crate version, the commit it was built from and when (set by
//! `build.rs` from `DCRGATE_COMMIT` / git and `SOURCE_DATE_EPOCH`).

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit, abbreviated, or `unknown`.
pub const COMMIT: &str = env!("DCRGATE_COMMIT");
/// The build date, `YYYY-MM-DDTHH:MM:SSZ`.
pub const BUILD_DATE: &str = env!("DCRGATE_BUILD_DATE");
/// `0.1.0 (commit 1a2b3c4d5e6f, built 2026-12-07T12:00:00Z)`, for `--version`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DCRGATE_COMMIT"),
    ", built ",
    env!("DCRGATE_BUILD_DATE"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_version_commit_and_date() {
        assert!(LONG.starts_with(VERSION));
        assert!(LONG.contains(COMMIT) && LONG.contains(BUILD_DATE));
        assert_eq!(BUILD_DATE.len(), 20, "{BUILD_DATE}");
        assert!(BUILD_DATE.ends_with('Z') && BUILD_DATE.as_bytes()[10] == b'T');
        assert!(
            crate::clock::parse_time(BUILD_DATE).is_some(),
            "{BUILD_DATE}"
        );
    }
}
