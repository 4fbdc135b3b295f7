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
//! - **Construct** with [`Session::new`]: every buffer and table is allocated there
//!   (control-message buffer of `max_sess_init_len`, transfer tables, the ring of
//!   segments awaiting acknowledgment, control and event queues). After construction
//!   and the handshake (which may copy the peer's node ID and TLS identities), nothing
//!   allocates: moving segments, acks, keepalives and events reuses those buffers.
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
//! - **Commands**: [`Session::start_transfer`], [`Session::encode_segment_header`] /
//!   [`Session::frame_segment`] (payload is framed from the caller's slice; the core
//!   never copies it), [`Session::confirm_segment`], [`Session::refuse_transfer`],
//!   [`Session::terminate`] (graceful) and [`Session::close`] (immediate).
//! - **Outputs**, drained in this order after every input or command:
//!   1. [`Session::poll_transmit`] until `Ok(None)`: pending control messages (contact
//!      header, SESS_INIT, XFER_ACK, XFER_REFUSE, KEEPALIVE, SESS_TERM, MSG_REJECT).
//!      Write each whole; never put one inside a segment you are writing. Draining it
//!      first matters: the passive side's contact header must be on the wire before
//!      TLS starts, and a closing session only reports `Closed` once its last
//!      control message was taken.
//!   2. [`Session::poll_event`] until `None`: small `Copy` [`Event`]s;
//!      [`Event::Closed`] is always last, after which the transport is closed.
//!   3. [`Session::poll_timeout`]: the next deadline; call
//!      [`Session::handle_timeout`] when it passes.
//!
//!   Application data (segments) is written between control messages, whole. If the
//!   caller never drains the queues, input processing pauses (consumed 0) instead of
//!   growing them.
//!
//! # Decisions on points RFC 9174 leaves open
//!
//! - A peer Segment MRU of 0 is accepted at negotiation, but [`Session::start_transfer`]
//!   then fails with [`UsageError::PeerAcceptsNoData`], and a non-final empty segment is
//!   always refused ([`UsageError::EmptySegment`]), so no caller loop can emit empty
//!   segments forever.
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
//!   negotiated keepalive of 0 disables both keepalives and that limit. The optional
//!   `idle_timeout` is the separate §6.2 shutdown of sessions without transfers.
//! - Only the first Transfer Length item of a transfer is read; a peer sending several
//!   (§5.2.5.1 forbids it) is tolerated.
//!
//! The full requirement-by-requirement mapping is `docs/conformance-tcpcl.md`.

mod config;
mod event;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use config::{
    is_valid_node_id, ConfigError, SegmentError, SessionConfig, UsageError, MIN_ADAPTIVE_SEGMENT,
};
pub use event::{CloseReason, ContactFailure, Event, Input, ProtocolError, RxData, State, TlsRole};

use crate::tcpcl::{
    Contact, ContactFlags, ContactHeader, DecodeError, DecodeLimits, ExtensionItems, Message,
    MessageHead, MessageType, MsgReject, MsgRejectReason, SegmentFlags, SessInit, SessTerm,
    SessTermFlags, SessTermReason, Status, TransferLength, XferAck, XferRefuse, XferRefuseReason,
    XferSegmentHead, VERSION,
};
use crate::EncodeError;

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
        let ctrl_input_limit = config.max_pending_acks.saturating_add(4);
        let ctrl_cap = ctrl_input_limit
            .saturating_add(config.max_incoming_transfers)
            .saturating_add(RESERVE);
        let event_input_limit = config.max_pending_acks.saturating_add(64);
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
            buf: Vec::with_capacity(buf_cap),
            rx: Rx::Head,
            ctrl: VecDeque::with_capacity(ctrl_cap),
            ctrl_input_limit,
            events: VecDeque::with_capacity(event_cap),
            event_input_limit,
            tls: false,
            cert_ids: Vec::new(),
            peer_node_id: String::with_capacity(buf_cap),
            negotiated: None,
            outgoing: Vec::with_capacity(config.max_outgoing_transfers),
            incoming: Vec::with_capacity(config.max_incoming_transfers),
            pending_acks: VecDeque::with_capacity(config.max_pending_acks),
            next_tx_id: 0,
            tx_ids_exhausted: false,
            refused_rx: None,
            unconfirmed: None,
            tx_size: config.tx_segment_size,
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

    // ----- getters -------------------------------------------------------------------

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

    /// The current send segment size (before the peer's Segment MRU bounds it).
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

    // ----- outputs -------------------------------------------------------------------

    /// Writes the next pending control message into `out`; `Ok(None)` when none is
    /// pending. On `BufferTooSmall { needed }` nothing is consumed.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Option<usize>, EncodeError> {
        self.now = now;
        if matches!(self.phase, Phase::Closed(_)) {
            return Ok(None);
        }
        let Some(&c) = self.ctrl.front() else {
            self.finish_closing();
            return Ok(None);
        };
        let n = self.encode_control(c, out)?;
        self.ctrl.pop_front();
        self.last_tx = now;
        if matches!(c, Control::Keepalive) {
            self.keepalive_queued = false;
        }
        self.finish_closing();
        Ok(Some(n))
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next instant at which [`Session::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match self.phase {
            Phase::Contact | Phase::Tls | Phase::SessInit => at(self.contact_deadline),
            Phase::Established | Phase::Ending => {
                if let Some(ka) = self.keepalive() {
                    if !self.keepalive_queued {
                        at(self.last_tx + ka);
                    }
                    at(self.last_rx + ka * 2);
                }
                if let (Phase::Established, Some(idle)) = (self.phase, self.config.idle_timeout) {
                    if self.outgoing.is_empty() && !self.transfers_in_progress() {
                        at(self.last_xfer + idle);
                    }
                }
                if let Some(t) = self.term {
                    if let Some(d) = t.reply_deadline {
                        at(d);
                    }
                    if let Some(d) = t.done_deadline {
                        at(d);
                    }
                }
            }
            Phase::Closing(_) => {
                if let Some(d) = self.close_deadline {
                    at(d);
                }
            }
            Phase::Closed(_) => {}
        }
        next
    }

    // ----- inputs --------------------------------------------------------------------

    /// Consumes bytes received from the peer.
    ///
    /// Returns how many bytes were consumed and at most one piece of transfer data,
    /// borrowed from `input`. Call again with the unconsumed rest. While the runtime
    /// runs the TLS handshake (after [`Event::StartTls`]) nothing is consumed. It also
    /// returns right after accepting a new incoming transfer's START segment head
    /// ([`Event::IncomingTransferStarted`]), before any of its data, so the caller can
    /// [`refuse`](Session::refuse_transfer) the transfer before reading it.
    ///
    /// After a piece with [`RxData::end_of_segment`], nothing more is consumed until
    /// [`Session::confirm_segment`] or [`Session::refuse_transfer`] was called for it.
    pub fn handle_input<'a>(&mut self, now: Instant, input: &'a [u8]) -> Input<'a> {
        self.now = now;
        let mut pos = 0usize;
        loop {
            match self.phase {
                Phase::Closed(_) | Phase::Closing(_) => {
                    // Nothing more is read from a session on its way out; what the peer
                    // still sends is discarded as a closed socket would.
                    pos = input.len();
                    break;
                }
                Phase::Tls => break,
                _ => {}
            }
            if self.unconfirmed.is_some() {
                // The application has not confirmed the last segment yet.
                break;
            }
            if let Rx::Data {
                id,
                flags,
                remaining,
                offset,
                deliver,
                ack,
                ..
            } = self.rx
            {
                let avail = input.len().saturating_sub(pos);
                let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                if n == 0 && remaining > 0 {
                    break;
                }
                let bytes = input.get(pos..pos + n).unwrap_or_default();
                pos += n;
                let left = remaining - n as u64;
                if let Rx::Data {
                    remaining, offset, ..
                } = &mut self.rx
                {
                    *remaining = left;
                    *offset += n as u64;
                }
                if n > 0 {
                    self.last_rx = now;
                }
                let done = left == 0;
                let end = done && flags.is_end();
                if done {
                    self.finish_segment();
                }
                if deliver && (n > 0 || done) {
                    return Input {
                        consumed: pos,
                        data: Some(RxData {
                            transfer_id: id,
                            bytes,
                            offset,
                            end_of_segment: done && ack,
                            end_of_transfer: end && ack,
                        }),
                    };
                }
                continue;
            }
            if pos >= input.len() || !self.has_room() {
                break;
            }
            let rest = input.get(pos..).unwrap_or_default();
            let used = self.step_head(rest);
            if used == 0 {
                break;
            }
            pos += used;
            self.last_rx = now;
            if std::mem::take(&mut self.yield_at_start)
                && !matches!(self.rx, Rx::Data { remaining: 0, .. })
            {
                // A new incoming transfer: return before its data, so the caller can
                // refuse it (`refuse_transfer`) before any of it is acknowledged.
                // A START segment without data is handed out as its empty piece in
                // this same call instead: the caller sees the start event first and
                // can still refuse rather than confirm, and a runtime that calls again
                // only when more bytes arrive never strands it (an empty bundle that
                // was the last thing the peer sent would otherwise never be
                // acknowledged).
                break;
            }
        }
        Input {
            consumed: pos,
            data: None,
        }
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

    /// Fires whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        match self.phase {
            Phase::Contact | Phase::Tls if now >= self.contact_deadline => {
                // No contact header (or no TLS) yet: there is nothing the peer could
                // parse a SESS_TERM against, so just close.
                self.close_now(CloseReason::ContactTimeout);
            }
            Phase::SessInit if now >= self.contact_deadline => {
                self.fail_close(
                    CloseReason::ContactTimeout,
                    Some(SessTermReason::IDLE_TIMEOUT),
                );
            }
            Phase::Established | Phase::Ending => self.upkeep(now),
            Phase::Closing(r) if self.close_deadline.is_some_and(|d| now >= d) => {
                self.close_now(r);
            }
            _ => {}
        }
    }

    /// The runtime finished the TLS handshake that [`Event::StartTls`] asked for.
    ///
    /// `cert_node_ids` are the node IDs the peer's certificate authenticates (already
    /// verified by the runtime); with `require_node_authn` the peer's SESS_INIT node ID
    /// must be one of them, or the session ends with SESS_TERM Contact Failure.
    pub fn tls_established(
        &mut self,
        now: Instant,
        cert_node_ids: &[&str],
    ) -> Result<(), UsageError> {
        self.now = now;
        if self.phase != Phase::Tls {
            return Err(UsageError::WrongState);
        }
        self.tls = true;
        self.cert_ids.clear();
        self.cert_ids
            .extend(cert_node_ids.iter().map(|s| (*s).to_owned()));
        self.enter_sess_init();
        Ok(())
    }

    // ----- commands ------------------------------------------------------------------

    /// Starts an outgoing transfer and returns its transfer ID (sequential from 0,
    /// RFC 9174 §5.2.1). `total_len`, if known, is announced with the Transfer Length
    /// extension on the first segment and checked against what is sent.
    pub fn start_transfer(&mut self, total_len: Option<u64>) -> Result<u64, UsageError> {
        self.check_can_send()?;
        if self.phase == Phase::Ending {
            return Err(UsageError::SessionTerminating);
        }
        let n = self.negotiated.ok_or(UsageError::NotEstablished)?;
        if n.peer_segment_mru == 0 {
            return Err(UsageError::PeerAcceptsNoData);
        }
        if let Some(len) = total_len {
            if len > n.peer_transfer_mru {
                return Err(UsageError::TransferTooLarge {
                    len,
                    mru: n.peer_transfer_mru,
                });
            }
        }
        if self.outgoing.len() >= self.config.max_outgoing_transfers {
            return Err(UsageError::TooManyTransfers);
        }
        if self.tx_ids_exhausted {
            // RFC 9174 §5.2.1: the whole 64-bit Transfer ID space is used up.
            self.start_term(SessTermReason::RESOURCE_EXHAUSTION);
            return Err(UsageError::TransferIdsExhausted);
        }
        let id = self.next_tx_id;
        match self.next_tx_id.checked_add(1) {
            Some(next) => self.next_tx_id = next,
            None => self.tx_ids_exhausted = true,
        }
        self.outgoing.push(OutTransfer {
            id,
            total_len,
            sent: 0,
            acked: 0,
            started: false,
            end_sent: false,
        });
        self.last_xfer = self.now;
        Ok(id)
    }

    /// The most data bytes the next segment of `transfer_id` may carry: the smaller of
    /// the peer's Segment MRU and our (possibly adaptive) send segment size, and of what
    /// is left of the announced total length. 0 for an unknown transfer, or when the
    /// announced length has all been sent (only an empty END segment remains).
    pub fn segment_limit(&self, transfer_id: u64) -> usize {
        let Some(t) = self.outgoing.iter().find(|t| t.id == transfer_id) else {
            return 0;
        };
        let mru = self.negotiated.map_or(0, |n| n.peer_segment_mru);
        let mut limit = mru.min(self.tx_size.max(1));
        if let Some(total) = t.total_len {
            limit = limit.min(total.saturating_sub(t.sent));
        }
        usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// Length of the next non-final segment header of `transfer_id` (larger for the
    /// first segment, which carries the START flag and extension items). It is an upper
    /// bound for a final segment: a transfer sent in one segment (START and END) omits
    /// the Transfer Length item. [`Session::encode_segment_header`] returns the exact
    /// length written.
    pub fn segment_header_len(&self, transfer_id: u64) -> Result<usize, UsageError> {
        let t = self
            .outgoing
            .iter()
            .find(|t| t.id == transfer_id)
            .ok_or(UsageError::UnknownTransfer(transfer_id))?;
        let mut tl = [0u8; 8];
        let items = [TransferLength(t.total_len.unwrap_or(0)).item(false, &mut tl)];
        let (flags, ext) = segment_shape(t, &items, false);
        Ok(XferSegmentHead::new(flags, transfer_id, ext, 0).encoded_len())
    }

    /// Writes the header of the next XFER_SEGMENT of `transfer_id` into `out`; the
    /// caller writes `data_len` data bytes right after it.
    ///
    /// The first segment gets START (and the Transfer Length extension when the total
    /// was given), the one with `end` gets END. The segment is registered for ack
    /// accounting. On error nothing is registered.
    pub fn encode_segment_header(
        &mut self,
        transfer_id: u64,
        data_len: u64,
        end: bool,
        out: &mut [u8],
    ) -> Result<usize, SegmentError> {
        self.check_can_send()?;
        let n = self.negotiated.ok_or(UsageError::NotEstablished)?;
        let i = self
            .outgoing
            .iter()
            .position(|t| t.id == transfer_id)
            .ok_or(UsageError::UnknownTransfer(transfer_id))?;
        let t = self.outgoing[i];
        if t.end_sent {
            return Err(UsageError::AlreadyEnded(transfer_id).into());
        }
        if !t.started && self.phase == Phase::Ending {
            return Err(UsageError::SessionTerminating.into());
        }
        if let Some(other) = self
            .outgoing
            .iter()
            .find(|o| o.id != transfer_id && o.started && !o.end_sent)
        {
            return Err(UsageError::Interleaved(other.id).into());
        }
        if data_len == 0 && !end {
            return Err(UsageError::EmptySegment.into());
        }
        if data_len > n.peer_segment_mru {
            return Err(UsageError::SegmentTooLarge {
                len: data_len,
                mru: n.peer_segment_mru,
            }
            .into());
        }
        let new_sent = t
            .sent
            .checked_add(data_len)
            .ok_or(UsageError::LengthMismatch)?;
        if let Some(total) = t.total_len {
            if new_sent > total || (end && new_sent != total) {
                return Err(UsageError::LengthMismatch.into());
            }
        }
        if new_sent > n.peer_transfer_mru {
            return Err(UsageError::TransferTooLarge {
                len: new_sent,
                mru: n.peer_transfer_mru,
            }
            .into());
        }
        if self.pending_acks.len() >= self.config.max_pending_acks {
            return Err(UsageError::AckBacklogFull.into());
        }
        let mut tl = [0u8; 8];
        let items = [TransferLength(t.total_len.unwrap_or(0)).item(false, &mut tl)];
        let (flags, ext) = segment_shape(&t, &items, end);
        let written = XferSegmentHead::new(flags, transfer_id, ext, data_len).encode(out)?;
        let t = &mut self.outgoing[i];
        t.started = true;
        t.sent = new_sent;
        t.end_sent = end;
        self.pending_acks.push_back(PendingAck {
            id: transfer_id,
            end: new_sent,
            sent_at: self.now,
        });
        self.last_tx = self.now;
        self.last_xfer = self.now;
        Ok(written)
    }

    /// Frames the next segment of `transfer_id` from `data` into `out`: header plus a
    /// copy of as much of `data` as the segment limit and `out` allow. `end` says
    /// `data` is the rest of the transfer; END is set only if all of it fits.
    ///
    /// Returns `(consumed, written)`: data bytes framed and total bytes written.
    pub fn frame_segment(
        &mut self,
        transfer_id: u64,
        data: &[u8],
        end: bool,
        out: &mut [u8],
    ) -> Result<(usize, usize), SegmentError> {
        let header = self.segment_header_len(transfer_id)?;
        let limit = self.segment_limit(transfer_id);
        if limit == 0 && !data.is_empty() {
            return Err(UsageError::LengthMismatch.into());
        }
        let want = data.len().min(limit);
        let n = want.min(out.len().saturating_sub(header));
        if n < want && n == 0 {
            return Err(EncodeError::BufferTooSmall {
                needed: header.saturating_add(want),
            }
            .into());
        }
        let is_end = end && n == data.len();
        let h = self.encode_segment_header(transfer_id, n as u64, is_end, out)?;
        let (Some(dst), Some(src)) = (out.get_mut(h..h + n), data.get(..n)) else {
            return Err(EncodeError::BufferTooSmall { needed: h + n }.into());
        };
        dst.copy_from_slice(src);
        Ok((n, h + n))
    }

    /// Confirms that the segment of `transfer_id` just delivered (the piece with
    /// [`RxData::end_of_segment`]) was processed: its data is stored, and for the END
    /// segment the whole bundle is complete. Queues the segment's XFER_ACK (and
    /// [`Event::IncomingTransferFinished`] after the END segment) and lets input
    /// continue.
    pub fn confirm_segment(&mut self, transfer_id: u64) -> Result<(), UsageError> {
        let u = match self.unconfirmed {
            Some(u) if u.id == transfer_id => u,
            _ => return Err(UsageError::NothingToConfirm(transfer_id)),
        };
        self.unconfirmed = None;
        self.queue(Control::Ack(XferAck {
            flags: u.flags,
            transfer_id: u.id,
            acked_len: u.ack_len,
        }));
        if let Some(i) = self.incoming.iter().position(|t| t.id == u.id) {
            self.incoming[i].received = u.ack_len;
            if u.flags.is_end() {
                self.incoming.swap_remove(i);
                self.emit(Event::IncomingTransferFinished {
                    transfer_id: u.id,
                    len: u.ack_len,
                });
            }
        }
        self.last_xfer = self.now;
        self.check_ending();
        Ok(())
    }

    /// Refuses an incoming transfer (XFER_REFUSE with `reason`); its remaining
    /// segments are discarded unacknowledged. A segment delivered and not yet
    /// [confirmed](Session::confirm_segment) is never acknowledged.
    pub fn refuse_transfer(
        &mut self,
        transfer_id: u64,
        reason: XferRefuseReason,
    ) -> Result<(), UsageError> {
        let i = self
            .incoming
            .iter()
            .position(|t| t.id == transfer_id)
            .ok_or(UsageError::UnknownTransfer(transfer_id))?;
        self.refuse_incoming(i, reason);
        Ok(())
    }

    /// Ends the session gracefully: sends SESS_TERM with `reason`; transfers in
    /// progress complete, new ones are refused, then the session closes. Before the
    /// session is established this sends SESS_TERM (when the peer can parse it) and
    /// closes. A second call while ending does nothing.
    pub fn terminate(&mut self, now: Instant, reason: SessTermReason) -> Result<(), UsageError> {
        self.now = now;
        match self.phase {
            Phase::Closed(_) | Phase::Closing(_) => Err(UsageError::Closed),
            Phase::Ending => Ok(()),
            Phase::Contact | Phase::Tls => {
                self.close_now(CloseReason::LocalClose);
                Ok(())
            }
            Phase::SessInit => {
                self.fail_close(CloseReason::LocalClose, Some(reason));
                Ok(())
            }
            Phase::Established => {
                self.start_term(reason);
                Ok(())
            }
        }
    }

    /// Closes immediately, dropping anything not yet transmitted.
    pub fn close(&mut self) {
        if !self.is_closed() {
            self.close_now(CloseReason::LocalClose);
        }
    }

    // ----- internals -----------------------------------------------------------------

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

    fn encode_control(&self, c: Control, out: &mut [u8]) -> Result<usize, EncodeError> {
        match c {
            Control::Contact => {
                let flags = if self.config.can_tls {
                    ContactFlags::CAN_TLS
                } else {
                    ContactFlags::EMPTY
                };
                ContactHeader::new(flags).encode(out)
            }
            Control::SessInit => SessInit {
                keepalive: self.config.keepalive_interval,
                segment_mru: self.config.segment_mru,
                transfer_mru: self.config.transfer_mru,
                node_id: &self.config.node_id,
                extensions: ExtensionItems::parse(&self.config.session_extensions, 0)
                    .unwrap_or(ExtensionItems::EMPTY),
            }
            .encode(out),
            Control::Ack(m) => m.encode(out),
            Control::Refuse(m) => m.encode(out),
            Control::Keepalive => Message::Keepalive.encode(out),
            Control::Term(m) => m.encode(out),
            Control::Reject(m) => m.encode(out),
        }
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
    /// (bounded by `sess_term_timeout`).
    fn fail_close(&mut self, reason: CloseReason, term: Option<SessTermReason>) {
        if let Some(r) = term {
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

    fn enter_sess_init(&mut self) {
        self.phase = Phase::SessInit;
        if self.side == Side::Active {
            self.queue(Control::SessInit);
        }
    }

    /// Decodes and handles one unit (contact header, control message or segment head)
    /// from the front of `input`, buffering it if incomplete. Returns bytes consumed.
    fn step_head(&mut self, input: &[u8]) -> usize {
        if self.buf.is_empty() {
            match self.decode_unit(input) {
                Step::Complete(n) => return n,
                Step::Partial => {}
            }
        }
        // Buffered path: the unit continues past what we have, so every byte we have
        // belongs to it (a segment head may complete early, in which case the bytes
        // after it are handed back by consuming less).
        let old = self.buf.len();
        let room = self.buf.capacity().saturating_sub(old);
        let take = input.len().min(room);
        if take == 0 {
            // Cannot happen: the decode limit equals the buffer capacity, so a unit
            // that would not fit fails to decode first. Treat it as too large.
            self.fail_close(
                CloseReason::ProtocolError(ProtocolError::TooLarge {
                    message_type: self.buf.first().copied().unwrap_or(0),
                }),
                Some(SessTermReason::RESOURCE_EXHAUSTION),
            );
            self.buf.clear();
            return input.len();
        }
        self.buf
            .extend_from_slice(input.get(..take).unwrap_or_default());
        let buf = std::mem::take(&mut self.buf);
        let step = self.decode_unit(&buf);
        self.buf = buf;
        match step {
            Step::Complete(n) => {
                self.buf.clear();
                n.saturating_sub(old).min(take)
            }
            Step::Partial => take,
        }
    }

    fn decode_unit(&mut self, bytes: &[u8]) -> Step {
        if self.phase == Phase::Contact {
            return self.decode_contact(bytes);
        }
        match MessageHead::decode(bytes, &self.limits) {
            Ok(Status::Partial { .. }) => Step::Partial,
            Ok(Status::Complete((head, n))) => {
                self.on_message(head);
                Step::Complete(n)
            }
            Err(e) => {
                self.on_decode_error(e, bytes.first().copied().unwrap_or(0));
                Step::Complete(bytes.len())
            }
        }
    }

    fn decode_contact(&mut self, bytes: &[u8]) -> Step {
        match Contact::decode_with(bytes, &self.limits) {
            Err(DecodeError::BadMagic { .. }) => {
                // RFC 9174 §4.3: not a TCPCL peer; close without a reply.
                self.close_now(CloseReason::BadMagic);
                Step::Complete(bytes.len())
            }
            Err(_) => {
                // Only a v3 header's EID can fail to decode; the version is known.
                self.version_mismatch(bytes.get(4).copied().unwrap_or(0));
                Step::Complete(bytes.len())
            }
            Ok(Status::Partial { .. }) => match bytes.get(4) {
                // The version byte decides; no need to wait for the rest of another
                // version's header.
                Some(&v) if v != VERSION => {
                    self.version_mismatch(v);
                    Step::Complete(bytes.len())
                }
                _ => Step::Partial,
            },
            Ok(Status::Complete((Contact::V4(h), n))) => {
                self.on_contact(h);
                Step::Complete(n)
            }
            Ok(Status::Complete((other, n))) => {
                self.version_mismatch(other.version());
                Step::Complete(n)
            }
        }
    }

    /// RFC 9174 §4.3: a passive entity sends its contact header and terminates with
    /// SESS_TERM Version Mismatch. An active entity (whose header is out already) just
    /// closes the connection: the peer answered with another version, which could not
    /// parse a v4 SESS_TERM anyway. The peer speaks another version, so no reply is
    /// awaited.
    fn version_mismatch(&mut self, version: u8) {
        match self.side {
            Side::Passive => {
                self.queue(Control::Contact);
                self.fail_close(
                    CloseReason::VersionMismatch { version },
                    Some(SessTermReason::VERSION_MISMATCH),
                );
            }
            Side::Active => self.close_now(CloseReason::VersionMismatch { version }),
        }
    }

    fn on_contact(&mut self, h: ContactHeader) {
        if self.side == Side::Passive {
            self.queue(Control::Contact);
        }
        let tls = self.config.can_tls && h.flags.can_tls();
        if self.config.require_tls && !tls {
            // RFC 9174 §4.3: TLS required by policy but not negotiated.
            self.fail_close(
                CloseReason::TlsRequired,
                Some(SessTermReason::CONTACT_FAILURE),
            );
            return;
        }
        if tls {
            self.phase = Phase::Tls;
            let role = match self.side {
                Side::Active => TlsRole::Client,
                Side::Passive => TlsRole::Server,
            };
            self.emit(Event::StartTls { role });
        } else {
            self.enter_sess_init();
        }
    }

    fn on_decode_error(&mut self, e: DecodeError, message_type: u8) {
        let in_init = self.phase == Phase::SessInit && message_type == MessageType::SessInit.code();
        match e {
            DecodeError::UnknownMessageType { message_type, .. } => {
                // RFC 9174 §5.1.2: MSG_REJECT "message type unknown", then close: the
                // message's length is unknown.
                self.queue(Control::Reject(MsgReject {
                    reason: MsgRejectReason::UNKNOWN_TYPE,
                    rejected_header: message_type,
                }));
                self.fail_close(
                    CloseReason::ProtocolError(ProtocolError::UnknownMessageType { message_type }),
                    None,
                );
            }
            DecodeError::TooLarge { .. } if in_init => self.fail_close(
                CloseReason::ContactFailure(ContactFailure::SessInitTooLarge),
                Some(SessTermReason::CONTACT_FAILURE),
            ),
            DecodeError::TooLarge { .. } => self.fail_close(
                CloseReason::ProtocolError(ProtocolError::TooLarge { message_type }),
                Some(SessTermReason::RESOURCE_EXHAUSTION),
            ),
            _ if in_init => self.fail_close(
                CloseReason::ContactFailure(ContactFailure::MalformedSessInit),
                Some(SessTermReason::CONTACT_FAILURE),
            ),
            _ => self.fail_close(
                CloseReason::ProtocolError(ProtocolError::Malformed { message_type }),
                Some(SessTermReason::UNKNOWN),
            ),
        }
    }

    fn on_message(&mut self, head: MessageHead<'_>) {
        let live = matches!(self.phase, Phase::Established | Phase::Ending);
        let msg = match head {
            MessageHead::Segment(h) => return self.on_segment(h),
            MessageHead::Message(m) => m,
        };
        match msg {
            Message::SessInit(si) if self.phase == Phase::SessInit => self.on_sess_init(si),
            Message::SessTerm(t) => self.on_sess_term(t),
            Message::MsgReject(r) => self.emit(Event::MessageRejected {
                message_type: r.rejected_header,
                reason: r.reason,
            }),
            Message::Keepalive if live => self.emit(Event::KeepaliveReceived),
            Message::XferAck(a) if live => self.on_ack(a),
            Message::XferRefuse(r) if live => self.on_refuse(r),
            // A SESS_INIT after establishment, or transfer traffic before it.
            m => self.reject(MsgRejectReason::UNEXPECTED, m.message_type()),
        }
    }

    fn on_sess_init(&mut self, si: SessInit<'_>) {
        let fail = |f| {
            (
                CloseReason::ContactFailure(f),
                Some(SessTermReason::CONTACT_FAILURE),
            )
        };
        // RFC 9174 §4.6: an empty Node ID means the peer withholds it.
        let failure = if !si.node_id.is_empty() && !is_valid_node_id(si.node_id) {
            Some(fail(ContactFailure::InvalidNodeId))
        } else if let Some(item) = si.extensions.unsupported_critical(|_| false) {
            // RFC 9174 §4.7: an unknown critical session extension is a Contact Failure;
            // unknown non-critical items are ignored.
            Some(fail(ContactFailure::CriticalExtension {
                item_type: item.item_type,
            }))
        } else if self.config.require_node_authn
            && !(self.tls && self.cert_ids.iter().any(|c| node_ids_match(c, si.node_id)))
        {
            Some(fail(ContactFailure::NodeNotAuthenticated))
        } else {
            None
        };
        if let Some((reason, term)) = failure {
            self.fail_close(reason, term);
            return;
        }
        self.peer_node_id.clear();
        self.peer_node_id.push_str(si.node_id);
        self.cert_ids.clear();
        let ours = self.config.keepalive_interval;
        let keepalive = if ours == 0 || si.keepalive == 0 {
            0
        } else {
            ours.min(si.keepalive)
        };
        self.negotiated = Some(Negotiated {
            keepalive,
            peer_segment_mru: si.segment_mru,
            peer_transfer_mru: si.transfer_mru,
            tls: self.tls,
        });
        if self.side == Side::Passive {
            self.queue(Control::SessInit);
        }
        self.phase = Phase::Established;
        self.last_rx = self.now;
        self.last_tx = self.now;
        self.last_xfer = self.now;
        self.emit(Event::SessionEstablished);
    }

    fn on_sess_term(&mut self, t: SessTerm) {
        match self.phase {
            Phase::Established => {
                self.emit(Event::Terminating {
                    reason: t.reason,
                    by_peer: true,
                });
                self.queue(Control::Term(SessTerm {
                    flags: SessTermFlags::REPLY,
                    reason: t.reason,
                }));
                self.term = Some(Term {
                    reason: t.reason,
                    by_peer: true,
                    sent: true,
                    received: true,
                    reply_deadline: None,
                    done_deadline: None,
                });
                self.phase = Phase::Ending;
                self.cancel_unstarted();
                self.check_ending();
            }
            Phase::Ending => {
                if let Some(term) = &mut self.term {
                    term.received = true;
                    term.reply_deadline = None;
                }
                self.check_ending();
            }
            _ => {
                // Before establishment: answer (the contact headers are out) and close.
                self.emit(Event::Terminating {
                    reason: t.reason,
                    by_peer: true,
                });
                let reply = (!t.flags.is_reply()).then_some(t.reason);
                self.fail_close(
                    CloseReason::Terminated {
                        reason: t.reason,
                        by_peer: true,
                    },
                    None,
                );
                if let (Some(r), Phase::Closing(_)) = (reply, self.phase) {
                    self.queue(Control::Term(SessTerm {
                        flags: SessTermFlags::REPLY,
                        reason: r,
                    }));
                }
            }
        }
    }

    fn start_term(&mut self, reason: SessTermReason) {
        self.emit(Event::Terminating {
            reason,
            by_peer: false,
        });
        self.queue(Control::Term(SessTerm {
            flags: SessTermFlags::EMPTY,
            reason,
        }));
        self.term = Some(Term {
            reason,
            by_peer: false,
            sent: true,
            received: false,
            reply_deadline: Some(self.now + self.config.sess_term_timeout),
            done_deadline: None,
        });
        self.phase = Phase::Ending;
        self.cancel_unstarted();
        self.check_ending();
    }

    /// RFC 9174 §6.1: no new outgoing transfer begins once SESS_TERM is out.
    fn cancel_unstarted(&mut self) {
        let mut i = 0;
        while i < self.outgoing.len() {
            if self.outgoing[i].started {
                i += 1;
            } else {
                let t = self.outgoing.swap_remove(i);
                self.emit(Event::OutgoingCancelled { transfer_id: t.id });
            }
        }
    }

    /// After both SESS_TERMs, once nothing is in progress: the active side closes, the
    /// passive side waits (bounded) for that close.
    fn check_ending(&mut self) {
        let Some(t) = self.term else { return };
        if self.phase != Phase::Ending || !(t.sent && t.received) || self.transfers_in_progress() {
            return;
        }
        let reason = CloseReason::Terminated {
            reason: t.reason,
            by_peer: t.by_peer,
        };
        match self.side {
            Side::Active => self.fail_close(reason, None),
            Side::Passive => {
                if t.done_deadline.is_none() {
                    let d = self.now + self.config.sess_term_timeout;
                    if let Some(term) = &mut self.term {
                        term.done_deadline = Some(d);
                    }
                }
            }
        }
    }

    fn upkeep(&mut self, now: Instant) {
        if let Some(t) = self.term {
            if t.reply_deadline.is_some_and(|d| now >= d) {
                self.close_now(CloseReason::SessTermTimeout);
                return;
            }
            if t.done_deadline.is_some_and(|d| now >= d) {
                self.close_now(CloseReason::Terminated {
                    reason: t.reason,
                    by_peer: t.by_peer,
                });
                return;
            }
        }
        if let Some(ka) = self.keepalive() {
            if now >= self.last_rx + ka * 2 {
                // RFC 9174 §5.1.1: nothing received for twice the keepalive interval.
                if self.phase == Phase::Established {
                    self.start_term(SessTermReason::IDLE_TIMEOUT);
                } else {
                    self.close_now(CloseReason::SessTermTimeout);
                    return;
                }
            }
            // Anything already queued will reset the keepalive clock when written.
            if !self.keepalive_queued && self.ctrl.is_empty() && now >= self.last_tx + ka {
                self.keepalive_queued = true;
                self.queue(Control::Keepalive);
            }
        }
        if let (Phase::Established, Some(idle)) = (self.phase, self.config.idle_timeout) {
            if self.outgoing.is_empty()
                && !self.transfers_in_progress()
                && now >= self.last_xfer + idle
            {
                self.start_term(SessTermReason::IDLE_TIMEOUT);
            }
        }
    }

    // ----- incoming transfers --------------------------------------------------------

    fn on_segment(&mut self, h: XferSegmentHead<'_>) {
        let id = h.transfer_id;
        let flags = h.flags;
        // By default the segment's data is skipped unacknowledged.
        self.rx = Rx::Data {
            id,
            flags,
            remaining: h.data_len,
            offset: 0,
            deliver: false,
            ack: false,
            ack_len: 0,
        };
        if !matches!(self.phase, Phase::Established | Phase::Ending) {
            self.reject(MsgRejectReason::UNEXPECTED, MessageType::XferSegment);
            return;
        }
        if let Some((refused, reason)) = self.refused_rx {
            if refused == id {
                // RFC 9174 §5.2.4: a segment of a refused transfer (it crossed our
                // XFER_REFUSE on the wire) is refused again. A START reusing the ID is
                // no new transfer either: IDs are unique within a session (§5.2.1).
                self.queue(Control::Refuse(XferRefuse {
                    reason,
                    transfer_id: id,
                }));
                self.skip_refused(id, flags, reason);
                return;
            }
        }
        let i = if flags.is_start() {
            if let Some(i) = self.incoming.iter().position(|t| t.id == id) {
                // START on a transfer in progress: never splice the two.
                self.refuse_incoming(i, XferRefuseReason::NOT_ACCEPTABLE);
                self.skip_refused(id, flags, XferRefuseReason::NOT_ACCEPTABLE);
                return;
            }
            let refuse = if self.term.is_some() {
                Some(XferRefuseReason::SESSION_TERMINATING)
            } else if h
                .extensions
                .unsupported_critical(|t| t == TransferLength::ITEM_TYPE)
                .is_some()
            {
                Some(XferRefuseReason::EXTENSION_FAILURE)
            } else {
                match h.extensions.transfer_length() {
                    Err(_) => Some(XferRefuseReason::NOT_ACCEPTABLE),
                    Ok(Some(TransferLength(l))) if l > self.config.transfer_mru => {
                        Some(XferRefuseReason::NO_RESOURCES)
                    }
                    Ok(_) if self.incoming.len() >= self.config.max_incoming_transfers => {
                        Some(XferRefuseReason::NO_RESOURCES)
                    }
                    Ok(_) => None,
                }
            };
            if let Some(reason) = refuse {
                self.refuse_new(id, flags, reason);
                return;
            }
            let total_len = h.extensions.transfer_length().ok().flatten().map(|t| t.0);
            self.incoming.push(InTransfer {
                id,
                received: 0,
                total_len,
            });
            self.emit(Event::IncomingTransferStarted {
                transfer_id: id,
                total_len,
            });
            self.yield_at_start = true;
            self.incoming.len() - 1
        } else if let Some(i) = self.incoming.iter().position(|t| t.id == id) {
            i
        } else {
            // Continuation of a transfer we never saw start.
            self.refuse_new(id, flags, XferRefuseReason::NOT_ACCEPTABLE);
            return;
        };
        let received = self.incoming[i].received;
        let total = self.incoming[i].total_len;
        let new_total = received.checked_add(h.data_len);
        // RFC 9174 §5.2.5.1: data disagreeing with the announced Total Length is Not
        // Acceptable, whatever else is wrong with it; checked before the Transfer MRU.
        let refuse = match new_total {
            None => Some(XferRefuseReason::NOT_ACCEPTABLE),
            _ if h.data_len > self.config.segment_mru => Some(XferRefuseReason::NOT_ACCEPTABLE),
            Some(n) if total.is_some_and(|t| n > t || (flags.is_end() && n != t)) => {
                Some(XferRefuseReason::NOT_ACCEPTABLE)
            }
            Some(n) if n > self.config.transfer_mru => Some(XferRefuseReason::NO_RESOURCES),
            _ => None,
        };
        if let Some(reason) = refuse {
            self.refuse_incoming(i, reason);
            self.skip_refused(id, flags, reason);
            return;
        }
        self.rx = Rx::Data {
            id,
            flags,
            remaining: h.data_len,
            offset: received,
            deliver: true,
            ack: true,
            ack_len: new_total.unwrap_or(received),
        };
        self.last_xfer = self.now;
    }

    /// The rest of a refused transfer is discarded (and refused again, segment by
    /// segment) until its END segment.
    fn skip_refused(&mut self, id: u64, flags: SegmentFlags, reason: XferRefuseReason) {
        self.refused_rx = (!flags.is_end()).then_some((id, reason));
    }

    fn refuse_new(&mut self, id: u64, flags: SegmentFlags, reason: XferRefuseReason) {
        self.queue(Control::Refuse(XferRefuse {
            reason,
            transfer_id: id,
        }));
        self.emit(Event::IncomingTransferRefused {
            transfer_id: id,
            reason,
        });
        self.skip_refused(id, flags, reason);
    }

    fn refuse_incoming(&mut self, i: usize, reason: XferRefuseReason) {
        let t = self.incoming.swap_remove(i);
        self.queue(Control::Refuse(XferRefuse {
            reason,
            transfer_id: t.id,
        }));
        self.emit(Event::IncomingTransferRefused {
            transfer_id: t.id,
            reason,
        });
        self.refused_rx = Some((t.id, reason));
        if let Some(u) = self.unconfirmed.filter(|u| u.id == t.id) {
            self.unconfirmed = None;
            if u.flags.is_end() {
                // Its last segment was received already: nothing follows.
                self.refused_rx = None;
            }
        }
        if let Rx::Data {
            id,
            flags,
            deliver,
            ack,
            ..
        } = &mut self.rx
        {
            if *id == t.id {
                *deliver = false;
                *ack = false;
                if flags.is_end() {
                    // Its last segment is the one being received: nothing follows.
                    self.refused_rx = None;
                }
            }
        }
        self.check_ending();
    }

    /// The current segment's data has all been consumed.
    fn finish_segment(&mut self) {
        let Rx::Data {
            id,
            flags,
            ack,
            ack_len,
            ..
        } = self.rx
        else {
            return;
        };
        self.rx = Rx::Head;
        if ack {
            // The XFER_ACK waits for `confirm_segment`.
            self.unconfirmed = Some(Unconfirmed { id, flags, ack_len });
            self.last_xfer = self.now;
        } else if flags.is_end() && self.refused_rx.is_some_and(|(r, _)| r == id) {
            self.refused_rx = None;
        }
        self.check_ending();
    }

    // ----- outgoing transfers --------------------------------------------------------

    fn on_ack(&mut self, a: XferAck) {
        let id = a.transfer_id;
        let Some(i) = self.outgoing.iter().position(|t| t.id == id) else {
            if !self.issued(id) {
                self.reject(MsgRejectReason::UNEXPECTED, MessageType::XferAck);
            }
            // Otherwise a late ack for a transfer refused or cancelled: ignore it.
            return;
        };
        let t = self.outgoing[i];
        if a.acked_len > t.sent || a.acked_len < t.acked {
            self.reject(MsgRejectReason::UNEXPECTED, MessageType::XferAck);
            return;
        }
        let sent_at = self
            .pending_acks
            .iter()
            .find(|p| p.id == id && p.end == a.acked_len)
            .map(|p| p.sent_at);
        self.pending_acks
            .retain(|p| !(p.id == id && p.end <= a.acked_len));
        if let Some(at) = sent_at {
            self.adapt(self.now.saturating_duration_since(at));
        }
        let finished = t.end_sent && a.acked_len == t.sent;
        self.outgoing[i].acked = a.acked_len;
        if finished {
            self.outgoing.swap_remove(i);
        }
        self.last_xfer = self.now;
        self.emit(Event::OutgoingAcked {
            transfer_id: id,
            acked_len: a.acked_len,
            finished,
        });
        self.check_ending();
    }

    fn on_refuse(&mut self, r: XferRefuse) {
        let id = r.transfer_id;
        let Some(i) = self.outgoing.iter().position(|t| t.id == id) else {
            if !self.issued(id) {
                self.reject(MsgRejectReason::UNEXPECTED, MessageType::XferRefuse);
            }
            return;
        };
        self.outgoing.swap_remove(i);
        // A refused transfer's outstanding acks will never come.
        self.pending_acks.retain(|p| p.id != id);
        self.last_xfer = self.now;
        self.emit(Event::OutgoingRefused {
            transfer_id: id,
            reason: r.reason,
        });
        self.check_ending();
    }

    fn issued(&self, id: u64) -> bool {
        self.tx_ids_exhausted || id < self.next_tx_id
    }

    fn adapt(&mut self, rtt: Duration) {
        let Some(target) = self.config.modulate_target_ack_time else {
            return;
        };
        let mru = self.negotiated.map_or(0, |n| n.peer_segment_mru).max(1);
        let floor = MIN_ADAPTIVE_SEGMENT.min(mru);
        if rtt * 2 < target {
            self.tx_size = self.tx_size.saturating_mul(2).min(mru).max(floor);
        } else if rtt > target {
            self.tx_size = (self.tx_size / 2).max(floor);
        }
    }
}

/// Flags and extension block of the next segment of `t`.
fn segment_shape<'a>(
    t: &OutTransfer,
    items: &'a [crate::tcpcl::ExtensionItem<'a>],
    end: bool,
) -> (SegmentFlags, ExtensionItems<'a>) {
    let mut flags = SegmentFlags::EMPTY;
    let mut ext = ExtensionItems::EMPTY;
    if !t.started {
        flags = flags | SegmentFlags::START;
        // RFC 9174 §5.2.5.1: a single-segment transfer carries no Transfer Length.
        if t.total_len.is_some() && !end {
            ext = ExtensionItems::from_slice(items);
        }
    }
    if end {
        flags = flags | SegmentFlags::END;
    }
    (flags, ext)
}

/// RFC 9174 §4.4.1: NODE-ID matching uses RFC 3986 comparison with scheme-based
/// normalization: the scheme is case-insensitive, and `ipn` node and service numbers
/// compare as numbers (`ipn:01.0` is `ipn:1.0`); everything else compares exactly. An
/// empty Node ID matches nothing.
fn node_ids_match(cert: &str, peer: &str) -> bool {
    let (Some((cs, cr)), Some((ps, pr))) = (cert.split_once(':'), peer.split_once(':')) else {
        return false;
    };
    if !cs.eq_ignore_ascii_case(ps) || cr.is_empty() {
        return false;
    }
    if cs.eq_ignore_ascii_case("ipn") {
        let nums = |s: &str| {
            let (n, v) = s.split_once('.')?;
            let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
            if !digits(n) || !digits(v) {
                return None;
            }
            Some((n.parse::<u64>().ok()?, v.parse::<u64>().ok()?))
        };
        if let (Some(a), Some(b)) = (nums(cr), nums(pr)) {
            return a == b;
        }
    }
    cr == pr
}
