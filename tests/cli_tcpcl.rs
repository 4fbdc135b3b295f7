//! `proto tcpcl listen` / `send` / `gen-certs`: the real binary against itself —
//! files, stdin and a many-segment bundle into `--out-dir`, TLS with node and host
//! authentication (certificates from `gen-certs` and from the `certgen` test PKI),
//! SSLKEYLOGFILE, the failures a user must understand (unknown CA, expired
//! certificate, plaintext against `--require-tls`, refused transfers, nothing
//! listening), a graceful SIGTERM with a transfer in flight, and usage errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn proto() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_proto"));
    c.env("RUST_LOG", "warn").env_remove("SSLKEYLOGFILE");
    c
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_tcpcl_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts `proto tcpcl listen` on an ephemeral port; returns the child and its address.
/// Starts `proto tcpcl listen` on a free port; the listener is killed when the guard
/// drops, so a failing test never leaves it behind.
fn listen(args: &[&str]) -> (KillOnDrop, String) {
    let mut child = proto()
        .args(["tcpcl", "listen", "--bind", "127.0.0.1:0"])
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
        .strip_prefix("listening for TCPCL on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (KillOnDrop(Some(child)), addr)
}

fn send(addr: &str, args: &[&str]) -> Output {
    proto()
        .args(["tcpcl", "send", "--to", addr, "--node-id", "dtn://tx/"])
        .args(args)
        .output()
        .unwrap()
}

fn wait_with_timeout(child: KillOnDrop, limit: Duration) -> Output {
    let mut child = child.take();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("listener did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stop(child: KillOnDrop) {
    drop(child);
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn files_stdin_and_a_many_segment_bundle_arrive_then_count_exits() {
    let dir = tmpdir("count");
    let out = dir.join("out");
    // A 64 KiB Segment MRU makes the 3 MiB file travel as about 48 segments.
    let (child, addr) = listen(&[
        "--node-id",
        "dtn://rx/",
        "--out-dir",
        s(&out),
        "--count",
        "3",
        "--segment-mru",
        "64K",
    ]);
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    std::fs::write(dir.join("small.txt"), b"hello").unwrap();
    let o = send(&addr, &[s(&dir.join("big.bin")), s(&dir.join("small.txt"))]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let mut tx = proto()
        .args([
            "tcpcl",
            "send",
            "--to",
            &addr,
            "--node-id",
            "dtn://tx/",
            "-",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tx.stdin.take().unwrap().write_all(b"from stdin").unwrap();
    let o = tx.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));

    let output = wait_with_timeout(child, Duration::from_secs(10));
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    // TIME #SEQ from NODE-ID (ADDR) SIZE bytes sha256=HEX file=PATH
    assert!(
        lines[0].contains(" #1 from dtn://tx/ (127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        lines[0].contains(&format!("{} bytes sha256={}", big.len(), sha_hex(&big))),
        "{stdout}"
    );
    assert!(lines[0].ends_with("tcpcl-000001.bin"), "{stdout}");
    assert!(lines[2].contains(&sha_hex(b"from stdin")), "{stdout}");
    assert_eq!(
        out_files(&out),
        ["tcpcl-000001.bin", "tcpcl-000002.bin", "tcpcl-000003.bin"]
    );
    assert_eq!(std::fs::read(out.join("tcpcl-000001.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read(out.join("tcpcl-000002.bin")).unwrap(),
        b"hello"
    );
    assert_eq!(
        std::fs::read(out.join("tcpcl-000003.bin")).unwrap(),
        b"from stdin"
    );

    // A listener restarted on the same directory continues the numbering.
    let (child, addr) = listen(&[
        "--node-id",
        "dtn://rx/",
        "--out-dir",
        s(&out),
        "--count",
        "1",
    ]);
    let o = send(&addr, &[s(&dir.join("small.txt"))]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let output = wait_with_timeout(child, Duration::from_secs(10));
    assert!(String::from_utf8(output.stdout)
        .unwrap()
        .contains(" #4 from "));
    assert_eq!(std::fs::read(out.join("tcpcl-000001.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read(out.join("tcpcl-000004.bin")).unwrap(),
        b"hello"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_with_node_and_host_authentication_and_a_key_log() {
    let dir = tmpdir("tls");
    let certs = dir.join("certs");
    // The helper users follow in docs/cli.md.
    let g = proto()
        .args(["tcpcl", "gen-certs", "--out", s(&certs)])
        .args(["--node-id", "dtn://rx/", "--node-id", "dtn://tx/"])
        .args(["--dns", "localhost"])
        .output()
        .unwrap();
    assert!(g.status.success(), "{}", stderr_of(&g));
    assert_eq!(
        out_files(&certs),
        ["ca.pem", "rx.key", "rx.pem", "tx.key", "tx.pem"]
    );
    let again = proto()
        .args([
            "tcpcl",
            "gen-certs",
            "--out",
            s(&certs),
            "--node-id",
            "dtn://rx/",
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "never overwrites silently");

    let tls = |name: &str| {
        vec![
            "--tls-cert".to_string(),
            s(&certs.join(format!("{name}.pem"))).to_string(),
            "--tls-key".to_string(),
            s(&certs.join(format!("{name}.key"))).to_string(),
            "--tls-ca".to_string(),
            s(&certs.join("ca.pem")).to_string(),
        ]
    };
    let mut largs = vec!["--node-id", "dtn://rx/", "--count", "1", "--require-tls"];
    largs.push("--require-node-authn");
    let rx_tls = tls("rx");
    largs.extend(rx_tls.iter().map(String::as_str));
    let (child, addr) = listen(&largs);
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("p.bin"), &payload).unwrap();
    let keylog = dir.join("keys.log");
    let tx_tls = tls("tx");
    let o = proto()
        .args(["tcpcl", "send", "--to", &addr, "--node-id", "dtn://tx/"])
        .args(&tx_tls)
        .args([
            "--require-tls",
            "--require-node-authn",
            "--require-host-authn",
        ])
        .args(["--server-name", "localhost"])
        .arg(dir.join("p.bin"))
        .env("SSLKEYLOGFILE", &keylog)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    let output = wait_with_timeout(child, Duration::from_secs(10));
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains(&sha_hex(&payload)), "{stdout}");
    // SSLKEYLOGFILE: the TLS 1.3 secrets in NSS key log format.
    let log = std::fs::read_to_string(&keylog).unwrap();
    assert!(log.contains("CLIENT_TRAFFIC_SECRET_0 "), "{log}");

    // The same certificates, but the sender expects a host name the listener's
    // certificate does not carry (DNS-ID localhost only).
    let (child, addr) = listen(&largs);
    let o = proto()
        .args(["tcpcl", "send", "--to", &addr, "--node-id", "dtn://tx/"])
        .args(&tx_tls)
        .args(["--server-name", "elsewhere.example", "--require-host-authn"])
        .arg(dir.join("p.bin"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr_of(&o);
    assert!(
        err.contains("host authentication failed") && err.contains("elsewhere.example"),
        "{err}"
    );
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_failures_name_the_check_that_failed() {
    let dir = tmpdir("tlsfail");
    let ca = CertFactory::new_ca("cli test CA").unwrap();
    let rogue = CertFactory::new_ca("rogue CA").unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        s(&p).to_string()
    };
    let ca_pem = write("ca.pem", ca.ca_pem());
    let rogue_pem = write("rogue.pem", rogue.ca_pem());
    let (cert, key) = ca.issue(&LeafSpec::node("dtn://rx/")).unwrap();
    let (rx_cert, rx_key) = (write("rx.pem", &cert), write("rx.key", &key));
    let (cert, key) = ca.issue(&LeafSpec::node("dtn://old/").expired()).unwrap();
    let (old_cert, old_key) = (write("old.pem", &cert), write("old.key", &key));
    std::fs::write(dir.join("m"), b"x").unwrap();
    let m = dir.join("m");

    let (child, addr) = listen(&[
        "--node-id",
        "dtn://rx/",
        "--tls-cert",
        &rx_cert,
        "--tls-key",
        &rx_key,
        "--tls-ca",
        &ca_pem,
        "--require-tls",
    ]);
    // The sender does not trust the listener's CA.
    let o = send(&addr, &["--tls-ca", &rogue_pem, s(&m)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr_of(&o);
    assert!(
        err.contains("TLS handshake failed") && err.contains("unknown CA"),
        "{err}"
    );
    // A plaintext sender against --require-tls.
    let o = send(&addr, &["--no-tls", s(&m)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr_of(&o);
    assert!(
        err.contains("contact failure") && err.contains("require TLS"),
        "{err}"
    );
    stop(child);

    // The listener's certificate has expired.
    let (child, addr) = listen(&[
        "--node-id",
        "dtn://old/",
        "--tls-cert",
        &old_cert,
        "--tls-key",
        &old_key,
        "--tls-ca",
        &ca_pem,
    ]);
    let o = send(&addr, &["--tls-ca", &ca_pem, s(&m)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr_of(&o);
    assert!(err.contains("has expired"), "{err}");
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_lets_the_transfer_in_flight_finish() {
    let dir = tmpdir("sigterm");
    let out = dir.join("out");
    let (child, addr) = listen(&["--node-id", "dtn://rx/", "--out-dir", s(&out)]);
    let mut tx = proto()
        .args(["tcpcl", "send", "--to", &addr, "--node-id", "dtn://tx/"])
        .args(["--tx-segment-size", "16K", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = tx.stdin.take().unwrap();
    stdin.write_all(&[b'a'; 300_000]).unwrap();
    stdin.flush().unwrap();
    // Wait until the bundle is streaming into its hidden .part file.
    let start = Instant::now();
    while !out_files(&out).iter().any(|f| f.ends_with(".part")) {
        assert!(start.elapsed() < Duration::from_secs(5), "no .part file");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(200));
    // Only the partial file exists: nothing under a final name yet.
    assert!(out_files(&out).iter().all(|f| f.ends_with(".part")));
    stdin.write_all(&[b'b'; 300_000]).unwrap();
    drop(stdin);
    let o = tx.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    let output = wait_with_timeout(child, Duration::from_secs(10));
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 1);
    assert_eq!(out_files(&out), ["tcpcl-000001.bin"]);
    let got = std::fs::read(out.join("tcpcl-000001.bin")).unwrap();
    assert_eq!(got.len(), 600_000);
    assert!(got[..300_000].iter().all(|&b| b == b'a') && got[300_000..].iter().all(|&b| b == b'b'));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refused_transfers_and_unreachable_peers_exit_1_with_the_reason() {
    let dir = tmpdir("refuse");
    let f = dir.join("f.bin");
    std::fs::write(&f, vec![7u8; 4096]).unwrap();

    // Larger than the listener's Transfer MRU: refused before a byte is sent.
    let (child, addr) = listen(&["--node-id", "dtn://rx/", "--transfer-mru", "1K"]);
    let o = send(&addr, &[s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr_of(&o);
    assert!(err.contains("transfer MRU is 1024 bytes"), "{err}");
    stop(child);

    // The peer answers with XFER_REFUSE.
    let (child, addr) = listen(&["--node-id", "dtn://rx/", "--refuse", "not-acceptable"]);
    let o = send(&addr, &[s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr_of(&o);
    assert!(
        err.contains("refused") && err.contains("XFER_REFUSE reason: not acceptable"),
        "{err}"
    );
    stop(child);

    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = send(&format!("127.0.0.1:{port}"), &[s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr_of(&o).contains("refused the connection"),
        "{}",
        stderr_of(&o)
    );
    // An address that does not resolve.
    let o = send("localhost:notaport", &[s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr_of(&o).contains("cannot resolve localhost:notaport"),
        "{}",
        stderr_of(&o)
    );
    // A missing file is reported before connecting.
    let o = send(&format!("127.0.0.1:{port}"), &[s(&dir.join("nope"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr_of(&o).contains("cannot open"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2() {
    let send = [
        "tcpcl",
        "send",
        "--to",
        "127.0.0.1:1",
        "--node-id",
        "dtn://tx/",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        send.iter().chain(extra).copied().collect()
    };
    for args in [
        // (`listen` without --bind is no error: it binds 0.0.0.0:4556, see cli_habits.)
        vec!["tcpcl", "listen", "--node-id", "dtn://rx/", "--count", "0"],
        vec!["tcpcl", "listen", "--bind", "127.0.0.1:0"],
        vec!["tcpcl", "send", "--to", "127.0.0.1:1", "x"],
        with(&[]),
        with(&["-", "-"]),
        with(&["--no-tls", "--tls-ca", "ca.pem", "x"]),
        with(&["--tls-cert", "c.pem", "x"]),
        with(&["--segment-mru", "12Q", "x"]),
        with(&["--tls-version", "1.1", "x"]),
        vec!["tcpcl", "gen-certs", "--out", "d"],
    ] {
        let o = proto().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr_of(&o));
    }
}

#[test]
fn config_file_supplies_options_and_flags_override_it() {
    let dir = tmpdir("config");
    let cfg = dir.join("rx.yaml");
    std::fs::write(
        &cfg,
        "node_id: dtn://from-file/\ntransfer_mru: 100\nkeepalive_time: 5\n",
    )
    .unwrap();
    let f = dir.join("f.bin");
    std::fs::write(&f, vec![1u8; 1000]).unwrap();
    // From the file alone, the 100-byte Transfer MRU refuses the 1000-byte bundle.
    let (child, addr) = listen(&["--config", s(&cfg)]);
    let o = send(&addr, &[s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr_of(&o).contains("transfer MRU is 100 bytes"),
        "{}",
        stderr_of(&o)
    );
    stop(child);
    // The flag wins over the file.
    let (child, addr) = listen(&["--config", s(&cfg), "--transfer-mru", "1M", "--count", "1"]);
    let o = send(&addr, &[s(&f)]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let output = wait_with_timeout(child, Duration::from_secs(10));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("from dtn://tx/ (127.0.0.1:"), "{stdout}");
    // A typo in the file is an error naming it.
    std::fs::write(&cfg, "node_id: dtn://x/\nkeepalive: 5\n").unwrap();
    let o = proto()
        .args([
            "tcpcl",
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--config",
            s(&cfg),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr_of(&o);
    assert!(
        err.contains("rx.yaml") && err.contains("keepalive"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn sigterm(child: &Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
}

/// SHA-256 of every stored bundle (`tcpcl-NNNNNN.bin`), sorted; fails on a leftover
/// `.part` file.
fn stored_digests(out: &Path) -> Vec<String> {
    let files = out_files(out);
    assert!(
        files.iter().all(|f| !f.ends_with(".part")),
        "partial files left behind: {files:?}"
    );
    let mut v: Vec<String> = files
        .iter()
        .map(|f| sha_hex(&std::fs::read(out.join(f)).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn sigterm_right_after_bundles_complete_stores_every_acknowledged_one() {
    let dir = tmpdir("sigterm_many");
    let out = dir.join("out");
    let (child, addr) = listen(&["--node-id", "dtn://rx/", "--out-dir", s(&out)]);
    // Many small bundles on concurrent sessions; the listener is stopped while they
    // complete.
    let mut senders = Vec::new();
    for i in 0..40u32 {
        let data: Vec<u8> = (0..(1000 + i * 37)).map(|j| (j ^ i) as u8).collect();
        let f = dir.join(format!("b{i}.bin"));
        std::fs::write(&f, &data).unwrap();
        let tx = proto()
            .args(["tcpcl", "send", "--to", &addr, "--node-id", "dtn://tx/"])
            .args(["--ack-timeout", "10", s(&f)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        senders.push((sha_hex(&data), tx));
    }
    let start = Instant::now();
    while !out_files(&out).iter().any(|f| f.ends_with(".bin")) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no bundle arrived"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    sigterm(&child);
    // A sender whose session ended just before it submitted its bundle can wait
    // forever for the submission (a runtime issue outside the listener): one that has
    // not exited by the deadline is stopped and counts as not acknowledged.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut acknowledged = Vec::new();
    for (sha, mut tx) in senders {
        while tx.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if tx.try_wait().unwrap().is_none() {
            let _ = tx.kill();
        }
        if tx.wait().unwrap().success() {
            acknowledged.push(sha);
        }
    }
    let output = wait_with_timeout(child, Duration::from_secs(15));
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stored = stored_digests(&out);
    eprintln!(
        "{} of 40 bundles acknowledged, {} stored",
        acknowledged.len(),
        stored.len()
    );
    for sha in &acknowledged {
        assert!(
            stored.contains(sha),
            "acknowledged bundle {sha} is not stored ({} acknowledged, {} stored)",
            acknowledged.len(),
            stored.len()
        );
    }
    // One line per stored bundle, naming its file and digest.
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), stored.len(), "{stdout}");
    for line in stdout.lines() {
        let file = line.rsplit_once(" file=").unwrap().1;
        let sha = line
            .split(" sha256=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        assert_eq!(sha_hex(&std::fs::read(file).unwrap()), sha, "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- a raw TCPCL peer ------------------------------------------------------------------

mod raw {
    use proto_core::tcpcl::{
        ContactFlags, ContactHeader, ExtensionItems, Message, SegmentFlags, SessInit, SessTerm,
        SessTermFlags, SessTermReason, Status, XferAck, XferSegmentHead,
    };
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// A plaintext TCPCLv4 session spoken byte by byte.
    pub(super) struct Peer {
        sock: TcpStream,
        buf: Vec<u8>,
    }

    fn encoded(len: usize, f: impl FnOnce(&mut [u8]) -> usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let n = f(&mut out);
        out.truncate(n);
        out
    }

    impl Peer {
        /// Connects and exchanges contact headers and SESS_INITs.
        pub(super) fn establish(addr: &str, node_id: &str) -> Peer {
            let sock = TcpStream::connect(addr).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            sock.set_nodelay(true).unwrap();
            let mut p = Peer {
                sock,
                buf: Vec::new(),
            };
            let ch = ContactHeader::new(ContactFlags::EMPTY);
            let mut hello = encoded(ContactHeader::LEN, |o| ch.encode(o).unwrap());
            let si = SessInit {
                keepalive: 0,
                segment_mru: 1 << 20,
                transfer_mru: 16 << 20,
                node_id,
                extensions: ExtensionItems::EMPTY,
            };
            hello.extend(encoded(si.encoded_len(), |o| si.encode(o).unwrap()));
            p.sock.write_all(&hello).unwrap();
            p.fill(ContactHeader::LEN);
            let contact: Vec<u8> = p.buf.drain(..ContactHeader::LEN).collect();
            assert_eq!(&contact[..5], b"dtn!\x04", "contact header");
            assert!(matches!(p.message(), Message::SessInit(_)), "SESS_INIT");
            p
        }

        fn fill(&mut self, n: usize) {
            let mut chunk = [0u8; 4096];
            while self.buf.len() < n {
                let got = self.sock.read(&mut chunk).unwrap();
                assert!(got > 0, "the listener closed the connection");
                self.buf.extend_from_slice(&chunk[..got]);
            }
        }

        /// The next message (keepalives skipped).
        pub(super) fn message(&mut self) -> Message<'static> {
            loop {
                match Message::decode(&self.buf).unwrap() {
                    Status::Complete((m, used)) => {
                        let m = match m {
                            Message::SessInit(_) => Message::SessInit(SessInit {
                                keepalive: 0,
                                segment_mru: 0,
                                transfer_mru: 0,
                                node_id: "",
                                extensions: ExtensionItems::EMPTY,
                            }),
                            Message::XferAck(a) => Message::XferAck(a),
                            Message::XferRefuse(r) => Message::XferRefuse(r),
                            Message::SessTerm(t) => Message::SessTerm(t),
                            Message::MsgReject(r) => Message::MsgReject(r),
                            Message::Keepalive => {
                                self.buf.drain(..used);
                                continue;
                            }
                            other => panic!("unexpected {other:?}"),
                        };
                        self.buf.drain(..used);
                        return m;
                    }
                    Status::Partial { needed } => {
                        let want = self.buf.len() + needed;
                        self.fill(want);
                    }
                }
            }
        }

        /// One single-segment transfer (START|END), encoded.
        pub(super) fn bundle(tid: u64, data: &[u8]) -> Vec<u8> {
            let head = XferSegmentHead::new(
                SegmentFlags::START.with(SegmentFlags::END),
                tid,
                ExtensionItems::EMPTY,
                data.len() as u64,
            );
            let mut m = encoded(head.encoded_len(), |o| head.encode(o).unwrap());
            m.extend_from_slice(data);
            m
        }

        pub(super) fn write(&mut self, bytes: &[u8]) {
            self.sock.write_all(bytes).unwrap();
        }

        /// Expects the XFER_ACK of a whole single-segment transfer.
        pub(super) fn expect_ack(&mut self, tid: u64, len: u64) {
            let want = XferAck {
                flags: SegmentFlags::START.with(SegmentFlags::END),
                transfer_id: tid,
                acked_len: len,
            };
            match self.message() {
                Message::XferAck(a) => assert_eq!(a, want),
                other => panic!("expected {want:?}, got {other:?}"),
            }
        }

        /// Ends the session (SESS_TERM exchange).
        pub(super) fn terminate(mut self) {
            let t = SessTerm {
                flags: SessTermFlags::EMPTY,
                reason: SessTermReason::UNKNOWN,
            };
            let bytes = encoded(SessTerm::LEN, |o| t.encode(o).unwrap());
            self.write(&bytes);
            match self.message() {
                Message::SessTerm(t) => assert!(t.flags.is_reply(), "{t:?}"),
                other => panic!("expected the SESS_TERM reply, got {other:?}"),
            }
        }
    }
}

#[test]
fn a_reused_transfer_id_neither_truncates_a_bundle_nor_stops_the_listener() {
    let dir = tmpdir("reuse");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A bundle of an earlier run keeps its name and its bytes.
    std::fs::write(out.join("tcpcl-000001.bin"), b"earlier run").unwrap();
    let (mut child, addr) = listen(&["--node-id", "dtn://rx/", "--out-dir", s(&out)]);
    let a: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let b: Vec<u8> = (0..1000u32).map(|i| (i % 13) as u8 ^ 0x5a).collect();
    let c = b"after the reuse".to_vec();
    for round in 0..3 {
        let mut p = raw::Peer::establish(&addr, "dtn://raw/");
        // Transfer 0 completes, and transfer 0 starts again at once, before the
        // listener can have done anything with the first.
        let mut wire = raw::Peer::bundle(0, &a);
        wire.extend(raw::Peer::bundle(0, &b));
        p.write(&wire);
        p.expect_ack(0, a.len() as u64);
        p.expect_ack(0, b.len() as u64);
        p.write(&raw::Peer::bundle(1, &c));
        p.expect_ack(1, c.len() as u64);
        p.terminate();
        assert!(
            child.try_wait().unwrap().is_none(),
            "the listener exited in round {round}"
        );
    }
    sigterm(&child);
    let output = wait_with_timeout(child, Duration::from_secs(10));
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 9, "{stdout}");
    assert_eq!(
        std::fs::read(out.join("tcpcl-000001.bin")).unwrap(),
        b"earlier run"
    );
    let mut want: Vec<String> = [&a[..], &b[..], &c[..]]
        .iter()
        .flat_map(|d| std::iter::repeat_n(sha_hex(d), 3))
        .chain([sha_hex(b"earlier run")])
        .collect();
    want.sort();
    assert_eq!(stored_digests(&out), want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 9, item 1: an empty file (and empty stdin) is a legal zero-length bundle. It is
/// acknowledged, stored as an empty file and reported like any other, and the files
/// after it on the command line are sent too.
#[test]
fn empty_files_and_empty_stdin_are_zero_length_bundles() {
    let dir = tmpdir("empty");
    let out = dir.join("out");
    let (child, addr) = listen(&[
        "--node-id",
        "dtn://rx/",
        "--out-dir",
        s(&out),
        "--count",
        "3",
    ]);
    std::fs::write(dir.join("empty.bin"), b"").unwrap();
    std::fs::write(dir.join("a.txt"), b"after the empty one").unwrap();
    let started = Instant::now();
    let o = send(&addr, &[s(&dir.join("empty.bin")), s(&dir.join("a.txt"))]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "send took {:?}",
        started.elapsed()
    );
    let o = proto()
        .args([
            "tcpcl",
            "send",
            "--to",
            &addr,
            "--node-id",
            "dtn://tx/",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    let output = wait_with_timeout(child, Duration::from_secs(10));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains(&format!("0 bytes sha256={}", sha_hex(b""))),
        "{stdout}"
    );
    assert!(
        lines[2].contains(&format!("0 bytes sha256={}", sha_hex(b""))),
        "{stdout}"
    );
    assert_eq!(std::fs::read(out.join("tcpcl-000001.bin")).unwrap(), b"");
    assert_eq!(
        std::fs::read(out.join("tcpcl-000002.bin")).unwrap(),
        b"after the empty one"
    );
    assert_eq!(std::fs::read(out.join("tcpcl-000003.bin")).unwrap(), b"");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A listener child that is killed when dropped (every exit path of a test, a failed
/// assertion included), unless it was taken back to wait for its exit.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn take(mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            kill(c);
        }
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0
            .as_ref()
            .expect("a guard holds its child until taken")
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("a guard holds its child until taken")
    }
}
