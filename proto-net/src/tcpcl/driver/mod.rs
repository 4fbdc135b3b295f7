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

mod incoming;
mod outgoing;
mod reader;
pub(crate) mod rxbuf;
mod transport;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use proto_core::tcpcl::{
    Event as CoreEvent, RxData, SessTermReason, Session, State, TlsRole, Transmit, TransmitError,
    UsageError,
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
}

/// A send request's reply channel and its answer.
type Answer = (AnswerTx, Result<u64, Error>);

/// Everything a session thread is built from.
pub(crate) struct Parts {
    pub(crate) core: Session,
    pub(crate) sock: std::net::TcpStream,
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: Receiver<Command>,
    pub(crate) report: Reporter,
    pub(crate) sinks: Arc<SinkPolicy>,
    pub(crate) tls: Option<TlsContext>,
    /// SNI and DNS-ID reference for the TLS client role.
    pub(crate) server_name: String,
    pub(crate) require_host_authn: bool,
    pub(crate) budget: Arc<ReadBudget>,
    pub(crate) owner: Arc<dyn Owner>,
}

/// One session's loop state (see the module documentation).
pub(crate) struct Driver {
    id: SessionId,
    core: Session,
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
            // Transfers that finished this turn make room for parked sends.
            self.answer_parked();
            self.check_drain(now);
            self.transmit(now);
            self.advance_tls(now);
            // Events before the published counts: a handle that sees its bundles
            // finished finds their events already on the channel.
            self.report.flush();
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

    // ----- commands ------------------------------------------------------------------

    fn take_commands(&mut self, now: Instant) {
        while let Ok(c) = self.commands.try_recv() {
            match c {
                Command::Send(req) => self.parked.push_back(req),
                Command::Terminate(reason) => {
                    let _ = self.core.terminate(now, reason);
                }
                Command::Shutdown(reason) => {
                    if self.core.is_established() {
                        self.drain = Some(reason);
                    } else {
                        let _ = self.core.terminate(now, reason);
                    }
                }
                Command::Close => {
                    self.immediate = true;
                    self.close_override.get_or_insert(CloseReason::LocalClose);
                    self.core.close();
                }
            }
        }
        self.start_replies();
        self.answer_parked();
    }

    /// Registers the bundles a handler sent, so they go out in this turn's output
    /// (with the acknowledgement of what the handler answered, in one write).
    fn start_replies(&mut self) {
        for source in std::mem::take(&mut self.report.replies) {
            if let Err(e) = self.start_send(source) {
                log::debug!("{}: a handler's reply was not sent: {e}", self.id);
            }
        }
    }

    /// Registers parked send requests while the core has room (backpressure on
    /// `send_*`), answering each.
    fn answer_parked(&mut self) {
        while let Some(req) = self.parked.front() {
            let waiting = match self.core.state() {
                State::Contact | State::TlsHandshake | State::SessionInit => true,
                State::Established if self.drain.is_none() => {
                    self.core.outgoing_count() >= self.core.config().max_outgoing_transfers
                }
                _ => false,
            };
            if waiting && self.closed.is_none() {
                return;
            }
            let _ = req;
            let Some(req) = self.parked.pop_front() else {
                return;
            };
            let r = self.start_send(req.source);
            self.answers.push((req.reply, r));
        }
    }

    /// Answers the send requests registered this turn. Done after `transmit`, so the
    /// woken caller does not compete for a CPU with the write of its own bundle.
    fn answer_sends(&mut self) {
        for (reply, r) in self.answers.drain(..) {
            reply.send(r);
        }
    }

    fn start_send(&mut self, source: Source) -> Result<u64, Error> {
        if self.drain.is_some() {
            return Err(Error::Terminating);
        }
        match self.core.state() {
            State::Established => {}
            State::Ending => return Err(Error::Terminating),
            _ => return Err(Error::SessionClosed),
        }
        let tid = match self.core.start_transfer(source.len()) {
            Ok(t) => t,
            Err(UsageError::TransferTooLarge { len, mru }) => {
                return Err(Error::TooLarge { len, mru })
            }
            Err(UsageError::SessionTerminating) => return Err(Error::Terminating),
            Err(e) => return Err(e.into()),
        };
        self.pending_out += 1;
        self.outgoing.push(tid, source);
        Ok(tid)
    }

    /// Graceful shutdown: SESS_TERM once every submitted bundle is done.
    fn check_drain(&mut self, now: Instant) {
        if let Some(reason) = self.drain {
            if self.core.is_established()
                && self.parked.is_empty()
                && self.outgoing.is_empty()
                && self.core.outgoing_count() == 0
            {
                self.drain = None;
                let _ = self.core.terminate(now, reason);
            }
        }
    }

    // ----- input ---------------------------------------------------------------------

    fn input(&mut self, now: Instant) {
        if !self.rx.is_empty() {
            self.feed(now);
        }
        if self.report.is_backlogged() {
            if self.report.flush() {
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

    // ----- TLS -----------------------------------------------------------------------

    fn advance_tls(&mut self, now: Instant) {
        if let Some(role) = self.tls_start {
            if !self.out.is_empty() {
                // Our contact header must be on the wire before TLS bytes.
                return;
            }
            self.tls_start = None;
            let Some(ctx) = self.tls.clone() else {
                return self.fail(CloseReason::TlsFailed(TlsFailure::NotConfigured));
            };
            let leftover = std::mem::take(&mut self.tls_leftover);
            if let Err(f) = self.io.start_tls(&ctx, role, &self.server_name, &leftover) {
                return self.tls_failed(f);
            }
        }
        if self.io.is_handshaking() {
            match self.io.drive_handshake() {
                Ok(true) => self.tls_up(now),
                Ok(false) => {}
                Err(f) => self.tls_failed(f),
            }
        }
    }

    fn tls_failed(&mut self, f: Failure) {
        let failure = f.into_tls();
        log::info!("{}: TLS handshake failed: {failure}", self.id);
        self.fail(CloseReason::TlsFailed(failure));
    }

    fn tls_up(&mut self, now: Instant) {
        // The last handshake flight may have carried application data (the peer's
        // SESS_INIT), now held by rustls where `ppoll` cannot see it.
        self.readable = true;
        let Some(conn) = self.io.tls() else {
            return;
        };
        let client = self.shared.side == proto_core::tcpcl::Side::Active;
        let name = client.then_some(self.server_name.as_str());
        let peer_ip = Some(self.shared.peer_addr.ip());
        let info = describe(conn, |id| authenticate_host(id, name, peer_ip));
        log::debug!(
            "{}: TLS up ({} {}), host authn {}",
            self.id,
            info.version,
            info.cipher_suite,
            info.host_authn
        );
        let ids: Vec<&str> = info
            .peer_identity
            .node_ids
            .iter()
            .map(String::as_str)
            .collect();
        if self.core.tls_established(now, &ids).is_err() {
            return;
        }
        let host_ok = info.host_authn.acceptable(self.require_host_authn);
        self.shared.update(|s| s.tls = Some(info.clone()));
        self.report.emit(Event::TlsEstablished {
            session: self.id,
            info,
        });
        if !host_ok {
            // RFC 9174 §4.4.4: host authentication failed → SESS_TERM Contact Failure.
            self.close_override = Some(CloseReason::HostNotAuthenticated);
            let _ = self.core.terminate(now, SessTermReason::CONTACT_FAILURE);
        }
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
        self.core.close();
        self.drain_events(&mut None);
        if self.closed.is_none() {
            self.closed = self.close_override.take();
        }
    }

    // ----- core events ---------------------------------------------------------------

    fn drain_events(&mut self, data: &mut Option<RxData<'_>>) {
        while let Some(ev) = self.core.poll_event() {
            let session = self.id;
            match ev {
                CoreEvent::StartTls { role } => self.tls_start = Some(role),
                CoreEvent::SessionEstablished => self.on_established(),
                CoreEvent::IncomingTransferStarted {
                    transfer_id,
                    total_len,
                } => {
                    let info = IncomingTransfer {
                        session,
                        transfer_id,
                        total_len,
                        peer_node_id: self.core.peer_node_id().unwrap_or_default().to_owned(),
                    };
                    self.incoming
                        .start(&mut self.core, &self.sinks, &mut self.report, info);
                }
                CoreEvent::IncomingTransferFinished { transfer_id, len } => {
                    log::trace!("{session}: incoming transfer {transfer_id} done ({len})");
                }
                CoreEvent::IncomingTransferRefused {
                    transfer_id,
                    reason,
                } => {
                    if data.is_some_and(|d| d.transfer_id == transfer_id) {
                        *data = None;
                    }
                    self.incoming.refused(transfer_id);
                    self.report.emit(Event::TransferRefused {
                        session,
                        direction: Direction::Incoming,
                        transfer_id,
                        reason,
                    });
                }
                CoreEvent::OutgoingAcked {
                    transfer_id,
                    acked_len,
                    finished,
                } => {
                    if !finished {
                        self.report.progress(Event::TransferProgress {
                            session,
                            direction: Direction::Outgoing,
                            transfer_id,
                            bytes: acked_len,
                        });
                    }
                    if finished {
                        self.outgoing_done(transfer_id);
                        self.report.emit(Event::TransferFinished {
                            session,
                            direction: Direction::Outgoing,
                            transfer_id,
                            len: acked_len,
                        });
                    }
                }
                CoreEvent::OutgoingRefused {
                    transfer_id,
                    reason,
                } => {
                    self.outgoing_done(transfer_id);
                    self.report.emit(Event::TransferRefused {
                        session,
                        direction: Direction::Outgoing,
                        transfer_id,
                        reason,
                    });
                }
                CoreEvent::OutgoingCancelled { transfer_id } => {
                    self.outgoing_done(transfer_id);
                    self.report.emit(Event::TransferCancelled {
                        session,
                        direction: Direction::Outgoing,
                        transfer_id,
                    });
                }
                CoreEvent::MessageRejected {
                    message_type,
                    reason,
                } => log::warn!(
                    "{session}: the peer rejected message type {message_type:#04x}: {reason:#}"
                ),
                CoreEvent::KeepaliveReceived => log::trace!("{session}: keepalive"),
                CoreEvent::Terminating { reason, by_peer } => {
                    log::debug!(
                        "{session}: terminating (SESS_TERM {reason:#}, by peer: {by_peer})"
                    );
                    self.report.emit(Event::SessionTerminating {
                        session,
                        reason,
                        by_peer,
                    });
                }
                CoreEvent::Closed { reason } => {
                    let r = self
                        .close_override
                        .take()
                        .unwrap_or(CloseReason::Session(reason));
                    log::debug!("{session}: closed: {r}");
                    self.closed = Some(r);
                }
            }
        }
        self.check_state();
    }

    fn outgoing_done(&mut self, tid: u64) {
        self.outgoing.remove(tid);
        self.pending_out = self.pending_out.saturating_sub(1);
    }

    fn check_state(&mut self) {
        let s = self.core.state();
        if s != self.last_state {
            self.last_state = s;
            self.report.emit(Event::SessionStateChanged {
                session: self.id,
                state: s,
            });
        }
    }

    fn publish(&mut self) {
        self.shared
            .publish(self.last_state, self.pending_out, self.incoming.len());
    }

    fn on_established(&mut self) {
        let Some(n) = self.core.negotiated() else {
            return;
        };
        let peer_node_id = self.core.peer_node_id().unwrap_or_default().to_owned();
        let cfg = self.core.config();
        let params = SessionParams {
            side: self.core.side(),
            peer_node_id: peer_node_id.clone(),
            keepalive: n.keepalive,
            peer_segment_mru: n.peer_segment_mru,
            peer_transfer_mru: n.peer_transfer_mru,
            local_segment_mru: cfg.segment_mru,
            local_transfer_mru: cfg.transfer_mru,
            tls: n.tls,
            peer_addr: self.shared.peer_addr,
            local_addr: self.shared.local_addr,
        };
        let mut node_failed = false;
        self.shared.update(|s| {
            s.params = Some(params.clone());
            if let Some(t) = &mut s.tls {
                let r = authenticate_node(&t.peer_identity, &peer_node_id);
                node_failed = !r.acceptable(false);
                t.node_authn = Some(r);
            }
        });
        self.report.emit(Event::SessionEstablished {
            session: self.id,
            params,
        });
        if node_failed {
            // RFC 9174 §4.4.4: a NODE-ID that does not match → Contact Failure.
            log::info!(
                "{}: the certificate does not authenticate node ID {peer_node_id:?}",
                self.id
            );
            let _ = self
                .core
                .terminate(Instant::now(), SessTermReason::CONTACT_FAILURE);
        }
    }

    // ----- the end -------------------------------------------------------------------

    /// The orderly end of the connection: the last control messages (SESS_TERM and
    /// its reply) and close_notify are written, then our FIN, then what the peer still
    /// sends is read and discarded until its FIN (bounded), so the kernel never
    /// answers late bytes with a RST. An immediate close skips all of it.
    fn close_down(&mut self, sleeper: &Sleeper) {
        if !self.immediate {
            self.io.close_notify();
            let deadline = Instant::now() + FLUSH_LIMIT;
            loop {
                match self.io.flush(&mut self.out) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(_) => break,
                }
                if !self.closing_wait(sleeper, false, true, deadline) {
                    break;
                }
            }
            self.io.shutdown_write();
            let deadline = Instant::now() + CLOSE_LINGER;
            while !self.eof {
                match self.io.discard_input() {
                    Ok(false) => {}
                    Ok(true) | Err(_) => break,
                }
                if !self.closing_wait(sleeper, true, false, deadline) {
                    break;
                }
            }
        }
        self.io.shutdown_both();
    }

    /// One wait while closing; false when the deadline passed or a close command came.
    fn closing_wait(&mut self, s: &Sleeper, read: bool, write: bool, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = s.wait(&self.io.sock, read, write, Some(left));
        while let Ok(c) = self.commands.try_recv() {
            match c {
                Command::Close => self.immediate = true,
                Command::Send(req) => {
                    req.reply.send(Err(Error::SessionClosed));
                }
                Command::Terminate(_) | Command::Shutdown(_) => {}
            }
        }
        !self.immediate
    }

    fn finish(mut self: Box<Self>) {
        self.answer_sends();
        let reason = self.closed.take().unwrap_or(CloseReason::LocalClose);
        let id = self.id;
        self.incoming.abandon_all(&mut self.report, id);
        for tid in self.outgoing.ids() {
            self.report.emit(Event::TransferCancelled {
                session: id,
                direction: Direction::Outgoing,
                transfer_id: tid,
            });
        }
        for req in self.parked.drain(..) {
            req.reply.send(Err(Error::SessionClosed));
        }
        while let Ok(c) = self.commands.try_recv() {
            if let Command::Send(req) = c {
                req.reply.send(Err(Error::SessionClosed));
            }
        }
        self.check_state();
        self.report.emit(Event::SessionClosed {
            session: id,
            reason: reason.clone(),
        });
        self.report.flush_final(Duration::from_secs(1));
        let none_left = self.owner.unregister(id);
        self.shared.finish(self.core.state(), reason);
        if none_left {
            self.owner.last_closed();
        }
    }
}
