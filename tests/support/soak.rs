//! Fault-injection soak helpers: a seeded random source that can be replayed
//! (`PROTO_SOAK_SEED`), the soak's size distribution, and a TCP proxy that cuts a
//! connection at a chosen byte (reset, close without a word, or hang), so faults land
//! at random points of real loopback conversations.

// Test helpers fail the test that called them by panicking, with a message.
#![allow(clippy::panic, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// SplitMix64: small, fast and good enough to pick sizes and faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An independent generator for a named part of the run (a lane, a session).
    pub fn fork(&mut self, salt: u64) -> Rng {
        Rng::new(self.next_u64() ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93))
    }
}

/// A stateless hash of `(seed, a, b)`: decisions the receiving side makes per
/// transfer, the same whatever order the sessions run in.
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut r = Rng::new(seed ^ a.rotate_left(17) ^ b.wrapping_mul(0x2545_F491_4F6C_DD1D));
    r.next_u64()
}

/// The run's seed: `PROTO_SOAK_SEED` (decimal or 0x-hex) to replay a run, else (unset
/// or empty) one from the clock. Printed, so a failing run names the seed that replays it.
pub fn seed(test: &str) -> u64 {
    let s = match std::env::var("PROTO_SOAK_SEED") {
        Ok(v) if !v.trim().is_empty() => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("PROTO_SOAK_SEED={v:?} is not a number"))
        }
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    eprintln!("{test}: seed {s:#x} (replay with PROTO_SOAK_SEED={s:#x})");
    s
}

/// The soak's bundle sizes, 0 B to `max`: 5 % empty, 10 % at the edges of one
/// segment (`mru - 1`, `mru`, `mru + 1`), the rest log-uniform over 1 B..=`max` (as
/// many bundles of 1–10 B as of 1–10 MiB' worth of decades: mostly small ones, a few
/// big ones; the mean is about `max / ln(max)`).
pub fn size(rng: &mut Rng, max: u64, mru: u64) -> u64 {
    let p = rng.unit();
    if p < 0.05 {
        0
    } else if p < 0.15 {
        (mru - 1 + rng.below(3)).min(max)
    } else {
        let ln = (max as f64).ln() * rng.unit();
        (ln.exp() as u64).clamp(1, max)
    }
}

/// How the proxy harms one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards everything.
    None,
    /// After forwarding this many client-to-server bytes, resets both connections
    /// (SO_LINGER 0: an RST to each side, no FIN).
    Reset(u64),
    /// After this many client-to-server bytes, closes both connections in an orderly
    /// way (FIN), without any TLS close_notify or SESS_TERM.
    Close(u64),
    /// After this many client-to-server bytes, stops reading and forwarding in both
    /// directions (a peer that hung) for `HANG_HOLD`, then resets both.
    Hang(u64),
}

/// How long a hung connection is held before the proxy resets it.
pub const HANG_HOLD: Duration = Duration::from_secs(5);

/// A proxy for one upstream address: each accepted connection takes the next fault
/// from its queue (none when the queue is empty).
pub struct FaultProxy {
    addr: SocketAddr,
    faults: Sender<Fault>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FaultProxy {
    /// A proxy on an ephemeral loopback port forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let (faults, queue) = crossbeam_channel::unbounded::<Fault>();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (stop, conns) = (stop.clone(), conns.clone());
            std::thread::spawn(move || accept_loop(&listener, upstream, &queue, &stop, &conns))
        };
        FaultProxy {
            addr,
            faults,
            stop,
            accept: Some(accept),
            conns,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fault for the next accepted connection.
    pub fn push(&self, f: Fault) {
        let _ = self.faults.send(f);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for c in conns {
            let _ = c.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    upstream: SocketAddr,
    queue: &Receiver<Fault>,
    stop: &AtomicBool,
    conns: &Mutex<Vec<JoinHandle<()>>>,
) {
    for c in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(client) = c else { continue };
        let fault = queue.try_recv().unwrap_or(Fault::None);
        let t = std::thread::spawn(move || {
            if let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) {
                relay(client, server, fault);
            }
        });
        let mut g = conns.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|h| !h.is_finished());
        g.push(t);
    }
}

/// Forwards both ways until either side closes or the fault strikes.
fn relay(client: TcpStream, server: TcpStream, fault: Fault) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // Server to client: plain forwarding until the fault freezes or resets the
    // connection (then nothing more is forwarded, and no FIN precedes the RST).
    let harmed = Arc::new(AtomicBool::new(false));
    let back = {
        let harmed = harmed.clone();
        std::thread::spawn(move || {
            let (mut from, mut to) = (s2, c2);
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match from.read(&mut buf) {
                    Ok(n) if n > 0 && !harmed.load(Ordering::Acquire) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            if !harmed.load(Ordering::Acquire) {
                let _ = to.shutdown(Shutdown::Write);
            }
        })
    };
    let limit = match fault {
        Fault::None => u64::MAX,
        Fault::Reset(n) | Fault::Close(n) | Fault::Hang(n) => n,
    };
    let (mut from, mut to) = (&client, &server);
    let mut done = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    let struck = loop {
        let room = usize::try_from(limit - done)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if room == 0 {
            break true;
        }
        match from.read(&mut buf[..room]) {
            Ok(0) | Err(_) => break false,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break false;
                }
                done += n as u64;
            }
        }
    };
    match (struck, fault) {
        (false, _) | (_, Fault::None) => {
            let _ = server.shutdown(Shutdown::Write);
        }
        (true, Fault::Close(_)) => {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
        (true, Fault::Hang(_)) => {
            // Stops the return direction too: nothing moves either way.
            harmed.store(true, Ordering::Release);
            let until = Instant::now() + HANG_HOLD;
            while Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            reset(&client, &server);
        }
        (true, Fault::Reset(_)) => {
            harmed.store(true, Ordering::Release);
            reset(&client, &server);
        }
    }
    let _ = back.join();
}

/// Makes the last close of both sockets send an RST, and wakes the other direction's
/// thread so it lets go of its handles.
fn reset(client: &TcpStream, server: &TcpStream) {
    for s in [client, server] {
        let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        let _ = s.shutdown(Shutdown::Read);
    }
}

/// Number of open file descriptors of process `pid` (`/proc/PID/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// A field of `/proc/PID/status` (`Threads`, `VmRSS` in KiB, ...).
pub fn status_of(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
