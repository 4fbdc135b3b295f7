//! The class 0 COTP connection state machine (X.224 over RFC 1006), for both sides,
//! without I/O.
//!
//! A [`Connection`] is built with a [`Config`], a [`Side`] and the current time; every
//! buffer it uses is allocated then, and nothing allocates afterwards.
//!
//! # Driving it
//!
//! - **Input**: pass received bytes to [`handle_input`](Connection::handle_input) until
//!   they are consumed. DT payload comes back as [`RxData`] slices borrowed from that
//!   input (at most one per call); control TPDUs are buffered whole (they are small).
//!   Tell it about end of stream with [`handle_eof`](Connection::handle_eof) and about
//!   time with [`handle_timeout`](Connection::handle_timeout).
//! - **Output**, drained in this order after every input, command or timeout:
//!   1. [`poll_transmit`](Connection::poll_transmit) until it returns `None`: control
//!      TPDUs (CR, CC, DR, DC, ER, raw TPDUs) in the order they were queued;
//!   2. [`poll_event`](Connection::poll_event) until it returns `None`;
//!   3. [`poll_timeout`](Connection::poll_timeout) for the next deadline.
//!
//!   User data is framed separately by [`frame_data`](Connection::frame_data) into the
//!   caller's buffer, after the control TPDUs have been written.
//! - Once [`is_closed`](Connection::is_closed) and `poll_transmit` has nothing more, the
//!   runtime closes the transport: in class 0 that is the release.
//!
//! ```
//! use proto_core::cotp::connection::{Config, Connection, Event, Side};
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let mut client = Connection::new(Config::default(), Side::Active, now)?;
//! let mut server = Connection::new(Config::default(), Side::Passive, now)?;
//! let mut wire = [0u8; 512];
//!
//! // CR from the client to the server, CC back.
//! let n = client.poll_transmit(now, &mut wire)?.unwrap();
//! assert_eq!(server.handle_input(now, &wire[..n]).consumed, n);
//! let n = server.poll_transmit(now, &mut wire)?.unwrap();
//! client.handle_input(now, &wire[..n]);
//! assert!(std::iter::from_fn(|| client.poll_event()).any(|e| e == Event::Connected));
//!
//! // One message, framed into DTs by the client, streamed out by the server.
//! let framed = client.frame_data(b"hello", true, &mut wire)?;
//! let input = server.handle_input(now, &wire[..framed.written]);
//! let data = input.data.unwrap();
//! assert_eq!((data.bytes, data.end_of_message), (&b"hello"[..], true));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod event;
mod expedited;
pub mod negotiate;
mod receive;
mod transmit;

#[cfg(test)]
mod rfc1006_tests;
#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError};
pub use event::{CloseReason, Event, ExpeditedBytes, ProtocolError, Timer};

use crate::cotp::codes::{DisconnectReason, RejectCause, TpduKind, TpduSize};
use crate::cotp::expedited as ed;
use crate::cotp::params::{Param, Params};
use crate::cotp::tpdu::{self, Connect, DisconnectConfirm, DisconnectRequest, ErrorTpdu, Tpdu};
use crate::cotp::{FrameError, TpduError, Tsap};
use crate::ring::Ring;
use crate::tpkt::{self, Deframer};
use crate::wire::EncodeError;
use negotiate::Decision;
use std::time::Instant;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The initiator: sends the CR.
    Active,
    /// The responder: answers a CR.
    Passive,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Active side: CR queued or sent, waiting for the CC.
    AwaitingConfirm,
    /// Passive side: waiting for a CR.
    AwaitingRequest,
    /// Passive side with manual accept: a CR arrived, the application decides.
    AwaitingAccept,
    /// Connected: data may flow both ways.
    Open,
    /// A final DR, DC or ER is queued; closed once it has been transmitted.
    Closing,
    /// Finished.
    Closed,
}

/// What one [`Connection::handle_input`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input<'a> {
    /// Bytes of the input consumed; call again with the rest.
    pub consumed: usize,
    /// User data that arrived, borrowed from the input.
    pub data: Option<RxData<'a>>,
}

/// A piece of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxData<'a> {
    /// The bytes (may be empty only for an empty DT that ends a message).
    pub bytes: &'a [u8],
    /// This piece begins a DT.
    pub first_in_tpdu: bool,
    /// This piece ends a DT.
    pub last_in_tpdu: bool,
    /// This piece ends a message (the DT carried EOT).
    pub end_of_message: bool,
}

/// Result of [`Connection::frame_data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed {
    /// Bytes of the caller's data framed.
    pub consumed: usize,
    /// Bytes written to the output buffer (whole TPKT/DT frames).
    pub written: usize,
}

/// Misuse of the connection by its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// Data can only be sent on an open connection.
    #[error("the connection is not open (state {0:?})")]
    NotOpen(State),
    /// An empty message cannot be sent: class 0 has no empty DT.
    #[error("an empty message cannot be sent (class 0 never sends an empty DT)")]
    EmptyMessage,
    /// The output buffer cannot hold one DT.
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes needed for the next frame.
        needed: usize,
    },
    /// A raw TPDU is still waiting to be transmitted.
    #[error("a raw TPDU is already queued")]
    RawPending,
    /// The raw TPDU does not fit the connection's buffer or is invalid.
    #[error("the raw TPDU cannot be queued: {0}")]
    RawInvalid(&'static str),
    /// `accept` / `refuse` outside [`State::AwaitingAccept`].
    #[error("no connection request is waiting for a decision")]
    NoPendingRequest,
    /// Expedited data was not negotiated on this connection (RFC 1006: both the CR
    /// and the CC must select it).
    #[error("expedited data was not negotiated on this connection")]
    ExpeditedNotSelected,
    /// Expedited data of the wrong size (1 to 16 octets).
    #[error("{0}")]
    Expedited(crate::cotp::expedited::EdError),
    /// Too many TPDUs are queued; transmit them first.
    #[error("the transmit queue is full: call poll_transmit first")]
    QueueFull,
}

impl From<EncodeError> for UsageError {
    fn from(e: EncodeError) -> Self {
        match e {
            EncodeError::BufferTooSmall { needed } => UsageError::BufferTooSmall { needed },
            EncodeError::ValueTooLarge { .. } => UsageError::RawInvalid("header too long"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Cr,
    Cc,
    Dr(DisconnectReason),
    Dc,
    Er(RejectCause),
    Raw,
    /// An ED with this many octets of the array (RFC 1006 class 0 form).
    Ed([u8; crate::cotp::expedited::MAX_ED_DATA], u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    /// Collecting the first three octets of a TPDU to tell DT from the rest.
    Header,
    /// Buffering a control TPDU whole.
    Control,
    /// Streaming a class 0 DT's data.
    Data { eot: bool },
    /// Ignoring the rest of the stream.
    Discard,
}

/// Control TPDUs (and EDs) waiting for `poll_transmit`.
const PENDING_SLOTS: usize = 8;
const EVENTS: usize = 16;
/// `handle_input` stops early when this many events wait, so a peer cannot make a
/// caller that polls late lose events.
const EVENT_HIGH_WATER: usize = EVENTS - 4;
/// Longest invalid-TPDU header echoed in an ER.
const ER_ECHO_MAX: usize = 128;

/// A class 0 COTP connection. See the [module documentation](self).
#[derive(Debug)]
pub struct Connection {
    cfg: Config,
    side: Side,
    state: State,
    // Negotiated and identifying values.
    tpdu_size: TpduSize,
    preferred_max: Option<u64>,
    local_ref: u16,
    remote_ref: u16,
    calling_tsap: Option<Tsap>,
    called_tsap: Option<Tsap>,
    /// RFC 1006 expedited data is in use (both the CR and the CC selected it).
    expedited: bool,
    // Receive path.
    deframer: Deframer,
    rx: Rx,
    head: [u8; 3],
    head_len: usize,
    frame_payload: usize,
    ctrl: Box<[u8]>,
    ctrl_len: usize,
    last_tpdu_valid: bool,
    msg_len: usize,
    dt_started: bool,
    // Transmit path.
    pending: Ring<Pending, PENDING_SLOTS>,
    raw: Box<[u8]>,
    raw_len: usize,
    er_echo: [u8; ER_ECHO_MAX],
    er_echo_len: usize,
    // Outcome.
    close_reason: Option<CloseReason>,
    events: Ring<Event, EVENTS>,
    // Timers.
    connect_deadline: Option<Instant>,
    inactivity_deadline: Option<Instant>,
}

impl Connection {
    /// A connection for `side`. The active side queues its CR at once.
    pub fn new(cfg: Config, side: Side, now: Instant) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut c = Connection {
            side,
            state: match side {
                Side::Active => State::AwaitingConfirm,
                Side::Passive => State::AwaitingRequest,
            },
            tpdu_size: cfg.tpdu_size,
            preferred_max: None,
            local_ref: cfg.src_ref,
            remote_ref: 0,
            calling_tsap: cfg.calling_tsap,
            called_tsap: cfg.called_tsap,
            expedited: false,
            deframer: Deframer::new(cfg.max_frame_len),
            rx: Rx::Header,
            head: [0; 3],
            head_len: 0,
            frame_payload: 0,
            ctrl: vec![0; cfg.max_control_tpdu].into_boxed_slice(),
            ctrl_len: 0,
            last_tpdu_valid: false,
            msg_len: 0,
            dt_started: false,
            pending: Ring::new(),
            raw: vec![0; cfg.max_control_tpdu].into_boxed_slice(),
            raw_len: 0,
            er_echo: [0; ER_ECHO_MAX],
            er_echo_len: 0,
            close_reason: None,
            events: Ring::new(),
            connect_deadline: cfg.connect_timeout.map(|d| now + d),
            inactivity_deadline: None,
            cfg,
        };
        if side == Side::Active {
            // Encoding once here proves the CR fits before anything is sent.
            let mut probe = [0u8; 300];
            c.encode_cr(&mut probe)
                .map_err(|_| ConfigError::HeaderTooLong)?;
            let _ = c.pending.push(Pending::Cr);
        }
        Ok(c)
    }

    /// An active connection that sends `cr`, a CR the caller built, instead of one
    /// made from the configuration (the seed API's `connect_raw`). The CR's source
    /// reference and TSAPs become this connection's.
    pub fn new_raw(cfg: Config, cr: &Tpdu<'_>, now: Instant) -> Result<Self, ConfigError> {
        let Tpdu::ConnectionRequest(req) = cr else {
            return Err(ConfigError::NotAConnectionRequest("wrong TPDU type"));
        };
        let mut cfg = cfg;
        cfg.src_ref = req.src_ref;
        // A CR without C0 proposes 128 octets, whatever the configuration says.
        cfg.tpdu_size = req.params.tpdu_size().unwrap_or(TpduSize::S128);
        cfg.calling_tsap = tsap_of(req.params.calling_tsap());
        cfg.called_tsap = tsap_of(req.params.called_tsap());
        cfg.expedited = ed::selected(&req.params);
        cfg.preferred_max_tpdu_size = req
            .params
            .preferred_max_tpdu_size()
            .map(|b| u32::try_from(b).unwrap_or(u32::MAX));
        let mut c = Connection::new(cfg, Side::Passive, now)?;
        c.side = Side::Active;
        c.state = State::AwaitingConfirm;
        c.raw_len = cr
            .encode(&mut c.raw)
            .map_err(|_| ConfigError::NotAConnectionRequest("does not fit the control buffer"))?;
        let _ = c.pending.push(Pending::Raw);
        Ok(c)
    }

    /// Where the connection stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// Which side this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Whether the connection is open for data.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the connection has ended (the transport should be closed once
    /// [`poll_transmit`](Self::poll_transmit) has nothing more).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether part of an incoming message (or of a TPKT frame) has been received and
    /// its end has not: a runtime that wants to stop gracefully waits for it.
    pub fn is_receiving(&self) -> bool {
        self.msg_len > 0 || !self.deframer.at_frame_boundary()
    }

    /// Why the connection ended (set from the moment the ending is decided).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// The negotiated TPDU size (the configured one until a CC is exchanged).
    pub fn tpdu_size(&self) -> TpduSize {
        self.tpdu_size
    }

    /// The negotiated preferred maximum TPDU size in bytes, if F0 was exchanged.
    pub fn preferred_max_tpdu_size(&self) -> Option<u64> {
        self.preferred_max
    }

    /// Data bytes carried per DT.
    pub fn max_dt_payload(&self) -> usize {
        let size = self.preferred_max.map_or(self.tpdu_size.bytes(), |p| {
            usize::try_from(p).unwrap_or(usize::MAX)
        });
        // The TPKT length field bounds any frame to 65535 octets; negotiation never
        // yields less than 128, the floor keeps a DT carrying data regardless.
        size.min(tpkt::DEFAULT_MAX_FRAME_LEN - tpkt::HEADER_LEN)
            .saturating_sub(tpdu::DT_CLASS0_HEADER_LEN)
            .max(1)
    }

    /// Our reference.
    pub fn local_ref(&self) -> u16 {
        self.local_ref
    }

    /// The peer's reference (0 until known).
    pub fn remote_ref(&self) -> u16 {
        self.remote_ref
    }

    /// The calling TSAP of the connection (sent by the active side in its CR).
    pub fn calling_tsap(&self) -> Option<&Tsap> {
        self.calling_tsap.as_ref()
    }

    /// The called TSAP of the connection.
    pub fn called_tsap(&self) -> Option<&Tsap> {
        self.called_tsap.as_ref()
    }

    /// The last control TPDU received, valid from its [`Event::TpduReceived`] until
    /// the next [`handle_input`](Self::handle_input) call.
    pub fn last_tpdu(&self) -> Option<Tpdu<'_>> {
        if !self.last_tpdu_valid {
            return None;
        }
        Tpdu::decode(&self.ctrl[..self.ctrl_len]).ok()
    }

    /// The encoded bytes of the last control TPDU received (TPKT header excluded), valid
    /// like [`last_tpdu`](Self::last_tpdu).
    pub fn last_tpdu_bytes(&self) -> Option<&[u8]> {
        self.last_tpdu_valid.then(|| &self.ctrl[..self.ctrl_len])
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be
    /// called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed | State::Closing => None,
            _ => [self.connect_deadline, self.inactivity_deadline]
                .into_iter()
                .flatten()
                .min(),
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Closed | State::Closing) {
            return;
        }
        if self.connect_deadline.is_some_and(|d| now >= d) {
            self.connect_deadline = None;
            // Nothing is sent: there is no connection to disconnect yet.
            self.finish(CloseReason::TimedOut(Timer::Connect));
        } else if self.inactivity_deadline.is_some_and(|d| now >= d) {
            self.inactivity_deadline = None;
            self.end_with(
                Pending::Dr(DisconnectReason::NOT_SPECIFIED),
                CloseReason::TimedOut(Timer::Inactivity),
            );
        }
    }

    /// Accepts a CR waiting in [`State::AwaitingAccept`]: queues the CC.
    pub fn accept(&mut self, now: Instant) -> Result<(), UsageError> {
        if self.state != State::AwaitingAccept {
            return Err(UsageError::NoPendingRequest);
        }
        self.open_passive(now);
        Ok(())
    }

    /// Refuses a CR waiting in [`State::AwaitingAccept`] with a DR carrying `reason`.
    pub fn refuse(&mut self, reason: DisconnectReason) -> Result<(), UsageError> {
        if self.state != State::AwaitingAccept {
            return Err(UsageError::NoPendingRequest);
        }
        self.end_with(Pending::Dr(reason), CloseReason::LocalRefused { reason });
        Ok(())
    }

    /// Disconnects with a DR carrying `reason` (normal release: [`DisconnectReason::NORMAL`]).
    /// Before the connection is open this refuses (passive) or abandons (active) it.
    pub fn close(&mut self, reason: DisconnectReason) {
        match self.state {
            State::Closed | State::Closing => {}
            State::AwaitingRequest => self.finish(CloseReason::LocalDisconnect { reason }),
            State::AwaitingAccept => {
                self.end_with(Pending::Dr(reason), CloseReason::LocalRefused { reason })
            }
            _ => self.end_with(Pending::Dr(reason), CloseReason::LocalDisconnect { reason }),
        }
    }

    /// Disconnects with a DR the caller built (the seed API's `close_raw`).
    pub fn close_raw(&mut self, dr: &DisconnectRequest<'_>) -> Result<(), UsageError> {
        if matches!(self.state, State::Closed | State::Closing) {
            return Ok(());
        }
        self.queue_raw(&Tpdu::DisconnectRequest(*dr))?;
        self.close_reason = Some(CloseReason::LocalDisconnect { reason: dr.reason });
        self.state = State::Closing;
        Ok(())
    }

    /// Queues any TPDU for transmission as it is (the seed API's `send_tpdu`). No state
    /// changes: this is for tools and tests that speak the protocol by hand.
    pub fn send_tpdu(&mut self, tpdu: &Tpdu<'_>) -> Result<(), UsageError> {
        if self.state == State::Closed {
            return Err(UsageError::NotOpen(self.state));
        }
        self.queue_raw(tpdu)
    }

    fn open_passive(&mut self, now: Instant) {
        let _ = self.pending.push(Pending::Cc);
        self.open(now);
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open;
        self.connect_deadline = None;
        self.inactivity_deadline = self.cfg.inactivity_timeout.map(|d| now + d);
        self.emit(Event::Connected);
    }

    /// Reports a violation, queues an ER with `cause` (or a DR when `None`) and ends.
    fn violation(&mut self, e: ProtocolError, cause: Option<RejectCause>) {
        self.emit(Event::ProtocolError(e));
        let reply = match cause {
            Some(c) => Pending::Er(c),
            None => Pending::Dr(DisconnectReason::PROTOCOL_ERROR),
        };
        self.end_with(reply, CloseReason::ProtocolError(e));
    }

    /// Queues a final TPDU after whatever is already queued (a CC goes out before the
    /// DR that follows it) and closes once everything has been transmitted.
    fn end_with(&mut self, last: Pending, reason: CloseReason) {
        self.close_reason = Some(reason);
        let _ = self.pending.push(last);
        self.state = State::Closing;
        self.inactivity_deadline = None;
        self.connect_deadline = None;
    }

    /// Closes at once, sending nothing more.
    fn finish(&mut self, reason: CloseReason) {
        self.close_reason = Some(reason);
        self.pending.clear();
        self.raw_len = 0;
        self.state = State::Closed;
        self.inactivity_deadline = None;
        self.connect_deadline = None;
        self.emit(Event::Closed(reason));
    }

    fn emit(&mut self, e: Event) {
        // The high-water mark in `handle_input` keeps room; should the owner never
        // poll, the newest event is dropped rather than growing a queue.
        let _ = self.events.push(e);
    }
}

/// A TSAP parameter as a [`Tsap`]; one longer than [`Tsap::MAX_LEN`] is dropped (the
/// negotiation refuses such a CR before it matters).
fn tsap_of(bytes: Option<&[u8]>) -> Option<Tsap> {
    bytes.and_then(|b| Tsap::new(b).ok())
}
