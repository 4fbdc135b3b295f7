//! BPv7 over TCPCLv4 between the real `proto` binary and dtn7-rs's `dtnd`:
//! `proto tcpcl send --bundle-to dtn://node2/incoming` delivers a file that `dtnrecv`
//! reads back intact, and a bundle made by `dtnsend` arrives in `proto tcpcl listen
//! --bundles --payload-only` as the original bytes.
//!
//! Like `interop_tcpcl.rs` (the in-process cases), every case is captured live on `lo`
//! and dissected with tshark: our frames must be clean and tshark's BPv7 dissector must
//! find the bundle. Every case is `#[ignore = "needs dtnd and tshark"]`; with
//! `--include-ignored`, a missing peer skips with a printed reason, or fails under
//! `PROTO_REQUIRE_PEERS=1`. See `docs/interop.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::ChildGuard;
use proto_tests::cli::{proto, tcpcl_listen};
use proto_tests::dtnd::Dtnd;
use proto_tests::peers::{dtn7, LiveCapture, Side};
use proto_tests::tcpcl::pattern;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Hard limit on any `proto` process and on waiting for dtnd to deliver.
const LIMIT: Duration = Duration::from_secs(30);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("interop_tcpcl_cli_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `proto tcpcl send --bundle-to dtn://node2/incoming FILE` to dtnd; `dtnrecv -e
/// incoming -o OUT` then writes the payload, which must be the file.
#[test]
#[ignore = "needs dtnd and tshark"]
fn proto_tcpcl_send_bundle_to_dtnd_reaches_dtnrecv() {
    let Some(dtn7) = dtn7() else {
        return;
    };
    let label = "proto tcpcl send→dtnd";
    let dtnd = Dtnd::start(&dtn7, "node2", None, label).unwrap();
    let Some(capture) = LiveCapture::start(dtnd.tcp_port).unwrap() else {
        return;
    };
    let dir = tmpdir("send");
    let payload = pattern(20_000, 5);
    let file = dir.join("report.bin");
    std::fs::write(&file, &payload).unwrap();
    let to = format!("127.0.0.1:{}", dtnd.tcp_port);
    // Keepalive 30: dtnd ends a session with keepalive 0 at once (docs/interop.md).
    let tx = ChildGuard::spawn(proto(bin()).args([
        "tcpcl",
        "send",
        "--to",
        &to,
        "--node-id",
        "dtn://proto/",
        "--keepalive",
        "30",
        "--bundle-to",
        "dtn://node2/incoming",
        file.to_str().unwrap(),
    ]))
    .finish(LIMIT);
    assert!(tx.status.success(), "{}", tx.stderr);
    assert!(
        tx.stdout
            .contains(&format!("20000 bytes sha256={}", sha_hex(&payload))),
        "{}",
        tx.stdout
    );

    let out = dir.join("delivered.bin");
    let deadline = Instant::now() + LIMIT;
    loop {
        dtnd.tool("dtnrecv", &["-e", "incoming", "-o", out.to_str().unwrap()])
            .unwrap();
        if std::fs::metadata(&out).is_ok_and(|m| m.len() > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "dtnd delivered nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read(&out).unwrap(), payload, "payload intact");

    let wire = capture.finish_tcpcl(Side::Client).unwrap();
    let _log = dtnd.stop_and_report();
    wire.assert_ours_clean(label).unwrap();
    let bp = wire
        .our_packets()
        .find(|p| p.has_layer("bpv7"))
        .expect("a bundle tshark decoded");
    assert_eq!(
        bp.first("bpv7.primary.dst_uri"),
        Some("dtn://node2/incoming")
    );
    assert_eq!(bp.first("bpv7.primary.src_uri"), Some("dtn://proto/"));
    assert_eq!(bp.uint("bpv7.crc_type"), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// dtnd (with the listener as its static peer) forwards a `dtnsend` bundle to
/// `dtn://proto/incoming`; `proto tcpcl listen --bundles --payload-only` stores the
/// original bytes and says the bundle's source and destination.
#[test]
#[ignore = "needs dtnd and tshark"]
fn a_dtnsend_bundle_arrives_in_proto_listen_as_the_original_bytes() {
    let Some(dtn7) = dtn7() else {
        return;
    };
    let label = "dtnd→proto tcpcl listen";
    let dir = tmpdir("listen");
    let out = dir.join("out");
    let (rx, addr) = tcpcl_listen(
        bin(),
        &[
            "--node-id",
            "dtn://proto/",
            "--keepalive",
            "30",
            "--bundles",
            "--payload-only",
            "--out-dir",
            out.to_str().unwrap(),
            "--count",
            "1",
        ],
    );
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    let peer = format!("tcp://127.0.0.1:{port}/proto");
    let dtnd = Dtnd::start(&dtn7, "node2", Some(&peer), label).unwrap();
    let payload = pattern(20_000, 9);
    dtnd.send("dtn://proto/incoming", &payload).unwrap();
    let rx = rx.finish(LIMIT);
    assert!(rx.status.success(), "{}", rx.stderr);
    let line = rx.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        line.contains(&format!("20000 bytes sha256={}", sha_hex(&payload))),
        "{line}"
    );
    assert!(
        line.contains(" bpv7 src=dtn://node2/ dst=dtn://proto/incoming created="),
        "{line}"
    );
    assert_eq!(
        std::fs::read(out.join("tcpcl-000001.bin")).unwrap(),
        payload
    );

    let wire = capture.finish_tcpcl(Side::Server).unwrap();
    let _log = dtnd.stop_and_report();
    wire.assert_ours_clean(label).unwrap();
    let bp = wire
        .peer_packets()
        .find(|p| p.has_layer("bpv7"))
        .expect("a bundle tshark decoded");
    assert_eq!(
        bp.first("bpv7.primary.dst_uri"),
        Some("dtn://proto/incoming")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
