//! Running the `proto` binary in tests: listeners that announce their address on
//! stderr (`cotp listen`, `tcpcl listen`), started under a [`ChildGuard`] so no test
//! leaves one behind.

// Test helpers fail the test that called them by panicking, with a message.
#![allow(clippy::panic, clippy::expect_used)]

use crate::child::ChildGuard;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `proto` (at `bin`) with the log level tests expect (warnings and up).
pub fn proto(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("RUST_LOG", "warn").stdin(Stdio::null());
    c
}

/// Starts `proto cotp listen --bind 127.0.0.1:0 ARGS` and waits for its
/// "listening for COTP on ADDR" line; returns the guard and the address.
pub fn cotp_listen(bin: &Path, args: &[&str]) -> (ChildGuard, String) {
    let child = ChildGuard::spawn(
        proto(bin)
            .args(["cotp", "listen", "--bind", "127.0.0.1:0"])
            .args(args),
    );
    const PREFIX: &str = "listening for COTP on ";
    let Some(line) = child.wait_stderr_line(|l| l.starts_with(PREFIX), Duration::from_secs(10))
    else {
        panic!("no listening line; stderr:\n{}", child.stderr());
    };
    let addr = line[PREFIX.len()..].trim().to_string();
    (child, addr)
}

/// Starts `proto tcpcl listen --bind 127.0.0.1:0 ARGS` and waits for its
/// "listening for TCPCL on ADDR" line; returns the guard and the address.
pub fn tcpcl_listen(bin: &Path, args: &[&str]) -> (ChildGuard, String) {
    tcpcl_listen_on(bin, "127.0.0.1:0", args)
}

/// [`tcpcl_listen`] on a chosen address (a restart on the same port).
pub fn tcpcl_listen_on(bin: &Path, bind: &str, args: &[&str]) -> (ChildGuard, String) {
    let child = ChildGuard::spawn(
        proto(bin)
            .env_remove("SSLKEYLOGFILE")
            .args(["tcpcl", "listen", "--bind", bind])
            .args(args),
    );
    const PREFIX: &str = "listening for TCPCL on ";
    let Some(line) = child.wait_stderr_line(|l| l.starts_with(PREFIX), Duration::from_secs(10))
    else {
        panic!("no listening line; stderr:\n{}", child.stderr());
    };
    let addr = line[PREFIX.len()..].trim().to_string();
    (child, addr)
}
