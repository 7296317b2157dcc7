//! The Redis the replicas share (`[redis]`): the replay store and the shared rate limiter both
//! run their commands here.
//!
//! One multiplexed connection is kept and re-established after it fails. The server is reached
//! over TCP or TLS (`rediss://`: rustls on ring, the server's CA configurable, a client
//! certificate optional), authenticates with `AUTH` (an ACL user or the default user) and
//! selects its database; in Sentinel mode the sentinels are asked for the master's address on
//! every (re)connection, so a failover is followed. Every operation runs under one deadline.
//! A command that fails because the connection died, or because the server is no longer the
//! master (`READONLY`), is sent once more on a new connection: for `SET NX` that can turn a
//! delivered command into a false "replayed", never into a missed replay.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, ConnectionAddr, ConnectionInfo, FromRedisValue,
    IntoConnectionInfo, RedisConnectionInfo, TlsCertificates, TlsMode,
};
use tokio::sync::Mutex;

use crate::config::{Redis, RedisUrl};

/// Longest server or client error message kept, characters.
const MAX_ERROR_CHARS: usize = 160;

/// Why the shared Redis could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The operation (connect, authenticate, command) took longer than the deadline.
    #[error("timed out")]
    Timeout,
    /// No connection could be made (refused, unreachable, name did not resolve, TLS refused,
    /// no sentinel knew the master).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// Reading or writing an established connection failed.
    #[error("connection failed: {0}")]
    Io(String),
    /// The reply is not what the command can answer.
    #[error("malformed reply: {0}")]
    Protocol(String),
    /// The server refused the credentials, or wants some.
    #[error("authentication refused: {0}")]
    Auth(String),
    /// The server answered with an error.
    #[error("server error: {0}")]
    ServerError(String),
}

impl StoreError {
    /// Every [`StoreError::kind`].
    pub const KINDS: [&'static str; 6] = [
        "timeout",
        "connect",
        "io",
        "protocol",
        "auth",
        "server_error",
    ];

    /// A closed-set label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Connect(_) => "connect",
            StoreError::Io(_) => "io",
            StoreError::Protocol(_) => "protocol",
            StoreError::Auth(_) => "auth",
            StoreError::ServerError(_) => "server_error",
        }
    }

    /// `e` sorted into a kind; `connecting` says whether it happened while connecting.
    fn from_redis(e: &redis::RedisError, connecting: bool) -> Self {
        let text = shorten(&e.to_string());
        let auth = matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
            || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"));
        if auth {
            StoreError::Auth(text)
        } else if e.is_timeout() {
            StoreError::Timeout
        } else if matches!(e.kind(), redis::ErrorKind::Server(_)) {
            StoreError::ServerError(text)
        } else if connecting {
            StoreError::Connect(text)
        } else if e.is_io_error() || e.is_connection_dropped() {
            StoreError::Io(text)
        } else if matches!(
            e.kind(),
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
        ) {
            StoreError::Protocol(text)
        } else {
            StoreError::ServerError(text)
        }
    }
}

/// A message fit for logs: bounded, control characters replaced.
fn shorten(message: &str) -> String {
    message
        .chars()
        .take(MAX_ERROR_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// One operation: a command or a script.
pub enum Op<'a> {
    /// A command.
    Cmd(&'a redis::Cmd),
    /// A Lua script (`EVALSHA`, loaded with `EVAL` when the server does not know it).
    Script(&'a redis::ScriptInvocation<'a>),
}

/// The shared Redis. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct SharedRedis {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Option<Redis>,
    timeout: Duration,
    state: Mutex<State>,
}

/// What is kept between operations, behind one lock so that one task (re)connects at a time.
struct State {
    conn: Option<MultiplexedConnection>,
    target: Target,
}

/// Where connections go.
enum Target {
    /// A fixed server.
    Direct(Box<Client>),
    /// The master the sentinels name.
    Sentinel(Box<SentinelClient>),
    /// The settings could not be turned into a client (an error found on first use).
    Unusable(String),
}

impl fmt::Debug for SharedRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRedis")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl SharedRedis {
    /// A client for the validated `[redis]` settings. Nothing is contacted until the first
    /// operation.
    pub fn new(settings: &Redis) -> Self {
        let target = match target(settings) {
            Ok(t) => t,
            Err(e) => Target::Unusable(shorten(&e.to_string())),
        };
        Self {
            inner: Arc::new(Inner {
                settings: Some(settings.clone()),
                timeout: settings.timeout,
                state: Mutex::new(State { conn: None, target }),
            }),
        }
    }

    /// A client with no server: every operation fails with [`StoreError::Connect`].
    pub fn unconfigured() -> Self {
        Self {
            inner: Arc::new(Inner {
                settings: None,
                timeout: Duration::from_millis(1),
                state: Mutex::new(State {
                    conn: None,
                    target: Target::Unusable("no [redis] is configured".into()),
                }),
            }),
        }
    }

    /// The settings it was built from (none for [`SharedRedis::unconfigured`]).
    pub fn settings(&self) -> Option<&Redis> {
        self.inner.settings.as_ref()
    }

    /// Runs `op` within the deadline, on a new connection once more if the first one died.
    pub async fn run<T: FromRedisValue>(&self, op: Op<'_>) -> Result<T, StoreError> {
        tokio::time::timeout(self.inner.timeout, self.run_unbounded(op))
            .await
            .unwrap_or(Err(StoreError::Timeout))
    }

    /// Whether the server answers `PING`, within the deadline.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let reply: String = self.run(Op::Cmd(&redis::cmd("PING"))).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Protocol("unexpected reply to PING".into()))
        }
    }

    async fn run_unbounded<T: FromRedisValue>(&self, op: Op<'_>) -> Result<T, StoreError> {
        let mut conn = self.connection().await?;
        match send(&op, &mut conn).await {
            Ok(v) => Ok(v),
            Err(e) if reconnect_after(&e) => {
                self.forget().await;
                let mut conn = self.connection().await?;
                match send(&op, &mut conn).await {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        if reconnect_after(&e) {
                            self.forget().await;
                        }
                        Err(StoreError::from_redis(&e, false))
                    }
                }
            }
            Err(e) => Err(StoreError::from_redis(&e, false)),
        }
    }

    /// The kept connection, or a new one.
    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let mut state = self.inner.state.lock().await;
        if let Some(conn) = &state.conn {
            return Ok(conn.clone());
        }
        let timeout = self.inner.timeout;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn = match &mut state.target {
            Target::Direct(client) => client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| StoreError::from_redis(&e, true))?,
            Target::Sentinel(sentinel) => sentinel
                .get_async_connection_with_config(&config)
                .await
                .map_err(|e| StoreError::from_redis(&e, true))?,
            Target::Unusable(why) => return Err(StoreError::Connect(why.clone())),
        };
        state.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Drops the kept connection: the next operation connects afresh.
    async fn forget(&self) {
        self.inner.state.lock().await.conn = None;
    }
}

async fn send<T: FromRedisValue>(
    op: &Op<'_>,
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<T> {
    match op {
        Op::Cmd(cmd) => cmd.query_async(conn).await,
        Op::Script(invocation) => invocation.invoke_async(conn).await,
    }
}

/// Whether `e` means this connection is of no further use: it died, or its server is no longer
/// the master.
fn reconnect_after(e: &redis::RedisError) -> bool {
    e.is_unrecoverable_error()
        || e.is_connection_dropped()
        || e.is_io_error()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

/// The client (or sentinel client) the settings describe.
fn target(settings: &Redis) -> redis::RedisResult<Target> {
    let certificates = || TlsCertificates {
        client_tls: settings
            .tls
            .client
            .as_ref()
            .map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
        root_cert: settings.tls.ca_pem.clone(),
    };
    let url = &settings.url;
    match &settings.sentinel {
        None => {
            let info = connection_info(url)?;
            if url.tls() {
                Client::build_with_tls(info, certificates())
            } else {
                Client::open(info)
            }
            .map(|c| Target::Direct(Box::new(c)))
        }
        Some(sentinel) => {
            let nodes = sentinel.nodes.iter().map(address);
            let mut builder =
                SentinelClientBuilder::new(nodes, &sentinel.master, SentinelServerType::Master)?
                    .set_client_to_redis_db(i64::from(url.db().unwrap_or(0)));
            if url.tls() {
                builder = builder
                    .set_client_to_redis_tls_mode(TlsMode::Secure)
                    .set_client_to_redis_certificates(certificates());
            }
            if let Some(user) = url.username() {
                builder = builder.set_client_to_redis_username(utf8(user)?);
            }
            if let Some(password) = url.password() {
                builder = builder.set_client_to_redis_password(utf8(password)?);
            }
            // Validation requires every sentinel to share its scheme and credentials.
            if let Some(first) = sentinel.nodes.first() {
                if first.tls() {
                    builder = builder
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure)
                        .set_client_to_sentinel_certificates(certificates());
                }
                if let Some(user) = first.username() {
                    builder = builder.set_client_to_sentinel_username(utf8(user)?);
                }
                if let Some(password) = first.password() {
                    builder = builder.set_client_to_sentinel_password(utf8(password)?);
                }
            }
            builder
                .build()
                .map(|client| Target::Sentinel(Box::new(client)))
        }
    }
}

fn utf8(bytes: &[u8]) -> redis::RedisResult<&str> {
    std::str::from_utf8(bytes).map_err(|_| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "user names and passwords must be UTF-8",
        ))
    })
}

/// The address of `url`, TLS verified against the configured roots when `rediss://`.
fn address(url: &RedisUrl) -> ConnectionAddr {
    if url.tls() {
        ConnectionAddr::TcpTls {
            host: url.host().to_owned(),
            port: url.port(),
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(url.host().to_owned(), url.port())
    }
}

/// `url` as the client wants it: address, credentials, database.
fn connection_info(url: &RedisUrl) -> redis::RedisResult<ConnectionInfo> {
    // No `CLIENT SETINFO` after connecting: nothing is sent but what the URL asks for.
    let mut redis = RedisConnectionInfo::default()
        .set_db(i64::from(url.db().unwrap_or(0)))
        .set_skip_set_lib_name();
    if let Some(user) = url.username() {
        redis = redis.set_username(utf8(user)?);
    }
    if let Some(password) = url.password() {
        redis = redis.set_password(utf8(password)?);
    }
    Ok(address(url)
        .into_connection_info()?
        .set_redis_settings(redis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Redis {
        Redis {
            url: RedisUrl::parse(url).expect("url"),
            tls: Default::default(),
            sentinel: None,
            timeout: Duration::from_millis(200),
            url_file: None,
        }
    }

    #[test]
    fn debug_does_not_print_the_password() {
        let redis = SharedRedis::new(&settings("rediss://gw:hunter2@h:1/2"));
        let printed = format!("{redis:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("gw"), "{printed}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_within_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let redis = SharedRedis::new(&settings(&format!("redis://127.0.0.1:{port}")));
        let started = std::time::Instant::now();
        let e = redis.ping().await.expect_err("nothing listens");
        assert!(
            matches!(e, StoreError::Connect(_) | StoreError::Timeout),
            "{e:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn error_kinds_are_labels() {
        let all = [
            StoreError::Timeout,
            StoreError::Connect("x".into()),
            StoreError::Io("x".into()),
            StoreError::Protocol("x".into()),
            StoreError::Auth("x".into()),
            StoreError::ServerError("x".into()),
        ];
        let kinds: std::collections::HashSet<_> = all.iter().map(StoreError::kind).collect();
        assert_eq!(kinds.len(), all.len());
        assert_eq!(kinds, StoreError::KINDS.into_iter().collect());
        assert!(kinds
            .iter()
            .all(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn messages_are_bounded_and_free_of_control_characters() {
        let long = format!("ERR {}\x1b[31m", "x".repeat(500));
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_ERROR_CHARS);
        assert!(!shorten("a\x1bb\nc").contains(['\x1b', '\n']));
    }
}
