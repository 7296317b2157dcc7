//! The audit sink: one JSON record per decision, appended to its own file by a writer thread so
//! request handling never waits on disk. Records carry identities and rule ids, never tokens,
//! JWTs or key material. When the queue is full a record is dropped and counted, rather than
//! stalling traffic.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
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
    /// `accepted`, `rejected`, `upstream_error` or `aborted`.
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

/// Where audit records go.
#[derive(Clone)]
pub struct AuditSink {
    tx: Option<SyncSender<String>>,
    metrics: Arc<Metrics>,
}

impl AuditSink {
    /// No audit records.
    pub fn off(metrics: Arc<Metrics>) -> Self {
        Self { tx: None, metrics }
    }

    /// Append records to `path` (created with mode 0600 if missing).
    pub fn to_file(path: &Path, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("dcrgate-audit".into())
            .spawn(move || write_loop(rx, BufWriter::new(file)))?;
        Ok(Self {
            tx: Some(tx),
            metrics,
        })
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

fn write_loop(rx: Receiver<String>, mut out: BufWriter<std::fs::File>) {
    while let Ok(line) = rx.recv() {
        let mut ok = writeln!(out, "{line}").is_ok();
        // Drain what is already queued, then flush once.
        while let Ok(more) = rx.try_recv() {
            ok &= writeln!(out, "{more}").is_ok();
        }
        if !(ok && out.flush().is_ok()) {
            tracing::error!("audit sink: write failed");
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
}
