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
