//! Habits of command-line tools, with the real binary: `-v`/`-q` move the log level
//! (and win over `RUST_LOG`), short options for the common flags, `--bind` defaulting
//! to the protocol's port on all interfaces, `proto decode … -` reading hex from
//! stdin, capture files refused with a hint, and progress bars only for transfers
//! that last (on a terminal, through `script`'s pseudo-terminal).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::{ChildGuard, Finished};
use proto_tests::cli;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

const LIMIT: Duration = Duration::from_secs(20);

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_habits_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Finished {
    ChildGuard::spawn(cli::proto(bin()).args(args)).finish(LIMIT)
}

/// A TPKT-framed CR and DT "hi": enough for `proto decode cotp`.
const FRAMES: &str = "0300001611e00000000100c0010ac1020100c2020102 0300000902f0806869";

#[test]
fn verbose_and_quiet_win_over_rust_log() {
    let dir = tmpdir("verbosity");
    let f = dir.join("m");
    std::fs::write(&f, b"m").unwrap();
    let f = f.to_str().unwrap();
    // -q: the warning about a connection that was not COTP is not logged.
    let (listener, addr) = cli::cotp_listen(bin(), &["-q", "--count", "1"]);
    let mut junk = TcpStream::connect(&addr).unwrap();
    junk.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    // RUST_LOG=warn (set by cli::proto): info lines appear only with -v.
    let plain = run(&["cotp", "send", "--to", &addr, f]);
    assert!(plain.status.success(), "{}", plain.stderr);
    assert!(!plain.stderr.contains("connected to"), "{}", plain.stderr);
    let out = listener.finish(LIMIT);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        !out.stderr.contains("WARN"),
        "-q still logged:\n{}",
        out.stderr
    );
    drop(junk);

    // Without -q the same junk is reported.
    let (listener, addr) = cli::cotp_listen(bin(), &["--count", "1"]);
    let mut junk = TcpStream::connect(&addr).unwrap();
    junk.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let logged = listener.wait_stderr_line(|l| l.contains("WARN"), LIMIT);
    assert!(logged.is_some(), "{}", listener.stderr());
    let verbose = run(&["-v", "cotp", "send", "--to", &addr, f]);
    assert!(verbose.status.success(), "{}", verbose.stderr);
    assert!(
        verbose.stderr.contains("connected to"),
        "{}",
        verbose.stderr
    );
    listener.finish(LIMIT);

    // The flags go anywhere on the line, and contradict each other.
    let r = run(&["decode", "cotp", "-vv", FRAMES]);
    assert!(r.status.success(), "{}", r.stderr);
    let r = run(&["-v", "-q", "decode", "cotp", FRAMES]);
    assert_eq!(r.code(), Some(2), "{}", r.stderr);
}

#[test]
fn short_options_for_the_common_flags() {
    let dir = tmpdir("short");
    let out_dir = dir.join("out");
    let f = dir.join("m.bin");
    std::fs::write(&f, b"short").unwrap();
    let (listener, addr) = cli::cotp_listen(bin(), &["-n", "1", "-o", out_dir.to_str().unwrap()]);
    let r = run(&["cotp", "send", "-t", &addr, f.to_str().unwrap()]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(listener.finish(LIMIT).status.success());
    let stored: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert_eq!(stored.len(), 1);
    let raw = dir.join("frames.bin");
    std::fs::write(&raw, hex(FRAMES)).unwrap();
    let r = run(&["decode", "cotp", "-f", raw.to_str().unwrap()]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.contains("data: 6869"), "{}", r.stdout);
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Starts `proto ARGS` (a listener without --bind) and returns the address it
/// listened on, or the one it failed to bind: either way, the default it chose.
fn default_bind(args: &[&str], listening: &str) -> String {
    let child = ChildGuard::spawn(cli::proto(bin()).args(args));
    let line = child.wait_stderr_line(
        |l| l.starts_with(listening) || l.starts_with("error:"),
        LIMIT,
    );
    let Some(line) = line else {
        panic!("neither listening nor an error:\n{}", child.stderr());
    };
    child.signal("KILL");
    line
}

#[test]
fn bind_defaults_to_the_protocol_port_on_all_interfaces() {
    // The port may be taken (or privileged) here: a failure to bind names the
    // address just as well as success does.
    let line = default_bind(&["cotp", "listen"], "listening for COTP on ");
    assert!(
        line == "listening for COTP on 0.0.0.0:102" || line.contains("binding 0.0.0.0:102"),
        "{line}"
    );
    let line = default_bind(
        &["tcpcl", "listen", "--node-id", "dtn://rx/"],
        "listening for TCPCL on ",
    );
    assert!(
        line == "listening for TCPCL on 0.0.0.0:4556"
            || line.contains("cannot listen on 0.0.0.0:4556"),
        "{line}"
    );
}

#[test]
fn decode_reads_hex_from_stdin_and_refuses_captures() {
    let mut child = ChildGuard::spawn(
        cli::proto(bin())
            .args(["decode", "cotp", "-"])
            .stdin(Stdio::piped()),
    );
    // Hex as xxd -p or tshark prints it: several lines.
    let mut stdin = child.stdin().unwrap();
    stdin
        .write_all(b"0300001611e00000000100c0010ac1020100c2020102\n0300000902f0806869\n")
        .unwrap();
    drop(stdin);
    let r = child.finish(LIMIT);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(
        r.stdout.contains("cotp: CR") && r.stdout.contains("data: 6869"),
        "{}",
        r.stdout
    );
    // `-` with other hex is ambiguous.
    let r = run(&["decode", "cotp", "-", "0300"]);
    assert_eq!(r.code(), Some(1), "{}", r.stderr);

    let dir = tmpdir("captures");
    // A pcap global header (little-endian, microseconds) and a pcapng section header.
    let pcap = dir.join("c.pcap");
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&[0xff, 0xff, 0, 0, 1, 0, 0, 0]);
    std::fs::write(&pcap, &header).unwrap();
    let pcapng = dir.join("c.pcapng");
    std::fs::write(
        &pcapng,
        [
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
        ],
    )
    .unwrap();
    for (path, kind, proto, hint) in [
        (&pcap, "pcap", "cotp", "-d tcp.port==102,tpkt"),
        (&pcapng, "pcapng", "tcpcl", "-d tcp.port==4556,tcpcl"),
    ] {
        let r = run(&["decode", proto, "--file", path.to_str().unwrap()]);
        assert_eq!(r.code(), Some(1), "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("is a {kind} capture")),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(hint), "{}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
}

/// Runs `sh -c CMD` under `script`, so `proto` sees a terminal on stderr; returns what
/// the terminal showed.
fn on_a_terminal(cmd: &str) -> Option<String> {
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        return None;
    }
    let mut c = Command::new(script);
    c.args(["-qec", cmd, "/dev/null"]).env("RUST_LOG", "warn");
    let r = ChildGuard::spawn(c.stdin(Stdio::null())).finish(LIMIT);
    assert!(r.status.success(), "{cmd}: {}\n{}", r.stdout, r.stderr);
    Some(r.stdout)
}

#[test]
fn progress_appears_only_for_transfers_that_last() {
    let (listener, addr) = cli::cotp_listen(bin(), &["--count", "3"]);
    let proto = bin().to_str().unwrap();
    // A blink: no bar. (`script` is part of util-linux, present wherever CI runs.)
    let Some(quick) = on_a_terminal(&format!("printf ab | {proto} cotp send --to {addr} -")) else {
        panic!("/usr/bin/script is missing");
    };
    assert!(quick.contains("sent stdin 2 bytes"), "{quick}");
    assert!(
        !quick.contains("B/s"),
        "a bar for a quick transfer:\n{quick}"
    );
    // Two seconds of a slow producer: the bar (a spinner, length unknown) shows.
    let slow = on_a_terminal(&format!(
        "(printf a; sleep 2; printf b) | {proto} cotp send --to {addr} -"
    ))
    .unwrap();
    assert!(slow.contains("B/s"), "no bar for a 2 s transfer:\n{slow}");
    // -q hides it.
    let quiet = on_a_terminal(&format!(
        "(printf a; sleep 2; printf b) | {proto} -q cotp send --to {addr} -"
    ))
    .unwrap();
    assert!(!quiet.contains("B/s"), "-q showed a bar:\n{quiet}");
    assert!(listener.finish(LIMIT).status.success());
}
