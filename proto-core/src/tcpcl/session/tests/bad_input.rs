//! Hostile or broken input (RFC 9174 §5.1.2 and robustness): MSG_REJECT, huge length
//! fields, random bytes. Nothing panics, hangs or grows without bound.

use super::*;
use crate::tcpcl::{
    CloseReason, MsgReject, MsgRejectReason, ProtocolError, XferAck, XferRefuse, XferRefuseReason,
};
use proptest::prelude::*;

#[test]
fn unknown_message_type_is_rejected_and_the_connection_closed() {
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&[0x2a, 1, 2, 3]);
    assert_eq!(
        b.out_msgs(),
        ["MSG_REJECT reason=message type unknown rejected_header=0x2a"]
    );
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::ProtocolError(ProtocolError::UnknownMessageType {
                message_type: 0x2a
            })
        }]
    );
}

#[test]
fn unexpected_messages_are_rejected_and_the_session_continues() {
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&sess_init("dtn://again/", 0, 1, &[]));
    assert_eq!(
        b.out_msgs(),
        ["MSG_REJECT reason=message unexpected rejected_header=0x07"]
    );
    // Acks and refusals for transfers we never started.
    b.feed(&msg(XferAck {
        flags: SegmentFlags::END,
        transfer_id: 9,
        acked_len: 1,
    }
    .into()));
    b.feed(&msg(XferRefuse {
        reason: XferRefuseReason::UNKNOWN,
        transfer_id: 9,
    }
    .into()));
    assert_eq!(
        b.out_msgs(),
        [
            "MSG_REJECT reason=message unexpected rejected_header=0x02",
            "MSG_REJECT reason=message unexpected rejected_header=0x03"
        ]
    );
    assert!(b.s.is_established());
    // Transfer traffic before the session is established.
    let mut c = Raw::new(config("dtn://c/"), Side::Passive);
    c.feed(&contact(0));
    let _ = c.out();
    c.feed(&segment(START | END, 0, &[], b"early"));
    assert_eq!(
        c.out_msgs(),
        ["MSG_REJECT reason=message unexpected rejected_header=0x01"]
    );
    assert!(c.delivered.is_empty());
    c.feed(&sess_init("dtn://a/", 0, 10, &[]));
    assert!(c.s.is_established());
}

#[test]
fn acks_beyond_what_was_sent_are_rejected() {
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    let id = a.s.start_transfer(None).unwrap();
    assert_eq!(a.send_msgs(&[(id, &[1; 10], false)]).len(), 1);
    a.feed(&msg(XferAck {
        flags: SegmentFlags::START,
        transfer_id: id,
        acked_len: u64::MAX,
    }
    .into()));
    assert_eq!(
        a.out_msgs(),
        ["MSG_REJECT reason=message unexpected rejected_header=0x02"]
    );
}

#[test]
fn received_msg_reject_is_reported() {
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&msg(MsgReject {
        reason: MsgRejectReason::UNSUPPORTED,
        rejected_header: 4,
    }
    .into()));
    assert_eq!(
        b.events(),
        [Event::MessageRejected {
            message_type: 4,
            reason: MsgRejectReason::UNSUPPORTED
        }]
    );
    assert!(b.out().is_empty());
}

#[test]
fn huge_length_fields_do_not_panic_or_allocate() {
    // A segment declaring 2^64-1 bytes: refused (over our MRU), its data skipped.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let mut seg = segment(START, 0, &[], &[]);
    let n = seg.len();
    seg[n - 8..].copy_from_slice(&u64::MAX.to_be_bytes());
    seg.extend_from_slice(&[0; 1000]);
    assert_eq!(b.feed(&seg), seg.len());
    assert_eq!(
        b.out_msgs(),
        ["XFER_REFUSE reason=not acceptable transfer_id=0"]
    );
    // A SESS_INIT with maximal length fields before establishment.
    let mut c = Raw::new(config("dtn://c/"), Side::Passive);
    c.feed(&contact(0));
    let _ = c.out();
    let mut init = vec![0x07, 0, 0];
    init.extend_from_slice(&[0xff; 16]);
    init.extend_from_slice(&[0xff, 0xff]);
    c.feed(&init);
    assert!(c.s.is_closed() || c.s.state() == crate::tcpcl::State::Closing);
    assert_eq!(c.out_msgs(), ["SESS_TERM flags=0 reason=contact failure"]);
    // Transfer extension block larger than we buffer.
    let mut d = passive_established(config("dtn://d/"), 0, 1000);
    let mut big = vec![0x01, START];
    big.extend_from_slice(&0u64.to_be_bytes());
    big.extend_from_slice(&u32::MAX.to_be_bytes());
    d.feed(&big);
    assert_eq!(
        d.out_msgs(),
        ["SESS_TERM flags=0 reason=resource exhaustion"]
    );
}

#[test]
fn input_pauses_when_the_caller_does_not_drain() {
    let mut b = passive_established(
        SessionConfig {
            max_pending_acks: 4,
            ..config("dtn://b/")
        },
        0,
        1000,
    );
    let mut input = vec![];
    for id in 0..50 {
        input.extend(segment(START | END, id, &[], b"x"));
    }
    let used = b.feed(&input);
    assert!(
        used < input.len(),
        "must stop instead of queueing without bound"
    );
    let mut total = used;
    for _ in 0..100 {
        let _ = b.out();
        let _ = b.events();
        total += b.feed(&input[total..]);
        if total == input.len() {
            break;
        }
    }
    assert_eq!(total, input.len());
    assert_eq!(b.delivered.len(), 50);
}

fn drive_random(side: Side, established: bool, bytes: &[u8], chunk: usize) {
    let mut r = match (side, established) {
        (Side::Passive, true) => passive_established(config("dtn://b/"), 1, 100),
        (Side::Active, true) => active_established(config("dtn://a/"), 1, 100),
        (s, false) => Raw::new(config("dtn://x/"), s),
    };
    let mut off = 0;
    let mut stalls = 0;
    while off < bytes.len() && stalls < 3 {
        let end = (off + chunk).min(bytes.len());
        let used = r.feed(&bytes[off..end]);
        off += used;
        let _ = r.out();
        let _ = r.events();
        if used == 0 {
            stalls += 1;
        }
        r.advance(Duration::from_millis(700));
    }
    r.s.handle_eof(r.now);
    assert!(r.s.is_closed());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
        passive in any::<bool>(),
        established in any::<bool>(),
    ) {
        let side = if passive { Side::Passive } else { Side::Active };
        drive_random(side, established, &bytes, chunk);
        // Also behind a valid contact header, where message parsing starts.
        let mut v = contact(0);
        v.extend_from_slice(&bytes);
        drive_random(side, false, &v, chunk);
    }

    #[test]
    fn random_message_sequences_never_panic(
        msgs in proptest::collection::vec((1u8..8, any::<u8>(), 0u64..4, 0usize..40), 0..30),
        chunk in 1usize..64,
    ) {
        let mut bytes = vec![];
        for (t, flags, id, len) in msgs {
            match t {
                1 => bytes.extend(segment(flags & 3, id, &[], &vec![0xab; len])),
                2 => bytes.extend(msg(XferAck { flags: SegmentFlags(flags), transfer_id: id, acked_len: len as u64 }.into())),
                3 => bytes.extend(msg(XferRefuse { reason: XferRefuseReason(flags), transfer_id: id }.into())),
                4 => bytes.push(0x04),
                5 => bytes.extend([0x05, flags & 1, flags]),
                6 => bytes.extend([0x06, flags, flags]),
                _ => bytes.extend(sess_init("dtn://z/", 0, len as u64, &[])),
            }
        }
        drive_random(Side::Passive, true, &bytes, chunk);
        drive_random(Side::Active, true, &bytes, chunk);
    }
}
