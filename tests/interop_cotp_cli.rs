//! COTP interoperability of the real `proto` binary with independent implementations:
//! icspacket against `proto cotp listen --echo`, and `proto cotp send` against a
//! python-snap7 S7 server (setup communication, and garbage that gets no answer).
//!
//! Like `interop_cotp.rs` (the in-process cases), every case is captured live on `lo`
//! and dissected with tshark; our frames must be clean, the peer's findings are printed.
//! Every process (peers, `proto`, tshark) runs under a hard time limit. Every case is
//! `#[ignore = "needs ..."]` (run them with `cargo test -- --include-ignored`); then
//! missing peers skip with a printed reason, or fail under `PROTO_REQUIRE_PEERS=1`. See
//! `docs/interop.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use proto_tests::peers::{
    free_port, peer_python, scripts, Bounded, Finished, LiveCapture, PeerPython, Side, Stream,
};
use proto_tests::tshark::DissectOptions;

/// Hard limit on any one peer or `proto` process.
const LIMIT: Duration = Duration::from_secs(60);

/// The S7 "setup communication" job (PDU reference 0, max AmQ 1/1, PDU length 480):
/// the user data of the DT `0300001902f080` + this.
const S7_SETUP: &str = "32010000010000080000f0000001000101e0";

fn proto() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_proto"));
    c.env("RUST_LOG", "warn");
    c
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("interop_cotp_cli_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `proto cotp listen --bind 127.0.0.1:0 <args>`; returns the process and its port.
fn listen(args: &[&str]) -> (Bounded, u16) {
    let mut cmd = proto();
    cmd.args(["cotp", "listen", "--bind", "127.0.0.1:0"])
        .args(args);
    let mut child = Bounded::spawn(&mut cmd).unwrap();
    let line = child
        .wait_line(Stream::Stderr, Duration::from_secs(20), |l| {
            l.starts_with("listening for COTP on ")
        })
        .unwrap();
    let port = line.rsplit(':').next().unwrap().trim().parse().unwrap();
    (child, port)
}

/// Stops a `proto cotp listen` with SIGTERM; it must exit 0.
fn stop_listener(child: Bounded) -> Finished {
    child.signal("TERM").unwrap();
    let out = child.finish(Duration::from_secs(20)).unwrap();
    assert!(out.status.success(), "listener: {out:?}");
    out
}

/// A python-snap7 server on a free port; returns the process and the port.
fn snap7_server(py: &PeerPython) -> (Bounded, u16) {
    let port = free_port().unwrap();
    let mut child =
        Bounded::spawn(&mut py.command(scripts::SNAP7_SERVER, &[port.to_string()])).unwrap();
    child
        .wait_line(Stream::Stdout, Duration::from_secs(30), |l| l == "ready")
        .unwrap();
    (child, port)
}

fn send(args: &[&str], file: &PathBuf) -> Finished {
    let mut cmd = proto();
    cmd.args(["cotp", "send"]).args(args).arg(file);
    Bounded::spawn(&mut cmd).unwrap().finish(LIMIT).unwrap()
}

#[test]
#[ignore = "needs icspacket and tshark"]
fn icspacket_client_echo_through_proto_cotp_listen() {
    let Some(py) = peer_python("icspacket") else {
        return;
    };
    let started = Instant::now();
    let (listener, port) = listen(&["--echo", "--tsap", "0102"]);
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    let sizes = [1usize, 1021, 1022, 100 * 1024];
    let list = sizes.map(|n| n.to_string()).join(",");
    let out = py
        .run_json(
            scripts::ICSPACKET_ECHO,
            &["127.0.0.1", &port.to_string(), &list],
            LIMIT,
        )
        .unwrap();
    let wire = capture.finish(Side::Server).unwrap();
    let log = stop_listener(listener);
    eprintln!("[icspacket→proto listen] peer: {out}");

    assert_eq!(out["tpdu_size"], 1024);
    let echo = out["echo"].as_array().unwrap();
    assert_eq!(echo.len(), sizes.len());
    for (e, n) in echo.iter().zip(sizes) {
        assert_eq!(e["got"], n, "{e}");
        assert_eq!(e["equal"], true, "{e}");
    }
    // The listener logged each message with its length.
    for n in sizes {
        assert!(
            log.stdout.contains(&format!(" {n} bytes sha256=")),
            "{log:?}"
        );
    }

    wire.assert_ours_clean("icspacket→proto listen").unwrap();
    let cc = wire.first_cotp(true, 0x0d).expect("our CC");
    assert_eq!(cc.uint("cotp.tpdu_size"), Some(1024));
    assert_eq!(cc.first("cotp.src-tsap-bytes"), Some("01:00"));
    assert_eq!(cc.first("cotp.dst-tsap-bytes"), Some("01:02"));
    assert_eq!(wire.tpkt_lengths(true).iter().max(), Some(&1028));
    eprintln!(
        "[icspacket→proto listen] done in {:?}; per message (ms): {}",
        started.elapsed(),
        echo.iter()
            .map(|e| format!("{}B {}", e["len"], e["ms"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
#[ignore = "needs icspacket and tshark"]
fn icspacket_client_refused_by_proto_cotp_listen_tsap() {
    let Some(py) = peer_python("icspacket") else {
        return;
    };
    let (listener, port) = listen(&["--tsap", "0102"]);
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    let out = py
        .run_json(
            scripts::ICSPACKET_CONNECT,
            &["127.0.0.1", &port.to_string(), "0199"],
            LIMIT,
        )
        .unwrap();
    let wire = capture.finish(Side::Server).unwrap();
    stop_listener(listener);
    eprintln!("[icspacket refused by proto listen] peer: {out}");
    assert_eq!(out["refused"], true, "{out}");
    assert_eq!(out["reason"], 3, "UNKNOWN_ADDRESS: {out}");

    wire.assert_ours_clean("icspacket refused by proto listen")
        .unwrap();
    assert_eq!(wire.cotp_types(true), [0x08], "we send only the DR");
    let dr = wire.first_cotp(true, 0x08).unwrap();
    assert_eq!(dr.uint("cotp.cause"), Some(3));
}

#[test]
#[ignore = "needs python-snap7 and tshark"]
fn proto_cotp_send_s7_setup_to_snap7_server() {
    let Some(py) = peer_python("snap7") else {
        return;
    };
    let dir = tmpdir("s7setup");
    let setup = dir.join("setup.bin");
    std::fs::write(&setup, hex(S7_SETUP)).unwrap();
    let (server, port) = snap7_server(&py);
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    let to = format!("127.0.0.1:{port}");
    let s = send(
        &[
            "--to",
            &to,
            "--src-tsap",
            "0100",
            "--dst-tsap",
            "0102",
            "--expect-reply",
        ],
        &setup,
    );
    // S7comm stays on: tshark decodes the job and the peer's ack-data independently.
    let mut opts = DissectOptions::cotp(port);
    opts.disabled_protocols.retain(|p| p != "s7comm");
    let wire = capture.finish_with(Side::Client, opts).unwrap();
    let srv = server.finish(Duration::from_secs(20)).unwrap();
    eprintln!(
        "[proto send→snap7 server] exit {:?} in {:?}; reply {}",
        s.status.code(),
        s.elapsed,
        s.stdout_bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert!(s.status.success(), "{s:?}\nserver: {srv:?}");
    // stdout is not a terminal: the reply comes out as raw bytes.
    let reply = &s.stdout_bytes;
    assert_eq!(reply.len(), 20, "{reply:02x?}");
    assert_eq!(&reply[..2], [0x32, 0x03], "ack-data");
    assert_eq!(&reply[18..], [0x01, 0xe0], "PDU length 480");

    wire.assert_ours_clean("proto send→snap7 server").unwrap();
    let cr = wire.first_cotp(true, 0x0e).expect("our CR");
    assert_eq!(cr.first("cotp.src-tsap-bytes"), Some("01:00"));
    assert_eq!(cr.first("cotp.dst-tsap-bytes"), Some("01:02"));
    assert_eq!(cr.uint("cotp.tpdu_size"), Some(1024));
    let ours_s7: Vec<_> = wire
        .our_packets()
        .filter(|p| p.has_layer("s7comm"))
        .collect();
    assert_eq!(ours_s7.len(), 1, "one S7 job from us");
    assert_eq!(ours_s7[0].uint("s7comm.header.rosctr"), Some(1), "job");
    assert_eq!(ours_s7[0].uint("s7comm.param.func"), Some(0xf0), "setup");
    assert_eq!(ours_s7[0].uint("s7comm.param.pdu_length"), Some(480));
    let peer_s7: Vec<_> = wire
        .peer_packets()
        .filter(|p| p.has_layer("s7comm"))
        .collect();
    assert_eq!(peer_s7.len(), 1, "one S7 reply");
    assert_eq!(peer_s7[0].uint("s7comm.header.rosctr"), Some(3), "ack-data");
    assert_eq!(peer_s7[0].uint("s7comm.param.pdu_length"), Some(480));
}

#[test]
#[ignore = "needs python-snap7 and tshark"]
fn proto_cotp_send_garbage_to_snap7_server_times_out_clearly() {
    let Some(py) = peer_python("snap7") else {
        return;
    };
    let dir = tmpdir("garbage");
    let garbage = dir.join("garbage.bin");
    std::fs::write(&garbage, b"this is not S7").unwrap();
    let (server, port) = snap7_server(&py);
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    let to = format!("127.0.0.1:{port}");
    let s = send(&["--to", &to, "--timeout", "2", "--expect-reply"], &garbage);
    let wire = capture.finish(Side::Client).unwrap();
    let srv = server.finish(Duration::from_secs(20)).unwrap();
    eprintln!(
        "[proto send garbage→snap7 server] exit {:?} in {:?}: {}\n  server said: {}",
        s.status.code(),
        s.elapsed,
        s.stderr.trim(),
        srv.stderr.trim()
    );
    assert_eq!(s.status.code(), Some(1), "{s:?}");
    assert!(s.stderr.contains("timed out"), "{}", s.stderr);
    assert!(s.stdout.is_empty());
    assert!(
        s.elapsed >= Duration::from_secs(2) && s.elapsed < Duration::from_secs(10),
        "{:?}",
        s.elapsed
    );

    wire.assert_ours_clean("proto send garbage→snap7 server")
        .unwrap();
    // CR, then the DT with the garbage; the server answers the CC and nothing else.
    assert_eq!(&wire.cotp_types(true)[..2], [0x0e, 0x0f]);
    assert_eq!(wire.cotp_types(false), [0x0d]);
}
