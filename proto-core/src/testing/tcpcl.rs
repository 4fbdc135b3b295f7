//! [`Endpoint`] adapter for a TCPCL [`Session`]: the core plus the application's queue
//! of bundles to send. Received transfer data goes to the harness as
//! `on_data(transfer_id, bytes, end_of_transfer)`; each segment is confirmed
//! ([`Session::confirm_segment`]) right after its last piece was handed over.
//!
//! TLS is simulated: when the session asks for it, the adapter reports the handshake
//! done (with [`TcpclEndpoint::cert_node_ids`] as the peer certificate's identities)
//! and the byte streams simply stay plaintext.

use super::Endpoint;
use crate::tcpcl::{Event, SegmentError, SessTermReason, Session, State, UsageError};
use std::collections::VecDeque;
use std::time::Instant;

/// A TCPCL session and the bundles its application wants to send.
#[derive(Debug)]
pub struct TcpclEndpoint {
    /// The core under test.
    pub session: Session,
    /// Bundles still to send; the front one may be partly framed.
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
    /// Errors the session returned to the adapter (a test usually expects none).
    pub errors: Vec<SegmentError>,
    current: Option<(u64, Vec<u8>, usize)>,
}

impl TcpclEndpoint {
    /// Wraps `session`.
    pub fn new(session: Session) -> Self {
        TcpclEndpoint {
            session,
            outbox: VecDeque::new(),
            announce_length: true,
            auto_tls: true,
            cert_node_ids: Vec::new(),
            terminate_when_idle: None,
            finished: Vec::new(),
            errors: Vec::new(),
            current: None,
        }
    }

    /// Queues a bundle to send once the session is established.
    pub fn send(&mut self, bundle: impl Into<Vec<u8>>) {
        self.outbox.push_back(bundle.into());
    }

    /// Whether every queued bundle has been framed and acknowledged.
    pub fn all_sent_and_acked(&self) -> bool {
        self.outbox.is_empty() && self.current.is_none() && self.session.outgoing_count() == 0
    }

    /// Frames the next piece of application data, if any may be sent now.
    fn next_segment(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.current.is_none() {
            if self.session.state() != State::Established {
                return None;
            }
            let len = self.outbox.front()?.len() as u64;
            match self
                .session
                .start_transfer(self.announce_length.then_some(len))
            {
                Ok(id) => {
                    let data = self.outbox.pop_front()?;
                    self.current = Some((id, data, 0));
                }
                Err(UsageError::TooManyTransfers) => return None,
                Err(e) => {
                    self.errors.push(e.into());
                    self.outbox.pop_front();
                    return None;
                }
            }
        }
        let (id, data, off) = self.current.as_mut()?;
        match self.session.frame_segment(*id, &data[*off..], true, out) {
            Ok((consumed, written)) => {
                *off += consumed;
                // `frame_segment` sets END exactly when the rest of the bundle fitted.
                if *off == data.len() {
                    self.current = None;
                }
                Some(written)
            }
            Err(SegmentError::Usage(UsageError::AckBacklogFull)) => None,
            Err(e) => {
                self.errors.push(e);
                self.current = None;
                None
            }
        }
    }
}

impl Endpoint for TcpclEndpoint {
    type Event = Event;

    fn input(
        &mut self,
        now: Instant,
        input: &[u8],
        on_data: &mut dyn FnMut(u64, &[u8], bool),
    ) -> usize {
        let r = self.session.handle_input(now, input);
        if let Some(d) = r.data {
            on_data(d.transfer_id, d.bytes, d.end_of_transfer);
            if d.end_of_segment {
                // The harness's application stores everything it is handed.
                self.session
                    .confirm_segment(d.transfer_id)
                    .expect("the segment just delivered awaits confirmation");
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
            if let Some(n) = self
                .session
                .poll_transmit(now, out)
                .expect("harness buffer fits any control message")
            {
                return Some(n);
            }
            if self.auto_tls && self.session.state() == State::TlsHandshake {
                let ids: Vec<&str> = self.cert_node_ids.iter().map(String::as_str).collect();
                self.session
                    .tls_established(now, &ids)
                    .expect("TLS was requested");
                continue;
            }
            if let Some(n) = self.next_segment(out) {
                return Some(n);
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
        if let Event::OutgoingAcked {
            transfer_id,
            finished: true,
            ..
        } = e
        {
            self.finished.push(transfer_id);
        }
        Some(e)
    }

    fn is_closed(&self) -> bool {
        self.session.is_closed()
    }
}
