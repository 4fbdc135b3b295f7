//! The send policy of `poll_transmit` (RFC 9174 §5.2): what goes on the wire next,
//! and the caller's sources.

use super::*;
use crate::tcpcl::{UsageError, XferAck, MAX_SEGMENT_HEAD};
use crate::testing::Side::B;

/// An active session whose peer's Segment MRU is 10, with `max_pending_acks`.
fn sender(max_pending_acks: usize) -> Raw {
    active_established(
        SessionConfig {
            max_pending_acks,
            ..config("dtn://a/")
        },
        0,
        10,
    )
}

fn ack(transfer_id: u64, acked_len: u64) -> Vec<u8> {
    msg(XferAck {
        flags: SegmentFlags::EMPTY,
        transfer_id,
        acked_len,
    }
    .into())
}

#[test]
fn control_messages_first_then_whole_transfers_in_id_order() {
    let mut a = sender(256);
    // Two XFER_ACKs wait to be written.
    a.feed(&segment(START | END, 0, &[], b"x"));
    a.feed(&segment(START | END, 1, &[], b"y"));
    let ids: Vec<u64> = (0..4).map(|_| a.s.start_transfer(None).unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    // Dropping transfer 0 moves transfer 3 to the front of the session's table: the
    // order on the wire must still be by transfer ID.
    a.s.abandon_transfer(0).unwrap();
    assert_eq!(a.s.current_outgoing(), Some(1));
    let (d1, d2) = ([1u8; 25], [2u8; 3]);
    let sources = [(3, &[][..], true), (2, &d2[..], true), (1, &d1[..], true)];
    assert_eq!(
        a.send_msgs(&sources),
        [
            "XFER_ACK flags=START|END transfer_id=0 acked_len=1",
            "XFER_ACK flags=START|END transfer_id=1 acked_len=1",
            "XFER_SEGMENT flags=START transfer_id=1 data_len=10",
            "XFER_SEGMENT flags=0 transfer_id=1 data_len=10",
            "XFER_SEGMENT flags=END transfer_id=1 data_len=5",
            "XFER_SEGMENT flags=START|END transfer_id=2 data_len=3",
            "XFER_SEGMENT flags=START|END transfer_id=3 data_len=0",
        ]
    );
    // One question per segment, only about the transfer being sent; none for the
    // control messages, none once nothing is left.
    assert_eq!(a.asked, [1, 1, 1, 2, 3]);
    assert_eq!(a.s.current_outgoing(), None);
    assert!(a
        .events()
        .contains(&Event::OutgoingCancelled { transfer_id: 0 }));
}

#[test]
fn a_control_message_goes_out_between_two_segments() {
    let mut a = sender(256);
    let id = a.s.start_transfer(Some(30)).unwrap();
    let data = [7u8; 30];
    let src = [(id, &data[..], true)];
    assert!(matches!(
        a.transmit(&src).unwrap(),
        Some((Transmit::Segment { data_len: 10, .. }, _))
    ));
    // A peer segment arrives mid-transfer: its XFER_ACK is next on the wire, ahead
    // of our transfer's next segment (never inside one).
    a.feed(&segment(START | END, 0, &[], b"x"));
    assert_eq!(
        a.send_msgs(&src),
        [
            "XFER_ACK flags=START|END transfer_id=0 acked_len=1",
            "XFER_SEGMENT flags=0 transfer_id=0 data_len=10",
            "XFER_SEGMENT flags=END transfer_id=0 data_len=10",
        ]
    );
}

#[test]
fn nothing_is_sent_while_the_ack_backlog_is_full() {
    let mut a = sender(2);
    let id = a.s.start_transfer(Some(40)).unwrap();
    let data = [7u8; 40];
    let src = [(id, &data[..], true)];
    assert_eq!(a.send_msgs(&src).len(), 2);
    assert_eq!(
        a.asked, [id; 2],
        "the source is not asked while the backlog is full"
    );
    // Control messages still go out.
    a.feed(&segment(START | END, 0, &[], b"x"));
    assert_eq!(
        a.send_msgs(&src),
        ["XFER_ACK flags=START|END transfer_id=0 acked_len=1"]
    );
    // Each ack makes room for one more segment.
    a.feed(&ack(id, 10));
    assert_eq!(
        a.send_msgs(&src),
        ["XFER_SEGMENT flags=0 transfer_id=0 data_len=10"]
    );
    a.feed(&ack(id, 30));
    assert_eq!(
        a.send_msgs(&src),
        ["XFER_SEGMENT flags=END transfer_id=0 data_len=10"]
    );
}

#[test]
fn a_source_of_unknown_length_that_ends_with_nothing_more_sends_an_empty_end() {
    let mut a = sender(256);
    let id = a.s.start_transfer(None).unwrap();
    let data = [7u8; 10];
    // Ten bytes so far, more may come: a full segment, then nothing to send.
    assert_eq!(
        a.send_msgs(&[(id, &data[..], false)]),
        ["XFER_SEGMENT flags=START transfer_id=0 data_len=10"]
    );
    assert_eq!(a.asked, [id; 2]);
    assert_eq!(a.s.current_outgoing(), Some(id));
    // The source ends without another byte: the transfer ends with an empty segment.
    let (t, bytes) = a.transmit(&[(id, &data[..], true)]).unwrap().unwrap();
    assert_eq!(
        t,
        Transmit::Segment {
            transfer_id: id,
            offset: 10,
            header_len: XferSegmentHead::MIN_LEN,
            data_len: 0,
            end: true
        }
    );
    assert_eq!(
        describe(&bytes),
        ["XFER_SEGMENT flags=END transfer_id=0 data_len=0"]
    );
    // A known length ends the same way when the source learns its end only after
    // its last byte was sent: END comes from the source, never from a guess.
    let id = a.s.start_transfer(Some(10)).unwrap();
    assert_eq!(
        a.send_msgs(&[(id, &data[..], false)]),
        ["XFER_SEGMENT flags=START transfer_id=1 data_len=10 ext(type=0x0001 len=8)"]
    );
    assert_eq!(
        a.send_msgs(&[(id, &data[..], true)]),
        ["XFER_SEGMENT flags=END transfer_id=1 data_len=0"]
    );
}

#[test]
fn an_inconsistent_source_is_reported_and_changes_nothing() {
    let mut a = sender(256);
    let id = a.s.start_transfer(Some(10)).unwrap();
    let source_error = |error| {
        Err(TransmitError::Source {
            transfer_id: id,
            error,
        })
    };
    // Fewer bytes than announced, or more.
    assert_eq!(
        a.transmit(&[(id, &[1; 8], true)]),
        source_error(UsageError::LengthMismatch {
            announced: 10,
            yielded: 8
        })
    );
    assert_eq!(
        a.transmit(&[(id, &[1; 12], false)]),
        source_error(UsageError::LengthMismatch {
            announced: 10,
            yielded: 12
        })
    );
    // Nothing was registered: the transfer has not started and can be dropped.
    assert_eq!(a.s.current_outgoing(), Some(id));
    a.s.abandon_transfer(id).unwrap();
    assert_eq!(a.events(), [Event::OutgoingCancelled { transfer_id: id }]);
    assert_eq!(a.s.outgoing_count(), 0);
    assert_eq!(
        a.s.abandon_transfer(id),
        Err(UsageError::UnknownTransfer(id))
    );
    // A source of unknown length growing past the peer's Transfer MRU (2^30 here).
    let id = a.s.start_transfer(None).unwrap();
    assert_eq!(
        a.send_msgs(&[(id, &[1; 10], false)]),
        ["XFER_SEGMENT flags=START transfer_id=1 data_len=10"]
    );
    let mut out = [0u8; MAX_SEGMENT_HEAD];
    let huge = |_| Ready {
        available: (1 << 30) - 9,
        complete: false,
    };
    assert_eq!(
        a.s.poll_transmit(a.now, &mut out, huge),
        Err(TransmitError::Source {
            transfer_id: id,
            error: UsageError::TransferTooLarge {
                len: (1 << 30) + 1,
                mru: 1 << 30
            }
        })
    );
    // A started transfer cannot be abandoned: TCPCL has no sender-side cancel.
    assert_eq!(
        a.s.abandon_transfer(id),
        Err(UsageError::TransferStarted(id))
    );
    // Exactly at the MRU is fine.
    let at_mru = |_| Ready {
        available: (1 << 30) - 10,
        complete: true,
    };
    assert!(matches!(
        a.s.poll_transmit(a.now, &mut out, at_mru),
        Ok(Some(Transmit::Segment { data_len: 10, .. }))
    ));
}

#[test]
fn tx_segment_max_caps_segments_and_adaptive_growth() {
    let mut a = active_established(
        SessionConfig {
            tx_segment_size: 500,
            tx_segment_max: 300,
            ..config("dtn://a/")
        },
        0,
        10_000,
    );
    assert_eq!(a.s.tx_segment_size(), 300);
    let id = a.s.start_transfer(None).unwrap();
    assert_eq!(
        a.send_msgs(&[(id, &[1; 700], true)]),
        [
            "XFER_SEGMENT flags=START transfer_id=0 data_len=300",
            "XFER_SEGMENT flags=0 transfer_id=0 data_len=300",
            "XFER_SEGMENT flags=END transfer_id=0 data_len=100",
        ]
    );
    // Adaptive sizing grows with fast acks, up to the cap, not the peer's MRU.
    let mut a = active_established(
        SessionConfig {
            tx_segment_size: 2048,
            tx_segment_max: 6000,
            modulate_target_ack_time: Some(Duration::from_millis(100)),
            ..config("dtn://a/")
        },
        0,
        10_000,
    );
    let id = a.s.start_transfer(None).unwrap();
    let data = vec![1u8; 100_000];
    let mut sent = 0;
    let mut sizes = vec![];
    for _ in 0..4 {
        let Some((Transmit::Segment { data_len, .. }, _)) =
            a.transmit(&[(id, &data[..], false)]).unwrap()
        else {
            panic!("a segment");
        };
        sizes.push(data_len);
        sent += data_len as u64;
        a.now += Duration::from_millis(10);
        a.feed(&ack(id, sent));
    }
    assert_eq!(sizes, [2048, 4096, 6000, 6000]);
}

#[test]
fn while_ending_the_current_transfer_finishes_and_no_other_starts() {
    let mut a = sender(256);
    let t0 = a.s.start_transfer(Some(20)).unwrap();
    let t1 = a.s.start_transfer(Some(5)).unwrap();
    let (d0, d1) = ([1u8; 20], [2u8; 5]);
    let sources = [(t0, &d0[..10], false), (t1, &d1[..], true)];
    assert_eq!(a.send_msgs(&sources).len(), 1);
    a.s.terminate(a.now, crate::tcpcl::SessTermReason::UNKNOWN)
        .unwrap();
    assert!(a
        .events()
        .contains(&Event::OutgoingCancelled { transfer_id: t1 }));
    assert_eq!(a.s.current_outgoing(), Some(t0));
    assert_eq!(
        a.send_msgs(&[(t0, &d0[..], true), (t1, &d1[..], true)]),
        [
            "SESS_TERM flags=0 reason=unknown",
            "XFER_SEGMENT flags=END transfer_id=0 data_len=10",
        ]
    );
    assert_eq!(a.s.current_outgoing(), None);
}

#[test]
fn nothing_is_sent_or_asked_before_establishment_or_after_close() {
    let mut a = Raw::new(config("dtn://a/"), Side::Active);
    assert_eq!(a.s.current_outgoing(), None);
    assert_eq!(a.out_msgs(), ["CONTACT v4 flags=0"]);
    assert_eq!(a.s.start_transfer(None), Err(UsageError::NotEstablished));
    let mut a = sender(256);
    let id = a.s.start_transfer(None).unwrap();
    a.s.close();
    assert_eq!(a.s.current_outgoing(), None);
    assert_eq!(a.transmit(&[(id, &[1; 5], true)]), Ok(None));
    assert!(a.asked.is_empty());
    assert_eq!(a.s.abandon_transfer(id), Err(UsageError::Closed));
}

#[test]
fn max_segment_head_is_the_largest_header() {
    let mut a = active_established(config("dtn://a/"), 0, 1 << 20);
    let id = a.s.start_transfer(Some(u64::MAX >> 34)).unwrap();
    let mut out = [0u8; MAX_SEGMENT_HEAD];
    let ready = |_| Ready {
        available: 1,
        complete: false,
    };
    assert!(matches!(
        a.s.poll_transmit(a.now, &mut out, ready),
        Ok(Some(Transmit::Segment {
            transfer_id,
            header_len: MAX_SEGMENT_HEAD,
            ..
        })) if transfer_id == id
    ));
}

#[test]
fn the_pair_harness_runs_the_shipped_policy() {
    // Bundles queued at once go out whole, one after another, in transfer-ID order:
    // the receiver never has two transfers open, whatever the chunking.
    for seed in SEEDS {
        let cfg = |n: &str| SessionConfig {
            tx_segment_size: 700,
            max_pending_acks: 3,
            ..config(n)
        };
        let mut p = pair_with(cfg("dtn://a/"), cfg("dtn://b/"), seed);
        let sizes = [5000, 0, 1, 2100, 700];
        for (i, &n) in sizes.iter().enumerate() {
            p.a.send(vec![i as u8; n]);
        }
        for _ in 0..100_000 {
            if p.a.all_sent_and_acked() {
                break;
            }
            p.step();
            assert!(p.received_b.partial.len() <= 1, "interleaved (seed {seed})");
        }
        assert!(p.a.all_sent_and_acked());
        let ids: Vec<u64> = p.received_b.complete.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        let started: Vec<&str> = p
            .events(B)
            .into_iter()
            .filter(|e| e.starts_with("IncomingTransferStarted"))
            .collect();
        assert_eq!(started.len(), 5);
        for (i, e) in started.iter().enumerate() {
            assert!(e.contains(&format!("transfer_id: {i},")), "{e}");
        }
        assert!(p.a.errors.is_empty());
    }
}
