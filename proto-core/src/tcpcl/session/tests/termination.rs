//! Session termination (RFC 9174 §6): the SESS_TERM exchange, transfers in progress
//! during it, who closes, and the bounded waits.

use super::*;
use crate::tcpcl::{CloseReason, SessTerm, SessTermFlags, SessTermReason, State, UsageError};
use crate::testing::Side::{A, B};

#[test]
fn active_initiates_and_closes_after_the_exchange() {
    for seed in SEEDS {
        let mut p = pair(seed);
        establish(&mut p);
        p.a.session.terminate(p.now, SessTermReason::BUSY).unwrap();
        p.run_until(Duration::from_secs(5), |p| p.both_closed());
        assert_eq!(
            p.events(A)[1..],
            [
                "Terminating { reason: SessTermReason(3), by_peer: false }",
                "Closed { reason: Terminated { reason: SessTermReason(3), by_peer: false } }"
            ]
        );
        assert_eq!(
            p.events(B)[1..],
            [
                "Terminating { reason: SessTermReason(3), by_peer: true }",
                "Closed { reason: Terminated { reason: SessTermReason(3), by_peer: true } }"
            ]
        );
        // A closed by itself; B only closed on A's EOF (no timer needed).
        assert!(p.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn passive_initiates_and_the_active_side_closes() {
    for seed in SEEDS {
        let mut p = pair(seed);
        establish(&mut p);
        p.b.session
            .terminate(p.now, SessTermReason::RESOURCE_EXHAUSTION)
            .unwrap();
        p.run_until(Duration::from_secs(5), |p| p.both_closed());
        assert!(
            p.elapsed() < Duration::from_secs(1),
            "A closes without waiting"
        );
        let reason = SessTermReason::RESOURCE_EXHAUSTION;
        assert_eq!(
            p.a.session.close_reason(),
            Some(CloseReason::Terminated {
                reason,
                by_peer: true
            })
        );
        assert_eq!(
            p.b.session.close_reason(),
            Some(CloseReason::Terminated {
                reason,
                by_peer: false
            })
        );
    }
}

#[test]
fn peer_sess_term_is_answered_with_reply_and_the_same_reason_even_unknown() {
    for code in [SessTermReason::BUSY, SessTermReason(0x77)] {
        let mut b = passive_established(config("dtn://b/"), 0, 1000);
        b.feed(&msg(SessTerm {
            flags: SessTermFlags::EMPTY,
            reason: code,
        }
        .into()));
        assert_eq!(
            b.out_msgs(),
            [format!("SESS_TERM flags=REPLY reason={code}")]
        );
        assert_eq!(
            b.events(),
            [Event::Terminating {
                reason: code,
                by_peer: true
            }]
        );
        assert_eq!(b.s.state(), State::Ending);
        // The passive side waits (bounded) for the active side to close.
        b.advance(b.s.config().sess_term_timeout);
        assert_eq!(
            b.events(),
            [Event::Closed {
                reason: CloseReason::Terminated {
                    reason: code,
                    by_peer: true
                }
            }]
        );
    }
}

#[test]
fn transfers_in_progress_complete_and_new_ones_are_refused() {
    for seed in SEEDS {
        let small = |n: &str| SessionConfig {
            tx_segment_size: 1000,
            max_pending_acks: 4,
            ..config(n)
        };
        let mut p = pair_with(small("dtn://a/"), small("dtn://b/"), seed);
        establish(&mut p);
        p.a.send(vec![1; 50_000]);
        p.a.send(vec![2; 10]);
        // Let a few segments of the first bundle through, then B terminates.
        for _ in 0..10_000 {
            if p.received_b
                .partial
                .get(&0)
                .is_some_and(|d| d.len() >= 5000)
            {
                break;
            }
            p.step();
        }
        assert!(p.received_b.complete.is_empty());
        p.b.session
            .terminate(p.now, SessTermReason::UNKNOWN)
            .unwrap();
        p.run_until(Duration::from_secs(10), |p| p.both_closed());
        assert_eq!(
            p.received_b.complete,
            [(0, vec![1; 50_000])],
            "in-progress transfer completes"
        );
        assert_eq!(p.a.finished, [0]);
        // The second bundle could not start: its transfer was cancelled unsent.
        assert_eq!(p.a.cancelled, [(1, vec![2; 10])]);
        assert!(has(&p, A, "OutgoingCancelled { transfer_id: 1 }"));
        assert!(p.a.outbox.is_empty());
        assert_eq!(p.a.session.start_transfer(None), Err(UsageError::Closed));
        assert!(matches!(
            p.a.session.close_reason(),
            Some(CloseReason::Terminated { by_peer: true, .. })
        ));
        assert!(!has(&p, B, "IncomingTransferStarted { transfer_id: 1"));
    }
}

#[test]
fn unstarted_transfers_are_cancelled_and_new_incoming_refused() {
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    let id = a.s.start_transfer(Some(5)).unwrap();
    a.s.terminate(a.now, SessTermReason::UNKNOWN).unwrap();
    assert_eq!(
        a.s.start_transfer(None),
        Err(UsageError::SessionTerminating)
    );
    assert_eq!(
        a.events(),
        [
            Event::Terminating {
                reason: SessTermReason::UNKNOWN,
                by_peer: false
            },
            Event::OutgoingCancelled { transfer_id: id },
        ]
    );
    assert_eq!(a.out_msgs(), ["SESS_TERM flags=0 reason=unknown"]);
    // A new incoming transfer after SESS_TERM is refused.
    a.feed(&segment(START | END, 0, &[], b"late"));
    assert_eq!(
        a.out_msgs(),
        ["XFER_REFUSE reason=session terminating transfer_id=0"]
    );
    assert!(a.delivered.is_empty());
    // The reply completes the exchange and the active side closes.
    a.feed(&msg(SessTerm {
        flags: SessTermFlags::REPLY,
        reason: SessTermReason::UNKNOWN,
    }
    .into()));
    assert!(a.out().is_empty());
    assert!(a.s.is_closed());
}

#[test]
fn the_wait_for_the_reply_is_bounded() {
    let mut a = active_established(
        SessionConfig {
            sess_term_timeout: Duration::from_secs(4),
            ..config("dtn://a/")
        },
        0,
        1000,
    );
    a.s.terminate(a.now, SessTermReason::BUSY).unwrap();
    let _ = a.out();
    assert_eq!(a.s.poll_timeout(), Some(a.now + Duration::from_secs(4)));
    a.advance(Duration::from_secs(4));
    assert!(a.events().contains(&Event::Closed {
        reason: CloseReason::SessTermTimeout
    }));
}

#[test]
fn close_is_immediate_and_eof_is_reported() {
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    a.s.terminate(a.now, SessTermReason::BUSY).unwrap();
    a.s.close();
    assert!(a.out().is_empty(), "queued output is dropped");
    assert_eq!(
        a.events().last(),
        Some(&Event::Closed {
            reason: CloseReason::LocalClose
        })
    );
    assert_eq!(
        a.s.terminate(a.now, SessTermReason::BUSY),
        Err(UsageError::Closed)
    );
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.s.handle_eof(b.now);
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::PeerClosed
        }]
    );
    assert_eq!(b.s.handle_input(b.now, b"more").consumed, 4);
}

#[test]
fn reserved_sess_term_flags_are_ignored() {
    // RFC 9174 §6.1: reserved flag bits are ignored; without REPLY this is an initial
    // SESS_TERM and is answered.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&msg(SessTerm {
        flags: SessTermFlags(0xfe),
        reason: SessTermReason::BUSY,
    }
    .into()));
    assert_eq!(b.out_msgs(), ["SESS_TERM flags=REPLY reason=busy"]);
}

#[test]
fn an_unclean_close_still_sends_the_acks_of_received_segments() {
    // RFC 9174 §6.1 SHOULD: before an unclean close (no SESS_TERM), the segments
    // received are acknowledged. Everything else queued is dropped, and no segment of
    // our own transfer in progress goes out.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    let mut input = segment(START, 1, &[], b"one");
    input.extend(segment(END, 1, &[], b"two"));
    input.extend(segment(START | END, 2, &[], b"three"));
    input.extend(segment(START, 3, &[], b"four"));
    assert_eq!(b.feed(&input), input.len());
    b.s.refuse_transfer(3, crate::tcpcl::XferRefuseReason::NO_RESOURCES)
        .unwrap();
    let tid = b.s.start_transfer(Some(100)).unwrap();
    b.events();
    b.s.close();
    assert_eq!(
        b.s.state(),
        State::Closing,
        "closing until the acks are out"
    );
    let data = [7u8; 100];
    assert_eq!(
        b.send_msgs(&[(tid, &data, true)]),
        [
            "XFER_ACK flags=START transfer_id=1 acked_len=3",
            "XFER_ACK flags=END transfer_id=1 acked_len=6",
            "XFER_ACK flags=START|END transfer_id=2 acked_len=5",
            "XFER_ACK flags=START transfer_id=3 acked_len=4",
        ]
    );
    assert!(b.s.is_closed());
    assert!(b.events().contains(&Event::Closed {
        reason: CloseReason::LocalClose
    }));
    // Input after the close is discarded, nothing more is sent.
    b.feed(&segment(START | END, 4, &[], b"late"));
    assert!(b.send_msgs(&[(tid, &data, true)]).is_empty());
}

#[test]
fn an_unclean_close_with_nothing_to_acknowledge_is_immediate() {
    // An XFER_REFUSE is queued (for an unconfirmed segment, so no ack is): dropped.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.auto_confirm = false;
    b.feed(&segment(START, 5, &[], b"data"));
    b.s.refuse_transfer(5, crate::tcpcl::XferRefuseReason::NO_RESOURCES)
        .unwrap();
    b.events();
    b.s.close();
    assert!(b.s.is_closed());
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::LocalClose
        }]
    );
    assert!(b.out_msgs().is_empty(), "no SESS_TERM, no KEEPALIVE");
}

/// Found by the `tcpcl_session` fuzz target: a message that breaks the framing after
/// our SESS_TERM (sent first, or as the reply) queued a second SESS_TERM. RFC 9174
/// §6.1 has each side send one; once ours is out, a failure closes the connection
/// without another (an unclean termination).
#[test]
fn a_protocol_error_after_our_sess_term_closes_without_a_second_one() {
    // An XFER_SEGMENT whose START extension block holds a truncated item.
    let mut malformed = vec![0x01, START];
    malformed.extend(0u64.to_be_bytes());
    malformed.extend(3u32.to_be_bytes());
    malformed.extend([0, 0, 1]);
    malformed.extend(0u64.to_be_bytes());

    // We initiated.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.s.terminate(b.now, SessTermReason::IDLE_TIMEOUT).unwrap();
    assert_eq!(b.out_msgs(), ["SESS_TERM flags=0 reason=idle timeout"]);
    let _ = b.events();
    b.feed(&malformed);
    assert_eq!(b.out_msgs(), Vec::<String>::new());
    assert!(matches!(
        b.events()[..],
        [Event::Closed {
            reason: CloseReason::ProtocolError(_)
        }]
    ));

    // We replied to the peer's.
    let mut b = passive_established(config("dtn://b/"), 0, 1000);
    b.feed(&msg(SessTerm {
        flags: SessTermFlags::EMPTY,
        reason: SessTermReason::UNKNOWN,
    }
    .into()));
    assert_eq!(b.out_msgs(), ["SESS_TERM flags=REPLY reason=unknown"]);
    b.feed(&malformed);
    assert_eq!(b.out_msgs(), Vec::<String>::new());
    assert!(b.s.is_closed());
}

/// The faults the `tcpcl_pair` fuzz target injects, in one scenario: the receiving
/// application refuses the first bundle, the second completes, and the connection is
/// cut while the third is on its way. The sender learns the refusal, finishes only the
/// acknowledged bundle, and both sides close on the cut.
#[test]
fn a_refusal_then_a_cut_connection_finish_only_what_was_acknowledged() {
    for seed in SEEDS {
        let mut p = pair(seed);
        p.b.refuse_segments = vec![(0, crate::tcpcl::XferRefuseReason::NO_RESOURCES)];
        establish(&mut p);
        p.a.send(vec![1; 100]);
        p.a.send(vec![2; 100]);
        p.a.send(vec![3; 300_000]);
        // Until A knows the fate of the first two and part of the third has arrived.
        for _ in 0..100_000 {
            let under_way = p.received_b.partial.get(&2).is_some_and(|d| !d.is_empty());
            if under_way && p.a.finished == [1] && p.a.refused_by_peer == [0] {
                break;
            }
            p.step();
        }
        assert!(p.received_b.partial.contains_key(&2), "bundle 2 under way");
        p.cut();
        p.settle();
        assert_eq!(p.a.refused_by_peer, [0]);
        assert_eq!(p.b.refused_rx, [0]);
        assert_eq!(p.a.finished, [1]);
        assert_eq!(p.received_b.complete, [(1, vec![2; 100])]);
        assert_eq!(p.a.started, [(0, 0), (1, 1), (2, 2)]);
        for side in [&p.a.session, &p.b.session] {
            assert_eq!(side.close_reason(), Some(CloseReason::PeerClosed));
        }
    }
}

/// Found by the `tcpcl_session` fuzz target: an application that refused a transfer
/// after closing the session (its segment was still awaiting confirmation) got
/// `IncomingTransferRefused` after `Closed`, which must be the last event. A closed
/// session refuses nothing: the call fails and nothing is reported or queued.
#[test]
fn refusing_after_close_is_an_error_and_reports_nothing() {
    let mut a = active_established(config("dtn://a/"), 0, 1000);
    a.auto_confirm = false;
    a.feed(&segment(START | END, 0, &[], b""));
    assert_eq!(a.delivered.len(), 1, "the segment awaits confirmation");
    let _ = a.events();
    a.s.close();
    assert_eq!(
        a.events(),
        [Event::Closed {
            reason: CloseReason::LocalClose
        }]
    );
    assert_eq!(
        a.s.refuse_transfer(0, crate::tcpcl::XferRefuseReason::NO_RESOURCES),
        Err(UsageError::Closed)
    );
    assert_eq!(a.events(), []);
    assert_eq!(a.out(), Vec::<u8>::new());
}
