//! Scenario tests of the v3 session, one file per phase: two sessions in the pair
//! harness (seeded chunking, virtual clock), or one session driven by hand with bytes
//! written out from RFC 7242 ([`Raw`]), so the wire format is checked independently of
//! the session's encoder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contact;
mod ending;
mod refusal;
mod transfer;

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
