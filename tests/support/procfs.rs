//! Readings of this process from `/proc/self`: thread count, resident memory, the
//! open-file limit (Linux).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A field of `/proc/self/status` (`Threads`, `VmRSS` in KiB, ...) as a number.
pub fn proc_status(field: &str) -> Result<u64> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    let value = s
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("{field} in /proc/self/status"))?;
    let n = value
        .split_whitespace()
        .next()
        .context("value")?
        .parse::<u64>()?;
    Ok(n)
}

/// `Max open files` soft limit of this process.
pub fn fd_limit() -> Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .context("Max open files")?;
    let soft = line.split_whitespace().nth(3).context("soft limit")?;
    Ok(soft.parse().unwrap_or(u64::MAX))
}

/// Waits (bounded) until the process has at most `n` threads; returns the last count.
pub fn threads_settle_to(n: u64, within: Duration) -> Result<u64> {
    let deadline = Instant::now() + within;
    loop {
        let now = proc_status("Threads")?;
        if now <= n || Instant::now() >= deadline {
            return Ok(now);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
