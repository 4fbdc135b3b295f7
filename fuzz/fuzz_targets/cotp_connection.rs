//! Fuzzes one class 0 COTP [`Connection`] (active or passive, chosen by the input) as
//! the only real party: the peer is the fuzzer, which sends arbitrary bytes or
//! well-formed TPDUs in arbitrary chunks, interleaved with timeouts, end of stream and
//! the application's commands (send, close, accept/refuse, raw TPDUs).
//!
//! Invariants checked on every step, besides "nothing panics":
//! - every byte the connection emits is a whole TPKT frame holding a TPDU that proto's
//!   own decoder accepts, and the TPDU is one the state allows: a CR only as the
//!   active side's first TPDU, a CC only from the passive side after a CR arrived and
//!   at most once, DTs only while open, sized within the negotiated TPDU size, nothing
//!   but raw TPDUs after the final DR/DC/ER;
//! - `Closed` is reported at most once, is the last event, and matches
//!   `close_reason()`; a closed connection stays closed;
//! - `handle_input` makes progress once the events are drained; a received message
//!   never exceeds `max_message_size`; events and pending TPDUs per step are bounded;
//!   after `handle_timeout(now)` the next deadline is later than `now`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use proto_core::cotp::connection::{Config, Connection, Event, Side, State};
use proto_core::cotp::{
    decode_frame, Connect, Data, DisconnectConfirm, DisconnectReason, DisconnectRequest, ErrorTpdu,
    Format, Param, Params, RejectCause, Tpdu, TpduKind, TpduSize, Tsap,
};
use proto_core::tpkt::{Status, DEFAULT_MAX_FRAME_LEN};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Scenario {
    passive: bool,
    manual_accept: bool,
    /// TPDU size code offset (7 = 128 … 13 = 8192).
    tpdu_size: u8,
    preferred_max: Option<u16>,
    local_tsap: Option<u8>,
    max_message: u16,
    connect_timeout_ms: Option<u16>,
    inactivity_ms: Option<u16>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes from the peer, fed in chunks of `step` (0: all at once).
    Bytes {
        data: Vec<u8>,
        step: u8,
    },
    /// A well-formed TPDU from the peer, fed in chunks of `step`.
    Peer {
        tpdu: PeerTpdu,
        step: u8,
    },
    /// Virtual time passes; due timers fire.
    Advance(u16),
    /// The peer closes the transport.
    Eof,
    /// The application sends a message.
    Send {
        len: u16,
        end: bool,
    },
    /// The application closes.
    Close(u8),
    Accept,
    Refuse(u8),
    /// The application queues a raw TPDU (used when proto's decoder accepts it).
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum PeerTpdu {
    Cr {
        src_ref: u16,
        class: u8,
        size: Option<u8>,
        called: Option<u8>,
        preferred: Option<u16>,
    },
    Cc {
        src_ref: u16,
        class: u8,
        size: Option<u8>,
        preferred: Option<u16>,
    },
    Dt {
        len: u16,
        eot: bool,
    },
    Dr(u8),
    Dc,
    Er(u8),
}

impl PeerTpdu {
    fn encode(&self, out: &mut Vec<u8>) {
        let data = vec![0x5a; 1 << 16];
        let mut list = Vec::new();
        let mut tsap = [0u8; 2];
        let tpdu = match *self {
            PeerTpdu::Cr {
                src_ref,
                class,
                size,
                called,
                preferred,
            } => {
                if let Some(s) = size.and_then(|s| TpduSize::from_code(7 + s % 7)) {
                    list.push(Param::TpduSize(s));
                }
                if let Some(c) = called {
                    tsap[1] = c % 4;
                    list.push(Param::CalledTsap(&tsap));
                }
                if let Some(p) = preferred {
                    list.push(Param::PreferredMaxTpduSize(u32::from(p)));
                }
                Tpdu::ConnectionRequest(Connect {
                    src_ref,
                    class: class % 5 * 16,
                    params: Params::list(&list),
                    ..Connect::default()
                })
            }
            PeerTpdu::Cc {
                src_ref,
                class,
                size,
                preferred,
            } => {
                if let Some(s) = size.and_then(|s| TpduSize::from_code(7 + s % 7)) {
                    list.push(Param::TpduSize(s));
                }
                if let Some(p) = preferred {
                    list.push(Param::PreferredMaxTpduSize(u32::from(p)));
                }
                Tpdu::ConnectionConfirm(Connect {
                    dst_ref: 1,
                    src_ref,
                    class: class % 5 * 16,
                    params: Params::list(&list),
                    ..Connect::default()
                })
            }
            PeerTpdu::Dt { len, eot } => {
                Tpdu::Data(Data::class0(eot, &data[..usize::from(len).min(65_528)]))
            }
            PeerTpdu::Dr(r) => Tpdu::DisconnectRequest(DisconnectRequest {
                dst_ref: 1,
                src_ref: 2,
                reason: DisconnectReason(r),
                params: Params::EMPTY,
                user_data: &[],
            }),
            PeerTpdu::Dc => Tpdu::DisconnectConfirm(DisconnectConfirm {
                dst_ref: 1,
                src_ref: 2,
                params: Params::EMPTY,
            }),
            PeerTpdu::Er(c) => Tpdu::Error(ErrorTpdu {
                dst_ref: 1,
                cause: RejectCause(c),
                params: Params::EMPTY,
            }),
        };
        let mut buf = vec![0u8; tpdu.encoded_len() + 4];
        if let Ok(n) = tpdu.encode_frame(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
    }
}

/// The connection plus everything the target knows about what it did.
struct Harness {
    conn: Connection,
    now: Instant,
    max_message: usize,
    /// The connection's side.
    side: Side,
    /// Raw TPDUs queued and not yet seen on the wire (exempt from the state checks).
    raw_queued: Vec<Vec<u8>>,
    /// TPDUs emitted so far, by kind.
    sent_cr: bool,
    sent_cc: bool,
    sent_final: bool,
    /// A CR arrived (passive side): its proposed TPDU size in bytes.
    cr_proposal: Option<usize>,
    /// Our configured TPDU size in bytes.
    cfg_tpdu: usize,
    /// A CC arrived (active side).
    got_cc: bool,
    closed_seen: bool,
    message_len: usize,
    eof: bool,
    out: Vec<u8>,
}

impl Harness {
    /// Checks one emitted frame (or a run of DT frames from `frame_data`).
    fn check_emitted(&mut self, bytes: &[u8], from_frame_data: bool) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (t, len) = match decode_frame(rest, DEFAULT_MAX_FRAME_LEN) {
                Ok(Status::Complete(x)) => x,
                other => panic!("emitted bytes do not decode: {other:?} ({rest:02x?})"),
            };
            let frame = &rest[..len];
            rest = &rest[len..];
            if !from_frame_data {
                if let Some(i) = self.raw_queued.iter().position(|r| r[..] == frame[4..]) {
                    self.raw_queued.remove(i);
                    continue;
                }
            }
            assert!(
                !self.sent_final,
                "{:?} emitted after the final DR/DC/ER",
                t.kind()
            );
            match t {
                Tpdu::ConnectionRequest(_) => {
                    assert_eq!(self.side, Side::Active, "passive side sent a CR");
                    assert!(!self.sent_cr, "second CR");
                    self.sent_cr = true;
                }
                Tpdu::ConnectionConfirm(cc) => {
                    assert_eq!(self.side, Side::Passive, "active side sent a CC");
                    assert!(!self.sent_cc, "second CC");
                    let proposal = self.cr_proposal.expect("CC without a CR");
                    let size = cc.params.tpdu_size().map_or(128, TpduSize::bytes);
                    assert!(
                        size <= proposal && size <= self.cfg_tpdu,
                        "CC selects {size}, CR proposed {proposal}"
                    );
                    assert_eq!(cc.class, 0);
                    self.sent_cc = true;
                }
                Tpdu::Data(dt) => {
                    assert!(from_frame_data, "DT from poll_transmit");
                    assert_eq!(dt.format, Format::Normal);
                    assert!(!dt.data.is_empty(), "class 0 never sends an empty DT");
                    let negotiated = self
                        .conn
                        .preferred_max_tpdu_size()
                        .map_or(self.conn.tpdu_size().bytes(), |p| p as usize);
                    assert!(
                        dt.data.len() + 3 <= negotiated.max(128),
                        "DT of {} bytes exceeds the TPDU size {negotiated}",
                        dt.data.len() + 3
                    );
                    match self.side {
                        Side::Active => assert!(self.got_cc, "DT before the CC"),
                        Side::Passive => assert!(self.sent_cc, "DT before our CC"),
                    }
                }
                Tpdu::DisconnectRequest(_) | Tpdu::DisconnectConfirm(_) | Tpdu::Error(_) => {
                    self.sent_final = true;
                }
                other => panic!("the connection emitted {:?}", other.kind()),
            }
            assert!(!from_frame_data || matches!(t, Tpdu::Data(_)));
        }
    }

    /// Drains events, then transmit, then events again, checking all (events first so
    /// a CR's proposal is known before the CC answering it is checked).
    fn drain(&mut self) {
        self.drain_events();
        for i in 0.. {
            assert!(i <= 8, "more TPDUs queued than the connection can hold");
            let mut out = std::mem::take(&mut self.out);
            let r = self.conn.poll_transmit(self.now, &mut out);
            match r {
                Ok(Some(n)) => {
                    self.check_emitted(&out[..n], false);
                    self.out = out;
                }
                Ok(None) => {
                    self.out = out;
                    break;
                }
                Err(e) => panic!("poll_transmit into a 64 KiB buffer failed: {e}"),
            }
        }
        self.drain_events();
    }

    fn drain_events(&mut self) {
        for i in 0.. {
            let Some(e) = self.conn.poll_event() else {
                break;
            };
            assert!(i < 16, "more events than the queue holds");
            assert!(!self.closed_seen, "{e:?} after Closed");
            match e {
                Event::Closed(r) => {
                    self.closed_seen = true;
                    assert_eq!(self.conn.close_reason(), Some(r));
                }
                Event::TpduReceived {
                    kind: TpduKind::ConnectionRequest,
                } => {
                    if self.side == Side::Passive && self.cr_proposal.is_none() {
                        let t = self.conn.last_tpdu().expect("the CR just reported");
                        self.cr_proposal =
                            Some(t.params().tpdu_size().map_or(128, TpduSize::bytes));
                    }
                }
                Event::Connected if self.side == Side::Active => self.got_cc = true,
                _ => {}
            }
        }
        if self.closed_seen {
            assert!(self.conn.is_closed());
        }
        if self.conn.is_closed() && self.conn.close_reason().is_some() {
            // `Closed` may still sit in the queue only if we did not drain: we did.
            assert!(self.closed_seen, "closed without a Closed event");
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
            let mut off = 0;
            let mut stalls = 0;
            while off < chunk.len() {
                let r = self.conn.handle_input(self.now, &chunk[off..]);
                assert!(r.consumed <= chunk.len() - off);
                if let Some(d) = r.data {
                    self.message_len += d.bytes.len();
                    assert!(
                        self.message_len <= self.max_message,
                        "a {}-byte message passed the {} limit",
                        self.message_len,
                        self.max_message
                    );
                    if d.end_of_message {
                        self.message_len = 0;
                    }
                }
                off += r.consumed;
                self.drain();
                if r.consumed == 0 {
                    stalls += 1;
                    assert!(stalls < 2, "handle_input makes no progress after draining");
                } else {
                    stalls = 0;
                }
            }
        }
    }
}

fuzz_target!(|s: Scenario| {
    let now = Instant::now();
    let tpdu_size = TpduSize::from_code(7 + s.tpdu_size % 7).unwrap_or(TpduSize::S1024);
    let cfg = Config {
        tpdu_size,
        preferred_max_tpdu_size: s.preferred_max.map(|p| u32::from(p) * 16),
        local_tsap: s
            .local_tsap
            .map(|t| Tsap::new(&[0, t % 4]).expect("2 bytes")),
        max_message_size: usize::from(s.max_message) + 1,
        connect_timeout: s
            .connect_timeout_ms
            .map(|m| Duration::from_millis(m.into())),
        inactivity_timeout: s.inactivity_ms.map(|m| Duration::from_millis(m.into())),
        manual_accept: s.manual_accept,
        ..Config::default()
    };
    let side = if s.passive {
        Side::Passive
    } else {
        Side::Active
    };
    let Ok(conn) = Connection::new(cfg.clone(), side, now) else {
        return;
    };
    let mut h = Harness {
        conn,
        now,
        max_message: cfg.max_message_size,
        side,
        raw_queued: Vec::new(),
        sent_cr: false,
        sent_cc: false,
        sent_final: false,
        cr_proposal: None,
        cfg_tpdu: tpdu_size.bytes(),
        got_cc: false,
        closed_seen: false,
        message_len: 0,
        eof: false,
        out: vec![0; 1 << 16],
    };
    h.drain();
    let mut wire = Vec::new();
    for op in s.ops.iter().take(64) {
        match op {
            Op::Bytes { data, step } => h.feed(data, *step),
            Op::Peer { tpdu, step } => {
                wire.clear();
                tpdu.encode(&mut wire);
                let bytes = std::mem::take(&mut wire);
                h.feed(&bytes, *step);
                wire = bytes;
            }
            Op::Advance(ms) => {
                h.now += Duration::from_millis(u64::from(*ms));
                if h.conn.poll_timeout().is_some_and(|t| t <= h.now) {
                    h.conn.handle_timeout(h.now);
                    assert!(
                        h.conn.poll_timeout().is_none_or(|t| t > h.now),
                        "a timer stays due after handle_timeout"
                    );
                }
            }
            Op::Eof => {
                if !h.eof {
                    h.eof = true;
                    h.conn.handle_eof(h.now);
                    assert_eq!(h.conn.state(), State::Closed, "not closed after EOF");
                }
            }
            Op::Send { len, end } => {
                if h.conn.is_open() {
                    let msg = vec![0xa5u8; usize::from(*len)];
                    let mut sent = 0;
                    let mut out = std::mem::take(&mut h.out);
                    loop {
                        match h.conn.frame_data(&msg[sent..], *end, &mut out) {
                            Ok(f) => {
                                h.check_emitted(&out[..f.written], true);
                                sent += f.consumed;
                                if f.consumed == 0 {
                                    break;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    h.out = out;
                } else {
                    assert!(h.conn.frame_data(b"x", true, &mut h.out).is_err());
                }
            }
            Op::Close(r) => h.conn.close(DisconnectReason(*r)),
            Op::Accept => {
                let waiting = h.conn.state() == State::AwaitingAccept;
                assert_eq!(h.conn.accept(h.now).is_ok(), waiting);
            }
            Op::Refuse(r) => {
                let waiting = h.conn.state() == State::AwaitingAccept;
                assert_eq!(h.conn.refuse(DisconnectReason(*r)).is_ok(), waiting);
            }
            Op::Raw(bytes) => {
                if let Ok(t) = Tpdu::decode(bytes) {
                    let mut enc = vec![0u8; t.encoded_len()];
                    if let Ok(n) = t.encode(&mut enc) {
                        enc.truncate(n);
                        if h.conn.send_tpdu(&t).is_ok() {
                            h.raw_queued.push(enc);
                        }
                    }
                }
            }
        }
        h.drain();
    }
});
