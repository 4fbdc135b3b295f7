//! Size limits of `proto cotp listen` and `proto cotp send` (issue 9, items 6 and 8):
//! flags on both sides with K/M/G suffixes, a message over the listener's limit
//! refused with a DR whose reason reaches the sender, and errors that name the limit
//! and the flag that raises it. Edge sizes: exactly the limit passes, one byte more
//! does not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::{ChildGuard, Finished};
use proto_tests::cli;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

const SEND: Duration = Duration::from_secs(30);

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_cotp_limits_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `len` patterned bytes to `dir/name` and returns the path as a string.
fn file(dir: &Path, name: &str, len: usize) -> String {
    let p = dir.join(name);
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_string()
}

fn send(addr: &str, args: &[&str]) -> Finished {
    let mut all = vec!["cotp", "send", "--to", addr];
    all.extend_from_slice(args);
    ChildGuard::spawn(cli::proto(bin()).args(&all)).finish(SEND)
}

/// The sender's error for a message the listener refused: the DR reason, and the
/// listener flag that raises the limit; never a bare transport error.
fn assert_refused_for_size(r: &Finished, what: &str) {
    assert_eq!(r.code(), Some(1), "{what}: {}", r.stderr);
    assert!(
        r.stderr.contains("DR reason: congestion at TSAP")
            && r.stderr.contains("--max-message-size"),
        "{what}: {}",
        r.stderr
    );
    for transport in ["reset by peer", "Broken pipe", "os error"] {
        assert!(!r.stderr.contains(transport), "{what}: {}", r.stderr);
    }
}

#[test]
fn a_message_over_the_listeners_limit_is_refused_with_the_reason_and_the_flag() {
    let dir = tmpdir("listen");
    let (listener, addr) = cli::cotp_listen(bin(), &["--max-message-size", "64K"]);
    let at = file(&dir, "at", 64 << 10);
    let r = send(&addr, &[&at]);
    assert!(r.status.success(), "exactly the limit: {}", r.stderr);
    let over = file(&dir, "over", (64 << 10) + 1);
    assert_refused_for_size(&send(&addr, &[&over]), "one byte over");
    // Far over: the sender is still writing when the listener refuses and, after a
    // bounded drain, resets the connection. The DR's reason must still arrive.
    let huge = file(&dir, "huge", 8 << 20);
    assert_refused_for_size(&send(&addr, &[&huge]), "8 MiB");
    // The listener says which limit and which flag, once per refusal.
    let line = listener
        .wait_stderr_line(|l| l.contains("refused a message"), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no refusal logged: {}", listener.stderr()));
    assert!(
        line.contains("64 KiB") && line.contains("--max-message-size"),
        "{line}"
    );
    assert!(
        listener.stdout().lines().count() == 1,
        "{}",
        listener.stdout()
    );
}

#[test]
fn the_default_listener_refuses_one_byte_over_16_mib_with_the_reason() {
    let dir = tmpdir("default");
    let (_listener, addr) = cli::cotp_listen(bin(), &[]);
    let over = file(&dir, "over", (16 << 20) + 1);
    assert_refused_for_size(&send(&addr, &[&over]), "16 MiB + 1");
}

#[test]
fn a_reply_over_max_reply_size_names_the_limit_and_the_flag() {
    let dir = tmpdir("reply");
    let (_listener, addr) = cli::cotp_listen(bin(), &["--echo"]);
    let at = file(&dir, "at", 16 << 10);
    let r = send(&addr, &["--expect-reply", "--max-reply-size", "16K", &at]);
    assert!(r.status.success(), "exactly the limit: {}", r.stderr);
    assert_eq!(r.stdout_bytes, std::fs::read(&at).unwrap());
    let over = file(&dir, "over", (16 << 10) + 1);
    let r = send(&addr, &["--expect-reply", "--max-reply-size", "16K", &over]);
    assert_eq!(r.code(), Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("16 KiB") && r.stderr.contains("--max-reply-size"),
        "{}",
        r.stderr
    );
    // Our own limit is not the peer's fault.
    assert!(!r.stderr.contains("violated"), "{}", r.stderr);
    assert!(r.stdout_bytes.is_empty());
}

#[test]
fn size_flags_take_k_m_g_suffixes_and_refuse_zero() {
    for size in ["300M", "1G", "4096", "64KiB"] {
        let (listener, _) = cli::cotp_listen(bin(), &["--max-message-size", size]);
        drop(listener);
    }
    let usage = |args: &[&str]| {
        let r = ChildGuard::run(bin(), args, SEND);
        assert_eq!(r.code(), Some(2), "{args:?}: {}", r.stderr);
        r.stderr
    };
    let base = [
        "cotp",
        "listen",
        "--bind",
        "127.0.0.1:0",
        "--max-message-size",
    ];
    assert!(usage(&[&base[..], &["0"]].concat()).contains("at least 1 byte"));
    assert!(usage(&[&base[..], &["12Q"]].concat()).contains("suffix"));
    let send = ["cotp", "send", "--to", "127.0.0.1:1", "--max-reply-size"];
    assert!(usage(&[&send[..], &["0", "x"]].concat()).contains("at least 1 byte"));
    assert!(usage(&[&send[..], &["1T", "x"]].concat()).contains("suffix"));
}
