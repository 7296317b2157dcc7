//! A case evaluated through the explanation and compared with what it expects.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dcrgate_policies::Profile;
use serde::Serialize;

use super::case::{Case, CaseError, Expect, Verdict};
use crate::explain::{explain, Inputs, Outcome, Report};

/// What the gateway's checks decided for a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// `accept` or `reject`.
    pub verdict: Verdict,
    /// Every failing rule and check id, sorted.
    pub rules: Vec<String>,
    /// On rejection: the status.
    pub status: Option<u16>,
    /// On rejection: the `error`.
    pub error: Option<String>,
    /// On rejection: what decided, and its message.
    pub description: Option<String>,
    /// On acceptance: the rules in shadow that are broken.
    pub would_reject: Vec<String>,
}

impl Observed {
    /// What `report` says.
    pub fn from_report(report: &Report) -> Self {
        let mut rules: BTreeSet<String> = report.findings.iter().map(|f| f.id.to_owned()).collect();
        rules.extend(
            report
                .rules
                .iter()
                .filter(|r| r.result == Outcome::Fail)
                .map(|r| r.id.to_owned()),
        );
        // Cases carry no signatures: what was not checked for want of keys counts as passed.
        let accepted = report.passes_what_was_checked();
        Self {
            verdict: if accepted {
                Verdict::Accept
            } else {
                Verdict::Reject
            },
            rules: rules.into_iter().collect(),
            status: report.verdict.status,
            error: report.verdict.error.map(str::to_owned),
            description: report.verdict.description.as_ref().map(|d| {
                match report.verdict.decided_by {
                    Some(by) => format!("{by}: {d}"),
                    None => d.clone(),
                }
            }),
            would_reject: report
                .verdict
                .would_reject
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
        }
    }

    /// The differences from `expect`, one line each; none when the case holds.
    pub fn differences(&self, expect: &Expect) -> Vec<String> {
        let mut out = Vec::new();
        if self.verdict != expect.verdict {
            out.push(format!(
                "verdict: expected {}, got {}{}",
                expect.verdict.as_str(),
                self.verdict.as_str(),
                self.description
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
        let expected: BTreeSet<&str> = expect.rules.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = self.rules.iter().map(String::as_str).collect();
        let missing: Vec<&str> = expected.difference(&got).copied().collect();
        let extra: Vec<&str> = got.difference(&expected).copied().collect();
        if !missing.is_empty() {
            out.push(format!(
                "rules: expected to fail but passed: {}",
                missing.join(", ")
            ));
        }
        if !extra.is_empty() {
            out.push(format!(
                "rules: failed but not expected: {}",
                extra.join(", ")
            ));
        }
        if let Some(status) = expect.status {
            if self.status != Some(status) {
                out.push(format!(
                    "status: expected {status}, got {}",
                    self.status.map_or("none".into(), |s| s.to_string())
                ));
            }
        }
        if let Some(error) = &expect.error {
            if self.error.as_ref() != Some(error) {
                out.push(format!(
                    "error: expected {error}, got {}",
                    self.error.as_deref().unwrap_or("none")
                ));
            }
        }
        let expected: BTreeSet<&str> = expect.would_reject.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = self.would_reject.iter().map(String::as_str).collect();
        if expected != got {
            out.push(format!(
                "would_reject: expected [{}], got [{}]",
                expected.into_iter().collect::<Vec<_>>().join(", "),
                got.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        out
    }
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case file.
    pub file: PathBuf,
    /// Its description.
    pub description: String,
    /// The profile's name (or the file, when it does not load).
    pub profile: String,
    /// What it expects.
    #[serde(serialize_with = "serialize_expect")]
    pub expected: Expect,
    /// What the checks decided; `None` when the case could not be evaluated.
    pub got: Option<Observed>,
    /// The differences, or why the case could not be evaluated.
    pub problems: Vec<String>,
}

fn serialize_expect<S: serde::Serializer>(e: &Expect, s: S) -> Result<S::Ok, S::Error> {
    serde_json::json!({
        "verdict": e.verdict.as_str(),
        "rules": e.rules,
        "status": e.status,
        "error": e.error,
        "would_reject": e.would_reject,
    })
    .serialize(s)
}

impl CaseResult {
    /// Whether the case holds.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The case files under `paths` (files as given, folders searched for `*.toml`), sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CaseError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CaseError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CaseError::Read {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| CaseError::Read {
                path: dir.to_owned(),
                source,
            })?
            .path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads a profile file.
pub fn load_profile(path: &Path) -> Result<Profile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Profile::from_toml_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The case at `path` under its own profile, or under `profile` when one is given.
pub fn evaluate(path: &Path, profile: Option<(&Profile, &Path)>) -> CaseResult {
    let case = match Case::load(path) {
        Ok(c) => c,
        Err(e) => return unusable(path, String::new(), e.to_string()),
    };
    let result = |profile: String, got: Option<Observed>, problems| CaseResult {
        file: path.to_owned(),
        description: case.description.clone(),
        profile,
        expected: case.expect.clone(),
        got,
        problems,
    };
    let prepared = match case.prepare(path) {
        Ok(p) => p,
        Err(e) => return result(String::new(), None, vec![e.to_string()]),
    };
    let (profile, profile_path) = match profile {
        Some((p, source)) => (p.clone(), source.to_owned()),
        None => match load_profile(&prepared.profile_path) {
            Ok(p) => (p, prepared.profile_path.clone()),
            Err(e) => return result(String::new(), None, vec![e]),
        },
    };
    let name = profile.name.clone();
    let mut inputs = match Inputs::from_parts(
        &prepared.jwt,
        path,
        &prepared.certificate_pem,
        path,
        profile,
        profile_path.display().to_string(),
    ) {
        Ok(i) => i,
        Err(e) => return result(name, None, vec![e.to_string()]),
    };
    inputs.client_id.clone_from(&case.client_id);
    inputs.audiences.clone_from(&case.audiences);
    inputs.key_set_hosts.clone_from(&case.key_set_hosts);
    let report = explain(&inputs, prepared.at);
    let observed = Observed::from_report(&report);
    let problems = observed.differences(&case.expect);
    result(name, Some(observed), problems)
}

fn unusable(path: &Path, profile: String, problem: String) -> CaseResult {
    CaseResult {
        file: path.to_owned(),
        description: String::new(),
        profile,
        expected: Expect {
            verdict: Verdict::Accept,
            rules: Vec::new(),
            status: None,
            error: None,
            would_reject: Vec::new(),
        },
        got: None,
        problems: vec![problem],
    }
}
