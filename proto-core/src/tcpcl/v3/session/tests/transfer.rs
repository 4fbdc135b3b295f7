//! Bundles both ways, segmentation, acknowledgments and framing errors (RFC 7242 §5.2, §5.3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

// ----- bundles ---------------------------------------------------------------------

/// Edge sizes around the segment size, both directions at once, every chunking.
#[test]
fn tcpcl3_bundles_of_edge_sizes_both_ways() {
    let seg = 1000usize;
    let sizes = [0, 1, seg - 1, seg, seg + 1, 3 * seg, 50_000];
    for seed in SEEDS {
        let c = |eid: &str| SessionConfig {
            tx_segment_size: seg as u64,
            ..cfg(eid)
        };
        let mut p = pair_with(c("dtn://a/"), c("dtn://b/"), seed);
        let bundles: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        for b in &bundles {
            p.a.send(b.clone());
            p.b.send(b.clone());
        }
        p.run_until(Duration::from_secs(10), |p| {
            p.a.all_sent_and_acked() && p.b.all_sent_and_acked()
        });
        for got in [&p.received_a.complete, &p.received_b.complete] {
            let data: Vec<&Vec<u8>> = got.iter().map(|(_, d)| d).collect();
            assert_eq!(data, bundles.iter().collect::<Vec<_>>(), "seed {seed}");
            let ids: Vec<u64> = got.iter().map(|(i, _)| *i).collect();
            assert_eq!(ids, (0..sizes.len() as u64).collect::<Vec<_>>());
        }
        assert_eq!(p.a.finished, (0..sizes.len() as u64).collect::<Vec<_>>());
        assert!(p.a.sent_unacked.is_empty());
        // Every bundle's length was announced (both asked for LENGTH).
        assert!(has(
            &p,
            PSide::B,
            "IncomingTransferStarted { transfer_id: 6, total_len: Some(50000) }"
        ));
    }
}

#[test]
fn tcpcl3_segments_and_cumulative_acks_on_the_wire() {
    // The peer asks for acks and LENGTH; we send a 5-octet bundle in 2-octet segments.
    let mut r = Raw::established(
        SessionConfig {
            tx_segment_size: 2,
            ..cfg("dtn://me/")
        },
        0x09,
        0,
    );
    r.s.start_transfer(Some(5)).unwrap();
    let wire = r.drain(b"hello");
    assert_eq!(
        wire,
        [
            0x60, 5, // LENGTH 5
            0x12, 2, b'h', b'e', // S
            0x10, 2, b'l', b'l', //
            0x11, 1, b'o', // E
        ]
    );
    // Cumulative ACK_SEGMENTs: 2, 4, 5.
    r.feed(&[0x20, 2, 0x20, 4]);
    assert_eq!(
        r.events(),
        [
            Event::OutgoingAcked {
                transfer_id: 0,
                acked_len: 2,
                finished: false
            },
            Event::OutgoingAcked {
                transfer_id: 0,
                acked_len: 4,
                finished: false
            }
        ]
    );
    r.feed(&[0x20, 5]);
    assert_eq!(
        r.events(),
        [Event::OutgoingAcked {
            transfer_id: 0,
            acked_len: 5,
            finished: true
        }]
    );
    assert_eq!(r.s.outgoing_count(), 0);
    // An ack beyond what we sent ends the session.
    r.s.start_transfer(None).unwrap();
    r.drain(b"xy");
    r.feed(&[0x20, 9]);
    assert_eq!(
        r.s.close_reason(),
        Some(CloseReason::ProtocolError(ProtocolError::Malformed {
            message_type: 2
        }))
    );
}

/// Nothing is acknowledged before the application confirms it.
#[test]
fn tcpcl3_acks_wait_for_confirmation() {
    let mut r = Raw::established(cfg("dtn://me/"), 0x01, 0);
    r.auto_confirm = false;
    let seg = [0x12, 3, b'a', b'b', b'c', 0x11, 2, b'd', b'e'];
    let used = r.feed(&seg);
    assert_eq!(used, 5, "input pauses at the unconfirmed segment");
    assert_eq!(r.drain(&[]), b"", "no ACK_SEGMENT before confirmation");
    assert!(r.s.transfers_in_progress());
    r.s.confirm_segment(0).unwrap();
    assert_eq!(r.drain(&[]), [0x20, 3]);
    assert_eq!(r.feed(&seg[used..]), 4);
    assert_eq!(r.drain(&[]), b"");
    r.s.confirm_segment(0).unwrap();
    assert_eq!(r.drain(&[]), [0x20, 5]);
    assert_eq!(
        r.events(),
        [
            Event::IncomingTransferStarted {
                transfer_id: 0,
                total_len: None
            },
            Event::IncomingTransferFinished {
                transfer_id: 0,
                len: 5
            }
        ]
    );
    assert_eq!(
        r.delivered,
        [(0, b"abc".to_vec(), false), (0, b"de".to_vec(), true)]
    );
    // Without negotiated acks the confirmation still paces input but sends nothing.
    let mut r = Raw::established(cfg("dtn://me/"), 0x00, 0);
    r.feed(&[0x13, 1, b'z']);
    assert_eq!(r.drain(&[]), b"");
    assert_eq!(r.delivered, [(0, b"z".to_vec(), true)]);
}

#[test]
fn tcpcl3_without_acks_bundles_are_sent_unconfirmed() {
    for seed in SEEDS {
        let a = SessionConfig {
            request_acks: false,
            ..cfg("dtn://a/")
        };
        let mut p = pair_with(a, cfg("dtn://b/"), seed);
        p.a.terminate_when_idle = Some(SessTermReason::UNKNOWN);
        p.a.send(vec![1u8; 10_000]);
        p.a.send(vec![2u8; 0]);
        p.run_until(Duration::from_secs(10), |p| p.both_closed());
        assert_eq!(p.a.sent_unacked, [0, 1]);
        assert!(p.a.finished.is_empty());
        assert_eq!(p.received_b.complete.len(), 2);
        assert_eq!(
            p.a.session.close_reason(),
            Some(CloseReason::Terminated {
                reason: SessTermReason::UNKNOWN,
                by_peer: false
            })
        );
        assert_eq!(
            p.b.session.close_reason(),
            Some(CloseReason::Terminated {
                reason: SessTermReason::UNKNOWN,
                by_peer: true
            })
        );
        assert_eq!(p.b.session.peer_shutdown(), Some(Shutdown::default()));
    }
}

// ----- framing errors --------------------------------------------------------------

#[test]
fn tcpcl3_framing_errors_end_the_session() {
    let cases: &[(&[u8], ProtocolError)] = &[
        (
            &[0x70],
            ProtocolError::UnknownMessageType { message_type: 7 },
        ),
        (
            &[0x00],
            ProtocolError::UnknownMessageType { message_type: 0 },
        ),
        // A continuation segment with no bundle in progress.
        (&[0x11, 1, 0], ProtocolError::Malformed { message_type: 1 }),
        // A new bundle before the last one ended.
        (
            &[0x12, 1, 0, 0x12, 1, 0],
            ProtocolError::Malformed { message_type: 1 },
        ),
        // An SDNV past 64 bits.
        (
            &[
                0x60, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
            ProtocolError::Malformed { message_type: 6 },
        ),
    ];
    for (bytes, e) in cases {
        let mut r = Raw::established(cfg("dtn://me/"), 0x01, 0);
        r.feed(bytes);
        assert_eq!(r.drain(&[]).last(), Some(&0x50), "{bytes:02x?}");
        assert_eq!(r.s.close_reason(), Some(CloseReason::ProtocolError(*e)));
        assert!(r.s.is_closed());
    }
}

#[test]
fn tcpcl3_unexpected_ack_and_refusal_are_ignored() {
    let mut r = Raw::established(cfg("dtn://me/"), 0x05, 0);
    r.feed(&[0x20, 5, 0x31]);
    assert!(r.s.is_established());
    assert!(r.events().is_empty());
}
