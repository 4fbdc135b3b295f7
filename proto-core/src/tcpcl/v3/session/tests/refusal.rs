//! LENGTH and bundle refusal (RFC 7242 §5.4, §5.5).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

// ----- LENGTH and refusal ----------------------------------------------------------

#[test]
fn tcpcl3_length_only_when_the_receiver_asked() {
    let b = SessionConfig {
        request_length: false,
        ..cfg("dtn://b/")
    };
    let mut p = pair_with(cfg("dtn://a/"), b, 3);
    p.a.send(vec![9u8; 100]);
    p.b.send(vec![8u8; 100]);
    p.run_until(Duration::from_secs(5), |p| {
        p.a.all_sent_and_acked() && p.b.all_sent_and_acked()
    });
    // B did not ask, so A sent no LENGTH; A asked, so B did.
    assert!(has(
        &p,
        PSide::B,
        "IncomingTransferStarted { transfer_id: 0, total_len: None }"
    ));
    assert!(has(
        &p,
        PSide::A,
        "IncomingTransferStarted { transfer_id: 0, total_len: Some(100) }"
    ));
}

#[test]
fn tcpcl3_too_large_bundle_is_refused_and_the_next_one_goes_through() {
    for seed in SEEDS {
        let b = SessionConfig {
            transfer_mru: 1000,
            ..cfg("dtn://b/")
        };
        let a = SessionConfig {
            tx_segment_size: 300,
            ..cfg("dtn://a/")
        };
        for announce in [true, false] {
            let mut p = pair_with(a.clone(), b.clone(), seed);
            p.a.announce_length = announce;
            p.a.send(vec![1u8; 5000]);
            p.a.send(vec![2u8; 1000]);
            p.run_until(Duration::from_secs(10), |p| p.a.all_sent_and_acked());
            assert!(has(
                &p,
                PSide::A,
                "OutgoingRefused { transfer_id: 0, reason: XferRefuseReason(2) }"
            ));
            assert!(has(
                &p,
                PSide::B,
                "IncomingTransferRefused { transfer_id: 0"
            ));
            assert_eq!(p.a.finished, [1]);
            assert_eq!(p.received_b.complete, [(1, vec![2u8; 1000])]);
            assert!(p.a.session.is_established() && p.b.session.is_established());
        }
    }
}

#[test]
fn tcpcl3_refusal_on_the_wire_and_discarding() {
    let mut r = Raw::established(cfg("dtn://me/"), 0x05, 0);
    r.auto_confirm = false;
    // S segment of 2: delivered, then the application refuses it.
    assert_eq!(r.feed(&[0x12, 2, b'a', b'b']), 4);
    r.s.refuse_transfer(0, XferRefuseReason::RETRANSMIT)
        .unwrap();
    assert_eq!(r.drain(&[]), [0x33], "REFUSE_BUNDLE, reason retransmit");
    // The rest of that bundle is discarded, then the next one is delivered.
    r.auto_confirm = true;
    r.feed(&[0x11, 3, b'x', b'y', b'z', 0x13, 1, b'k']);
    assert_eq!(
        r.delivered,
        [(0, b"ab".to_vec(), false), (1, b"k".to_vec(), true)]
    );
    assert_eq!(r.drain(&[]), [0x20, 1]);
    let ev = r.events();
    assert!(ev.contains(&Event::IncomingTransferRefused {
        transfer_id: 0,
        reason: XferRefuseReason::RETRANSMIT
    }));
    // A v4-only reason has no v3 code: sent as "unknown".
    r.auto_confirm = false;
    r.feed(&[0x12, 1, b'q']);
    r.s.refuse_transfer(2, XferRefuseReason::NOT_ACCEPTABLE)
        .unwrap();
    assert_eq!(r.drain(&[]), [0x30]);
}

#[test]
fn tcpcl3_refusal_without_negotiation_ends_the_session() {
    // The peer allows refusal but does not ask for acks: refusal is off (§4.2).
    let mut r = Raw::established(cfg("dtn://me/"), 0x04, 0);
    assert!(!r.s.negotiated().unwrap().refusal);
    r.auto_confirm = false;
    r.feed(&[0x13, 1, b'a']);
    r.s.refuse_transfer(0, XferRefuseReason::NO_RESOURCES)
        .unwrap();
    assert_eq!(r.drain(&[]), [0x50], "SHUTDOWN, never an ack");
    assert_eq!(r.s.close_reason(), Some(CloseReason::LocalClose));
}

#[test]
fn tcpcl3_peer_refusal_stops_our_bundle_mid_way() {
    let mut r = Raw::established(
        SessionConfig {
            tx_segment_size: 2,
            max_pending_acks: 1,
            ..cfg("dtn://me/")
        },
        0x05,
        0,
    );
    r.s.start_transfer(None).unwrap();
    r.s.start_transfer(None).unwrap();
    // One segment out (the ack window is 1), then the peer refuses.
    assert_eq!(r.drain(b"abcd"), [0x12, 2, b'a', b'b']);
    r.feed(&[0x32]);
    assert_eq!(
        r.events(),
        [Event::OutgoingRefused {
            transfer_id: 0,
            reason: XferRefuseReason::NO_RESOURCES
        }]
    );
    // The next bundle starts with S.
    assert_eq!(r.drain(b"wx"), [0x13, 2, b'w', b'x']);
}

/// §5.5: a receiver may refuse a bundle as soon as its LENGTH arrives; the refusal
/// belongs to that bundle, which then never starts.
#[test]
fn tcpcl3_refusal_right_after_length() {
    let mut r = Raw::established(cfg("dtn://me/"), 0x0d, 0);
    r.s.start_transfer(Some(3)).unwrap();
    r.s.start_transfer(Some(2)).unwrap();
    // Only the LENGTH of the first bundle goes out before its segment would; take it
    // alone.
    let mut buf = [0u8; 64];
    let none = |_| Ready {
        available: 0,
        complete: false,
    };
    assert_eq!(
        r.s.poll_transmit(r.now, &mut buf, none).unwrap(),
        Some(Transmit::Control(2))
    );
    assert_eq!(&buf[..2], [0x60, 3]);
    r.feed(&[0x32]);
    assert_eq!(
        r.events(),
        [Event::OutgoingRefused {
            transfer_id: 0,
            reason: XferRefuseReason::NO_RESOURCES
        }]
    );
    // The second bundle goes next, with its own LENGTH.
    assert_eq!(r.drain(b"ok"), [0x60, 2, 0x13, 2, b'o', b'k']);
}

/// Without negotiated refusal a bundle larger than `transfer_mru` ends the session
/// before any of it is delivered or acknowledged.
#[test]
fn tcpcl3_too_large_without_refusal_ends_the_session() {
    let mut r = Raw::established(
        SessionConfig {
            transfer_mru: 4,
            ..cfg("dtn://me/")
        },
        0x01,
        0,
    );
    r.feed(&[0x13, 5, b'a', b'b', b'c', b'd', b'e']);
    assert!(r.delivered.is_empty());
    assert_eq!(r.drain(&[]), [0x50], "SHUTDOWN, never an ack");
    assert_eq!(
        r.s.close_reason(),
        Some(CloseReason::ProtocolError(ProtocolError::TooLarge {
            message_type: 1
        }))
    );
}
