//! The TCPCLv4 session state machine (RFC 9174 §4–§6), sans-IO.
//!
//! This module owns everything that happens on one TCPCL connection after the TCP
//! connect/accept: the contact header exchange and its version/magic checks, the point
//! where TLS must start, SESS_INIT negotiation, transfer bookkeeping in both directions
//! (transfer IDs, segment framing, XFER_ACK accounting, XFER_REFUSE, MRU enforcement),
//! keepalives and timers, MSG_REJECT, and the SESS_TERM exchange. It owns no socket,
//! thread or clock: time comes in as `now` arguments and bytes in and out go through
//! caller buffers.
//!
//! # Shape
//!
//! - **Construct** with [`Session::new`]: every table is allocated there (transfer
//!   tables, the ring of segments awaiting acknowledgment, control and event queues,
//!   a small buffer for units split across reads). After construction and the
//!   handshake (which may copy the peer's node ID and TLS identities, and grow the
//!   unit buffer for the peer's SESS_INIT), nothing allocates: moving segments, acks,
//!   keepalives and events reuses those buffers. The one exception is a transfer
//!   extension block larger than any unit seen before arriving split across reads,
//!   which grows the unit buffer once (up to `max_sess_init_len`).
//! - **Input**: [`Session::handle_input`] consumes bytes and hands back at most one
//!   piece of transfer data per call, borrowed from the input ([`RxData`]); loop until
//!   the input is consumed. A consumed count of 0 means "not now": drain the outputs,
//!   finish TLS, confirm the segment just delivered, or the session is closed.
//!   [`Session::handle_eof`], [`Session::handle_timeout`] and
//!   [`Session::tls_established`] are the other inputs.
//! - **Acknowledgment is the application's call**: the piece that completes a segment
//!   has [`RxData::end_of_segment`] set. The core holds that segment's XFER_ACK, and
//!   takes no more input, until the application has stored the data (for the END
//!   segment: the whole bundle, flushed) and calls [`Session::confirm_segment`]; if it
//!   cannot, it calls [`Session::refuse_transfer`] and the peer gets XFER_REFUSE
//!   instead (RFC 9174 §5.2.3: acknowledge a segment only once it is fully processed).
//!   So nothing acknowledged can be lost by the receiver, and only one segment is ever
//!   held: no table, no allocation.
//! - **Commands**: [`Session::start_transfer`] (returns the transfer ID; the data is
//!   asked for when its turn comes), [`Session::abandon_transfer`] (one that has not
//!   sent anything yet), [`Session::confirm_segment`], [`Session::refuse_transfer`],
//!   [`Session::terminate`] (graceful) and [`Session::close`] (immediate).
//! - **Outputs**, drained in this order after every input or command:
//!   1. [`Session::poll_transmit`] until `Ok(None)`: what goes on the wire next,
//!      written at the front of the caller's buffer (see [the send
//!      policy](#the-send-policy)).
//!   2. [`Session::poll_event`] until `None`: small `Copy` [`Event`]s;
//!      [`Event::Closed`] is always last, after which the transport is closed.
//!   3. [`Session::poll_timeout`]: the next deadline; call
//!      [`Session::handle_timeout`] when it passes. One table of timers feeds both,
//!      so after `handle_timeout(now)` the next deadline is never `<= now`.
//!
//!   If the caller never drains the queues, input processing pauses (consumed 0)
//!   instead of growing them. A runtime that stops reading because its application
//!   is slow calls [`Session::note_unread_input`] while bytes wait unread, so the
//!   session does not take the silence for a dead peer.
//!
//! # The send policy
//!
//! [`Session::poll_transmit`] decides what goes on the wire next, one item per call,
//! in this order:
//!
//! 1. **Every pending control message**, one per call ([`Transmit::Control`]):
//!    contact header, SESS_INIT, XFER_ACK, XFER_REFUSE, KEEPALIVE, SESS_TERM,
//!    MSG_REJECT, in the order they were queued. They go first so acks and
//!    keepalives never wait behind bulk data; the passive side's contact header is on
//!    the wire before TLS starts, and a closing session reports `Closed` once its
//!    last control message was taken.
//! 2. **The next segment of our current transfer** ([`Transmit::Segment`]), once the
//!    session is established (or ending) and fewer than `max_pending_acks` segments
//!    await XFER_ACK. The current transfer is the one that has started and not sent
//!    its END (RFC 9174 §5.2.2 forbids interleaving, so there is at most one), else
//!    the unstarted one started first (lowest transfer ID): transfers go out whole, in
//!    start order. While the session is ending no transfer starts (§6.1). The core
//!    asks the caller's `ready(transfer_id)` how many bytes it could append now
//!    ([`Ready`]) and sizes the segment: at most the peer's Segment MRU, our send
//!    segment size (fixed or adaptive), `tx_segment_max` and what is left of the
//!    announced total. The segment is the transfer's END when the source is complete
//!    and all it has fits (END always comes from the source, never from a guess); a
//!    source that learns its end only after its last byte went out gets an empty END
//!    segment. Nothing is sent while the source has no bytes and is not complete: no
//!    non-final segment is ever empty. The caller writes the
//!    segment's payload, exactly `data_len` bytes from `offset`, right after the
//!    header and before anything else.
//! 3. Otherwise nothing (`Ok(None)`).
//!
//! A source that disagrees with the announced total length, or grows past the peer's
//! Transfer MRU, is reported as [`TransmitError::Source`]; a transfer that has not sent
//! anything yet can then be dropped ([`Session::abandon_transfer`]), one that has must
//! end with the session (TCPCL cannot cancel a transfer from the sending side).
//!
//! # Decisions on points RFC 9174 leaves open
//!
//! - A peer Segment MRU of 0 is accepted at negotiation, but [`Session::start_transfer`]
//!   then fails with [`UsageError::PeerAcceptsNoData`]; and the send policy never
//!   emits a non-final empty segment, so no caller loop can emit empty segments
//!   forever.
//! - A peer segment larger than our Segment MRU is refused (XFER_REFUSE Not
//!   Acceptable) and its data discarded; the session stays up.
//! - A START segment for a transfer already in progress refuses that transfer (XFER_REFUSE
//!   Not Acceptable, [`Event::IncomingTransferRefused`]) and discards the new data; a
//!   non-START segment for an unknown transfer is refused the same way. Two transfers
//!   are never spliced.
//! - An unknown message type is answered with MSG_REJECT and the connection closes:
//!   its length is unknown, so the stream cannot be parsed any further.
//! - After the SESS_TERM exchange, once no transfer is in progress, the active side
//!   closes; the passive side waits up to `sess_term_timeout` for that close.
//! - Refusal reasons chosen by the core: an announced Transfer Length or accumulated data
//!   above our Transfer MRU, or too many concurrent incoming transfers, is No Resources;
//!   data disagreeing with the announced Transfer Length (§5.2.5.1), a malformed
//!   Transfer Length item, a segment above our Segment MRU, and START/continuation
//!   disorder are Not Acceptable; an unknown critical transfer extension is Extension
//!   Failure (§5.2.5); a transfer starting after SESS_TERM is Session Terminating
//!   (§6.1). Later segments of a refused transfer are refused again with the same
//!   reason (§5.2.4).
//! - The receive idle limit is twice the negotiated keepalive interval (§5.1.1); a
//!   negotiated keepalive of 0 disables both keepalives and that limit. When it sends
//!   SESS_TERM (Idle Timeout), the wait for the reply is bounded by
//!   `sess_term_timeout`, not by the idle limit that already passed. The optional
//!   `idle_timeout` is the separate §6.2 shutdown of sessions without transfers.
//! - Only the first Transfer Length item of a transfer is read; a peer sending several
//!   (§5.2.5.1 forbids it) is tolerated.
//!
//! The full requirement-by-requirement mapping is `docs/conformance-tcpcl.md`.

mod config;
mod event;
mod handshake;
mod outgoing;
mod receive;
mod termination;
mod timer;
mod transmit;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use config::{is_valid_node_id, ConfigError, SessionConfig, UsageError, MIN_ADAPTIVE_SEGMENT};
pub use event::{CloseReason, ContactFailure, Event, Input, ProtocolError, RxData, State, TlsRole};
pub use transmit::{Ready, Transmit, TransmitError, MAX_SEGMENT_HEAD};

use crate::tcpcl::{
    DecodeLimits, MessageType, MsgReject, MsgRejectReason, SegmentFlags, SessTerm, SessTermFlags,
    SessTermReason, XferAck, XferRefuse, XferRefuseReason,
};

/// Which end of the TCP connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The connecting side: sends its contact header and SESS_INIT first, is the TLS
    /// client, and closes the connection after the SESS_TERM exchange.
    Active,
    /// The listening side: answers the active side's contact header and SESS_INIT.
    Passive,
}

/// Parameters agreed in the SESS_INIT exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Keepalive interval in seconds (0: none).
    pub keepalive: u16,
    /// The peer's Segment MRU (largest segment we may send).
    pub peer_segment_mru: u64,
    /// The peer's Transfer MRU (largest transfer we may send).
    pub peer_transfer_mru: u64,
    /// Whether TLS is in use.
    pub tls: bool,
}

/// A control message waiting for [`Session::poll_transmit`].
#[derive(Debug, Clone, Copy)]
enum Control {
    Contact,
    SessInit,
    Ack(XferAck),
    Refuse(XferRefuse),
    Keepalive,
    Term(SessTerm),
    Reject(MsgReject),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Contact,
    Tls,
    SessInit,
    Established,
    Ending,
    Closing(CloseReason),
    Closed(CloseReason),
}

/// One of our transfers.
#[derive(Debug, Clone, Copy)]
struct OutTransfer {
    id: u64,
    total_len: Option<u64>,
    sent: u64,
    acked: u64,
    started: bool,
    end_sent: bool,
}

/// One of the peer's transfers being received.
#[derive(Debug, Clone, Copy)]
struct InTransfer {
    id: u64,
    received: u64,
    total_len: Option<u64>,
}

/// A sent segment awaiting its XFER_ACK.
#[derive(Debug, Clone, Copy)]
struct PendingAck {
    id: u64,
    end: u64,
    sent_at: Instant,
}

/// Where the receive side is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum Rx {
    /// At a message boundary, or accumulating a control message / segment head.
    Head,
    /// Inside an XFER_SEGMENT's data.
    Data {
        id: u64,
        flags: SegmentFlags,
        remaining: u64,
        offset: u64,
        /// Hand the data to the application.
        deliver: bool,
        /// Once its data is consumed, hold the segment for the application's
        /// confirmation, then acknowledge it (cumulative length `ack_len`).
        ack: bool,
        ack_len: u64,
    },
}

/// A received segment whose data was handed out and whose XFER_ACK waits for
/// [`Session::confirm_segment`].
#[derive(Debug, Clone, Copy)]
struct Unconfirmed {
    id: u64,
    flags: SegmentFlags,
    ack_len: u64,
}

/// SESS_TERM bookkeeping.
#[derive(Debug, Clone, Copy)]
struct Term {
    reason: SessTermReason,
    by_peer: bool,
    sent: bool,
    received: bool,
    reply_deadline: Option<Instant>,
    done_deadline: Option<Instant>,
}

/// Result of decoding from a contiguous byte run.
enum Step {
    /// A unit of this many bytes was decoded and handled.
    Complete(usize),
    /// More bytes are needed.
    Partial,
}

/// Slack kept in the control and event queues for timers and commands, beyond what
/// input processing may fill.
const RESERVE: usize = 16;
/// Control messages (mostly XFER_ACKs) or events queued by input processing before
/// input pauses for the caller to drain them.
const QUEUE_INPUT_LIMIT: usize = 64;
/// The smallest control-message buffer, so every fixed-size message head fits.
const MIN_BUF: usize = 64;

/// A TCPCLv4 session. See the [module documentation](self) for how to drive it.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    side: Side,
    phase: Phase,
    now: Instant,
    contact_deadline: Instant,
    limits: DecodeLimits,
    buf: Vec<u8>,
    /// Largest unit `buf` may hold (`max_sess_init_len`).
    buf_limit: usize,
    rx: Rx,
    ctrl: VecDeque<Control>,
    ctrl_input_limit: usize,
    events: VecDeque<Event>,
    event_input_limit: usize,
    tls: bool,
    cert_ids: Vec<String>,
    peer_node_id: String,
    negotiated: Option<Negotiated>,
    outgoing: Vec<OutTransfer>,
    incoming: Vec<InTransfer>,
    pending_acks: VecDeque<PendingAck>,
    next_tx_id: u64,
    tx_ids_exhausted: bool,
    /// The incoming transfer whose remaining segments are refused, and why.
    refused_rx: Option<(u64, XferRefuseReason)>,
    /// The received segment awaiting the application's confirmation (input pauses
    /// meanwhile).
    unconfirmed: Option<Unconfirmed>,
    tx_size: u64,
    last_tx: Instant,
    last_rx: Instant,
    last_xfer: Instant,
    keepalive_queued: bool,
    /// `handle_input` returns right after a START segment's head was accepted.
    yield_at_start: bool,
    term: Option<Term>,
    close_deadline: Option<Instant>,
}

impl Session {
    /// A session for one connection, at the moment the TCP connection is up.
    ///
    /// The active side queues its contact header at once; the passive side waits for
    /// the active side's.
    pub fn new(config: SessionConfig, side: Side, now: Instant) -> Result<Session, ConfigError> {
        config.validate()?;
        let buf_cap = config.max_sess_init_len.max(MIN_BUF);
        // Input pauses (consumed 0) while the caller has not drained this many control
        // messages or events, so the queues stay small whatever the ack window: an idle
        // session holds little memory, and a runtime drains both after every input.
        let queue_limit = config.max_pending_acks.min(QUEUE_INPUT_LIMIT);
        let ctrl_input_limit = queue_limit.saturating_add(4);
        let ctrl_cap = ctrl_input_limit
            .saturating_add(config.max_incoming_transfers)
            .saturating_add(RESERVE);
        let event_input_limit = queue_limit.saturating_add(16);
        let event_cap = event_input_limit
            .saturating_add(config.max_incoming_transfers)
            .saturating_add(config.max_outgoing_transfers)
            .saturating_add(RESERVE * 2);
        let mut s = Session {
            side,
            phase: Phase::Contact,
            now,
            contact_deadline: now + config.contact_timeout,
            limits: DecodeLimits::new(buf_cap),
            // Small at first: only a unit split across reads is buffered, and after
            // the handshake those are segment heads and small control messages. A
            // larger unit (the peer's SESS_INIT, a big transfer extension block) grows
            // it up to `buf_limit` once; an idle session stays small.
            buf: Vec::with_capacity(MIN_BUF),
            buf_limit: buf_cap,
            rx: Rx::Head,
            ctrl: VecDeque::with_capacity(ctrl_cap),
            ctrl_input_limit,
            events: VecDeque::with_capacity(event_cap),
            event_input_limit,
            tls: false,
            cert_ids: Vec::new(),
            peer_node_id: String::new(),
            negotiated: None,
            outgoing: Vec::with_capacity(config.max_outgoing_transfers),
            incoming: Vec::with_capacity(config.max_incoming_transfers),
            pending_acks: VecDeque::with_capacity(config.max_pending_acks),
            next_tx_id: 0,
            tx_ids_exhausted: false,
            refused_rx: None,
            unconfirmed: None,
            tx_size: config.tx_segment_size.min(config.tx_segment_max),
            last_tx: now,
            last_rx: now,
            last_xfer: now,
            keepalive_queued: false,
            yield_at_start: false,
            term: None,
            close_deadline: None,
            config,
        };
        if side == Side::Active {
            s.queue(Control::Contact);
        }
        Ok(s)
    }

    /// Our side.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The configuration in use.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The current phase.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Contact => State::Contact,
            Phase::Tls => State::TlsHandshake,
            Phase::SessInit => State::SessionInit,
            Phase::Established => State::Established,
            Phase::Ending => State::Ending,
            Phase::Closing(_) => State::Closing,
            Phase::Closed(_) => State::Closed,
        }
    }

    /// Whether the session is over (the transport should be closed).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// Whether transfers may be started.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// The peer's node ID from its SESS_INIT, once received; empty when the peer
    /// withheld it (a zero-length Node ID, RFC 9174 §4.6).
    pub fn peer_node_id(&self) -> Option<&str> {
        self.negotiated.map(|_| self.peer_node_id.as_str())
    }

    /// The negotiated session parameters, once established.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// The negotiated keepalive interval in seconds (0: none), once established.
    pub fn keepalive_interval(&self) -> Option<u16> {
        self.negotiated.map(|n| n.keepalive)
    }

    /// The peer's Segment MRU, once established.
    pub fn peer_segment_mru(&self) -> Option<u64> {
        self.negotiated.map(|n| n.peer_segment_mru)
    }

    /// The peer's Transfer MRU, once established.
    pub fn peer_transfer_mru(&self) -> Option<u64> {
        self.negotiated.map(|n| n.peer_transfer_mru)
    }

    /// Whether TLS was negotiated and established.
    pub fn tls_in_use(&self) -> bool {
        self.tls
    }

    /// Why the session closed, once closed (or closing).
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.phase {
            Phase::Closing(r) | Phase::Closed(r) => Some(r),
            _ => None,
        }
    }

    /// The SESS_TERM reason and whether the peer sent it first, once SESS_TERM was sent
    /// or received.
    pub fn termination_reason(&self) -> Option<(SessTermReason, bool)> {
        self.term.map(|t| (t.reason, t.by_peer))
    }

    /// The current send segment size (fixed or adaptive, within `tx_segment_max`;
    /// before the peer's Segment MRU bounds it).
    pub fn tx_segment_size(&self) -> u64 {
        self.tx_size
    }

    /// Outgoing transfers started and not yet fully acknowledged or refused.
    pub fn outgoing_count(&self) -> usize {
        self.outgoing.len()
    }

    /// Incoming transfers started and not yet finished or refused.
    pub fn incoming_count(&self) -> usize {
        self.incoming.len()
    }

    /// Whether any transfer is in progress in either direction (outgoing: started
    /// with a segment and not fully acknowledged; incoming: started and not ended).
    pub fn transfers_in_progress(&self) -> bool {
        self.outgoing.iter().any(|t| t.started)
            || !self.incoming.is_empty()
            || self.unconfirmed.is_some()
            || matches!(self.rx, Rx::Data { ack: true, .. })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The peer closed its side of the transport.
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        match self.phase {
            Phase::Closed(_) => {}
            Phase::Closing(r) => self.close_now(r),
            Phase::Ending => match self.term {
                Some(t) if t.sent && t.received && !self.transfers_in_progress() => {
                    self.close_now(CloseReason::Terminated {
                        reason: t.reason,
                        by_peer: t.by_peer,
                    })
                }
                _ => self.close_now(CloseReason::PeerClosed),
            },
            _ => self.close_now(CloseReason::PeerClosed),
        }
    }

    /// Closes without SESS_TERM (an unclean close). Queued XFER_ACKs of segments
    /// already received still go out (RFC 9174 §6.1 SHOULD): the session is closing
    /// until [`poll_transmit`](Self::poll_transmit) has yielded them, then closed;
    /// every other queued message is dropped. With none queued it closes at once, and
    /// a second call while closing drops what is still queued and closes.
    pub fn close(&mut self) {
        match self.phase {
            Phase::Closed(_) => {}
            Phase::Closing(r) => self.close_now(r),
            _ => self.close_unclean(),
        }
    }

    fn check_can_send(&self) -> Result<(), UsageError> {
        match self.phase {
            Phase::Established | Phase::Ending => Ok(()),
            Phase::Closing(_) | Phase::Closed(_) => Err(UsageError::Closed),
            _ => Err(UsageError::NotEstablished),
        }
    }

    fn keepalive(&self) -> Option<Duration> {
        match self.negotiated {
            Some(n) if n.keepalive > 0 => Some(Duration::from_secs(n.keepalive.into())),
            _ => None,
        }
    }

    fn has_room(&self) -> bool {
        self.ctrl.len() + 4 <= self.ctrl_input_limit
            && self.events.len() + 4 <= self.event_input_limit
    }

    fn queue(&mut self, c: Control) {
        // Capacity was reserved at construction (input processing pauses at
        // `ctrl_input_limit`, timers and commands use the reserve), so this does not
        // grow the queue in practice; if a caller never drains it, correctness wins
        // over the allocation.
        self.ctrl.push_back(c);
    }

    fn emit(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// Closes at once, dropping queued output.
    fn close_now(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.ctrl.clear();
        self.rx = Rx::Head;
        self.unconfirmed = None;
        self.phase = Phase::Closed(reason);
        self.emit(Event::Closed { reason });
    }

    /// Queues an optional SESS_TERM, then closes once the control queue is written
    /// (bounded by `sess_term_timeout`). Each side sends one SESS_TERM (RFC 9174
    /// §6.1): once ours is out or queued, as the initiator or the reply, a failure
    /// closes without another.
    fn fail_close(&mut self, reason: CloseReason, term: Option<SessTermReason>) {
        let term_sent = self.term.as_ref().is_some_and(|t| t.sent);
        if let Some(r) = term.filter(|_| !term_sent) {
            self.queue(Control::Term(SessTerm {
                flags: SessTermFlags::EMPTY,
                reason: r,
            }));
        }
        self.rx = Rx::Head;
        self.unconfirmed = None;
        self.phase = Phase::Closing(reason);
        self.close_deadline = Some(self.now + self.config.sess_term_timeout);
        self.finish_closing();
    }

    fn finish_closing(&mut self) {
        if let Phase::Closing(r) = self.phase {
            if self.ctrl.is_empty() {
                self.close_now(r);
            }
        }
    }

    fn reject(&mut self, reason: MsgRejectReason, t: MessageType) {
        self.queue(Control::Reject(MsgReject {
            reason,
            rejected_header: t.code(),
        }));
    }
}
