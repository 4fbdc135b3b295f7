//! tshark's TCPCL dissector on every TCPCLv3 (RFC 7242) frame proto sends, built with
//! proto_core's v3 encoders: the contact header and each message, in a conversation as
//! two sessions would have it.
//!
//! tshark 4.0 has known quirks in its v3 dissector, pinned here instead of hidden: it
//! does not know LENGTH (type 6) and flags it; it reads the SHUTDOWN reconnection delay
//! as a fixed 16-bit field instead of an SDNV (RFC 7242 §6.1), so a delay encoded in
//! other than two octets desynchronises it (ours here is a two-octet SDNV); and it
//! reads REFUSE_BUNDLE's reason from a second octet although RFC 7242 §5.4 puts it in
//! the header's low nibble (a one-octet message), so a REFUSE_BUNDLE that ends a TCP
//! segment is "malformed" to it. Everything else is checked.
//!
//! `#[ignore = "needs tshark"]`, like the other tshark tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_core::tcpcl::v3::{DataFlags, Message, RefuseReason, Shutdown, ShutdownReason};
use proto_core::tcpcl::{ContactHeaderV3, V3ContactFlags};
use proto_tests::pcap::Dir::{self, Client, Server};
use proto_tests::tshark::check_tcpcl;

fn enc(m: Message) -> Vec<u8> {
    let mut b = vec![0u8; Message::MAX_LEN];
    let n = m.encode(&mut b).unwrap();
    b.truncate(n);
    b
}

fn contact(eid: &str) -> Vec<u8> {
    let h = ContactHeaderV3 {
        flags: V3ContactFlags(0x0d),
        keepalive: 30,
        eid: eid.as_bytes(),
    };
    let mut b = vec![0u8; h.encoded_len()];
    h.encode(&mut b).unwrap();
    b
}

fn data(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = enc(Message::DataSegment {
        flags: DataFlags(flags),
        len: payload.len() as u64,
    });
    b.extend_from_slice(payload);
    b
}

#[test]
#[ignore = "needs tshark"]
fn tshark_reads_our_v3_frames() {
    // A two-octet SDNV delay (300 s), which tshark's fixed u16 happens to read as
    // 0x822c: the value differs, the framing holds.
    let shutdown = enc(Message::Shutdown(Shutdown {
        reason: Some(ShutdownReason::BUSY),
        delay: Some(300),
    }));
    let msgs: Vec<(Dir, Vec<u8>)> = vec![
        (Client, contact("dtn://client/")),
        (Server, contact("dtn://server/")),
        (Client, data(0x03, b"hello")),
        (Server, enc(Message::AckSegment { len: 5 })),
        (Client, data(0x02, b"abcd")),
        (Server, enc(Message::AckSegment { len: 4 })),
        (Client, data(0x01, b"efgh")),
        (Server, enc(Message::AckSegment { len: 8 })),
        (
            Server,
            enc(Message::RefuseBundle {
                reason: RefuseReason::NO_RESOURCES,
            }),
        ),
        (Client, enc(Message::Keepalive)),
        (Client, enc(Message::Shutdown(Shutdown::default()))),
        (Server, shutdown),
    ];
    let Some(report) = check_tcpcl(&msgs).unwrap() else {
        return;
    };
    let packets: Vec<_> = report.payload_packets().collect();
    assert_eq!(packets.len(), msgs.len(), "one frame per message");
    for (p, (dir, _)) in packets.iter().zip(&msgs) {
        assert_eq!(p.dir(), Some(*dir));
        assert!(p.has_layer("tcpcl"), "frame {} not TCPCL", p.number);
    }
    let f = |i: usize, field: &str| -> Vec<String> {
        packets[i]
            .values(field)
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    for p in &packets[..2] {
        assert_eq!(p.values("tcpcl.contact_hdr.version"), ["3"], "{p:?}");
        assert_eq!(p.values("tcpcl.contact_hdr.keep_alive"), ["30"]);
    }
    assert_eq!(f(0, "tcpcl.contact_hdr.local_eid"), ["dtn://client/"]);
    assert_eq!(f(1, "tcpcl.contact_hdr.local_eid"), ["dtn://server/"]);
    assert_eq!(f(2, "tcpcl.data.length"), ["5"]);
    assert_eq!(f(3, "tcpcl.ack.length"), ["5"]);
    assert_eq!(f(4, "tcpcl.data.length"), ["4"]);
    assert_eq!(f(7, "tcpcl.ack.length"), ["8"]);
    // Every frame except the pinned REFUSE_BUNDLE one decodes without a problem.
    let problems: Vec<String> = report
        .problems(proto_tests::tshark::Severity::Note, &[])
        .into_iter()
        .map(|p| p.to_string())
        .collect();
    let numbers: Vec<u32> = packets.iter().map(|p| p.number).collect();
    eprintln!("tshark notes: {problems:#?}; payload frames {numbers:?}");
    assert!(
        !problems.is_empty(),
        "tshark now reads a one-octet REFUSE_BUNDLE: drop this pin"
    );
    for p in &problems {
        assert!(
            p.contains(&format!("frame {} ", packets[8].number)),
            "unexpected tshark finding outside the pinned quirk: {p}"
        );
    }
}

/// LENGTH, which tshark 4.0 does not know: pinned so a fixed tshark shows up here.
#[test]
#[ignore = "needs tshark"]
fn tshark_does_not_know_v3_length() {
    let msgs: Vec<(Dir, Vec<u8>)> = vec![
        (Client, contact("dtn://client/")),
        (Server, contact("dtn://server/")),
        (Client, enc(Message::Length { len: 5 })),
    ];
    let Some(report) = check_tcpcl(&msgs).unwrap() else {
        return;
    };
    let problems: Vec<String> = report
        .problems(proto_tests::tshark::Severity::Note, &[])
        .into_iter()
        .map(|p| p.to_string())
        .collect();
    eprintln!("tshark on LENGTH: {problems:#?}");
    assert!(
        !problems.is_empty(),
        "tshark now decodes LENGTH: drop this pin and check it in tshark_reads_our_v3_frames"
    );
}
