//! `dcrgate demo`, the README's first command, run as the real binary: every scenario gets the
//! answer its title promises, the revoked certificate is refused at the handshake, and the
//! stand-in registry receives the compliant update alone. The `dcrgate probe` command it
//! prints runs against it and fails exactly the scenarios the demo leaves to the registry.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the demo when the test ends, however it ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_forwards_the_compliant_update_alone_and_refuses_the_revoked_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .arg("demo")
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dcrgate demo");
    let stdout = child.stdout.take().expect("stdout");
    let _demo = Demo(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Read until the registry's summary and the probe command after it (bounded: 90 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut lines: Vec<String> = Vec::new();
    let mut summary_at = None;
    let mut probe_command = None;
    while summary_at.is_none() || probe_command.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if line.contains("The stand-in registry received") {
                    summary_at = Some(lines.len());
                }
                if let Some(args) = line.trim().strip_prefix("dcrgate probe ") {
                    probe_command = Some(args.to_owned());
                }
                lines.push(line);
            }
            Err(_) => panic!("the demo did not finish its table:\n{}", lines.join("\n")),
        }
    }
    let text = lines.join("\n");
    let rows: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_start())
        .filter(|l| {
            l.split_once(". ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .collect();
    assert!(rows.len() >= 10, "{text}");
    assert!(
        rows[0].contains("compliant update") && rows[0].contains("-> 200 forwarded"),
        "{text}"
    );
    let last = rows[rows.len() - 1];
    assert!(last.contains("revoked transport certificate"), "{text}");
    assert!(last.contains("refused at the TLS handshake"), "{text}");
    // Every other scenario is answered by the gateway itself, with an RFC 7591 error.
    for row in &rows[1..rows.len() - 1] {
        let (_, answer) = row.split_once(" -> ").expect("an answer");
        let status: u16 = answer[..3].parse().unwrap_or(0);
        assert!((400..=599).contains(&status), "{row}");
    }
    assert!(
        text.contains("The stand-in registry received 1 request(s):"),
        "{text}"
    );

    // The printed probe command works against the demo: the gateway's own checks all pass; the
    // bearer-token scenarios, which the demo leaves to the registry, fail as the demo says.
    let args: Vec<&str> = probe_command
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .collect();
    assert_eq!(args[0], "--config", "{text}");
    let report_path = dir.path().join("probe-report.json");
    let mut probe = Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .arg("probe")
        .args(&args)
        .args(["--format", "json", "--timeout-seconds", "10"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&report_path).expect("report file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("dcrgate probe");
    // Bounded: 90 s.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = probe.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = probe.kill();
            let _ = probe.wait();
            panic!("the probe did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let out = std::fs::read(&report_path).expect("report");
    let report: serde_json::Value = serde_json::from_slice(&out).expect("JSON report");
    let failed: Vec<&str> = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter(|s| s["result"] == "FAIL")
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        failed,
        ["foreign_bearer_token", "update_other_client_id"],
        "{report}"
    );
    // The demo says which scenarios fail against it, and why (the lines after the command).
    let mut note = String::new();
    while !note.contains("update_other_client_id fail here") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => note.push_str(&line),
            Err(_) => panic!("no note after the probe command:\n{text}\n{note}"),
        }
    }
    assert!(note.contains("bearer = \"upstream\""), "{note}");
}
