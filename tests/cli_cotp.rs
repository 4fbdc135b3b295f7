//! `proto cotp listen` / `proto cotp send`: the real binary against itself, with exit
//! codes for success, refusal, unreachable peers and usage errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn proto() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_proto"));
    c.env("RUST_LOG", "warn");
    c
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_cotp_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `proto cotp listen` on an ephemeral port; returns the child and its address.
fn listen(args: &[&str]) -> (Child, String) {
    let mut child = proto()
        .args(["cotp", "listen", "--bind", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening for COTP on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (child, addr)
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < limit, "listener did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn files_and_stdin_arrive_in_out_dir_and_listen_exits_after_count() {
    let dir = tmpdir("count");
    let out = dir.join("out");
    let (child, addr) = listen(&["--out-dir", out.to_str().unwrap(), "--count", "3"]);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    std::fs::write(dir.join("small.txt"), b"hello").unwrap();
    let s = proto()
        .args(["cotp", "send", "--to", &addr])
        .arg(dir.join("big.bin"))
        .arg(dir.join("small.txt"))
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let mut send = proto()
        .args(["cotp", "send", "--to", &addr, "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    send.stdin.take().unwrap().write_all(b"from stdin").unwrap();
    assert!(send.wait().unwrap().success());
    let output = wait_with_timeout(child, Duration::from_secs(20));
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains("300000 bytes sha256="), "{stdout}");
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
    let (mut child, addr) = listen(&["--echo"]);
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    std::fs::write(dir.join("p.bin"), &payload).unwrap();
    let s = proto()
        .args([
            "cotp",
            "send",
            "--to",
            &addr,
            "--expect-reply",
            "--tpdu-size",
            "256",
        ])
        .arg(dir.join("p.bin"))
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    assert_eq!(s.stdout, payload);
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn sigterm_stops_the_listener_gracefully() {
    let (child, addr) = listen(&[]);
    let s = proto()
        .args(["cotp", "send", "--to", &addr, "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // An empty message cannot be sent over class 0: a clear error, exit 1.
    assert_eq!(s.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&s.stderr).contains("empty message"));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let output = wait_with_timeout(child, Duration::from_secs(10));
    assert!(output.status.success());
}

#[test]
fn refusal_and_unreachable_peer_exit_1_with_the_reason() {
    let dir = tmpdir("refuse");
    std::fs::write(dir.join("m"), b"x").unwrap();
    let (mut child, addr) = listen(&["--tsap", "0102"]);
    let s = proto()
        .args(["cotp", "send", "--to", &addr, "--dst-tsap", "0199"])
        .arg(dir.join("m"))
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(1));
    let err = String::from_utf8_lossy(&s.stderr);
    assert!(
        err.contains("refused") && err.contains("address unknown"),
        "{err}"
    );
    child.kill().unwrap();
    let _ = child.wait();

    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = proto()
        .args([
            "cotp",
            "send",
            "--to",
            &format!("127.0.0.1:{port}"),
            "--timeout",
            "2",
        ])
        .arg(dir.join("m"))
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(1));
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
        vec!["cotp", "listen"],
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
        let s = proto().args(&args).output().unwrap();
        assert_eq!(s.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn a_message_arriving_when_sigterm_comes_is_still_stored() {
    use proto_core::cotp::{Data, Tpdu};
    use proto_net::cotp::{ConnectOptions, Connection};
    let dir = tmpdir("graceful");
    let out = dir.join("out");
    let (child, addr) = listen(&["--out-dir", out.to_str().unwrap()]);
    let mut conn = Connection::connect(addr.as_str(), ConnectOptions::default()).unwrap();
    // The first half of a message (a DT without EOT), then the stop signal.
    conn.send_tpdu(&Tpdu::Data(Data::class0(false, &[1; 700])))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(600));
    conn.send_tpdu(&Tpdu::Data(Data::class0(true, &[2; 300])))
        .unwrap();
    let output = wait_with_timeout(child, Duration::from_secs(10));
    assert!(output.status.success());
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(files[0].as_ref().unwrap().path()).unwrap();
    assert_eq!(stored.len(), 1000);
    assert!(stored[..700].iter().all(|&b| b == 1) && stored[700..].iter().all(|&b| b == 2));
}

#[test]
fn a_message_the_listener_rejects_makes_send_fail() {
    let dir = tmpdir("rejected");
    std::fs::write(dir.join("big"), [7u8; 100]).unwrap();
    let (mut child, addr) = listen(&["--max-message-size", "10"]);
    let s = proto()
        .args(["cotp", "send", "--to", &addr])
        .arg(dir.join("big"))
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(1));
    let err = String::from_utf8_lossy(&s.stderr);
    assert!(
        err.contains("disconnected") && err.contains("congestion"),
        "{err}"
    );
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn inputs_are_checked_before_connecting() {
    let dir = tmpdir("inputs");
    std::fs::write(dir.join("ok"), b"fine").unwrap();
    let (mut child, addr) = listen(&[]);
    let s = proto()
        .args(["cotp", "send", "--to", &addr])
        .arg(dir.join("ok"))
        .arg(dir.join("missing"))
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&s.stderr).contains("missing"));
    let s = proto()
        .args(["cotp", "send", "--to", &addr])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&s.stderr).contains("is a directory"));
    let s = proto()
        .args(["cotp", "send", "--to", &addr, "--timeout", "0"])
        .arg(dir.join("ok"))
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(2));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    // Nothing was delivered by the failed invocations.
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_slow_reader_gets_the_whole_echo() {
    use proto_net::cotp::{ConnectOptions, Connection};
    let (mut child, addr) = listen(&["--echo"]);
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
    child.kill().unwrap();
    let _ = child.wait();
}
