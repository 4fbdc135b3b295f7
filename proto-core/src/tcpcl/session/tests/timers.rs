//! Timers (RFC 9174 §5.1.1, §6.1): keepalives, the receive idle limit, the optional
//! idle timeout and the bounded SESS_TERM wait.

use super::*;
use crate::tcpcl::{CloseReason, SessTermReason};
use crate::testing::Side::{A, B};

#[test]
fn keepalives_flow_when_nothing_else_is_sent() {
    for seed in SEEDS {
        let ka = |n: &str, k| SessionConfig {
            keepalive_interval: k,
            ..config(n)
        };
        let mut p = pair_with(ka("dtn://a/", 5), ka("dtn://b/", 7), seed);
        establish(&mut p);
        p.run_until(Duration::from_secs(31), |p| {
            p.elapsed() >= Duration::from_secs(30)
        });
        let a = p
            .events(B)
            .iter()
            .filter(|e| **e == "KeepaliveReceived")
            .count();
        let b = p
            .events(A)
            .iter()
            .filter(|e| **e == "KeepaliveReceived")
            .count();
        assert!((5..=7).contains(&a), "{a} keepalives from A");
        assert!((5..=7).contains(&b), "{b} keepalives from B");
        assert!(p.a.session.is_established() && p.b.session.is_established());
    }
}

#[test]
fn keepalive_waits_for_the_interval_since_the_last_message_sent() {
    let mut b = passive_established(
        SessionConfig {
            keepalive_interval: 10,
            ..config("dtn://b/")
        },
        4,
        1000,
    );
    assert_eq!(b.s.keepalive_interval(), Some(4));
    b.advance(Duration::from_secs(3));
    assert!(b.out().is_empty());
    b.feed(&[0x04]); // the peer's keepalive keeps us alive
    b.advance(Duration::from_secs(1));
    assert_eq!(b.out_msgs(), ["KEEPALIVE"]);
    b.advance(Duration::from_secs(3));
    assert!(b.out().is_empty());
    assert_eq!(b.events(), [Event::KeepaliveReceived]);
}

#[test]
fn silence_for_twice_the_keepalive_is_an_idle_timeout() {
    let mut b = passive_established(
        SessionConfig {
            keepalive_interval: 5,
            sess_term_timeout: Duration::from_secs(3),
            ..config("dtn://b/")
        },
        5,
        1000,
    );
    b.advance(Duration::from_secs(5));
    assert_eq!(b.out_msgs(), ["KEEPALIVE"]);
    b.advance(Duration::from_secs(5));
    assert_eq!(b.out_msgs(), ["SESS_TERM flags=0 reason=idle timeout"]);
    assert_eq!(
        b.events(),
        [Event::Terminating {
            reason: SessTermReason::IDLE_TIMEOUT,
            by_peer: false
        }]
    );
    // No reply within sess_term_timeout: give up.
    b.advance(Duration::from_secs(3));
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::SessTermTimeout
        }]
    );
}

#[test]
fn no_keepalive_means_no_timers() {
    let mut b = passive_established(config("dtn://b/"), 30, 1000);
    assert_eq!(b.s.keepalive_interval(), Some(0));
    assert_eq!(b.s.poll_timeout(), None);
    b.advance(Duration::from_secs(100_000));
    assert!(b.out().is_empty());
    assert!(b.s.is_established());
}

#[test]
fn optional_idle_timeout_ends_a_session_without_transfers() {
    for seed in SEEDS {
        let mut p = pair_with(
            SessionConfig {
                idle_timeout: Some(Duration::from_secs(3)),
                ..config("dtn://a/")
            },
            config("dtn://b/"),
            seed,
        );
        p.a.send(vec![7; 100]);
        p.run_until(Duration::from_secs(60), |p| p.both_closed());
        assert_eq!(p.received_b.complete, [(0, vec![7; 100])]);
        assert!(p.elapsed() >= Duration::from_secs(3));
        let reason = SessTermReason::IDLE_TIMEOUT;
        assert_eq!(
            p.a.session.close_reason(),
            Some(CloseReason::Terminated {
                reason,
                by_peer: false
            })
        );
        assert_eq!(
            p.b.session.close_reason(),
            Some(CloseReason::Terminated {
                reason,
                by_peer: true
            })
        );
    }
}

#[test]
fn a_keepalive_due_behind_an_undrained_control_message_reports_no_past_deadline() {
    // The keepalive falls due while an XFER_ACK waits to be written: that ACK will
    // reset the keepalive clock when written, so no KEEPALIVE is queued, and the
    // session must not keep reporting the passed keepalive instant (a runtime would
    // wake at once, forever).
    let mut b = passive_established(
        SessionConfig {
            keepalive_interval: 5,
            ..config("dtn://b/")
        },
        5,
        1000,
    );
    b.now += Duration::from_secs(4);
    b.feed(&segment(START | END, 0, &[], b"hi"));
    b.now += Duration::from_secs(2);
    b.s.handle_timeout(b.now);
    let next = b.s.poll_timeout();
    assert!(next.is_some_and(|t| t > b.now), "{next:?} is not after now");
    // Once the ACK is written, the keepalive clock restarts from there.
    assert_eq!(
        b.out_msgs(),
        ["XFER_ACK flags=START|END transfer_id=0 acked_len=2"]
    );
    assert_eq!(b.s.poll_timeout(), Some(b.now + Duration::from_secs(5)));
}

#[test]
fn after_handle_timeout_the_next_deadline_is_never_due() {
    // Random walks over what moves the timers (time, peer input, queued and drained
    // control messages, termination) with several timer settings: after every
    // `handle_timeout(now)`, `poll_timeout()` is `None` or after `now`.
    let mut rng = crate::testing::SplitMix64::new(99);
    for run in 0..200u64 {
        let keepalive = [0, 1, 5][(run % 3) as usize];
        let cfg = SessionConfig {
            keepalive_interval: keepalive,
            idle_timeout: (run % 2 == 0).then_some(Duration::from_secs(3)),
            sess_term_timeout: Duration::from_secs([0, 2][(run / 3 % 2) as usize]),
            ..config("dtn://b/")
        };
        let mut b = passive_established(cfg, 5, 1000);
        let mut id = 0;
        for _ in 0..60 {
            match rng.range(0, 9) {
                0 => {
                    b.feed(&[0x04]);
                }
                1 => {
                    b.feed(&segment(START | END, id, &[], b"x"));
                    id += 1;
                }
                2 => {
                    let _ = b.out();
                }
                3 => {
                    let _ = b.s.terminate(b.now, SessTermReason::UNKNOWN);
                }
                4 => b.s.note_unread_input(b.now),
                _ => b.now += Duration::from_millis(rng.range(1, 4000) as u64),
            }
            b.s.handle_timeout(b.now);
            let next = b.s.poll_timeout();
            assert!(
                next.is_none_or(|t| t > b.now),
                "run {run}: {next:?} is due after handle_timeout ({:?})",
                b.s.state()
            );
            let _ = b.events();
        }
    }
}

#[test]
fn the_receive_idle_limit_waits_for_the_reply_to_its_sess_term() {
    // The idle limit sends SESS_TERM; the peer then has `sess_term_timeout` to answer,
    // even if the runtime calls `handle_timeout` again at once.
    let mut b = passive_established(
        SessionConfig {
            keepalive_interval: 5,
            sess_term_timeout: Duration::from_secs(3),
            ..config("dtn://b/")
        },
        5,
        1000,
    );
    b.advance(Duration::from_secs(5));
    b.advance(Duration::from_secs(5));
    assert_eq!(
        b.out_msgs(),
        ["KEEPALIVE", "SESS_TERM flags=0 reason=idle timeout"]
    );
    b.s.handle_timeout(b.now);
    assert_eq!(b.s.poll_timeout(), Some(b.now + Duration::from_secs(3)));
    assert!(!b.s.is_closed());
    b.feed(&msg(crate::tcpcl::SessTerm {
        flags: crate::tcpcl::SessTermFlags::REPLY,
        reason: SessTermReason::IDLE_TIMEOUT,
    }
    .into()));
    b.s.handle_eof(b.now);
    assert_eq!(
        b.s.close_reason(),
        Some(CloseReason::Terminated {
            reason: SessTermReason::IDLE_TIMEOUT,
            by_peer: false
        })
    );
}

#[test]
fn input_left_unread_by_a_paused_runtime_keeps_the_session_alive() {
    // The peer keeps talking, but the runtime stopped reading because its application
    // is slow: the bytes wait in the transport. The session must not die of its own
    // receive idle limit (RFC 9174 §5.1.1: twice the keepalive interval).
    let mut b = passive_established(
        SessionConfig {
            keepalive_interval: 5,
            ..config("dtn://b/")
        },
        5,
        1000,
    );
    let mut sent = vec![];
    for _ in 0..60 {
        b.advance(Duration::from_secs(1));
        b.s.note_unread_input(b.now);
        sent.extend(b.out_msgs());
    }
    assert!(b.s.is_established());
    assert_eq!(sent, ["KEEPALIVE"; 12], "keepalives only, no SESS_TERM");
    assert!(b.events().is_empty());
    // Without the note, the same silence ends the session.
    for _ in 0..10 {
        b.advance(Duration::from_secs(1));
    }
    assert_eq!(
        b.out_msgs(),
        ["KEEPALIVE", "SESS_TERM flags=0 reason=idle timeout"]
    );
}
