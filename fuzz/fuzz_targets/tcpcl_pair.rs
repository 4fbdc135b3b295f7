//! Structure-aware fuzzing of two TCPCLv4 sessions talking to each other through the
//! pair harness (`proto_core::testing`): a generated scenario picks both
//! configurations (MRUs, segment sizes, keepalive, TLS, ack backlog), the bundles each
//! side sends, how the byte streams are chunked, and faults at any point: the
//! connection cut, a side closing or terminating, the receiving application refusing
//! chosen segments, time jumping ahead.
//!
//! Invariants, checked once the pair has run to its end:
//! - a bundle the sender reports delivered (final XFER_ACK) was delivered to the
//!   receiving application exactly once, byte-exact;
//! - nothing is delivered twice, corrupted or spliced: every completed bundle at a
//!   receiver is, byte for byte, the bundle its transfer ID was started for;
//! - every bundle the sender does not report delivered is reported refused,
//!   cancelled or failed with a reason (a start error, or the session's close
//!   reason); bundles delivered but not reported delivered (counted apart) occur
//!   only when the connection was cut or a side closed before their final XFER_ACK,
//!   never after a graceful SESS_TERM exchange;
//! - both sessions end closed with a close reason, and without faults every bundle is
//!   delivered or refused by the application or by the receiver's limits.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use proto_core::tcpcl::{
    CloseReason, SessTermReason, Session, SessionConfig, Side, State, XferRefuseReason,
};
use proto_core::testing::tcpcl::TcpclEndpoint;
use proto_core::testing::{Delivered, Pair};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Scenario {
    a: Cfg,
    b: Cfg,
    tls: bool,
    seed: u64,
    max_chunk: u16,
    announce_a: bool,
    announce_b: bool,
    /// Bundle lengths; `true` sends from A.
    bundles: Vec<(u16, bool)>,
    /// Segments (in arrival order) the receiving application refuses.
    refuse_a: Vec<(u8, u8)>,
    refuse_b: Vec<(u8, u8)>,
    actions: Vec<Action>,
}

#[derive(Arbitrary, Debug)]
struct Cfg {
    keepalive: u8,
    segment_mru: u16,
    transfer_mru: u16,
    tx_segment_size: u16,
    max_pending_acks: u8,
    max_outgoing: u8,
}

#[derive(Arbitrary, Debug)]
enum Action {
    /// A few harness steps without the clock moving.
    Steps(u8),
    /// Run until quiet.
    Settle,
    /// Virtual time jumps to the next deadline (at most this many seconds ahead).
    Advance(u8),
    /// The connection is cut (both sides see end of stream, bytes in flight are lost).
    Cut,
    Terminate {
        a: bool,
        reason: u8,
    },
    Close {
        a: bool,
    },
}

fn config(c: &Cfg, node: &str, tls: bool) -> SessionConfig {
    SessionConfig {
        node_id: node.into(),
        keepalive_interval: u16::from(c.keepalive % 4),
        segment_mru: u64::from(c.segment_mru % 2048),
        transfer_mru: u64::from(c.transfer_mru),
        tx_segment_size: u64::from(c.tx_segment_size % 2048).max(1),
        can_tls: tls,
        max_pending_acks: usize::from(c.max_pending_acks % 8) + 1,
        max_outgoing_transfers: usize::from(c.max_outgoing % 4) + 1,
        ..SessionConfig::default()
    }
}

/// Bundle `i`'s bytes: distinct per bundle wherever the length allows.
fn bundle(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (i as u8).wrapping_mul(37) ^ (j as u8).wrapping_mul(11) ^ (j >> 8) as u8)
        .collect()
}

/// Whether `sender`'s outcome agrees with what `received` (the other side's
/// application) holds. Returns how many bundles were delivered without the sender
/// being told.
fn check_direction(
    sender: &TcpclEndpoint,
    bundles: &[Vec<u8>],
    receiver: &TcpclEndpoint,
    received: &Delivered,
    faults: bool,
) -> usize {
    let id_of = |seq: usize| sender.started.iter().find(|s| s.1 == seq).map(|s| s.0);
    // Every completed bundle is the one its transfer ID was started for, once.
    let mut seen = Vec::new();
    for (id, data) in &received.complete {
        assert!(!seen.contains(id), "transfer {id} delivered twice");
        seen.push(*id);
        let seq = sender
            .started
            .iter()
            .find(|s| s.0 == *id)
            .map(|s| s.1)
            .unwrap_or_else(|| panic!("transfer {id} delivered but never started"));
        assert!(
            data == &bundles[seq],
            "transfer {id} delivered {} bytes that are not bundle {seq} ({} bytes)",
            data.len(),
            bundles[seq].len()
        );
        assert!(
            !receiver.refused_rx.contains(id),
            "a refused transfer completed"
        );
    }
    let refused = &sender.refused_by_peer;
    let mut unreported_deliveries = 0;
    for seq in 0..bundles.len() {
        let id = id_of(seq);
        let finished = id.is_some_and(|id| sender.finished.contains(&id));
        let delivered = id.is_some_and(|id| seen.contains(&id));
        if finished {
            assert!(delivered, "bundle {seq} acknowledged but not delivered");
            continue;
        }
        let refused = id.is_some_and(|id| refused.contains(&id));
        let cancelled = id.is_some_and(|id| sender.cancelled.iter().any(|c| c.0 == id));
        // Not started: a start error, or the session ended first; started: the
        // session ended before the final XFER_ACK. Either way the runtime reports the
        // bundle failed with the start error or the session's close reason.
        let failed =
            (id.is_none() && !sender.errors.is_empty()) || sender.session.close_reason().is_some();
        assert!(
            refused || cancelled || failed,
            "bundle {seq} neither delivered nor reported failed"
        );
        if delivered {
            assert!(!refused, "bundle {seq} refused yet delivered");
            unreported_deliveries += 1;
        }
        if !faults && receiver.refuse_segments.is_empty() {
            // Without faults a bundle fails only by the receiver's limits.
            let r = receiver.session.config();
            let limited = bundles[seq].len() as u64 > r.transfer_mru || r.segment_mru == 0;
            assert!(
                refused || limited,
                "bundle {seq} ({} bytes) lost without a fault; close reason {:?}",
                bundles[seq].len(),
                sender.session.close_reason()
            );
        }
    }
    unreported_deliveries
}

fuzz_target!(|s: Scenario| {
    let now = Instant::now();
    let ca = config(&s.a, "dtn://a/", s.tls);
    let cb = config(&s.b, "dtn://b/", s.tls);
    let (Ok(sa), Ok(sb)) = (
        Session::new(ca, Side::Active, now),
        Session::new(cb, Side::Passive, now),
    ) else {
        return;
    };
    let mut a = TcpclEndpoint::new(sa);
    let mut b = TcpclEndpoint::new(sb);
    a.announce_length = s.announce_a;
    b.announce_length = s.announce_b;
    a.refuse_segments = s
        .refuse_a
        .iter()
        .take(4)
        .map(|r| (u64::from(r.0 % 32), XferRefuseReason(r.1)))
        .collect();
    b.refuse_segments = s
        .refuse_b
        .iter()
        .take(4)
        .map(|r| (u64::from(r.0 % 32), XferRefuseReason(r.1)))
        .collect();
    // At most 64 segments a bundle (edge sizes around one segment stay reachable), so
    // an input runs in milliseconds.
    let seg = |from: &TcpclEndpoint, to: &TcpclEndpoint| {
        let c = (from.session.config(), to.session.config());
        c.0.tx_segment_size.min(c.1.segment_mru).clamp(1, 6_000) as usize
    };
    let (seg_ab, seg_ba) = (seg(&a, &b), seg(&b, &a));
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    for (len, on_a) in s.bundles.iter().take(8) {
        let cap = 64 * if *on_a { seg_ab } else { seg_ba };
        let len = usize::from(*len) % 6_000 % (cap + 1);
        if *on_a {
            let data = bundle(from_a.len(), len);
            a.send(data.clone());
            from_a.push(data);
        } else {
            let data = bundle(from_b.len() + 100, len);
            b.send(data.clone());
            from_b.push(data);
        }
    }
    // Chunks down to one byte, but not so small that a run takes thousands of steps.
    let total: usize = from_a.iter().chain(&from_b).map(Vec::len).sum();
    let mut p = Pair::new(a, b, now, s.seed);
    p.max_chunk = usize::from(s.max_chunk % 4096).max(total / 256).max(1);

    // `faults`: anything but a clean run; `hard_faults`: the connection cut or a side
    // closed without the SESS_TERM exchange.
    let (mut faults, mut hard_faults) = (false, false);
    for action in s.actions.iter().take(32) {
        match action {
            Action::Steps(n) => {
                for _ in 0..*n % 16 {
                    p.step();
                }
            }
            Action::Settle => p.settle(),
            Action::Advance(secs) => {
                p.settle();
                p.advance(Duration::from_secs(u64::from(*secs)));
            }
            Action::Cut => {
                (faults, hard_faults) = (true, true);
                p.cut();
            }
            Action::Terminate { a, reason } => {
                faults = true;
                let e = if *a { &mut p.a } else { &mut p.b };
                let _ = e.session.terminate(p.now, SessTermReason(*reason));
            }
            Action::Close { a } => {
                (faults, hard_faults) = (true, true);
                if *a {
                    p.a.session.close();
                } else {
                    p.b.session.close();
                }
            }
        }
    }
    // Run to the end: once both sides have sent everything and had it acknowledged,
    // A ends the session (the receiving side must not, or the other's unstarted
    // bundles would be cancelled, RFC 9174 §6.1); timers (contact, keepalive,
    // SESS_TERM) bound every other wait.
    for _ in 0..64 {
        p.settle();
        if p.a.session.is_closed() && p.b.session.is_closed() {
            break;
        }
        if p.a.session.state() == State::Established
            && p.a.all_sent_and_acked()
            && p.b.all_sent_and_acked()
        {
            let _ = p.a.session.terminate(p.now, SessTermReason::UNKNOWN);
            continue;
        }
        p.advance(Duration::from_secs(3600));
    }
    assert!(
        p.a.session.is_closed() && p.b.session.is_closed(),
        "sessions still open after 64 deadlines:\n{}",
        p.transcript_text()
    );
    for side in [&p.a, &p.b] {
        assert!(side.session.close_reason().is_some());
        if !faults {
            assert!(
                matches!(
                    side.session.close_reason(),
                    Some(CloseReason::Terminated { .. })
                ),
                "a fault-free session ended with {:?}\n{}",
                side.session.close_reason(),
                p.transcript_text()
            );
        }
    }
    let received_b = p.received_b.clone();
    let received_a = p.received_a.clone();
    let unreported = check_direction(&p.a, &from_a, &p.b, &received_b, faults)
        + check_direction(&p.b, &from_b, &p.a, &received_a, faults);
    assert!(
        hard_faults || unreported == 0,
        "{unreported} bundles delivered but not acknowledged without the connection dropping"
    );
});
