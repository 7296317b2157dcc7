//! Log lines a client cannot forge: every control, bidi and zero-width character a logged
//! value carries is written as an escape (`\n`, `\r`, `\t`, `\u001B`, `\u202E`), so a claim
//! with a newline in it cannot start a line of its own, and a terminal never interprets a
//! client's escape sequence. The escapes are also valid inside JSON strings, so the same
//! writer serves both log formats.
//!
//! It wraps the log writer rather than each field: the formatter writes one event with one
//! `write_all`, and only that event's final newline is kept as is.
//!
//! [`install`] also caps every other crate's events at INFO, whatever `RUST_LOG` says: pingora
//! logs request heads (the `Authorization` header among them) at DEBUG and TRACE, and no
//! setting may put a bearer token, a request object or key material in the log. Only
//! `dcrgate`'s own targets go below INFO, and they never log those values. Colour is never
//! written: logs go to files and collectors far more often than to a terminal.

use std::io::{self, Write};

use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Whether an event of `target` at `level` may be logged at all (before `RUST_LOG` filtering).
pub fn permitted(target: &str, level: &Level) -> bool {
    target == "dcrgate" || target.starts_with("dcrgate::") || *level <= Level::INFO
}

/// Install the process's log subscriber: `RUST_LOG` (or `default`), other crates capped at
/// INFO, values escaped, to stderr, as text or JSON lines.
pub fn install(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let cap = filter_fn(|meta| permitted(meta.target(), meta.level()));
    let writer = || EscapingWriter::new(io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer);
    let registry = tracing_subscriber::registry().with(filter).with(cap);
    let _ = match format {
        LogFormat::Json => registry.with(layer.json()).try_init(),
        LogFormat::Text => registry.with(layer).try_init(),
    };
}

pub use dcrgate_policies::text::clip;

/// Whether `c` is written as an escape in a log line.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || dcrgate_policies::uri::is_invisible_format(c)
        || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Append `s` to `out` with every character [`needs_escape`] names escaped.
pub fn escape_into(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if needs_escape(c) => {
                // Characters outside the BMP are never controls or format characters here.
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// A writer that escapes what [`needs_escape`] names in each event it is handed, keeping the
/// event's final newline.
pub struct EscapingWriter<W: Write> {
    inner: W,
}

impl<W: Write> EscapingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner }
    }
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, newline) = match buf.strip_suffix(b"\n") {
            Some(b) => (b, true),
            None => (buf, false),
        };
        let text = String::from_utf8_lossy(body);
        let mut out = Vec::with_capacity(buf.len() + 8);
        escape_into(&text, &mut out);
        if newline {
            out.push(b'\n');
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut w = EscapingWriter::new(Vec::new());
        w.write_all(s.as_bytes()).unwrap();
        String::from_utf8(w.inner).unwrap()
    }

    #[test]
    fn one_event_stays_one_line() {
        assert_eq!(
            escaped("INFO rejected scope=\"openid\nINFO forged\"\n"),
            "INFO rejected scope=\"openid\\nINFO forged\"\n"
        );
        assert_eq!(escaped("a\rb\tc\u{1b}[31md\n"), "a\\rb\\tc\\u001B[31md\n");
        assert_eq!(
            escaped("x\u{202E}y\u{200B}z\u{85}\n"),
            "x\\u202Ey\\u200Bz\\u0085\n"
        );
        assert_eq!(escaped("Zoë ✓\n"), "Zoë ✓\n");
        assert_eq!(escaped("no newline"), "no newline");
    }

    #[test]
    fn escapes_are_valid_json_string_escapes() {
        let line = escaped("{\"msg\":\"a\u{202E}b\u{7f}\"}\n");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["msg"], "a\u{202E}b\u{7f}");
    }

    #[test]
    fn other_crates_stop_at_info() {
        for (target, level, ok) in [
            ("dcrgate::proxy", Level::TRACE, true),
            ("dcrgate", Level::DEBUG, true),
            ("pingora_proxy::proxy_h1", Level::DEBUG, false),
            (
                "pingora_core::protocols::http::v1::client",
                Level::TRACE,
                false,
            ),
            ("hyper::proto", Level::TRACE, false),
            ("dcrgatex", Level::DEBUG, false),
            ("pingora_proxy", Level::INFO, true),
            ("pingora_core", Level::ERROR, true),
        ] {
            assert_eq!(permitted(target, &level), ok, "{target} {level}");
        }
    }
}
