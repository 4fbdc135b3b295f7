//! The session thread: owns the sans-IO [`Session`] and drives it from its reader,
//! writer and feeder threads, the handles' commands and its timer.
//!
//! Every wait is one crossbeam `select!` over the reader's chunks, the writer's
//! completions, commands, send requests, the current outgoing bundle's feeder and
//! `at(poll_timeout)`. Control messages go to the writer ahead of segment data, and the
//! writer has at most two jobs queued, so an XFER_ACK waits for at most two segments;
//! when the writer is idle, small messages are written directly (`write_direct`).

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{at, bounded, never, select, Receiver, RecvError, Sender, TryRecvError};
use proto_core::tcpcl::{
    Event as CoreEvent, RxData, SegmentError, SessTermReason, Session, State, TlsRole, UsageError,
    XferRefuseReason,
};
use proto_core::EncodeError;

use super::agent::Inner;
use super::error::Error;
use super::events::{CloseReason, Direction, Event, SessionId, SessionParams};
use super::io::{
    feeder_main, Directive, FeedMsg, FeedRequest, JobKind, ReadBuf, ReaderMsg, WriterDone,
    WriterJob, HEADROOM,
};
use super::session::{Command, SendRequest, Shared, Source};
use super::sink::{ActiveSink, IncomingTransfer};
use super::tls::authenticate_node;
use super::tls_glue::{self, SharedTls, TlsStart, TlsUp};

/// Control bytes buffered for the writer before input processing pauses (about 14 000
/// XFER_ACKs): far more than a conforming peer can have unacknowledged with our ack
/// ring, so input stalls only on a misbehaving peer.
const OUTBOX_LIMIT: usize = 256 << 10;
/// Most the session waits, once closed, for its last control messages to be written.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);
/// Most the session reads (and discards) after its FIN, waiting for the peer's: a
/// socket closed with unread input, or receiving more, makes the kernel send a RST.
const CLOSE_LINGER: Duration = Duration::from_millis(500);
/// Writer jobs queued at once: the next segment is framed while the writer writes the
/// current one, so the writer never waits for the session thread. A control message
/// waits behind at most this many segments.
const MAX_IN_FLIGHT: usize = 2;
/// Largest message the session thread writes itself when the writer is idle (control
/// messages, small segments); bigger ones go to the writer.
const DIRECT_MAX: usize = 16 << 10;
/// Flags of a direct write: never block, and no SIGPIPE where that can be asked for.
#[cfg(target_os = "linux")]
const DIRECT_FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(all(unix, not(target_os = "linux")))]
const DIRECT_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

/// Starts a session's writer thread.
pub(crate) type WriterStart = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

/// The channels a session thread is built from.
pub(crate) struct Parts {
    pub(crate) core: Session,
    pub(crate) shared: Arc<Shared>,
    pub(crate) agent: Arc<Inner>,
    pub(crate) sock: TcpStream,
    pub(crate) server_name: String,
    pub(crate) rx: Receiver<ReaderMsg>,
    pub(crate) directive_tx: Sender<Directive>,
    pub(crate) pool_tx: Sender<ReadBuf>,
    pub(crate) job_tx: Sender<WriterJob>,
    /// Spawns the writer thread: done on its first job, so a session whose writes
    /// all go out directly (small messages, plaintext close) never starts one.
    pub(crate) writer_start: Option<WriterStart>,
    pub(crate) done_rx: Receiver<WriterDone>,
    pub(crate) cmd_rx: Receiver<Command>,
    pub(crate) send_rx: Receiver<SendRequest>,
}

struct InChunk {
    buf: ReadBuf,
    pos: usize,
    len: usize,
}

struct Chunk {
    buf: Vec<u8>,
    start: usize,
    len: usize,
    last: bool,
}

enum Src {
    /// An in-memory bundle, shared with the writer (segments are gather-written
    /// straight from it).
    Bytes { data: Arc<Vec<u8>>, pos: usize },
    Feeder {
        req_tx: Sender<FeedRequest>,
        rx: Receiver<FeedMsg>,
    },
}

/// The outgoing transfer being framed (RFC 9174 forbids interleaving, so one at a time).
struct Current {
    tid: u64,
    total: Option<u64>,
    src: Src,
    ready: Option<Chunk>,
    started: bool,
}

struct Queued {
    tid: u64,
    source: Source,
}

struct Incoming {
    sink: ActiveSink,
    received: u64,
}

enum Wake {
    Reader(Result<ReaderMsg, RecvError>),
    Writer(Result<WriterDone, RecvError>),
    Cmd(Result<Command, RecvError>),
    Send(Result<SendRequest, RecvError>),
    Feed(Result<FeedMsg, RecvError>),
    Timer,
}

pub(crate) struct Runner {
    core: Session,
    shared: Arc<Shared>,
    agent: Arc<Inner>,
    id: SessionId,
    sock: TcpStream,
    server_name: String,
    rx: Receiver<ReaderMsg>,
    reader_open: bool,
    directive_tx: Option<Sender<Directive>>,
    awaiting_directive: bool,
    pool_tx: Sender<ReadBuf>,
    pending_in: Option<InChunk>,
    tls_role: Option<TlsRole>,
    tls_leftover: Option<Vec<u8>>,
    job_tx: Sender<WriterJob>,
    writer_start: Option<WriterStart>,
    done_rx: Receiver<WriterDone>,
    /// Writer jobs handed over and not yet reported done.
    in_flight: usize,
    /// Writes done by the session thread itself (see `write_direct`).
    direct_writes: u64,
    direct_buf: Vec<u8>,
    /// The TLS connection once up (shared with the reader and writer).
    tls: Option<SharedTls>,
    writer_alive: bool,
    outbox: Vec<u8>,
    spare: Vec<u8>,
    cmd_rx: Receiver<Command>,
    cmd_open: bool,
    send_rx: Receiver<SendRequest>,
    send_open: bool,
    queued: VecDeque<Queued>,
    current: Option<Current>,
    data_pool: Vec<Vec<u8>>,
    ack_wait: bool,
    drain: Option<SessTermReason>,
    outgoing_pending: usize,
    incoming: HashMap<u64, Incoming>,
    last_state: State,
    published: (State, usize, usize),
    close_override: Option<CloseReason>,
    closed: Option<CloseReason>,
    immediate: bool,
}

impl Runner {
    pub(crate) fn new(p: Parts) -> Runner {
        let state = p.core.state();
        Runner {
            id: p.shared.id,
            core: p.core,
            shared: p.shared,
            agent: p.agent,
            sock: p.sock,
            server_name: p.server_name,
            rx: p.rx,
            reader_open: true,
            directive_tx: Some(p.directive_tx),
            awaiting_directive: false,
            pool_tx: p.pool_tx,
            pending_in: None,
            tls_role: None,
            tls_leftover: None,
            job_tx: p.job_tx,
            writer_start: p.writer_start,
            done_rx: p.done_rx,
            in_flight: 0,
            direct_writes: 0,
            direct_buf: Vec::new(),
            tls: None,
            writer_alive: true,
            outbox: Vec::with_capacity(4096),
            spare: Vec::with_capacity(4096),
            cmd_rx: p.cmd_rx,
            cmd_open: true,
            send_rx: p.send_rx,
            send_open: true,
            queued: VecDeque::new(),
            current: None,
            data_pool: Vec::new(),
            ack_wait: false,
            drain: None,
            outgoing_pending: 0,
            incoming: HashMap::new(),
            last_state: state,
            published: (state, 0, 0),
            close_override: None,
            closed: None,
            immediate: false,
        }
    }

    pub(crate) fn run(mut self) {
        self.pump();
        while self.closed.is_none() {
            let wake = self.wait();
            self.handle(wake);
            self.pump();
        }
        self.finish();
    }

    // ----- waiting -------------------------------------------------------------------

    fn wait(&self) -> Wake {
        let never_r = never();
        let never_w = never();
        let never_c = never();
        let never_s = never();
        let never_f = never();
        let rx = if self.reader_open && self.pending_in.is_none() && !self.awaiting_directive {
            &self.rx
        } else {
            &never_r
        };
        let done = if self.writer_alive {
            &self.done_rx
        } else {
            &never_w
        };
        let cmd = if self.cmd_open {
            &self.cmd_rx
        } else {
            &never_c
        };
        let send = if self.send_open && self.accepting_sends() {
            &self.send_rx
        } else {
            &never_s
        };
        let feed = match &self.current {
            Some(Current {
                src: Src::Feeder { rx, .. },
                ready: None,
                ..
            }) => rx,
            _ => &never_f,
        };
        let timer = self.core.poll_timeout().map_or_else(never, at);
        select! {
            recv(rx) -> m => Wake::Reader(m),
            recv(done) -> m => Wake::Writer(m),
            recv(cmd) -> m => Wake::Cmd(m),
            recv(send) -> m => Wake::Send(m),
            recv(feed) -> m => Wake::Feed(m),
            recv(timer) -> _ => Wake::Timer,
        }
    }

    fn accepting_sends(&self) -> bool {
        match self.core.state() {
            State::Established if self.drain.is_none() => {
                self.core.outgoing_count() < self.core.config().max_outgoing_transfers
            }
            // Answer at once: no new transfers.
            State::Ending | State::Closing | State::Closed => true,
            State::Established => true,
            _ => false,
        }
    }

    fn handle(&mut self, wake: Wake) {
        let now = Instant::now();
        match wake {
            Wake::Reader(Ok(m)) => self.on_reader(m),
            Wake::Reader(Err(_)) => {
                self.reader_open = false;
                self.core.handle_eof(now);
            }
            Wake::Writer(Ok(WriterDone::Written(buf, kind))) => self.written(buf, kind),
            Wake::Writer(Ok(WriterDone::Failed(e))) => {
                self.writer_alive = false;
                self.in_flight = 0;
                self.close_override
                    .get_or_insert(CloseReason::Io(format!("write: {e}")));
                self.core.close();
            }
            Wake::Writer(Err(_)) => {
                self.writer_alive = false;
                self.in_flight = 0;
                self.close_override
                    .get_or_insert(CloseReason::Io("writer exited".into()));
                self.core.close();
            }
            Wake::Cmd(Ok(c)) => self.on_command(c),
            Wake::Cmd(Err(_)) => self.cmd_open = false,
            Wake::Send(Ok(r)) => self.on_send(r),
            Wake::Send(Err(_)) => self.send_open = false,
            Wake::Feed(Ok(m)) => self.on_feed(m),
            Wake::Feed(Err(_)) => self.source_failed("bundle source reader exited".into()),
            Wake::Timer => self.core.handle_timeout(now),
        }
    }

    fn written(&mut self, buf: Vec<u8>, kind: JobKind) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match kind {
            JobKind::Control | JobKind::Raw => {
                if buf.capacity() > self.spare.capacity() {
                    self.spare = buf;
                    self.spare.clear();
                }
            }
            JobKind::Data => self.recycle_data(buf),
            JobKind::Shared => {}
        }
    }

    // ----- reader --------------------------------------------------------------------

    fn on_reader(&mut self, m: ReaderMsg) {
        let now = Instant::now();
        match m {
            ReaderMsg::Data(buf, len) => {
                if self.directive_tx.is_some() {
                    self.awaiting_directive = true;
                }
                self.pending_in = Some(InChunk { buf, pos: 0, len });
                self.process_input();
            }
            ReaderMsg::Eof => {
                self.reader_open = false;
                self.core.handle_eof(now);
            }
            ReaderMsg::Error(e) => {
                self.reader_open = false;
                if !matches!(self.core.state(), State::Closing | State::Closed) {
                    self.close_override
                        .get_or_insert(CloseReason::Io(format!("read: {e}")));
                }
                self.core.handle_eof(now);
            }
            ReaderMsg::TlsUp(up) => self.on_tls_up(up),
            ReaderMsg::TlsFailed(e) => {
                self.reader_open = false;
                log::info!("{}: TLS handshake failed: {e}", self.id);
                self.close_override.get_or_insert(CloseReason::TlsFailed(e));
                self.core.close();
            }
            ReaderMsg::TlsWantsWrite => {
                if self.writer_alive && self.job(WriterJob::Flush) {
                    self.in_flight += 1;
                }
            }
        }
    }

    fn process_input(&mut self) {
        let Some(mut chunk) = self.pending_in.take() else {
            return;
        };
        let now = Instant::now();
        while chunk.pos < chunk.len {
            let input = self
                .core
                .handle_input(now, &chunk.buf[chunk.pos..chunk.len]);
            let consumed = input.consumed;
            let mut data = input.data;
            let had_data = data.is_some();
            // Events first (a new transfer's sink opens before its data arrives), then
            // the data goes to the sink, which confirms (or refuses) a completed
            // segment: only then does the core queue its XFER_ACK.
            self.drain_events(&mut data);
            if let Some(d) = data {
                self.deliver(d);
            }
            self.drain_transmit();
            chunk.pos += consumed;
            if consumed == 0 && !had_data {
                break;
            }
        }
        match self.core.state() {
            _ if chunk.pos >= chunk.len => self.recycle_in(chunk.buf),
            State::TlsHandshake => {
                self.tls_leftover = Some(chunk.buf[chunk.pos..chunk.len].to_vec());
                self.recycle_in(chunk.buf);
            }
            State::Closing | State::Closed => self.recycle_in(chunk.buf),
            _ => self.pending_in = Some(chunk),
        }
        self.direct_reader();
    }

    fn recycle_in(&mut self, buf: ReadBuf) {
        let _ = self.pool_tx.try_send(buf);
    }

    /// While the contact headers are exchanged the reader waits after every chunk for
    /// a directive, so nothing past the contact header is read as plaintext.
    fn direct_reader(&mut self) {
        if !self.awaiting_directive {
            return;
        }
        let Some(tx) = &self.directive_tx else {
            return;
        };
        let d = match self.core.state() {
            State::Contact => Directive::Continue,
            State::TlsHandshake => {
                // The passive side's contact header must be on the wire first, and the
                // writer idle while the reader runs the handshake on the socket.
                if self.in_flight > 0 || !self.outbox.is_empty() {
                    return;
                }
                let Some(ctx) = self.agent.tls.clone() else {
                    self.close_override
                        .get_or_insert(CloseReason::TlsFailed("TLS not configured".into()));
                    self.core.close();
                    return;
                };
                let role = self.tls_role.unwrap_or(TlsRole::Client);
                Directive::Tls(
                    self.tls_leftover.take().unwrap_or_default(),
                    Box::new(TlsStart {
                        ctx,
                        role,
                        server_name: self.server_name.clone(),
                    }),
                )
            }
            State::Closing | State::Closed => Directive::Stop,
            _ => Directive::Plain,
        };
        let done = !matches!(d, Directive::Continue);
        let _ = tx.send(d);
        self.awaiting_directive = false;
        if done {
            self.directive_tx = None;
        }
    }

    fn on_tls_up(&mut self, up: TlsUp) {
        let now = Instant::now();
        if self.writer_alive {
            let _ = self.job(WriterJob::SetTls(up.conn.clone()));
        }
        self.tls = Some(up.conn);
        let info = up.info;
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
        let host_ok = info
            .host_authn
            .acceptable(self.agent.config.require_host_authn);
        self.shared.update(|i| i.tls = Some(info.clone()));
        self.agent.emit(Event::TlsEstablished {
            session: self.id,
            info,
        });
        if !host_ok {
            // RFC 9174 §4.4.4: host authentication failed → SESS_TERM Contact Failure.
            self.close_override = Some(CloseReason::HostNotAuthenticated);
            let _ = self.core.terminate(now, SessTermReason::CONTACT_FAILURE);
        }
    }

    // ----- core outputs --------------------------------------------------------------

    fn drain_transmit(&mut self) {
        let now = Instant::now();
        let mut room = 512;
        while self.outbox.len() < OUTBOX_LIMIT {
            let at = self.outbox.len();
            self.outbox.resize(at + room, 0);
            match self.core.poll_transmit(now, &mut self.outbox[at..]) {
                Ok(Some(n)) => self.outbox.truncate(at + n),
                Ok(None) => {
                    self.outbox.truncate(at);
                    break;
                }
                Err(EncodeError::BufferTooSmall { needed }) => {
                    self.outbox.truncate(at);
                    room = needed.max(room * 2);
                }
                Err(e) => {
                    self.outbox.truncate(at);
                    log::error!("{}: cannot encode a control message: {e}", self.id);
                    self.close_override
                        .get_or_insert(CloseReason::Io(format!("encode: {e}")));
                    self.core.close();
                    break;
                }
            }
        }
    }

    fn drain_events(&mut self, data: &mut Option<RxData<'_>>) {
        while let Some(ev) = self.core.poll_event() {
            match ev {
                CoreEvent::StartTls { role } => self.tls_role = Some(role),
                CoreEvent::SessionEstablished => self.on_established(),
                CoreEvent::IncomingTransferStarted {
                    transfer_id,
                    total_len,
                } => self.open_sink(transfer_id, total_len),
                CoreEvent::IncomingTransferFinished { transfer_id, len } => {
                    // Reported by `deliver`, which confirmed the END segment.
                    log::trace!("{}: incoming transfer {transfer_id} done ({len})", self.id);
                }
                CoreEvent::IncomingTransferRefused {
                    transfer_id,
                    reason,
                } => {
                    if data.is_some_and(|d| d.transfer_id == transfer_id) {
                        *data = None;
                    }
                    if let Some(inc) = self.incoming.remove(&transfer_id) {
                        inc.sink.abort();
                    }
                    self.agent.emit(Event::TransferRefused {
                        session: self.id,
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
                    self.ack_wait = false;
                    self.agent.emit_progress(Event::TransferProgress {
                        session: self.id,
                        direction: Direction::Outgoing,
                        transfer_id,
                        bytes: acked_len,
                    });
                    if finished {
                        self.outgoing_done();
                        self.agent.emit(Event::TransferFinished {
                            session: self.id,
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
                    self.ack_wait = false;
                    self.drop_outgoing(transfer_id);
                    self.outgoing_done();
                    self.agent.emit(Event::TransferRefused {
                        session: self.id,
                        direction: Direction::Outgoing,
                        transfer_id,
                        reason,
                    });
                }
                CoreEvent::OutgoingCancelled { transfer_id } => {
                    self.drop_outgoing(transfer_id);
                    self.outgoing_done();
                    self.agent.emit(Event::TransferCancelled {
                        session: self.id,
                        direction: Direction::Outgoing,
                        transfer_id,
                    });
                }
                CoreEvent::MessageRejected {
                    message_type,
                    reason,
                } => log::warn!(
                    "{}: peer rejected message type {message_type:#04x}: {reason:#}",
                    self.id
                ),
                CoreEvent::KeepaliveReceived => log::trace!("{}: keepalive", self.id),
                CoreEvent::Terminating { reason, by_peer } => {
                    log::debug!(
                        "{}: terminating (SESS_TERM {reason:#}, by peer: {by_peer})",
                        self.id
                    );
                    self.agent.emit(Event::SessionTerminating {
                        session: self.id,
                        reason,
                        by_peer,
                    });
                }
                CoreEvent::Closed { reason } => {
                    let r = self
                        .close_override
                        .take()
                        .unwrap_or(CloseReason::Session(reason));
                    log::debug!("{}: closed: {r}", self.id);
                    self.closed = Some(r);
                }
            }
        }
        self.check_state();
    }

    fn check_state(&mut self) {
        let s = self.core.state();
        if s != self.last_state {
            self.last_state = s;
            self.agent.emit(Event::SessionStateChanged {
                session: self.id,
                state: s,
            });
        }
    }

    fn publish(&mut self) {
        let now = (self.last_state, self.outgoing_pending, self.incoming.len());
        if now != self.published {
            self.published = now;
            self.shared.update(|i| {
                i.state = now.0;
                i.outgoing_pending = now.1;
                i.incoming_active = now.2;
            });
        }
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
        self.shared.update(|i| {
            i.params = Some(params.clone());
            if let Some(t) = &mut i.tls {
                let r = authenticate_node(&t.peer_identity, &peer_node_id);
                node_failed = !r.acceptable(false);
                t.node_authn = Some(r);
            }
        });
        self.agent.emit(Event::SessionEstablished {
            session: self.id,
            params,
        });
        if node_failed {
            // RFC 9174 §4.4.4: a NODE-ID that does not match → Contact Failure.
            log::info!(
                "{}: certificate does not authenticate node ID {peer_node_id:?}",
                self.id
            );
            let _ = self
                .core
                .terminate(Instant::now(), SessTermReason::CONTACT_FAILURE);
        }
    }

    // ----- incoming bundles ----------------------------------------------------------

    fn open_sink(&mut self, tid: u64, total_len: Option<u64>) {
        let info = IncomingTransfer {
            session: self.id,
            transfer_id: tid,
            total_len,
            peer_node_id: self.core.peer_node_id().unwrap_or_default().to_owned(),
        };
        let sink = self.agent.choose_sink(&info);
        match ActiveSink::open(sink, total_len, self.agent.config.max_memory_bundle) {
            Ok(Ok(sink)) => {
                self.incoming.insert(tid, Incoming { sink, received: 0 });
                self.agent.emit(Event::TransferStarted {
                    session: self.id,
                    direction: Direction::Incoming,
                    transfer_id: tid,
                    total_len,
                });
            }
            Ok(Err(reason)) => {
                let _ = self.core.refuse_transfer(tid, reason);
            }
            Err(e) => {
                log::warn!("{}: cannot open sink for transfer {tid}: {e}", self.id);
                let _ = self
                    .core
                    .refuse_transfer(tid, XferRefuseReason::NO_RESOURCES);
            }
        }
    }

    /// Hands a piece of incoming data to its transfer's sink. A completed segment is
    /// confirmed to the core (which then queues its XFER_ACK) only once the sink took
    /// the data, and for the END segment once the bundle is complete and flushed; if
    /// the sink fails, the transfer is refused instead (RFC 9174 §5.2.3).
    fn deliver(&mut self, d: RxData<'_>) {
        let tid = d.transfer_id;
        let Some(inc) = self.incoming.get_mut(&tid) else {
            // No sink (cannot happen: a transfer without one was refused at its
            // start). Never acknowledge what was not stored.
            if d.end_of_segment {
                let _ = self
                    .core
                    .refuse_transfer(tid, XferRefuseReason::NOT_ACCEPTABLE);
            }
            return;
        };
        if let Err(e) = inc.sink.write(d.bytes) {
            return self.sink_failed(tid, "write", &e);
        }
        inc.received = d.offset + d.bytes.len() as u64;
        let bytes = inc.received;
        self.agent.emit_progress(Event::TransferProgress {
            session: self.id,
            direction: Direction::Incoming,
            transfer_id: tid,
            bytes,
        });
        if !d.end_of_segment {
            return;
        }
        if !d.end_of_transfer {
            let _ = self.core.confirm_segment(tid);
            return;
        }
        let Some(inc) = self.incoming.remove(&tid) else {
            return;
        };
        let bundle = match inc.sink.finish() {
            Ok(b) => b,
            Err(e) => return self.sink_failed(tid, "finish", &e),
        };
        if self.core.confirm_segment(tid).is_err() {
            return;
        }
        self.agent.emit(Event::TransferFinished {
            session: self.id,
            direction: Direction::Incoming,
            transfer_id: tid,
            len: bytes,
        });
        self.agent.emit(Event::BundleReceived {
            session: self.id,
            transfer_id: tid,
            len: bytes,
            bundle,
        });
    }

    /// The sink of an incoming transfer failed: the transfer is refused (No
    /// Resources), never acknowledged.
    fn sink_failed(&mut self, tid: u64, what: &str, e: &std::io::Error) {
        log::warn!("{}: sink {what} failed for transfer {tid}: {e}", self.id);
        if let Some(inc) = self.incoming.remove(&tid) {
            inc.sink.abort();
        }
        if self
            .core
            .refuse_transfer(tid, XferRefuseReason::NO_RESOURCES)
            .is_err()
        {
            self.agent.emit(Event::TransferCancelled {
                session: self.id,
                direction: Direction::Incoming,
                transfer_id: tid,
            });
        }
    }

    // ----- outgoing bundles ----------------------------------------------------------

    fn on_send(&mut self, req: SendRequest) {
        let r = self.start_send(req.source);
        // Put the bundle on the wire (a small one is written directly when the writer
        // is idle) before waking the caller: on two CPUs the woken caller would
        // otherwise compete with this write. `pump` also publishes the pending count,
        // so a `wait_sent` right after `send_*` returns cannot miss this bundle.
        self.pump();
        let _ = req.reply.send(r);
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
        let len = source.len();
        let tid = match self.core.start_transfer(len) {
            Ok(t) => t,
            Err(UsageError::TransferTooLarge { len, mru }) => {
                return Err(Error::TooLarge { len, mru })
            }
            Err(UsageError::SessionTerminating) => return Err(Error::Terminating),
            Err(e) => return Err(e.into()),
        };
        self.outgoing_pending += 1;
        self.queued.push_back(Queued { tid, source });
        Ok(tid)
    }

    fn outgoing_done(&mut self) {
        self.outgoing_pending = self.outgoing_pending.saturating_sub(1);
    }

    fn drop_outgoing(&mut self, tid: u64) {
        if self.current.as_ref().is_some_and(|c| c.tid == tid) {
            if let Some(c) = self.current.take() {
                if let Some(ch) = c.ready {
                    self.recycle_data(ch.buf);
                }
            }
        }
        self.queued.retain(|q| q.tid != tid);
    }

    fn seg_size(&self) -> usize {
        let mru = self.core.peer_segment_mru().unwrap_or(1);
        let cap = self.agent.config.segment_size_tx_max.max(1);
        let n = self.core.tx_segment_size().min(mru).min(cap).max(1);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    fn take_buf(&mut self) -> Vec<u8> {
        self.data_pool.pop().unwrap_or_default()
    }

    fn recycle_data(&mut self, buf: Vec<u8>) {
        // Hand it to the current feeder if it is reading ahead, else keep it.
        let max = self.seg_size();
        if let Some(Current {
            src: Src::Feeder { req_tx, .. },
            ..
        }) = &self.current
        {
            if let Err(e) = req_tx.try_send(FeedRequest { buf, max }) {
                let buf = e.into_inner().buf;
                self.keep_buf(buf);
            }
            return;
        }
        self.keep_buf(buf);
    }

    fn keep_buf(&mut self, buf: Vec<u8>) {
        if self.data_pool.len() < 4 {
            self.data_pool.push(buf);
        }
    }

    fn activate_next(&mut self) -> bool {
        let Some(q) = self.queued.pop_front() else {
            return false;
        };
        let total = q.source.len();
        let src = match q.source {
            Source::Bytes(data) => Src::Bytes {
                data: Arc::new(data),
                pos: 0,
            },
            Source::Reader { reader, len } => {
                let (req_tx, req_rx) = bounded(2);
                let (out_tx, rx) = bounded(2);
                let spawned = std::thread::Builder::new()
                    .name(format!("tcpcl-{}-feed", self.id.0))
                    .spawn(move || feeder_main(reader, len, req_rx, out_tx));
                if let Err(e) = spawned {
                    log::warn!("{}: cannot start feeder: {e}", self.id);
                }
                let max = self.seg_size();
                for _ in 0..2 {
                    let buf = self.take_buf();
                    let _ = req_tx.try_send(FeedRequest { buf, max });
                }
                Src::Feeder { req_tx, rx }
            }
        };
        self.current = Some(Current {
            tid: q.tid,
            total,
            src,
            ready: None,
            started: false,
        });
        true
    }

    fn on_feed(&mut self, m: FeedMsg) {
        match m {
            FeedMsg::Chunk { buf, len, last } => {
                if let Some(c) = &mut self.current {
                    c.ready = Some(Chunk {
                        buf,
                        start: HEADROOM,
                        len,
                        last,
                    });
                }
            }
            FeedMsg::Failed(e) => self.source_failed(e.to_string()),
        }
    }

    /// An outgoing bundle's source failed. A started TCPCL transfer cannot be abandoned
    /// (the peer waits for its END), so the session is closed; an unstarted one is
    /// still registered with the core, which has no way to drop it either.
    fn source_failed(&mut self, e: String) {
        log::warn!("{}: bundle source failed: {e}", self.id);
        if let Some(c) = self.current.take() {
            self.agent.emit(Event::TransferCancelled {
                session: self.id,
                direction: Direction::Outgoing,
                transfer_id: c.tid,
            });
        }
        self.close_override
            .get_or_insert(CloseReason::SourceFailed(e));
        self.core.close();
    }

    /// Frames the next segment and hands it to the writer, if the writer is idle, no
    /// control message waits, and the core's ack ring has room.
    fn try_send_data(&mut self) {
        if self.in_flight >= MAX_IN_FLIGHT
            || !self.writer_alive
            || !self.outbox.is_empty()
            || self.ack_wait
        {
            return;
        }
        if !matches!(self.core.state(), State::Established | State::Ending) {
            return;
        }
        if self.current.is_none() && !self.activate_next() {
            return;
        }
        let limit_cap = self.seg_size();
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let tid = cur.tid;
        if let Src::Bytes { data, pos } = &cur.src {
            let (data, pos) = (data.clone(), *pos);
            return self.send_shared_segment(tid, data, pos, limit_cap);
        }
        if cur.ready.is_none() {
            match &mut cur.src {
                Src::Bytes { .. } => {}
                Src::Feeder { rx, .. } => match rx.try_recv() {
                    Ok(FeedMsg::Chunk { buf, len, last }) => {
                        cur.ready = Some(Chunk {
                            buf,
                            start: HEADROOM,
                            len,
                            last,
                        })
                    }
                    Ok(FeedMsg::Failed(e)) => return self.source_failed(e.to_string()),
                    Err(TryRecvError::Empty) => return,
                    Err(TryRecvError::Disconnected) => {
                        return self.source_failed("bundle source reader exited".into())
                    }
                },
            }
        }
        let Some(mut chunk) = cur.ready.take() else {
            return;
        };
        let limit = self.core.segment_limit(tid);
        let n = chunk.len.min(limit);
        let end = chunk.last && n == chunk.len;
        if n == 0 && !end {
            return self.source_failed("bundle source yielded more than its length".into());
        }
        let mut hdr = [0u8; HEADROOM];
        let h = match self
            .core
            .encode_segment_header(tid, n as u64, end, &mut hdr)
        {
            Ok(h) => h,
            Err(SegmentError::Usage(UsageError::AckBacklogFull)) => {
                if let Some(c) = self.current.as_mut() {
                    c.ready = Some(chunk);
                }
                self.ack_wait = true;
                return;
            }
            Err(e) => return self.source_failed(format!("framing failed: {e}")),
        };
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if n < chunk.len {
            // The segment size shrank below the chunk: keep the rest for the next one.
            let mut rest = self.data_pool.pop().unwrap_or_default();
            rest.clear();
            rest.resize(HEADROOM, 0);
            rest.extend_from_slice(&chunk.buf[chunk.start + n..chunk.start + chunk.len]);
            cur.ready = Some(Chunk {
                buf: rest,
                start: HEADROOM,
                len: chunk.len - n,
                last: chunk.last,
            });
        }
        let range = if chunk.start >= h {
            chunk.buf[chunk.start - h..chunk.start].copy_from_slice(&hdr[..h]);
            chunk.start - h..chunk.start + n
        } else {
            let mut v = Vec::with_capacity(h + n);
            v.extend_from_slice(&hdr[..h]);
            v.extend_from_slice(&chunk.buf[chunk.start..chunk.start + n]);
            chunk.buf = v;
            0..h + n
        };
        if !cur.started {
            cur.started = true;
            let total_len = cur.total;
            self.agent.emit(Event::TransferStarted {
                session: self.id,
                direction: Direction::Outgoing,
                transfer_id: tid,
                total_len,
            });
        }
        if end {
            // The rest is the peer's acks; the next bundle may start framing now.
            self.current = None;
        }
        if self.job(WriterJob::Write(chunk.buf, range, JobKind::Data)) {
            self.in_flight += 1;
        }
    }

    /// Frames the next segment of an in-memory bundle: the header goes in the job, the
    /// payload is written from the shared bundle (no copy).
    fn send_shared_segment(&mut self, tid: u64, data: Arc<Vec<u8>>, pos: usize, cap: usize) {
        let limit = self.core.segment_limit(tid).min(cap);
        let k = limit.min(data.len() - pos);
        let end = pos + k == data.len();
        if k == 0 && !end {
            return;
        }
        let mut hdr = [0u8; HEADROOM];
        let hlen = match self
            .core
            .encode_segment_header(tid, k as u64, end, &mut hdr)
        {
            Ok(h) => h,
            Err(SegmentError::Usage(UsageError::AckBacklogFull)) => {
                self.ack_wait = true;
                return;
            }
            Err(e) => return self.source_failed(format!("framing failed: {e}")),
        };
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if let Src::Bytes { pos: p, .. } = &mut cur.src {
            *p = pos + k;
        }
        if !cur.started {
            cur.started = true;
            let total_len = cur.total;
            self.agent.emit(Event::TransferStarted {
                session: self.id,
                direction: Direction::Outgoing,
                transfer_id: tid,
                total_len,
            });
        }
        if end {
            self.current = None;
        }
        if hlen + k <= DIRECT_MAX {
            if let Some(rest) = self.write_direct(&[&hdr[..hlen], &data[pos..pos + k]]) {
                return self.hand_rest(rest);
            }
        }
        let job = WriterJob::Segment {
            hdr,
            hlen,
            data,
            range: pos..pos + k,
        };
        if self.job(job) {
            self.in_flight += 1;
        }
    }

    // ----- commands ------------------------------------------------------------------

    fn on_command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
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

    /// Graceful shutdown: SESS_TERM once every submitted bundle is done.
    fn check_drain(&mut self) {
        if let Some(reason) = self.drain {
            if self.core.is_established()
                && self.queued.is_empty()
                && self.current.is_none()
                && self.core.outgoing_count() == 0
            {
                self.drain = None;
                let _ = self.core.terminate(Instant::now(), reason);
            }
        }
    }

    // ----- the pump ------------------------------------------------------------------

    /// Keeps the writer supplied: up to [`MAX_IN_FLIGHT`] jobs, control messages first.
    /// Queues a job for the writer, starting the writer first if this is its first
    /// job; false if the writer is gone (or could not be started).
    fn job(&mut self, job: WriterJob) -> bool {
        if let Some(start) = self.writer_start.take() {
            if let Err(e) = start() {
                self.writer_alive = false;
                self.close_override
                    .get_or_insert(CloseReason::Io(format!("spawning the writer: {e}")));
                self.core.close();
                return false;
            }
        }
        self.job_tx.send(job).is_ok()
    }

    fn schedule_writer(&mut self) {
        while self.writer_alive && self.in_flight < MAX_IN_FLIGHT {
            let before = (self.in_flight, self.direct_writes);
            self.schedule_one();
            if (self.in_flight, self.direct_writes) == before {
                break;
            }
        }
    }

    /// Whether the session thread may write to the socket itself: the writer is idle,
    /// and either TLS is up (we hold the connection) or no TLS handshake is pending or
    /// running (plaintext, as the writer would send it).
    fn can_write_direct(&self) -> bool {
        self.writer_alive
            && self.in_flight == 0
            && (self.tls.is_some() || self.tls_role.is_none())
            && !matches!(self.core.state(), State::TlsHandshake)
    }

    /// Writes `parts` from the session thread without blocking (`MSG_DONTWAIT`), when
    /// the writer is idle: a small message then costs no thread hop. Returns `None` if
    /// nothing was written (use the writer), else the bytes the socket did not take
    /// (already encrypted with TLS), which must go to the writer next, as they are.
    #[cfg(unix)]
    fn write_direct(&mut self, parts: &[&[u8]]) -> Option<Vec<u8>> {
        if !self.can_write_direct() {
            return None;
        }
        let sock = socket2::SockRef::from(&self.sock);
        let mut bytes = std::mem::take(&mut self.direct_buf);
        bytes.clear();
        match &self.tls {
            Some(conn) => {
                if tls_glue::encrypt_parts(conn, parts, &mut bytes, |_| Ok(())).is_err() {
                    // Let the writer meet (and report) the error.
                    self.direct_buf = bytes;
                    return None;
                }
            }
            None => {
                let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
                let sent = loop {
                    match sock.send_vectored_with_flags(&slices, DIRECT_FLAGS) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        r => break r,
                    }
                };
                let n = match sent {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                    Err(_) => {
                        self.direct_buf = bytes;
                        return None;
                    }
                };
                self.direct_writes += 1;
                let mut skip = n;
                for p in parts {
                    let k = skip.min(p.len());
                    skip -= k;
                    bytes.extend_from_slice(&p[k..]);
                }
                return Some(bytes);
            }
        }
        // TLS: the records are in `bytes`.
        let sent = loop {
            match sock.send_with_flags(&bytes, DIRECT_FLAGS) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        let n = match sent {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            // Encrypted already: the writer must write the records (and meet the error).
            Err(_) => 0,
        };
        self.direct_writes += 1;
        bytes.drain(..n);
        Some(bytes)
    }

    #[cfg(not(unix))]
    fn write_direct(&mut self, _parts: &[&[u8]]) -> Option<Vec<u8>> {
        None
    }

    /// After a direct write: the writer writes what the socket did not take.
    fn hand_rest(&mut self, rest: Vec<u8>) {
        if rest.is_empty() {
            self.direct_buf = rest;
            return;
        }
        let len = rest.len();
        if self.job(WriterJob::Write(rest, 0..len, JobKind::Raw)) {
            self.in_flight += 1;
        }
    }

    fn schedule_one(&mut self) {
        if !self.outbox.is_empty() {
            if self.in_flight == 0 && self.outbox.len() <= DIRECT_MAX {
                let out = std::mem::take(&mut self.outbox);
                let rest = self.write_direct(&[&out]);
                self.outbox = out;
                if let Some(rest) = rest {
                    self.outbox.clear();
                    self.hand_rest(rest);
                    return;
                }
            }
            let next = std::mem::take(&mut self.spare);
            let buf = std::mem::replace(&mut self.outbox, next);
            let len = buf.len();
            if self.job(WriterJob::Write(buf, 0..len, JobKind::Control)) {
                self.in_flight += 1;
            }
            return;
        }
        if self.closed.is_none() {
            self.try_send_data();
        }
    }

    fn pump(&mut self) {
        for _ in 0..64 {
            self.drain_transmit();
            self.drain_events(&mut None);
            self.check_drain();
            self.drain_transmit();
            self.schedule_writer();
            self.direct_reader();
            if self.closed.is_some() {
                break;
            }
            // Input paused on a full outbox resumes once the writer took it.
            if self.pending_in.is_some()
                && self.outbox.len() < OUTBOX_LIMIT
                && self.core.state() != State::TlsHandshake
            {
                let before = self.pending_in.as_ref().map(|c| c.pos);
                self.process_input();
                if self.pending_in.as_ref().map(|c| c.pos) == before {
                    break;
                }
                continue;
            }
            break;
        }
        self.publish();
    }

    // ----- the end -------------------------------------------------------------------

    /// After our FIN (and close_notify): the reader reads on, and what it reads is
    /// discarded, until the peer's FIN (or close_notify) or [`CLOSE_LINGER`], so the
    /// socket is closed with nothing unread and the close stays orderly (no RST).
    fn linger(&mut self) {
        if !self.reader_open {
            return;
        }
        if let Some(c) = self.pending_in.take() {
            self.recycle_in(c.buf);
        }
        let deadline = Instant::now() + CLOSE_LINGER;
        loop {
            if std::mem::take(&mut self.awaiting_directive) {
                // Still in the contact phase: the reader waits for a go-ahead after
                // every chunk.
                if let Some(tx) = &self.directive_tx {
                    let _ = tx.send(Directive::Continue);
                }
            }
            match self.rx.recv_deadline(deadline) {
                Ok(ReaderMsg::Data(buf, _)) => {
                    self.recycle_in(buf);
                    self.awaiting_directive = self.directive_tx.is_some();
                }
                Ok(ReaderMsg::TlsUp(_) | ReaderMsg::TlsWantsWrite) => {}
                Ok(ReaderMsg::Eof | ReaderMsg::Error(_) | ReaderMsg::TlsFailed(_)) | Err(_) => {
                    break
                }
            }
        }
        self.reader_open = false;
    }

    fn finish(mut self) {
        let reason = self.closed.take().unwrap_or(CloseReason::LocalClose);
        // Abandon what cannot complete.
        for (tid, inc) in self.incoming.drain() {
            inc.sink.abort();
            self.agent.emit(Event::TransferCancelled {
                session: self.id,
                direction: Direction::Incoming,
                transfer_id: tid,
            });
        }
        let mut cancelled: Vec<u64> = self.queued.drain(..).map(|q| q.tid).collect();
        cancelled.extend(self.current.take().map(|c| c.tid));
        for tid in cancelled {
            self.agent.emit(Event::TransferCancelled {
                session: self.id,
                direction: Direction::Outgoing,
                transfer_id: tid,
            });
        }
        self.outgoing_pending = 0;
        // Write the last control messages (SESS_TERM and its reply), bounded.
        if !self.immediate && self.writer_alive {
            let deadline = Instant::now() + FLUSH_LIMIT;
            while self.writer_alive && (self.in_flight > 0 || !self.outbox.is_empty()) {
                self.schedule_writer();
                match self.done_rx.recv_deadline(deadline) {
                    Ok(WriterDone::Written(..)) => {
                        self.in_flight = self.in_flight.saturating_sub(1)
                    }
                    Ok(WriterDone::Failed(_)) | Err(_) => self.writer_alive = false,
                }
            }
        }
        if self.writer_alive
            && !self.immediate
            && self.tls.is_none()
            && self.in_flight == 0
            && self.outbox.is_empty()
        {
            // Plaintext and the writer idle: send the FIN from here instead of waiting
            // for the writer to wake, write it and exit (the writer is told to stop and
            // exits on its own; its shutdown is then a no-op).
            let _ = self.sock.shutdown(Shutdown::Write);
            if self.writer_start.is_none() {
                let _ = self.job(WriterJob::Shutdown);
            }
            self.linger();
        } else if self.writer_alive && !self.immediate {
            // close_notify and FIN, then wait (bounded) for the writer to exit.
            if self.job(WriterJob::Shutdown) {
                let deadline = Instant::now() + Duration::from_secs(1);
                while self.done_rx.recv_deadline(deadline).is_ok() {}
                self.linger();
            }
        }
        let _ = self.sock.shutdown(Shutdown::Both);
        if let Some(tx) = self.directive_tx.take() {
            let _ = tx.send(Directive::Stop);
        }
        self.check_state();
        self.agent.emit(Event::SessionClosed {
            session: self.id,
            reason: reason.clone(),
        });
        let none_left = self.agent.unregister(self.id);
        let state = self.core.state();
        self.shared.update(|i| {
            i.state = state;
            i.close_reason = Some(reason);
            i.outgoing_pending = 0;
            i.incoming_active = 0;
            i.done = true;
        });
        if none_left {
            self.agent.last_session_closed();
        }
    }
}
