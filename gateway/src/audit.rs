//! The audit sink: one JSON record per decision, appended to its own file by a writer thread so
//! request handling never waits on disk. Records carry identities and rule ids, never tokens,
//! JWTs or key material. When the queue is full, or the disk refuses a write, records are
//! dropped and counted, rather than stalling traffic. The file is reopened on reload (log
//! rotation); `audit.path = "-"` writes to standard output instead (containers).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::metrics::Metrics;

/// Records waiting for the writer before new ones are dropped.
const QUEUE: usize = 16_384;

/// One decision.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord<'a> {
    /// RFC 3339 UTC time of the decision.
    pub time: String,
    /// The gateway's request id (also sent upstream as `X-Request-Id`).
    pub request_id: &'a str,
    /// The route label.
    pub route: &'static str,
    /// The ClientId of the path, if any.
    pub client_id: Option<&'a str>,
    /// SHA-256 thumbprint of the client certificate, base64url.
    pub cert_thumbprint: Option<&'a str>,
    /// The client certificate subject, canonical RFC 4514.
    pub cert_dn: Option<&'a str>,
    /// The software's id (from the verified software statement, else the request).
    pub software_id: Option<&'a str>,
    /// `accepted`, `would_reject`, `rejected`, `upstream_error` or `aborted`.
    pub verdict: &'static str,
    /// The HTTP status answered (0 if none was sent).
    pub status: u16,
    /// Rule or check ids behind a rejection.
    pub reasons: &'a [&'static str],
    /// Certificate rotation decision, when the claimed DN differs from the certificate's.
    pub rotation: Option<&'static str>,
    /// Time from request head to decision, milliseconds.
    pub latency_ms: f64,
}

/// The `audit.path` that names standard output.
pub const STDOUT: &str = "-";

/// Where audit records go.
#[derive(Clone)]
pub struct AuditSink {
    tx: Option<SyncSender<String>>,
    /// Set by [`AuditSink::reopen`]; the writer reopens its file before the next record.
    reopen: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

/// Where the writer thread writes.
enum Target {
    /// A file, reopened on request (after a rotation moved it away).
    File(PathBuf),
    /// Standard output (containers).
    Stdout,
    /// Any writer (tests).
    Writer,
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

impl AuditSink {
    /// No audit records.
    pub fn off(metrics: Arc<Metrics>) -> Self {
        Self {
            tx: None,
            reopen: Arc::new(AtomicBool::new(false)),
            metrics,
        }
    }

    /// Append records to `path` (created with mode 0600 if missing), or to standard output
    /// when `path` is [`STDOUT`].
    pub fn to_file(path: &Path, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        if path.as_os_str() == STDOUT {
            return Self::start(Box::new(std::io::stdout()), Target::Stdout, metrics);
        }
        let file = open_append(path)?;
        Self::start(Box::new(file), Target::File(path.to_owned()), metrics)
    }

    /// Append records to `out` (tests).
    pub fn to_writer(out: Box<dyn Write + Send>, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        Self::start(out, Target::Writer, metrics)
    }

    fn start(
        out: Box<dyn Write + Send>,
        target: Target,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            out: BufWriter::new(out),
            target,
            reopen: reopen.clone(),
            metrics: metrics.clone(),
        };
        std::thread::Builder::new()
            .name("dcrgate-audit".into())
            .spawn(move || writer.run(rx))?;
        Ok(Self {
            tx: Some(tx),
            reopen,
            metrics,
        })
    }

    /// Reopen the file before the next record (logrotate's `postrotate` sends SIGHUP, which
    /// reloads and calls this): records then go to a new file at `audit.path`.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }

    /// Whether records are written at all (callers skip building them otherwise).
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Queue a record.
    pub fn record(&self, record: &AuditRecord<'_>) {
        let Some(tx) = &self.tx else { return };
        let Ok(line) = serde_json::to_string(record) else {
            return;
        };
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.metrics.audit_dropped.inc();
            }
        }
    }
}

/// The writer thread: batches what is queued, flushes once per batch; a batch that cannot be
/// written (a full disk) is dropped, counted and logged, and never blocks requests.
struct Writer {
    out: BufWriter<Box<dyn Write + Send>>,
    target: Target,
    reopen: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl Writer {
    fn run(mut self, rx: Receiver<String>) {
        while let Ok(line) = rx.recv() {
            if self.reopen.swap(false, Ordering::AcqRel) {
                self.reopen_file();
            }
            let mut lines = 1u64;
            let mut ok = writeln!(self.out, "{line}").is_ok();
            // Drain what is already queued, then flush once.
            while let Ok(more) = rx.try_recv() {
                lines += 1;
                ok &= writeln!(self.out, "{more}").is_ok();
            }
            if !(ok && self.out.flush().is_ok()) {
                self.metrics.audit_dropped.inc_by(lines);
                tracing::error!(records = lines, "audit sink: write failed; records dropped");
            }
        }
    }

    fn reopen_file(&mut self) {
        let Target::File(path) = &self.target else {
            return;
        };
        let _ = self.out.flush();
        match open_append(path) {
            Ok(file) => self.out = BufWriter::new(Box::new(file)),
            Err(e) => tracing::error!(
                path = %path.display(),
                error = %e,
                "audit sink: cannot reopen the file; records go to the previous one"
            ),
        }
    }
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_millis())
}

/// Format seconds since the epoch (and milliseconds) as RFC 3339 UTC.
pub fn rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_996_799, 999), "2026-11-29T23:59:59.999Z");
    }

    /// A writer into a shared buffer, or one that refuses every write (a full disk).
    #[derive(Clone)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>, bool);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.1 {
                return Err(std::io::Error::other("no space left on device"));
            }
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            if self.1 {
                return Err(std::io::Error::other("no space left on device"));
            }
            Ok(())
        }
    }

    fn record() -> AuditRecord<'static> {
        AuditRecord {
            time: now_rfc3339(),
            request_id: "r1",
            route: "register_update",
            client_id: Some("c1"),
            cert_thumbprint: None,
            cert_dn: None,
            software_id: None,
            verdict: "accepted",
            status: 200,
            reasons: &[],
            rotation: None,
            latency_ms: 1.0,
        }
    }

    /// Poll (bounded: 5 s) until `done` holds.
    fn eventually(done: impl Fn() -> bool) -> bool {
        for _ in 0..500 {
            if done() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn records_reach_the_writer_and_a_refusing_disk_is_counted_not_blocking() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let buffer = Shared(Arc::new(std::sync::Mutex::new(Vec::new())), false);
        let sink = AuditSink::to_writer(Box::new(buffer.clone()), metrics.clone()).unwrap();
        sink.record(&record());
        assert!(eventually(|| !buffer.0.lock().unwrap().is_empty()));
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["request_id"], "r1");

        let full = Shared(Arc::new(std::sync::Mutex::new(Vec::new())), true);
        let sink = AuditSink::to_writer(Box::new(full), metrics.clone()).unwrap();
        for _ in 0..3 {
            sink.record(&record());
        }
        assert!(eventually(|| metrics.audit_dropped.get() == 3));
    }
}
