//! `dcrgate policy test` and `dcrgate policy diff`: the shipped profiles' cases all hold, each
//! profile has a rejecting case for every rule it enforces and an accepting one, a case whose
//! expectation is wrong fails with a readable diff (and in JSON and JUnit), and `diff` shows
//! which cases a profile change turns around.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dcrgate::policy_test::case::Verdict;
use dcrgate::policy_test::{collect, evaluate, CaseResult};
use dcrgate_policies::{Presence, Profile, Rule};

/// The repository root (the gateway crate's parent).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn policy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .arg("policy")
        .args(args)
        .current_dir(root())
        .output()
        .expect("dcrgate runs")
}

fn profile(name: &str) -> Profile {
    let path = root().join(format!("policies/profiles/{name}.toml"));
    Profile::from_toml_str(&std::fs::read_to_string(path).expect("profile")).expect("loads")
}

fn results(name: &str) -> Vec<CaseResult> {
    let files = collect(&[root().join(format!("policies/cases/{name}"))]).expect("cases");
    assert!(files.len() >= 10, "{name}: {} cases", files.len());
    files.iter().map(|f| evaluate(f, None)).collect()
}

/// The rules `profile` does not enforce, each with the setting that says so (asserted, so that
/// a profile change that starts enforcing one makes this test ask for its case).
fn not_enforced(profile: &Profile) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    if !profile.replay.require_jti {
        out.insert(Rule::Jti.id());
    }
    if !profile.claims.require_org_name {
        out.insert(Rule::OrgName.id());
    }
    if !profile.software_statement.require_iss_is_software_id {
        out.insert(Rule::SoftwareId.id());
    }
    if profile.software_statement.presence == Presence::Refused {
        for r in [
            Rule::SoftwareStatement,
            Rule::SoftwareStatementTime,
            Rule::SoftwareRedirectUris,
            Rule::SoftwareRoles,
            Rule::SoftwareKeySet,
            Rule::KeySetConflict,
        ] {
            out.insert(r.id());
        }
    }
    if profile.software_statement.presence != Presence::Required {
        // Only "a statement is required and absent" breaks it.
        out.insert(Rule::SoftwareStatement.id());
    }
    out
}

#[test]
fn every_shipped_case_holds_and_covers_every_rule_its_profile_enforces() {
    for name in ["seed-update", "uk-ob-dcr-3.3"] {
        let results = results(name);
        let failed: Vec<String> = results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| format!("{}: {}", r.file.display(), r.problems.join("; ")))
            .collect();
        assert!(failed.is_empty(), "{name}:\n{}", failed.join("\n"));
        assert!(
            results
                .iter()
                .any(|r| r.expected.verdict == Verdict::Accept),
            "{name}: no accepting case"
        );
        let covered: BTreeSet<String> = results
            .iter()
            .filter(|r| r.expected.verdict == Verdict::Reject)
            .flat_map(|r| r.expected.rules.clone())
            .collect();
        let profile = profile(name);
        let exempt = not_enforced(&profile);
        let missing: Vec<&str> = Rule::ALL
            .iter()
            .map(|r| r.id())
            .filter(|id| !exempt.contains(id) && !covered.contains(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "{name}: no rejecting case for {missing:?}"
        );
    }
}

/// A copy of a shipped case with its expectation changed.
fn wrong_case(dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(root().join("policies/cases/seed-update/scope-outside.toml"))
            .expect("case");
    let text = text
        .replace("rules = [\"scope\"]", "rules = [\"redirect_uris\"]")
        .replace("status = 400", "status = 403");
    let text = format!(
        "profile = \"{}\"\n{text}",
        root().join("policies/profiles/seed-update.toml").display()
    );
    let path = dir.join("wrong.toml");
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn a_wrong_expectation_fails_with_a_diff_in_text_json_and_junit() {
    let dir = tempfile::TempDir::new().expect("dir");
    let wrong = wrong_case(dir.path());
    let junit = dir.path().join("junit.xml");
    let out = policy(&[
        "test",
        wrong.to_str().expect("utf-8"),
        "policies/cases/seed-update/compliant-update.toml",
        "--junit",
        junit.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL"), "{text}");
    assert!(
        text.contains("expected to fail but passed: redirect_uris"),
        "{text}"
    );
    assert!(text.contains("failed but not expected: scope"), "{text}");
    assert!(text.contains("status: expected 403, got 400"), "{text}");
    assert!(
        text.contains("PASS  policies/cases/seed-update/compliant-update.toml"),
        "{text}"
    );
    assert!(text.contains("2 cases, 1 passed, 1 failed"), "{text}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("<testsuites name=\"dcrgate policy test\" tests=\"2\" failures=\"1\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"rules: expected to fail but passed: redirect_uris\">"),
        "{xml}"
    );

    let out = policy(&["test", wrong.to_str().expect("utf-8"), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["failed"], 1);
    assert_eq!(v["cases"][0]["passed"], false);
    assert_eq!(v["cases"][0]["got"]["rules"], serde_json::json!(["scope"]));
    assert_eq!(v["cases"][0]["expected"]["status"], 403);
}

#[test]
fn the_shipped_cases_pass_from_the_command_line_and_unusable_input_is_exit_2() {
    let out = policy(&["test"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 0 failed"), "{text}");
    let dir = tempfile::TempDir::new().expect("dir");
    assert_eq!(
        policy(&["test", dir.path().to_str().expect("utf-8")])
            .status
            .code(),
        Some(2)
    );
    std::fs::write(dir.path().join("bad.toml"), "not = [a case").expect("write");
    let out = policy(&["test", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not a case"),
        "{out:?}"
    );
}

#[test]
fn diff_shows_the_cases_a_profile_change_turns_around() {
    let dir = tempfile::TempDir::new().expect("dir");
    let old = root().join("policies/profiles/seed-update.toml");
    let text = std::fs::read_to_string(&old).expect("profile");
    // The new profile also allows a "telepathy" scope and shadows the lifetime rule.
    let new_text = text
        .replace(
            "allowed_scopes = [\"openid\", \"accounts\", \"payments\", \"fundsconfirmations\"]",
            "allowed_scopes = [\"openid\", \"accounts\", \"payments\", \"fundsconfirmations\", \"telepathy\"]",
        )
        .replace("rules = []", "rules = [\"lifetime\"]");
    assert_ne!(text, new_text);
    let new = dir.path().join("new.toml");
    std::fs::write(&new, new_text).expect("write");
    let out = policy(&[
        "diff",
        old.to_str().expect("utf-8"),
        new.to_str().expect("utf-8"),
        "--cases",
        "policies/cases/seed-update",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("scope-outside.toml: reject [scope] 400 -> accept"),
        "{text}"
    );
    assert!(
        text.contains(
            "lifetime.toml: reject [lifetime] 400 -> accept [lifetime] would_reject [lifetime]"
        ),
        "{text}"
    );
    assert!(text.contains("2 of "), "{text}");
    // The same profile twice changes nothing.
    let out = policy(&[
        "diff",
        old.to_str().expect("utf-8"),
        old.to_str().expect("utf-8"),
        "--cases",
        "policies/cases/seed-update",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
