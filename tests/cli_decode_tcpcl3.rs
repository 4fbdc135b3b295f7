//! `proto decode tcpcl` on TCPCLv3 (RFC 7242) streams: the contact header decides the
//! version, and every v3 message comes out in the same tree and JSON shape as v4.
//! Runs the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::ChildGuard;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A v3 contact header (acks, refusal, LENGTH; keepalive 30; EID dtn://a/), then one
/// of each message, written out by hand from RFC 7242.
const STREAM: &str = concat!(
    "64746e21030d001e08",
    "64746e3a2f2f612f", // contact header
    "60",
    "02", // LENGTH 2
    "13",
    "02",
    "6869", // DATA_SEGMENT S|E, 2 bytes "hi"
    "20",
    "02", // ACK_SEGMENT 2
    "32", // REFUSE_BUNDLE, no resources
    "40", // KEEPALIVE
    "53",
    "02",
    "812c", // SHUTDOWN R|D, busy, reconnect after 172 s
);

fn decode(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["decode", "tcpcl"];
    all.extend_from_slice(args);
    let r = ChildGuard::run(
        Path::new(env!("CARGO_BIN_EXE_proto")),
        &all,
        Duration::from_secs(20),
    );
    (r.code(), r.stdout, r.stderr)
}

#[test]
fn v3_stream_decodes_after_its_contact_header() {
    let (code, out, err) = decode(&[STREAM]);
    assert_eq!(code, Some(0), "{err}");
    for want in [
        "contact header, TCPCLv3, 17 bytes",
        "flags: ENA_ACK|ENA_REFUSE|ENA_LENGTH (0x0d)",
        "eid: \"dtn://a/\"",
        "frame: LENGTH, 2 bytes",
        "bundle_length: 2",
        "frame: DATA_SEGMENT, 4 bytes",
        "flags: S|E (0x03)",
        "data: 6869",
        "acked_length: 2",
        "reason: no resources (0x02)",
        "frame: KEEPALIVE, 1 byte",
        "flags: R|D (0x03)",
        "reason: busy (0x02)",
        "reconnection_delay: 172 s",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn v3_stream_as_json() {
    let (code, out, err) = decode(&["--json", STREAM]);
    assert_eq!(code, Some(0), "{err}");
    let frames: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let types: Vec<&str> = frames[1..]
        .iter()
        .map(|f| f["message_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        [
            "LENGTH",
            "DATA_SEGMENT",
            "ACK_SEGMENT",
            "REFUSE_BUNDLE",
            "KEEPALIVE",
            "SHUTDOWN"
        ]
    );
    assert_eq!(frames[0]["version"], 3);
    assert_eq!(frames[6]["reconnection_delay"], 172);
    assert_eq!(frames[2]["flags"]["names"], serde_json::json!(["S", "E"]));
}

#[test]
fn v3_truncation_and_unknown_types_are_errors() {
    let head = "64746e2103000000";
    let with_eid = format!("{head}00");
    // A DATA_SEGMENT that declares more than the input holds.
    let (code, _, err) = decode(&[&format!("{with_eid}1305aa")]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("DATA_SEGMENT truncated: 4 more bytes needed"),
        "{err}"
    );
    // Type 0x7 is not a v3 message.
    let (code, _, err) = decode(&[&format!("{with_eid}70")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown message type 0x07"), "{err}");
    // An SDNV past 64 bits.
    let (code, _, err) = decode(&[&format!("{with_eid}20ffffffffffffffffffff7f")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not fit in 64 bits"), "{err}");
}
