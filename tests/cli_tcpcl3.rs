//! `proto tcpcl listen --tcpcl-version` / `send --tcpcl-version 3` (issue 12): the
//! real binary against itself over TCPCLv3, and against a listener that refuses v3.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::ChildGuard;
use proto_tests::cli::proto;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_tcpcl3_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn listen(args: &[&str]) -> (ChildGuard, String) {
    let child = ChildGuard::spawn(
        proto(bin())
            .args([
                "tcpcl",
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--node-id",
                "dtn://rx/",
            ])
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

fn send(addr: &str, args: &[&str]) -> proto_tests::child::Finished {
    let mut cmd = proto(bin());
    cmd.args(["tcpcl", "send", "--to", addr, "--node-id", "dtn://tx/"])
        .args(args);
    ChildGuard::spawn(&mut cmd).finish(Duration::from_secs(30))
}

#[test]
fn send_over_v3_to_a_default_listener() {
    let dir = tmpdir("v3");
    let out = dir.join("out");
    let (mut l, addr) = listen(&["--out-dir", out.to_str().unwrap(), "--count", "2"]);
    let a = dir.join("a.bin");
    let b = dir.join("b.bin");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&a, b"small bundle").unwrap();
    std::fs::write(&b, &big).unwrap();
    let r = send(
        &addr,
        &[
            "--tcpcl-version",
            "3",
            "--tx-segment-size",
            "100000",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code(), Some(0), "stderr: {}", r.stderr);
    // Our listener asks for acknowledgments: nothing is "unconfirmed".
    assert!(!r.stderr.contains("not confirmed"), "{}", r.stderr);
    assert_eq!(
        l.wait_timeout(Duration::from_secs(20)).map(|s| s.code()),
        Some(Some(0))
    );
    let mut got: Vec<Vec<u8>> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    got.sort_by_key(Vec::len);
    assert_eq!(got, [b"small bundle".to_vec(), big]);
}

#[test]
fn a_v4_only_listener_refuses_a_v3_sender() {
    let (_l, addr) = listen(&["--tcpcl-version", "4"]);
    let dir = tmpdir("refuse");
    let a = dir.join("a.bin");
    std::fs::write(&a, b"x").unwrap();
    let r = send(&addr, &["--tcpcl-version", "3", a.to_str().unwrap()]);
    assert_ne!(r.code(), Some(0));
    assert!(
        r.stderr
            .contains("speaks TCPCL version 4 (RFC 9174), this session speaks version 3"),
        "{}",
        r.stderr
    );
}

#[test]
fn tcpcl_version_flags_are_checked() {
    let r = ChildGuard::run(
        bin(),
        &[
            "tcpcl",
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--node-id",
            "dtn://rx/",
            "--tcpcl-version",
            "5",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(r.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("not a TCPCL version"), "{}", r.stderr);
    let r = ChildGuard::run(
        bin(),
        &[
            "tcpcl",
            "send",
            "--to",
            "127.0.0.1:1",
            "--node-id",
            "dtn://tx/",
            "--tcpcl-version",
            "any",
            "x",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(r.code(), Some(2), "{}", r.stderr);
}

/// A raw v3 peer (written from RFC 7242) that asks for no acknowledgments: `send`
/// exits 0 once everything was written and the session ended with SHUTDOWN, and says
/// that delivery was not confirmed; when the peer drops the connection instead of
/// the SHUTDOWN exchange, `send` fails.
#[test]
fn send_to_a_v3_peer_without_acks() {
    use proto_tests::tcpcl3_wire::{contact, Msg, RawV3};
    use std::net::TcpListener;
    let dir = tmpdir("noacks");
    let a = dir.join("a.bin");
    std::fs::write(&a, b"unconfirmed").unwrap();
    for clean in [true, false] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let peer = std::thread::spawn(move || {
            let mut p = RawV3::accept(&l);
            p.send(&contact(0x00, 0, "dtn://raw/"));
            p.read_contact();
            let mut got = Vec::new();
            while let Some(m) = p.read_msg() {
                let end = matches!(m, Msg::Shutdown(..));
                got.push(m);
                if !clean && got.len() == 1 {
                    // Vanish right after the bundle, without any SHUTDOWN.
                    let _ = p.s.shutdown(std::net::Shutdown::Both);
                    break;
                }
                if end {
                    break;
                }
            }
            got
        });
        let r = send(&addr, &["--tcpcl-version", "3", a.to_str().unwrap()]);
        let got = peer.join().unwrap();
        assert_eq!(
            got[0],
            Msg::Data(true, true, b"unconfirmed".to_vec()),
            "{got:?}"
        );
        if clean {
            assert_eq!(got.last(), Some(&Msg::Shutdown(None, None)));
            assert_eq!(r.code(), Some(0), "stderr: {}", r.stderr);
            assert!(
                r.stderr.contains("delivery was not confirmed by the peer"),
                "{}",
                r.stderr
            );
        } else {
            assert_ne!(r.code(), Some(0), "stderr: {}", r.stderr);
        }
    }
}
