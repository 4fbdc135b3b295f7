//! TCPCL agents over loopback for the integration tests: a plaintext configuration, a
//! connected pair, bounded waits for events and bundles, deterministic payloads and
//! readers (including ones that block or fail), and a hashing sink.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use crossbeam_channel::Receiver;
use proto_net::tcpcl::{Agent, Config, Event, ReceivedBundle, SessionHandle, SessionId};
use sha2::{Digest, Sha256};

/// The default bound on a wait in these tests.
pub const T: Duration = Duration::from_secs(30);

/// A plaintext agent configuration with short contact and SESS_TERM timeouts.
pub fn config(node: &str) -> Config {
    let mut c = Config::with_node_id(node);
    c.tls_enable = false;
    c.contact_timeout = 5.0;
    c.sess_term_timeout = 3.0;
    c
}

/// A listening agent with its event channel, and a connected, established session.
pub struct Pair {
    /// The listening (passive) agent.
    pub rx: Agent,
    /// Its events.
    pub rx_events: Receiver<Event>,
    /// The connecting (active) agent.
    pub tx: Agent,
    /// Its events.
    pub tx_events: Receiver<Event>,
    /// The active side's session.
    pub session: SessionHandle,
}

/// A session of `agent` (for a listener: its first one, once it registered it).
pub fn any_session(agent: &Agent) -> Result<SessionHandle> {
    let deadline = Instant::now() + T;
    loop {
        if let Some(h) = agent.session_handles().pop() {
            return Ok(h);
        }
        anyhow::ensure!(Instant::now() < deadline, "no session within {T:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A pair from two configurations (`rx_cfg` listens, `tx_cfg` connects); both event
/// channels are subscribed before anything happens.
pub fn pair_with(rx_cfg: Config, tx_cfg: Config) -> Result<Pair> {
    let rx = Agent::new(rx_cfg)?;
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let tx = Agent::new(tx_cfg)?;
    let tx_events = tx.events();
    let session = tx.connect(addr)?;
    session.wait_established(T)?;
    Ok(Pair {
        rx,
        rx_events,
        tx,
        tx_events,
        session,
    })
}

/// A pair of default plaintext agents (`dtn://rx/` listens, `dtn://tx/` connects).
pub fn pair() -> Result<Pair> {
    pair_with(config("dtn://rx/"), config("dtn://tx/"))
}

/// Waits (at most `within`) for `n` BundleReceived events; other events are skipped.
pub fn bundles(
    events: &Receiver<Event>,
    n: usize,
    within: Duration,
) -> Result<Vec<(SessionId, u64, ReceivedBundle)>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        let ev = events
            .recv_deadline(deadline)
            .with_context(|| format!("only {} of {n} bundles arrived", got.len()))?;
        if let Event::BundleReceived {
            session,
            transfer_id,
            bundle,
            ..
        } = ev
        {
            got.push((session, transfer_id, bundle));
        }
    }
    Ok(got)
}

/// Waits (at most `within`) for an event matching `f`, skipping the others.
pub fn wait_event(
    events: &Receiver<Event>,
    within: Duration,
    mut f: impl FnMut(&Event) -> bool,
) -> Result<Event> {
    let deadline = Instant::now() + within;
    loop {
        let ev = events
            .recv_deadline(deadline)
            .context("event did not arrive")?;
        if f(&ev) {
            return Ok(ev);
        }
    }
}

/// `len` deterministic bytes, different for each `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(31)
                .wrapping_add(seed ^ (i >> 8) as u8)
        })
        .collect()
}

/// A reader yielding `len` deterministic bytes without holding them.
pub struct Gen {
    left: u64,
    state: u64,
}

impl Gen {
    /// `len` bytes of the stream `seed` names.
    pub fn new(len: u64, seed: u64) -> Gen {
        Gen {
            left: len,
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }
}

impl Read for Gen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = self.state as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// SHA-256 of what `Gen::new(len, seed)` yields.
pub fn gen_digest(len: u64, seed: u64) -> Vec<u8> {
    let mut g = Gen::new(len, seed);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = g.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().to_vec()
}

/// A sink that hashes what it is given (clones share the state).
#[derive(Clone, Default)]
pub struct Hasher(Arc<Mutex<(Sha256, u64)>>);

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.0.update(buf);
        g.1 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Hasher {
    /// SHA-256 and length of everything written so far.
    pub fn result(&self) -> (Vec<u8>, u64) {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (g.0.clone().finalize().to_vec(), g.1)
    }
}

/// Events already waiting, without blocking.
pub fn drain(events: &Receiver<Event>) -> Vec<Event> {
    events.try_iter().collect()
}

/// Fails if `events` include the session ending (SessionTerminating or
/// SessionClosed); `side` names whose events they are.
pub fn no_close(events: &[Event], side: &str) -> Result<()> {
    for e in events {
        ensure!(
            !matches!(
                e,
                Event::SessionClosed { .. } | Event::SessionTerminating { .. }
            ),
            "{side}: {e:?}"
        );
    }
    Ok(())
}

/// A reader that yields `head`, then blocks until `gate` opens (at most 20 s), then
/// yields `tail`.
pub struct Gated {
    head: Option<Vec<u8>>,
    gate: Receiver<()>,
    tail: io::Cursor<Vec<u8>>,
    opened: bool,
}

impl Gated {
    /// The reader, and the sender that opens its gate.
    pub fn new(head: Vec<u8>, tail: Vec<u8>) -> (Gated, crossbeam_channel::Sender<()>) {
        let (open, gate) = crossbeam_channel::bounded(1);
        let g = Gated {
            head: Some(head),
            gate,
            tail: io::Cursor::new(tail),
            opened: false,
        };
        (g, open)
    }
}

impl Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(h) = &mut self.head {
            let n = h.len().min(buf.len());
            buf[..n].copy_from_slice(&h[..n]);
            h.drain(..n);
            if h.is_empty() {
                self.head = None;
            }
            if n > 0 {
                return Ok(n);
            }
        }
        if !self.opened {
            self.gate
                .recv_timeout(Duration::from_secs(20))
                .map_err(|_| io::Error::other("gate never opened"))?;
            self.opened = true;
        }
        self.tail.read(buf)
    }
}

/// A reader that yields `good` bytes, then fails after `delay`.
pub struct Fails {
    /// Bytes yielded before the failure.
    pub good: usize,
    /// How long the failing read takes.
    pub delay: Duration,
}

impl Read for Fails {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            std::thread::sleep(self.delay);
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "source broke"));
        }
        let n = self.good.min(buf.len());
        buf[..n].fill(7);
        self.good -= n;
        Ok(n)
    }
}
