//! `dcrgate policy diff OLD NEW --cases PATH`: every case evaluated under both profiles, and
//! the ones whose outcome (verdict, failing rules, status) changes, so an operator sees what a
//! profile change does before enabling it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::run::{evaluate, load_profile, Observed};

/// A case whose outcome differs between the two profiles.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The case file.
    pub file: PathBuf,
    /// Under the old profile (`None`: the case could not be evaluated).
    pub old: Option<Observed>,
    /// Under the new profile.
    pub new: Option<Observed>,
}

/// The cases (files) whose outcome changes from `old` to `new`; errors name the profile file.
pub fn diff(old: &Path, new: &Path, cases: &[PathBuf]) -> Result<Vec<Change>, String> {
    let old_profile = load_profile(old)?;
    let new_profile = load_profile(new)?;
    let mut changes = Vec::new();
    for case in cases {
        let before = evaluate(case, Some((&old_profile, old))).got;
        let after = evaluate(case, Some((&new_profile, new))).got;
        let outcome = |o: &Option<Observed>| {
            o.as_ref()
                .map(|o| (o.verdict, o.rules.clone(), o.status, o.would_reject.clone()))
        };
        if outcome(&before) != outcome(&after) {
            changes.push(Change {
                file: case.clone(),
                old: before,
                new: after,
            });
        }
    }
    Ok(changes)
}

/// One line per change: `case: accept -> reject [scope] 400`.
pub fn text(changes: &[Change], total: usize) -> String {
    let show = |o: &Option<Observed>| match o {
        None => "unusable".to_owned(),
        Some(o) => {
            let mut s = o.verdict.as_str().to_owned();
            if !o.rules.is_empty() {
                s.push_str(&format!(" [{}]", o.rules.join(", ")));
            }
            if let Some(status) = o.status {
                s.push_str(&format!(" {status}"));
            }
            if !o.would_reject.is_empty() {
                s.push_str(&format!(" would_reject [{}]", o.would_reject.join(", ")));
            }
            s
        }
    };
    let mut out = String::new();
    for c in changes {
        out.push_str(&format!(
            "{}: {} -> {}\n",
            c.file.display(),
            show(&c.old),
            show(&c.new)
        ));
    }
    out.push_str(&format!(
        "{} of {total} cases change verdict\n",
        changes.len()
    ));
    out
}
