//! TCPCL scenarios: one big bundle, bundle ping-pong, session setup rate and many
//! concurrent sessions, each against its plain-TCP (or, with `--tls`, plain rustls)
//! baseline.

use super::idle::status_bytes;
use super::report::{median_p99, Kind, Outcome};
use super::tcp::{self, TlsPair};
use anyhow::{bail, Context, Result};
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use proto_net::tcpcl::tls::{TlsContext, TlsVersion};
use proto_net::tcpcl::{Agent, Config, Event, ReceivedBundle, SessTermReason, SessionHandle, Sink};
use std::collections::hash_map::{Entry, HashMap};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const NODE_RX: &str = "dtn://bench-rx/";
pub(crate) const NODE_TX: &str = "dtn://bench-tx/";
/// Bound on every wait for the peer (a stuck run fails instead of hanging).
pub(crate) const T: Duration = Duration::from_secs(120);

/// What the TCPCL scenarios share: the TLS credentials when run with `--tls`.
pub(crate) struct Setup {
    tls: Option<Tls>,
    /// The TCPCL version the sender speaks (3: the `tcpcl3-*` scenarios, plaintext
    /// only; the receiver serves both versions as every listener does).
    version: u8,
}

struct Tls {
    rx: TlsContext,
    tx: TlsContext,
}

impl Setup {
    /// Plain TCP, or TLS 1.3 with a fresh CA and one certificate per node.
    pub(crate) fn new(tls: bool) -> Result<Setup> {
        if !tls {
            return Ok(Setup {
                tls: None,
                version: 4,
            });
        }
        let ca = CertFactory::new_ca("proto bench CA")?;
        let ctx = |node: &str| -> Result<TlsContext> {
            let (cert, key) = ca.issue(&LeafSpec::node(node))?;
            Ok(TlsContext::from_pem(
                ca.ca_pem().as_bytes(),
                Some(cert.as_bytes()),
                Some(key.as_bytes()),
                TlsVersion::Tls13,
            )?)
        };
        Ok(Setup {
            tls: Some(Tls {
                rx: ctx(NODE_RX)?,
                tx: ctx(NODE_TX)?,
            }),
            version: 4,
        })
    }

    /// Plain TCP with a TCPCLv3 sender (RFC 7242 has no TLS): the `tcpcl3-*`
    /// scenarios, against the same baselines.
    pub(crate) fn v3() -> Setup {
        Setup {
            tls: None,
            version: 3,
        }
    }

    pub(crate) fn name(&self, scenario: &str) -> String {
        if self.version == 3 {
            return scenario.replacen("tcpcl-", "tcpcl3-", 1);
        }
        if self.tls.is_some() {
            format!("{scenario}-tls")
        } else {
            scenario.to_owned()
        }
    }

    /// The same credentials for the rustls baselines.
    fn pair(&self) -> Option<TlsPair> {
        self.tls.as_ref().map(|t| TlsPair {
            server: t.rx.clone(),
            client: t.tx.clone(),
        })
    }

    pub(crate) fn agent(&self, node: &str) -> Result<Agent> {
        let mut c = Config::with_node_id(node);
        c.contact_timeout = 30.0;
        c.sess_term_timeout = 30.0;
        c.tcpcl_version = self.version;
        let ctx = match &self.tls {
            Some(t) => {
                c.tls_enable = true;
                c.require_tls = Some(true);
                Some(if node == NODE_RX {
                    t.rx.clone()
                } else {
                    t.tx.clone()
                })
            }
            None => {
                c.tls_enable = false;
                None
            }
        };
        Ok(Agent::with_tls(c, ctx)?)
    }
}

/// The agent's default segment size: the baselines write in chunks of this size.
fn segment_size() -> usize {
    let c = Config::default();
    usize::try_from(c.segment_size_tx_initial.min(c.segment_size_tx_max)).unwrap_or(64 << 10)
}

/// A sink that counts what it is given and stores nothing.
struct Counter(Arc<AtomicU64>);

impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A receiving agent whose incoming bundles go to a shared byte counter.
fn counting_receiver(setup: &Setup) -> Result<(Agent, Arc<AtomicU64>, std::net::SocketAddr)> {
    let rx = setup.agent(NODE_RX)?;
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    rx.set_sink_chooser(move |_| Sink::Writer(Box::new(Counter(g.clone()))));
    let addr = rx.listen("127.0.0.1:0")?;
    Ok((rx, got, addr))
}

/// A bundle source that yields `left` bytes of a fixed pattern.
struct Pattern {
    left: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = usize::try_from(self.left).map_or(buf.len(), |l| l.min(buf.len()));
        buf[..n].fill(0xa5);
        self.left -= n as u64;
        Ok(n)
    }
}

pub(crate) fn stop(agents: &[&Agent]) {
    for a in agents {
        a.stop();
    }
    for a in agents {
        a.wait_sessions_closed(Duration::from_secs(5));
    }
}

/// `tcpcl-bulk`: one bundle of `total` bytes (held in memory by the sender) over one
/// session, into a sink that only counts.
pub(crate) fn bulk(setup: &Setup, total: u64) -> Result<Outcome> {
    let (rx, got, addr) = counting_receiver(setup)?;
    let tx = setup.agent(NODE_TX)?;
    let s = tx.connect(addr)?;
    s.wait_established(T)?;
    let data = vec![0xa5u8; usize::try_from(total).context("--bytes too large")?];
    let start = Instant::now();
    s.send_bytes(data)?;
    s.wait_sent(T * 10).context("bulk bundle")?;
    let ours = total as f64 / start.elapsed().as_secs_f64();
    let received = got.load(Ordering::Relaxed);
    stop(&[&tx, &rx]);
    anyhow::ensure!(
        received == total,
        "receiver counted {received} of {total} bytes"
    );
    let seg = segment_size();
    let baseline = total as f64 / tcp::bulk_over(total, seg, setup.pair().as_ref())?.as_secs_f64();
    Ok(Outcome {
        scenario: setup.name("tcpcl-bulk"),
        kind: Kind::Throughput,
        ours,
        baseline,
        extra: vec![("bytes", total as f64), ("segment", seg as f64)],
        target: Some((if setup.tls.is_some() { 0.85 } else { 0.90 }, true)),
        trials: vec![],
    })
}

/// `tcpcl-rtt`: `rounds` ping-pongs of a 64-byte bundle; the receiver's application
/// sends a 64-byte bundle back on each `BundleReceived`. Measured from `send_bytes`
/// to the reply's `BundleReceived`.
pub(crate) fn rtt(setup: &Setup, rounds: usize) -> Result<Outcome> {
    let rx = setup.agent(NODE_RX)?;
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let responder = {
        let rx = rx.clone();
        thread::spawn(move || -> Result<()> {
            let mut handles: HashMap<_, SessionHandle> = HashMap::new();
            let mut answered = 0;
            while answered < rounds {
                let ev = rx_events.recv_timeout(T).context("responder: no bundle")?;
                if let Event::BundleReceived {
                    session,
                    bundle: ReceivedBundle::Bytes(b),
                    ..
                } = ev
                {
                    let h = match handles.entry(session) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => {
                            e.insert(rx.session(session).context("unknown session")?)
                        }
                    };
                    h.send_bytes(b)?;
                    answered += 1;
                }
            }
            Ok(())
        })
    };
    let tx = setup.agent(NODE_TX)?;
    let tx_events = tx.events();
    let s = tx.connect(addr)?;
    s.wait_established(T)?;
    let msg = [7u8; 64];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        s.send_bytes(msg)?;
        loop {
            match tx_events.recv_timeout(T).context("no reply bundle")? {
                Event::BundleReceived { len: 64, .. } => break,
                Event::BundleReceived { len, .. } => bail!("reply of {len} bytes"),
                _ => {}
            }
        }
        samples.push(t.elapsed().as_secs_f64());
    }
    responder
        .join()
        .map_err(|_| anyhow::anyhow!("responder panicked"))??;
    stop(&[&tx, &rx]);
    let (median, p99) = median_p99(&mut samples);
    let mut base = tcp::ping_pong_over(rounds, 64, setup.pair().as_ref())?;
    let (b_median, b_p99) = median_p99(&mut base);
    Ok(Outcome {
        scenario: setup.name("tcpcl-rtt"),
        kind: Kind::Latency,
        ours: median,
        baseline: b_median,
        extra: vec![
            ("p99_s", p99),
            ("baseline_p99_s", b_p99),
            ("rounds", rounds as f64),
        ],
        // The event path costs up to three wake-ups per direction (socket → session
        // thread, session thread → application, application → session thread) against
        // the socket's one.
        target: Some((4.0, false)),
        trials: vec![],
    })
}

/// `tcpcl-rtt-handler`: `rounds` ping-pongs of a 64-byte bundle answered on the
/// session threads: each side's [`proto_net::tcpcl::Handler`] sends the next bundle
/// from its `BundleReceived`, so no application thread is involved. Mean time per
/// round trip, against the mean of a TCP ping-pong.
pub(crate) fn rtt_handler(setup: &Setup, rounds: usize) -> Result<Outcome> {
    let rx = setup.agent(NODE_RX)?;
    rx.set_handler(|ev: &Event, reply: &mut proto_net::tcpcl::Reply<'_>| {
        if let Event::BundleReceived {
            bundle: ReceivedBundle::Bytes(b),
            ..
        } = ev
        {
            reply.send_bytes(b.clone());
        }
    });
    let addr = rx.listen("127.0.0.1:0")?;
    let tx = setup.agent(NODE_TX)?;
    let left = Arc::new(AtomicU64::new(rounds as u64));
    let (done_tx, done) = crossbeam_channel::bounded::<()>(1);
    {
        let left = left.clone();
        tx.set_handler(move |ev: &Event, reply: &mut proto_net::tcpcl::Reply<'_>| {
            if let Event::BundleReceived {
                bundle: ReceivedBundle::Bytes(b),
                ..
            } = ev
            {
                if left.fetch_sub(1, Ordering::AcqRel) > 1 {
                    reply.send_bytes(b.clone());
                } else {
                    let _ = done_tx.try_send(());
                }
            }
        });
    }
    let s = tx.connect(addr)?;
    s.wait_established(T)?;
    let start = Instant::now();
    s.send_bytes([7u8; 64])?;
    done.recv_timeout(T).context("ping-pong did not finish")?;
    let ours = start.elapsed().as_secs_f64() / rounds as f64;
    stop(&[&tx, &rx]);
    let base = tcp::ping_pong_over(rounds, 64, setup.pair().as_ref())?;
    let baseline = base.iter().sum::<f64>() / base.len().max(1) as f64;
    Ok(Outcome {
        scenario: setup.name("tcpcl-rtt-handler"),
        kind: Kind::Latency,
        ours,
        baseline,
        extra: vec![("rounds", rounds as f64)],
        target: Some((1.3, false)),
        trials: vec![],
    })
}

/// `tcpcl-sessions`: sessions per second, each connect + contact headers (+ TLS) +
/// SESS_INIT exchange + SESS_TERM exchange + close, one after another; against a
/// TCPCL-shaped baseline (TCP connect, a thread per accepted connection, three round
/// trips, close), since the protocol itself needs three round trips.
pub(crate) fn sessions(setup: &Setup, count: usize) -> Result<Outcome> {
    let rx = setup.agent(NODE_RX)?;
    let addr = rx.listen("127.0.0.1:0")?;
    let tx = setup.agent(NODE_TX)?;
    let start = Instant::now();
    for _ in 0..count {
        let s = tx.connect(addr)?;
        s.wait_established(T)?;
        s.terminate(SessTermReason::UNKNOWN)?;
        let r = s.wait_closed(T)?;
        anyhow::ensure!(r.is_graceful(), "session closed with {r}");
    }
    let ours = count as f64 / start.elapsed().as_secs_f64();
    stop(&[&tx, &rx]);
    let pair = setup.pair();
    let baseline = tcp::tcpcl_shaped_connects(count, pair.as_ref())?;
    let connect_rate = tcp::connects_over(count, pair.as_ref())?;
    Ok(Outcome {
        scenario: setup.name("tcpcl-sessions"),
        kind: Kind::Rate,
        ours,
        baseline,
        extra: vec![
            ("sessions", count as f64),
            // The earlier baseline (connect + one round trip + close), kept for
            // comparison with older figures.
            ("connect_rtt_rate", connect_rate),
            ("ratio_vs_connect_rtt", ours / connect_rate),
        ],
        target: Some((0.67, true)),
        trials: vec![],
    })
}

/// Resets the process's peak RSS to its current RSS (Linux ≥ 4.0); false if refused.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `tcpcl-many`: `conns` concurrent sessions, each sending `per` bundles of `size`
/// bytes (streamed from a reader), all at once; aggregate throughput and the process's
/// peak RSS. The plain-TCP figure is the same bytes over as many connections.
pub(crate) fn many(setup: &Setup, conns: usize, per: usize, size: u64) -> Result<Outcome> {
    let reset = reset_peak_rss();
    let rss_before = status_bytes("VmRSS:").unwrap_or(0.0);
    let (rx, got, addr) = counting_receiver(setup)?;
    let tx = setup.agent(NODE_TX)?;
    let mut handles = Vec::with_capacity(conns);
    for _ in 0..conns {
        handles.push(tx.connect(addr)?);
    }
    for h in &handles {
        h.wait_established(T)?;
    }
    let barrier = Arc::new(std::sync::Barrier::new(conns + 1));
    let senders: Vec<_> = handles
        .into_iter()
        .map(|h| {
            let barrier = barrier.clone();
            thread::spawn(move || -> Result<()> {
                barrier.wait();
                for _ in 0..per {
                    h.send_reader(Pattern { left: size }, Some(size))?;
                }
                h.wait_sent(T * 5)?;
                Ok(())
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for s in senders {
        s.join()
            .map_err(|_| anyhow::anyhow!("sender thread panicked"))??;
    }
    let elapsed = start.elapsed();
    let peak = status_bytes("VmHWM:").unwrap_or(0.0);
    let total = size * (per * conns) as u64;
    let received = got.load(Ordering::Relaxed);
    stop(&[&tx, &rx]);
    anyhow::ensure!(
        received == total,
        "receivers counted {received} of {total} bytes"
    );
    let ours = total as f64 / elapsed.as_secs_f64();
    let baseline = tcp::many(
        conns,
        size * per as u64,
        segment_size(),
        setup.pair().as_ref(),
    )?;
    let mut extra = vec![
        ("sessions", conns as f64),
        ("bundles", (conns * per) as f64),
        ("bytes", total as f64),
    ];
    if reset {
        extra.push(("peak_rss_mib", peak / f64::from(1 << 20)));
        extra.push(("rss_before_mib", rss_before / f64::from(1 << 20)));
    }
    Ok(Outcome {
        scenario: setup.name("tcpcl-many"),
        kind: Kind::Throughput,
        ours,
        baseline,
        extra,
        // Throughput ≥ 0.5 of the same bytes over as many TCP connections; the memory
        // target (peak RSS ≤ 64 MiB) is checked from `peak_rss_mib`.
        target: Some((0.5, true)),
        trials: vec![],
    })
}
