//! dcrgate-loadgen: an HTTP/1.1 load generator over mutual TLS (rustls on ring) or plain TCP.
//!
//! Sends raw request bytes (one or several `--request` files with weights, or a request built
//! from `--method/--path/--header/--body-file`) from `--concurrency` connections, closed-loop
//! or paced open-loop at `--rate` requests per second (a request sent late because the server
//! still held the previous one counts from its scheduled start, so a stalled server is not
//! hidden by a stalled client; one sent on time counts from its send). Modes: `keepalive`
//! (connections reused; reopened when the server closes), `new-connection` (a full TLS
//! handshake for every request; session resumption is off unless `--resume`), and `slow` (each
//! connection sends only the first bytes of a request and holds, to measure how the server
//! sheds slow clients).
//!
//! `--duration` is a hard bound: nothing is sent after the deadline, requests still in flight
//! get a short `--grace` and are then abandoned, and the process exits. Output: one JSON line
//! and one human line: requests, errors by kind, status counts, req/s, latency percentiles in
//! µs (HdrHistogram, 3 significant digits: ±0.1 %), and with `--pid` the CPU time
//! (utime + stime from /proc, `getconf CLK_TCK`) those processes used per request.
//!
//! One file on purpose (≈850 lines): a self-contained tool (options, connections, pacing,
//! histogram, report) that benchmark scripts run as one binary.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use dcrgate_benches::http1::{MessageReader, ResponseMeta};
use dcrgate_benches::procstat;
use hdrhistogram::Histogram;
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::HandshakeKind;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_rustls::TlsConnector;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Reuse each connection for many requests.
    Keepalive,
    /// Open a new connection (full handshake) for every request.
    NewConnection,
    /// Send the first `--slow-bytes` of a request, then hold the connection open.
    Slow,
}

#[derive(Parser, Debug)]
#[command(
    name = "dcrgate-loadgen",
    about = "HTTP/1.1 load generator over mutual TLS (rustls, ring) or plain TCP"
)]
struct Args {
    /// host:port to connect to.
    #[arg(long)]
    target: String,
    /// Plain TCP instead of TLS.
    #[arg(long)]
    plain: bool,
    /// PEM bundle of CAs trusted for the server certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// PEM client certificate chain (mutual TLS).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long)]
    key: Option<PathBuf>,
    /// TLS server name (SNI and certificate check); default: the target's host.
    #[arg(long)]
    server_name: Option<String>,
    /// A file of raw HTTP/1.1 request bytes, optionally `FILE:WEIGHT`; repeat to mix requests.
    #[arg(long = "request")]
    requests: Vec<String>,
    /// Method of a request built from options (instead of --request).
    #[arg(long, default_value = "GET")]
    method: String,
    /// Target of a request built from options.
    #[arg(long)]
    path: Option<String>,
    /// `Name: value` header of a request built from options; repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Body of a request built from options (Content-Length is added).
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// keepalive, new-connection or slow.
    #[arg(long, value_enum, default_value = "keepalive")]
    mode: Mode,
    /// Allow TLS session resumption (off by default: every new connection is a full handshake).
    #[arg(long)]
    resume: bool,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds (after the warm-up); a hard bound on sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Open-loop pacing: total requests per second over all connections.
    #[arg(long)]
    rate: Option<f64>,
    /// Status counted as success (repeatable, or `any`); others are errors of kind `status`.
    #[arg(long = "expect-status", default_values_t = vec!["200".to_owned()])]
    expect_status: Vec<String>,
    /// Process whose CPU time per request is reported (repeatable: the sum is reported).
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// Per-request timeout, seconds (connect and handshake included).
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// After the deadline, how long in-flight requests may still finish, seconds.
    #[arg(long, default_value_t = 0.5)]
    grace: f64,
    /// Bytes of the request a slow client sends before holding.
    #[arg(long, default_value_t = 24)]
    slow_bytes: usize,
    /// Runtime worker threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// A label copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
}

/// Why the load generator could not start.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("{0}: {1}")]
    File(PathBuf, std::io::Error),
    #[error("target {0}: {1}")]
    Target(String, String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Usage(String),
    #[error("histogram: {0}")]
    Histogram(String),
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Conn {
    io: Box<dyn Io>,
    reader: MessageReader,
}

/// Requests to send and the order to send them in (weights expanded).
struct RequestSet {
    items: Vec<(Vec<u8>, bool)>,
    schedule: Vec<usize>,
}

impl RequestSet {
    fn pick(&self, k: usize) -> (&[u8], bool) {
        let i = self.schedule[k % self.schedule.len()];
        let (raw, head) = &self.items[i];
        (raw, *head)
    }
}

struct Connector {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Connector {
    async fn connect(&self, st: &mut Stats) -> Result<Box<dyn Io>, &'static str> {
        let tcp = TcpStream::connect(self.addr).await.map_err(|e| {
            st.note(format!("connect: {e}"));
            "connect"
        })?;
        let _ = tcp.set_nodelay(true);
        st.connections += 1;
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
            st.note(format!("tls: {e}"));
            "tls"
        })?;
        let (_, session) = tls.get_ref();
        match session.handshake_kind() {
            Some(HandshakeKind::Resumed) => st.resumed_handshakes += 1,
            _ => st.full_handshakes += 1,
        }
        if st.tls_info.is_none() {
            st.tls_info = Some(json!({
                "version": session.protocol_version().map(|v| format!("{v:?}")),
                "cipher_suite": session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())),
                "key_exchange": session.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name())),
            }));
        }
        Ok(Box::new(tls))
    }
}

struct Ctx {
    connector: Connector,
    requests: RequestSet,
    mode: Mode,
    concurrency: usize,
    rate: Option<f64>,
    start: Instant,
    warm_end: Instant,
    end: Instant,
    hard: Instant,
    timeout: Duration,
    expect_any: bool,
    expect: Vec<u16>,
    slow_bytes: usize,
    histogram: Histogram<u64>,
}

/// One worker's counts; merged at the end.
struct Stats {
    latency: Histogram<u64>,
    responses: u64,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    late: u64,
    abandoned: u64,
    connections: u64,
    full_handshakes: u64,
    resumed_handshakes: u64,
    slow_closed_by_server: u64,
    slow_held_at_end: u64,
    tls_info: Option<Value>,
    first_error: Option<String>,
}

impl Stats {
    fn new(histogram: &Histogram<u64>) -> Self {
        Self {
            latency: histogram.clone(),
            responses: 0,
            ok: 0,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            late: 0,
            abandoned: 0,
            connections: 0,
            full_handshakes: 0,
            resumed_handshakes: 0,
            slow_closed_by_server: 0,
            slow_held_at_end: 0,
            tls_info: None,
            first_error: None,
        }
    }

    fn note(&mut self, message: String) {
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }

    fn error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    fn merge(&mut self, o: Stats) {
        let _ = self.latency.add(&o.latency);
        self.responses += o.responses;
        self.ok += o.ok;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.late += o.late;
        self.abandoned += o.abandoned;
        self.connections += o.connections;
        self.full_handshakes += o.full_handshakes;
        self.resumed_handshakes += o.resumed_handshakes;
        self.slow_closed_by_server += o.slow_closed_by_server;
        self.slow_held_at_end += o.slow_held_at_end;
        if self.tls_info.is_none() {
            self.tls_info = o.tls_info;
        }
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

async fn exchange(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    raw: &[u8],
    head: bool,
    st: &mut Stats,
) -> Result<ResponseMeta, &'static str> {
    if conn.is_none() {
        let io = ctx.connector.connect(st).await?;
        *conn = Some(Conn {
            io,
            reader: MessageReader::new(64 << 20),
        });
    }
    let Some(c) = conn.as_mut() else {
        return Err("connect");
    };
    c.io.write_all(raw).await.map_err(|_| "write")?;
    c.io.flush().await.map_err(|_| "write")?;
    match c.reader.read_response(&mut c.io, head).await {
        Ok(meta) => Ok(meta),
        Err(e) => {
            st.note(format!("response: {e}"));
            Err(e.kind())
        }
    }
}

async fn worker(idx: usize, ctx: Arc<Ctx>) -> Stats {
    let mut st = Stats::new(&ctx.histogram);
    let mut conn: Option<Conn> = None;
    let interval = ctx
        .rate
        .map(|r| Duration::from_secs_f64(ctx.concurrency as f64 / r));
    // Stagger the connections' schedules over one interval.
    let mut next = ctx.start
        + interval
            .map(|i| i.mul_f64(idx as f64 / ctx.concurrency as f64))
            .unwrap_or_default();
    let mut k = idx;
    loop {
        let intended = match interval {
            Some(i) => {
                if next >= ctx.end {
                    break;
                }
                let t = next;
                next += i;
                if Instant::now() < t {
                    // On schedule: wait for the slot, and count from when the request is
                    // actually sent (tokio's timer wakes up to a millisecond late; that is the
                    // client's delay, not the server's).
                    sleep_until(t).await;
                    Instant::now()
                } else {
                    // Behind schedule because the server held the previous request: count from
                    // the slot, so the stall shows in the latency (no coordinated omission).
                    t
                }
            }
            None => {
                let t = Instant::now();
                if t >= ctx.end {
                    break;
                }
                t
            }
        };
        let (raw, head) = ctx.requests.pick(k);
        k += 1;
        let limit = (intended + ctx.timeout).min(ctx.hard);
        let result = timeout_at(limit, exchange(&ctx, &mut conn, raw, head, &mut st)).await;
        let done = Instant::now();
        let in_window = intended >= ctx.warm_end && done <= ctx.end;
        if done > ctx.end && intended >= ctx.warm_end {
            st.late += 1;
        }
        match result {
            Ok(Ok(meta)) => {
                if in_window {
                    st.responses += 1;
                    let _ = st.latency.record(micros(done - intended));
                    *st.statuses.entry(meta.status).or_default() += 1;
                    if ctx.expect_any || ctx.expect.contains(&meta.status) {
                        st.ok += 1;
                    } else {
                        st.error("status");
                    }
                }
                if !meta.keep_alive || ctx.mode == Mode::NewConnection {
                    conn = None;
                }
            }
            Ok(Err(kind)) => {
                conn = None;
                if in_window {
                    st.error(kind);
                }
                if kind == "connect" && interval.is_none() {
                    // A refused connect returns at once: do not spin.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Err(_) => {
                conn = None;
                if done >= ctx.hard {
                    st.abandoned += 1;
                    break;
                }
                if in_window {
                    st.error("timeout");
                }
            }
        }
    }
    st
}

/// Hold connections that send only the start of a request; count how the server sheds them.
async fn slow_worker(idx: usize, ctx: Arc<Ctx>) -> Stats {
    let mut st = Stats::new(&ctx.histogram);
    let mut k = idx;
    while Instant::now() < ctx.end {
        let started = Instant::now();
        let (raw, _) = ctx.requests.pick(k);
        k += 1;
        let part = &raw[..ctx.slow_bytes.min(raw.len())];
        let mut io_stats = Stats::new(&ctx.histogram);
        let held = timeout_at(ctx.end, async {
            let mut io = ctx.connector.connect(&mut io_stats).await?;
            io.write_all(part).await.map_err(|_| "write")?;
            io.flush().await.map_err(|_| "write")?;
            let mut sink = [0u8; 2048];
            loop {
                match io.read(&mut sink).await {
                    Ok(0) | Err(_) => return Ok::<(), &'static str>(()),
                    Ok(_) => {}
                }
            }
        })
        .await;
        st.merge(io_stats);
        match held {
            Ok(Ok(())) => {
                // How long the server let the connection hold (warm-up included: slow clients
                // are shed only after the server's header timeout).
                st.slow_closed_by_server += 1;
                st.responses += 1;
                let _ = st.latency.record(micros(started.elapsed()));
            }
            Ok(Err(kind)) => {
                st.error(kind);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                st.slow_held_at_end += 1;
                break;
            }
        }
    }
    st
}

fn read_file(path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|e| SetupError::File(path.to_owned(), e))
}

fn request_set(args: &Args, host: &str) -> Result<RequestSet, SetupError> {
    let mut items = Vec::new();
    let mut schedule = Vec::new();
    for spec in &args.requests {
        let (path, weight) = match spec.rsplit_once(':') {
            Some((p, w)) if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) => {
                let w: usize = w
                    .parse()
                    .map_err(|_| SetupError::Usage(format!("bad weight in {spec}")))?;
                (p, w)
            }
            _ => (spec.as_str(), 1),
        };
        if weight == 0 || weight > 1000 {
            return Err(SetupError::Usage(format!(
                "weight must be 1..=1000 in {spec}"
            )));
        }
        let raw = read_file(Path::new(path))?;
        let head = raw.starts_with(b"HEAD ");
        schedule.extend(std::iter::repeat_n(items.len(), weight));
        items.push((raw, head));
    }
    if items.is_empty() {
        let path = args.path.as_deref().ok_or_else(|| {
            SetupError::Usage("give --request FILE or --path (with --method, --header)".into())
        })?;
        let body = match &args.body_file {
            Some(p) => read_file(p)?,
            None => Vec::new(),
        };
        let mut head = format!("{} {path} HTTP/1.1\r\n", args.method);
        if !args
            .headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("host:"))
        {
            head.push_str(&format!("Host: {host}\r\n"));
        }
        for h in &args.headers {
            head.push_str(h.trim());
            head.push_str("\r\n");
        }
        if !body.is_empty() || matches!(args.method.as_str(), "PUT" | "POST" | "PATCH") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(&body);
        items.push((raw, args.method == "HEAD"));
        schedule.push(0);
    }
    // Each worker starts at a different offset in the schedule, so the weighted mix holds
    // across connections at any instant.
    Ok(RequestSet { items, schedule })
}

fn tls_connector(
    args: &Args,
    host: &str,
) -> Result<(TlsConnector, ServerName<'static>), SetupError> {
    let ca = args
        .ca
        .as_ref()
        .ok_or_else(|| SetupError::Usage("--ca is required for TLS (or give --plain)".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    let pem = read_file(ca)?;
    for cert in rustls_pemfile::certs(&mut BufReader::new(pem.as_slice())) {
        roots.add(cert.map_err(|e| SetupError::File(ca.clone(), e))?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let mut config = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let pem = read_file(cert)?;
            let chain: Vec<CertificateDer<'static>> =
                rustls_pemfile::certs(&mut BufReader::new(pem.as_slice()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| SetupError::File(cert.clone(), e))?;
            let pem = read_file(key)?;
            let key_der: PrivateKeyDer<'static> =
                rustls_pemfile::private_key(&mut BufReader::new(pem.as_slice()))
                    .map_err(|e| SetupError::File(key.clone(), e))?
                    .ok_or_else(|| SetupError::Usage(format!("no key in {}", key.display())))?;
            builder.with_client_auth_cert(chain, key_der)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(SetupError::Usage("--cert and --key go together".into())),
    };
    config.resumption = if args.resume {
        Resumption::default()
    } else {
        Resumption::disabled()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = args.server_name.clone().unwrap_or_else(|| host.to_owned());
    let name = ServerName::try_from(name.clone())
        .map_err(|e| SetupError::Usage(format!("server name {name}: {e}")))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

fn cpu_sample(pids: &[u32]) -> Result<u64, String> {
    pids.iter().try_fold(0u64, |sum, pid| {
        procstat::cpu_ticks(*pid)
            .map(|t| sum + t)
            .map_err(|e| e.to_string())
    })
}

fn percentile_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": h.value_at_quantile(0.50),
        "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "max": h.max(),
        "mean": (h.mean() * 10.0).round() / 10.0,
    })
}

fn run(args: Args) -> Result<(), SetupError> {
    let (host, _) = args
        .target
        .rsplit_once(':')
        .ok_or_else(|| SetupError::Target(args.target.clone(), "expected host:port".into()))?;
    let host = host.trim_matches(|c| c == '[' || c == ']').to_owned();
    let addr = args
        .target
        .to_socket_addrs()
        .map_err(|e| SetupError::Target(args.target.clone(), e.to_string()))?
        .next()
        .ok_or_else(|| SetupError::Target(args.target.clone(), "no address".into()))?;
    if args.concurrency == 0 || args.duration <= 0.0 || args.warmup < 0.0 {
        return Err(SetupError::Usage(
            "concurrency and duration must be positive".into(),
        ));
    }
    if args.rate.is_some_and(|r| r <= 0.0) {
        return Err(SetupError::Usage("--rate must be positive".into()));
    }
    let expect_any = args.expect_status.iter().any(|s| s == "any");
    let expect = args
        .expect_status
        .iter()
        .filter(|s| *s != "any")
        .map(|s| {
            s.parse::<u16>()
                .map_err(|_| SetupError::Usage(format!("bad --expect-status {s}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let requests = request_set(&args, &host)?;
    let tls = if args.plain {
        None
    } else {
        Some(tls_connector(&args, &host)?)
    };
    let histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .map_err(|e| SetupError::Histogram(e.to_string()))?;
    let clk_tck = procstat::clock_ticks_per_second();

    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(SetupError::Runtime)?;

    let report = rt.block_on(async {
        let start = Instant::now();
        let warm_end = start + Duration::from_secs_f64(args.warmup);
        let end = warm_end + Duration::from_secs_f64(args.duration);
        let hard = end + Duration::from_secs_f64(args.grace);
        let ctx = Arc::new(Ctx {
            connector: Connector { addr, tls },
            requests,
            mode: args.mode,
            concurrency: args.concurrency,
            rate: args.rate,
            start,
            warm_end,
            end,
            hard,
            timeout: Duration::from_secs_f64(args.timeout),
            expect_any,
            expect,
            slow_bytes: args.slow_bytes,
            histogram: histogram.clone(),
        });

        let pids = args.pids.clone();
        let sampler = tokio::spawn(async move {
            sleep_until(warm_end).await;
            let a = (cpu_sample(&pids), procstat::own_cpu_ticks().ok());
            let machine_a = procstat::machine_busy_ticks().ok();
            sleep_until(end).await;
            let b = (cpu_sample(&pids), procstat::own_cpu_ticks().ok());
            let machine_b = procstat::machine_busy_ticks().ok();
            let machine = match (machine_a, machine_b) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
            (a, b, machine)
        });

        let mut set = JoinSet::new();
        for i in 0..args.concurrency {
            let ctx = ctx.clone();
            if args.mode == Mode::Slow {
                set.spawn(slow_worker(i, ctx));
            } else {
                set.spawn(worker(i, ctx));
            }
        }
        let mut total = Stats::new(&histogram);
        let mut stuck = 0usize;
        let collect_until = hard + Duration::from_secs(2);
        let mut finished = 0usize;
        while finished < args.concurrency {
            match timeout_at(collect_until, set.join_next()).await {
                Ok(Some(Ok(st))) => {
                    total.merge(st);
                    finished += 1;
                }
                Ok(Some(Err(_))) => {
                    total.error("worker_panic");
                    finished += 1;
                }
                Ok(None) => break,
                Err(_) => {
                    stuck = args.concurrency - finished;
                    break;
                }
            }
        }
        set.abort_all();
        let cpu = match timeout_at(collect_until, sampler).await {
            Ok(Ok(v)) => Some(v),
            _ => None,
        };
        (total, stuck, cpu)
    });
    // Workers still running past the deadline are abandoned, not waited for.
    rt.shutdown_background();
    let (total, stuck, cpu) = report;

    let duration = args.duration;
    let rps = total.responses as f64 / duration;
    let ok_rps = total.ok as f64 / duration;
    let error_total: u64 = total.errors.values().sum();
    let per_request = |ticks: u64| {
        if total.responses == 0 {
            None
        } else {
            let us = ticks as f64 * 1e6 / clk_tck as f64 / total.responses as f64;
            Some((us * 10.0).round() / 10.0)
        }
    };
    let machine_cores_busy = cpu
        .as_ref()
        .and_then(|(_, _, m)| *m)
        .map(|t| ((t as f64 / clk_tck as f64 / duration) * 1000.0).round() / 1000.0);
    let (gateway_cpu, own_cpu) = match &cpu {
        Some(((a, own_a), (b, own_b), _)) => {
            let gw = match (a, b) {
                (Ok(a), Ok(b)) if !args.pids.is_empty() => {
                    let ticks = b.saturating_sub(*a);
                    json!({
                        "pids": args.pids,
                        "ticks": ticks,
                        "clk_tck": clk_tck,
                        "cpu_us_per_req": per_request(ticks),
                        "cores_busy": ((ticks as f64 / clk_tck as f64 / duration) * 1000.0).round() / 1000.0,
                    })
                }
                (Err(e), _) | (_, Err(e)) => json!({ "error": e }),
                _ => Value::Null,
            };
            let own = match (own_a, own_b) {
                (Some(a), Some(b)) => {
                    let ticks = b.saturating_sub(*a);
                    json!({
                        "cpu_us_per_req": per_request(ticks),
                        "cores_busy": ((ticks as f64 / clk_tck as f64 / duration) * 1000.0).round() / 1000.0,
                    })
                }
                _ => Value::Null,
            };
            (gw, own)
        }
        None => (Value::Null, Value::Null),
    };
    let mode = match args.mode {
        Mode::Keepalive => "keepalive",
        Mode::NewConnection => "new-connection",
        Mode::Slow => "slow",
    };
    let out = json!({
        "label": args.label,
        "target": args.target,
        "tls": !args.plain,
        "mode": mode,
        "resume": args.resume,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "warmup_s": args.warmup,
        "duration_s": duration,
        "requests": total.responses,
        "ok": total.ok,
        "error_total": error_total,
        "errors": total.errors,
        "statuses": total.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "rps": (rps * 10.0).round() / 10.0,
        "ok_rps": (ok_rps * 10.0).round() / 10.0,
        "latency_us": percentile_json(&total.latency),
        "cpu": gateway_cpu,
        "loadgen_cpu": own_cpu,
        "machine_cores_busy": machine_cores_busy,
        "connections": total.connections,
        "handshakes": { "full": total.full_handshakes, "resumed": total.resumed_handshakes },
        "tls_info": total.tls_info,
        "late": total.late,
        "abandoned": total.abandoned,
        "stuck_workers": stuck,
        "slow": if args.mode == Mode::Slow {
            json!({ "closed_by_server": total.slow_closed_by_server, "held_at_end": total.slow_held_at_end })
        } else { Value::Null },
        "first_error": total.first_error,
    });
    println!("{out}");
    let lat = &total.latency;
    let cpu_text = out["cpu"]["cpu_us_per_req"]
        .as_f64()
        .map(|v| format!(", server CPU {v:.1} µs/req"))
        .unwrap_or_default();
    let errors_text = if error_total == 0 {
        "no errors".to_owned()
    } else {
        format!("{error_total} errors {:?}", total.errors)
    };
    if args.mode == Mode::Slow {
        println!(
            "{}: {} slow connections shed by the server (held p50 {} µs, max {} µs), {} still held at the end, {errors_text}",
            if args.label.is_empty() { "slow" } else { &args.label },
            total.slow_closed_by_server,
            lat.value_at_quantile(0.5),
            lat.max(),
            total.slow_held_at_end
        );
    } else {
        println!(
            "{}: {} requests in {duration} s = {rps:.1} req/s ({} ok), {errors_text}; latency µs p50 {} p90 {} p99 {} p99.9 {} max {}{cpu_text}",
            if args.label.is_empty() { mode } else { &args.label },
            total.responses,
            total.ok,
            lat.value_at_quantile(0.5),
            lat.value_at_quantile(0.9),
            lat.value_at_quantile(0.99),
            lat.value_at_quantile(0.999),
            lat.max(),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let code = match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dcrgate-loadgen: {e}");
            2
        }
    };
    // Anything still running (abandoned connections) ends with the process, on time.
    std::process::exit(code)
}
