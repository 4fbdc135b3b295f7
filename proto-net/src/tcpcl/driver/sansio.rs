//! The sans-IO core a session thread drives: a TCPCLv4 session, a TCPCLv3 one, or —
//! on a listener that serves both — a detector that holds the peer's first five
//! octets until they say which (RFC 7242 §4.1 deviation: see
//! [`proto_core::tcpcl::v3`]). Both sessions share one contract, so the driver calls
//! the same methods whatever the version.

use std::time::Instant;

use proto_core::tcpcl::{
    v3, Contact, Event, Input, Ready, SessTermReason, Session, SessionConfig, Side, State, Status,
    Transmit, TransmitError, UsageError, XferRefuseReason, VERSION_3,
};

/// Which TCPCL versions a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Both: the first five octets decide.
    Any,
    /// Only this one (a peer of the other gets its version-mismatch answer).
    Only(u8),
}

/// The peer's first octets, until the version is known.
#[derive(Debug)]
pub(crate) struct Detect {
    /// Both candidate sessions, built (and validated) up front; the one not chosen is
    /// dropped. `None` only while being moved out.
    v4: Option<Session>,
    v3: Option<v3::Session>,
    seen: [u8; 5],
    len: usize,
    /// A v3 peer is answered as a v4-only node would (`require_tls`).
    refuse_v3: bool,
}

/// One session's core.
#[derive(Debug)]
pub(crate) enum Core {
    /// TCPCLv4 (RFC 9174).
    V4(Box<Session>),
    /// TCPCLv3 (RFC 7242).
    V3(Box<v3::Session>),
    /// A passive session waiting for the peer's version.
    Detect(Box<Detect>),
}

impl Core {
    /// The core for a new connection: `side`, with which versions to accept
    /// (a passive `Accept::Any` detects the version; an active side uses `version`).
    pub(crate) fn new(
        v4cfg: SessionConfig,
        side: Side,
        version: u8,
        accept: Accept,
        now: Instant,
    ) -> Result<Core, proto_core::tcpcl::ConfigError> {
        let v3cfg = v3::SessionConfig::from_v4(&v4cfg);
        let only = match (side, accept) {
            (Side::Active, _) => Some(version),
            (Side::Passive, Accept::Only(v)) => Some(v),
            (Side::Passive, Accept::Any) => None,
        };
        Ok(match only {
            Some(VERSION_3) => Core::V3(Box::new(v3::Session::new(v3cfg, side, now)?)),
            Some(_) => Core::V4(Box::new(Session::new(v4cfg, side, now)?)),
            None => {
                let refuse_v3 = v4cfg.require_tls;
                Core::Detect(Box::new(Detect {
                    v4: Some(Session::new(v4cfg, side, now)?),
                    v3: Some(v3::Session::new(v3cfg, side, now)?),
                    seen: [0; 5],
                    len: 0,
                    refuse_v3,
                }))
            }
        })
    }

    /// Leaves detection for the v4 session (timeouts, close, EOF before five octets).
    fn settle_v4(&mut self) {
        if let Core::Detect(d) = self {
            if let Some(v4) = d.v4.take() {
                *self = Core::V4(Box::new(v4));
            }
        }
    }

    /// Chooses the session for the version octet `version` (or a wrong magic) and
    /// feeds it the octets seen so far.
    fn choose(&mut self, now: Instant) {
        let Core::Detect(d) = self else { return };
        let v3 = matches!(
            Contact::peek_version(&d.seen[..d.len]),
            Ok(Status::Complete(3))
        ) && !d.refuse_v3;
        let seen = d.seen;
        let len = d.len;
        if let (true, Some(s)) = (v3, d.v3.take()) {
            *self = Core::V3(Box::new(s));
        } else {
            self.settle_v4();
        }
        // A contact header is never complete in five octets: all are buffered.
        let mut input = &seen[..len];
        while !input.is_empty() {
            let used = self.handle_input(now, input).consumed;
            if used == 0 {
                break;
            }
            input = &input[used..];
        }
    }

    pub(crate) fn handle_input<'a>(&mut self, now: Instant, input: &'a [u8]) -> Input<'a> {
        match self {
            Core::V4(s) => s.handle_input(now, input),
            Core::V3(s) => s.handle_input(now, input),
            Core::Detect(d) => {
                let take = (d.seen.len() - d.len).min(input.len());
                d.seen[d.len..d.len + take].copy_from_slice(&input[..take]);
                d.len += take;
                let decided =
                    d.len == d.seen.len() || Contact::peek_version(&d.seen[..d.len]).is_err();
                if decided {
                    self.choose(now);
                }
                Input {
                    consumed: take,
                    data: None,
                }
            }
        }
    }

    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        ready: impl FnMut(u64) -> Ready,
    ) -> Result<Option<Transmit>, TransmitError> {
        match self {
            Core::V4(s) => s.poll_transmit(now, out, ready),
            Core::V3(s) => s.poll_transmit(now, out, ready),
            // Nothing goes out before the version is known.
            Core::Detect(_) => Ok(None),
        }
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        match self {
            Core::V4(s) => s.poll_event(),
            Core::V3(s) => s.poll_event(),
            Core::Detect(_) => None,
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Core::V4(s) => s.poll_timeout(),
            Core::V3(s) => s.poll_timeout(),
            Core::Detect(d) => d.v4.as_ref().and_then(Session::poll_timeout),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.settle_if_due(now);
        match self {
            Core::V4(s) => s.handle_timeout(now),
            Core::V3(s) => s.handle_timeout(now),
            Core::Detect(_) => {}
        }
    }

    /// A detector whose contact timeout passed becomes the v4 session, which closes.
    fn settle_if_due(&mut self, now: Instant) {
        if let Core::Detect(d) = self {
            if d.v4
                .as_ref()
                .and_then(Session::poll_timeout)
                .is_some_and(|t| t <= now)
            {
                self.settle_v4();
            }
        }
    }

    pub(crate) fn note_unread_input(&mut self, now: Instant) {
        match self {
            Core::V4(s) => s.note_unread_input(now),
            Core::V3(s) => s.note_unread_input(now),
            Core::Detect(_) => {}
        }
    }

    pub(crate) fn handle_eof(&mut self, now: Instant) {
        self.settle_v4();
        match self {
            Core::V4(s) => s.handle_eof(now),
            Core::V3(s) => s.handle_eof(now),
            Core::Detect(_) => {}
        }
    }

    pub(crate) fn close(&mut self) {
        self.settle_v4();
        match self {
            Core::V4(s) => s.close(),
            Core::V3(s) => s.close(),
            Core::Detect(_) => {}
        }
    }

    pub(crate) fn terminate(
        &mut self,
        now: Instant,
        reason: SessTermReason,
    ) -> Result<(), UsageError> {
        self.settle_v4();
        match self {
            Core::V4(s) => s.terminate(now, reason),
            Core::V3(s) => s.terminate(now, reason),
            Core::Detect(_) => Ok(()),
        }
    }

    pub(crate) fn state(&self) -> State {
        match self {
            Core::V4(s) => s.state(),
            Core::V3(s) => s.state(),
            Core::Detect(_) => State::Contact,
        }
    }

    /// Whether the core has closed. A detector that has not yet seen the peer's
    /// version has nothing to send or acknowledge, so closing it closes it at once.
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Core::V4(s) => s.is_closed(),
            Core::V3(s) => s.is_closed(),
            Core::Detect(_) => true,
        }
    }

    pub(crate) fn is_established(&self) -> bool {
        self.state() == State::Established
    }

    pub(crate) fn tx_segment_size(&self) -> u64 {
        match self {
            Core::V4(s) => s.tx_segment_size(),
            Core::V3(s) => s.tx_segment_size(),
            Core::Detect(d) => d.v4.as_ref().map_or(1, Session::tx_segment_size),
        }
    }

    pub(crate) fn outgoing_count(&self) -> usize {
        match self {
            Core::V4(s) => s.outgoing_count(),
            Core::V3(s) => s.outgoing_count(),
            Core::Detect(_) => 0,
        }
    }

    pub(crate) fn max_outgoing_transfers(&self) -> usize {
        match self {
            Core::V4(s) => s.config().max_outgoing_transfers,
            Core::V3(s) => s.config().max_outgoing_transfers,
            Core::Detect(d) => {
                d.v4.as_ref()
                    .map_or(1, |s| s.config().max_outgoing_transfers)
            }
        }
    }

    pub(crate) fn start_transfer(&mut self, total_len: Option<u64>) -> Result<u64, UsageError> {
        match self {
            Core::V4(s) => s.start_transfer(total_len),
            Core::V3(s) => s.start_transfer(total_len),
            Core::Detect(_) => Err(UsageError::NotEstablished),
        }
    }

    pub(crate) fn abandon_transfer(&mut self, transfer_id: u64) -> Result<(), UsageError> {
        match self {
            Core::V4(s) => s.abandon_transfer(transfer_id),
            Core::V3(s) => s.abandon_transfer(transfer_id),
            Core::Detect(_) => Err(UsageError::UnknownTransfer(transfer_id)),
        }
    }

    pub(crate) fn confirm_segment(&mut self, transfer_id: u64) -> Result<(), UsageError> {
        match self {
            Core::V4(s) => s.confirm_segment(transfer_id),
            Core::V3(s) => s.confirm_segment(transfer_id),
            Core::Detect(_) => Err(UsageError::NothingToConfirm(transfer_id)),
        }
    }

    pub(crate) fn refuse_transfer(
        &mut self,
        transfer_id: u64,
        reason: XferRefuseReason,
    ) -> Result<(), UsageError> {
        match self {
            Core::V4(s) => s.refuse_transfer(transfer_id, reason),
            Core::V3(s) => s.refuse_transfer(transfer_id, reason),
            Core::Detect(_) => Err(UsageError::UnknownTransfer(transfer_id)),
        }
    }

    pub(crate) fn tls_established(&mut self, now: Instant, ids: &[&str]) -> Result<(), UsageError> {
        match self {
            Core::V4(s) => s.tls_established(now, ids),
            _ => Err(UsageError::WrongState),
        }
    }

    pub(crate) fn peer_node_id(&self) -> Option<&str> {
        match self {
            Core::V4(s) => s.peer_node_id(),
            Core::V3(s) => s.peer_node_id(),
            Core::Detect(_) => None,
        }
    }

    /// The v4 session, if this is one.
    pub(crate) fn v4(&self) -> Option<&Session> {
        match self {
            Core::V4(s) => Some(s),
            _ => None,
        }
    }

    /// The v3 session, if this is one.
    pub(crate) fn v3(&self) -> Option<&v3::Session> {
        match self {
            Core::V3(s) => Some(s),
            _ => None,
        }
    }
}
