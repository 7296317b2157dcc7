//! Process CPU time and memory from Linux `/proc`: utime + stime of a process (all its
//! threads) in clock ticks, the machine's busy ticks, the tick rate from `getconf CLK_TCK`, and
//! VmRSS / VmHWM.

use std::process::Command;

/// Why a `/proc` reading failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (no such process?).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file did not have the expected shape.
    #[error("unexpected contents in {0}")]
    Format(String),
}

/// utime + stime of process `pid` (every thread of it), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, ProcError> {
    let path = format!("/proc/{pid}/stat");
    let text = read(&path)?;
    parse_stat_ticks(&text).ok_or(ProcError::Format(path))
}

/// utime + stime of the calling process, in clock ticks.
pub fn own_cpu_ticks() -> Result<u64, ProcError> {
    let text = read("/proc/self/stat")?;
    parse_stat_ticks(&text).ok_or_else(|| ProcError::Format("/proc/self/stat".into()))
}

/// Busy time of the whole machine (all CPUs, every state but idle and iowait) from the `cpu`
/// line of `/proc/stat`, in clock ticks.
pub fn machine_busy_ticks() -> Result<u64, ProcError> {
    let text = read("/proc/stat")?;
    parse_machine_busy(&text).ok_or_else(|| ProcError::Format("/proc/stat".into()))
}

/// The busy ticks of the aggregate `cpu` line: user nice system idle iowait irq softirq steal.
pub fn parse_machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 8 {
        return None;
    }
    Some(v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
}

/// Fields 14 and 15 (utime, stime) of a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted after the
/// last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the `)`: field 3 (state) is the first; utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`); 100, the Linux value, if getconf is unavailable.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// Resident and peak resident memory of `pid` (VmRSS, VmHWM), in KiB.
pub fn memory_kib(pid: u32) -> Result<(u64, u64), ProcError> {
    let path = format!("/proc/{pid}/status");
    let text = read(&path)?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_ascii_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(rss), Some(hwm)) => Ok((rss, hwm)),
        _ => Err(ProcError::Format(path)),
    }
}

fn read(path: &str) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_command_name() {
        let line =
            "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1523 0 0 0 731 269 0 0 20 0 3 0 \
                    12345 1000 200 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Some(1000));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn machine_busy_skips_idle_and_iowait() {
        let stat = "cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 50 2 25 4500 20 1 1 0 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(161));
        assert_eq!(parse_machine_busy("cpu0 1 2\n"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(own_cpu_ticks().is_ok());
        let (rss, hwm) = memory_kib(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss);
        assert!(clock_ticks_per_second() > 0);
    }
}
