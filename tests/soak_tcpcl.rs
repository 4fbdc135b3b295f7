//! Fault-injection soak of the TCPCL library over loopback (issue 11): 1,000 bundles of
//! 0 B to 8 MiB from 20 concurrent lanes of sessions (4 of them over TLS) into one
//! listening agent, each session through a proxy that may reset it mid-segment, close
//! it without a word (no SESS_TERM, no TLS close_notify) or hang it; the receiver's
//! sinks sometimes fail like a full disk, and its event consumer stalls for seconds.
//!
//! Invariants: every bundle the sender saw acknowledged in full arrived once,
//! byte-exact; nothing arrives twice or damaged; every bundle the sender submitted is
//! reported acknowledged, refused or cancelled (the typed outcome on its event
//! channel); a sink that failed never yields an acknowledgement; no partial file is
//! left behind; the listener keeps serving; threads, descriptors and memory return
//! to their level before the run. Seeded: `PROTO_SOAK_SEED` replays a run (the seed
//! is printed). Alone in its binary: the `/proc/self` counts must be its own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use proto_net::tcpcl::{
    Agent, Config, Direction, Event, IncomingTransfer, ReceivedBundle, SessionId, Sink,
};
use proto_tests::procfs::{proc_status, threads_settle_to};
use proto_tests::soak::{self, fd_count, mix, Fault, FaultProxy, Rng};
use proto_tests::tcpcl::{Gen, Hasher};
use sha2::{Digest, Sha256};

const LANES: usize = 20;
const TLS_LANES: usize = 4;
const PER_LANE: usize = 50;
const MAX_SIZE: u64 = 8 << 20;
/// The receiver's Segment MRU: big bundles travel as many segments.
const MRU: u64 = 64 << 10;
/// Share of sessions that get a proxy fault.
const FAULTY: f64 = 0.3;
/// Share of incoming transfers whose sink fails like a full disk (per mille).
const DISK_FULL_PERMILLE: u64 = 30;

/// A bundle: which sender node and transfer ID carried it.
type Key = (String, u64);

/// What the receiving side saw.
#[derive(Default)]
struct Received {
    node_of: HashMap<SessionId, String>,
    sinks: HashMap<Key, u32>,
    disk_full: HashSet<Key>,
    writers: HashMap<Key, Hasher>,
    /// Every BundleReceived: (length, SHA-256).
    delivered: HashMap<Key, Vec<(u64, Vec<u8>)>>,
    problems: Vec<String>,
    stalls: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A sink that fails like a full disk after `left` bytes, and on flush.
struct DiskFull {
    left: u64,
}

impl Write for DiskFull {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
    }
}

fn node_hash(node: &str) -> u64 {
    node.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The receiver's sink for one transfer: 3 % fail like a full disk (at a random byte),
/// a quarter stream to a file, the rest into a hashing writer.
fn choose(t: &IncomingTransfer, seed: u64, dir: &Path, rx: &Mutex<Received>) -> Sink {
    let key = (t.peer_node_id.clone(), t.transfer_id);
    let h = mix(seed, node_hash(&t.peer_node_id), t.transfer_id);
    let mut r = lock(rx);
    r.node_of.insert(t.session, t.peer_node_id.clone());
    *r.sinks.entry(key.clone()).or_default() += 1;
    if h % 1000 < DISK_FULL_PERMILLE {
        let left = t.total_len.map_or(0, |n| (h >> 16) % (n + 1));
        r.disk_full.insert(key);
        return Sink::Writer(Box::new(DiskFull { left }));
    }
    if (h >> 10).is_multiple_of(4) {
        let name: String = t
            .peer_node_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        return Sink::File(dir.join(format!("{name}-{}.bundle", t.transfer_id)));
    }
    let w = Hasher::default();
    r.writers.insert(key, w.clone());
    Sink::Writer(Box::new(w))
}

fn sha_file(p: &Path) -> Result<(u64, Vec<u8>)> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, h.finalize().to_vec()))
}

/// The receiver's application: records every bundle, and now and then (at the 100th
/// bundle, then about one in 300) stops reading events for 1–2.5 s.
fn consume(events: &crossbeam_channel::Receiver<Event>, rx: &Mutex<Received>, mut rng: Rng) {
    let mut bundles = 0u32;
    loop {
        let ev = match events.recv_timeout(Duration::from_secs(120)) {
            Ok(ev) => ev,
            Err(_) => return,
        };
        match ev {
            Event::BundleReceived {
                session,
                transfer_id,
                len,
                bundle,
            } => {
                let mut r = lock(rx);
                let Some(node) = r.node_of.get(&session).cloned() else {
                    r.problems.push(format!("{session}: bundle without a sink"));
                    continue;
                };
                let key = (node, transfer_id);
                let got = match bundle {
                    ReceivedBundle::Writer => {
                        r.writers.get(&key).map(Hasher::result).map(|(d, l)| (l, d))
                    }
                    ReceivedBundle::File(p) => {
                        let got = sha_file(&p).ok();
                        let _ = std::fs::remove_file(&p);
                        got
                    }
                    ReceivedBundle::Bytes(b) => Some((b.len() as u64, Sha256::digest(&b).to_vec())),
                };
                match got {
                    Some((l, d)) => {
                        if l != len {
                            r.problems
                                .push(format!("{key:?}: reported {len} B, stored {l} B"));
                        }
                        r.delivered.entry(key).or_default().push((l, d));
                    }
                    None => r
                        .problems
                        .push(format!("{key:?}: delivered but nothing stored")),
                }
                bundles += 1;
                if bundles == 100 || rng.below(300) == 0 {
                    r.stalls += 1;
                    drop(r);
                    std::thread::sleep(Duration::from_millis(1000 + rng.below(1500)));
                }
            }
            Event::AgentStopped => return,
            _ => {}
        }
    }
}

/// One bundle of a lane.
#[derive(Clone, Copy)]
struct Spec {
    len: u64,
    seed: u64,
}

/// The bundle's source: its deterministic bytes, hashed as the session reads them (so
/// the check needs no second pass over 8 MiB bundles).
struct Tee {
    gen: Gen,
    seen: Hasher,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.gen.read(buf)?;
        self.seen.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// What became of a submitted bundle, from the sender's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    Acked,
    Refused,
    Cancelled,
    Unreported,
}

struct Submitted {
    key: Key,
    spec: Spec,
    /// What the session read from the source.
    source: Hasher,
    outcome: Outcome,
}

#[derive(Default)]
struct LaneReport {
    bundles: Vec<Submitted>,
    sessions: u32,
    /// Sessions that ran over TLS.
    tls: u32,
    faults: HashMap<&'static str, u32>,
}

fn fault_name(f: Fault) -> &'static str {
    match f {
        Fault::None => "none",
        Fault::Reset(_) => "reset",
        Fault::Close(_) => "close",
        Fault::Hang(_) => "hang",
    }
}

/// Sends a lane's bundles, a few per session, each session through the proxy with a
/// fault or not; bundles a session could not take go to the next one.
fn lane(i: usize, mut rng: Rng, proxy: &FaultProxy, tls_ca: Option<PathBuf>) -> Result<LaneReport> {
    let mut queue: VecDeque<Spec> = (0..PER_LANE)
        .map(|_| Spec {
            len: soak::size(&mut rng, MAX_SIZE, MRU),
            seed: rng.next_u64(),
        })
        .collect();
    let mut rep = LaneReport::default();
    while !queue.is_empty() {
        ensure!(rep.sessions < 60, "lane {i}: no progress after 60 sessions");
        rep.sessions += 1;
        let node = format!("dtn://l{i}s{}/", rep.sessions);
        let take = (1 + rng.below(10) as usize).min(queue.len());
        let batch: Vec<Spec> = queue.drain(..take).collect();
        let bytes: u64 = batch.iter().map(|s| s.len + 40).sum::<u64>() + 200;
        let fault = if rng.chance(FAULTY) {
            let at = rng.below(bytes);
            match rng.below(10) {
                0 => Fault::Hang(at),
                1..=4 => Fault::Close(at),
                _ => Fault::Reset(at),
            }
        } else {
            Fault::None
        };
        *rep.faults.entry(fault_name(fault)).or_default() += 1;
        proxy.push(fault);

        let mut cfg = Config::with_node_id(node.as_str());
        cfg.tls_enable = tls_ca.is_some();
        cfg.tls_ca_file = tls_ca.clone();
        cfg.keepalive_time = 1;
        cfg.contact_timeout = 5.0;
        cfg.sess_term_timeout = 2.0;
        let agent = Agent::new(cfg)?;
        let events = agent.events();
        let collector = std::thread::spawn(move || {
            let mut v = Vec::new();
            while let Ok(ev) = events.recv_timeout(Duration::from_secs(60)) {
                let end = matches!(ev, Event::AgentStopped);
                v.push(ev);
                if end {
                    break;
                }
            }
            v
        });
        let mut sent: Vec<(u64, Spec, Hasher)> = Vec::new();
        let mut unsent: Vec<Spec> = Vec::new();
        match agent
            .connect(proxy.addr())
            .and_then(|s| s.wait_established(Duration::from_secs(10)).map(|_| s))
        {
            Ok(s) => {
                for (n, spec) in batch.iter().enumerate() {
                    let seen = Hasher::default();
                    let tee = Tee {
                        gen: Gen::new(spec.len, spec.seed),
                        seen: seen.clone(),
                    };
                    match s.send_reader(tee, Some(spec.len)) {
                        Ok(tid) => sent.push((tid, *spec, seen)),
                        Err(_) => {
                            unsent.extend_from_slice(&batch[n..]);
                            break;
                        }
                    }
                }
                let _ = s.wait_sent(Duration::from_secs(30));
            }
            Err(_) => unsent = batch,
        }
        for spec in unsent.into_iter().rev() {
            queue.push_front(spec);
        }
        agent.shutdown();
        if !agent.wait_stopped(Duration::from_secs(15)) {
            agent.stop();
        }
        drop(agent);
        let evs = collector
            .join()
            .map_err(|_| anyhow::anyhow!("collector panicked"))?;
        let mut outcome: HashMap<u64, Outcome> = HashMap::new();
        rep.tls += u32::from(
            evs.iter()
                .any(|e| matches!(e, Event::TlsEstablished { .. })),
        );
        for ev in &evs {
            let (tid, o) = match ev {
                Event::TransferFinished {
                    direction: Direction::Outgoing,
                    transfer_id,
                    ..
                } => (*transfer_id, Outcome::Acked),
                Event::TransferRefused {
                    direction: Direction::Outgoing,
                    transfer_id,
                    ..
                } => (*transfer_id, Outcome::Refused),
                Event::TransferCancelled {
                    direction: Direction::Outgoing,
                    transfer_id,
                    ..
                } => (*transfer_id, Outcome::Cancelled),
                _ => continue,
            };
            let prev = outcome.insert(tid, o);
            ensure!(
                prev.is_none(),
                "{node} transfer {tid}: reported {prev:?} and then {o:?}"
            );
        }
        for (tid, spec, source) in sent {
            rep.bundles.push(Submitted {
                key: (node.clone(), tid),
                spec,
                source,
                outcome: outcome.get(&tid).copied().unwrap_or(Outcome::Unreported),
            });
        }
    }
    Ok(rep)
}

fn tls_files(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let ca = CertFactory::new_ca("proto soak CA")?;
    let (cert, key) = ca.issue(&LeafSpec::node("dtn://rx/"))?;
    let paths = (dir.join("ca.pem"), dir.join("rx.pem"), dir.join("rx.key"));
    std::fs::write(&paths.0, ca.ca_pem())?;
    std::fs::write(&paths.1, cert)?;
    std::fs::write(&paths.2, key)?;
    Ok(paths)
}

#[test]
fn soak_with_faults_loses_nothing_acknowledged() -> Result<()> {
    let started = Instant::now();
    let seed = soak::seed("soak_tcpcl");
    let mut rng = Rng::new(seed);
    let dir = std::env::temp_dir().join(format!("proto-soak-tcpcl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let recv_dir = dir.join("recv");
    std::fs::create_dir_all(&recv_dir)?;
    let (ca, cert, key) = tls_files(&dir)?;

    let threads0 = proc_status("Threads")?;
    let fds0 = fd_count(std::process::id());
    let rss0 = proc_status("VmRSS")?;

    let mut cfg = Config::with_node_id("dtn://rx/");
    cfg.tls_ca_file = Some(ca.clone());
    cfg.tls_cert_file = Some(cert);
    cfg.tls_key_file = Some(key);
    cfg.keepalive_time = 1;
    cfg.contact_timeout = 5.0;
    cfg.sess_term_timeout = 2.0;
    cfg.segment_size_mru = MRU;
    cfg.event_capacity = 64;
    let rx_agent = Agent::new(cfg)?;
    let events = rx_agent.events();
    let received = Arc::new(Mutex::new(Received::default()));
    {
        let (received, recv_dir) = (received.clone(), recv_dir.clone());
        rx_agent.set_sink_chooser(move |t| choose(t, seed, &recv_dir, &received));
    }
    let addr: SocketAddr = rx_agent.listen("127.0.0.1:0")?;
    let consumer = {
        let (received, crng) = (received.clone(), rng.fork(0xC0));
        std::thread::spawn(move || consume(&events, &received, crng))
    };

    let proxy = Arc::new(FaultProxy::start(addr));
    let lanes: Vec<_> = (0..LANES)
        .map(|i| {
            let (lrng, proxy) = (rng.fork(i as u64), proxy.clone());
            let tls = (i < TLS_LANES).then(|| ca.clone());
            std::thread::spawn(move || lane(i, lrng, &proxy, tls))
        })
        .collect();
    let mut reports = Vec::new();
    for (i, l) in lanes.into_iter().enumerate() {
        reports.push(
            l.join()
                .map_err(|_| anyhow::anyhow!("lane {i} panicked"))?
                .with_context(|| format!("lane {i}"))?,
        );
    }
    let sending = started.elapsed();

    // The listener still serves: a clean session straight to it.
    let probe = {
        let mut c = Config::with_node_id("dtn://probe/");
        c.tls_enable = false;
        Agent::new(c)?
    };
    let s = probe.connect(addr)?;
    s.wait_established(Duration::from_secs(10))?;
    for len in [0, MRU, MRU + 1] {
        s.send_reader(Gen::new(len, len), Some(len))?;
    }
    s.wait_sent(Duration::from_secs(20))
        .context("the listener stopped serving after the faults")?;
    probe.shutdown();
    ensure!(
        probe.wait_stopped(Duration::from_secs(10)),
        "probe did not stop"
    );
    drop(probe);

    rx_agent.shutdown();
    if !rx_agent.wait_stopped(Duration::from_secs(20)) {
        rx_agent.stop();
    }
    drop(rx_agent);
    consumer
        .join()
        .map_err(|_| anyhow::anyhow!("consumer panicked"))?;
    drop(proxy);

    // ----- invariants --------------------------------------------------------------
    let r = lock(&received);
    ensure!(r.problems.is_empty(), "receiver: {:#?}", r.problems);
    let mut tally: HashMap<Outcome, u32> = HashMap::new();
    let (mut total, mut acked_bytes, mut delivered_unacked) = (0usize, 0u64, 0u32);
    let mut faults: HashMap<&str, u32> = HashMap::new();
    let (mut sessions, mut tls) = (0, 0);
    let mut bad = Vec::new();
    for rep in &reports {
        sessions += rep.sessions;
        tls += rep.tls;
        for (k, v) in &rep.faults {
            *faults.entry(k).or_default() += v;
        }
        for b in &rep.bundles {
            total += 1;
            *tally.entry(b.outcome).or_default() += 1;
            let got = r
                .delivered
                .get(&b.key)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if got.len() > 1 {
                bad.push(format!("{:?}: delivered {} times", b.key, got.len()));
            }
            // Delivered means the session read the whole source: compare with that.
            let (digest, read) = b.source.result();
            let want = (b.spec.len, digest);
            if !got.is_empty() && read != b.spec.len {
                bad.push(format!(
                    "{:?}: delivered, but {read} of {} B read",
                    b.key, b.spec.len
                ));
            }
            if got.iter().any(|g| *g != want) {
                bad.push(format!(
                    "{:?}: delivered damaged ({} B sent)",
                    b.key, b.spec.len
                ));
            }
            match b.outcome {
                Outcome::Acked => {
                    acked_bytes += b.spec.len;
                    if got.is_empty() {
                        bad.push(format!("{:?}: acknowledged but never delivered", b.key));
                    }
                    if r.disk_full.contains(&b.key) {
                        bad.push(format!("{:?}: acknowledged though its sink failed", b.key));
                    }
                }
                Outcome::Unreported => {
                    bad.push(format!(
                        "{:?}: neither acknowledged nor reported failed",
                        b.key
                    ));
                }
                Outcome::Refused | Outcome::Cancelled => {
                    delivered_unacked += u32::from(!got.is_empty())
                }
            }
        }
    }
    for (k, n) in &r.sinks {
        if *n > 1 {
            bad.push(format!("{k:?}: {n} sinks for one transfer"));
        }
    }
    let left: Vec<_> = std::fs::read_dir(&recv_dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    if !left.is_empty() {
        bad.push(format!("files left behind (partial bundles): {left:?}"));
    }
    eprintln!(
        "soak_tcpcl: seed {seed:#x}: {total} bundles in {sessions} sessions ({tls} over TLS; \
         {faults:?} proxy faults, \
         {} disk-full sinks, {} consumer stalls); outcomes {tally:?}; {acked_bytes} bytes \
         acknowledged; {delivered_unacked} delivered but not acknowledged; sending took {:.1} s",
        r.disk_full.len(),
        r.stalls,
        sending.as_secs_f64()
    );
    ensure!(
        bad.is_empty(),
        "seed {seed:#x}: {} violations: {:#?}",
        bad.len(),
        bad
    );
    ensure!(total == LANES * PER_LANE, "{total} bundles submitted");
    ensure!(tls > 0, "no session ran over TLS");
    ensure!(
        faults.get("none") < Some(&sessions),
        "no proxy fault struck"
    );
    ensure!(
        !r.disk_full.is_empty() && r.stalls > 0,
        "no sink failed or no stall"
    );
    drop(r);

    // ----- no leaks ----------------------------------------------------------------
    let threads = threads_settle_to(threads0, Duration::from_secs(10))?;
    ensure!(
        threads <= threads0,
        "threads: {threads0} before, {threads} after"
    );
    let fds = fd_count(std::process::id());
    ensure!(fds <= fds0, "file descriptors: {fds0} before, {fds} after");
    let rss = proc_status("VmRSS")?;
    eprintln!(
        "soak_tcpcl: threads {threads0} -> {threads}, fds {fds0} -> {fds}, RSS {rss0} -> {rss} KiB, \
         total {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ensure!(
        rss < rss0 + (192 << 10),
        "RSS grew from {rss0} to {rss} KiB"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
