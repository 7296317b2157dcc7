//! The probe's results: one [`Outcome`] per scenario, printed as a table (a hint under each
//! failure), as one JSON object, or as JUnit XML.

use std::fmt::Write as _;

use serde_json::json;

use super::scenarios::Scenario;

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The endpoint answered as a compliant one must.
    Pass,
    /// It did not (or did not answer).
    Fail,
    /// Not run with these settings.
    Skip,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Scenario name.
    pub name: &'static str,
    /// The conformance check it corresponds to.
    pub conformance: &'static str,
    /// The answer expected.
    pub expected: String,
    /// The answer received ("400 invalid_client_metadata", "no answer", "-").
    pub got: String,
    /// Pass, fail or skip.
    pub verdict: Verdict,
    /// The `error_description` received, if any.
    pub description: Option<String>,
    /// Why it was skipped, or something worth knowing about the answer.
    pub note: Option<String>,
    /// What a bank changes, when it failed.
    pub hint: Option<&'static str>,
}

impl Outcome {
    /// A scenario not run.
    pub fn skipped(s: &Scenario, why: String) -> Self {
        Self {
            name: s.name,
            conformance: s.conformance,
            expected: s.expect.label(),
            got: "-".into(),
            verdict: Verdict::Skip,
            description: None,
            note: Some(why),
            hint: None,
        }
    }

    /// A scenario that got no answer to judge.
    pub fn broken(s: &Scenario, why: String) -> Self {
        Self {
            name: s.name,
            conformance: s.conformance,
            expected: s.expect.label(),
            got: "no answer".into(),
            verdict: Verdict::Fail,
            description: None,
            note: Some(why),
            hint: Some(s.hint),
        }
    }
}

/// Counts of passed, failed and skipped scenarios.
pub fn counts(outcomes: &[Outcome]) -> (usize, usize, usize) {
    let n = |v: Verdict| outcomes.iter().filter(|o| o.verdict == v).count();
    (n(Verdict::Pass), n(Verdict::Fail), n(Verdict::Skip))
}

/// Whether no scenario failed.
pub fn all_passed(outcomes: &[Outcome]) -> bool {
    outcomes.iter().all(|o| o.verdict != Verdict::Fail)
}

/// The table: scenario, expected, got, verdict, error_description; a hint under each failure.
pub fn text(endpoint: &str, outcomes: &[Outcome]) -> String {
    let mut out = format!("dcrgate probe: {endpoint}\n\n");
    let w = |f: fn(&Outcome) -> usize, head: &str| {
        outcomes.iter().map(f).max().unwrap_or(0).max(head.len())
    };
    let (wn, we, wg) = (
        w(|o| o.name.len(), "scenario"),
        w(|o| o.expected.len(), "expected"),
        w(|o| o.got.len(), "got"),
    );
    let _ = writeln!(
        out,
        "  {:<wn$}  {:<we$}  {:<wg$}  {:<6} error_description",
        "scenario", "expected", "got", "result"
    );
    for o in outcomes {
        let detail = match (&o.description, &o.note) {
            (Some(d), Some(n)) => format!("{} ({n})", oneline(d)),
            (Some(d), None) => oneline(d),
            (None, Some(n)) => format!("({n})"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:<wn$}  {:<we$}  {:<wg$}  {:<6} {detail}",
            o.name,
            o.expected,
            o.got,
            o.verdict.label()
        );
        if let Some(h) = o.hint {
            let _ = writeln!(out, "  {:<wn$}  -> to pass: {h}", "");
        }
    }
    let (p, f, s) = counts(outcomes);
    let _ = writeln!(out, "\n  {p} passed, {f} failed, {s} skipped");
    out
}

/// Control characters a hostile endpoint could put in a description, made visible.
fn oneline(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// One JSON object: the endpoint, the counts and every outcome.
pub fn json(endpoint: &str, outcomes: &[Outcome]) -> String {
    let (p, f, s) = counts(outcomes);
    let scenarios: Vec<_> = outcomes
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "conformance": o.conformance,
                "expected": o.expected,
                "got": o.got,
                "result": o.verdict.label(),
                "error_description": o.description,
                "note": o.note,
                "hint": o.hint,
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "endpoint": endpoint,
        "passed": p,
        "failed": f,
        "skipped": s,
        "scenarios": scenarios,
    }))
    .unwrap_or_default()
}

/// JUnit XML: one suite, one test case per scenario (skipped ones marked `<skipped>`).
pub fn junit(endpoint: &str, outcomes: &[Outcome]) -> String {
    let (_, f, s) = counts(outcomes);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"dcrgate probe\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\">",
        outcomes.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\">",
        xml(endpoint),
        outcomes.len()
    );
    for o in outcomes {
        let _ = write!(
            out,
            "    <testcase classname=\"dcrgate.probe\" name=\"{}\"",
            xml(o.name)
        );
        match o.verdict {
            Verdict::Pass => out.push_str("/>\n"),
            Verdict::Skip => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(o.note.as_deref().unwrap_or_default())
                );
            }
            Verdict::Fail => {
                let message = format!("expected {}, got {}", o.expected, o.got);
                let body = [
                    o.description.as_deref(),
                    o.note.as_deref(),
                    o.hint.map(|h| format!("to pass: {h}")).as_deref(),
                ]
                .iter()
                .flatten()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("\n");
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml(&message),
                    xml(&body)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// `text` escaped for XML text and attributes; characters XML 1.0 cannot hold become `?`.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(verdict: Verdict) -> Outcome {
        Outcome {
            name: "alg_none",
            conformance: "DCR-004",
            expected: "400 invalid_client_metadata".into(),
            got: "200".into(),
            verdict,
            description: Some("a <b> & \u{1b}c".into()),
            note: None,
            hint: Some("refuse it"),
        }
    }

    #[test]
    fn junit_escapes_and_marks_failures_and_skips() {
        let x = junit(
            "https://e",
            &[outcome(Verdict::Fail), outcome(Verdict::Skip)],
        );
        assert!(x.contains("failures=\"1\" skipped=\"1\""));
        assert!(x.contains("<failure message=\"expected 400 invalid_client_metadata, got 200\">a &lt;b&gt; &amp; ?c\nto pass: refuse it</failure>"));
        assert!(x.contains("<skipped message=\"\"/>"));
    }

    #[test]
    fn text_puts_a_hint_under_a_failure() {
        let t = text("https://e", &[outcome(Verdict::Fail)]);
        assert!(t.contains("-> to pass: refuse it"), "{t}");
        assert!(t.contains("0 passed, 1 failed, 0 skipped"));
        assert!(!t.contains('\u{1b}'));
    }
}
