//! Cross-checks wire bytes against tshark's COTP and TCPCL dissectors.
//!
//! Every test builds a pcap of one TCP conversation with
//! [`proto_tests::pcap::PcapBuilder`] (via [`check_cotp`] / [`check_tcpcl`]), runs
//! tshark 4.x over it and asserts on the decoded field values. Without tshark the
//! tests print `skipping: tshark not found` and pass, unless `PROTO_REQUIRE_PEERS=1`.
//! `PROTO_KEEP_PCAPS=1` keeps the captures for a look in Wireshark.
//!
//! # Expert items
//!
//! Only frames whose TCP payload is ours are asserted on
//! ([`TsharkReport::payload_packets`]). Expert info is judged by
//! [`TsharkReport::check_clean`], which fails on malformed frames and on any item of
//! note level or above except these, which are expected and benign:
//!
//! - `tcp.connection.syn`, `tcp.connection.synack` (chat): the synthesised handshake.
//! - `cotp.disconnect_request` (chat, "Disconnect Request(DR): 0x1 -> 0x1"): raised on
//!   every DR, good or bad; likewise `cotp.disconnect_confirm` on DC and
//!   `cotp.connection`.
//! - `tcpcl.v4.xfer_seg_no_relation` (note): raised on an XFER_SEGMENT that no XFER_ACK
//!   follows — expected only where a test deliberately sends no ACK (passed explicitly
//!   as `allowed` there). With single-pass dissection it is raised on every segment,
//!   which is why TCPCL runs two-pass.
//! - `tcpcl.v4.xfer_refuse_no_transfer` (note): an XFER_REFUSE for a transfer ID with no
//!   segment in the capture (a refusal before any data is legal, but tshark notes it).
//!
//! Anything else — `_ws.malformed`, `tcpcl.v4.unknown_message_type`,
//! `tcpcl.v4.sess_term_reply_flag`, checksum errors (IP/TCP checksum validation is
//! on) — fails the test.
//!
//! # Quirks of tshark 4.0 seen here
//!
//! - `cotp.type` is the TPDU code shifted right by four (`0x0e` for CR `0xE0`).
//! - A class-0 DR with user data is accepted silently: the user data shows up as a
//!   `data` layer, no expert item (ISO 8073 forbids DR user data in class 0, tshark
//!   does not check). The reason is `cotp.cause`.
//! - COTP data is offered to heuristic dissectors (T.125, S7comm, MMS, ...), which turn
//!   arbitrary test bytes into "malformed" frames; [`DissectOptions::cotp`] disables
//!   them.
//! - TSAPs are shown as strings when printable, else as `0x....`.
//! - The TCPCL SESS_TERM reason field is spelled `tcpcl.v4.ses_term.reason`.

use proto_tests::pcap::Dir::{self, Client, Server};
use proto_tests::tshark::{check_cotp, check_tcpcl, Packet, Severity, TsharkReport};

/// Decodes a hex string (whitespace allowed) into bytes; panics on a malformed
/// literal.
fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| unreachable!("bad hex {s:?}: {e}"))
}

/// The frames carrying our payloads, checked to be one per message.
fn payload_packets(report: &TsharkReport, sent: usize) -> Vec<&Packet> {
    let packets: Vec<&Packet> = report.payload_packets().collect();
    assert_eq!(packets.len(), sent, "one frame per message expected");
    packets
}

/// Asserts `field` has exactly `expected` as its values in `p`.
#[track_caller]
fn assert_field(p: &Packet, field: &str, expected: &[&str]) {
    assert_eq!(
        p.values(field),
        expected,
        "frame {} field {field}",
        p.number
    );
}

#[test]
fn harness_sanity() -> anyhow::Result<()> {
    cotp_sanity()?;
    tcpcl_sanity()
}

fn cotp_sanity() -> anyhow::Result<()> {
    let msgs: Vec<(Dir, Vec<u8>)> = vec![
        // CR: dst-ref 0, src-ref 1, class 0, TPDU size 1024, calling 0x0000, called 0x0001.
        (
            Client,
            hex("03000016 11 e0 0000 0001 00 c0010a c1020000 c2020001"),
        ),
        // CC: dst-ref 1, src-ref 1, TPDU size 1024, calling 0x0100, called 0x0101.
        (
            Server,
            hex("03000016 11 d0 0001 0001 00 c0010a c1020100 c2020101"),
        ),
        // DT "hello" with EOT.
        (Client, hex("0300000c 02 f0 80 68656c6c6f")),
        // DT "he" without EOT, then DT "llo" with EOT: tshark reassembles "hello".
        (Client, hex("03000009 02 f0 00 6865")),
        (Client, hex("0300000a 02 f0 80 6c6c6f")),
        // Two TPKT frames in one TCP segment: DT "hi" + DT "!" (two cotp PDUs).
        (Server, hex("03000009 02 f0 80 6869  03000008 02 f0 80 21")),
        // ER: dst-ref 1, reject cause 2 (invalid parameter).
        (Server, hex("03000009 04 70 0001 02")),
        // DR: dst-ref 1, src-ref 1, reason 0x80 (normal), plus one byte of user data.
        (Client, hex("0300000c 06 80 0001 0001 80 00")),
    ];
    let Some(report) = check_cotp(&msgs)? else {
        return Ok(());
    };
    report.check_clean(&[])?;
    let p = payload_packets(&report, msgs.len());

    for (pkt, (dir, _)) in p.iter().zip(&msgs) {
        assert_eq!(pkt.dir(), Some(*dir));
        assert!(pkt.has_layer("cotp"), "frame {} not COTP", pkt.number);
        assert_eq!(pkt.first("tpkt.version"), Some("3"));
    }

    let cr = p[0];
    assert_field(cr, "tpkt.length", &["22"]);
    assert_field(cr, "cotp.type", &["0x0e"]);
    assert_field(cr, "cotp.destref", &["0x0000"]);
    assert_field(cr, "cotp.srcref", &["0x0001"]);
    assert_field(cr, "cotp.class", &["0"]);
    assert_field(cr, "cotp.tpdu_size", &["1024"]);
    assert_field(cr, "cotp.parameter_code", &["0xc0", "0xc1", "0xc2"]);
    assert_field(cr, "cotp.src-tsap", &["0x0000"]);
    assert_field(cr, "cotp.dst-tsap-bytes", &["00:01"]);

    let cc = p[1];
    assert_field(cc, "cotp.type", &["0x0d"]);
    assert_field(cc, "cotp.destref", &["0x0001"]);
    assert_field(cc, "cotp.srcref", &["0x0001"]);
    assert_field(cc, "cotp.src-tsap", &["0x0100"]);
    assert_field(cc, "cotp.dst-tsap", &["0x0101"]);

    let dt = p[2];
    assert_field(dt, "cotp.type", &["0x0f"]);
    assert_field(dt, "cotp.eot", &["1"]);
    assert_field(dt, "cotp.tpdu-number", &["0x00"]);
    assert_field(dt, "data.data", &["68:65:6c:6c:6f"]);

    assert_field(p[3], "cotp.eot", &["0"]);
    assert!(!p[3].has("data.data"));
    assert_field(p[4], "cotp.eot", &["1"]);
    assert_field(p[4], "cotp.reassembled.length", &["5"]);
    assert_field(p[4], "data.data", &["68:65:6c:6c:6f"]);

    let two = p[5];
    assert_eq!(two.pdus("cotp").count(), 2);
    assert_eq!(two.pdus("tpkt").count(), 2);
    assert_field(two, "cotp.type", &["0x0f", "0x0f"]);
    assert_field(two, "tpkt.length", &["9", "8"]);

    let er = p[6];
    assert_field(er, "cotp.type", &["0x07"]);
    assert_field(er, "cotp.destref", &["0x0001"]);
    assert_field(er, "cotp.reject_cause", &["2"]);

    let dr = p[7];
    assert_field(dr, "cotp.type", &["0x08"]);
    assert_field(dr, "cotp.cause", &["128"]);
    assert_field(dr, "data.data", &["00"]);
    let expert: Vec<_> = dr.expert.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(expert, ["cotp.disconnect_request"]);
    Ok(())
}

fn tcpcl_sanity() -> anyhow::Result<()> {
    let contact = hex("64746e21 04 00");
    let msgs: Vec<(Dir, Vec<u8>)> = vec![
        (Client, contact.clone()),
        (Server, contact),
        // SESS_INIT: keepalive 10, segment MRU 0xa00000, transfer MRU max, "dtn://client/".
        (
            Client,
            hex("07 000a 0000000000a00000 ffffffffffffffff 000d 64746e3a2f2f636c69656e742f 00000000"),
        ),
        (
            Server,
            hex("07 001e 0000000000100000 0000000040000000 000d 64746e3a2f2f7365727665722f 00000000"),
        ),
        // XFER_SEGMENT START|END, transfer 1, no extensions, "hello".
        (
            Client,
            hex("01 03 0000000000000001 00000000 0000000000000005 68656c6c6f"),
        ),
        // XFER_ACK START|END, transfer 1, 5 bytes.
        (Server, hex("02 03 0000000000000001 0000000000000005")),
        // Transfer 2 in two segments: START with a Transfer Length extension (total 8),
        // then END.
        (
            Client,
            hex("01 02 0000000000000002 0000000d 01 0001 0008 0000000000000008 0000000000000004 61626364"),
        ),
        (Server, hex("02 02 0000000000000002 0000000000000004")),
        (
            Client,
            hex("01 01 0000000000000002 0000000000000004 65666768"),
        ),
        (Server, hex("02 01 0000000000000002 0000000000000008")),
        // Two KEEPALIVEs in one TCP segment.
        (Client, hex("04 04")),
        // MSG_REJECT: reason 1 (type unknown), rejected header 0xff.
        (Server, hex("06 01 ff")),
        // XFER_REFUSE: reason 3 (completed), transfer 2.
        (Server, hex("03 03 0000000000000002")),
        // SESS_TERM reason 0, then the reply.
        (Client, hex("05 00 00")),
        (Server, hex("05 01 00")),
    ];
    let Some(report) = check_tcpcl(&msgs)? else {
        return Ok(());
    };
    report.check_clean(&[])?;
    let p = payload_packets(&report, msgs.len());
    for (pkt, (dir, _)) in p.iter().zip(&msgs) {
        assert_eq!(pkt.dir(), Some(*dir));
        assert!(pkt.has_layer("tcpcl"), "frame {} not TCPCL", pkt.number);
    }

    for ch in &p[..2] {
        assert_field(ch, "tcpcl.contact_hdr.magic", &["64:74:6e:21"]);
        assert_field(ch, "tcpcl.contact_hdr.version", &["4"]);
        assert_field(ch, "tcpcl.v4.chdr.flags", &["0x00"]);
        assert_field(ch, "tcpcl.v4.chdr.flags.can_tls", &["0"]);
        assert_field(ch, "tcpcl.v4.negotiated.use_tls", &["0"]);
    }

    let init = p[2];
    assert_field(init, "tcpcl.v4.mhdr.type", &["0x07"]);
    assert_field(init, "tcpcl.v4.sess_init.keepalive", &["10"]);
    assert_field(init, "tcpcl.v4.sess_init.seg_mru", &["10485760"]);
    assert_field(
        init,
        "tcpcl.v4.sess_init.xfer_mru",
        &["18446744073709551615"],
    );
    assert_field(init, "tcpcl.v4.sess_init.nodeid_len", &["13"]);
    assert_field(init, "tcpcl.v4.sess_init.nodeid_data", &["dtn://client/"]);
    assert_field(init, "tcpcl.v4.sess_init.extlist_len", &["0"]);
    // Two-pass: negotiated keepalive is the minimum of both sides.
    assert_field(init, "tcpcl.v4.negotiated.keepalive", &["10"]);
    let init2 = p[3];
    assert_field(init2, "tcpcl.v4.sess_init.keepalive", &["30"]);
    assert_field(init2, "tcpcl.v4.sess_init.seg_mru", &["1048576"]);
    assert_field(init2, "tcpcl.v4.sess_init.xfer_mru", &["1073741824"]);
    assert_field(init2, "tcpcl.v4.sess_init.nodeid_data", &["dtn://server/"]);

    let seg = p[4];
    assert_field(seg, "tcpcl.v4.mhdr.type", &["0x01"]);
    assert_field(seg, "tcpcl.v4.xfer_flags", &["0x03"]);
    assert_field(seg, "tcpcl.v4.xfer_flags.start", &["1"]);
    assert_field(seg, "tcpcl.v4.xfer_flags.end", &["1"]);
    assert_field(seg, "tcpcl.v4.xfer_id", &["0x0000000000000001"]);
    assert_field(seg, "tcpcl.v4.xfer_segment.extlist_len", &["0"]);
    assert_field(seg, "tcpcl.v4.xfer_segment.data_len", &["5"]);
    assert_field(seg, "tcpcl.v4.xfer_segment.data", &["68:65:6c:6c:6f"]);
    assert_eq!(
        seg.uint("tcpcl.v4.xfer_segment.related_ack"),
        Some(u64::from(p[5].number))
    );

    let ack = p[5];
    assert_field(ack, "tcpcl.v4.mhdr.type", &["0x02"]);
    assert_field(ack, "tcpcl.v4.xfer_flags", &["0x03"]);
    assert_field(ack, "tcpcl.v4.xfer_id", &["0x0000000000000001"]);
    assert_field(ack, "tcpcl.v4.xfer_ack.ack_len", &["5"]);

    let start = p[6];
    assert_field(start, "tcpcl.v4.xfer_flags", &["0x02"]);
    assert_field(start, "tcpcl.v4.xfer_segment.extlist_len", &["13"]);
    assert_field(start, "tcpcl.v4.xferext.type", &["0x0001"]);
    assert_field(start, "tcpcl.v4.xferext.transfer_length.total_len", &["8"]);
    assert_field(start, "tcpcl.v4.xfer_segment.data_len", &["4"]);
    let end = p[8];
    assert_field(end, "tcpcl.v4.xfer_flags", &["0x01"]);
    assert_field(end, "tcpcl.v4.xfer_id", &["0x0000000000000002"]);
    assert_field(end, "tcpcl.v4.xfer_segment.seen_len", &["8"]);
    assert_field(end, "tcpcl.xfer.reassembled.length", &["8"]);
    assert_field(p[9], "tcpcl.v4.xfer_ack.ack_len", &["8"]);

    let keepalives = p[10];
    assert_field(keepalives, "tcpcl.v4.mhdr.type", &["0x04", "0x04"]);

    let reject = p[11];
    assert_field(reject, "tcpcl.v4.mhdr.type", &["0x06"]);
    assert_field(reject, "tcpcl.v4.msg_reject.reason", &["1"]);
    assert_field(reject, "tcpcl.v4.msg_reject.head", &["0xff"]);

    let refuse = p[12];
    assert_field(refuse, "tcpcl.v4.mhdr.type", &["0x03"]);
    assert_field(refuse, "tcpcl.v4.xfer_refuse.reason", &["3"]);
    assert_field(refuse, "tcpcl.v4.xfer_id", &["0x0000000000000002"]);

    let term = p[13];
    assert_field(term, "tcpcl.v4.mhdr.type", &["0x05"]);
    assert_field(term, "tcpcl.v4.sess_term.flags", &["0x00"]);
    assert_field(term, "tcpcl.v4.sess_term.flags.reply", &["0"]);
    assert_field(term, "tcpcl.v4.ses_term.reason", &["0"]);
    let reply = p[14];
    assert_field(reply, "tcpcl.v4.sess_term.flags.reply", &["1"]);
    assert_eq!(
        reply.uint("tcpcl.v4.ses_term.related"),
        Some(u64::from(term.number))
    );
    Ok(())
}

/// A 150 000-byte XFER_SEGMENT is split over three TCP segments by the pcap builder
/// (with pure ACKs so the window is never exceeded); tshark reassembles it.
#[test]
fn large_payload_spans_tcp_segments() {
    const LEN: usize = 150_000;
    let mut seg = hex("01 03 0000000000000007 00000000");
    seg.extend_from_slice(&(LEN as u64).to_be_bytes());
    seg.resize(seg.len() + LEN, 0x41);
    let contact = hex("64746e21 04 00");
    let init = hex("07 000a 0000000000a00000 ffffffffffffffff 0000 00000000");
    let msgs: Vec<(Dir, Vec<u8>)> = vec![
        (Client, contact.clone()),
        (Server, contact),
        (Client, init.clone()),
        (Server, init),
        (Client, seg),
        (
            Server,
            hex("02 03 0000000000000007")
                .into_iter()
                .chain((LEN as u64).to_be_bytes())
                .collect(),
        ),
    ];
    let Some(report) = check_tcpcl(&msgs).expect("tshark run") else {
        return;
    };
    report.check_clean(&[]).expect("clean capture");
    let data_frames: Vec<&Packet> = report.payload_packets().collect();
    // 4 small messages + 3 TCP segments for the big one + the ACK.
    assert_eq!(data_frames.len(), 8);
    let big = data_frames[6];
    assert_field(big, "tcpcl.v4.xfer_segment.data_len", &["150000"]);
    assert_field(big, "tcpcl.v4.xfer_id", &["0x0000000000000007"]);
    assert_field(data_frames[7], "tcpcl.v4.xfer_ack.ack_len", &["150000"]);
}

/// The checker does catch bad bytes: a DR cut short inside its TPKT frame, an unknown
/// TCPCL message type.
///
/// (A TCPCL message truncated at the very end of the capture would *not* be caught:
/// tshark keeps it pending TCP reassembly and reports nothing. Tests therefore check
/// that every payload frame has the expected layer.)
#[test]
fn harness_reports_problems() {
    let Some(report) = check_cotp(&[(Client, hex("03000007 06 80 0001"))]).expect("tshark run")
    else {
        return;
    };
    assert!(report.check_clean(&[]).is_err(), "truncated DR accepted");

    let contact = hex("64746e21 04 00");
    let Some(report) = check_tcpcl(&[
        (Client, contact.clone()),
        (Server, contact),
        (Client, hex("0a")),
    ])
    .expect("tshark run") else {
        return;
    };
    let errors: Vec<_> = report
        .expert_items()
        .filter(|e| e.severity == Severity::Error)
        .map(|e| e.field.as_str())
        .collect();
    // A message other than SESS_INIT straight after the contact headers is also flagged.
    assert_eq!(
        errors,
        [
            "tcpcl.v4.unknown_message_type",
            "tcpcl.v4.sess_init_missing"
        ]
    );
    assert!(report.check_clean(&[]).is_err());
}
