//! [`Endpoint`] adapter for a TCPCL [`Session`]: the core plus the application's queue
//! of bundles to send. Received transfer data goes to the harness as
//! `on_data(transfer_id, bytes, end_of_transfer)`; each segment is confirmed
//! ([`Session::confirm_segment`]) right after its last piece was handed over, unless
//! [`TcpclEndpoint::refuse_segments`] names it: then the application refuses its
//! transfer instead ([`Session::refuse_transfer`]) and the harness never sees that
//! transfer end.
//!
//! Sending runs the core's own policy: bundles are started as soon as the session
//! allows, and [`Session::poll_transmit`] decides what goes out next, asking the
//! adapter's bundles for their data. The adapter only appends each segment's payload
//! after its header, continuing in the next call when the harness buffer is full, as a
//! runtime does after a partial write.
//!
//! TLS is simulated: when the session asks for it, the adapter reports the handshake
//! done (with [`TcpclEndpoint::cert_node_ids`] as the peer certificate's identities)
//! and the byte streams simply stay plaintext.

use super::Endpoint;
use crate::tcpcl::{
    v3, Event, Input, Ready, SessTermReason, Session, State, Transmit, TransmitError, UsageError,
    XferRefuseReason,
};
use std::collections::VecDeque;
use std::time::Instant;

/// The session calls the adapter makes, implemented by the v4 [`Session`] and the
/// v3 [`v3::Session`] alike (they share the contract), so one adapter drives both.
pub trait TcpclCore {
    /// `handle_input`.
    fn handle_input<'a>(&mut self, now: Instant, input: &'a [u8]) -> Input<'a>;
    /// `confirm_segment`.
    fn confirm_segment(&mut self, transfer_id: u64) -> Result<(), UsageError>;
    /// `refuse_transfer`.
    fn refuse_transfer(
        &mut self,
        transfer_id: u64,
        reason: XferRefuseReason,
    ) -> Result<(), UsageError>;
    /// `handle_eof`.
    fn handle_eof(&mut self, now: Instant);
    /// `poll_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// `handle_timeout`.
    fn handle_timeout(&mut self, now: Instant);
    /// `poll_transmit`.
    fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        ready: &mut dyn FnMut(u64) -> Ready,
    ) -> Result<Option<Transmit>, TransmitError>;
    /// `start_transfer`.
    fn start_transfer(&mut self, total_len: Option<u64>) -> Result<u64, UsageError>;
    /// `abandon_transfer`.
    fn abandon_transfer(&mut self, transfer_id: u64) -> Result<(), UsageError>;
    /// `close`.
    fn close(&mut self);
    /// `state`.
    fn state(&self) -> State;
    /// `outgoing_count`.
    fn outgoing_count(&self) -> usize;
    /// `terminate`.
    fn terminate(&mut self, now: Instant, reason: SessTermReason) -> Result<(), UsageError>;
    /// `poll_event`.
    fn poll_event(&mut self) -> Option<Event>;
    /// `is_closed`.
    fn is_closed(&self) -> bool;
    /// `tls_established` (v3 has no TLS: never asked for).
    fn tls_established(&mut self, now: Instant, ids: &[&str]) -> Result<(), UsageError>;
}

macro_rules! tcpcl_core {
    ($t:ty, $tls:expr) => {
        impl TcpclCore for $t {
            fn handle_input<'a>(&mut self, now: Instant, input: &'a [u8]) -> Input<'a> {
                <$t>::handle_input(self, now, input)
            }
            fn confirm_segment(&mut self, transfer_id: u64) -> Result<(), UsageError> {
                <$t>::confirm_segment(self, transfer_id)
            }
            fn refuse_transfer(
                &mut self,
                transfer_id: u64,
                reason: XferRefuseReason,
            ) -> Result<(), UsageError> {
                <$t>::refuse_transfer(self, transfer_id, reason)
            }
            fn handle_eof(&mut self, now: Instant) {
                <$t>::handle_eof(self, now)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$t>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn poll_transmit(
                &mut self,
                now: Instant,
                out: &mut [u8],
                ready: &mut dyn FnMut(u64) -> Ready,
            ) -> Result<Option<Transmit>, TransmitError> {
                <$t>::poll_transmit(self, now, out, ready)
            }
            fn start_transfer(&mut self, total_len: Option<u64>) -> Result<u64, UsageError> {
                <$t>::start_transfer(self, total_len)
            }
            fn abandon_transfer(&mut self, transfer_id: u64) -> Result<(), UsageError> {
                <$t>::abandon_transfer(self, transfer_id)
            }
            fn close(&mut self) {
                <$t>::close(self)
            }
            fn state(&self) -> State {
                <$t>::state(self)
            }
            fn outgoing_count(&self) -> usize {
                <$t>::outgoing_count(self)
            }
            fn terminate(
                &mut self,
                now: Instant,
                reason: SessTermReason,
            ) -> Result<(), UsageError> {
                <$t>::terminate(self, now, reason)
            }
            fn poll_event(&mut self) -> Option<Event> {
                <$t>::poll_event(self)
            }
            fn is_closed(&self) -> bool {
                <$t>::is_closed(self)
            }
            fn tls_established(&mut self, now: Instant, ids: &[&str]) -> Result<(), UsageError> {
                #[allow(clippy::redundant_closure_call)]
                ($tls)(self, now, ids)
            }
        }
    };
}

tcpcl_core!(Session, |s: &mut Session, now, ids: &[&str]| s
    .tls_established(now, ids));
tcpcl_core!(v3::Session, |_: &mut v3::Session, _, _: &[&str]| Err(
    UsageError::WrongState
));

/// What went wrong while the adapter drove its session (a test usually expects
/// nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointError {
    /// [`Session::start_transfer`] refused a queued bundle (it is dropped).
    Start(UsageError),
    /// [`Session::poll_transmit`] failed.
    Transmit(TransmitError),
}

/// A started transfer's data, until its last payload byte is written.
#[derive(Debug)]
struct Source {
    id: u64,
    data: Vec<u8>,
    /// Bytes the session has framed into segments so far.
    framed: usize,
}

/// Payload still owed after a segment header that was already written.
#[derive(Debug, Clone, Copy)]
struct Payload {
    id: u64,
    offset: usize,
    left: usize,
    /// Drop the source once this payload is written (the transfer ended or the peer
    /// refused it).
    last: bool,
}

/// A TCPCL session and the bundles its application wants to send.
#[derive(Debug)]
pub struct TcpclEndpoint<S: TcpclCore = Session> {
    /// The core under test.
    pub session: S,
    /// Bundles not started yet (the session is not established, or its outgoing
    /// transfer table is full).
    pub outbox: VecDeque<Vec<u8>>,
    /// Announce the Transfer Length extension on each bundle.
    pub announce_length: bool,
    /// Complete the TLS handshake when the session asks for it.
    pub auto_tls: bool,
    /// Identities the simulated peer certificate authenticates.
    pub cert_node_ids: Vec<String>,
    /// Once the outbox is empty and every transfer acknowledged, terminate the session
    /// with this reason.
    pub terminate_when_idle: Option<SessTermReason>,
    /// Our transfers the peer acknowledged in full, in order.
    pub finished: Vec<u64>,
    /// Started bundles the session cancelled before sending any of them
    /// ([`Event::OutgoingCancelled`]), with their transfer IDs.
    pub cancelled: Vec<(u64, Vec<u8>)>,
    /// Our transfers fully sent without acknowledgment ([`Event::OutgoingSent`], v3
    /// without acks), in order.
    pub sent_unacked: Vec<u64>,
    /// Errors the session returned to the adapter (a test usually expects none).
    pub errors: Vec<EndpointError>,
    /// Received segments, numbered from 0 in arrival order, that the application does
    /// not confirm: it refuses their transfer with the reason given instead.
    pub refuse_segments: Vec<(u64, XferRefuseReason)>,
    /// Our transfers the peer refused ([`Event::OutgoingRefused`]).
    pub refused_by_peer: Vec<u64>,
    /// Incoming transfers the application refused (their data is discarded).
    pub refused_rx: Vec<u64>,
    /// The transfer ID of every bundle started, with the bundle's position in the order
    /// [`TcpclEndpoint::send`] queued it.
    pub started: Vec<(u64, usize)>,
    /// Bundles taken from the outbox so far (started, or dropped on a start error).
    taken: usize,
    segments_rx: u64,
    sources: Vec<Source>,
    payload: Option<Payload>,
}

impl<S: TcpclCore> TcpclEndpoint<S> {
    /// Wraps `session`.
    pub fn new(session: S) -> Self {
        TcpclEndpoint {
            session,
            outbox: VecDeque::new(),
            announce_length: true,
            auto_tls: true,
            cert_node_ids: Vec::new(),
            terminate_when_idle: None,
            finished: Vec::new(),
            cancelled: Vec::new(),
            sent_unacked: Vec::new(),
            errors: Vec::new(),
            refuse_segments: Vec::new(),
            refused_rx: Vec::new(),
            refused_by_peer: Vec::new(),
            started: Vec::new(),
            taken: 0,
            segments_rx: 0,
            sources: Vec::new(),
            payload: None,
        }
    }

    /// Queues a bundle to send once the session is established.
    pub fn send(&mut self, bundle: impl Into<Vec<u8>>) {
        self.outbox.push_back(bundle.into());
    }

    /// Whether every queued bundle has been framed and acknowledged.
    pub fn all_sent_and_acked(&self) -> bool {
        self.outbox.is_empty()
            && self.sources.is_empty()
            && self.payload.is_none()
            && self.session.outgoing_count() == 0
    }

    /// Starts a transfer for every queued bundle the session takes now.
    fn start_queued(&mut self) {
        if self.session.state() != State::Established {
            return;
        }
        while let Some(len) = self.outbox.front().map(Vec::len) {
            match self
                .session
                .start_transfer(self.announce_length.then_some(len as u64))
            {
                Ok(id) => {
                    let data = self.outbox.pop_front().unwrap_or_default();
                    self.started.push((id, self.taken));
                    self.taken += 1;
                    self.sources.push(Source {
                        id,
                        data,
                        framed: 0,
                    });
                }
                Err(UsageError::TooManyTransfers) => return,
                Err(e) => {
                    self.errors.push(EndpointError::Start(e));
                    self.outbox.pop_front();
                    self.taken += 1;
                }
            }
        }
    }

    /// Writes as much of the owed payload as fits into `out`; returns bytes written.
    fn write_payload(&mut self, out: &mut [u8]) -> usize {
        let Some(p) = &mut self.payload else { return 0 };
        let src = self
            .sources
            .iter()
            .find(|s| s.id == p.id)
            .expect("a segment's source stays until its payload is written");
        let n = p.left.min(out.len());
        out[..n].copy_from_slice(&src.data[p.offset..p.offset + n]);
        p.offset += n;
        p.left -= n;
        if p.left == 0 {
            let p = self.payload.take().expect("just matched");
            if p.last {
                self.sources.retain(|s| s.id != p.id);
            }
        }
        n
    }

    /// The session dropped transfer `id` (refused or cancelled): so does the adapter,
    /// once any payload owed for it is written.
    fn forget(&mut self, id: u64) -> Option<Vec<u8>> {
        if let Some(p) = self.payload.as_mut().filter(|p| p.id == id) {
            p.last = true;
            return None;
        }
        let i = self.sources.iter().position(|s| s.id == id)?;
        Some(self.sources.swap_remove(i).data)
    }
}

impl<S: TcpclCore> Endpoint for TcpclEndpoint<S> {
    type Event = Event;

    fn input(
        &mut self,
        now: Instant,
        input: &[u8],
        on_data: &mut dyn FnMut(u64, &[u8], bool),
    ) -> usize {
        let r = self.session.handle_input(now, input);
        if let Some(d) = r.data {
            let refusal = if d.end_of_segment {
                let n = self.segments_rx;
                self.segments_rx += 1;
                self.refuse_segments.iter().find(|r| r.0 == n).map(|r| r.1)
            } else {
                None
            };
            on_data(
                d.transfer_id,
                d.bytes,
                d.end_of_transfer && refusal.is_none(),
            );
            match refusal {
                Some(reason) => {
                    self.session
                        .refuse_transfer(d.transfer_id, reason)
                        .expect("the transfer of the segment just delivered is active");
                    self.refused_rx.push(d.transfer_id);
                }
                // The harness's application stores everything it is handed.
                None if d.end_of_segment => self
                    .session
                    .confirm_segment(d.transfer_id)
                    .expect("the segment just delivered awaits confirmation"),
                None => {}
            }
        }
        r.consumed
    }

    fn eof(&mut self, now: Instant) {
        self.session.handle_eof(now);
    }

    fn timeout(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    fn transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        loop {
            // A segment's payload follows its header before anything else.
            if self.payload.is_some() {
                return Some(self.write_payload(out));
            }
            self.start_queued();
            let sources = &self.sources;
            let mut ready = |id: u64| {
                let s = sources
                    .iter()
                    .find(|s| s.id == id)
                    .expect("the session asks only for transfers it was given");
                Ready {
                    available: (s.data.len() - s.framed) as u64,
                    complete: true,
                }
            };
            match self.session.poll_transmit(now, out, &mut ready) {
                Ok(Some(Transmit::Control(n))) => return Some(n),
                Ok(Some(Transmit::Segment {
                    transfer_id,
                    offset,
                    header_len,
                    data_len,
                    end,
                })) => {
                    let s = self
                        .sources
                        .iter_mut()
                        .find(|s| s.id == transfer_id)
                        .expect("the segment's source");
                    assert_eq!(offset, s.framed as u64, "segments follow each other");
                    s.framed += data_len;
                    if data_len > 0 {
                        self.payload = Some(Payload {
                            id: transfer_id,
                            offset: offset as usize,
                            left: data_len,
                            last: end,
                        });
                    } else if end {
                        self.sources.retain(|s| s.id != transfer_id);
                    }
                    let n = self.write_payload(&mut out[header_len..]);
                    return Some(header_len + n);
                }
                Ok(None) => {}
                Err(e @ TransmitError::Encode(_)) => {
                    panic!("the harness buffer holds any control message: {e}")
                }
                Err(e @ TransmitError::Source { transfer_id, .. }) => {
                    // What a runtime does with a failed source.
                    self.errors.push(EndpointError::Transmit(e));
                    if self.session.abandon_transfer(transfer_id).is_err() {
                        self.session.close();
                    }
                    self.forget(transfer_id);
                    continue;
                }
            }
            if self.auto_tls && self.session.state() == State::TlsHandshake {
                let ids: Vec<&str> = self.cert_node_ids.iter().map(String::as_str).collect();
                self.session
                    .tls_established(now, &ids)
                    .expect("TLS was requested");
                continue;
            }
            if let Some(reason) = self.terminate_when_idle {
                if self.session.state() == State::Established && self.all_sent_and_acked() {
                    self.terminate_when_idle = None;
                    self.session.terminate(now, reason).expect("established");
                    continue;
                }
            }
            return None;
        }
    }

    fn event(&mut self) -> Option<Event> {
        let e = self.session.poll_event()?;
        match e {
            Event::OutgoingAcked {
                transfer_id,
                finished: true,
                ..
            } => self.finished.push(transfer_id),
            Event::OutgoingRefused { transfer_id, .. } => {
                self.refused_by_peer.push(transfer_id);
                self.forget(transfer_id);
            }
            Event::OutgoingSent { transfer_id, .. } => self.sent_unacked.push(transfer_id),
            Event::OutgoingCancelled { transfer_id } => {
                if let Some(data) = self.forget(transfer_id) {
                    self.cancelled.push((transfer_id, data));
                }
            }
            _ => {}
        }
        Some(e)
    }

    fn is_closed(&self) -> bool {
        self.session.is_closed()
    }
}
