//! Structure-aware fuzzing of two class 0 COTP connections (A active, B passive)
//! talking through the pair harness (`proto_core::testing`): a generated scenario
//! picks both configurations (TPDU sizes, preferred maximum, message limit, timers),
//! the messages each side sends, how the byte streams are chunked, and faults at any
//! point: the connection cut, a side disconnecting, time jumping ahead.
//!
//! Invariants, checked once the pair has run to its end:
//! - each side receives a prefix of the messages the other sent, in order, each one
//!   complete and byte-exact: nothing is lost in the middle, duplicated, corrupted or
//!   spliced, and a message above the receiver's limit ends the connection instead of
//!   being delivered;
//! - without faults every message is delivered and both sides end with the transport
//!   closed (the class 0 release);
//! - both connections end closed with a close reason; a receiver left holding part of
//!   a message reports it lost (`Truncated`) or the error that ended the connection.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use proto_core::cotp::connection::{CloseReason, Config, Connection, ProtocolError, Side};
use proto_core::cotp::{DisconnectReason, TpduSize};
use proto_core::testing::cotp::CotpEndpoint;
use proto_core::testing::{Delivered, Pair};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Scenario {
    a: Cfg,
    b: Cfg,
    seed: u64,
    max_chunk: u16,
    /// Message lengths; `true` sends from A.
    messages: Vec<(u16, bool)>,
    actions: Vec<Action>,
}

#[derive(Arbitrary, Debug)]
struct Cfg {
    tpdu_size: u8,
    preferred_max: Option<u16>,
    max_message: u16,
    inactivity_s: Option<u8>,
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
    /// A side disconnects with a DR.
    Close { a: bool, reason: u8 },
}

fn config(c: &Cfg) -> Config {
    Config {
        tpdu_size: TpduSize::from_code(7 + c.tpdu_size % 7).unwrap_or(TpduSize::S1024),
        preferred_max_tpdu_size: c.preferred_max.map(|p| u32::from(p) * 8),
        max_message_size: usize::from(c.max_message) + 1,
        inactivity_timeout: c
            .inactivity_s
            .map(|s| Duration::from_secs(u64::from(s) + 1)),
        ..Config::default()
    }
}

/// Message `i`'s bytes: distinct per message wherever the length allows.
fn message(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (i as u8).wrapping_mul(53) ^ (j as u8).wrapping_mul(13) ^ (j >> 8) as u8)
        .collect()
}

/// Checks what `receiver` got from a sender of `sent`; returns how many arrived.
fn check_direction(sent: &[Vec<u8>], received: &Delivered, receiver: &Connection) -> usize {
    assert!(
        received.complete.len() <= sent.len(),
        "more messages delivered than sent"
    );
    for (i, (n, data)) in received.complete.iter().enumerate() {
        assert_eq!(*n, i as u64, "messages numbered out of order");
        assert!(
            data == &sent[i],
            "message {i} delivered as {} bytes that are not the {} sent",
            data.len(),
            sent[i].len()
        );
    }
    let k = received.complete.len();
    for (id, part) in &received.partial {
        assert_eq!(*id, k as u64, "a partial message other than the next one");
        assert!(
            sent.get(k).is_some_and(|m| m.starts_with(part)),
            "partial message {k} is not a prefix of the one sent"
        );
        if !part.is_empty() {
            assert!(
                !matches!(
                    receiver.close_reason(),
                    Some(CloseReason::TransportClosed) | None
                ),
                "part of message {k} lost without an error: {:?}",
                receiver.close_reason()
            );
        }
    }
    k
}

fuzz_target!(|s: Scenario| {
    let now = Instant::now();
    let (ca, cb) = (config(&s.a), config(&s.b));
    let (Ok(ca_conn), Ok(cb_conn)) = (
        Connection::new(ca.clone(), Side::Active, now),
        Connection::new(cb.clone(), Side::Passive, now),
    ) else {
        return;
    };
    let mut a = CotpEndpoint::new(ca_conn);
    let mut b = CotpEndpoint::new(cb_conn);
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    for (len, on_a) in s.messages.iter().take(8) {
        // Class 0 cannot send an empty message.
        let len = (usize::from(*len) % 6_000).max(1);
        if *on_a {
            let m = message(from_a.len(), len);
            a.send(m.clone());
            from_a.push(m);
        } else {
            let m = message(from_b.len() + 100, len);
            b.send(m.clone());
            from_b.push(m);
        }
    }
    // Chunks down to one byte, but not so small that a run takes thousands of steps.
    let total: usize = from_a.iter().chain(&from_b).map(Vec::len).sum();
    let mut p = Pair::new(a, b, now, s.seed);
    p.max_chunk = usize::from(s.max_chunk % 4096).max(total / 256).max(1);

    let mut faults = false;
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
                faults = true;
                p.cut();
            }
            Action::Close { a, reason } => {
                faults = true;
                let e = if *a { &mut p.a } else { &mut p.b };
                e.conn.close(DisconnectReason(*reason));
            }
        }
    }
    // Without faults, the class 0 release: once everything is sent and received, A
    // closes the transport.
    p.settle();
    if !faults {
        assert!(p.a.conn.is_open() || limit_hit(&p.a.conn, &p.b.conn));
        p.cut();
    }
    for _ in 0..16 {
        p.settle();
        if p.a.conn.is_closed() && p.b.conn.is_closed() {
            break;
        }
        p.advance(Duration::from_secs(3600));
    }
    if !(p.a.conn.is_closed() && p.b.conn.is_closed()) {
        // Nothing bounds an open, idle class 0 connection without an inactivity timer;
        // the runtime would close it. Do that, then check.
        p.cut();
        p.settle();
    }
    assert!(p.a.conn.is_closed() && p.b.conn.is_closed());
    assert!(p.a.conn.close_reason().is_some() && p.b.conn.close_reason().is_some());
    let got_b = check_direction(&from_a, &p.received_b, &p.b.conn);
    let got_a = check_direction(&from_b, &p.received_a, &p.a.conn);
    if !faults {
        let too_large =
            |sent: &[Vec<u8>], cfg: &Config| sent.iter().any(|m| m.len() > cfg.max_message_size);
        if !too_large(&from_a, &cb) && !too_large(&from_b, &ca) && !limit_hit(&p.a.conn, &p.b.conn)
        {
            assert_eq!(got_b, from_a.len(), "messages from A lost without a fault");
            assert_eq!(got_a, from_b.len(), "messages from B lost without a fault");
        }
    }
});

/// Whether a side ended for a reason the scenario allows without faults: a message
/// over the receiver's limit, or an inactivity timer.
fn limit_hit(a: &Connection, b: &Connection) -> bool {
    [a, b].iter().any(|c| {
        matches!(
            c.close_reason(),
            Some(CloseReason::ProtocolError(
                ProtocolError::MessageTooLarge { .. }
            )) | Some(CloseReason::TimedOut(_))
                | Some(CloseReason::PeerDisconnect { .. })
        )
    })
}
