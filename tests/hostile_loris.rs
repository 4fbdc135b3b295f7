//! Slow-loris against the real listeners (issue 11): 2,000 connections that each send
//! one more byte of a TCPCL contact header (`proto tcpcl listen`) or of a TPKT/CR
//! (`proto cotp listen`) every two seconds, against the default caps (`max_sessions`
//! 1024, `--max-connections` 256). A good client must still be served within a
//! second, each slow connection must be closed by the contact / handshake timeout, and
//! the listener's threads and memory must stay bounded (read from `/proc/PID`). The
//! rule behind it, at the library: at `max_sessions`, the oldest incoming session still
//! in its contact phase gives way to a newcomer; established ones never do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proto_net::cotp::{ConnectOptions, Connection};
use proto_net::tcpcl::{Agent, Config};
use proto_tests::child::ChildGuard;
use proto_tests::cli::{cotp_listen, tcpcl_listen};
use proto_tests::procfs::raise_fd_limit;
use proto_tests::soak::{fd_count, status_of};

const LORIS: usize = 2000;
const TICK: Duration = Duration::from_secs(2);
/// How fast a good client must be served.
const SERVED: Duration = Duration::from_secs(1);

/// Bytes a TCPCL loris trickles: a contact header, then a SESS_INIT.
const TCPCL_BYTES: &[u8] = b"dtn!\x04\x00\x07\x00\x3c\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x04dtn:";
/// Bytes a COTP loris trickles: a TPKT header, then a CR TPDU.
const COTP_BYTES: &[u8] =
    b"\x03\x00\x00\x16\x11\xe0\x00\x00\x00\x01\x00\xc1\x02\x00\x00\xc2\x02\x00\x01\xc0\x01\x0a";

/// Connections that send one more byte every [`TICK`], on a thread of their own.
struct Loris {
    alive: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Loris {
    fn start(addr: SocketAddr, n: usize, bytes: &'static [u8]) -> Loris {
        let mut conns: Vec<Option<TcpStream>> = (0..n)
            .map(|_| {
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
                s.set_nonblocking(true).ok()?;
                Some(s)
            })
            .collect();
        let alive = Arc::new(AtomicUsize::new(conns.iter().flatten().count()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (alive, stop) = (alive.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) {
                    let byte = [bytes[i.min(bytes.len() - 1)]];
                    i += 1;
                    for c in &mut conns {
                        if c.as_mut().is_some_and(|s| !poke(s, &byte)) {
                            *c = None;
                        }
                    }
                    alive.store(conns.iter().flatten().count(), Ordering::Release);
                    let next = Instant::now() + TICK;
                    while Instant::now() < next && !stop.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        };
        Loris {
            alive,
            stop,
            thread: Some(thread),
        }
    }

    fn alive(&self) -> usize {
        self.alive.load(Ordering::Acquire)
    }
}

impl Drop for Loris {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads what the listener sent (its contact header), then sends one byte; false once
/// the listener closed the connection.
fn poke(s: &mut TcpStream, byte: &[u8]) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    !matches!(s.write(byte), Err(e) if e.kind() != ErrorKind::WouldBlock)
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

/// Threads, descriptors and resident KiB of the listener.
fn usage(l: &ChildGuard) -> (u64, usize, u64) {
    (
        status_of(l.id(), "Threads"),
        fd_count(l.id()),
        status_of(l.id(), "VmRSS"),
    )
}

fn fds_or_skip() -> bool {
    let limit = raise_fd_limit(8192).unwrap_or(0);
    // The loris ends here, the listener's ends in the child (which inherits the limit).
    limit >= LORIS as u64 + 512
}

/// The listener's usage once its thread count settled to `threads` (bounded wait).
fn settled(l: &ChildGuard, threads: u64) -> (u64, usize, u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while usage(l).0 > threads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    usage(l)
}

/// Waits (bounded) until every loris connection was closed by the listener.
fn all_closed(loris: &Loris, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    while loris.alive() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    loris.alive()
}

/// The end of each loris test: every loris connection is closed by the listener's
/// handshake timeout `within`, the listener's threads and RSS stayed bounded at `peak`
/// (at most `max_extra_threads` more than `before`, 256 MiB more RSS), and threads and
/// descriptors return to their level.
fn assert_closed_and_released(
    what: &str,
    listener: &ChildGuard,
    loris: &Loris,
    within: Duration,
    before: (u64, usize, u64),
    peak: (u64, usize, u64),
    max_extra_threads: u64,
) {
    let left = all_closed(loris, within);
    assert_eq!(
        left, 0,
        "{what}: loris connections still open after the handshake timeout"
    );
    let after = settled(listener, before.0 + 4);
    eprintln!("{what}: listener after: {after:?}");
    assert!(
        peak.0 <= before.0 + max_extra_threads,
        "{what}: threads {before:?} -> {peak:?}"
    );
    assert!(
        peak.2 <= before.2 + (256 << 10),
        "{what}: RSS {before:?} -> {peak:?}"
    );
    assert!(
        after.0 <= before.0 + 4,
        "{what}: threads not released: {before:?} -> {after:?}"
    );
    assert!(
        after.1 <= before.1 + 4,
        "{what}: fds not released: {before:?} -> {after:?}"
    );
}

#[test]
fn tcpcl_slow_loris_does_not_starve_a_good_client() {
    assert!(
        fds_or_skip(),
        "the open-file limit is too low for {LORIS} connections"
    );
    let contact_timeout = 8;
    let (listener, addr) = tcpcl_listen(
        bin(),
        &[
            "--node-id",
            "dtn://rx/",
            "--contact-timeout",
            &contact_timeout.to_string(),
        ],
    );
    let addr: SocketAddr = addr.parse().unwrap();
    let before = usage(&listener);
    let t = Instant::now();
    let loris = Loris::start(addr, LORIS, TCPCL_BYTES);
    // The contact timeout runs from each connection's accept: from here for the last.
    let start = Instant::now();
    eprintln!("tcpcl: {LORIS} loris connections opened in {:?}", start - t);
    std::thread::sleep(Duration::from_millis(1500));
    let peak = usage(&listener);

    let mut cfg = Config::with_node_id("dtn://good/");
    cfg.tls_enable = false;
    let good = Agent::new(cfg).unwrap();
    for round in 0..3 {
        let t = Instant::now();
        let s = good.connect(addr).unwrap();
        let served = s
            .wait_established(Duration::from_secs(5))
            .and_then(|_| s.send_bytes(b"good bundle".to_vec()))
            .and_then(|_| s.wait_sent(Duration::from_secs(5)));
        let took = t.elapsed();
        let pressing = loris.alive();
        eprintln!(
            "tcpcl round {round}: good client {served:?} in {took:?} with {pressing} loris \
             connections open; listener threads/fds/RSS KiB {before:?} -> {peak:?}"
        );
        assert!(served.is_ok(), "the good client was not served: {served:?}");
        assert!(took < SERVED, "the good client took {took:?}");
        assert!(pressing >= 100, "only {pressing} loris connections left");
        s.close();
        std::thread::sleep(Duration::from_millis(700));
    }
    drop(good);
    // Each loris is closed by the contact timeout (or was evicted earlier).
    let within = Duration::from_secs(contact_timeout + 6).saturating_sub(start.elapsed());
    assert_closed_and_released("tcpcl", &listener, &loris, within, before, peak, 1100);
}

#[test]
fn cotp_slow_loris_does_not_starve_a_good_client() {
    assert!(
        fds_or_skip(),
        "the open-file limit is too low for {LORIS} connections"
    );
    let out = std::env::temp_dir().join(format!("proto-loris-cotp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (listener, addr) = cotp_listen(bin(), &["--out-dir", out.to_str().unwrap()]);
    let addr: SocketAddr = addr.parse().unwrap();
    let before = usage(&listener);
    let t = Instant::now();
    let loris = Loris::start(addr, LORIS, COTP_BYTES);
    // The handshake timeout runs from each connection's accept: from here for the last.
    let start = Instant::now();
    eprintln!("cotp: {LORIS} loris connections opened in {:?}", start - t);
    std::thread::sleep(Duration::from_millis(1500));
    let peak = usage(&listener);
    for round in 0..3 {
        let t = Instant::now();
        let served = Connection::connect(addr, ConnectOptions::default()).and_then(|mut c| {
            c.send_data(format!("good message {round}").as_bytes())?;
            c.close()
        });
        let took = t.elapsed();
        let pressing = loris.alive();
        eprintln!(
            "cotp round {round}: good client {served:?} in {took:?} with {pressing} loris \
             connections open; listener threads/fds/RSS KiB {before:?} -> {peak:?}"
        );
        assert!(served.is_ok(), "the good client was not served: {served:?}");
        assert!(took < SERVED, "the good client took {took:?}");
        assert!(pressing >= 100, "only {pressing} loris connections left");
        std::thread::sleep(Duration::from_millis(700));
    }
    // Stored: the messages are on disk under their final names.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(&out).map_or(0, Iterator::count) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3);
    // The CR handshake timeout (10 s) closes each loris.
    let within = Duration::from_secs(16).saturating_sub(start.elapsed());
    assert_closed_and_released("cotp", &listener, &loris, within, before, peak, 300);
    let _ = std::fs::remove_dir_all(&out);
}

/// The library's rule, with `max_sessions` 2: a silent connection (contact phase) is
/// closed when a third peer arrives, which is served; once both slots hold established
/// sessions, a newcomer is refused with SESS_TERM Busy instead.
#[test]
fn at_max_sessions_the_oldest_connection_in_its_contact_phase_gives_way() {
    let mut cfg = Config::with_node_id("dtn://rx/");
    cfg.tls_enable = false;
    cfg.max_sessions = 2;
    let rx = Agent::new(cfg).unwrap();
    let addr = rx.listen("127.0.0.1:0").unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.write_all(b"dt").unwrap();
    let client = |node: &str| {
        let mut c = Config::with_node_id(node);
        c.tls_enable = false;
        Agent::new(c).unwrap()
    };
    let (a, b, c) = (client("dtn://a/"), client("dtn://b/"), client("dtn://c/"));
    let sa = a.connect(addr).unwrap();
    sa.wait_established(Duration::from_secs(5)).unwrap();
    // Both slots taken (one by the silent connection): `b` takes the silent one's.
    let sb = b.connect(addr).unwrap();
    sb.wait_established(Duration::from_secs(5)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    let end = loop {
        match silent.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err(e)
            }
            Err(_) => break Ok(()),
        }
    };
    assert!(end.is_ok(), "the silent connection was not closed: {end:?}");
    // Both slots established: `c` is refused (Busy), `a` and `b` are untouched.
    let sc = c.connect(addr).unwrap();
    assert!(sc.wait_established(Duration::from_secs(5)).is_err());
    sa.send_bytes(b"still here".to_vec()).unwrap();
    sa.wait_sent(Duration::from_secs(5)).unwrap();
    sb.send_bytes(b"me too".to_vec()).unwrap();
    sb.wait_sent(Duration::from_secs(5)).unwrap();
}
