//! Scenario tests for the session state machine, one file per phase. Two sessions run
//! against each other in the pair harness (seeded chunking, virtual clock), or one
//! session is driven by hand with crafted bytes ([`Raw`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input;
mod contact;
mod negotiation;
mod termination;
mod timers;
mod transfer;
mod transmit;

use std::time::{Duration, Instant};

use crate::tcpcl::{
    ContactFlags, ContactHeader, Event, ExtensionItem, ExtensionItems, Message, Ready,
    SegmentFlags, SessInit, Session, SessionConfig, Side, Status, Transmit, TransmitError,
    XferSegmentHead,
};
use crate::testing::tcpcl::TcpclEndpoint;
use crate::testing::Pair;

pub(super) const SEEDS: [u64; 4] = [1, 7, 0xdead_beef, 2024];

pub(super) fn config(node: &str) -> SessionConfig {
    SessionConfig {
        node_id: node.into(),
        ..SessionConfig::default()
    }
}

pub(super) type TcpclPair = Pair<TcpclEndpoint, TcpclEndpoint>;

/// A (active) and B (passive) with the given configurations.
pub(super) fn pair_with(a: SessionConfig, b: SessionConfig, seed: u64) -> TcpclPair {
    let now = Instant::now();
    let a = TcpclEndpoint::new(Session::new(a, Side::Active, now).unwrap());
    let b = TcpclEndpoint::new(Session::new(b, Side::Passive, now).unwrap());
    Pair::new(a, b, now, seed)
}

pub(super) fn pair(seed: u64) -> TcpclPair {
    pair_with(config("dtn://a/"), config("dtn://b/"), seed)
}

/// Runs until both sides are established.
pub(super) fn establish(p: &mut TcpclPair) {
    p.run_until(Duration::from_secs(5), |p| {
        p.a.session.is_established() && p.b.session.is_established()
    });
}

pub(super) fn has(p: &TcpclPair, side: crate::testing::Side, needle: &str) -> bool {
    p.events(side).iter().any(|e| e.contains(needle))
}

// ----- hand-driven session ---------------------------------------------------------------

/// One session driven by hand: bytes in, bytes and events out.
pub(super) struct Raw {
    pub(super) s: Session,
    pub(super) now: Instant,
    /// Delivered data pieces: (transfer id, bytes, end of transfer).
    pub(super) delivered: Vec<(u64, Vec<u8>, bool)>,
    /// Confirm each segment as soon as its last piece is delivered (default); when
    /// unset, `feed` stops at a segment awaiting confirmation.
    pub(super) auto_confirm: bool,
    /// Bytes of each outgoing transfer framed into segments so far.
    pub(super) framed: Vec<(u64, u64)>,
    /// Every transfer ID the session asked `ready` about, in order.
    pub(super) asked: Vec<u64>,
}

/// The application's data for one outgoing transfer, as [`Raw::transmit`] offers it:
/// the transfer's bytes from its start (as many as exist so far) and whether that is
/// all of it.
pub(super) type Src<'a> = (u64, &'a [u8], bool);

impl Raw {
    pub(super) fn new(cfg: SessionConfig, side: Side) -> Raw {
        let now = Instant::now();
        Raw {
            s: Session::new(cfg, side, now).unwrap(),
            now,
            delivered: vec![],
            auto_confirm: true,
            framed: vec![],
            asked: vec![],
        }
    }

    /// One `poll_transmit` call, with `sources` as the application's outgoing data (a
    /// transfer without an entry has nothing ready). Returns what the call produced
    /// and the bytes that go on the wire: the control message, or the segment header
    /// followed by the payload taken from the source at the offset the core named.
    pub(super) fn transmit(
        &mut self,
        sources: &[Src<'_>],
    ) -> Result<Option<(Transmit, Vec<u8>)>, TransmitError> {
        let mut buf = vec![0u8; 1 << 16];
        let framed = &self.framed;
        let asked = &mut self.asked;
        let ready = |id: u64| {
            asked.push(id);
            let done = framed.iter().find(|f| f.0 == id).map_or(0, |f| f.1);
            sources.iter().find(|s| s.0 == id).map_or(
                Ready {
                    available: 0,
                    complete: false,
                },
                |s| Ready {
                    available: (s.1.len() as u64).saturating_sub(done),
                    complete: s.2,
                },
            )
        };
        let Some(t) = self.s.poll_transmit(self.now, &mut buf, ready)? else {
            return Ok(None);
        };
        let bytes = match t {
            Transmit::Control(n) => buf[..n].to_vec(),
            Transmit::Segment {
                transfer_id,
                offset,
                header_len,
                data_len,
                ..
            } => {
                let (_, data, _) = sources
                    .iter()
                    .find(|s| s.0 == transfer_id)
                    .expect("a segment only for a transfer with data");
                let mut bytes = buf[..header_len].to_vec();
                bytes.extend_from_slice(&data[offset as usize..offset as usize + data_len]);
                match self.framed.iter_mut().find(|f| f.0 == transfer_id) {
                    Some(f) => {
                        assert_eq!(f.1, offset, "segments follow each other");
                        f.1 += data_len as u64;
                    }
                    None => {
                        assert_eq!(offset, 0, "a transfer starts at its first byte");
                        self.framed.push((transfer_id, data_len as u64));
                    }
                }
                bytes
            }
        };
        Ok(Some((t, bytes)))
    }

    /// Everything the session sends now with `sources` as the application's data,
    /// one line per message (see [`describe`]).
    pub(super) fn send_msgs(&mut self, sources: &[Src<'_>]) -> Vec<String> {
        let mut all = vec![];
        while let Some((_, bytes)) = self.transmit(sources).unwrap() {
            all.extend(bytes);
        }
        describe(&all)
    }

    /// Feeds all of `bytes` (as far as the session takes them); returns bytes consumed.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut off = 0;
        for _ in 0..10_000_000 {
            let r = self.s.handle_input(self.now, &bytes[off..]);
            off += r.consumed;
            match r.data {
                Some(d) => {
                    self.delivered
                        .push((d.transfer_id, d.bytes.to_vec(), d.end_of_transfer));
                    if d.end_of_segment {
                        if !self.auto_confirm {
                            return off;
                        }
                        self.s.confirm_segment(d.transfer_id).unwrap();
                    }
                }
                None if r.consumed == 0 => return off,
                None => {}
            }
        }
        panic!("input loop did not finish");
    }

    /// Everything the session wants to send while the application has no transfer
    /// data ready.
    pub(super) fn out(&mut self) -> Vec<u8> {
        let mut all = vec![];
        while let Some((_, bytes)) = self.transmit(&[]).unwrap() {
            all.extend(bytes);
        }
        all
    }

    /// The messages the session wants to send, one line each (contact headers as
    /// `CONTACT v4 flags`).
    pub(super) fn out_msgs(&mut self) -> Vec<String> {
        describe(&self.out())
    }

    pub(super) fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.s.poll_timeout().is_some_and(|t| t <= self.now) {
            self.s.handle_timeout(self.now);
        }
    }

    /// Data delivered for `id`, concatenated.
    pub(super) fn data_of(&self, id: u64) -> Vec<u8> {
        self.delivered
            .iter()
            .filter(|d| d.0 == id)
            .flat_map(|d| d.1.clone())
            .collect()
    }
}

/// Splits a byte stream into contact headers and messages, described one per line.
pub(super) fn describe(mut bytes: &[u8]) -> Vec<String> {
    let mut out = vec![];
    while !bytes.is_empty() {
        if bytes.starts_with(b"dtn!") {
            out.push(format!("CONTACT v{} flags={}", bytes[4], bytes[5]));
            bytes = &bytes[6..];
            continue;
        }
        match Message::decode(bytes) {
            Ok(Status::Complete((m, n))) => {
                out.push(m.to_string());
                bytes = &bytes[n..];
            }
            other => panic!("undecodable output {bytes:02x?}: {other:?}"),
        }
    }
    out
}

pub(super) fn contact(flags: u8) -> Vec<u8> {
    let mut b = vec![0; 6];
    ContactHeader::new(ContactFlags(flags))
        .encode(&mut b)
        .unwrap();
    b
}

pub(super) fn sess_init(
    node: &str,
    keepalive: u16,
    segment_mru: u64,
    ext: &[ExtensionItem<'_>],
) -> Vec<u8> {
    let m = SessInit {
        keepalive,
        segment_mru,
        transfer_mru: 1 << 30,
        node_id: node,
        extensions: ExtensionItems::from_slice(ext),
    };
    let mut b = vec![0; m.encoded_len()];
    m.encode(&mut b).unwrap();
    b
}

pub(super) fn msg(m: Message<'_>) -> Vec<u8> {
    let mut b = vec![0; m.encoded_len()];
    m.encode(&mut b).unwrap();
    b
}

/// An XFER_SEGMENT with `flags`, optional extension items (START only) and data.
pub(super) fn segment(flags: u8, id: u64, ext: &[ExtensionItem<'_>], data: &[u8]) -> Vec<u8> {
    let head = XferSegmentHead::new(
        SegmentFlags(flags),
        id,
        ExtensionItems::from_slice(ext),
        data.len() as u64,
    );
    let mut b = vec![0; head.encoded_len()];
    head.encode(&mut b).unwrap();
    b.extend_from_slice(data);
    b
}

pub(super) const START: u8 = 0x02;
pub(super) const END: u8 = 0x01;

/// A passive session that received a plain contact header and SESS_INIT
/// (`peer_keepalive`, `peer_segment_mru`); its output and events so far are drained.
pub(super) fn passive_established(
    cfg: SessionConfig,
    peer_keepalive: u16,
    peer_segment_mru: u64,
) -> Raw {
    let mut r = Raw::new(cfg, Side::Passive);
    let mut input = contact(0);
    input.extend(sess_init(
        "dtn://peer/",
        peer_keepalive,
        peer_segment_mru,
        &[],
    ));
    assert_eq!(r.feed(&input), input.len());
    let out = r.out_msgs();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(r.events().contains(&Event::SessionEstablished));
    r
}

/// An active session established against a crafted passive peer.
pub(super) fn active_established(
    cfg: SessionConfig,
    peer_keepalive: u16,
    peer_segment_mru: u64,
) -> Raw {
    let mut r = Raw::new(cfg, Side::Active);
    assert_eq!(r.out_msgs(), ["CONTACT v4 flags=0"]);
    r.feed(&contact(0));
    assert!(r.out_msgs()[0].starts_with("SESS_INIT"));
    r.feed(&sess_init(
        "dtn://peer/",
        peer_keepalive,
        peer_segment_mru,
        &[],
    ));
    assert!(r.events().contains(&Event::SessionEstablished));
    r
}
