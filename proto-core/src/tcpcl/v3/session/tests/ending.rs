//! Keepalive, idle shutdown and SHUTDOWN both ways (RFC 7242 §5.6, §6), and the pinned transcript.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

// ----- keepalive and idle ----------------------------------------------------------

#[test]
fn tcpcl3_keepalives_flow_and_silence_ends_the_session() {
    let c = |eid: &str| SessionConfig {
        keepalive_interval: 2,
        ..cfg(eid)
    };
    let mut p = pair_with(c("dtn://a/"), c("dtn://b/"), 5);
    establish(&mut p);
    p.run_until(Duration::from_secs(20), |p| {
        p.elapsed() >= Duration::from_secs(15)
    });
    assert!(p.a.session.is_established() && p.b.session.is_established());
    assert!(has(&p, PSide::A, "KeepaliveReceived"));
    assert!(has(&p, PSide::B, "KeepaliveReceived"));

    // A silent peer: SHUTDOWN (Idle timeout) after twice the interval (§5.6).
    let mut r = Raw::established(c("dtn://me/"), 0x00, 3);
    assert_eq!(r.s.keepalive_interval(), Some(2));
    let t0 = r.now;
    r.now = t0 + Duration::from_secs(2);
    r.s.handle_timeout(r.now);
    assert_eq!(r.drain(&[]), [0x40], "KEEPALIVE after the interval");
    r.now = t0 + Duration::from_secs(4);
    r.s.handle_timeout(r.now);
    assert_eq!(r.drain(&[]), [0x52, 0x00]);
    assert_eq!(
        r.s.close_reason(),
        Some(CloseReason::Terminated {
            reason: SessTermReason::IDLE_TIMEOUT,
            by_peer: false
        })
    );
    assert!(r.s.is_closed());
}

#[test]
fn tcpcl3_keepalive_zero_disables_and_idle_timeout_shuts_down() {
    let mut r = Raw::established(
        SessionConfig {
            keepalive_interval: 5,
            idle_timeout: Some(Duration::from_secs(60)),
            ..cfg("dtn://me/")
        },
        0x00,
        0,
    );
    assert_eq!(r.s.keepalive_interval(), Some(0));
    assert_eq!(r.s.poll_timeout(), Some(r.now + Duration::from_secs(60)));
    r.now += Duration::from_secs(60);
    r.s.handle_timeout(r.now);
    // §6.2: SHUTDOWN with reason Idle timeout.
    assert_eq!(r.drain(&[]), [0x52, 0x00]);
    assert!(r.s.is_closed());
}

// ----- SHUTDOWN ----------------------------------------------------------------------

#[test]
fn tcpcl3_shutdown_with_reason_and_delay_both_ways() {
    for seed in SEEDS {
        let mut p = pair_with(cfg("dtn://a/"), cfg("dtn://b/"), seed);
        establish(&mut p);
        let s = Shutdown {
            reason: Some(ShutdownReason::BUSY),
            delay: Some(300),
        };
        p.a.session.shutdown(p.now, s).unwrap();
        p.run_until(Duration::from_secs(5), |p| p.both_closed());
        assert_eq!(p.b.session.peer_shutdown(), Some(s));
        // The side that sends SHUTDOWN closes once it is written (§6.1); B's own
        // SHUTDOWN meets a closed connection.
        assert_eq!(p.a.session.peer_shutdown(), None);
        let closed = |by_peer| {
            Some(CloseReason::Terminated {
                reason: SessTermReason::BUSY,
                by_peer,
            })
        };
        assert_eq!(p.a.session.close_reason(), closed(false));
        assert_eq!(p.b.session.close_reason(), closed(true));
        assert!(has(
            &p,
            PSide::B,
            "Terminating { reason: SessTermReason(3), by_peer: true }"
        ));
    }
}

#[test]
fn tcpcl3_shutdown_waits_for_bundles_in_progress() {
    let mut p = pair_with(
        SessionConfig {
            tx_segment_size: 100,
            ..cfg("dtn://a/")
        },
        cfg("dtn://b/"),
        11,
    );
    establish(&mut p);
    p.a.send(vec![3u8; 10_000]);
    p.step();
    p.step();
    assert!(p.a.session.transfers_in_progress());
    p.a.session
        .terminate(p.now, SessTermReason::UNKNOWN)
        .unwrap();
    assert!(p.a.session.start_transfer(None).is_err());
    p.run_until(Duration::from_secs(5), |p| p.both_closed());
    assert_eq!(p.a.finished, [0]);
    assert_eq!(p.received_b.complete, [(0, vec![3u8; 10_000])]);
}

#[test]
fn tcpcl3_received_shutdown_on_the_wire() {
    let table: &[(&[u8], Shutdown, SessTermReason)] = &[
        (&[0x50], Shutdown::default(), SessTermReason::UNKNOWN),
        (
            &[0x52, 0x02],
            Shutdown {
                reason: Some(ShutdownReason::BUSY),
                delay: None,
            },
            SessTermReason::BUSY,
        ),
        (
            &[0x51, 0x81, 0x00],
            Shutdown {
                reason: None,
                delay: Some(128),
            },
            SessTermReason::UNKNOWN,
        ),
        (
            &[0x53, 0x09, 0x05],
            Shutdown {
                reason: Some(ShutdownReason(9)),
                delay: Some(5),
            },
            SessTermReason::UNKNOWN,
        ),
    ];
    for &(bytes, s, reason) in table {
        let mut r = Raw::established(cfg("dtn://me/"), 0x01, 0);
        r.feed(bytes);
        assert_eq!(r.s.peer_shutdown(), Some(s));
        // Our own SHUTDOWN answers it before the close.
        assert_eq!(r.drain(&[]), [0x50], "{bytes:02x?}");
        assert_eq!(
            r.events(),
            [
                Event::Terminating {
                    reason,
                    by_peer: true
                },
                Event::Closed {
                    reason: CloseReason::Terminated {
                        reason,
                        by_peer: true
                    }
                }
            ]
        );
    }
    // pyd3tn's ending: SHUTDOWN and close, right after its bundle.
    let mut r = Raw::established(cfg("dtn://me/"), 0x00, 0);
    r.feed(&[0x13, 2, b'h', b'i', 0x50]);
    r.s.handle_eof(r.now);
    assert_eq!(r.delivered, [(0, b"hi".to_vec(), true)]);
    assert_eq!(
        r.s.close_reason(),
        Some(CloseReason::Terminated {
            reason: SessTermReason::UNKNOWN,
            by_peer: true
        })
    );
    // A close without SHUTDOWN is not clean.
    let mut r = Raw::established(cfg("dtn://me/"), 0x00, 0);
    r.s.handle_eof(r.now);
    assert_eq!(r.s.close_reason(), Some(CloseReason::PeerClosed));
}

/// The whole life of a session, pinned as a transcript.
#[test]
fn tcpcl3_transcript() {
    let mut p = pair_with(cfg("dtn://a/"), cfg("dtn://b/"), 1);
    p.a.terminate_when_idle = Some(SessTermReason::UNKNOWN);
    p.a.send(b"bundle".to_vec());
    p.run_until(Duration::from_secs(5), |p| p.both_closed());
    let lines: Vec<String> = p
        .transcript
        .iter()
        .map(|e| format!("{:?} {}", e.side, e.event))
        .collect();
    assert_eq!(
        lines,
        [
            "A SessionEstablished",
            "B SessionEstablished",
            "B IncomingTransferStarted { transfer_id: 0, total_len: Some(6) }",
            "B IncomingTransferFinished { transfer_id: 0, len: 6 }",
            "A OutgoingAcked { transfer_id: 0, acked_len: 6, finished: true }",
            "A Terminating { reason: SessTermReason(0), by_peer: false }",
            "A Closed { reason: Terminated { reason: SessTermReason(0), by_peer: false } }",
            "B Terminating { reason: SessTermReason(0), by_peer: true }",
            "B Closed { reason: Terminated { reason: SessTermReason(0), by_peer: true } }",
        ],
        "{}",
        p.transcript_text()
    );
}
