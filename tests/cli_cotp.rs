//! `proto cotp listen` / `proto cotp send`: the real binary against itself, with exit
//! codes for success, refusal, unreachable peers and usage errors. Every process runs
//! under a [`ChildGuard`], so a failing test leaves none behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::{ChildGuard, Finished};
use proto_tests::cli;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

/// Bound on any one `proto cotp send` in these tests.
const SEND: Duration = Duration::from_secs(20);

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_cotp_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn listen(args: &[&str]) -> (ChildGuard, String) {
    cli::cotp_listen(bin(), args)
}

/// `proto cotp send --to ADDR ARGS` to completion.
fn send(addr: &str, args: &[&str]) -> Finished {
    let mut all = vec!["cotp", "send", "--to", addr];
    all.extend_from_slice(args);
    ChildGuard::spawn(cli::proto(bin()).args(&all)).finish(SEND)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn files_and_stdin_arrive_in_out_dir_and_listen_exits_after_count() {
    let dir = tmpdir("count");
    let out = dir.join("out");
    let (child, addr) = listen(&["--out-dir", s(&out), "--count", "3"]);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    std::fs::write(dir.join("small.txt"), b"hello").unwrap();
    let r = send(&addr, &[s(&dir.join("big.bin")), s(&dir.join("small.txt"))]);
    assert!(r.status.success(), "{}", r.stderr);
    let mut sender = ChildGuard::spawn(
        cli::proto(bin())
            .args(["cotp", "send", "--to", &addr, "-"])
            .stdin(Stdio::piped()),
    );
    sender.stdin().unwrap().write_all(b"from stdin").unwrap();
    assert!(sender.finish(SEND).status.success());
    let output = child.finish(Duration::from_secs(20));
    assert!(output.status.success());
    assert_eq!(output.stdout.lines().count(), 3, "{}", output.stdout);
    assert!(
        output.stdout.contains("300000 bytes sha256="),
        "{}",
        output.stdout
    );
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    files.sort();
    let mut want = vec![big, b"hello".to_vec(), b"from stdin".to_vec()];
    want.sort();
    assert_eq!(files, want);
    // No partial file is left behind.
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".part")));
}

#[test]
fn echo_and_expect_reply_pipe_raw_bytes() {
    let dir = tmpdir("echo");
    let (_listener, addr) = listen(&["--echo"]);
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    std::fs::write(dir.join("p.bin"), &payload).unwrap();
    let out = send(
        &addr,
        &[
            "--expect-reply",
            "--tpdu-size",
            "256",
            s(&dir.join("p.bin")),
        ],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout_bytes, payload);
}

#[test]
fn sigterm_stops_the_listener_gracefully() {
    let (child, addr) = listen(&[]);
    let r = send(&addr, &["-"]);
    // An empty message cannot be sent over class 0: a clear error, exit 1.
    assert_eq!(r.code(), Some(1));
    assert!(r.stderr.contains("empty message"), "{}", r.stderr);
    child.signal("TERM");
    let output = child.finish(Duration::from_secs(10));
    assert!(output.status.success());
}

#[test]
fn refusal_and_unreachable_peer_exit_1_with_the_reason() {
    let dir = tmpdir("refuse");
    std::fs::write(dir.join("m"), b"x").unwrap();
    let (listener, addr) = listen(&["--tsap", "0102"]);
    let r = send(&addr, &["--dst-tsap", "0199", s(&dir.join("m"))]);
    assert_eq!(r.code(), Some(1));
    assert!(
        r.stderr.contains("refused") && r.stderr.contains("address unknown"),
        "{}",
        r.stderr
    );
    drop(listener);

    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = send(
        &format!("127.0.0.1:{port}"),
        &["--timeout", "2", s(&dir.join("m"))],
    );
    assert_eq!(r.code(), Some(1));
    // The OS cause, once.
    assert_eq!(
        r.stderr.matches("Connection refused").count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![
            "cotp",
            "send",
            "--to",
            "127.0.0.1:1",
            "--tpdu-size",
            "1000",
            "x",
        ],
        vec!["cotp", "send", "x"],
        // (`listen` without --bind is no error: it binds 0.0.0.0:102, see cli_habits.)
        vec!["cotp", "listen", "--tpdu-size", "100"],
        vec![
            "cotp",
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--echo",
            "--out-dir",
            "d",
        ],
    ] {
        let r = ChildGuard::run(bin(), &args, SEND);
        assert_eq!(r.code(), Some(2), "{args:?}");
    }
}

#[test]
fn a_message_arriving_when_sigterm_comes_is_still_stored() {
    use proto_core::cotp::{Data, Tpdu};
    use proto_net::cotp::{ConnectOptions, Connection};
    let dir = tmpdir("graceful");
    let out = dir.join("out");
    let (child, addr) = listen(&["--out-dir", s(&out)]);
    let mut conn = Connection::connect(addr.as_str(), ConnectOptions::default()).unwrap();
    // The first half of a message (a DT without EOT), then the stop signal.
    conn.send_tpdu(&Tpdu::Data(Data::class0(false, &[1; 700])))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.signal("TERM");
    std::thread::sleep(Duration::from_millis(600));
    conn.send_tpdu(&Tpdu::Data(Data::class0(true, &[2; 300])))
        .unwrap();
    let output = child.finish(Duration::from_secs(10));
    assert!(output.status.success());
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(files[0].as_ref().unwrap().path()).unwrap();
    assert_eq!(stored.len(), 1000);
    assert!(stored[..700].iter().all(|&b| b == 1) && stored[700..].iter().all(|&b| b == 2));
}

/// How many times the rejection is tried: the race it guards against (issue 9,
/// item 2) lost the DR in 5 to 66 % of runs; 200 clean runs in a row rule it out.
/// `PROTO_REJECT_ITERATIONS` changes the count.
fn reject_iterations() -> usize {
    std::env::var("PROTO_REJECT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[test]
fn a_message_the_listener_rejects_makes_send_fail() {
    let dir = tmpdir("rejected");
    std::fs::write(dir.join("big"), [7u8; 100]).unwrap();
    let (_listener, addr) = listen(&["--max-message-size", "10"]);
    let file = dir.join("big");
    for round in 0..reject_iterations() {
        let r = send(&addr, &[s(&file)]);
        assert_eq!(
            r.code(),
            Some(1),
            "round {round}: a rejected message must fail the send; stderr: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("disconnected") && r.stderr.contains("congestion"),
            "round {round}: {}",
            r.stderr
        );
    }
}

#[test]
fn inputs_are_checked_before_connecting() {
    let dir = tmpdir("inputs");
    std::fs::write(dir.join("ok"), b"fine").unwrap();
    let (listener, addr) = listen(&[]);
    let r = send(&addr, &[s(&dir.join("ok")), s(&dir.join("missing"))]);
    assert_eq!(r.code(), Some(1));
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
    let r = send(&addr, &[s(&dir)]);
    assert_eq!(r.code(), Some(1));
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    let r = send(&addr, &["--timeout", "0", s(&dir.join("ok"))]);
    assert_eq!(r.code(), Some(2));
    listener.signal("TERM");
    let out = listener.finish(Duration::from_secs(10));
    // Nothing was delivered by the failed invocations.
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn a_slow_reader_gets_the_whole_echo() {
    use proto_net::cotp::{ConnectOptions, Connection};
    let (_listener, addr) = listen(&["--echo"]);
    let opts = ConnectOptions::default()
        .max_message_size(16 << 20)
        .timeout(Some(Duration::from_secs(20)));
    let mut conn = Connection::connect(addr.as_str(), opts).unwrap();
    let msg: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8).collect();
    conn.send_data(&msg).unwrap();
    // The listener's echo fills the socket buffers and waits for us: it must not give
    // up after its short shutdown-polling interval.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(conn.recv_data().unwrap(), msg);
}

#[test]
fn expedited_data_is_sent_when_the_listener_selects_it_and_refused_clearly_otherwise() {
    let (listener, addr) = listen(&["--expedited", "--echo"]);
    let dir = tmpdir("expedited");
    std::fs::write(dir.join("m"), b"after the EDs").unwrap();
    let r = send(
        &addr,
        &[
            "--expedited",
            "0102ff",
            "--expedited",
            "00",
            "--expect-reply",
            s(&dir.join("m")),
        ],
    );
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(r.stdout_bytes, b"after the EDs");
    // More EDs than the client keeps while it waits for a message (64): the echoed
    // ones are logged, the reply still arrives.
    let m = dir.join("m");
    let mut many: Vec<&str> = Vec::new();
    for _ in 0..70 {
        many.extend(["--expedited", "01"]);
    }
    many.extend(["--expect-reply", s(&m)]);
    let r = send(&addr, &many);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(r.stdout_bytes, b"after the EDs");
    // Only expedited data, no file.
    let r = send(&addr, &["--expedited", "0123456789abcdef0123456789abcdef"]);
    assert!(r.status.success(), "{}", r.stderr);
    listener.signal("TERM");
    let out = listener.finish(Duration::from_secs(10));
    assert!(out.status.success());
    for line in [
        " 3 bytes hex=0102ff",
        " 1 bytes hex=00",
        " 16 bytes hex=0123456789abcdef0123456789abcdef",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.contains("expedited from 127.0.0.1:") && l.ends_with(line)),
            "{line}: {}",
            out.stdout
        );
    }
    // A listener that does not select the option: nothing is sent, exit 1, the reason.
    let (plain, addr) = listen(&[]);
    let r = send(&addr, &["--expedited", "aa"]);
    assert_eq!(r.code(), Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("did not select expedited data"),
        "{}",
        r.stderr
    );
    drop(plain);
    // 0 or 17 bytes, or not hex: usage errors before connecting.
    for bad in ["", "0123456789abcdef0123456789abcdef01", "xyz", "abc"] {
        let r = ChildGuard::run(
            bin(),
            &["cotp", "send", "--to", "127.0.0.1:1", "--expedited", bad],
            SEND,
        );
        assert_eq!(r.code(), Some(2), "{bad:?}: {}", r.stderr);
    }
}
