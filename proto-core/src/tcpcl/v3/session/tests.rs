//! Scenario tests of the v3 session: two sessions in the pair harness (seeded chunking,
//! virtual clock), or one session driven by hand with bytes written out from RFC 7242
//! ([`Raw`]), so the wire format is checked independently of the session's encoder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use super::{Session, SessionConfig};
use crate::tcpcl::v3::{Shutdown, ShutdownReason};
use crate::tcpcl::{
    CloseReason, Event, ProtocolError, Ready, SessTermReason, Side, State, Transmit,
    XferRefuseReason,
};
use crate::testing::tcpcl::TcpclEndpoint;
use crate::testing::{Pair, Side as PSide};

const SEEDS: [u64; 4] = [1, 7, 0xdead_beef, 2024];

fn cfg(eid: &str) -> SessionConfig {
    SessionConfig {
        local_eid: eid.into(),
        ..SessionConfig::default()
    }
}

type V3Pair = Pair<TcpclEndpoint<Session>, TcpclEndpoint<Session>>;

fn pair_with(a: SessionConfig, b: SessionConfig, seed: u64) -> V3Pair {
    let now = Instant::now();
    let a = TcpclEndpoint::new(Session::new(a, Side::Active, now).unwrap());
    let b = TcpclEndpoint::new(Session::new(b, Side::Passive, now).unwrap());
    Pair::new(a, b, now, seed)
}

fn establish(p: &mut V3Pair) {
    p.run_until(Duration::from_secs(5), |p| {
        p.a.session.is_established() && p.b.session.is_established()
    });
}

fn has(p: &V3Pair, side: PSide, needle: &str) -> bool {
    p.events(side).iter().any(|e| e.contains(needle))
}

/// Our contact header bytes (RFC 7242 §4.1) for `eid` with `flags` and keepalive.
fn contact(flags: u8, keepalive: u16, eid: &str) -> Vec<u8> {
    let mut v = b"dtn!\x03".to_vec();
    v.push(flags);
    v.extend_from_slice(&keepalive.to_be_bytes());
    assert!(eid.len() < 128, "one-octet SDNV");
    v.push(eid.len() as u8);
    v.extend_from_slice(eid.as_bytes());
    v
}

// ----- hand-driven session ---------------------------------------------------------

/// One v3 session driven by hand.
struct Raw {
    s: Session,
    now: Instant,
    delivered: Vec<(u64, Vec<u8>, bool)>,
    auto_confirm: bool,
}

impl Raw {
    fn new(c: SessionConfig, side: Side) -> Raw {
        let now = Instant::now();
        Raw {
            s: Session::new(c, side, now).unwrap(),
            now,
            delivered: vec![],
            auto_confirm: true,
        }
    }

    /// Feeds `bytes`; returns how many were consumed.
    fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut off = 0;
        while off < bytes.len() {
            let r = self.s.handle_input(self.now, &bytes[off..]);
            if let Some(d) = r.data {
                self.delivered
                    .push((d.transfer_id, d.bytes.to_vec(), d.end_of_transfer));
                if d.end_of_segment && self.auto_confirm {
                    self.s.confirm_segment(d.transfer_id).unwrap();
                }
            }
            if r.consumed == 0 {
                break;
            }
            off += r.consumed;
        }
        off
    }

    /// Every byte the session sends now, with `data` as the source of every
    /// outgoing bundle (complete).
    fn drain(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        let mut buf = vec![0u8; 1 << 16];
        // Bytes of the current bundle framed so far (every bundle has `data`).
        let mut framed = 0usize;
        loop {
            let ready = |_| Ready {
                available: (data.len() - framed) as u64,
                complete: true,
            };
            match self.s.poll_transmit(self.now, &mut buf, ready).unwrap() {
                None => return out,
                Some(Transmit::Control(n)) => out.extend_from_slice(&buf[..n]),
                Some(Transmit::Segment {
                    header_len,
                    offset,
                    data_len,
                    end,
                    ..
                }) => {
                    out.extend_from_slice(&buf[..header_len]);
                    let o = offset as usize;
                    out.extend_from_slice(&data[o..o + data_len]);
                    framed = if end { 0 } else { o + data_len };
                }
            }
        }
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// Established against a peer header with `flags` and keepalive; our contact
    /// header drained.
    fn established(c: SessionConfig, flags: u8, keepalive: u16) -> Raw {
        let mut r = Raw::new(c, Side::Passive);
        let ours = r.drain(&[]);
        assert_eq!(&ours[..5], b"dtn!\x03");
        let h = contact(flags, keepalive, "dtn://peer/");
        assert_eq!(r.feed(&h), h.len());
        assert!(r.s.is_established());
        assert_eq!(r.events(), [Event::SessionEstablished]);
        r
    }
}

// ----- contact header and negotiation ----------------------------------------------

#[test]
fn tcpcl3_contact_header_is_sent_at_once_and_negotiated() {
    let mut r = Raw::new(
        SessionConfig {
            keepalive_interval: 30,
            ..cfg("dtn://me/")
        },
        Side::Active,
    );
    // §4.1: magic, version 3, flags (acks, refusal, LENGTH), keepalive, SDNV EID length.
    assert_eq!(r.drain(&[]), contact(0x0d, 30, "dtn://me/"));
    assert_eq!(r.s.state(), State::Contact);
    // The peer's header, split at every octet.
    let h = contact(0x01, 10, "dtn://peer/");
    for b in &h {
        assert_eq!(r.feed(std::slice::from_ref(b)), 1);
    }
    assert_eq!(r.events(), [Event::SessionEstablished]);
    assert_eq!(r.s.peer_node_id(), Some("dtn://peer/"));
    assert_eq!(r.s.peer_keepalive(), Some(10));
    let n = r.s.negotiated().unwrap();
    assert_eq!(n.keepalive, 10);
    assert!(n.acks && !n.refusal && !n.send_length && n.length_requested);
}

#[test]
fn tcpcl3_pair_establishes_with_every_chunking() {
    for seed in SEEDS {
        let mut p = pair_with(cfg("dtn://a/"), cfg("dtn://b/"), seed);
        establish(&mut p);
        assert_eq!(p.a.session.peer_node_id(), Some("dtn://b/"));
        assert_eq!(p.b.session.peer_node_id(), Some("dtn://a/"));
        let n = p.a.session.negotiated().unwrap();
        assert!(n.acks && n.refusal && n.send_length);
    }
}

#[test]
fn tcpcl3_v4_header_gets_v3_header_and_shutdown_version_mismatch() {
    let mut r = Raw::new(cfg("dtn://me/"), Side::Passive);
    // A v4 contact header: magic, version 4, flags.
    assert_eq!(r.feed(b"dtn!\x04\x00"), 6);
    let mut want = contact(0x0d, 0, "dtn://me/");
    want.extend_from_slice(&[0x52, 0x01]); // SHUTDOWN, R flag, reason Version mismatch
    assert_eq!(r.drain(&[]), want);
    assert!(r.s.is_closed());
    assert_eq!(
        r.events(),
        [Event::Closed {
            reason: CloseReason::VersionMismatch { version: 4 }
        }]
    );
    // Decided from the version octet alone.
    let mut r = Raw::new(cfg("dtn://me/"), Side::Active);
    r.drain(&[]);
    assert_eq!(r.feed(b"dtn!\x07"), 5);
    assert_eq!(r.drain(&[]), [0x52, 0x01]);
    assert_eq!(
        r.s.close_reason(),
        Some(CloseReason::VersionMismatch { version: 7 })
    );
}

#[test]
fn tcpcl3_bad_magic_and_oversized_eid_close() {
    let mut r = Raw::new(cfg("dtn://me/"), Side::Passive);
    r.drain(&[]);
    r.feed(b"HTTP/1.1");
    assert_eq!(r.s.close_reason(), Some(CloseReason::BadMagic));
    assert_eq!(r.drain(&[]), b"");
    // An EID longer than max_eid_len is refused from its length field alone.
    let mut r = Raw::new(
        SessionConfig {
            max_eid_len: 16,
            ..cfg("dtn://me/")
        },
        Side::Passive,
    );
    r.drain(&[]);
    let mut h = b"dtn!\x03\x00\x00\x00".to_vec();
    h.extend_from_slice(&[0x8f, 0xff, 0xff, 0xff, 0x7f]); // ~4 GiB EID
    assert_eq!(r.feed(&h), h.len());
    assert_eq!(
        r.s.close_reason(),
        Some(CloseReason::ProtocolError(ProtocolError::TooLarge {
            message_type: 0
        }))
    );
    assert_eq!(r.drain(&[]), [0x50]);
}

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
