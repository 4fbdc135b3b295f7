//! Transfers (RFC 9174 §5.2): IDs, segmentation, acknowledgments, refusals, MRUs and
//! the START/END discipline.

use super::*;
use crate::tcpcl::{
    TransferLength, UsageError, XferAck, XferRefuse, XferRefuseReason, MAX_SEGMENT_HEAD,
};
use crate::testing::tcpcl::EndpointError;
use crate::testing::Side::{A, B};
use proptest::prelude::*;

fn bundle(len: usize, tag: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31) ^ tag).collect()
}

/// Runs bundles both ways and checks every byte arrives exactly once, in order.
fn exchange(
    seed: u64,
    a_cfg: SessionConfig,
    b_cfg: SessionConfig,
    a_sizes: &[usize],
    b_sizes: &[usize],
) -> TcpclPair {
    let mut p = pair_with(a_cfg, b_cfg, seed);
    let a_bundles: Vec<_> = a_sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| bundle(n, i as u8))
        .collect();
    let b_bundles: Vec<_> = b_sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| bundle(n, 0x80 | i as u8))
        .collect();
    for b in &a_bundles {
        p.a.send(b.clone());
    }
    for b in &b_bundles {
        p.b.send(b.clone());
    }
    p.run_until(Duration::from_secs(60), |p| {
        p.a.all_sent_and_acked() && p.b.all_sent_and_acked()
    });
    let got_b: Vec<_> = p
        .received_b
        .complete
        .iter()
        .map(|(_, d)| d.clone())
        .collect();
    let got_a: Vec<_> = p
        .received_a
        .complete
        .iter()
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(got_b, a_bundles, "A->B (seed {seed})");
    assert_eq!(got_a, b_bundles, "B->A (seed {seed})");
    let ids: Vec<u64> = p.received_b.complete.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (0..a_sizes.len() as u64).collect::<Vec<_>>(),
        "sequential IDs from 0"
    );
    assert!(p.received_a.partial.is_empty() && p.received_b.partial.is_empty());
    assert!(
        p.a.errors.is_empty() && p.b.errors.is_empty(),
        "{:?} {:?}",
        p.a.errors,
        p.b.errors
    );
    p
}

#[test]
fn bundles_both_directions_at_once_with_several_outstanding() {
    for seed in SEEDS {
        let small = |n: &str| SessionConfig {
            tx_segment_size: 700,
            ..config(n)
        };
        let p = exchange(
            seed,
            small("dtn://a/"),
            small("dtn://b/"),
            &[5000, 1, 0, 3000, 700],
            &[2100, 9999, 4],
        );
        assert_eq!(p.a.finished, [0, 1, 2, 3, 4]);
        assert_eq!(p.b.finished, [0, 1, 2]);
        assert!(has(
            &p,
            B,
            "IncomingTransferStarted { transfer_id: 0, total_len: Some(5000) }"
        ));
        assert!(has(
            &p,
            B,
            "IncomingTransferFinished { transfer_id: 3, len: 3000 }"
        ));
        assert!(has(
            &p,
            A,
            "OutgoingAcked { transfer_id: 0, acked_len: 700, finished: false }"
        ));
    }
}

#[test]
fn bundles_without_transfer_length_extension() {
    for seed in SEEDS {
        let mut p = pair(seed);
        p.a.announce_length = false;
        p.a.send(bundle(300_000, 1));
        p.run_until(Duration::from_secs(10), |p| p.a.all_sent_and_acked());
        assert_eq!(p.received_b.complete, [(0, bundle(300_000, 1))]);
        assert!(has(
            &p,
            B,
            "IncomingTransferStarted { transfer_id: 0, total_len: None }"
        ));
    }
}

#[test]
fn segment_size_is_bounded_by_peer_mru_and_tx_size() {
    let cfg = SessionConfig {
        tx_segment_size: 500,
        ..config("dtn://a/")
    };
    let mut a = active_established(cfg.clone(), 0, 100);
    let id = a.s.start_transfer(Some(1000)).unwrap();
    assert_eq!(id, 0);
    let data = bundle(1000, 0);
    let src = [(id, &data[..], true)];
    let (t, bytes) = a.transmit(&src).unwrap().unwrap();
    assert_eq!(
        t,
        Transmit::Segment {
            transfer_id: 0,
            offset: 0,
            header_len: MAX_SEGMENT_HEAD,
            data_len: 100,
            end: false
        }
    );
    assert_eq!(
        describe(&bytes),
        ["XFER_SEGMENT flags=START transfer_id=0 data_len=100 ext(type=0x0001 len=8)"]
    );
    // No segment ever exceeds the peer's Segment MRU.
    let rest = a.send_msgs(&src);
    assert_eq!(rest.len(), 9, "{rest:?}");
    assert!(rest.iter().all(|m| m.ends_with("data_len=100")), "{rest:?}");
    assert_eq!(rest[8], "XFER_SEGMENT flags=END transfer_id=0 data_len=100");
    // Our own tx size bounds it when the peer allows more.
    let mut a = active_established(cfg, 0, 1 << 20);
    let id = a.s.start_transfer(None).unwrap();
    assert_eq!(
        a.send_msgs(&[(id, &data[..], true)]),
        [
            "XFER_SEGMENT flags=START transfer_id=0 data_len=500",
            "XFER_SEGMENT flags=END transfer_id=0 data_len=500"
        ]
    );
    // Once the END is out, the transfer's source is not asked again.
    let asked = a.asked.len();
    assert_eq!(a.transmit(&[(id, &data[..], true)]).unwrap(), None);
    assert_eq!(a.asked.len(), asked);
}

#[test]
fn a_too_small_buffer_registers_nothing() {
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    let id = a.s.start_transfer(Some(10)).unwrap();
    let ready = |_| Ready {
        available: 10,
        complete: true,
    };
    // A START|END header without extension items is 22 bytes.
    let mut tiny = [0u8; 21];
    assert_eq!(
        a.s.poll_transmit(a.now, &mut tiny, ready),
        Err(TransmitError::Encode(crate::EncodeError::BufferTooSmall {
            needed: 22
        }))
    );
    // The header alone needs room: the payload is the caller's to append.
    let mut out = [0u8; 22];
    assert_eq!(
        a.s.poll_transmit(a.now, &mut out, ready),
        Ok(Some(Transmit::Segment {
            transfer_id: id,
            offset: 0,
            header_len: 22,
            data_len: 10,
            end: true
        }))
    );
    let mut seg = out.to_vec();
    seg.extend([1; 10]);
    assert!(describe(&seg)[0].starts_with("XFER_SEGMENT flags=START|END"));
    // The same holds for control messages: a contact header needs 6 bytes.
    let mut c = Raw::new(config("dtn://c/"), Side::Active);
    let mut five = [0u8; 5];
    let no_data = |_| panic!("no transfer yet");
    assert_eq!(
        c.s.poll_transmit(c.now, &mut five, no_data),
        Err(TransmitError::Encode(crate::EncodeError::BufferTooSmall {
            needed: 6
        }))
    );
    assert_eq!(c.out_msgs(), ["CONTACT v4 flags=0"]);
}

#[test]
fn acks_reflect_flags_with_cumulative_length() {
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let mut tl = [0u8; 8];
    let mut input = segment(
        START,
        0,
        &[TransferLength(25).item(false, &mut tl)],
        &[1; 10],
    );
    input.extend(segment(0, 0, &[], &[2; 10]));
    input.extend(segment(END, 0, &[], &[3; 5]));
    assert_eq!(b.feed(&input), input.len());
    assert_eq!(
        b.out_msgs(),
        [
            "XFER_ACK flags=START transfer_id=0 acked_len=10",
            "XFER_ACK flags=0 transfer_id=0 acked_len=20",
            "XFER_ACK flags=END transfer_id=0 acked_len=25",
        ]
    );
    let mut want = vec![1u8; 10];
    want.extend([2; 10]);
    want.extend([3; 5]);
    assert_eq!(b.data_of(0), want);
    assert!(b.delivered.last().unwrap().2, "last piece marks the end");
    assert_eq!(
        b.events(),
        [
            Event::IncomingTransferStarted {
                transfer_id: 0,
                total_len: Some(25)
            },
            Event::IncomingTransferFinished {
                transfer_id: 0,
                len: 25
            },
        ]
    );
}

#[test]
fn segment_data_streams_without_buffering() {
    // A 10 MiB segment fed in 64 KiB reads comes out piece by piece as it arrives.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let data = vec![0x5a; 10 * 1024 * 1024];
    let seg = segment(START | END, 0, &[], &data);
    let mut pieces = 0;
    let mut total = 0;
    for chunk in seg.chunks(65536) {
        let mut off = 0;
        while off < chunk.len() {
            let r = b.s.handle_input(b.now, &chunk[off..]);
            assert!(r.consumed > 0);
            off += r.consumed;
            if let Some(d) = r.data {
                assert_eq!(d.offset, total as u64);
                total += d.bytes.len();
                pieces += 1;
            }
        }
    }
    assert_eq!(total, data.len());
    assert!(pieces >= 160);
    // The ack waits for the application's confirmation.
    assert!(b.out_msgs().is_empty());
    b.s.confirm_segment(0).unwrap();
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=0 acked_len=10485760"]
    );
}

#[test]
fn a_segment_is_acknowledged_only_once_confirmed() {
    // RFC 9174 §5.2.3: the XFER_ACK goes out only after the application processed the
    // segment; meanwhile input pauses, and a refusal replaces the ack.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.auto_confirm = false;
    let mut input = segment(START, 3, &[], b"first");
    input.extend(segment(END, 3, &[], b"second"));
    let used = b.feed(&input);
    assert_eq!(b.data_of(3), b"first");
    assert!(b.out_msgs().is_empty(), "no ack before confirmation");
    // Input is paused on the unconfirmed segment.
    assert_eq!(b.s.handle_input(b.now, &input[used..]).consumed, 0);
    assert!(b.s.transfers_in_progress());
    assert_eq!(b.s.confirm_segment(4), Err(UsageError::NothingToConfirm(4)));
    b.s.confirm_segment(3).unwrap();
    assert_eq!(b.s.confirm_segment(3), Err(UsageError::NothingToConfirm(3)));
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START transfer_id=3 acked_len=5"]
    );
    let used2 = b.feed(&input[used..]);
    assert_eq!(used + used2, input.len());
    assert_eq!(b.data_of(3), b"firstsecond");
    assert!(b.out_msgs().is_empty());
    // The application could not store the bundle: refused, never acknowledged.
    b.s.refuse_transfer(3, XferRefuseReason::NO_RESOURCES)
        .unwrap();
    assert_eq!(
        b.out_msgs(),
        ["XFER_REFUSE reason=no resources transfer_id=3"]
    );
    assert!(!b.s.transfers_in_progress());
    assert_eq!(b.s.confirm_segment(3), Err(UsageError::NothingToConfirm(3)));
    // The transfer is over (its END was received): the next one is served normally.
    b.auto_confirm = true;
    b.feed(&segment(START | END, 4, &[], b"next"));
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=4 acked_len=4"]
    );
}

#[test]
fn an_empty_segment_is_delivered_for_confirmation() {
    // A zero-length segment still needs processing (an empty bundle's END): it comes
    // out as an empty piece that completes the segment.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.auto_confirm = false;
    b.feed(&segment(START, 1, &[], b""));
    assert_eq!(b.delivered, [(1, vec![], false)]);
    assert!(b.out_msgs().is_empty());
    b.s.confirm_segment(1).unwrap();
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START transfer_id=1 acked_len=0"]
    );
    b.feed(&segment(END, 1, &[], b""));
    assert_eq!(b.delivered[1], (1, vec![], true));
    b.s.confirm_segment(1).unwrap();
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=END transfer_id=1 acked_len=0"]
    );
}

#[test]
fn an_empty_bundle_completes_in_the_call_that_consumes_it() {
    // A runtime calls `handle_input` again only when more bytes arrive. An empty bundle
    // (one START|END segment without data) that is the last thing the peer sent must
    // therefore come out, ready for confirmation, from the call that consumed it; if
    // the core paused at its START it would never be acknowledged (issue 9, item 1).
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let seg = segment(START | END, 7, &[], b"");
    let r = b.s.handle_input(b.now, &seg);
    assert_eq!(r.consumed, seg.len());
    let d = r.data.expect("the empty bundle is handed out at once");
    assert_eq!((d.transfer_id, d.bytes, d.offset), (7, &[][..], 0));
    assert!(d.end_of_segment && d.end_of_transfer);
    assert!(b.events().contains(&Event::IncomingTransferStarted {
        transfer_id: 7,
        total_len: None
    }));
    b.s.confirm_segment(7).unwrap();
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=7 acked_len=0"]
    );
    assert!(b.events().contains(&Event::IncomingTransferFinished {
        transfer_id: 7,
        len: 0
    }));
}

#[test]
fn an_empty_bundle_can_still_be_refused_instead_of_confirmed() {
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let seg = segment(START | END, 3, &[], b"");
    let r = b.s.handle_input(b.now, &seg);
    assert!(r.data.is_some_and(|d| d.end_of_transfer));
    b.s.refuse_transfer(3, XferRefuseReason::NO_RESOURCES)
        .unwrap();
    assert_eq!(
        b.out_msgs(),
        ["XFER_REFUSE reason=no resources transfer_id=3"]
    );
    // The stream stays framed: the next bundle is served normally.
    b.auto_confirm = true;
    b.feed(&segment(START | END, 4, &[], b"x"));
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=4 acked_len=1"]
    );
}

#[test]
fn transfer_mru_is_enforced() {
    let cfg = SessionConfig {
        transfer_mru: 100,
        ..config("dtn://b/")
    };
    // Announced too large: refused before any data is accepted.
    let mut b = passive_established(cfg.clone(), 0, 1000);
    let mut tl = [0u8; 8];
    b.feed(&segment(
        START,
        0,
        &[TransferLength(101).item(false, &mut tl)],
        &[1; 50],
    ));
    b.feed(&segment(END, 0, &[], &[1; 51]));
    // The segment that crossed the refusal is refused again (RFC 9174 §5.2.4).
    assert_eq!(
        b.out_msgs(),
        [
            "XFER_REFUSE reason=no resources transfer_id=0",
            "XFER_REFUSE reason=no resources transfer_id=0"
        ]
    );
    assert!(b.delivered.is_empty());
    // No announcement, data grows past the MRU: refused at the segment that exceeds it.
    let mut b = passive_established(cfg, 0, 1000);
    b.feed(&segment(START, 0, &[], &[1; 60]));
    b.feed(&segment(0, 0, &[], &[2; 60]));
    b.feed(&segment(END, 0, &[], &[3; 10]));
    assert_eq!(
        b.out_msgs(),
        [
            "XFER_ACK flags=START transfer_id=0 acked_len=60",
            "XFER_REFUSE reason=no resources transfer_id=0",
            "XFER_REFUSE reason=no resources transfer_id=0"
        ]
    );
    assert_eq!(b.data_of(0), vec![1; 60]);
    assert!(b.events().contains(&Event::IncomingTransferRefused {
        transfer_id: 0,
        reason: XferRefuseReason::NO_RESOURCES
    }));
    // The session carries on with the next transfer.
    b.feed(&segment(START | END, 1, &[], &[9; 3]));
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=1 acked_len=3"]
    );
    // The sender side refuses to start what the peer cannot take.
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    assert_eq!(
        a.s.start_transfer(Some(1 << 31)),
        Err(UsageError::TransferTooLarge {
            len: 1 << 31,
            mru: 1 << 30
        })
    );
}

#[test]
fn unknown_critical_transfer_extension_is_refused() {
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&segment(
        START,
        0,
        &[ExtensionItem::new(true, 0x4242, b"?")],
        &[1; 5],
    ));
    b.feed(&segment(END, 0, &[], &[1; 5]));
    assert_eq!(
        b.out_msgs(),
        [
            "XFER_REFUSE reason=extension failure transfer_id=0",
            "XFER_REFUSE reason=extension failure transfer_id=0"
        ]
    );
    assert!(b.delivered.is_empty());
    b.feed(&segment(
        START | END,
        1,
        &[ExtensionItem::new(false, 0x4242, b"?")],
        &[1; 5],
    ));
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=1 acked_len=5"]
    );
}

#[test]
fn received_refuse_stops_the_transfer_and_clears_pending_acks() {
    let mut a = active_established(
        SessionConfig {
            max_pending_acks: 3,
            ..config("dtn://a/")
        },
        0,
        10,
    );
    let id = a.s.start_transfer(Some(100)).unwrap();
    let data = bundle(100, 0);
    let src = [(id, &data[..], true)];
    for _ in 0..3 {
        assert!(matches!(
            a.transmit(&src).unwrap(),
            Some((Transmit::Segment { .. }, _))
        ));
    }
    // Three segments await their acks: nothing more is sent, and the source is not
    // even asked.
    let asked = a.asked.len();
    assert_eq!(a.transmit(&src).unwrap(), None);
    assert_eq!(a.asked.len(), asked);
    a.feed(&msg(XferRefuse {
        reason: XferRefuseReason::COMPLETED,
        transfer_id: id,
    }
    .into()));
    assert_eq!(
        a.events(),
        [Event::OutgoingRefused {
            transfer_id: id,
            reason: XferRefuseReason::COMPLETED
        }]
    );
    // The refused transfer is gone: nothing more of it is sent.
    assert_eq!(a.s.current_outgoing(), None);
    assert_eq!(a.transmit(&src).unwrap(), None);
    // Late acks for the refused transfer are ignored, not rejected.
    a.feed(&msg(XferAck {
        flags: SegmentFlags::START,
        transfer_id: id,
        acked_len: 10,
    }
    .into()));
    assert!(a.out().is_empty());
    assert!(a.events().is_empty());
    // The ack ring was cleared: a new transfer can use all of it.
    let id2 = a.s.start_transfer(Some(30)).unwrap();
    let sent = a.send_msgs(&[(id2, &data[..30], true)]);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[2].starts_with("XFER_SEGMENT flags=END transfer_id=1"));
}

#[test]
fn start_out_of_order_never_splices_transfers() {
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&segment(START, 0, &[], b"aaa"));
    // A second START for transfer 0 while it is in progress.
    b.feed(&segment(START, 0, &[], b"bbb"));
    b.feed(&segment(END, 0, &[], b"ccc"));
    assert_eq!(
        b.out_msgs(),
        [
            "XFER_ACK flags=START transfer_id=0 acked_len=3",
            "XFER_REFUSE reason=not acceptable transfer_id=0",
            "XFER_REFUSE reason=not acceptable transfer_id=0"
        ]
    );
    assert_eq!(b.data_of(0), b"aaa");
    assert!(b.events().contains(&Event::IncomingTransferRefused {
        transfer_id: 0,
        reason: XferRefuseReason::NOT_ACCEPTABLE
    }));
    // A continuation for a transfer that never started.
    b.feed(&segment(0, 5, &[], b"xxx"));
    b.feed(&segment(END, 5, &[], b"yyy"));
    assert_eq!(
        b.out_msgs(),
        [
            "XFER_REFUSE reason=not acceptable transfer_id=5",
            "XFER_REFUSE reason=not acceptable transfer_id=5"
        ]
    );
    assert!(b.data_of(5).is_empty());
    // The next well-formed transfer is unaffected.
    b.feed(&segment(START | END, 6, &[], b"ok"));
    assert_eq!(b.data_of(6), b"ok");
}

#[test]
fn zero_peer_segment_mru_never_loops() {
    let mut a = active_established(config("dtn://a/"), 0, 0);
    assert_eq!(a.s.peer_segment_mru(), Some(0));
    assert_eq!(
        a.s.start_transfer(Some(10)),
        Err(UsageError::PeerAcceptsNoData)
    );
    // And a non-final empty segment is never framed, whatever the MRU.
    let mut a = active_established(config("dtn://a/"), 0, 10);
    let id = a.s.start_transfer(None).unwrap();
    assert_eq!(a.transmit(&[(id, &[], false)]).unwrap(), None);
    assert_eq!(a.asked, [id]);
    // A pair whose receiver advertises MRU 0: the sender reports the error at once.
    let mut p = pair_with(
        config("dtn://a/"),
        SessionConfig {
            segment_mru: 0,
            ..config("dtn://b/")
        },
        1,
    );
    p.a.send(vec![1, 2, 3]);
    establish(&mut p);
    p.settle();
    assert_eq!(
        p.a.errors,
        [EndpointError::Start(UsageError::PeerAcceptsNoData)]
    );
    let sent = p.sent_a;
    p.sleep(Duration::from_secs(1));
    p.settle();
    assert_eq!(p.sent_a, sent, "no endless empty segments");
}

#[test]
fn peer_segment_larger_than_our_mru_is_refused() {
    let mut b = passive_established(
        SessionConfig {
            segment_mru: 8,
            ..config("dtn://b/")
        },
        0,
        1000,
    );
    b.feed(&segment(START, 0, &[], &[1; 9]));
    b.feed(&segment(END, 0, &[], &[1; 2]));
    assert_eq!(
        b.out_msgs(),
        [
            "XFER_REFUSE reason=not acceptable transfer_id=0",
            "XFER_REFUSE reason=not acceptable transfer_id=0"
        ]
    );
    assert!(b.delivered.is_empty());
    b.feed(&segment(START | END, 1, &[], &[1; 8]));
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=1 acked_len=8"]
    );
}

#[test]
fn outgoing_transfers_do_not_interleave() {
    let mut a = active_established(config("dtn://a/"), 0, 10);
    let t0 = a.s.start_transfer(None).unwrap();
    let t1 = a.s.start_transfer(None).unwrap();
    assert_eq!((t0, t1), (0, 1));
    let (d0, d1) = ([1u8; 30], [2u8; 5]);
    // Transfer 0 has 20 bytes so far and no known end; transfer 1 is all there.
    assert_eq!(
        a.send_msgs(&[(t0, &d0[..20], false), (t1, &d1[..], true)]),
        [
            "XFER_SEGMENT flags=START transfer_id=0 data_len=10",
            "XFER_SEGMENT flags=0 transfer_id=0 data_len=10"
        ]
    );
    // Transfer 1 waits (its source is not even asked) until transfer 0 ends.
    assert_eq!(a.s.current_outgoing(), Some(t0));
    assert_eq!(a.asked, [t0; 3]);
    assert_eq!(
        a.send_msgs(&[(t0, &d0[..], true), (t1, &d1[..], true)]),
        [
            "XFER_SEGMENT flags=END transfer_id=0 data_len=10",
            "XFER_SEGMENT flags=START|END transfer_id=1 data_len=5"
        ]
    );
    assert_eq!(a.asked, [t0, t0, t0, t0, t1]);
}

#[test]
fn application_refuses_an_incoming_transfer() {
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&segment(START, 0, &[], b"abc"));
    let _ = b.out();
    b.s.refuse_transfer(0, XferRefuseReason::COMPLETED).unwrap();
    b.feed(&segment(0, 0, &[], b"def"));
    b.feed(&segment(END, 0, &[], b"ghi"));
    // Each segment that crossed the refusal is refused again (RFC 9174 §5.2.4).
    assert_eq!(
        b.out_msgs(),
        ["XFER_REFUSE reason=completed transfer_id=0"; 3]
    );
    assert_eq!(b.data_of(0), b"abc");
    assert_eq!(
        b.s.refuse_transfer(0, XferRefuseReason::COMPLETED),
        Err(UsageError::UnknownTransfer(0))
    );
}

#[test]
fn adaptive_segment_size_follows_the_target_ack_time() {
    let mut a = active_established(
        SessionConfig {
            tx_segment_size: 4096,
            modulate_target_ack_time: Some(Duration::from_millis(100)),
            ..config("dtn://a/")
        },
        0,
        10_000,
    );
    let id = a.s.start_transfer(None).unwrap();
    let data = bundle(100_000, 0);
    let mut sent = 0u64;
    let mut sizes = vec![];
    for step in 0..8 {
        let Some((Transmit::Segment { data_len, .. }, _)) =
            a.transmit(&[(id, &data[..], false)]).unwrap()
        else {
            panic!("a segment at step {step}");
        };
        sizes.push(data_len);
        sent += data_len as u64;
        a.now += Duration::from_millis(if step < 4 { 10 } else { 500 });
        let flags = if step == 0 {
            SegmentFlags::START
        } else {
            SegmentFlags::EMPTY
        };
        a.feed(&msg(XferAck {
            flags,
            transfer_id: id,
            acked_len: sent,
        }
        .into()));
    }
    // Fast acks grow it up to the peer MRU; slow acks shrink it toward the floor.
    assert_eq!(sizes[..4], [4096, 8192, 10_000, 10_000]);
    assert_eq!(sizes[4..], [10_000, 5000, 2500, 1250]);
    assert!(a.s.tx_segment_size() >= crate::tcpcl::session::MIN_ADAPTIVE_SEGMENT);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random bundle sizes both ways, random chunking and random pauses: every byte
    /// arrives once, in order, and both sides end with a clean SESS_TERM exchange.
    #[test]
    fn random_bundles_arrive_exactly_once(
        seed in any::<u64>(),
        a_sizes in proptest::collection::vec(0usize..20_000, 0..5),
        b_sizes in proptest::collection::vec(0usize..20_000, 0..5),
        seg in 1u64..5000,
        chunk in 1usize..3000,
        keepalive in 0u16..3,
        // Pauses freeze the network and fire timers only at their end. Frozen for twice
        // the keepalive interval (2 s at keepalive 1), a peer legitimately ends the
        // session with Idle Timeout (RFC 9174 §5.1.1), which is not what this test looks
        // for: the pauses add up to less than that.
        pauses in proptest::collection::vec(0u64..500, 0..4),
    ) {
        let cfg = |n: &str| SessionConfig {
            tx_segment_size: seg,
            keepalive_interval: keepalive,
            max_pending_acks: 8,
            ..config(n)
        };
        let mut p = pair_with(cfg("dtn://a/"), cfg("dtn://b/"), seed);
        p.max_chunk = chunk;
        let a_bundles: Vec<_> = a_sizes.iter().enumerate().map(|(i, &n)| bundle(n, i as u8)).collect();
        let b_bundles: Vec<_> = b_sizes.iter().enumerate().map(|(i, &n)| bundle(n, 0x40 | i as u8)).collect();
        for b in &a_bundles { p.a.send(b.clone()); }
        for b in &b_bundles { p.b.send(b.clone()); }
        for ms in pauses {
            for _ in 0..3 { p.step(); }
            p.sleep(Duration::from_millis(ms));
        }
        p.run_until(Duration::from_secs(120), |p| p.a.all_sent_and_acked() && p.b.all_sent_and_acked());
        p.a.terminate_when_idle = Some(crate::tcpcl::SessTermReason::UNKNOWN);
        p.run_until(Duration::from_secs(120), |p| p.both_closed());
        let got_b: Vec<_> = p.received_b.complete.iter().map(|(_, d)| d.clone()).collect();
        let got_a: Vec<_> = p.received_a.complete.iter().map(|(_, d)| d.clone()).collect();
        prop_assert_eq!(got_b, a_bundles);
        prop_assert_eq!(got_a, b_bundles);
        let clean = |s: &Session| matches!(s.close_reason(), Some(crate::tcpcl::CloseReason::Terminated { .. }));
        prop_assert!(clean(&p.a.session), "{}", p.transcript_text());
        prop_assert!(clean(&p.b.session), "{}", p.transcript_text());
    }
}

#[test]
fn transfer_ids_start_at_zero_and_exhaustion_terminates() {
    // RFC 9174 §5.2.1: IDs start at 0 and increment by one; when the 64-bit space is
    // used up the session ends with SESS_TERM Resource Exhaustion.
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    assert_eq!(a.s.start_transfer(None), Ok(0));
    assert_eq!(a.s.start_transfer(None), Ok(1));
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    a.s.next_tx_id = u64::MAX;
    assert_eq!(a.s.start_transfer(None), Ok(u64::MAX));
    assert_eq!(
        a.s.start_transfer(None),
        Err(UsageError::TransferIdsExhausted)
    );
    assert_eq!(
        a.out_msgs(),
        ["SESS_TERM flags=0 reason=resource exhaustion"]
    );
    assert_eq!(
        a.events(),
        [
            Event::Terminating {
                reason: crate::tcpcl::SessTermReason::RESOURCE_EXHAUSTION,
                by_peer: false
            },
            Event::OutgoingCancelled {
                transfer_id: u64::MAX
            }
        ]
    );
}

#[test]
fn total_length_mismatch_is_not_acceptable_even_above_the_transfer_mru() {
    // RFC 9174 §5.2.5.1: data disagreeing with the announced Total Length is refused
    // with Not Acceptable.
    let cfg = SessionConfig {
        transfer_mru: 60,
        ..config("dtn://b/")
    };
    let mut tl = [0u8; 8];
    let item = [TransferLength(50).item(false, &mut tl)];
    for (second, end) in [(30usize, false), (5, true)] {
        let mut b = passive_established(cfg.clone(), 0, 1000);
        b.feed(&segment(START, 0, &item, &[1; 40]));
        b.feed(&segment(
            if end { END } else { 0 },
            0,
            &[],
            &vec![2; second],
        ));
        assert_eq!(
            b.out_msgs(),
            [
                "XFER_ACK flags=START transfer_id=0 acked_len=40",
                "XFER_REFUSE reason=not acceptable transfer_id=0"
            ]
        );
        assert_eq!(b.data_of(0), vec![1; 40]);
    }
}

#[test]
fn single_segment_transfer_omits_transfer_length() {
    // RFC 9174 §5.2.5.1: the Transfer Length item SHOULD NOT be sent on a transfer of
    // exactly one segment; a multi-segment transfer announces it on its first segment.
    let seg_of = |out: &[u8]| match Message::decode(out) {
        Ok(Status::Complete((Message::XferSegment(s), _))) => {
            (s.flags, s.extensions.transfer_length().unwrap())
        }
        other => panic!("{other:?}"),
    };
    let mut a = active_established(config("dtn://a/"), 0, 100);
    let id = a.s.start_transfer(Some(10)).unwrap();
    let d = [7u8; 150];
    let (t, bytes) = a.transmit(&[(id, &d[..10], true)]).unwrap().unwrap();
    let Transmit::Segment {
        header_len,
        data_len,
        end,
        ..
    } = t
    else {
        panic!("{t:?}")
    };
    assert_eq!((data_len, end), (10, true));
    assert!(header_len < MAX_SEGMENT_HEAD);
    assert_eq!(seg_of(&bytes), (SegmentFlags(0x03), None));
    let id = a.s.start_transfer(Some(150)).unwrap();
    let (t, bytes) = a.transmit(&[(id, &d[..], true)]).unwrap().unwrap();
    assert_eq!(
        t,
        Transmit::Segment {
            transfer_id: id,
            offset: 0,
            header_len: MAX_SEGMENT_HEAD,
            data_len: 100,
            end: false
        },
        "the largest header there is"
    );
    assert_eq!(
        seg_of(&bytes),
        (SegmentFlags::START, Some(TransferLength(150)))
    );
}

#[test]
fn acks_reflect_undecodable_flag_bits() {
    // RFC 9174 §5.2.3: the XFER_ACK flags match the segment's, including flags the
    // receiver does not know; reserved bits are otherwise ignored.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&segment(START | 0x80, 0, &[], b"ab"));
    b.feed(&segment(END | 0x40, 0, &[], b"cd"));
    let out = b.out();
    let mut flags = vec![];
    let mut rest = &out[..];
    while let Ok(Status::Complete((Message::XferAck(a), n))) = Message::decode(rest) {
        flags.push(a.flags);
        rest = &rest[n..];
    }
    assert_eq!(flags, [SegmentFlags(0x82), SegmentFlags(0x41)]);
    assert_eq!(b.data_of(0), b"abcd");
}

#[test]
fn acks_of_earlier_transfers_precede_a_refusal() {
    // RFC 9174 §5.2.4: before refusing a transfer, every segment of the transfers
    // before it has been acknowledged (or refused).
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let mut input = segment(START, 0, &[], b"one");
    input.extend(segment(END, 0, &[], b"two"));
    input.extend(segment(
        START,
        1,
        &[ExtensionItem::new(true, 0x4242, b"?")],
        b"x",
    ));
    b.feed(&input);
    assert_eq!(
        b.out_msgs(),
        [
            "XFER_ACK flags=START transfer_id=0 acked_len=3",
            "XFER_ACK flags=END transfer_id=0 acked_len=6",
            "XFER_REFUSE reason=extension failure transfer_id=1"
        ]
    );
}

#[test]
fn refusal_mid_segment_stops_delivery_and_ack() {
    // RFC 9174 §5.2.4: a refusal may be sent before the whole segment arrived; the
    // rest of it is neither delivered nor acknowledged, and later segments are refused.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let seg = segment(START, 0, &[], &[5; 100]);
    let head = seg.len() - 100;
    b.feed(&seg[..head + 40]);
    assert_eq!(b.data_of(0), vec![5; 40]);
    b.s.refuse_transfer(0, XferRefuseReason::NO_RESOURCES)
        .unwrap();
    b.feed(&seg[head + 40..]);
    b.feed(&segment(END, 0, &[], &[6; 10]));
    assert_eq!(b.data_of(0), vec![5; 40]);
    assert_eq!(
        b.out_msgs(),
        ["XFER_REFUSE reason=no resources transfer_id=0"; 2]
    );
    // The next transfer is accepted.
    b.feed(&segment(START | END, 1, &[], b"ok"));
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=1 acked_len=2"]
    );
}

#[test]
fn reserved_flag_bits_of_acks_and_transfer_extensions_are_ignored() {
    // RFC 9174 §5.2.3 and §5.2.5: reserved flag bits are ignored by the receiver.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let item = ExtensionItem {
        flags: crate::tcpcl::ExtensionFlags(0xfe),
        item_type: 0x4242,
        value: b"?",
    };
    b.feed(&segment(START | END, 0, &[item], b"hi"));
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=0 acked_len=2"]
    );
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    let id = a.s.start_transfer(None).unwrap();
    assert_eq!(a.send_msgs(&[(id, b"abc", true)]).len(), 1);
    a.feed(&msg(XferAck {
        flags: SegmentFlags(0xf3),
        transfer_id: id,
        acked_len: 3,
    }
    .into()));
    assert!(a.out().is_empty(), "no MSG_REJECT");
    assert_eq!(
        a.events(),
        [Event::OutgoingAcked {
            transfer_id: id,
            acked_len: 3,
            finished: true
        }]
    );
}
