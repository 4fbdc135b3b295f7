//! Deterministic in-memory pair harness (feature `testing`).
//!
//! [`Pair`] runs two sans-IO endpoints against each other with a virtual clock and
//! seeded random chunking of both byte streams, and records an event transcript.
//! State-machine tests are written with it: no sockets, no threads, no sleeps. A
//! failing run prints its seed; set `PROTO_SEED=<seed>` to replay it.
//!
//! Each protocol provides an [`Endpoint`] adapter that owns a core plus the
//! application's queue of outgoing messages, so the harness itself knows nothing of
//! COTP or TCPCL.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

pub mod cotp;
mod pair;
mod rng;
pub mod tcpcl;

pub use pair::{Delivered, Pair, Side, TranscriptEntry};
pub use rng::SplitMix64;

use std::time::Instant;

/// One side of a connection as the harness drives it.
pub trait Endpoint {
    /// Events the core reports.
    type Event: Copy + core::fmt::Debug;

    /// Feeds received bytes; returns how many were consumed. Payload the core hands out
    /// is passed to `on_data(stream, bytes, end_of_unit)`, where `stream` identifies a
    /// transfer or message and `end_of_unit` marks its last piece.
    fn input(
        &mut self,
        now: Instant,
        input: &[u8],
        on_data: &mut dyn FnMut(u64, &[u8], bool),
    ) -> usize;

    /// The transport reached end of stream (the peer closed its side).
    fn eof(&mut self, now: Instant);

    /// Fires due timers.
    fn timeout(&mut self, now: Instant);

    /// The next deadline, if any.
    fn next_timeout(&self) -> Option<Instant>;

    /// Writes the next bytes to send (control PDUs first, then queued application data)
    /// into `out`; `None` when there is nothing to send.
    fn transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize>;

    /// The next event.
    fn event(&mut self) -> Option<Self::Event>;

    /// Whether the endpoint is finished and wants the transport closed.
    fn is_closed(&self) -> bool;
}
