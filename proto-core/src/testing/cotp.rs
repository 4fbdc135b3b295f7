//! [`Endpoint`] adapter for a COTP [`Connection`]: the core plus an application queue
//! of messages to send, delivered messages numbered in arrival order.

use super::Endpoint;
use crate::cotp::connection::{Connection, Event};
use std::collections::VecDeque;
use std::time::Instant;

/// A COTP connection and the messages its application wants to send.
#[derive(Debug)]
pub struct CotpEndpoint {
    /// The core under test.
    pub conn: Connection,
    /// Messages still to send (the front one may be partly framed).
    pub outbox: VecDeque<Vec<u8>>,
    sent_of_front: usize,
    rx_message: u64,
}

impl CotpEndpoint {
    /// Wraps `conn`.
    pub fn new(conn: Connection) -> Self {
        CotpEndpoint {
            conn,
            outbox: VecDeque::new(),
            sent_of_front: 0,
            rx_message: 0,
        }
    }

    /// Queues a message to send once the connection is open.
    pub fn send(&mut self, msg: impl Into<Vec<u8>>) {
        self.outbox.push_back(msg.into());
    }
}

impl Endpoint for CotpEndpoint {
    type Event = Event;

    fn input(
        &mut self,
        now: Instant,
        input: &[u8],
        on_data: &mut dyn FnMut(u64, &[u8], bool),
    ) -> usize {
        let r = self.conn.handle_input(now, input);
        if let Some(d) = r.data {
            on_data(self.rx_message, d.bytes, d.end_of_message);
            if d.end_of_message {
                self.rx_message += 1;
            }
        }
        r.consumed
    }

    fn eof(&mut self, now: Instant) {
        self.conn.handle_eof(now);
    }

    fn timeout(&mut self, now: Instant) {
        if self.conn.poll_timeout().is_some_and(|t| t <= now) {
            self.conn.handle_timeout(now);
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    fn transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if let Some(n) = self
            .conn
            .poll_transmit(now, out)
            .expect("harness buffer fits any control TPDU")
        {
            return Some(n);
        }
        if !self.conn.is_open() {
            return None;
        }
        let msg = self.outbox.front()?;
        let framed = self
            .conn
            .frame_data(&msg[self.sent_of_front..], true, out)
            .expect("framing into the harness buffer");
        self.sent_of_front += framed.consumed;
        if self.sent_of_front == msg.len() {
            self.outbox.pop_front();
            self.sent_of_front = 0;
        }
        Some(framed.written)
    }

    fn event(&mut self) -> Option<Event> {
        self.conn.poll_event()
    }

    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}
