//! What `proto cotp listen` and `proto cotp send` tell their user (issue 9, items 7
//! and 8): each warning once, each OS cause once, a bad `--out-dir` named before the
//! listener announces itself, and addresses defaulting to port 102.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::ChildGuard;
use proto_tests::cli;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

const RUN: Duration = Duration::from_secs(20);

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_cotp_messages_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_listener_warning_is_printed_once() {
    let dir = tmpdir("warn");
    let msg = dir.join("m");
    std::fs::write(&msg, [1u8; 100]).unwrap();
    let (listener, addr) = cli::cotp_listen(bin(), &["--max-message-size", "10"]);
    const SENDS: usize = 3;
    for _ in 0..SENDS {
        // Each is refused; how the sender reports that is tested elsewhere.
        ChildGuard::run(
            bin(),
            &["cotp", "send", "--to", &addr, msg.to_str().unwrap()],
            RUN,
        );
    }
    let warnings = || {
        listener
            .stderr()
            .lines()
            .filter(|l| l.contains("WARN"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Each connection's warning comes after its (bounded) release; wait for all of
    // them, then for any duplicate to show up.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while warnings().len() < SENDS && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(800));
    let w = warnings();
    assert_eq!(w.len(), SENDS, "{w:#?}");
    assert!(w.iter().all(|l| l.contains("refused a message")), "{w:#?}");
}

#[test]
fn a_port_in_use_is_reported_with_its_cause_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = ChildGuard::run(bin(), &["cotp", "listen", "--bind", &addr], RUN);
    assert_eq!(r.code(), Some(1), "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("Address already in use").count(),
        1,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&addr), "{}", r.stderr);
    assert!(!r.stderr.contains("listening"), "{}", r.stderr);
}

#[test]
fn an_out_dir_that_is_a_file_is_named_before_anything_listens() {
    let dir = tmpdir("outdir");
    let f = dir.join("a-file");
    std::fs::write(&f, b"x").unwrap();
    for (out, says) in [
        (f.clone(), "a file of that name exists"),
        (f.join("sub"), "cannot use the path"),
    ] {
        let r = ChildGuard::run(
            bin(),
            &[
                "cotp",
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--out-dir",
                out.to_str().unwrap(),
            ],
            RUN,
        );
        assert_eq!(r.code(), Some(1), "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("--out-dir {}", out.display())) && r.stderr.contains(says),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("listening"), "{}", r.stderr);
    }
}

#[test]
fn addresses_without_a_port_use_102() {
    let dir = tmpdir("port");
    let msg = dir.join("m");
    std::fs::write(&msg, b"to port 102").unwrap();
    // 127.0.0.2 (still loopback) keeps clear of anything a test or peer runs on
    // 127.0.0.1:102. Binding port 102 may be denied (not root) or taken: then the
    // error must name the address with port 102.
    let listener = ChildGuard::spawn(cli::proto(bin()).args([
        "cotp",
        "listen",
        "--bind",
        "127.0.0.2",
        "--count",
        "1",
    ]));
    let line = listener
        .wait_stderr_line(
            |l| l.starts_with("listening") || l.starts_with("error"),
            RUN,
        )
        .unwrap_or_else(|| panic!("{}", listener.stderr()));
    assert!(line.contains("127.0.0.2:102"), "{line}");
    let bound = line.starts_with("listening");
    let r = ChildGuard::run(
        bin(),
        &[
            "cotp",
            "send",
            "--to",
            "127.0.0.2",
            "--timeout",
            "3",
            msg.to_str().unwrap(),
        ],
        RUN,
    );
    if bound {
        assert!(r.status.success(), "{}", r.stderr);
        let done = listener.finish(RUN);
        assert!(done.stdout.contains("11 bytes"), "{}", done.stdout);
    } else {
        // Only port 102 can have been tried: success means something answered there.
        assert!(
            r.status.success() || r.stderr.contains("127.0.0.2:102"),
            "{}",
            r.stderr
        );
    }
}
