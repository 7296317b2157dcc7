//! The two commands as the binary runs them: arguments in, report on stdout, an exit code out
//! (0 every case holds / nothing changes is not implied, 1 a mismatch, 2 unusable input).

use std::path::{Path, PathBuf};

use super::run::{collect, evaluate};
use super::{diff, output};

/// The folder searched when `policy test` is given no path.
pub const DEFAULT_CASES: &str = "policies/cases";

/// `dcrgate policy test [PATH...]`: 0 when every case holds, 1 on any mismatch, 2 when there
/// is nothing to run or a file cannot be written.
pub fn test(paths: &[PathBuf], json: bool, junit: Option<&Path>) -> u8 {
    let paths = if paths.is_empty() {
        vec![PathBuf::from(DEFAULT_CASES)]
    } else {
        paths.to_vec()
    };
    let files = match collect(&paths) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("dcrgate policy test: no case files (*.toml) under the paths given");
            return 2;
        }
        Err(e) => {
            eprintln!("dcrgate policy test: {e}");
            return 2;
        }
    };
    let results: Vec<_> = files.iter().map(|f| evaluate(f, None)).collect();
    if json {
        println!("{}", output::json(&results));
    } else {
        print!("{}", output::text(&results));
    }
    if let Some(file) = junit {
        if let Err(e) = std::fs::write(file, output::junit("dcrgate policy test", &results)) {
            eprintln!("dcrgate policy test: {}: {e}", file.display());
            return 2;
        }
    }
    u8::from(results.iter().any(|r| !r.passed()))
}

/// `dcrgate policy diff OLD NEW --cases PATH...`: the cases whose verdict changes; 0 when none
/// does, 1 when some do, 2 on unusable input.
pub fn diff(old: &Path, new: &Path, cases: &[PathBuf], json: bool) -> u8 {
    let files = match collect(cases) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("dcrgate policy diff: no case files (*.toml) under the paths given");
            return 2;
        }
        Err(e) => {
            eprintln!("dcrgate policy diff: {e}");
            return 2;
        }
    };
    match diff::diff(old, new, &files) {
        Ok(changes) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "cases": files.len(),
                        "changed": changes,
                    }))
                    .unwrap_or_default()
                );
            } else {
                print!("{}", diff::text(&changes, files.len()));
            }
            u8::from(!changes.is_empty())
        }
        Err(e) => {
            eprintln!("dcrgate policy diff: {e}");
            2
        }
    }
}
