//! Two endpoints, two byte streams, one virtual clock.

use super::{Endpoint, SplitMix64};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The first endpoint (usually the active / connecting side).
    A,
    /// The second endpoint (usually the passive / listening side).
    B,
}

/// One transcript line: when, which side, and the event in `Debug` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptEntry {
    /// Virtual time since the pair was created.
    pub at: Duration,
    /// The side that reported the event.
    pub side: Side,
    /// The event, formatted with `{:?}`.
    pub event: String,
}

/// Payload one side received, per stream (message or transfer).
#[derive(Debug, Default, Clone)]
pub struct Delivered {
    /// Streams still being received.
    pub partial: BTreeMap<u64, Vec<u8>>,
    /// Completed units, in completion order.
    pub complete: Vec<(u64, Vec<u8>)>,
}

/// Two endpoints connected by in-memory byte streams.
pub struct Pair<A: Endpoint, B: Endpoint> {
    /// The first endpoint.
    pub a: A,
    /// The second endpoint.
    pub b: B,
    /// Virtual now.
    pub now: Instant,
    start: Instant,
    rng: SplitMix64,
    seed: u64,
    a_to_b: VecDeque<u8>,
    b_to_a: VecDeque<u8>,
    a_eof_sent: bool,
    b_eof_sent: bool,
    /// Largest chunk delivered in one `input` call.
    pub max_chunk: usize,
    /// Every event in order.
    pub transcript: Vec<TranscriptEntry>,
    /// Payload received by A.
    pub received_a: Delivered,
    /// Payload received by B.
    pub received_b: Delivered,
    /// Bytes A has sent in total.
    pub sent_a: u64,
    /// Bytes B has sent in total.
    pub sent_b: u64,
    out: Vec<u8>,
    _guard: SeedGuard,
}

struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "pair harness seed: {} (replay with PROTO_SEED={})",
                self.0, self.0
            );
        }
    }
}

impl<A: Endpoint, B: Endpoint> Pair<A, B> {
    /// A pair whose chunking is driven by `seed`, unless `PROTO_SEED` overrides it.
    /// `now` is the virtual clock's start, the same instant the endpoints were built with.
    pub fn new(a: A, b: B, now: Instant, seed: u64) -> Self {
        let seed = std::env::var("PROTO_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(seed);
        Pair {
            a,
            b,
            now,
            start: now,
            rng: SplitMix64::new(seed),
            seed,
            a_to_b: VecDeque::new(),
            b_to_a: VecDeque::new(),
            a_eof_sent: false,
            b_eof_sent: false,
            max_chunk: 4096,
            transcript: vec![],
            received_a: Delivered::default(),
            received_b: Delivered::default(),
            sent_a: 0,
            sent_b: 0,
            out: vec![0; 1 << 17],
            _guard: SeedGuard(seed),
        }
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time since creation.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves everything each side wants to send into the streams. Returns whether
    /// anything moved.
    fn pump_transmit(&mut self) -> bool {
        let mut moved = false;
        while let Some(n) = self.a.transmit(self.now, &mut self.out) {
            self.a_to_b.extend(&self.out[..n]);
            self.sent_a += n as u64;
            moved = true;
        }
        while let Some(n) = self.b.transmit(self.now, &mut self.out) {
            self.b_to_a.extend(&self.out[..n]);
            self.sent_b += n as u64;
            moved = true;
        }
        moved
    }

    /// Delivers one randomly sized chunk in each direction. Returns whether any byte
    /// was consumed.
    fn deliver(&mut self) -> bool {
        let mut progress = false;
        let chunk = self.rng.range(1, self.max_chunk);
        progress |= feed(
            &mut self.a_to_b,
            &mut self.b,
            self.now,
            chunk,
            &mut self.received_b,
        );
        let chunk = self.rng.range(1, self.max_chunk);
        progress |= feed(
            &mut self.b_to_a,
            &mut self.a,
            self.now,
            chunk,
            &mut self.received_a,
        );
        progress
    }

    fn collect_events(&mut self) -> bool {
        let mut any = false;
        while let Some(e) = self.a.event() {
            self.transcript.push(TranscriptEntry {
                at: self.now - self.start,
                side: Side::A,
                event: format!("{e:?}"),
            });
            any = true;
        }
        while let Some(e) = self.b.event() {
            self.transcript.push(TranscriptEntry {
                at: self.now - self.start,
                side: Side::B,
                event: format!("{e:?}"),
            });
            any = true;
        }
        any
    }

    fn propagate_close(&mut self) -> bool {
        let mut any = false;
        if self.a.is_closed() && !self.a_eof_sent && self.a_to_b.is_empty() {
            self.a_eof_sent = true;
            self.b.eof(self.now);
            any = true;
        }
        if self.b.is_closed() && !self.b_eof_sent && self.b_to_a.is_empty() {
            self.b_eof_sent = true;
            self.a.eof(self.now);
            any = true;
        }
        any
    }

    /// One step without moving the clock. Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let mut any = self.pump_transmit();
        any |= self.deliver();
        any |= self.collect_events();
        any |= self.propagate_close();
        any
    }

    /// Steps until nothing more happens without the clock moving.
    pub fn settle(&mut self) {
        for _ in 0..10_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("pair did not settle (seed {})", self.seed);
    }

    /// Advances the clock to the earlier of both endpoints' deadlines (at most
    /// `limit` ahead) and fires timers. Returns whether a deadline was reached.
    pub fn advance(&mut self, limit: Duration) -> bool {
        let horizon = self.now + limit;
        let next = [self.a.next_timeout(), self.b.next_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= horizon => {
                self.now = self.now.max(t);
                self.a.timeout(self.now);
                self.b.timeout(self.now);
                true
            }
            _ => {
                self.now = horizon;
                false
            }
        }
    }

    /// Moves the clock forward by `d` and fires whatever timers are due.
    pub fn sleep(&mut self, d: Duration) {
        self.now += d;
        self.a.timeout(self.now);
        self.b.timeout(self.now);
    }

    /// Settles, then keeps advancing virtual time from deadline to deadline until
    /// `done` holds, or panics after `max_time` of virtual time.
    pub fn run_until(&mut self, max_time: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = self.now + max_time;
        loop {
            self.settle();
            if done(self) {
                return;
            }
            if self.now >= deadline {
                panic!(
                    "condition not reached within {max_time:?} of virtual time (seed {})\ntranscript:\n{}",
                    self.seed,
                    self.transcript_text()
                );
            }
            let left = deadline - self.now;
            self.advance(left);
        }
    }

    /// Whether both sides are closed and no bytes are in flight.
    pub fn both_closed(&self) -> bool {
        self.a.is_closed() && self.b.is_closed() && self.a_to_b.is_empty() && self.b_to_a.is_empty()
    }

    /// Closes A's transport as if the socket went away (B sees end of stream).
    pub fn drop_a(&mut self) {
        self.a_to_b.clear();
        self.a_eof_sent = true;
        self.b.eof(self.now);
    }

    /// Cuts the connection in both directions at once, as a reset or a dead network
    /// would: bytes in flight are lost and both sides see end of stream.
    pub fn cut(&mut self) {
        self.a_to_b.clear();
        self.b_to_a.clear();
        if !self.a_eof_sent {
            self.a_eof_sent = true;
            self.b.eof(self.now);
        }
        if !self.b_eof_sent {
            self.b_eof_sent = true;
            self.a.eof(self.now);
        }
    }

    /// Injects raw bytes as if A had sent them.
    pub fn inject_to_b(&mut self, bytes: &[u8]) {
        self.a_to_b.extend(bytes);
    }

    /// Injects raw bytes as if B had sent them.
    pub fn inject_to_a(&mut self, bytes: &[u8]) {
        self.b_to_a.extend(bytes);
    }

    /// Events one side reported so far, in `Debug` form.
    pub fn events(&self, side: Side) -> Vec<&str> {
        self.transcript
            .iter()
            .filter(|e| e.side == side)
            .map(|e| e.event.as_str())
            .collect()
    }

    /// The transcript as text, one event per line.
    pub fn transcript_text(&self) -> String {
        self.transcript
            .iter()
            .map(|e| format!("{:>10.3?} {:?} {}\n", e.at, e.side, e.event))
            .collect()
    }

    /// Bytes waiting in the stream from A to B.
    pub fn in_flight_to_b(&self) -> usize {
        self.a_to_b.len()
    }

    /// Bytes waiting in the stream from B to A.
    pub fn in_flight_to_a(&self) -> usize {
        self.b_to_a.len()
    }
}

fn feed<E: Endpoint>(
    stream: &mut VecDeque<u8>,
    to: &mut E,
    now: Instant,
    chunk: usize,
    sink: &mut Delivered,
) -> bool {
    if stream.is_empty() || to.is_closed() {
        // A closed endpoint reads nothing more; what it was sent is discarded, as a
        // closed socket would.
        if to.is_closed() {
            stream.clear();
        }
        return false;
    }
    let n = chunk.min(stream.len());
    // Copied out whole slices at a time: the fuzz targets run this per input.
    let (front, back) = stream.as_slices();
    let mut bytes = Vec::with_capacity(n);
    bytes.extend_from_slice(&front[..n.min(front.len())]);
    bytes.extend_from_slice(&back[..n - n.min(front.len())]);
    let mut off = 0;
    while off < bytes.len() {
        let used = to.input(now, &bytes[off..], &mut |id, data, end| {
            let buf = sink.partial.entry(id).or_default();
            buf.extend_from_slice(data);
            if end {
                let done = sink.partial.remove(&id).unwrap_or_default();
                sink.complete.push((id, done));
            }
        });
        if used == 0 {
            break;
        }
        off += used;
    }
    stream.drain(..off);
    off > 0
}
