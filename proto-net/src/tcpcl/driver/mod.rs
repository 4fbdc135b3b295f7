//! The session loop: one thread owns everything of one session — the non-blocking
//! socket, the sans-IO [`Session`], the rustls connection, the sinks of incoming
//! bundles and the sources of outgoing ones — and sleeps in one `ppoll` on the
//! socket, woken by its handles ([`super::wake`]) or by the core's next deadline.
//!
//! # The loop
//!
//! Every state change goes through the core, and only this thread touches the core
//! (the "single mutation" rule): handles, reader helpers and the agent reach the
//! session only through the command queue and the waker. One turn:
//!
//! ```text
//! loop {
//!     take_commands()            // send requests, terminate, shutdown, close
//!     advance_tls()              // start TLS at the contact-header boundary, handshake
//!     input()                    // read once, core.handle_input → events, data → sinks,
//!                                //   confirm_segment once a sink took a segment
//!     handle_timeout() if due    // keepalive, idle, contact and SESS_TERM timers
//!     transmit()                 // core.poll_transmit: control messages, then segment
//!                                //   headers + payload from the source, until the socket
//!                                //   is full or the core has nothing to send
//!     publish()                  // state and counts for the handles
//!     if closed { break }
//!     wait(socket readable if reading, writable if output waits, core.poll_timeout())
//! }
//! close_down()                   // flush SESS_TERM, close_notify, FIN, linger for the peer's
//! finish()                       // cancel what cannot complete, report, unregister
//! ```
//!
//! Input pauses (the socket is not read, TCP backpressure reaches the peer) while the
//! application's event channel is full; acknowledgements, keepalives and SESS_TERM
//! keep flowing, and the core is told that unread input waits so its receive-idle
//! timer does not fire on a live peer.

mod close;
mod commands;
mod core_events;
mod incoming;
mod outgoing;
mod reader;
pub(crate) mod rxbuf;
pub(crate) mod sansio;
mod tls;
mod transport;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use proto_core::tcpcl::{
    Event as CoreEvent, RxData, SessTermReason, State, TlsRole, Transmit, TransmitError, UsageError,
};
use proto_core::EncodeError;

use super::close::{CloseReason, IoOp, TlsFailure};
use super::error::Error;
use super::events::{Direction, Event, SessionId, SessionParams};
use super::report::Reporter;
use super::shared::{AnswerTx, Command, SendRequest, Shared, Source};
use super::sink::{IncomingTransfer, SinkPolicy};
use super::tls::{authenticate_host, authenticate_node, TlsContext};
use super::tls_glue::describe;
use super::wake::Sleeper;
use incoming::Incoming;
use outgoing::{Outgoing, SourceError};
use rxbuf::{ReadBudget, RxBuf};
pub(crate) use sansio::{Accept, Core};
use transport::{Failure, Output, Read_, Transport};

/// Most written per turn before input gets its turn again.
const TURN_BYTES: usize = 4 << 20;
/// Staged control bytes before they are written.
const STAGE_MAX: usize = 64 << 10;
/// How often a session whose events wait for room retries.
const BACKLOG_RETRY: Duration = Duration::from_millis(5);
/// Most the session waits, once closed, for its last messages to be written.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);
/// Most the session reads (and discards) after its FIN, waiting for the peer's: a
/// socket closed with unread input, or receiving more, makes the kernel send a RST.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// What a session needs from whoever owns it (the agent), without knowing it.
pub(crate) trait Owner: Send + Sync {
    /// The session is over; returns whether it was the last one.
    fn unregister(&self, id: SessionId) -> bool;
    /// The last session closed.
    fn last_closed(&self);
    /// A TCPCLv3 peer's SHUTDOWN asked not to be reconnected to for `delay`
    /// (RFC 7242 §6.1).
    fn hold_off(&self, _peer: std::net::SocketAddr, _delay: Duration) {}
}

/// A send request's reply channel and its answer.
type Answer = (AnswerTx, Result<u64, Error>);

/// Everything a session thread is built from.
pub(crate) struct Parts {
    pub(crate) core: Core,
    pub(crate) sock: std::net::TcpStream,
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: Receiver<Command>,
    pub(crate) report: Reporter,
    pub(crate) sinks: Arc<SinkPolicy>,
    pub(crate) tls: Option<TlsContext>,
    /// SNI and DNS-ID reference for the TLS client role.
    pub(crate) server_name: String,
    pub(crate) require_host_authn: bool,
    /// A host authentication Failure does not end the session (`ignore_host_authn`).
    pub(crate) ignore_host_authn: bool,
    pub(crate) budget: Arc<ReadBudget>,
    pub(crate) owner: Arc<dyn Owner>,
}

/// One session's loop state (see the module documentation).
pub(crate) struct Driver {
    id: SessionId,
    core: Core,
    io: Transport,
    out: Output,
    rx: RxBuf,
    readable: bool,
    eof: bool,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    report: Reporter,
    sinks: Arc<SinkPolicy>,
    outgoing: Outgoing,
    incoming: Incoming,
    /// Send requests waiting for room in the core's transfer table.
    parked: VecDeque<SendRequest>,
    /// Answers to send requests, given once this turn's output was written.
    answers: Vec<Answer>,
    /// Bundles submitted and not yet finished, refused or cancelled.
    pending_out: usize,
    /// Graceful shutdown: SESS_TERM with this reason once every bundle is done.
    drain: Option<SessTermReason>,
    tls: Option<TlsContext>,
    tls_start: Option<TlsRole>,
    tls_leftover: Vec<u8>,
    server_name: String,
    require_host_authn: bool,
    ignore_host_authn: bool,
    budget: Arc<ReadBudget>,
    owner: Arc<dyn Owner>,
    close_override: Option<CloseReason>,
    closed: Option<CloseReason>,
    immediate: bool,
    last_state: State,
}

impl Driver {
    pub(crate) fn new(p: Parts) -> std::io::Result<Box<Driver>> {
        let state = p.core.state();
        let seg = p.core.tx_segment_size();
        Ok(Box::new(Driver {
            id: p.shared.id,
            io: Transport::new(p.sock)?,
            out: Output::default(),
            rx: RxBuf::new(p.budget.clone()),
            readable: true,
            eof: false,
            outgoing: Outgoing::new(p.shared.waker.clone(), seg),
            incoming: Incoming::new(),
            core: p.core,
            shared: p.shared,
            commands: p.commands,
            report: p.report,
            sinks: p.sinks,
            parked: VecDeque::new(),
            answers: Vec::new(),
            pending_out: 0,
            drain: None,
            tls: p.tls,
            tls_start: None,
            tls_leftover: Vec::new(),
            server_name: p.server_name,
            require_host_authn: p.require_host_authn,
            ignore_host_authn: p.ignore_host_authn,
            budget: p.budget,
            owner: p.owner,
            close_override: None,
            closed: None,
            immediate: false,
            last_state: state,
        }))
    }

    /// Runs the session to its end (on the session's own thread). Boxed: the loop
    /// state stays on the heap instead of being copied onto the thread's stack, which
    /// an idle session would otherwise keep resident.
    pub(crate) fn run(mut self: Box<Self>) {
        // First, so it precedes every event of the session, and on this thread, where
        // the handler runs for all of them.
        self.report.emit(Event::SessionOpened {
            session: self.id,
            peer: self.shared.peer_addr,
            side: self.shared.side,
        });
        let sleeper = match Sleeper::bind(self.shared.waker.clone()) {
            Ok(s) => Some(s),
            Err(e) => {
                self.fail(CloseReason::io(IoOp::Wait, &e));
                None
            }
        };
        while let Some(sleeper) = &sleeper {
            let now = Instant::now();
            self.take_commands(now);
            self.advance_tls(now);
            self.input(now);
            if self.core.poll_timeout().is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
            }
            self.drain_events(&mut None);
            self.start_replies();
            // Send requests taken this turn, and parked ones that transfers finished
            // this turn made room for.
            self.answer_parked();
            self.check_drain(now);
            self.transmit(now);
            self.advance_tls(now);
            // Events before the published counts: a handle that sees its bundles
            // finished finds their events already on the channel.
            if self.report.flush() && self.incoming.awaiting_delivery() {
                // Their events just reached the channel: acknowledge now.
                self.incoming
                    .confirm_delivered(&mut self.core, &self.report);
                self.transmit(now);
            }
            self.publish();
            self.answer_sends();
            if self.closed.is_some() {
                break;
            }
            let (read, write, timeout) = self.interest();
            match sleeper.wait(&self.io.sock, read, write, timeout) {
                Ok(r) => self.readable |= r.readable,
                Err(e) => self.fail(CloseReason::io(IoOp::Wait, &e)),
            }
        }
        if let Some(s) = &sleeper {
            self.close_down(s);
        }
        self.finish();
        drop(sleeper);
    }

    /// What to wait for: readable while input is wanted, writable while output
    /// waits, and until the next deadline.
    fn interest(&mut self) -> (bool, bool, Option<Duration>) {
        let now = Instant::now();
        let mut deadline = self.core.poll_timeout();
        let mut read = self.wants_input() || self.io.is_handshaking();
        if self.report.is_backlogged() {
            read &= !self.paused_for_events();
            let retry = now + BACKLOG_RETRY;
            deadline = Some(deadline.map_or(retry, |d| d.min(retry)));
        }
        let write = !self.out.is_empty() || self.io.tls_pending();
        if !self.rx.is_empty()
            && self.out.is_empty()
            && self.closed.is_none()
            && self.tls_start.is_none()
            && !self.report.is_backlogged()
        {
            // Input is waiting that the core paused on (its queues were full); they
            // were drained into the output, which is written, so it can go on now.
            deadline = Some(now);
        }
        if read && self.readable {
            // The last read did not end in WouldBlock: input may be buffered above the
            // socket (in rustls, or raw bytes not yet fed to it), which `ppoll` cannot
            // see. Read on until the transport says there is nothing.
            deadline = Some(now);
        }
        (
            read,
            write,
            deadline.map(|d| d.saturating_duration_since(now)),
        )
    }

    fn wants_input(&self) -> bool {
        !self.eof
            && self.closed.is_none()
            && self.tls_start.is_none()
            && self.rx.is_empty()
            && !self.paused_for_events()
    }

    /// Input waits while the application's event channel is full — once the session
    /// is established. The contact and SESS_INIT exchange goes on (it adds a few
    /// events at most), or a session opened while the agent's shared channel is full
    /// would die of its contact timeout.
    fn paused_for_events(&self) -> bool {
        self.report.is_backlogged()
            && matches!(self.core.state(), State::Established | State::Ending)
    }

    // ----- input ---------------------------------------------------------------------

    fn input(&mut self, now: Instant) {
        if !self.rx.is_empty() {
            self.feed(now);
        }
        if self.report.is_backlogged() {
            if self.report.flush() {
                self.incoming
                    .confirm_delivered(&mut self.core, &self.report);
                self.feed(now);
            } else if self.io.has_unread_input() || !self.rx.is_empty() {
                // Paused for the application, not idle: the peer is alive.
                self.core.note_unread_input(now);
            }
        }
        if !self.wants_input() || !self.readable {
            return;
        }
        let spare = self.rx.spare();
        let room = spare.len();
        if room == 0 {
            return;
        }
        match self.io.read(spare) {
            Ok(Read_::Data(n)) => {
                if n < room && self.io.tls().is_none() {
                    // A short plaintext read emptied the socket: the next read would
                    // only say WouldBlock. (Under TLS, rustls may still hold input.)
                    self.readable = false;
                }
                self.rx.filled(n, room);
                self.feed(now);
            }
            Ok(Read_::WouldBlock) => self.readable = false,
            Ok(Read_::Eof) => {
                self.eof = true;
                self.core.handle_eof(now);
            }
            Err(f) => {
                self.eof = true;
                if !matches!(self.core.state(), State::Closing | State::Closed) {
                    self.close_override.get_or_insert(f.into_reason(IoOp::Read));
                }
                self.core.handle_eof(now);
            }
        }
    }

    /// Feeds pending input to the core until it is consumed or the core pauses.
    fn feed(&mut self, now: Instant) {
        let mut rx = std::mem::replace(&mut self.rx, RxBuf::new(self.budget.clone()));
        while !self.paused_for_events() && self.closed.is_none() {
            let input = self.core.handle_input(now, rx.pending());
            let consumed = input.consumed;
            let mut data = input.data;
            let had_data = data.is_some();
            // Events first (a new transfer's sink opens before its data), then the data
            // goes to its sink, which confirms (or refuses) a completed segment: only
            // then does the core queue its XFER_ACK.
            self.drain_events(&mut data);
            if let Some(d) = data {
                self.incoming
                    .deliver(&mut self.core, &mut self.report, self.id, d);
            }
            rx.consume(consumed);
            if consumed == 0 && !had_data {
                break;
            }
        }
        if self.tls_start.is_some() {
            // Everything after the peer's contact header belongs to TLS.
            self.tls_leftover = rx.take_pending();
        }
        self.rx = rx;
    }

    // ----- output --------------------------------------------------------------------

    fn transmit(&mut self, now: Instant) {
        let mut budget = TURN_BYTES;
        loop {
            if !self.out.is_empty() || self.io.tls_pending() {
                match self.io.flush(&mut self.out) {
                    Ok(true) => {
                        if let Some(b) = self.io.spent.take() {
                            self.outgoing.recycle(b);
                        }
                    }
                    Ok(false) => return,
                    Err(f) => return self.fail(f.into_reason(IoOp::Write)),
                }
            }
            // Before TLS starts the core still has our contact header to send (in
            // plaintext); during the handshake it has nothing.
            if self.io.is_handshaking() || budget == 0 {
                return;
            }
            let transfers = self.core.outgoing_count();
            budget = budget.saturating_sub(self.stage(now));
            if let Some(e) = self.outgoing.failed.take() {
                self.source_failed(e);
            }
            self.drain_events(&mut None);
            if self.out.is_empty() {
                // A transfer whose source failed was dropped: the next one may go now,
                // and nothing else would wake the session for it.
                if self.core.outgoing_count() < transfers && self.closed.is_none() {
                    continue;
                }
                return;
            }
        }
    }

    /// Stages control messages and at most one segment; returns the payload bytes
    /// staged.
    fn stage(&mut self, now: Instant) -> usize {
        let mut min = 512;
        while !self.out.has_segment() && self.out.staged_len() < STAGE_MAX {
            let room = self.out.room(min);
            let asked = room.len();
            let outgoing = &mut self.outgoing;
            let r = self
                .core
                .poll_transmit(now, room, |tid| outgoing.ready(tid));
            match r {
                Ok(Some(Transmit::Control(n))) => {
                    self.out.commit(n, asked);
                    min = 512;
                }
                Ok(Some(Transmit::Segment {
                    transfer_id,
                    offset,
                    header_len,
                    data_len,
                    ..
                })) => {
                    self.out.commit(header_len, asked);
                    match self.outgoing.payload(transfer_id, offset, data_len) {
                        Ok(p) => self.out.set_payload(p),
                        Err(e) => {
                            self.source_failed(e);
                            return 0;
                        }
                    }
                    if offset == 0 {
                        self.report.emit(Event::TransferStarted {
                            session: self.id,
                            direction: Direction::Outgoing,
                            transfer_id,
                            total_len: self.outgoing.total_len(transfer_id),
                        });
                    }
                    return data_len;
                }
                Ok(None) => {
                    self.out.commit(0, asked);
                    return 0;
                }
                Err(TransmitError::Encode(EncodeError::BufferTooSmall { needed })) => {
                    self.out.commit(0, asked);
                    min = needed.max(min * 2);
                }
                Err(TransmitError::Encode(e)) => {
                    self.out.commit(0, asked);
                    self.fail(CloseReason::Io {
                        op: IoOp::Encode,
                        kind: std::io::ErrorKind::InvalidData,
                        message: e.to_string(),
                    });
                    return 0;
                }
                Err(TransmitError::Source { transfer_id, error }) => {
                    self.out.commit(0, asked);
                    self.source_failed(SourceError {
                        tid: transfer_id,
                        failure: error.into(),
                    });
                    return 0;
                }
            }
        }
        0
    }

    /// An outgoing bundle's source failed. A transfer that has not started is
    /// dropped; a started one cannot be abandoned in TCPCL (the peer waits for its
    /// END), so the session closes.
    fn source_failed(&mut self, e: SourceError) {
        log::warn!(
            "{}: the source of transfer {} failed: {}",
            self.id,
            e.tid,
            e.failure
        );
        if self.core.abandon_transfer(e.tid).is_ok() {
            return;
        }
        self.outgoing.remove(e.tid);
        self.report.emit(Event::TransferCancelled {
            session: self.id,
            direction: Direction::Outgoing,
            transfer_id: e.tid,
        });
        self.pending_out = self.pending_out.saturating_sub(1);
        self.fail(CloseReason::SourceFailed(e.failure));
    }

    /// Closes at once for a reason outside the protocol.
    fn fail(&mut self, reason: CloseReason) {
        self.close_override.get_or_insert(reason);
        self.close_core(Instant::now(), false);
        if self.closed.is_none() {
            self.closed = self.close_override.take();
        }
    }
}
