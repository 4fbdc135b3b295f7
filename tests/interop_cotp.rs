//! COTP interoperability with independent implementations, driving our listener
//! (`proto_net::cotp::Listener`) in-process: icspacket and python-snap7 clients.
//!
//! Every case is captured live on `lo` (tshark, port filter) and dissected: frames we
//! sent must have no malformed packet and no warning/error expert item; the peer's
//! findings are printed as quirks. The peers run as Python subprocesses with a hard time
//! limit. Every case is `#[ignore = "needs ..."]` (run them with `cargo test --
//! --include-ignored`); then missing peers skip with a printed reason (or fail under
//! `PROTO_REQUIRE_PEERS=1`); see
//! `docs/interop.md` for the matrix and the peers' quirks. The CLI-flavoured cases
//! (`proto cotp listen --echo`, `proto cotp send` to a snap7 server) live in
//! `interop_cotp_cli.rs`, a test of the cli package.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use proto_core::cotp::{DisconnectReason, TpduSize};
use proto_net::cotp::{Error, ListenOptions, Listener};
use proto_tests::peers::{peer_python, scripts, LiveCapture, Side};
use serde_json::Value;

/// Hard limit on any one peer process.
const PEER_LIMIT: Duration = Duration::from_secs(60);

/// What our side of an accepted connection reported.
#[derive(Debug)]
struct Accepted {
    tpdu_size: TpduSize,
    calling: Option<String>,
    called: Option<String>,
    /// Messages echoed before the connection ended.
    echoed: Vec<usize>,
    /// How the connection ended.
    end: String,
}

fn listen_options() -> ListenOptions {
    ListenOptions {
        local_tsap: Some("0102".parse().unwrap()),
        max_message_size: 4 << 20,
        timeout: Some(Duration::from_secs(20)),
        ..ListenOptions::default()
    }
}

/// A listener on an ephemeral port that accepts one connection and echoes until it
/// ends; the receiver yields what it saw (or the accept error).
fn echo_once(opts: ListenOptions) -> (u16, mpsc::Receiver<Result<Accepted, Error>>) {
    let listener = Listener::bind("127.0.0.1:0", opts).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let result = listener.accept().map(|(mut conn, _)| {
            let core = conn.core();
            let mut seen = Accepted {
                tpdu_size: core.tpdu_size(),
                calling: core.calling_tsap().map(ToString::to_string),
                called: core.called_tsap().map(ToString::to_string),
                echoed: Vec::new(),
                end: String::new(),
            };
            let end = loop {
                match conn.recv_data() {
                    Ok(msg) => {
                        if let Err(e) = conn.send_data(&msg) {
                            break e;
                        }
                        seen.echoed.push(msg.len());
                    }
                    Err(e) => break e,
                }
            };
            seen.end = end.to_string();
            seen
        });
        let _ = tx.send(result);
    });
    (port, rx)
}

fn arr(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

#[test]
#[ignore = "needs icspacket and tshark"]
fn icspacket_client_echo_through_our_listener() {
    let Some(py) = peer_python("icspacket") else {
        return;
    };
    let started = Instant::now();
    let (port, accepted) = echo_once(listen_options());
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    let sizes = [1usize, 1021, 1022, 100 * 1024];
    let list = sizes.map(|n| n.to_string()).join(",");
    let out = py
        .run_json(
            scripts::ICSPACKET_ECHO,
            &["127.0.0.1", &port.to_string(), &list],
            PEER_LIMIT,
        )
        .unwrap();
    let ours = accepted
        .recv_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap();
    let wire = capture.finish(Side::Server).unwrap();
    eprintln!("[icspacket→listener] peer: {out}\n[icspacket→listener] ours: {ours:?}");

    // Both ends agree on the negotiation.
    assert_eq!(out["tpdu_size"], 1024);
    assert_eq!(ours.tpdu_size, TpduSize::S1024);
    assert_eq!(ours.calling.as_deref(), Some("0100"));
    assert_eq!(ours.called.as_deref(), Some("0102"));
    // Every message came back intact.
    let echo = arr(&out, "echo");
    assert_eq!(echo.len(), sizes.len());
    for (e, n) in echo.iter().zip(sizes) {
        assert_eq!(e["len"], n);
        assert_eq!(e["got"], n, "{e}");
        assert_eq!(e["equal"], true, "{e}");
    }
    assert_eq!(ours.echoed, sizes);

    // The wire, as tshark sees it.
    wire.assert_ours_clean("icspacket→listener").unwrap();
    let cc = wire.first_cotp(true, 0x0d).expect("our CC on the wire");
    assert_eq!(cc.uint("cotp.tpdu_size"), Some(1024));
    assert_eq!(cc.first("cotp.src-tsap-bytes"), Some("01:00"));
    assert_eq!(cc.first("cotp.dst-tsap-bytes"), Some("01:02"));
    // No TPDU above the negotiated size: TPKT length = 4 + TPDU (3 + 1021 for a full DT).
    for ours in [true, false] {
        assert_eq!(
            wire.tpkt_lengths(ours).iter().max(),
            Some(&1028),
            "ours: {ours}"
        );
    }
    // 1 + 1 + 2 + 101 DTs each way (100 KiB = 100 full DTs of 1021 bytes + 300).
    let dts = |ours| wire.cotp_types(ours).iter().filter(|&&t| t == 0x0f).count();
    assert_eq!(dts(true), 1 + 1 + 2 + 101, "our DTs");
    assert_eq!(dts(false), 1 + 1 + 2 + 101, "peer's DTs");
    eprintln!(
        "[icspacket→listener] done in {:?}; per message (ms): {}",
        started.elapsed(),
        echo.iter()
            .map(|e| format!("{}B {}", e["len"], e["ms"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
#[ignore = "needs icspacket and tshark"]
fn icspacket_client_refused_by_tsap() {
    let Some(py) = peer_python("icspacket") else {
        return;
    };
    let (port, accepted) = echo_once(listen_options());
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    let out = py
        .run_json(
            scripts::ICSPACKET_CONNECT,
            &["127.0.0.1", &port.to_string(), "0199"],
            PEER_LIMIT,
        )
        .unwrap();
    let ours = accepted.recv_timeout(Duration::from_secs(20)).unwrap();
    let wire = capture.finish(Side::Server).unwrap();
    eprintln!("[icspacket refused] peer: {out}\n[icspacket refused] ours: {ours:?}");
    assert_eq!(out["refused"], true, "{out}");
    assert_eq!(out["reason"], 3, "UNKNOWN_ADDRESS: {out}");
    assert!(
        out["error"].as_str().unwrap().contains("UNKNOWN_ADDRESS"),
        "{out}"
    );
    assert!(ours.is_err(), "{ours:?}");

    wire.assert_ours_clean("icspacket refused").unwrap();
    let dr = wire.first_cotp(true, 0x08).expect("our DR on the wire");
    assert_eq!(
        dr.uint("cotp.cause"),
        Some(u64::from(DisconnectReason::ADDRESS_UNKNOWN.0))
    );
    assert_eq!(wire.cotp_types(true), [0x08], "we send only the DR");
}

#[test]
#[ignore = "needs python-snap7 and tshark"]
fn snap7_client_handshake_and_echo_through_our_listener() {
    let Some(py) = peer_python("snap7") else {
        return;
    };
    let (port, accepted) = echo_once(listen_options());
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    // python-snap7 sends one DT per call and never reassembles: stay within one TPDU.
    let sizes = [1usize, 240, 1021];
    let list = sizes.map(|n| n.to_string()).join(",");
    let out = py
        .run_json(
            scripts::SNAP7_CLIENT,
            &["127.0.0.1", &port.to_string(), &list],
            PEER_LIMIT,
        )
        .unwrap();
    let ours = accepted
        .recv_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap();
    let wire = capture.finish(Side::Server).unwrap();
    eprintln!("[snap7→listener] peer: {out}\n[snap7→listener] ours: {ours:?}");

    // What both sides report about the negotiation.
    assert_eq!(out["pdu_size"], 1024, "snap7's negotiated size");
    assert_eq!(ours.tpdu_size, TpduSize::S1024);
    assert_eq!(ours.calling.as_deref(), Some("0100"));
    assert_eq!(ours.called.as_deref(), Some("0102"));
    for (e, n) in arr(&out, "echo").iter().zip(sizes) {
        assert_eq!(
            (e["got"].clone(), e["equal"].clone()),
            (n.into(), true.into())
        );
    }
    assert_eq!(ours.echoed, sizes);
    // snap7 ends with a DR (reason 0): we see a disconnect, not an error.
    assert!(ours.end.contains("disconnect"), "{}", ours.end);

    wire.assert_ours_clean("snap7→listener").unwrap();
    let cr = wire.first_cotp(false, 0x0e).expect("snap7's CR");
    assert_eq!(cr.uint("cotp.tpdu_size"), Some(1024));
    let cc = wire.first_cotp(true, 0x0d).expect("our CC");
    assert_eq!(cc.uint("cotp.tpdu_size"), Some(1024));
    assert_eq!(cc.first("cotp.src-tsap-bytes"), Some("01:00"));
    assert_eq!(cc.first("cotp.dst-tsap-bytes"), Some("01:02"));
    assert_eq!(
        wire.cotp_types(false).last(),
        Some(&0x08),
        "snap7 ends with DR"
    );
    eprintln!("[snap7→listener] peer run {} ms", out["ms"]);
}

/// python-snap7 neither segments nor reassembles: a 2000-byte message goes out as one
/// DT above the negotiated TPDU size. proto accepts it (lenient receive, bounded by the
/// message size limit) and echoes it correctly segmented; snap7 returns only the first
/// DT (1021 bytes). Pins the quirk documented in docs/interop.md.
#[test]
#[ignore = "needs python-snap7 and tshark"]
fn snap7_oversize_dt_is_accepted_and_snap7_reads_one_dt() {
    let Some(py) = peer_python("snap7") else {
        return;
    };
    let (port, accepted) = echo_once(listen_options());
    let Some(capture) = LiveCapture::start(port).unwrap() else {
        return;
    };
    let out = py
        .run_json(
            scripts::SNAP7_CLIENT,
            &["127.0.0.1", &port.to_string(), "2000"],
            PEER_LIMIT,
        )
        .unwrap();
    let ours = accepted
        .recv_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap();
    let wire = capture.finish(Side::Server).unwrap();
    eprintln!("[snap7 oversize DT] peer: {out}\n[snap7 oversize DT] ours: {ours:?}");
    assert_eq!(ours.echoed, [2000], "we took the whole oversize DT");
    let e = &arr(&out, "echo")[0];
    assert_eq!(e["got"], 1021, "snap7 reads one DT only: {e}");
    wire.assert_ours_clean("snap7 oversize DT").unwrap();
    // The peer's single DT: TPKT 4 + DT header 3 + 2000. Ours: 1021 + 979.
    assert!(wire.tpkt_lengths(false).contains(&2007));
    let our_dts: Vec<u64> = wire
        .tpkt_lengths(true)
        .into_iter()
        .filter(|&l| l > 22)
        .collect();
    assert_eq!(our_dts, [1028, 986]);
}
