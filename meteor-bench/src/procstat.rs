//! Resource samples of a process from `/proc/<pid>/stat` and
//! `/proc/<pid>/status`: resident memory and CPU seconds, used for the
//! server under test (`--server-pid`) and for the generator's own processes.

use anyhow::{Context, bail};
use serde::Serialize;

/// `/proc` reports CPU time in USER_HZ ticks, which the kernel fixes at 100
/// per second for user space on every architecture Linux supports today.
const TICKS_PER_SECOND: f64 = 100.0;

/// One sample of a process.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Sample {
    /// Resident set size in bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// User + system CPU seconds used so far.
    pub cpu_s: f64,
}

/// Reads one sample of process `pid`.
pub fn sample(pid: u32) -> anyhow::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok(Sample {
        rss_bytes: parse_rss(&status)?,
        cpu_s: parse_cpu(&stat)?,
    })
}

/// CPU seconds (utime + stime) from the text of `/proc/<pid>/stat`.
fn parse_cpu(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) is in parentheses and may contain spaces;
    // fields are counted after its closing parenthesis.
    let after = stat
        .rfind(')')
        .map(|p| &stat[p + 1..])
        .context("malformed /proc stat: no ')'")?;
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    // After ")" comes field 3 (state); utime is field 14, stime field 15.
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("malformed /proc stat: too few fields");
    };
    let ticks: u64 = utime.parse::<u64>()? + stime.parse::<u64>()?;
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// `VmRSS` in bytes from the text of `/proc/<pid>/status`.
fn parse_rss(status: &str) -> anyhow::Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line in /proc status (process gone or a kernel thread?)")?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("malformed VmRSS line")?;
    Ok(kb * 1024)
}

/// CPU seconds the whole machine spent busy (all cores, everything but
/// idle and iowait) so far, from `/proc/stat`. The difference to the server
/// and generator over a run shows how much other work disturbed it.
pub fn machine_busy_s() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine_busy(&stat)
}

fn parse_machine_busy(stat: &str) -> anyhow::Result<f64> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no aggregate cpu line in /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("malformed cpu line in /proc/stat")?;
    // user nice system idle iowait irq softirq steal [guest guest_nice];
    // guest time is already counted in user.
    let busy: u64 = ticks.iter().take(8).sum::<u64>()
        - ticks.get(3).copied().unwrap_or(0)
        - ticks.get(4).copied().unwrap_or(0);
    Ok(busy as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_machine_busy() {
        let stat = "cpu  100 0 50 1000 10 5 5 0 0 0\ncpu0 50 0 25 500 5 2 3 0 0 0\n";
        assert!((parse_machine_busy(stat).unwrap() - 1.6).abs() < 1e-9);
        assert!(machine_busy_s().unwrap() > 0.0);
    }

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let stat =
            "1234 (my prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 200";
        assert!((parse_cpu(stat).unwrap() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn parses_status_rss() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\nThreads: 1\n";
        assert_eq!(parse_rss(status).unwrap(), 2048 * 1024);
        assert!(parse_rss("Name: x\n").is_err());
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
    }
}
