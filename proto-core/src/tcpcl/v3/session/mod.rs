//! The TCPCLv3 session state machine (RFC 7242 §4–§6), sans-IO, with the contract of
//! the v4 [`Session`](crate::tcpcl::Session).
//!
//! It is driven exactly like the v4 one — construct, [`Session::handle_input`]
//! (payload borrowed from the input), [`Session::poll_transmit`] (control messages
//! whole, segment headers for the caller to follow with payload),
//! [`Session::poll_event`], [`Session::poll_timeout`] / [`Session::handle_timeout`],
//! [`Session::handle_eof`] — and reports through the same [`Event`]s, so a runtime
//! treats both alike. All tables are allocated at construction; nothing allocates
//! afterwards except the one copy of the peer's EID when its contact header arrives.
//!
//! # How v3 maps onto the v4 contract
//!
//! - **No transfer IDs on the wire.** ACK_SEGMENT and REFUSE_BUNDLE apply to bundles
//!   in the order they were sent (§5.3, §5.4). The session numbers bundles itself,
//!   from 0 in each direction, and uses those numbers as transfer IDs in events and
//!   commands, so they look like v4 transfers.
//! - **Acknowledgment is still the application's call.** A received segment's
//!   ACK_SEGMENT (when acks were negotiated) is held, and input pauses, until
//!   [`Session::confirm_segment`]; nothing unconfirmed is ever acknowledged. Without
//!   negotiated acks the confirmation is still required (it paces input and finishes
//!   the bundle), it just sends nothing.
//! - **Refusal** ([`Session::refuse_transfer`]) sends REFUSE_BUNDLE only when refusal
//!   was negotiated (§4.2: both allow it and acks are on). Otherwise v3 offers no way
//!   to decline a bundle, so the session ends (SHUTDOWN, [`CloseReason::LocalClose`];
//!   for a bundle above `transfer_mru`, [`ProtocolError::TooLarge`]): the peer never
//!   sees that bundle acknowledged.
//! - **Without acks** our bundle is over once its last segment was handed out:
//!   [`Event::OutgoingSent`] instead of [`Event::OutgoingAcked`]; delivery is
//!   unconfirmed.
//! - **LENGTH** (§5.5) goes out before a bundle whose length is known when the peer
//!   requested it; a received LENGTH becomes the `total_len` of the next
//!   [`Event::IncomingTransferStarted`] and is checked against our `transfer_mru`.
//! - **Reason codes** are reported as their v4 twins ([`ShutdownReason::to_v4`](super::ShutdownReason::to_v4),
//!   [`RefuseReason::to_v4`](super::RefuseReason::to_v4)); the raw SHUTDOWN is in [`Session::peer_shutdown`].
//! - **The peer's EID is unauthenticated**: v3 has no TLS or node authentication
//!   (RFC 7242 §7 leaves security to lower layers), so [`Session::peer_node_id`] is
//!   only what the peer claims.
//!
//! # Decisions on points RFC 7242 leaves open
//!
//! - Ending ([`Session::terminate`]): no new bundle starts; the bundles in progress
//!   finish (ours sent and, with acks, acknowledged; the peer's received), then
//!   SHUTDOWN goes out (§6.1: after complete transmission of any bundles) and the
//!   session closes once it is written. `sess_term_timeout` bounds the wait; when it
//!   passes SHUTDOWN is sent anyway and the session closes with
//!   [`CloseReason::SessTermTimeout`].
//! - A received SHUTDOWN: the peer sends no more data (§6.1), so we stop too (our
//!   unfinished bundle stays unacknowledged), answer with a SHUTDOWN of our own (the
//!   RFC requires one before closing the connection), wait up to `sess_term_timeout`
//!   for acknowledgments the peer still owes, then close.
//! - A DATA_SEGMENT with S while a bundle is being received, or without S when none
//!   is, breaks the bundle framing: SHUTDOWN and close
//!   ([`ProtocolError::Malformed`]). Continuation segments of a bundle we refused are
//!   discarded until the next S.
//! - An unknown message type, or an SDNV longer than 64 bits, ends the session
//!   (SHUTDOWN without reason): v3 has no MSG_REJECT and the stream cannot be parsed
//!   further.
//! - An unexpected ACK_SEGMENT (no bundle of ours awaits one) or REFUSE_BUNDLE (none
//!   in progress) is ignored; an ACK_SEGMENT beyond what we sent ends the session.
//! - Receive idle limit: twice the negotiated keepalive (§5.6), answered with
//!   SHUTDOWN (Idle timeout).

mod config;
mod receive;
mod termination;
mod timer;
mod transmit;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Instant;

pub use config::SessionConfig;
pub use transmit::MAX_SEGMENT_HEAD;

use super::{Message, Negotiated, Shutdown, ShutdownReason};
use crate::tcpcl::session::ConfigError;
use crate::tcpcl::{CloseReason, Event, ProtocolError, Side, State};

/// A control message waiting for [`Session::poll_transmit`].
#[derive(Debug, Clone, Copy)]
enum Control {
    Contact,
    Message(Message),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Contact,
    Established,
    Ending,
    Closing(CloseReason),
    Closed(CloseReason),
}

/// One of our bundles.
#[derive(Debug, Clone, Copy)]
struct OutBundle {
    id: u64,
    total_len: Option<u64>,
    sent: u64,
    acked: u64,
    started: bool,
    end_sent: bool,
    length_sent: bool,
}

/// A sent segment awaiting its ACK_SEGMENT.
#[derive(Debug, Clone, Copy)]
struct PendingAck {
    id: u64,
    end: u64,
}

/// The peer's bundle being received.
#[derive(Debug, Clone, Copy)]
struct InBundle {
    id: u64,
    received: u64,
}

/// Where the receive side is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum Rx {
    /// At a message boundary, or accumulating a contact header / message head.
    Head,
    /// Inside a DATA_SEGMENT's data.
    Data {
        id: u64,
        end: bool,
        remaining: u64,
        offset: u64,
        /// Hand the data to the application (false: a refused bundle's data).
        deliver: bool,
    },
}

/// A delivered segment awaiting [`Session::confirm_segment`].
#[derive(Debug, Clone, Copy)]
struct Unconfirmed {
    id: u64,
    end: bool,
    ack_len: u64,
}

/// Ending bookkeeping.
#[derive(Debug, Clone, Copy)]
struct Term {
    /// What we send (or sent) in our SHUTDOWN.
    ours: Shutdown,
    /// The reason reported in [`Event::Terminating`] and the close reason.
    reason: crate::tcpcl::SessTermReason,
    by_peer: bool,
    sent: bool,
    deadline: Instant,
}

/// Result of decoding from a contiguous byte run.
enum Step {
    Complete(usize),
    Partial,
}

/// Control messages or events queued by input processing before input pauses.
const QUEUE_INPUT_LIMIT: usize = 64;
/// Slack in the queues for timers and commands.
const RESERVE: usize = 16;

/// A TCPCLv3 session. See the [module documentation](self).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    side: Side,
    phase: Phase,
    now: Instant,
    contact_deadline: Instant,
    /// A unit split across reads: a contact header (bounded by `max_eid_len`) or a
    /// message head (at most [`Message::MAX_LEN`]).
    buf: Vec<u8>,
    buf_limit: usize,
    rx: Rx,
    ctrl: VecDeque<Control>,
    ctrl_input_limit: usize,
    events: VecDeque<Event>,
    event_input_limit: usize,
    peer_eid: String,
    peer_keepalive: u16,
    negotiated: Option<Negotiated>,
    outgoing: Vec<OutBundle>,
    pending_acks: VecDeque<PendingAck>,
    next_tx_id: u64,
    incoming: Option<InBundle>,
    next_rx_id: u64,
    /// Continuation segments of a refused bundle are discarded until the next S.
    discarding: bool,
    /// The total length from a LENGTH message, for the next bundle.
    next_length: Option<u64>,
    unconfirmed: Option<Unconfirmed>,
    yield_at_start: bool,
    peer_shutdown: Option<Shutdown>,
    term: Option<Term>,
    close_deadline: Option<Instant>,
    last_tx: Instant,
    last_rx: Instant,
    last_xfer: Instant,
    keepalive_queued: bool,
}

impl Session {
    /// A session for one connection, at the moment the TCP connection is up. Both
    /// sides queue their contact header at once (RFC 7242 §4.1); a dual-version
    /// listener constructs its passive v3 session only after the peer's first five
    /// octets said "v3" (see the [v3 module](super)).
    pub fn new(config: SessionConfig, side: Side, now: Instant) -> Result<Session, ConfigError> {
        config.validate()?;
        // Magic, version, flags, keepalive, the EID length SDNV, the EID.
        let buf_limit = config
            .max_eid_len
            .saturating_add(8 + crate::tcpcl::sdnv::MAX_LEN)
            .max(Message::MAX_LEN);
        let queue_limit = config.max_pending_acks.min(QUEUE_INPUT_LIMIT);
        let ctrl_input_limit = queue_limit.saturating_add(4);
        let event_input_limit = queue_limit.saturating_add(16);
        let mut s = Session {
            side,
            phase: Phase::Contact,
            now,
            contact_deadline: now + config.contact_timeout,
            buf: Vec::with_capacity(buf_limit.min(4096)),
            buf_limit,
            rx: Rx::Head,
            ctrl: VecDeque::with_capacity(ctrl_input_limit + RESERVE),
            ctrl_input_limit,
            events: VecDeque::with_capacity(
                event_input_limit + config.max_outgoing_transfers + RESERVE * 2,
            ),
            event_input_limit,
            peer_eid: String::new(),
            peer_keepalive: 0,
            negotiated: None,
            outgoing: Vec::with_capacity(config.max_outgoing_transfers),
            pending_acks: VecDeque::with_capacity(config.max_pending_acks),
            next_tx_id: 0,
            incoming: None,
            next_rx_id: 0,
            discarding: false,
            next_length: None,
            unconfirmed: None,
            yield_at_start: false,
            peer_shutdown: None,
            term: None,
            close_deadline: None,
            last_tx: now,
            last_rx: now,
            last_xfer: now,
            keepalive_queued: false,
            config,
        };
        s.queue(Control::Contact);
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

    /// The current phase, in the v4 vocabulary (v3 has no TLS or SESS_INIT phase).
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Contact => State::Contact,
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

    /// Whether bundles may be started.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// The EID from the peer's contact header, once received. It is **not
    /// authenticated**: v3 has no means to (RFC 7242 §7). An EID that is not UTF-8 is
    /// shown with replacement characters.
    pub fn peer_node_id(&self) -> Option<&str> {
        self.negotiated.map(|_| self.peer_eid.as_str())
    }

    /// The keepalive interval the peer offered, once its contact header arrived.
    pub fn peer_keepalive(&self) -> Option<u16> {
        self.negotiated.map(|_| self.peer_keepalive)
    }

    /// What both contact headers negotiated, once established.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// The negotiated keepalive interval in seconds (0: none), once established.
    pub fn keepalive_interval(&self) -> Option<u16> {
        self.negotiated.map(|n| n.keepalive)
    }

    /// The SHUTDOWN the peer sent, if any: its raw reason code (unassigned codes
    /// included) and the reconnection delay it asks for.
    pub fn peer_shutdown(&self) -> Option<Shutdown> {
        self.peer_shutdown
    }

    /// Why the session closed, once closed (or closing).
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.phase {
            Phase::Closing(r) | Phase::Closed(r) => Some(r),
            _ => None,
        }
    }

    /// The termination reason (in v4 terms) and whether the peer ended the session,
    /// once SHUTDOWN was sent or received (or [`Session::terminate`] called).
    pub fn termination_reason(&self) -> Option<(crate::tcpcl::SessTermReason, bool)> {
        self.term.map(|t| (t.reason, t.by_peer))
    }

    /// The data per segment we send.
    pub fn tx_segment_size(&self) -> u64 {
        self.config.tx_segment_size
    }

    /// Outgoing bundles started and not yet done.
    pub fn outgoing_count(&self) -> usize {
        self.outgoing.len()
    }

    /// Incoming bundles being received (0 or 1: v3 does not interleave).
    pub fn incoming_count(&self) -> usize {
        usize::from(self.incoming.is_some())
    }

    /// Whether a bundle is in progress in either direction: ours started and not
    /// done (with acks: not fully acknowledged), or the peer's started and not ended.
    pub fn transfers_in_progress(&self) -> bool {
        self.outgoing.iter().any(|t| t.started)
            || self.incoming.is_some()
            || self.unconfirmed.is_some()
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
            // After the peer's SHUTDOWN, its close is the normal end (§6.1).
            _ => match (self.peer_shutdown, self.term) {
                (Some(_), Some(t)) => self.close_now(CloseReason::Terminated {
                    reason: t.reason,
                    by_peer: t.by_peer,
                }),
                _ => self.close_now(CloseReason::PeerClosed),
            },
        }
    }

    /// Closes immediately, dropping anything not yet transmitted.
    pub fn close(&mut self) {
        if !self.is_closed() {
            self.close_now(CloseReason::LocalClose);
        }
    }

    fn has_room(&self) -> bool {
        self.ctrl.len() + 4 <= self.ctrl_input_limit
            && self.events.len() + 4 <= self.event_input_limit
    }

    fn queue(&mut self, c: Control) {
        self.ctrl.push_back(c);
    }

    fn emit(&mut self, e: Event) {
        self.events.push_back(e);
    }

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

    /// Queues SHUTDOWN (unless one was sent), then closes once the control queue is
    /// written (bounded by `sess_term_timeout`).
    fn fail_close(&mut self, reason: CloseReason, shutdown: Option<Shutdown>) {
        let already = self.term.is_some_and(|t| t.sent);
        if let (Some(s), false) = (shutdown, already) {
            self.queue(Control::Message(Message::Shutdown(s)));
            if let Some(t) = &mut self.term {
                t.sent = true;
            }
        }
        self.rx = Rx::Head;
        self.unconfirmed = None;
        self.phase = Phase::Closing(reason);
        self.close_deadline = Some(self.now + self.config.sess_term_timeout);
        self.finish_closing();
    }

    /// Ends the session for a protocol violation: SHUTDOWN without a reason (v3 has
    /// no code for it), then close.
    fn protocol_error(&mut self, e: ProtocolError) {
        self.fail_close(CloseReason::ProtocolError(e), Some(Shutdown::default()));
    }

    fn finish_closing(&mut self) {
        if let Phase::Closing(r) = self.phase {
            if self.ctrl.is_empty() {
                self.close_now(r);
            }
        }
    }
}

/// A SHUTDOWN carrying `reason` (and no delay), as sent for session-level reasons.
fn shutdown_with(reason: ShutdownReason) -> Shutdown {
    Shutdown {
        reason: Some(reason),
        delay: None,
    }
}
