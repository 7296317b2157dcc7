//! `dcrgate demo`, the README's first command, run as the real binary: every scenario gets the
//! answer its title promises, the revoked certificate is refused at the handshake, and the
//! stand-in registry receives the compliant update alone.

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
    // Read until the registry's summary and the line after it (bounded: 90 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut lines: Vec<String> = Vec::new();
    let mut summary_at = None;
    while summary_at.is_none_or(|i| lines.len() < i + 2) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if line.contains("The stand-in registry received") {
                    summary_at = Some(lines.len());
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
}
