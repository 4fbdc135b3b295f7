//! Readings of this process from `/proc/self`: thread count, resident memory, the
//! open-file limit (Linux), and raising that limit.

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

/// Raises this process's soft open-file limit to `want` (at most the hard limit);
/// children spawned afterwards inherit it. Returns the soft limit now in force.
pub fn raise_fd_limit(want: u64) -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct passed by reference.
    unsafe {
        anyhow::ensure!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0,
            "getrlimit: {}",
            std::io::Error::last_os_error()
        );
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            anyhow::ensure!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0,
                "setrlimit: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    fd_limit()
}
