//! A real `redis-server` child process on 127.0.0.1 for the replay tests (from
//! `DCRGATE_REDIS_SERVER` or `redis-server` on PATH; Debian package `redis-server`), killed on
//! drop. Every wait is bounded.

use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
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
    /// A server on a free port; `{port}` in `extra` stands for that port. free_port() releases the port before redis-server binds it,
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
            .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
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

    /// A TLS-only server (`rediss://` on its port) with this certificate, key and client CA;
    /// `auth_clients` says whether it requires a client certificate.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path, auth_clients: bool) -> Self {
        let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
        let args = [
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            "{port}".to_owned(),
            "--tls-cert-file".to_owned(),
            path(cert),
            "--tls-key-file".to_owned(),
            path(key),
            "--tls-ca-cert-file".to_owned(),
            path(ca),
            "--tls-auth-clients".to_owned(),
            if auth_clients { "yes" } else { "no" }.to_owned(),
        ];
        Self::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// A raw command to this server over plain TCP (test-side, independent of the client under
    /// test); returns the first reply line.
    pub fn raw(&self, args: &[&str]) -> String {
        raw_command(self.port, args)
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

/// One command over plain TCP to 127.0.0.1:`port`, bounded by a 5 s timeout; the first reply
/// line (empty on any failure).
pub fn raw_command(port: u16, args: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut command = format!("*{}\r\n", args.len());
    for a in args {
        command.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    if stream.write_all(command.as_bytes()).is_err() {
        return String::new();
    }
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line.trim_end().to_owned()
}

/// A Redis Sentinel child process on loopback monitoring one master as `dcrgate`, quick to
/// fail over (the master is down after 500 ms), killed on drop.
pub struct Sentinel {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    dir: TempDir,
}

impl Sentinel {
    /// A sentinel (quorum 1) for the master on `master_port`.
    pub fn start(master_port: u16) -> Self {
        let binary = std::env::var_os("DCRGATE_REDIS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let dir = TempDir::new().expect("temp dir");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel.log\n\
                 sentinel monitor dcrgate 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds dcrgate 500\n\
                 sentinel failover-timeout dcrgate 5000\n",
                dir = dir.path().display()
            ),
        )
        .expect("sentinel.conf");
        let child = Command::new(&binary)
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} --sentinel: {e}", binary.display()));
        let mut sentinel = Self { child, port, dir };
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = sentinel.child.try_wait() {
                panic!("sentinel exited ({status}); log:\n{}", sentinel.log());
            }
            if sentinel.log().contains("+monitor master dcrgate")
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return sentinel;
            }
            assert!(
                Instant::now() < deadline,
                "sentinel not ready within {START_WITHIN:?}; log:\n{}",
                sentinel.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
