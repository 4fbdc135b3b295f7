//! Fuzzes one TCPCLv4 [`Session`] (active or passive, configuration chosen by the
//! input) with the fuzzer as its peer: arbitrary bytes or well-formed messages in
//! arbitrary chunks, interleaved with time passing (keepalive, idle, contact and
//! SESS_TERM timers), end of stream, `tls_established` at arbitrary points, the
//! application's `confirm_segment` / `refuse_transfer` decisions, and its own
//! transfers (announced lengths that may disagree with the source, sources that learn
//! their end late), `abandon_transfer`, `terminate` and `close`.
//!
//! Invariants checked on every step, besides "nothing panics":
//! - every control message the session emits decodes with proto's decoder to exactly
//!   its length (the first one as a contact header), and every segment header decodes
//!   and matches what `poll_transmit` reported;
//! - an XFER_ACK goes out only for a segment the application confirmed, with the
//!   length delivered up to it, in confirmation order: no ack for unconfirmed data,
//!   acked lengths never decrease within a transfer and never exceed what was
//!   received; incoming data arrives contiguously per transfer;
//! - our transfer IDs are never reused (strictly increasing at start and on the
//!   wire); segments follow each other without gaps, START exactly on the first, END
//!   exactly once, no empty non-final segment, none above the peer's Segment MRU,
//!   transfers never interleave, none starts after our SESS_TERM, and the session asks
//!   `ready` only about transfers it was given and still has;
//! - SESS_INIT and SESS_TERM are sent at most once; `Closed` is the last event and
//!   comes once; nothing is emitted after it;
//! - `handle_input` makes progress whenever it has no reason to pause (a segment
//!   awaiting confirmation, TLS, closed); after `handle_timeout(now)` the next
//!   deadline is later than `now`; events and control messages per step are bounded.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use proto_core::tcpcl::{
    Contact, ContactFlags, ContactHeader, DecodeLimits, Event, ExtensionItem, ExtensionItems,
    Message, MsgReject, MsgRejectReason, Ready, SegmentFlags, SessInit, SessTerm, SessTermFlags,
    SessTermReason, Session, SessionConfig, Side, State, Status, TransferLength, Transmit,
    TransmitError, XferAck, XferRefuse, XferRefuseReason, XferSegment, XferSegmentHead,
};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Scenario {
    passive: bool,
    keepalive: u8,
    segment_mru: u16,
    transfer_mru: u16,
    tx_segment_size: u16,
    can_tls: bool,
    require_tls: bool,
    require_node_authn: bool,
    idle_timeout_s: Option<u8>,
    max_incoming: u8,
    max_outgoing: u8,
    max_pending_acks: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes from the peer, fed in chunks of `step` (0: all at once).
    Bytes {
        data: Vec<u8>,
        step: u8,
    },
    /// A well-formed message from the peer, fed in chunks of `step`.
    Peer {
        msg: PeerMsg,
        step: u8,
    },
    /// Virtual time passes, in units of 50 ms; due timers fire.
    Advance(u16),
    /// The peer closes the transport.
    Eof,
    /// The runtime reports the TLS handshake done (whether or not one was asked for).
    Tls {
        authn_peer: bool,
    },
    /// How the application answers the next segments delivered.
    Policy(Policy),
    /// Confirms the segment held for confirmation, if any.
    ConfirmHeld,
    /// Refuses the transfer of the held segment (or any incoming transfer ID).
    Refuse {
        id: Option<u8>,
        reason: u8,
    },
    /// Starts a transfer of `len` bytes, announcing `announce` (`None`: no Transfer
    /// Length), whose source knows its end only after `Finish` when `late_end`.
    Start {
        len: u16,
        announce: Option<u16>,
        late_end: bool,
    },
    /// Every source that did not know its end learns it.
    Finish,
    Abandon(u8),
    Terminate(u8),
    Close,
    NoteUnread,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Policy {
    Confirm,
    Hold,
    Refuse(u8),
    RefuseAtStart(u8),
}

#[derive(Arbitrary, Debug)]
enum PeerMsg {
    Contact {
        can_tls: bool,
        version: u8,
    },
    SessInit {
        keepalive: u8,
        segment_mru: u16,
        transfer_mru: u16,
        node: u8,
        critical_ext: bool,
    },
    Segment {
        start: bool,
        end: bool,
        id: u8,
        len: u16,
        total: Option<u16>,
        critical_ext: bool,
    },
    Ack {
        flags: u8,
        id: u8,
        len: u16,
    },
    Refuse {
        reason: u8,
        id: u8,
    },
    Keepalive,
    Term {
        reply: bool,
        reason: u8,
    },
    Reject {
        reason: u8,
        header: u8,
    },
}

const NODES: [&str; 4] = ["dtn://peer/", "ipn:1.0", "not a uri", "dtn://other/"];

impl PeerMsg {
    fn encode(&self, out: &mut Vec<u8>) {
        let data = vec![0x3c; 1 << 16];
        let mut value = [0u8; 8];
        let mut buf = vec![0u8; (1 << 16) + 64];
        let n = match *self {
            PeerMsg::Contact { can_tls, version } => {
                let flags = if can_tls {
                    ContactFlags::CAN_TLS
                } else {
                    ContactFlags::EMPTY
                };
                let n = ContactHeader::new(flags).encode(&mut buf);
                if version % 8 != 0 {
                    buf[4] = version;
                }
                n
            }
            PeerMsg::SessInit {
                keepalive,
                segment_mru,
                transfer_mru,
                node,
                critical_ext,
            } => {
                let items = [ExtensionItem::new(true, 0x7777, b"x")];
                let extensions = if critical_ext {
                    ExtensionItems::from_slice(&items)
                } else {
                    ExtensionItems::EMPTY
                };
                Message::SessInit(SessInit {
                    keepalive: u16::from(keepalive % 8),
                    segment_mru: u64::from(segment_mru),
                    transfer_mru: u64::from(transfer_mru),
                    node_id: NODES[usize::from(node % 4)],
                    extensions,
                })
                .encode(&mut buf)
            }
            PeerMsg::Segment {
                start,
                end,
                id,
                len,
                total,
                critical_ext,
            } => {
                let mut flags = SegmentFlags::EMPTY;
                if start {
                    flags = flags.with(SegmentFlags::START);
                }
                if end {
                    flags = flags.with(SegmentFlags::END);
                }
                let mut items = Vec::new();
                if let Some(t) = total {
                    items.push(TransferLength(u64::from(t)).item(false, &mut value));
                }
                if critical_ext {
                    items.push(ExtensionItem::new(true, 0x7777, b"y"));
                }
                let extensions = if start {
                    ExtensionItems::from_slice(&items)
                } else {
                    ExtensionItems::EMPTY
                };
                Message::XferSegment(XferSegment {
                    flags,
                    transfer_id: u64::from(id % 4),
                    extensions,
                    data: &data[..usize::from(len)],
                })
                .encode(&mut buf)
            }
            PeerMsg::Ack { flags, id, len } => Message::XferAck(XferAck {
                flags: SegmentFlags(flags % 4),
                transfer_id: u64::from(id % 4),
                acked_len: u64::from(len),
            })
            .encode(&mut buf),
            PeerMsg::Refuse { reason, id } => Message::XferRefuse(XferRefuse {
                reason: XferRefuseReason(reason),
                transfer_id: u64::from(id % 4),
            })
            .encode(&mut buf),
            PeerMsg::Keepalive => Message::Keepalive.encode(&mut buf),
            PeerMsg::Term { reply, reason } => Message::SessTerm(SessTerm {
                flags: if reply {
                    SessTermFlags::REPLY
                } else {
                    SessTermFlags::EMPTY
                },
                reason: SessTermReason(reason),
            })
            .encode(&mut buf),
            PeerMsg::Reject { reason, header } => Message::MsgReject(MsgReject {
                reason: MsgRejectReason(reason),
                rejected_header: header,
            })
            .encode(&mut buf),
        };
        if let Ok(n) = n {
            out.extend_from_slice(&buf[..n]);
        }
    }
}

/// One of our transfers, as the application's source sees it.
#[derive(Debug)]
struct Source {
    id: u64,
    len: u64,
    framed: u64,
    complete: bool,
}

/// A delivered segment awaiting the application's decision.
#[derive(Debug, Clone, Copy)]
struct Held {
    id: u64,
    len: u64,
    end: bool,
}

/// The session plus everything the target knows about what it did.
struct Harness {
    s: Session,
    now: Instant,
    policy: Policy,
    sources: Vec<Source>,
    /// Bytes delivered per incoming transfer ID (reset when the ID starts again).
    delivered: Vec<(u64, u64)>,
    held: Option<Held>,
    /// Acks the application confirmed and the session has not sent yet, in order. Each
    /// carries the length delivered up to the confirmed segment; as delivery is checked
    /// contiguous, matching every XFER_ACK against this queue also proves acked lengths
    /// never decrease within a transfer and never exceed what was received.
    expected_acks: std::collections::VecDeque<(u64, u64, bool)>,
    /// Bytes framed so far per outgoing transfer ID.
    out_sent: Vec<(u64, u64)>,
    /// Incoming transfer IDs refused (by us or by the session).
    refused: Vec<u64>,
    /// The next ID `start_transfer` may return (IDs strictly increase).
    next_id: u64,
    /// Highest transfer ID sent with START, if any.
    last_started_on_wire: Option<u64>,
    /// Our transfer whose START went out and whose END did not.
    in_progress: Option<u64>,
    sent_any: bool,
    sent_init: bool,
    sent_term: bool,
    closed_seen: bool,
    eof: bool,
    unread: Vec<u8>,
    out: Vec<u8>,
    /// Our transfer acked lengths reported by events.
    out_acked: Vec<(u64, u64)>,
}

fn entry(v: &mut Vec<(u64, u64)>, id: u64) -> &mut u64 {
    if let Some(i) = v.iter().position(|e| e.0 == id) {
        &mut v[i].1
    } else {
        v.push((id, 0));
        &mut v.last_mut().expect("just pushed").1
    }
}

impl Harness {
    fn check_control(&mut self, bytes: &[u8]) {
        assert!(!self.closed_seen, "control message after Closed");
        if !self.sent_any {
            self.sent_any = true;
            match Contact::decode(bytes) {
                Ok(Status::Complete((Contact::V4(h), n))) => {
                    assert_eq!(n, bytes.len());
                    assert_eq!(h.flags.can_tls(), self.s.config().can_tls);
                }
                other => panic!("first message is not our contact header: {other:?}"),
            }
            return;
        }
        let m = match Message::decode_with(bytes, &DecodeLimits::UNLIMITED) {
            Ok(Status::Complete((m, n))) if n == bytes.len() => m,
            other => panic!("emitted control message does not decode: {other:?} {bytes:02x?}"),
        };
        match m {
            Message::SessInit(i) => {
                assert!(!self.sent_init, "second SESS_INIT");
                assert!(!self.sent_term, "SESS_INIT after SESS_TERM");
                assert_eq!(i.node_id, self.s.config().node_id);
                self.sent_init = true;
            }
            Message::XferAck(a) => {
                let want = self.expected_acks.pop_front();
                assert_eq!(
                    want,
                    Some((a.transfer_id, a.acked_len, a.flags.is_end())),
                    "XFER_ACK not matching the next confirmed segment"
                );
            }
            Message::XferRefuse(r) => {
                assert!(
                    self.refused.contains(&r.transfer_id),
                    "XFER_REFUSE for transfer {} nobody refused",
                    r.transfer_id
                );
            }
            Message::Keepalive => {
                assert!(self.sent_init, "KEEPALIVE before SESS_INIT");
                assert!(
                    self.s.keepalive_interval().unwrap_or(0) > 0,
                    "KEEPALIVE unnegotiated"
                );
            }
            Message::SessTerm(_) => {
                assert!(!self.sent_term, "second SESS_TERM");
                self.sent_term = true;
            }
            Message::MsgReject(_) => {}
            Message::XferSegment(_) => panic!("a segment reported as a control message"),
        }
    }

    fn check_segment(&mut self, head: &[u8], t: Transmit) {
        let Transmit::Segment {
            transfer_id,
            offset,
            header_len,
            data_len,
            end,
        } = t
        else {
            unreachable!()
        };
        assert!(!self.closed_seen, "segment after Closed");
        assert!(self.sent_init, "segment before SESS_INIT");
        let h = match XferSegmentHead::decode(head, &DecodeLimits::UNLIMITED) {
            Ok(Status::Complete((h, n))) => {
                assert_eq!(n, header_len);
                h
            }
            other => panic!("segment header does not decode: {other:?}"),
        };
        assert_eq!(h.transfer_id, transfer_id);
        assert_eq!(h.data_len, data_len as u64);
        assert_eq!(h.flags.is_end(), end);
        assert_eq!(h.flags.is_start(), offset == 0, "START iff first segment");
        let src = self
            .sources
            .iter_mut()
            .find(|s| s.id == transfer_id)
            .expect("a segment of a transfer we have");
        assert_eq!(offset, src.framed, "segments follow each other");
        assert!(end || data_len > 0, "empty non-final segment");
        src.framed += data_len as u64;
        *entry(&mut self.out_sent, transfer_id) = src.framed;
        assert!(src.framed <= src.len, "more data than the source has");
        if let Some(mru) = self.s.peer_segment_mru() {
            assert!(data_len as u64 <= mru, "segment above the peer's MRU");
        }
        if offset == 0 {
            assert!(!self.sent_term, "a transfer started after our SESS_TERM");
            assert!(
                self.last_started_on_wire.is_none_or(|l| transfer_id > l),
                "transfer ID {transfer_id} reused"
            );
            self.last_started_on_wire = Some(transfer_id);
            assert!(self.in_progress.is_none(), "transfers interleave");
            self.in_progress = Some(transfer_id);
        } else {
            assert_eq!(self.in_progress, Some(transfer_id), "transfers interleave");
        }
        if end {
            self.in_progress = None;
            self.sources.retain(|s| s.id != transfer_id);
        }
    }

    fn drain_events(&mut self) {
        let events: Vec<Event> = std::iter::from_fn(|| self.s.poll_event())
            .take(4097)
            .collect();
        assert!(events.len() <= 4096, "unbounded events");
        for (i, &e) in events.iter().enumerate() {
            assert!(!self.closed_seen, "{e:?} after Closed");
            match e {
                Event::Closed { reason } => {
                    self.closed_seen = true;
                    assert!(self.s.is_closed());
                    assert_eq!(self.s.close_reason(), Some(reason));
                }
                Event::IncomingTransferStarted { transfer_id, .. } => {
                    *entry(&mut self.delivered, transfer_id) = 0;
                    // The session may have refused it already in the same call (our
                    // limits); otherwise the application can.
                    let refused_by_core = events[i..].iter().any(|e| {
                        matches!(e, Event::IncomingTransferRefused { transfer_id: t, .. }
                            if *t == transfer_id)
                    });
                    if let Policy::RefuseAtStart(r) = self.policy {
                        if !refused_by_core && !self.s.is_closed() {
                            self.refused.push(transfer_id);
                            self.s
                                .refuse_transfer(transfer_id, XferRefuseReason(r))
                                .expect("a transfer just started can be refused");
                        }
                    }
                }
                Event::IncomingTransferRefused { transfer_id, .. } => {
                    self.refused.push(transfer_id);
                    if self.held.is_some_and(|h| h.id == transfer_id) {
                        self.held = None;
                    }
                }
                Event::IncomingTransferFinished { transfer_id, len } => {
                    let d = entry(&mut self.delivered, transfer_id);
                    assert_eq!(*d, len, "finished length differs from data delivered");
                }
                Event::OutgoingAcked {
                    transfer_id,
                    acked_len,
                    ..
                } => {
                    assert!(
                        transfer_id < self.next_id,
                        "ack event for a transfer never started"
                    );
                    let sent = *entry(&mut self.out_sent, transfer_id);
                    assert!(acked_len <= sent, "acked {acked_len} of {sent} bytes sent");
                    let a = entry(&mut self.out_acked, transfer_id);
                    assert!(acked_len >= *a, "outgoing acked length decreased");
                    *a = acked_len;
                }
                Event::OutgoingRefused { transfer_id, .. }
                | Event::OutgoingCancelled { transfer_id } => {
                    assert!(transfer_id < self.next_id);
                    self.sources.retain(|s| s.id != transfer_id);
                    if self.in_progress == Some(transfer_id) {
                        self.in_progress = None;
                    }
                }
                _ => {}
            }
        }
    }

    fn drain(&mut self) {
        self.drain_events();
        for i in 0.. {
            assert!(i < 4096, "poll_transmit never runs dry");
            let sources = &self.sources;
            let ready = |id: u64| {
                let s = sources
                    .iter()
                    .find(|s| s.id == id)
                    .expect("ready() asked about a transfer the application does not have");
                Ready {
                    available: s.len - s.framed,
                    complete: s.complete,
                }
            };
            let mut out = std::mem::take(&mut self.out);
            let r = self.s.poll_transmit(self.now, &mut out, ready);
            match r {
                Ok(Some(Transmit::Control(n))) => self.check_control(&out[..n]),
                Ok(Some(t @ Transmit::Segment { header_len, .. })) => {
                    self.check_segment(&out[..header_len], t)
                }
                Ok(None) => {
                    self.out = out;
                    break;
                }
                Err(TransmitError::Source { transfer_id, .. }) => {
                    // What a runtime does with a failed source.
                    if self.s.abandon_transfer(transfer_id).is_err() {
                        self.s.close();
                    }
                }
                Err(e @ TransmitError::Encode(_)) => panic!("64 KiB buffer too small: {e}"),
            }
            self.out = out;
            self.drain_events();
        }
        self.drain_events();
        if self.s.is_closed() {
            assert!(self.closed_seen, "closed without a Closed event");
        }
    }

    fn confirm_held(&mut self) {
        if let Some(h) = self.held.take() {
            if self.s.confirm_segment(h.id).is_ok() {
                self.expected_acks.push_back((h.id, h.len, h.end));
            }
        }
    }

    fn refuse(&mut self, id: u64, reason: u8) {
        if self.s.refuse_transfer(id, XferRefuseReason(reason)).is_ok() {
            self.refused.push(id);
            if self.held.is_some_and(|h| h.id == id) {
                self.held = None;
            }
        }
    }

    /// Feeds what is unread; stops when the session pauses for a reason.
    fn pump(&mut self) {
        let mut off = 0;
        let mut stalls = 0;
        while off < self.unread.len() && !self.eof {
            let r = self.s.handle_input(self.now, &self.unread[off..]);
            let consumed = r.consumed;
            let data = r.data.map(|d| {
                (
                    d.transfer_id,
                    d.offset,
                    d.bytes.len() as u64,
                    d.end_of_segment,
                    d.end_of_transfer,
                )
            });
            // Events first: a zero-length START segment is delivered in the call that
            // reports its `IncomingTransferStarted`.
            self.drain_events();
            if let Some((id, offset, len, end_of_segment, end_of_transfer)) = data {
                let got = entry(&mut self.delivered, id);
                assert_eq!(offset, *got, "incoming data not contiguous");
                *got += len;
                let total = *got;
                assert!(
                    total <= self.s.config().transfer_mru,
                    "delivered past our transfer MRU"
                );
                if end_of_segment {
                    self.held = Some(Held {
                        id,
                        len: total,
                        end: end_of_transfer,
                    });
                }
            }
            off += consumed;
            if self.held.is_some() {
                match self.policy {
                    Policy::Confirm | Policy::RefuseAtStart(_) => self.confirm_held(),
                    Policy::Refuse(r) => {
                        let id = self.held.map(|h| h.id).expect("held");
                        self.refuse(id, r);
                    }
                    Policy::Hold => {}
                }
            }
            self.drain();
            if consumed == 0 {
                let waiting = self.held.is_some()
                    || self.s.is_closed()
                    || self.s.state() == State::TlsHandshake;
                if waiting {
                    break;
                }
                stalls += 1;
                assert!(
                    stalls < 2,
                    "handle_input makes no progress without a reason"
                );
            } else {
                stalls = 0;
            }
        }
        self.unread.drain(..off);
        if self.s.is_closed() {
            self.unread.clear();
        }
        // Bounded: the target never holds more than one op's worth of unread input.
        if self.unread.len() > 1 << 18 {
            self.unread.clear();
        }
    }

    fn feed(&mut self, bytes: &[u8], step: u8) {
        if self.eof {
            return;
        }
        let step = if step == 0 {
            bytes.len().max(1)
        } else {
            usize::from(step)
        };
        for chunk in bytes.chunks(step) {
            self.unread.extend_from_slice(chunk);
            self.pump();
        }
    }
}

fuzz_target!(|sc: Scenario| {
    let now = Instant::now();
    let cfg = SessionConfig {
        node_id: "dtn://us/".into(),
        keepalive_interval: u16::from(sc.keepalive % 8),
        segment_mru: u64::from(sc.segment_mru),
        transfer_mru: u64::from(sc.transfer_mru),
        tx_segment_size: u64::from(sc.tx_segment_size).max(1),
        can_tls: sc.can_tls || sc.require_tls,
        require_tls: sc.require_tls,
        require_node_authn: sc.require_node_authn,
        idle_timeout: sc.idle_timeout_s.map(|s| Duration::from_secs(s.into())),
        max_incoming_transfers: usize::from(sc.max_incoming % 4) + 1,
        max_outgoing_transfers: usize::from(sc.max_outgoing % 4) + 1,
        max_pending_acks: usize::from(sc.max_pending_acks % 8) + 1,
        ..SessionConfig::default()
    };
    let side = if sc.passive {
        Side::Passive
    } else {
        Side::Active
    };
    let s = Session::new(cfg, side, now).expect("a valid configuration");
    let mut h = Harness {
        s,
        now,
        policy: Policy::Confirm,
        sources: Vec::new(),
        delivered: Vec::new(),
        held: None,
        expected_acks: Default::default(),
        out_sent: Vec::new(),
        refused: Vec::new(),
        next_id: 0,
        last_started_on_wire: None,
        in_progress: None,
        sent_any: false,
        sent_init: false,
        sent_term: false,
        closed_seen: false,
        eof: false,
        unread: Vec::new(),
        out: vec![0; 1 << 17],
        out_acked: Vec::new(),
    };
    h.drain();
    let mut wire = Vec::new();
    for op in sc.ops.iter().take(64) {
        match op {
            Op::Bytes { data, step } => h.feed(data, *step),
            Op::Peer { msg, step } => {
                wire.clear();
                msg.encode(&mut wire);
                let bytes = std::mem::take(&mut wire);
                h.feed(&bytes, *step);
                wire = bytes;
            }
            Op::Advance(units) => {
                h.now += Duration::from_millis(u64::from(*units) * 50);
                if h.s.poll_timeout().is_some_and(|t| t <= h.now) {
                    h.s.handle_timeout(h.now);
                    assert!(
                        h.s.poll_timeout().is_none_or(|t| t > h.now),
                        "a timer stays due after handle_timeout"
                    );
                }
            }
            Op::Eof => {
                if !h.eof {
                    h.eof = true;
                    h.unread.clear();
                    h.s.handle_eof(h.now);
                }
            }
            Op::Tls { authn_peer } => {
                let asked = h.s.state() == State::TlsHandshake;
                let ids: &[&str] = if *authn_peer { &["dtn://peer/"] } else { &[] };
                assert_eq!(h.s.tls_established(h.now, ids).is_ok(), asked);
            }
            Op::Policy(p) => h.policy = *p,
            Op::ConfirmHeld => h.confirm_held(),
            Op::Refuse { id, reason } => {
                let id = id
                    .map(|i| u64::from(i % 4))
                    .or(h.held.map(|x| x.id))
                    .unwrap_or(0);
                h.refuse(id, *reason);
            }
            Op::Start {
                len,
                announce,
                late_end,
            } => {
                if let Ok(id) = h.s.start_transfer(announce.map(u64::from)) {
                    assert!(id >= h.next_id, "transfer ID {id} reused");
                    h.next_id = id + 1;
                    h.sources.push(Source {
                        id,
                        len: u64::from(*len),
                        framed: 0,
                        complete: !late_end,
                    });
                }
            }
            Op::Finish => h.sources.iter_mut().for_each(|s| s.complete = true),
            Op::Abandon(i) => {
                let id = h.next_id.saturating_sub(1 + u64::from(*i % 4));
                let _ = h.s.abandon_transfer(id);
            }
            Op::Terminate(r) => {
                let _ = h.s.terminate(h.now, SessTermReason(*r));
            }
            Op::Close => h.s.close(),
            Op::NoteUnread => h.s.note_unread_input(h.now),
        }
        h.drain();
        h.pump();
    }
});
