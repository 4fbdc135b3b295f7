//! Child processes that cannot outlive their test: [`ChildGuard`] kills and reaps its
//! process when dropped (a failed assertion, a panic, an early return), captures
//! stdout and stderr on threads so the child never blocks on a full pipe, and bounds
//! every wait.

// Test helpers fail the test that called them by panicking, with a message.
#![allow(clippy::panic, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What a child wrote to one pipe, shared with the thread that reads it.
#[derive(Debug, Default)]
struct Captured {
    bytes: Mutex<Vec<u8>>,
    grew: Condvar,
}

impl Captured {
    /// Reads `from` line by line until it ends, appending each line (raw bytes: a
    /// child may write binary data).
    fn follow(self: Arc<Self>, from: impl Read + Send + 'static) {
        thread::spawn(move || {
            let mut r = BufReader::new(from);
            let mut line = Vec::new();
            while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let mut t = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
                t.extend_from_slice(&line);
                line.clear();
                self.grew.notify_all();
            }
        });
    }

    fn get(&self) -> Vec<u8> {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until the text has a line for which `want` holds; returns that line.
    fn wait_line(&self, want: &dyn Fn(&str) -> bool, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut t = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(l) = String::from_utf8_lossy(&t).lines().find(|l| want(l)) {
                return Some(l.to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            t = self
                .grew
                .wait_timeout(t, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A spawned process, killed and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
    status: Option<ExitStatus>,
}

/// How a child ended: its status and everything it wrote.
#[derive(Debug)]
pub struct Finished {
    /// The exit status.
    pub status: ExitStatus,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
    /// Everything written to stdout, as bytes.
    pub stdout_bytes: Vec<u8>,
}

impl Finished {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl ChildGuard {
    /// Spawns `cmd` with stdout and stderr captured (stdin as `cmd` set it, null by
    /// default).
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let (stdout, stderr) = (Arc::<Captured>::default(), Arc::<Captured>::default());
        if let Some(o) = child.stdout.take() {
            Arc::clone(&stdout).follow(o);
        }
        if let Some(e) = child.stderr.take() {
            Arc::clone(&stderr).follow(e);
        }
        ChildGuard {
            child,
            stdout,
            stderr,
            status: None,
        }
    }

    /// Runs `program args` to completion (stdin null), killing it if it takes longer
    /// than `within`.
    pub fn run(program: &Path, args: &[&str], within: Duration) -> Finished {
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null());
        ChildGuard::spawn(&mut cmd).finish(within)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdin, if it was piped.
    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} {} failed", self.id());
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.get()).into_owned()
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.get()).into_owned()
    }

    /// Waits for a stderr line for which `want` holds.
    pub fn wait_stderr_line(
        &self,
        want: impl Fn(&str) -> bool,
        within: Duration,
    ) -> Option<String> {
        self.stderr.wait_line(&want, within)
    }

    /// Waits for the child to exit, at most `within`; `None` if it is still running.
    pub fn wait_timeout(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.status {
                return Some(s);
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the child to exit and returns what it wrote; panics (and kills it)
    /// if it runs longer than `within`.
    pub fn finish(mut self, within: Duration) -> Finished {
        let Some(status) = self.wait_timeout(within) else {
            panic!(
                "process {} still running after {within:?}; stderr so far:\n{}",
                self.id(),
                self.stderr()
            );
        };
        // The reader threads finish once the pipes close; give them a moment.
        let settle = Instant::now() + Duration::from_secs(2);
        while Arc::strong_count(&self.stdout) + Arc::strong_count(&self.stderr) > 2
            && Instant::now() < settle
        {
            thread::sleep(Duration::from_millis(5));
        }
        Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
            stdout_bytes: self.stdout.get(),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
