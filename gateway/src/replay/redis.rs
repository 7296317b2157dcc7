//! The shared replay store: a minimal Redis client on tokio (RESP2, plain TCP).
//!
//! One command matters: `SET {prefix}{id} 1 NX EX {ttl}`, which answers `+OK` when the key was
//! absent (first sighting) and nil when it was present (replay), atomically across replicas.
//! Connections authenticate (`AUTH`) and select a database (`SELECT`) as the URL says, and are
//! kept in a small pool; a connection is returned to the pool only after a clean exchange.
//! Every operation (connect, authenticate, command) runs under one deadline, and replies are
//! read with strict bounds: nothing the server sends makes the client allocate more than a
//! few KiB.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Seen, MAX_TTL, MIN_TTL};
use crate::config::RedisUrl;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line accepted, CRLF included.
const MAX_LINE: usize = 1024;
/// Longest bulk string accepted.
const MAX_BULK: usize = 1024;
/// Read buffer of one connection.
const READ_BUFFER: usize = 2048;
/// Longest server error message kept, characters.
const MAX_ERROR_CHARS: usize = 120;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

/// Why the Redis store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The operation (connect, authenticate, command) took longer than the deadline.
    #[error("timed out")]
    Timeout,
    /// No connection could be made (refused, unreachable, name did not resolve).
    #[error("cannot connect: {0}")]
    Connect(io::ErrorKind),
    /// Reading or writing an established connection failed.
    #[error("connection failed: {0}")]
    Io(io::ErrorKind),
    /// The server closed the connection before a complete reply.
    #[error("the server closed the connection")]
    Closed,
    /// The reply is not valid RESP, too large, or not what the command can answer.
    #[error("malformed reply: {0}")]
    Protocol(&'static str),
    /// The server refused the credentials, or wants some.
    #[error("authentication refused: {0}")]
    Auth(String),
    /// The server answered with an error (message shortened).
    #[error("server error: {0}")]
    ServerError(String),
}

impl StoreError {
    /// A closed-set label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Connect(_) => "connect",
            StoreError::Io(_) => "io",
            StoreError::Closed => "closed",
            StoreError::Protocol(_) => "protocol",
            StoreError::Auth(_) => "auth",
            StoreError::ServerError(_) => "server_error",
        }
    }
}

/// The Redis replay store. Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    url: RedisUrl,
    key_prefix: String,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `url`; keys are `{key_prefix}{id}`; each operation is bounded by `timeout`.
    /// Nothing is contacted until the first operation.
    pub fn new(url: RedisUrl, key_prefix: String, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                url,
                key_prefix,
                timeout,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Records `id` for `ttl` (rounded up to whole seconds, clamped to the store's bounds)
    /// unless it is already recorded.
    pub async fn check_and_record(&self, id: &str, ttl: Duration) -> Result<Seen, StoreError> {
        let key = format!("{}{}", self.inner.key_prefix, id);
        let seconds = ttl_seconds(ttl).to_string();
        let command: [&[u8]; 6] = [
            b"SET",
            key.as_bytes(),
            b"1",
            b"NX",
            b"EX",
            seconds.as_bytes(),
        ];
        tokio::time::timeout(self.inner.timeout, self.set_nx(&command))
            .await
            .unwrap_or(Err(StoreError::Timeout))
    }

    /// Forgets `id` (`DEL`).
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        let key = format!("{}{}", self.inner.key_prefix, id);
        let command: [&[u8]; 2] = [b"DEL", key.as_bytes()];
        let reply = tokio::time::timeout(self.inner.timeout, self.call(&command))
            .await
            .unwrap_or(Err(StoreError::Timeout))?;
        match reply {
            Reply::Integer(_) => Ok(()),
            Reply::Error(e) => Err(StoreError::ServerError(e)),
            _ => Err(StoreError::Protocol("unexpected reply to DEL")),
        }
    }

    /// Whether the server answers (`PING`), within the store's timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let command: [&[u8]; 1] = [b"PING"];
        let reply = tokio::time::timeout(self.inner.timeout, self.call(&command))
            .await
            .unwrap_or(Err(StoreError::Timeout))?;
        match reply {
            Reply::Simple(_) => Ok(()),
            Reply::Error(e) => Err(StoreError::ServerError(e)),
            _ => Err(StoreError::Protocol("unexpected reply to PING")),
        }
    }

    async fn set_nx(&self, command: &[&[u8]]) -> Result<Seen, StoreError> {
        set_nx_reply(self.call(command).await?)
    }

    /// On a pooled connection if one is idle, else on a new one. A pooled connection that
    /// turns out to be dead (the server restarted or dropped it while idle) is discarded and
    /// the command is sent once more on a new connection. If the dead connection had in fact
    /// delivered a `SET NX`, the retry answers `Replayed`: a false rejection, never a missed
    /// replay.
    async fn call(&self, command: &[&[u8]]) -> Result<Reply, StoreError> {
        if let Some(mut conn) = self.take_idle() {
            match conn.call(command).await {
                Ok(reply) => {
                    self.keep_unless_error(conn, &reply);
                    return Ok(reply);
                }
                Err(StoreError::Closed | StoreError::Io(_)) => drop(conn),
                Err(e) => return Err(e),
            }
        }
        let mut conn = Conn::connect(&self.inner.url).await?;
        let reply = conn.call(command).await?;
        self.keep_unless_error(conn, &reply);
        Ok(reply)
    }

    /// Pool `conn` again unless the server answered an error (an authentication lost, say):
    /// the next command then connects (and authenticates) afresh.
    fn keep_unless_error(&self, conn: Conn, reply: &Reply) {
        if !matches!(reply, Reply::Error(_)) {
            self.put_back(conn);
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn put_back(&self, conn: Conn) {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

/// `ttl` in whole seconds, rounded up, within the store's bounds.
fn ttl_seconds(ttl: Duration) -> u64 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    seconds.clamp(MIN_TTL.as_secs(), MAX_TTL.as_secs())
}

/// What `SET key 1 NX EX ttl` answered.
fn set_nx_reply(reply: Reply) -> Result<Seen, StoreError> {
    match reply {
        Reply::Simple(s) if s == "OK" => Ok(Seen::First),
        Reply::Bulk(None) => Ok(Seen::Replayed),
        Reply::Error(e) if e.starts_with("NOAUTH") || e.starts_with("WRONGPASS") => {
            Err(StoreError::Auth(e))
        }
        Reply::Error(e) => Err(StoreError::ServerError(e)),
        _ => Err(StoreError::Protocol("unexpected reply to SET")),
    }
}

/// One connection to the server.
struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    /// Connects, authenticates and selects the database.
    async fn connect(url: &RedisUrl) -> Result<Self, StoreError> {
        let tcp = TcpStream::connect((url.host(), url.port()))
            .await
            .map_err(|e| StoreError::Connect(e.kind()))?;
        // Latency only; a failure to set it is harmless.
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn {
            stream: BufReader::with_capacity(READ_BUFFER, tcp),
        };
        if let Some(password) = url.password() {
            let reply = match url.username() {
                Some(user) => conn.call(&[b"AUTH", user, password]).await?,
                None => conn.call(&[b"AUTH", password]).await?,
            };
            match reply {
                Reply::Simple(s) if s == "OK" => {}
                Reply::Error(e) => return Err(StoreError::Auth(e)),
                _ => return Err(StoreError::Protocol("unexpected reply to AUTH")),
            }
        }
        if let Some(db) = url.db() {
            let db = db.to_string();
            match conn.call(&[b"SELECT", db.as_bytes()]).await? {
                Reply::Simple(s) if s == "OK" => {}
                Reply::Error(e) if e.starts_with("NOAUTH") => return Err(StoreError::Auth(e)),
                Reply::Error(e) => return Err(StoreError::ServerError(e)),
                _ => return Err(StoreError::Protocol("unexpected reply to SELECT")),
            }
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply.
    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, StoreError> {
        self.stream
            .get_mut()
            .write_all(&encode(args))
            .await
            .map_err(io_error)?;
        read_reply(&mut self.stream).await
    }
}

fn io_error(e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => StoreError::Closed,
        kind => StoreError::Io(kind),
    }
}

/// A command as a RESP array of bulk strings.
fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The RESP2 replies this client understands.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// `+...`
    Simple(String),
    /// `-...` (shortened, control characters replaced).
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n` and n bytes, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
}

/// Reads one reply; arrays and anything over the bounds are protocol errors.
async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Reply, StoreError> {
    let mut line = Vec::with_capacity(64);
    let read = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await
        .map_err(io_error)?;
    if read == 0 {
        return Err(StoreError::Closed);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() >= MAX_LINE {
            StoreError::Protocol("reply line too long")
        } else {
            StoreError::Closed
        });
    }
    let Some(body) = line.strip_suffix(b"\r\n") else {
        return Err(StoreError::Protocol("reply line not ended by CRLF"));
    };
    let Some((&kind, body)) = body.split_first() else {
        return Err(StoreError::Protocol("empty reply line"));
    };
    match kind {
        b'+' => Ok(Reply::Simple(String::from_utf8_lossy(body).into_owned())),
        b'-' => Ok(Reply::Error(shorten(body))),
        b':' => Ok(Reply::Integer(parse_integer(body)?)),
        b'$' => {
            let len = parse_integer(body)?;
            if len == -1 {
                return Ok(Reply::Bulk(None));
            }
            let len = usize::try_from(len)
                .map_err(|_| StoreError::Protocol("negative bulk string length"))?;
            if len > MAX_BULK {
                return Err(StoreError::Protocol("bulk string too long"));
            }
            let mut data = vec![0; len + 2];
            reader.read_exact(&mut data).await.map_err(io_error)?;
            if !data.ends_with(b"\r\n") {
                return Err(StoreError::Protocol("bulk string not ended by CRLF"));
            }
            data.truncate(len);
            Ok(Reply::Bulk(Some(data)))
        }
        _ => Err(StoreError::Protocol("unexpected reply type")),
    }
}

/// A RESP integer: an optional `-` and 1 to 19 digits.
fn parse_integer(text: &[u8]) -> Result<i64, StoreError> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(StoreError::Protocol("bad integer"));
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(StoreError::Protocol("bad integer"))
}

/// A server message fit for logs: bounded, control characters replaced.
fn shorten(message: &[u8]) -> String {
    String::from_utf8_lossy(message)
        .chars()
        .take(MAX_ERROR_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Reply, StoreError> {
        let mut reader = bytes;
        read_reply(&mut reader).await
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            encode(&[b"SET", b"k:1", b"1", b"NX", b"EX", b"60"]),
            b"*6\r\n$3\r\nSET\r\n$3\r\nk:1\r\n$1\r\n1\r\n$2\r\nNX\r\n$2\r\nEX\r\n$2\r\n60\r\n"
        );
        assert_eq!(encode(&[b"AUTH", b""]), b"*2\r\n$4\r\nAUTH\r\n$0\r\n\r\n");
    }

    #[tokio::test]
    async fn replies_are_parsed() {
        assert_eq!(parse(b"+OK\r\n").await, Ok(Reply::Simple("OK".into())));
        assert_eq!(parse(b"$-1\r\n").await, Ok(Reply::Bulk(None)));
        assert_eq!(parse(b":-42\r\n").await, Ok(Reply::Integer(-42)));
        assert_eq!(
            parse(b"$5\r\nh\r\nlo\r\n").await,
            Ok(Reply::Bulk(Some(b"h\r\nlo".to_vec())))
        );
        assert_eq!(
            parse(b"$0\r\n\r\n").await,
            Ok(Reply::Bulk(Some(Vec::new())))
        );
        assert_eq!(
            parse(b"-ERR bad\x1b[31m thing\r\n").await,
            Ok(Reply::Error("ERR bad?[31m thing".into()))
        );
    }

    #[tokio::test]
    async fn bad_replies_are_refused_without_large_allocations() {
        for bad in [
            &b"$999999999\r\n"[..],
            b"$1025\r\n",
            b"$9223372036854775807\r\n",
            b"$99999999999999999999\r\n",
            b"$-2\r\n",
            b"$\r\n",
            b"$3\r\nabcXY",
            b":12a\r\n",
            b":\r\n",
            b":+1\r\n",
            b"*1\r\n$1\r\na\r\n",
            b"_\r\n",
            b"\r\n",
            b"+OK\n",
        ] {
            assert!(
                matches!(parse(bad).await, Err(StoreError::Protocol(_))),
                "{:?}: {:?}",
                String::from_utf8_lossy(bad),
                parse(bad).await
            );
        }
        let endless = vec![b'+'; 100_000];
        assert_eq!(
            parse(&endless).await,
            Err(StoreError::Protocol("reply line too long"))
        );
        let mut long_error = b"-ERR ".to_vec();
        long_error.extend(std::iter::repeat_n(b'x', 900));
        long_error.extend_from_slice(b"\r\n");
        match parse(&long_error).await {
            Ok(Reply::Error(e)) => assert_eq!(e.chars().count(), MAX_ERROR_CHARS),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn truncated_replies_are_closed_connections() {
        assert_eq!(parse(b"").await, Err(StoreError::Closed));
        assert_eq!(parse(b"+O").await, Err(StoreError::Closed));
        assert_eq!(parse(b"$5\r\nab").await, Err(StoreError::Closed));
    }

    #[test]
    fn set_nx_answers() {
        assert_eq!(set_nx_reply(Reply::Simple("OK".into())), Ok(Seen::First));
        assert_eq!(set_nx_reply(Reply::Bulk(None)), Ok(Seen::Replayed));
        assert!(matches!(
            set_nx_reply(Reply::Error("NOAUTH Authentication required.".into())),
            Err(StoreError::Auth(_))
        ));
        assert!(matches!(
            set_nx_reply(Reply::Error("OOM command not allowed".into())),
            Err(StoreError::ServerError(_))
        ));
        assert_eq!(
            set_nx_reply(Reply::Integer(1)),
            Err(StoreError::Protocol("unexpected reply to SET"))
        );
        assert_eq!(
            set_nx_reply(Reply::Bulk(Some(b"1".to_vec()))),
            Err(StoreError::Protocol("unexpected reply to SET"))
        );
    }

    #[test]
    fn ttl_is_whole_seconds_within_bounds() {
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(ttl_seconds(Duration::from_secs(300)), 300);
        assert_eq!(ttl_seconds(Duration::from_secs(u64::MAX)), 86_400);
    }

    #[test]
    fn errors_and_debug_do_not_leak_the_password() {
        let u = RedisUrl::parse("redis://user:hunter2@h:1").expect("url");
        assert!(!format!("{u:?}").contains("hunter2"));
        let store = RedisStore::new(u, "p:".into(), Duration::from_millis(5));
        assert!(!format!("{store:?}").contains("hunter2"));
        let e = RedisUrl::parse("redis://user:hunter2@h:1/x").expect_err("refused");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn error_kinds_are_labels() {
        let all = [
            StoreError::Timeout,
            StoreError::Connect(io::ErrorKind::ConnectionRefused),
            StoreError::Io(io::ErrorKind::ConnectionReset),
            StoreError::Closed,
            StoreError::Protocol("x"),
            StoreError::Auth("x".into()),
            StoreError::ServerError("x".into()),
        ];
        let kinds: std::collections::HashSet<_> = all.iter().map(StoreError::kind).collect();
        assert_eq!(kinds.len(), all.len());
        assert!(kinds
            .iter()
            .all(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }
}
