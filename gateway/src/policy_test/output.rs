//! Case results for a reader (a table with a diff under each mismatch), as JSON, and as JUnit
//! XML for CI.

use std::fmt::Write;

use super::run::CaseResult;

/// A table: one line per case, and under each failing case what differs.
pub fn text(results: &[CaseResult]) -> String {
    let mut out = String::new();
    for r in results {
        let got = r
            .got
            .as_ref()
            .map_or("-".to_owned(), |g| summary(g.verdict.as_str(), &g.rules));
        let _ = writeln!(
            out,
            "{}  {}  expected {}  got {}",
            if r.passed() { "PASS" } else { "FAIL" },
            r.file.display(),
            summary(r.expected.verdict.as_str(), &r.expected.rules),
            got
        );
        for p in &r.problems {
            let _ = writeln!(out, "        {p}");
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let _ = writeln!(
        out,
        "{} cases, {} passed, {} failed",
        results.len(),
        results.len() - failed,
        failed
    );
    out
}

fn summary(verdict: &str, rules: &[String]) -> String {
    if rules.is_empty() {
        verdict.to_owned()
    } else {
        format!("{verdict} [{}]", rules.join(", "))
    }
}

/// `{"cases": [...], "passed": n, "failed": m}`.
pub fn json(results: &[CaseResult]) -> String {
    let failed = results.iter().filter(|r| !r.passed()).count();
    let cases: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["passed"] = serde_json::Value::Bool(r.passed());
            v
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "cases": cases,
        "passed": results.len() - failed,
        "failed": failed,
    }))
    .unwrap_or_default()
}

/// JUnit XML: one test suite per profile, one test case per case file.
pub fn junit(suite: &str, results: &[CaseResult]) -> String {
    let mut profiles: Vec<&str> = results.iter().map(|r| r.profile.as_str()).collect();
    profiles.sort_unstable();
    profiles.dedup();
    let failed = results.iter().filter(|r| !r.passed()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failed}\">",
        xml(suite),
        results.len()
    );
    for profile in profiles {
        let cases: Vec<&CaseResult> = results.iter().filter(|r| r.profile == profile).collect();
        let failures = cases.iter().filter(|r| !r.passed()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
            xml(profile),
            cases.len()
        );
        for r in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(profile),
                xml(&r.file.display().to_string())
            );
            if r.passed() {
                out.push_str("/>\n");
            } else {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml(r.problems.first().map_or("", String::as_str)),
                    xml(&r.problems.join("\n"))
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
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

    #[test]
    fn xml_escapes_markup_and_controls() {
        assert_eq!(xml("a<b>&\"c'\u{1b}"), "a&lt;b&gt;&amp;&quot;c&apos;?");
    }
}
