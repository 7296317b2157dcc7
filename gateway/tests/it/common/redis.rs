//! A real `redis-server` child process on 127.0.0.1 for the replay tests (from
//! `DCRGATE_REDIS_SERVER` or `redis-server` on PATH; Debian package `redis-server`), killed on
//! drop. Every wait is bounded.

use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long redis-server may take to accept connections.
const START_WITHIN: Duration = Duration::from_secs(10);

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
        .port()
}

/// A redis-server child process on loopback, killed on drop.
pub struct RedisServer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    dir: TempDir,
    args: Vec<String>,
}

impl RedisServer {
    /// A server on a free port. free_port() releases the port before redis-server binds it,
    /// so a parallel test can take it in between: a server that could not bind exits, and the
    /// start is retried on another port.
    pub fn start(extra: &[&str]) -> Self {
        let args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let mut failures = Vec::new();
        for _ in 0..3 {
            let dir = TempDir::new().expect("temp dir");
            match Self::try_start_on(free_port(), dir, args.clone()) {
                Ok(server) => return server,
                Err(e) => failures.push(e),
            }
        }
        panic!("redis-server did not start:\n{}", failures.join("\n"));
    }

    pub fn start_on(port: u16, dir: TempDir, args: Vec<String>) -> Self {
        Self::try_start_on(port, dir, args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start_on(port: u16, dir: TempDir, args: Vec<String>) -> Result<Self, String> {
        let binary = std::env::var_os("DCRGATE_REDIS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let log = dir.path().join("redis.log");
        let child = Command::new(&binary)
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}. These tests need a Redis server binary: install \
                     Debian's `redis-server` package (apt-get install redis-server) or set \
                     DCRGATE_REDIS_SERVER to one",
                    binary.display()
                )
            });
        let mut server = Self {
            child,
            port,
            dir,
            args,
        };
        server.try_wait_ready()?;
        Ok(server)
    }

    pub fn wait_ready(&mut self) {
        self.try_wait_ready().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Wait until this server (not another process on the same port) accepts connections: its
    /// own log says it is ready, and the port answers.
    fn try_wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "redis-server exited ({status}); log:\n{}",
                    self.log()
                ));
            }
            let log = self.log();
            let ready = log.contains("Ready to accept connections");
            if ready && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "redis-server not accepting connections within {START_WITHIN:?}; log:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    pub fn url(&self, credentials: &str, path: &str) -> String {
        format!("redis://{credentials}127.0.0.1:{}{path}", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts a new one on the same port (empty, same options).
    pub fn restart(mut self) -> Self {
        self.stop();
        let dir = TempDir::new().expect("temp dir");
        let args = std::mem::take(&mut self.args);
        Self::start_on(self.port, dir, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
