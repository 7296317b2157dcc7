//! dcrgate-bench-report: turns one run of `benches/run.sh` (the load generator's JSON lines, the
//! key host's fetch counts, the memory readings and machine facts) into the markdown tables of
//! benches/README.md, with each performance target marked MET or MISSED.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use dcrgate_benches::chart::{self, Bar, Group, Panel};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(
    name = "dcrgate-bench-report",
    about = "Markdown report of one benches/run.sh run"
)]
struct Args {
    /// The load generator's JSON lines (one per run, each with a label).
    #[arg(long)]
    results: PathBuf,
    /// `key=value` facts about the machine and the run; repeatable.
    #[arg(long = "fact")]
    facts: Vec<String>,
    /// Folder holding the key host's fetch counts before and after each flood
    /// (`hits-before-flood[-pinned].json`, `hits-after-flood[-pinned].json`).
    #[arg(long)]
    hits_dir: Option<PathBuf>,
    /// Memory readings of the identity run (JSON written by run.sh).
    #[arg(long)]
    memory: Option<PathBuf>,
    /// The identity run's result (identities.json).
    #[arg(long)]
    identities: Option<PathBuf>,
    /// The key set refetch cooldown the gateway ran with, seconds.
    #[arg(long, default_value_t = 30.0)]
    cooldown: f64,
    /// Also write the saturation results as an SVG chart here (req/s, CPU per request and
    /// latency percentiles per server and mode).
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
enum ReportError {
    #[error("{0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: line {1}: {2}")]
    Json(PathBuf, usize, serde_json::Error),
}

fn read_json(path: &Path) -> Result<Value, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Read(path.into(), e))?;
    serde_json::from_str(&text).map_err(|e| ReportError::Json(path.into(), 1, e))
}

/// The runs of one `run.sh`, by label. A label measured in several rounds (`BENCH_ROUNDS`) is
/// represented by its median round by CPU per request (by req/s where no CPU was read), so
/// each row of the report is one real run; `rounds` keeps every round's figures for the spread.
struct Runs {
    median: BTreeMap<String, Value>,
    rounds: BTreeMap<String, Vec<Value>>,
}

/// The figure a round is ranked by: CPU per request, else req/s.
fn rank(v: &Value) -> f64 {
    v.pointer("/cpu/cpu_us_per_req")
        .or_else(|| v.pointer("/rps"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

impl Runs {
    /// Read the load generator's JSON lines.
    fn load(path: &Path) -> Result<Self, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|e| ReportError::Read(path.into(), e))?;
        let mut rounds: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(line).map_err(|e| ReportError::Json(path.into(), i + 1, e))?;
            let label = v["label"].as_str().unwrap_or("").to_owned();
            rounds.entry(label).or_default().push(v);
        }
        let median = rounds
            .iter()
            .filter_map(|(label, all)| {
                let mut sorted: Vec<&Value> = all.iter().collect();
                sorted.sort_by(|a, b| rank(a).total_cmp(&rank(b)));
                let mid = sorted.get((sorted.len() - 1) / 2)?;
                Some((label.clone(), (*mid).clone()))
            })
            .collect();
        Ok(Self { median, rounds })
    }
    fn get(&self, label: &str) -> Option<&Value> {
        self.median.get(label)
    }
    /// `(rounds, min, max)` of `pointer` over the rounds of `label`.
    fn spread(&self, label: &str, pointer: &str) -> Option<(usize, f64, f64)> {
        let all = self.rounds.get(label)?;
        let values: Vec<f64> = all
            .iter()
            .filter_map(|v| v.pointer(pointer)?.as_f64())
            .collect();
        let min = values.iter().copied().reduce(f64::min)?;
        let max = values.iter().copied().reduce(f64::max)?;
        Some((all.len(), min, max))
    }
    fn num(&self, label: &str, pointer: &str) -> Option<f64> {
        self.get(label)?.pointer(pointer)?.as_f64()
    }
    fn rps(&self, label: &str) -> Option<f64> {
        self.num(label, "/rps")
    }
    fn p99(&self, label: &str) -> Option<f64> {
        self.num(label, "/latency_us/p99")
    }
    fn cpu(&self, label: &str) -> Option<f64> {
        self.num(label, "/cpu/cpu_us_per_req")
    }
}

fn f0(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "–".into())
}

fn f1(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
}

fn f2(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn errors_text(run: &Value) -> String {
    let total = run["error_total"].as_u64().unwrap_or(0);
    if total == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = run["errors"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
        .unwrap_or_default();
    format!("{total} ({})", kinds.join(", "))
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "**MET**",
        Some(false) => "**MISSED**",
        None => "not measured",
    }
}

fn report(args: &Args) -> Result<String, ReportError> {
    let runs = Runs::load(&args.results)?;
    let facts: BTreeMap<&str, &str> = args
        .facts
        .iter()
        .filter_map(|f| f.split_once('='))
        .collect();
    let fact = |k: &str| facts.get(k).copied().unwrap_or("?");
    let mut o = String::new();

    let _ = writeln!(o, "### Machine and versions\n");
    let _ = writeln!(
        o,
        "- CPU: {} (`nproc` = {}), {} GiB memory",
        fact("cpu_model"),
        fact("nproc"),
        fact("mem_gib")
    );
    let _ = writeln!(
        o,
        "- load average (1 min) before the measurements: {} (waited until < {}); after the last one: {}",
        fact("load_before"),
        fact("quiet_load"),
        fact("load_after")
    );
    let _ = writeln!(o, "- {}; {}", fact("nginx"), fact("openssl"));
    let _ = writeln!(o, "- {}; dcrgate {}", fact("rustc"), fact("commit"));
    let _ = writeln!(
        o,
        "- load: `dcrgate-loadgen`, {} s warm-up + {} s measured per run, {} connections, \
         TLS 1.3 (rustls/ring client, resumption off), no CPU pinning\n",
        fact("warmup"),
        fact("duration"),
        fact("concurrency")
    );

    let first_tls = runs
        .median
        .values()
        .find_map(|v| v["tls_info"].as_object().cloned());
    if let Some(t) = first_tls {
        let _ = writeln!(
            o,
            "Negotiated: {} {} {} (both servers).\n",
            t.get("version").and_then(Value::as_str).unwrap_or("?"),
            t.get("cipher_suite").and_then(Value::as_str).unwrap_or("?"),
            t.get("key_exchange").and_then(Value::as_str).unwrap_or("?"),
        );
    }

    let _ = writeln!(o, "### Saturation (closed loop)\n");
    let _ = writeln!(
        o,
        "| server | mode | req/s | p50 µs | p99 µs | server CPU µs/req | server cores busy | loadgen CPU µs/req | machine cores busy | errors |"
    );
    let _ = writeln!(o, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let servers = [
        ("stub", "upstream stub alone (plain HTTP)"),
        ("nginx-w1", "nginx, worker_processes 1"),
        ("bare-t1", "bare pingora proxy, threads 1"),
        ("dcrgate-t1", "dcrgate, server.threads 1"),
        ("nginx-w2", "nginx, worker_processes 2"),
        ("bare-t2", "bare pingora proxy, threads 2"),
        ("dcrgate-t2", "dcrgate, server.threads 2"),
    ];
    // Rows of the spread table, for the runs measured in more than one round.
    let mut spreads = Vec::new();
    for (key, name) in servers {
        for mode in ["keepalive", "new-connection"] {
            let label = format!("{key}/{mode}");
            let Some(run) = runs.get(&label) else {
                continue;
            };
            let cpu = runs.spread(&label, "/cpu/cpu_us_per_req");
            let rps = runs.spread(&label, "/rps");
            if let (Some((n @ 2.., c0, c1)), Some((_, r0, r1))) = (cpu, rps) {
                spreads.push(format!(
                    "| {label} | {n} | {c0:.1}–{c1:.1} | {r0:.0}–{r1:.0} |"
                ));
            }
            let _ = writeln!(
                o,
                "| {name} | {mode} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f0(runs.rps(&label)),
                f0(runs.num(&label, "/latency_us/p50")),
                f0(runs.p99(&label)),
                f1(runs.cpu(&label)),
                f2(runs.num(&label, "/cpu/cores_busy")),
                f1(runs.num(&label, "/loadgen_cpu/cpu_us_per_req")),
                f2(runs.num(&label, "/machine_cores_busy")),
                errors_text(run)
            );
        }
    }
    if !spreads.is_empty() {
        let _ = writeln!(
            o,
            "\nEach row above is the median of its rounds by CPU per request (the servers \
             alternate within a round). The spread over the rounds:\n\n\
             | run | rounds | server CPU µs/req | req/s |\n|---|---:|---:|---:|\n{}",
            spreads.join("\n")
        );
    }

    let _ = writeln!(o, "\n### dcrgate / nginx\n");
    let _ = writeln!(
        o,
        "| workers | mode | req/s ratio | CPU per request ratio |"
    );
    let _ = writeln!(o, "|---|---|---:|---:|");
    for (w, d, n) in [
        ("1", "dcrgate-t1", "nginx-w1"),
        ("2", "dcrgate-t2", "nginx-w2"),
    ] {
        for mode in ["keepalive", "new-connection"] {
            let (dl, nl) = (format!("{d}/{mode}"), format!("{n}/{mode}"));
            if runs.get(&dl).is_none() || runs.get(&nl).is_none() {
                continue;
            }
            let _ = writeln!(
                o,
                "| {w} | {mode} | {} | {} |",
                f2(ratio(runs.rps(&dl), runs.rps(&nl))),
                f2(ratio(runs.cpu(&dl), runs.cpu(&nl)))
            );
        }
    }

    let _ = writeln!(
        o,
        "\n### dcrgate above a bare pingora proxy (same TLS settings, no policy)\n"
    );
    let _ = writeln!(
        o,
        "| workers | mode | dcrgate CPU µs/req | bare CPU µs/req | added by dcrgate, µs/req | req/s ratio |"
    );
    let _ = writeln!(o, "|---|---|---:|---:|---:|---:|");
    for (w, d, b) in [
        ("1", "dcrgate-t1", "bare-t1"),
        ("2", "dcrgate-t2", "bare-t2"),
    ] {
        for mode in ["keepalive", "new-connection"] {
            let (dl, bl) = (format!("{d}/{mode}"), format!("{b}/{mode}"));
            if runs.get(&dl).is_none() || runs.get(&bl).is_none() {
                continue;
            }
            let added = runs.cpu(&dl).zip(runs.cpu(&bl)).map(|(a, b)| a - b);
            let _ = writeln!(
                o,
                "| {w} | {mode} | {} | {} | {} | {} |",
                f1(runs.cpu(&dl)),
                f1(runs.cpu(&bl)),
                f1(added),
                f2(ratio(runs.rps(&dl), runs.rps(&bl)))
            );
        }
    }

    let mut half = BTreeMap::new();
    let mut flood = BTreeMap::new();
    for (prefix, title) in [
        ("", "no CPU pinning"),
        (
            "-pinned",
            "pinned: the proxy on CPU 1, load generator and stub on CPU 0",
        ),
        (
            "-no-close",
            "diagnostic, no pinning: the hostile mix without the oversized requests, whose 413 closes the connection",
        ),
    ] {
        if let Some(added) = half_section(&mut o, &runs, prefix, title) {
            half.insert(prefix, added);
        }
        if let Some(ok) = flood_section(&mut o, &runs, args, prefix, title, fact("slow_bytes"))? {
            flood.insert(prefix, ok);
        }
    }

    // Memory.
    let mut memory_ok = None;
    let mut memory_text = "–".to_owned();
    if let Some(m) = &args.memory {
        let m = read_json(m)?;
        let ids = match &args.identities {
            Some(p) => read_json(p)?,
            None => Value::Null,
        };
        let rss = m["rss_kib"].as_f64();
        // The target is memory with every key set cached: a re-sent update must not fetch.
        let cached = ids["recheck"]["key_host_fetches"].as_u64() == Some(0);
        let _ = writeln!(
            o,
            "\n### Memory with {} distinct identities (dcrgate, threads 1)\n",
            ids["identities"]
        );
        let _ = writeln!(o, "| reading | MiB |");
        let _ = writeln!(o, "|---|---:|");
        for (name, key) in [
            ("VmRSS idle, after start", "rss_idle_kib"),
            ("VmRSS after one update per identity", "rss_kib"),
            ("VmHWM (peak resident)", "hwm_kib"),
        ] {
            let _ = writeln!(
                o,
                "| {name} | {} |",
                f1(m[key].as_f64().map(|k| k / 1024.0))
            );
        }
        let _ = writeln!(
            o,
            "\nUpdates answered 200: {} of {} ({} s); errors: {}. Key host: {}. Re-sent from every 10th identity: {} of {} answered 200 with {} new key set fetches ({}).",
            ids["ok"],
            ids["identities"],
            ids["seconds"],
            ids["errors"],
            ids["key_host"]["identity_paths"],
            ids["recheck"]["ok"],
            ids["recheck"]["sent"],
            ids["recheck"]["key_host_fetches"],
            if cached {
                "served from the cache"
            } else {
                "NOT all served from the cache"
            }
        );
        let all_ok = ids["ok"].as_u64().is_some() && ids["ok"] == ids["identities"];
        memory_ok = rss.map(|r| r <= 64.0 * 1024.0 && all_ok && cached);
        memory_text = format!(
            "{} MiB VmRSS ({} MiB peak)",
            f1(rss.map(|k| k / 1024.0)),
            f1(m["hwm_kib"].as_f64().map(|k| k / 1024.0))
        );
    }

    // Targets.
    let nc = ratio(
        runs.rps("dcrgate-t1/new-connection"),
        runs.rps("nginx-w1/new-connection"),
    );
    let ka = ratio(
        runs.rps("dcrgate-t1/keepalive"),
        runs.rps("nginx-w1/keepalive"),
    );
    let ka_cpu = runs.cpu("dcrgate-t1/keepalive");
    let _ = writeln!(o, "\n### Targets\n");
    let _ = writeln!(o, "| target | measured | result |");
    let _ = writeln!(o, "|---|---|---|");
    let _ = writeln!(
        o,
        "| new connection per request: dcrgate ≥ 1.8× nginx req/s (1 worker each) | {}× ({} vs {} req/s; CPU/request {} vs {} µs) | {} |",
        f2(nc),
        f0(runs.rps("dcrgate-t1/new-connection")),
        f0(runs.rps("nginx-w1/new-connection")),
        f0(runs.cpu("dcrgate-t1/new-connection")),
        f0(runs.cpu("nginx-w1/new-connection")),
        verdict(nc.map(|r| r >= 1.8))
    );
    let _ = writeln!(
        o,
        "| keep-alive: ≥ 0.8× nginx req/s | {}× ({} vs {} req/s) | {} |",
        f2(ka),
        f0(runs.rps("dcrgate-t1/keepalive")),
        f0(runs.rps("nginx-w1/keepalive")),
        verdict(ka.map(|r| r >= 0.8))
    );
    let _ = writeln!(
        o,
        "| keep-alive: ≤ 90 µs gateway CPU per request | {} µs | {} |",
        f1(ka_cpu),
        verdict(ka_cpu.map(|c| c <= 90.0))
    );
    for (prefix, how) in [("", ""), ("-pinned", ", pinned")] {
        let Some((added, _)) = half.get(prefix) else {
            continue;
        };
        let _ = writeln!(
            o,
            "| gateway-added p99 ≤ 1 ms at half of saturation{how} | {} µs | {} |",
            f0(*added),
            verdict(added.map(|a| a <= 1000.0))
        );
    }
    let _ = writeln!(
        o,
        "| resident memory ≤ 64 MiB with 10k identities and key sets cached | {memory_text} | {} |",
        verdict(memory_ok)
    );
    // The goals of the performance issue, each a ratio within this one run.
    let ka_cpu_ratio = ratio(
        runs.cpu("dcrgate-t1/keepalive"),
        runs.cpu("nginx-w1/keepalive"),
    );
    let added = runs
        .cpu("dcrgate-t1/keepalive")
        .zip(runs.cpu("bare-t1/keepalive"))
        .map(|(a, b)| a - b);
    let _ = writeln!(
        o,
        "| keep-alive: CPU per request ≤ 1.6× nginx's | {}× ({} vs {} µs) | {} |",
        f2(ka_cpu_ratio),
        f1(runs.cpu("dcrgate-t1/keepalive")),
        f1(runs.cpu("nginx-w1/keepalive")),
        verdict(ka_cpu_ratio.map(|r| r <= 1.6))
    );
    let _ = writeln!(
        o,
        "| new connection per request: ≥ 2.0× nginx req/s | {}× | {} |",
        f2(nc),
        verdict(nc.map(|r| r >= 2.0))
    );
    let _ = writeln!(
        o,
        "| keep-alive: ≤ 45 µs CPU per request above the bare pingora proxy | {} µs | {} |",
        f1(added),
        verdict(added.map(|a| a <= 45.0))
    );
    for (prefix, how) in [
        ("", ""),
        ("-pinned", ", pinned"),
        ("-no-close", " (diagnostic: no connection-closing requests)"),
    ] {
        let Some(ok) = flood.get(prefix) else {
            continue;
        };
        let label = format!("flood{prefix}/compliant");
        let _ = writeln!(
            o,
            "| flood{how}: compliant all succeed, p99 ≤ 2× clean, ≤ 1 fetch per URL per cooldown | {} of {} ok, p99 ratio {}, fetches {} | {} |",
            runs.get(&label).map(|r| r["ok"].to_string()).unwrap_or_else(|| "–".into()),
            runs.get(&label).map(|r| r["requests"].to_string()).unwrap_or_else(|| "–".into()),
            f2(ratio(runs.p99(&label), runs.p99(&format!("flood{prefix}/clean")))),
            ok.1,
            verdict(Some(ok.0))
        );
    }
    Ok(o)
}

/// The half-of-saturation table for runs labelled `half{prefix}/...`; returns dcrgate's
/// gateway-added p99 (and nginx's).
fn half_section(
    o: &mut String,
    runs: &Runs,
    prefix: &str,
    title: &str,
) -> Option<(Option<f64>, Option<f64>)> {
    runs.get(&format!("half{prefix}/dcrgate"))?;
    let _ = writeln!(
        o,
        "\n### Half of saturation (open loop, keep-alive; {title})\n"
    );
    let _ = writeln!(
        o,
        "| proxy | offered req/s | stub alone p99 µs | proxy p50 µs | proxy p99 µs | gateway-added p99 µs | proxy CPU µs/req | proxy errors |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---|");
    let mut added_by = BTreeMap::new();
    for name in ["nginx", "dcrgate"] {
        let (proxy, stub) = (
            format!("half{prefix}/{name}"),
            format!("half{prefix}/stub@{name}"),
        );
        let Some(run) = runs.get(&proxy) else {
            continue;
        };
        let added = match (runs.p99(&proxy), runs.p99(&stub)) {
            (Some(p), Some(s)) => Some(p - s),
            _ => None,
        };
        added_by.insert(name, added);
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            f0(runs.num(&proxy, "/rate")),
            f0(runs.p99(&stub)),
            f0(runs.num(&proxy, "/latency_us/p50")),
            f0(runs.p99(&proxy)),
            f0(added),
            f1(runs.cpu(&proxy)),
            errors_text(run)
        );
    }
    Some((
        added_by.get("dcrgate").copied().flatten(),
        added_by.get("nginx").copied().flatten(),
    ))
}

/// The flood table for runs labelled `flood{prefix}/...`; returns whether the flood target
/// was met and the fetch counts.
fn flood_section(
    o: &mut String,
    runs: &Runs,
    args: &Args,
    prefix: &str,
    title: &str,
    slow_bytes: &str,
) -> Result<Option<(bool, String)>, ReportError> {
    let (clean_l, flood_l) = (
        format!("flood{prefix}/clean"),
        format!("flood{prefix}/compliant"),
    );
    let (Some(clean), Some(flood)) = (runs.get(&clean_l), runs.get(&flood_l)) else {
        return Ok(None);
    };
    let _ = writeln!(
        o,
        "\n### Flood: compliant updates 1 : 10 hostile requests, plus slow clients (dcrgate, threads 1; {title})\n"
    );
    let _ = writeln!(
        o,
        "| run | offered req/s | requests | 200 | errors | p50 µs | p99 µs | max µs |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---|---:|---:|---:|");
    for (name, label) in [
        ("compliant alone (clean)", clean_l.clone()),
        ("compliant during the flood", flood_l.clone()),
        (
            "hostile (any answer accepted)",
            format!("flood{prefix}/hostile"),
        ),
    ] {
        let Some(run) = runs.get(&label) else {
            continue;
        };
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            f0(runs.num(&label, "/rate")),
            run["requests"],
            run["statuses"]["200"].as_u64().unwrap_or(0),
            errors_text(run),
            f0(runs.num(&label, "/latency_us/p50")),
            f0(runs.p99(&label)),
            f0(runs.num(&label, "/latency_us/max")),
        );
    }
    if let Some(h) = runs.get(&format!("flood{prefix}/hostile")) {
        let statuses: Vec<String> = h["statuses"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k}: {v}")).collect())
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "\nHostile answers by status: {}; connections opened (each a full handshake): {}. Gateway CPU during the flood: {} cores.",
            statuses.join(", "),
            h["connections"],
            f2(runs.num(&flood_l, "/cpu/cores_busy"))
        );
    }
    let slow_l = format!("flood{prefix}/slow");
    if let Some(s) = runs.get(&slow_l) {
        let _ = writeln!(
            o,
            "Slow clients ({} connections sending {slow_bytes} bytes of a request head, then nothing): {} shed by the gateway after {} ms (p50 of the hold time), {} open at the end.",
            s["concurrency"],
            s["slow"]["closed_by_server"],
            f0(runs.num(&slow_l, "/latency_us/p50").map(|v| v / 1000.0)),
            s["slow"]["held_at_end"]
        );
    }
    let all_ok = flood["requests"].as_u64().unwrap_or(0) > 0
        && flood["error_total"].as_u64() == Some(0)
        && flood["abandoned"].as_u64() == Some(0);
    let p99_ratio = ratio(runs.p99(&flood_l), runs.p99(&clean_l));
    let window = clean["warmup_s"].as_f64().unwrap_or(0.0)
        + clean["duration_s"].as_f64().unwrap_or(0.0)
        + 1.0;
    let allowed = (window / args.cooldown).ceil().max(1.0) as u64;
    let mut fetch_ok = false;
    let mut fetches = String::from("–");
    if let Some(dir) = &args.hits_dir {
        let b = read_json(&dir.join(format!("hits-before-flood{prefix}.json")))?;
        let a = read_json(&dir.join(format!("hits-after-flood{prefix}.json")))?;
        let mut lines = Vec::new();
        let mut counts = Vec::new();
        fetch_ok = true;
        if let Some(paths) = a["paths"].as_object() {
            for (path, after) in paths {
                let before = b["paths"][path].as_u64().unwrap_or(0);
                let delta = after.as_u64().unwrap_or(0).saturating_sub(before);
                fetch_ok &= delta <= allowed;
                lines.push(format!("`{path}`: {delta} fetch(es) during the flood"));
                counts.push(delta.to_string());
            }
        }
        fetches = counts.join(", ");
        let total_delta = a["total"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(b["total"].as_u64().unwrap_or(0));
        let _ = writeln!(
            o,
            "Key host: {} (all paths: {total_delta}); allowed: ≤ 1 per URL per {:.0} s cooldown = ≤ {allowed} in the {:.0} s window.",
            lines.join(", "),
            args.cooldown,
            window
        );
    }
    let _ = writeln!(
        o,
        "Compliant p99 during the flood / clean: {}.",
        f2(p99_ratio)
    );
    Ok(Some((
        all_ok && p99_ratio.is_some_and(|r| r <= 2.0) && fetch_ok,
        fetches,
    )))
}

/// The saturation runs as chart panels: req/s and CPU per request by mode, and the keep-alive
/// latency percentiles, for each server that ran.
fn chart_panels(runs: &Runs) -> Vec<Panel> {
    let servers = [
        ("stub", "stub alone"),
        ("nginx-w1", "nginx (1 worker)"),
        ("bare-t1", "bare pingora (1)"),
        ("dcrgate-t1", "dcrgate (1)"),
        ("nginx-w2", "nginx (2 workers)"),
        ("bare-t2", "bare pingora (2)"),
        ("dcrgate-t2", "dcrgate (2)"),
    ];
    let ran: Vec<(&str, &str)> = servers
        .into_iter()
        .filter(|(k, _)| runs.get(&format!("{k}/keepalive")).is_some())
        .collect();
    let by_mode = |f: &dyn Fn(&str) -> Option<f64>| -> Vec<Group> {
        ran.iter()
            .map(|(k, name)| Group {
                name: (*name).to_owned(),
                bars: ["keepalive", "new-connection"]
                    .iter()
                    .map(|m| Bar {
                        label: (*m).to_owned(),
                        value: f(&format!("{k}/{m}")),
                    })
                    .collect(),
            })
            .collect()
    };
    let percentiles = ran
        .iter()
        .map(|(k, name)| Group {
            name: (*name).to_owned(),
            bars: ["p50", "p90", "p99"]
                .iter()
                .map(|p| Bar {
                    label: (*p).to_owned(),
                    value: runs.num(&format!("{k}/keepalive"), &format!("/latency_us/{p}")),
                })
                .collect(),
        })
        .collect();
    vec![
        Panel {
            title: "requests per second (saturated, closed loop)".into(),
            groups: by_mode(&|l| runs.rps(l)),
        },
        Panel {
            title: "server CPU per request, µs".into(),
            groups: by_mode(&|l| runs.cpu(l)),
        },
        Panel {
            title: "keep-alive latency percentiles, µs".into(),
            groups: percentiles,
        },
    ]
}

fn write_svg(args: &Args, path: &Path) -> Result<(), ReportError> {
    let runs = Runs::load(&args.results)?;
    let svg = chart::svg(
        "dcrgate vs nginx vs a bare pingora proxy, mTLS on 127.0.0.1",
        &chart_panels(&runs),
    );
    std::fs::write(path, svg).map_err(|e| ReportError::Read(path.into(), e))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.svg {
        if let Err(e) = write_svg(&args, path) {
            eprintln!("dcrgate-bench-report: {e}");
            return ExitCode::from(2);
        }
    }
    match report(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dcrgate-bench-report: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_in_several_rounds_is_its_median_round_with_the_spread() {
        let path = std::env::temp_dir().join(format!("report-rounds-{}.jsonl", std::process::id()));
        let line = |cpu: f64, rps: f64| {
            format!(
                r#"{{"label":"dcrgate-t1/keepalive","rps":{rps},"cpu":{{"cpu_us_per_req":{cpu}}}}}"#
            )
        };
        let text = [
            line(150.0, 6000.0),
            line(110.0, 9000.0),
            line(120.0, 8000.0),
        ]
        .join("\n")
            + "\n"
            + r#"{"label":"stub/keepalive","rps":100000}"#;
        std::fs::write(&path, text).expect("results");
        let runs = Runs::load(&path).expect("load");
        std::fs::remove_file(&path).ok();
        // The middle round by CPU, whole: its req/s comes with it.
        assert_eq!(runs.cpu("dcrgate-t1/keepalive"), Some(120.0));
        assert_eq!(runs.rps("dcrgate-t1/keepalive"), Some(8000.0));
        assert_eq!(
            runs.spread("dcrgate-t1/keepalive", "/cpu/cpu_us_per_req"),
            Some((3, 110.0, 150.0))
        );
        // One round, no CPU reading: itself.
        assert_eq!(runs.rps("stub/keepalive"), Some(100000.0));
        assert_eq!(
            runs.spread("stub/keepalive", "/rps"),
            Some((1, 100000.0, 100000.0))
        );
    }
}
