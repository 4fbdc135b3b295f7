//! Hostile peers against a real listening TCPCL agent (`proto_net::tcpcl::Agent`,
//! plaintext), speaking raw bytes over loopback TCP.
//!
//! Every case asserts the exact bytes RFC 9174 prescribes in answer (contact header,
//! SESS_TERM, MSG_REJECT, XFER_REFUSE, XFER_ACK, or a silent close), that nothing
//! refused or spliced is delivered as a bundle, and that a well-behaved agent still
//! establishes a session and delivers a bundle afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_core::tcpcl::{ExtensionItems, SessInit};
use proto_net::tcpcl::{Agent, Config, Event, ReceivedBundle};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bound on every read of a test socket.
const READ: Duration = Duration::from_secs(3);
/// The listener's contact timeout (contact header and SESS_INIT).
const CONTACT: Duration = Duration::from_secs(1);
/// The listener's SESS_TERM timeout.
const SESS_TERM: Duration = Duration::from_millis(800);

const NODE: &str = "dtn://hostile/";
const SEGMENT_MRU: u64 = 1 << 20;
const TRANSFER_MRU: u64 = 4 << 20;

// Reason codes (RFC 9174 §9.4-§9.8).
const TERM_IDLE_TIMEOUT: u8 = 1;
const TERM_VERSION_MISMATCH: u8 = 2;
const TERM_CONTACT_FAILURE: u8 = 4;
const REJECT_UNKNOWN_TYPE: u8 = 1;
const REJECT_UNEXPECTED: u8 = 3;
const REFUSE_NO_RESOURCES: u8 = 2;
const REFUSE_NOT_ACCEPTABLE: u8 = 4;
const REFUSE_SESSION_TERMINATING: u8 = 6;
// Segment flags.
const END: u8 = 0x01;
const START: u8 = 0x02;

// ----- the listener --------------------------------------------------------------------

/// Every bundle delivered: (transfer ID, bytes).
type Bundles = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

struct Listener {
    agent: Agent,
    addr: SocketAddr,
    bundles: Bundles,
}

fn base_config() -> Config {
    let mut c = Config::with_node_id(NODE);
    c.tls_enable = false;
    c.contact_timeout = CONTACT.as_secs_f64();
    c.sess_term_timeout = SESS_TERM.as_secs_f64();
    c.segment_size_mru = SEGMENT_MRU;
    c.transfer_mru = TRANSFER_MRU;
    c
}

fn listener() -> Listener {
    listener_with(base_config())
}

fn listener_with(c: Config) -> Listener {
    let agent = Agent::new(c).unwrap();
    let events = agent.events();
    let addr = agent.listen("127.0.0.1:0").unwrap();
    let bundles: Bundles = Arc::default();
    let store = Arc::clone(&bundles);
    // Drain the (bounded) event channel so sessions never wait on it.
    thread::spawn(move || {
        for ev in events {
            if let Event::BundleReceived {
                transfer_id,
                bundle: ReceivedBundle::Bytes(b),
                ..
            } = ev
            {
                store.lock().unwrap().push((transfer_id, b));
            }
        }
    });
    Listener {
        agent,
        addr,
        bundles,
    }
}

static SEED: AtomicU8 = AtomicU8::new(1);

impl Listener {
    /// A well-behaved agent connects, sends a bundle, sees it acknowledged, and the
    /// listener delivers exactly those bytes.
    fn assert_serves(&self) {
        let seed = SEED.fetch_add(1, Ordering::Relaxed);
        let data: Vec<u8> = (0..20_000u32)
            .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
            .collect();
        let mut c = Config::with_node_id("dtn://good/");
        c.tls_enable = false;
        c.contact_timeout = 3.0;
        c.sess_term_timeout = 1.0;
        let client = Agent::new(c).unwrap();
        let session = client.connect(self.addr).expect("connect");
        session
            .wait_established(READ)
            .expect("a well-behaved client establishes a session");
        session.send_bytes(data.clone()).unwrap();
        session.wait_sent(READ).expect("bundle acknowledged");
        let deadline = Instant::now() + READ;
        while !self.bundles.lock().unwrap().iter().any(|(_, b)| *b == data) {
            assert!(Instant::now() < deadline, "bundle not delivered");
            thread::sleep(Duration::from_millis(5));
        }
        client.stop();
    }

    fn delivered(&self, pred: impl Fn(&[u8]) -> bool) -> bool {
        self.bundles.lock().unwrap().iter().any(|(_, b)| pred(b))
    }
}

// ----- raw wire helpers ----------------------------------------------------------------

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, READ).unwrap();
    s.set_read_timeout(Some(READ)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

const CONTACT_V4: [u8; 6] = *b"dtn!\x04\x00";

fn sess_init_with(node: &str, ext_block: &[u8]) -> Vec<u8> {
    let mut m = vec![0x07, 0, 0];
    m.extend_from_slice(&SEGMENT_MRU.to_be_bytes());
    m.extend_from_slice(&TRANSFER_MRU.to_be_bytes());
    m.extend_from_slice(&u16::try_from(node.len()).unwrap().to_be_bytes());
    m.extend_from_slice(node.as_bytes());
    m.extend_from_slice(&u32::try_from(ext_block.len()).unwrap().to_be_bytes());
    m.extend_from_slice(ext_block);
    m
}

/// The listener's SESS_INIT.
fn their_sess_init() -> Vec<u8> {
    let si = SessInit {
        keepalive: 0,
        segment_mru: SEGMENT_MRU,
        transfer_mru: TRANSFER_MRU,
        node_id: NODE,
        extensions: ExtensionItems::EMPTY,
    };
    let mut out = vec![0u8; si.encoded_len()];
    let n = si.encode(&mut out).unwrap();
    out.truncate(n);
    out
}

fn sess_term(flags: u8, reason: u8) -> Vec<u8> {
    vec![0x05, flags, reason]
}

fn msg_reject(reason: u8, header: u8) -> Vec<u8> {
    vec![0x06, reason, header]
}

fn xfer_refuse(reason: u8, tid: u64) -> Vec<u8> {
    let mut m = vec![0x03, reason];
    m.extend_from_slice(&tid.to_be_bytes());
    m
}

fn xfer_ack(flags: u8, tid: u64, len: u64) -> Vec<u8> {
    let mut m = vec![0x02, flags];
    m.extend_from_slice(&tid.to_be_bytes());
    m.extend_from_slice(&len.to_be_bytes());
    m
}

/// An XFER_SEGMENT with `data_len` announced and `data` attached (they may differ).
fn segment_head(flags: u8, tid: u64, ext_block: &[u8], data_len: u64) -> Vec<u8> {
    let mut m = vec![0x01, flags];
    m.extend_from_slice(&tid.to_be_bytes());
    if flags & START != 0 {
        m.extend_from_slice(&u32::try_from(ext_block.len()).unwrap().to_be_bytes());
        m.extend_from_slice(ext_block);
    }
    m.extend_from_slice(&data_len.to_be_bytes());
    m
}

fn segment(flags: u8, tid: u64, data: &[u8]) -> Vec<u8> {
    let mut m = segment_head(flags, tid, &[], data.len() as u64);
    m.extend_from_slice(data);
    m
}

/// How a read of the rest of the stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Eof,
    Reset,
}

/// Reads everything until the listener closes; fails if it stays open past `within`.
fn read_to_close(s: &mut TcpStream, within: Duration) -> (Vec<u8>, End) {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "listener kept the connection open (read so far: {got:02x?})"
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (got, End::Eof),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (got, End::Reset),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Reads exactly `want.len()` bytes and compares.
fn expect(s: &mut TcpStream, want: &[u8], what: &str) {
    let mut got = vec![0u8; want.len()];
    s.set_read_timeout(Some(READ)).unwrap();
    s.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(got, want, "{what}");
}

/// Asserts nothing arrives for `quiet` (the connection stays open and silent).
fn expect_silence(s: &mut TcpStream, quiet: Duration) {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => panic!("listener closed the connection"),
        Ok(n) => panic!("unexpected bytes {:02x?}", &b[..n]),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{e}"
        ),
    }
}

/// A raw session through contact headers and SESS_INITs.
fn established(addr: SocketAddr) -> TcpStream {
    let mut s = raw(addr);
    let mut hello = CONTACT_V4.to_vec();
    hello.extend(sess_init_with("dtn://raw/", &[]));
    s.write_all(&hello).unwrap();
    expect(&mut s, &CONTACT_V4, "contact header");
    expect(&mut s, &their_sess_init(), "SESS_INIT");
    s
}

/// One single-segment bundle, acknowledged, proves the raw session still works.
fn round_trip(s: &mut TcpStream, l: &Listener, tid: u64, data: &[u8]) {
    s.write_all(&segment(START | END, tid, data)).unwrap();
    expect(
        s,
        &xfer_ack(START | END, tid, data.len() as u64),
        "XFER_ACK of a good bundle",
    );
    let deadline = Instant::now() + READ;
    while !l.delivered(|b| b == data) {
        assert!(Instant::now() < deadline, "good bundle not delivered");
        thread::sleep(Duration::from_millis(5));
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ----- contact header ------------------------------------------------------------------

#[test]
fn bad_magic_is_closed_without_a_reply() {
    let l = listener();
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"dtn?\x04\x00"[..],
        &b"\x03\x00\x00\x16\x11\xe0"[..],
        &b"d"[..],
    ] {
        let mut s = raw(l.addr);
        s.write_all(junk).unwrap();
        // A lone "d" is a valid start: it waits for the contact timeout instead.
        let (got, end) = read_to_close(&mut s, CONTACT + READ);
        assert_eq!((got, end), (vec![], End::Eof), "after {junk:02x?}");
    }
    l.assert_serves();
}

#[test]
fn other_contact_versions_get_our_header_and_version_mismatch() {
    // A listener that accepts only v4 answers v3 as any other version; one that
    // accepts both serves v3 (tests/tcpcl3_*.rs) and still refuses the rest.
    let mut c = base_config();
    c.accept_tcpcl_version = Some(4);
    let l4 = listener_with(c);
    let l = listener();
    // v3 (RFC 7242): magic, version, flags, keepalive, SDNV EID length, EID.
    let mut v3 = b"dtn!\x03\x00\x00\x0a".to_vec();
    v3.push(10);
    v3.extend_from_slice(b"dtn://v3/x");
    for (version, hello, dual) in [
        (3u8, v3, false),
        (3, b"dtn!\x03".to_vec(), false),
        (5, b"dtn!\x05\x00".to_vec(), true),
        (0, b"dtn!\x00\x00".to_vec(), true),
        (255, b"dtn!\xff\x01".to_vec(), true),
        (5, b"dtn!\x05\x00".to_vec(), false),
    ] {
        let mut s = raw(if dual { l.addr } else { l4.addr });
        s.write_all(&hello).unwrap();
        let mut want = CONTACT_V4.to_vec();
        want.extend(sess_term(0, TERM_VERSION_MISMATCH));
        let (got, end) = read_to_close(&mut s, READ);
        assert_eq!((got, end), (want, End::Eof), "version {version}");
    }
    l.assert_serves();
    l4.assert_serves();
}

#[test]
fn contact_then_garbage_is_message_type_unknown_then_close() {
    let l = listener();
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0xfd, 0xfc]);
    s.write_all(&bytes).unwrap();
    let mut want = CONTACT_V4.to_vec();
    want.extend(msg_reject(REJECT_UNKNOWN_TYPE, 0xff));
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (want, End::Eof));
    // A known type before SESS_INIT is unexpected; the session waits for SESS_INIT.
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.push(0x04);
    s.write_all(&bytes).unwrap();
    expect(&mut s, &CONTACT_V4, "contact header");
    expect(
        &mut s,
        &msg_reject(REJECT_UNEXPECTED, 0x04),
        "MSG_REJECT of a KEEPALIVE before SESS_INIT",
    );
    // So is a segment: rejected, its data skipped, nothing delivered.
    s.write_all(&segment(START | END, 0, b"premature")).unwrap();
    expect(
        &mut s,
        &msg_reject(REJECT_UNEXPECTED, 0x01),
        "MSG_REJECT of an XFER_SEGMENT before SESS_INIT",
    );
    s.write_all(&sess_init_with("dtn://late/", &[])).unwrap();
    expect(&mut s, &their_sess_init(), "SESS_INIT after all");
    round_trip(&mut s, &l, 0, b"after a stray keepalive");
    assert!(!l.delivered(|b| b == b"premature"));
    // SESS_TERM instead of SESS_INIT: answered with a reply, then closed.
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend(sess_term(0, 3));
    s.write_all(&bytes).unwrap();
    let mut want = CONTACT_V4.to_vec();
    want.extend(sess_term(0x01, 3));
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (want, End::Eof));
    l.assert_serves();
}

// ----- SESS_INIT -----------------------------------------------------------------------

#[test]
fn sess_init_with_a_node_id_longer_than_the_limit_is_contact_failure() {
    let l = listener();
    // Node ID length 65535: larger than any SESS_INIT we buffer; refused from the
    // length field, the 64 KiB are never awaited.
    let mut m = vec![0x07, 0, 0];
    m.extend_from_slice(&SEGMENT_MRU.to_be_bytes());
    m.extend_from_slice(&TRANSFER_MRU.to_be_bytes());
    m.extend_from_slice(&[0xff, 0xff]);
    m.extend_from_slice(b"dtn://");
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend(m);
    s.write_all(&bytes).unwrap();
    let mut want = CONTACT_V4.to_vec();
    want.extend(sess_term(0, TERM_CONTACT_FAILURE));
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (want, End::Eof));
    l.assert_serves();
}

#[test]
fn sess_init_with_a_node_id_running_past_the_data_waits_then_times_out() {
    let l = listener();
    // Node ID length 200, 20 octets sent, then silence: the message is incomplete, so
    // the contact timeout ends the session.
    let mut m = vec![0x07, 0, 0];
    m.extend_from_slice(&SEGMENT_MRU.to_be_bytes());
    m.extend_from_slice(&TRANSFER_MRU.to_be_bytes());
    m.extend_from_slice(&200u16.to_be_bytes());
    m.extend_from_slice(b"dtn://aaaaaaaaaaaaaa");
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend(m);
    let start = Instant::now();
    s.write_all(&bytes).unwrap();
    let mut want = CONTACT_V4.to_vec();
    want.extend(sess_term(0, TERM_IDLE_TIMEOUT));
    let (got, end) = read_to_close(&mut s, CONTACT + READ);
    assert_eq!((got, end), (want, End::Eof));
    assert!(start.elapsed() >= CONTACT / 2, "{:?}", start.elapsed());
    // A node ID that is not UTF-8 / not a URI is a contact failure.
    for node in [&b"\xff\xfe"[..], b"no-scheme"] {
        let mut m = vec![0x07, 0, 0];
        m.extend_from_slice(&SEGMENT_MRU.to_be_bytes());
        m.extend_from_slice(&TRANSFER_MRU.to_be_bytes());
        m.extend_from_slice(&u16::try_from(node.len()).unwrap().to_be_bytes());
        m.extend_from_slice(node);
        m.extend_from_slice(&[0, 0, 0, 0]);
        let mut s = raw(l.addr);
        let mut bytes = CONTACT_V4.to_vec();
        bytes.extend(m);
        s.write_all(&bytes).unwrap();
        let mut want = CONTACT_V4.to_vec();
        want.extend(sess_term(0, TERM_CONTACT_FAILURE));
        let (got, end) = read_to_close(&mut s, READ);
        assert_eq!((got, end), (want, End::Eof), "node ID {node:02x?}");
    }
    l.assert_serves();
}

#[test]
fn huge_sess_init_is_contact_failure_without_a_huge_allocation() {
    let l = listener();
    let before = rss_kib();
    // An extension block announced as 4 GiB - 1, and 8 MiB of it actually sent.
    let mut m = vec![0x07, 0, 0];
    m.extend_from_slice(&SEGMENT_MRU.to_be_bytes());
    m.extend_from_slice(&TRANSFER_MRU.to_be_bytes());
    m.extend_from_slice(&10u16.to_be_bytes());
    m.extend_from_slice(b"dtn://big/");
    m.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend(m);
    s.write_all(&bytes).unwrap();
    let mut w = s.try_clone().unwrap();
    let flood = thread::spawn(move || {
        let chunk = vec![0u8; 64 << 10];
        for _ in 0..128 {
            if w.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut want = CONTACT_V4.to_vec();
    want.extend(sess_term(0, TERM_CONTACT_FAILURE));
    let (got, _end) = read_to_close(&mut s, READ);
    assert_eq!(got, want);
    flood.join().unwrap();

    // A node ID of 60000 octets, all of it sent: also over the limit.
    let node = format!("dtn://{}", "n".repeat(59_994));
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend(sess_init_with(&node, &[]));
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let _ = w.write_all(&bytes);
    });
    let mut want = CONTACT_V4.to_vec();
    want.extend(sess_term(0, TERM_CONTACT_FAILURE));
    let (got, _end) = read_to_close(&mut s, READ);
    assert_eq!(got, want);
    writer.join().unwrap();
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    l.assert_serves();
}

#[test]
fn unknown_critical_session_extension_is_contact_failure() {
    let l = listener();
    // Critical item of unknown type 0x7777, empty value.
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend(sess_init_with(
        "dtn://raw/",
        &[0x01, 0x77, 0x77, 0x00, 0x00],
    ));
    s.write_all(&bytes).unwrap();
    let mut want = CONTACT_V4.to_vec();
    want.extend(sess_term(0, TERM_CONTACT_FAILURE));
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (want, End::Eof));
    // The same item without the CRITICAL flag is ignored.
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend(sess_init_with(
        "dtn://raw/",
        &[0x00, 0x77, 0x77, 0x00, 0x02, 1, 2],
    ));
    s.write_all(&bytes).unwrap();
    expect(&mut s, &CONTACT_V4, "contact header");
    expect(&mut s, &their_sess_init(), "SESS_INIT");
    round_trip(&mut s, &l, 0, b"non-critical extension ignored");
    // An item whose length runs past the block is a malformed SESS_INIT.
    let mut s = raw(l.addr);
    let mut bytes = CONTACT_V4.to_vec();
    bytes.extend(sess_init_with(
        "dtn://raw/",
        &[0x00, 0x77, 0x77, 0x00, 0x09, 1, 2],
    ));
    s.write_all(&bytes).unwrap();
    let mut want = CONTACT_V4.to_vec();
    want.extend(sess_term(0, TERM_CONTACT_FAILURE));
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (want, End::Eof));
    l.assert_serves();
}

// ----- established sessions ------------------------------------------------------------

#[test]
fn unknown_message_type_after_establishment_is_rejected_then_closed() {
    let l = listener();
    let mut s = established(l.addr);
    s.write_all(&[0x0f, 1, 2, 3]).unwrap();
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!(
        (got, end),
        (msg_reject(REJECT_UNKNOWN_TYPE, 0x0f), End::Eof)
    );
    l.assert_serves();
}

#[test]
fn our_close_stays_orderly_while_the_peer_still_sends() {
    // After our FIN we read on until the peer's FIN (bounded), so bytes the peer sends
    // meanwhile never make our kernel answer with a RST (an abortive close).
    let l = listener();
    let mut s = established(l.addr);
    s.write_all(&[0x0f, 1, 2, 3]).unwrap();
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!(
        (got, end),
        (msg_reject(REJECT_UNKNOWN_TYPE, 0x0f), End::Eof)
    );
    // Our FIN is in; the peer still talks, then closes its side.
    s.write_all(&sess_term(0, 0)).unwrap();
    thread::sleep(Duration::from_millis(100));
    s.write_all(&sess_term(0, 0)).unwrap();
    thread::sleep(Duration::from_millis(100));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (vec![], End::Eof), "no RST after our FIN");
    l.assert_serves();
}

#[test]
fn sessions_over_max_sessions_are_refused_with_busy() {
    // RFC 9174 §6.1 (Busy): past `max_sessions` the listener answers the contact header
    // with its own and SESS_TERM Busy instead of dropping the connection unexplained.
    const TERM_BUSY: u8 = 3;
    let mut c = base_config();
    c.max_sessions = 1;
    let l = listener_with(c);
    let first = established(l.addr);
    let mut s = raw(l.addr);
    s.write_all(&CONTACT_V4).unwrap();
    expect(&mut s, &CONTACT_V4, "contact header (no CAN_TLS)");
    expect(&mut s, &sess_term(0, TERM_BUSY), "SESS_TERM Busy");
    s.write_all(&sess_term(1, TERM_BUSY)).unwrap();
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (vec![], End::Eof));
    // Not a TCPCL peer: closed without a reply.
    let mut junk = raw(l.addr);
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_to_close(&mut junk, READ), (vec![], End::Eof));
    // Our own agent, refused, reports the peer's Busy.
    let mut cc = Config::with_node_id("dtn://refused/");
    cc.tls_enable = false;
    let client = Agent::new(cc).unwrap();
    let session = client.connect(l.addr).unwrap();
    let reason = session.wait_closed(READ).unwrap();
    assert_eq!(
        reason,
        proto_net::tcpcl::CloseReason::Session(proto_core::tcpcl::CloseReason::Terminated {
            reason: proto_core::tcpcl::SessTermReason::BUSY,
            by_peer: true,
        })
    );
    // Once the first session is gone there is room again.
    drop(first);
    let deadline = Instant::now() + READ;
    while !l.agent.sessions().is_empty() {
        assert!(Instant::now() < deadline, "first session not closed");
        thread::sleep(Duration::from_millis(5));
    }
    l.assert_serves();
}

#[test]
fn continuation_segment_of_an_unknown_transfer_is_refused() {
    let l = listener();
    let mut s = established(l.addr);
    s.write_all(&segment(0, 77, b"orphan middle")).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NOT_ACCEPTABLE, 77),
        "XFER_REFUSE of an orphan",
    );
    // Its END is refused again (the transfer stays refused until its end).
    s.write_all(&segment(END, 77, b"orphan end")).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NOT_ACCEPTABLE, 77),
        "XFER_REFUSE of the orphan's end",
    );
    round_trip(&mut s, &l, 0, b"a proper bundle after the orphan");
    assert!(!l.delivered(|b| b.starts_with(b"orphan")));
    l.assert_serves();
}

#[test]
fn start_on_a_transfer_in_progress_never_splices() {
    let l = listener();
    let mut s = established(l.addr);
    s.write_all(&segment(START, 5, b"first-")).unwrap();
    expect(
        &mut s,
        &xfer_ack(START, 5, 6),
        "XFER_ACK of the first START",
    );
    s.write_all(&segment(START, 5, b"second-")).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NOT_ACCEPTABLE, 5),
        "XFER_REFUSE of the second START",
    );
    s.write_all(&segment(END, 5, b"end")).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NOT_ACCEPTABLE, 5),
        "XFER_REFUSE of the END",
    );
    round_trip(&mut s, &l, 6, b"next transfer is fine");
    thread::sleep(Duration::from_millis(50));
    assert!(
        !l.delivered(|b| b.windows(5).any(|w| w == b"first" || w == b"secon")),
        "a spliced or refused transfer was delivered"
    );
    l.assert_serves();
}

#[test]
fn segment_length_of_2_pow_64_minus_1_is_refused_without_allocating() {
    let l = listener();
    let before = rss_kib();
    let mut s = established(l.addr);
    s.write_all(&segment_head(START | END, 9, &[], u64::MAX))
        .unwrap();
    s.write_all(&[0xaa; 4096]).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NOT_ACCEPTABLE, 9),
        "XFER_REFUSE of a 2^64-1 segment",
    );
    // The session discards the announced data; it stays up and quiet.
    expect_silence(&mut s, Duration::from_millis(200));
    assert!(rss_kib().saturating_sub(before) < 64 * 1024);

    // A Transfer Length item of 2^64-1 is over the Transfer MRU: No Resources.
    let mut s = established(l.addr);
    let mut ext = vec![0x00, 0x00, 0x01, 0x00, 0x08];
    ext.extend_from_slice(&u64::MAX.to_be_bytes());
    let mut seg = segment_head(START, 3, &ext, 4);
    seg.extend_from_slice(b"tiny");
    s.write_all(&seg).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NO_RESOURCES, 3),
        "XFER_REFUSE of a 2^64-1 transfer length",
    );
    round_trip(&mut s, &l, 4, b"after the giant announcement");

    // A segment just over the Segment MRU is refused and its data skipped exactly.
    let mut s = established(l.addr);
    let mut seg = segment_head(START | END, 1, &[], SEGMENT_MRU + 1);
    seg.resize(seg.len() + usize::try_from(SEGMENT_MRU).unwrap() + 1, 0x33);
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&seg).unwrap());
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NOT_ACCEPTABLE, 1),
        "XFER_REFUSE over the segment MRU",
    );
    writer.join().unwrap();
    round_trip(&mut s, &l, 2, b"after the oversized segment");
    l.assert_serves();
}

#[test]
fn xfer_ack_and_refuse_for_unknown_transfers_are_unexpected() {
    let l = listener();
    let mut s = established(l.addr);
    s.write_all(&xfer_ack(START | END, 0, 5)).unwrap();
    expect(
        &mut s,
        &msg_reject(REJECT_UNEXPECTED, 0x02),
        "MSG_REJECT of a stray XFER_ACK",
    );
    s.write_all(&xfer_refuse(REFUSE_NO_RESOURCES, 42)).unwrap();
    expect(
        &mut s,
        &msg_reject(REJECT_UNEXPECTED, 0x03),
        "MSG_REJECT of a stray XFER_REFUSE",
    );
    // A second SESS_INIT is unexpected too; the session continues.
    s.write_all(&sess_init_with("dtn://again/", &[])).unwrap();
    expect(
        &mut s,
        &msg_reject(REJECT_UNEXPECTED, 0x07),
        "MSG_REJECT of a second SESS_INIT",
    );
    round_trip(&mut s, &l, 0, b"still fine");
    l.assert_serves();
}

#[test]
fn keepalive_flood_is_absorbed() {
    let l = listener();
    let mut s = established(l.addr);
    let start = Instant::now();
    let flood = vec![0x04u8; 1 << 20];
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&flood).unwrap());
    writer.join().unwrap();
    round_trip(&mut s, &l, 0, b"after a million keepalives");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    l.assert_serves();
}

#[test]
fn sess_term_then_more_data() {
    let l = listener();
    let mut s = established(l.addr);
    s.write_all(&sess_term(0, 0)).unwrap();
    expect(&mut s, &sess_term(0x01, 0), "SESS_TERM reply");
    // A new transfer after SESS_TERM is refused: Session Terminating.
    s.write_all(&segment(START | END, 0, b"too late")).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_SESSION_TERMINATING, 0),
        "XFER_REFUSE after SESS_TERM",
    );
    // We never close; the listener closes after its SESS_TERM timeout.
    let start = Instant::now();
    s.write_all(&[0x04, 0x04]).unwrap();
    let (got, end) = read_to_close(&mut s, SESS_TERM + READ);
    assert_eq!((got, end), (vec![], End::Eof));
    assert!(start.elapsed() < SESS_TERM + Duration::from_secs(1));
    assert!(!l.delivered(|b| b == b"too late"));
    l.assert_serves();
}

// ----- timers, stalls, numbers ---------------------------------------------------------

#[test]
fn peer_that_never_sends_sess_init_is_timed_out() {
    let l = listener();
    let start = Instant::now();
    let mut s = raw(l.addr);
    s.write_all(&CONTACT_V4).unwrap();
    let mut want = CONTACT_V4.to_vec();
    want.extend(sess_term(0, TERM_IDLE_TIMEOUT));
    let (got, end) = read_to_close(&mut s, CONTACT + READ);
    assert_eq!((got, end), (want, End::Eof));
    let took = start.elapsed();
    assert!(
        took >= CONTACT && took < CONTACT + Duration::from_secs(2),
        "{took:?}"
    );
    l.assert_serves();
}

#[test]
fn silent_and_stalled_peers_do_not_block_others() {
    let l = listener();
    let start = Instant::now();
    let mut silent = raw(l.addr);
    let mut half_magic = raw(l.addr);
    half_magic.write_all(b"dtn").unwrap();
    // Established, then half a segment head and silence (no keepalive negotiated: the
    // session waits, but only its own thread does).
    let mut half_segment = established(l.addr);
    half_segment
        .write_all(&segment(START | END, 0, b"x")[..7])
        .unwrap();
    l.assert_serves();
    assert!(
        start.elapsed() < CONTACT,
        "stalled peers delayed a good one: {:?}",
        start.elapsed()
    );
    for s in [&mut silent, &mut half_magic] {
        let (got, end) = read_to_close(s, CONTACT + READ);
        assert_eq!((got, end), (vec![], End::Eof));
    }
    assert!(start.elapsed() >= CONTACT / 2);
    // The stalled session resumes where it stopped.
    half_segment
        .write_all(&segment(START | END, 0, b"x")[7..])
        .unwrap();
    expect(&mut half_segment, &xfer_ack(START | END, 0, 1), "XFER_ACK");
    l.assert_serves();
}

#[test]
fn a_hundred_raw_connections_at_once() {
    let l = listener();
    let mut conns = Vec::new();
    for i in 0..100 {
        let mut s = raw(l.addr);
        match i % 3 {
            0 => {}
            1 => s.write_all(&CONTACT_V4[..3]).unwrap(),
            _ => {
                let mut hello = CONTACT_V4.to_vec();
                hello.extend(sess_init_with("dtn://many/", &[]));
                s.write_all(&hello).unwrap();
            }
        }
        conns.push((i, s));
    }
    l.assert_serves();
    for (i, s) in conns.iter_mut().filter(|(i, _)| i % 3 == 2) {
        let mut want = CONTACT_V4.to_vec();
        want.extend(their_sess_init());
        let mut got = vec![0u8; want.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, want, "connection {i}");
    }
    drop(conns);
    l.assert_serves();
    // And 30 full raw sessions in parallel afterwards.
    let addr = l.addr;
    let clients: Vec<_> = (0..30u64)
        .map(|tid| {
            thread::spawn(move || {
                let mut s = established(addr);
                s.write_all(&segment(START | END, tid, b"many")).unwrap();
                let mut got = vec![0u8; 18];
                s.read_exact(&mut got).unwrap();
                (tid, got)
            })
        })
        .collect();
    for c in clients {
        let (tid, got) = c.join().unwrap();
        assert_eq!(got, xfer_ack(START | END, tid, 4));
    }
    l.assert_serves();
}

// ----- more transfer rules -------------------------------------------------------------

#[test]
fn reserved_flag_bits_are_ignored_and_reflected_in_the_ack() {
    let l = listener();
    // Contact header flags with every reserved bit set (CAN_TLS clear).
    let mut s = raw(l.addr);
    let mut hello = b"dtn!\x04\xfe".to_vec();
    hello.extend(sess_init_with("dtn://raw/", &[]));
    s.write_all(&hello).unwrap();
    expect(&mut s, &CONTACT_V4, "contact header");
    expect(&mut s, &their_sess_init(), "SESS_INIT");
    // RFC 9174 §5.2.3: the XFER_ACK flags match the segment's, undecodable ones
    // included.
    s.write_all(&segment(0xf0 | START | END, 0, b"odd flags"))
        .unwrap();
    expect(
        &mut s,
        &xfer_ack(0xf0 | START | END, 0, 9),
        "XFER_ACK reflecting reserved flags",
    );
    // SESS_TERM with an unknown reason: not fatal, reflected in the reply.
    s.write_all(&sess_term(0, 0xee)).unwrap();
    expect(&mut s, &sess_term(0x01, 0xee), "SESS_TERM reply");
    l.assert_serves();
}

#[test]
fn more_concurrent_transfers_than_tracked_are_refused_with_no_resources() {
    let l = listener();
    let mut s = established(l.addr);
    for tid in 10..14u64 {
        s.write_all(&segment(START, tid, b"part one|")).unwrap();
        expect(&mut s, &xfer_ack(START, tid, 9), "XFER_ACK of a START");
    }
    s.write_all(&segment(START, 14, b"one too many")).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NO_RESOURCES, 14),
        "XFER_REFUSE of a fifth transfer",
    );
    for tid in 10..14u64 {
        s.write_all(&segment(END, tid, b"part two")).unwrap();
        expect(&mut s, &xfer_ack(END, tid, 17), "XFER_ACK of an END");
    }
    let deadline = Instant::now() + READ;
    while l
        .bundles
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, b)| b == b"part one|part two")
        .count()
        < 4
    {
        assert!(
            Instant::now() < deadline,
            "interleaved bundles not delivered"
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert!(!l.delivered(|b| b.starts_with(b"one too many")));
    l.assert_serves();
}

#[test]
fn data_beyond_the_transfer_mru_or_the_announced_length_is_refused() {
    let l = listener();
    let mut s = established(l.addr);
    // Without a Transfer Length item: four full segments reach the Transfer MRU, one
    // more byte is refused.
    let mb = vec![0x5au8; usize::try_from(SEGMENT_MRU).unwrap()];
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        w.write_all(&segment(START, 1, &mb)).unwrap();
        for _ in 0..3 {
            w.write_all(&segment(0, 1, &mb)).unwrap();
        }
        w.write_all(&segment(END, 1, b"!")).unwrap();
    });
    expect(&mut s, &xfer_ack(START, 1, SEGMENT_MRU), "ack 1");
    for k in 2..=4 {
        expect(&mut s, &xfer_ack(0, 1, SEGMENT_MRU * k), "ack of a middle");
    }
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NO_RESOURCES, 1),
        "XFER_REFUSE past the Transfer MRU",
    );
    writer.join().unwrap();

    // With a Transfer Length of 10: 5 + 6 overruns it, 5 + 2 ends short of it.
    let mut tl = vec![0x00, 0x00, 0x01, 0x00, 0x08];
    tl.extend_from_slice(&10u64.to_be_bytes());
    for (tid, tail) in [(2u64, &b"123456"[..]), (3, b"12")] {
        let mut seg = segment_head(START, tid, &tl, 5);
        seg.extend_from_slice(b"abcde");
        s.write_all(&seg).unwrap();
        expect(&mut s, &xfer_ack(START, tid, 5), "ack of the first half");
        s.write_all(&segment(END, tid, tail)).unwrap();
        expect(
            &mut s,
            &xfer_refuse(REFUSE_NOT_ACCEPTABLE, tid),
            "XFER_REFUSE of a length mismatch",
        );
    }
    round_trip(&mut s, &l, 4, b"exactly right");
    assert!(!l.delivered(|b| b.starts_with(b"abcde")));
    l.assert_serves();
}

#[test]
fn in_memory_bundles_are_bounded_by_max_memory_bundle() {
    // The default sink collects in memory: a peer may not make us buffer up to the
    // Transfer MRU. Above `max_memory_bundle`, announced or actual: No Resources.
    let mut c = base_config();
    c.max_memory_bundle = 1000;
    let l = listener_with(c);
    let mut s = established(l.addr);
    let mut tl = vec![0x00, 0x00, 0x01, 0x00, 0x08];
    tl.extend_from_slice(&2000u64.to_be_bytes());
    let mut seg = segment_head(START, 1, &tl, 600);
    seg.extend_from_slice(&[7; 600]);
    s.write_all(&seg).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NO_RESOURCES, 1),
        "XFER_REFUSE of an announced length above max_memory_bundle",
    );
    s.write_all(&segment(START, 2, &[1; 600])).unwrap();
    expect(
        &mut s,
        &xfer_ack(START, 2, 600),
        "ack of the first 600 bytes",
    );
    s.write_all(&segment(END, 2, &[2; 600])).unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NO_RESOURCES, 2),
        "XFER_REFUSE of data growing above max_memory_bundle",
    );
    round_trip(&mut s, &l, 3, &[3; 1000]);
}

#[test]
fn transfer_extension_block_larger_than_we_buffer_ends_the_session() {
    let l = listener();
    let mut s = established(l.addr);
    let mut head = vec![0x01, START | END];
    head.extend_from_slice(&0u64.to_be_bytes());
    head.extend_from_slice(&u32::MAX.to_be_bytes());
    head.extend_from_slice(&[0; 16]);
    s.write_all(&head).unwrap();
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (sess_term(0, 5), End::Eof));
    l.assert_serves();
}

/// A writer that fails on write (`on_flush` false) or only when flushed.
struct Failing {
    on_flush: bool,
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.on_flush {
            Ok(buf.len())
        } else {
            Err(std::io::Error::other("disk full"))
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("disk full"))
    }
}

#[test]
fn a_failing_sink_is_never_acknowledged() {
    let l = listener();
    l.agent.set_sink_chooser(|t| match t.transfer_id {
        7 => proto_net::tcpcl::Sink::Writer(Box::new(Failing { on_flush: false })),
        8 => proto_net::tcpcl::Sink::Writer(Box::new(Failing { on_flush: true })),
        _ => proto_net::tcpcl::Sink::Memory,
    });
    let mut s = established(l.addr);
    // The sink refuses the bytes: RFC 9174 §5.2.3 acknowledges a segment only "after
    // it has been fully processed"; what cannot be stored is refused instead.
    s.write_all(&segment(START | END, 7, b"cannot be written"))
        .unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NO_RESOURCES, 7),
        "XFER_REFUSE for a sink that fails to write",
    );
    // The sink takes the bytes but cannot complete the bundle.
    s.write_all(&segment(START | END, 8, b"cannot be finished"))
        .unwrap();
    expect(
        &mut s,
        &xfer_refuse(REFUSE_NO_RESOURCES, 8),
        "XFER_REFUSE for a sink that fails to finish",
    );
    round_trip(&mut s, &l, 9, b"memory sink works");
}

/// A writer sink that records what it was given and whether it was flushed.
#[derive(Clone, Default)]
struct Recording(std::sync::Arc<std::sync::Mutex<(Vec<u8>, bool)>>);

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut r = self.0.lock().unwrap();
        r.0.extend_from_slice(buf);
        r.1 = false;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().1 = true;
        Ok(())
    }
}

#[test]
fn each_ack_follows_the_sink_taking_the_segment() {
    let l = listener();
    let rec = Recording::default();
    let sink = rec.clone();
    l.agent
        .set_sink_chooser(move |_| proto_net::tcpcl::Sink::Writer(Box::new(sink.clone())));
    let mut s = established(l.addr);
    s.write_all(&segment(START, 1, b"first ")).unwrap();
    expect(
        &mut s,
        &xfer_ack(START, 1, 6),
        "XFER_ACK of the first segment",
    );
    assert_eq!(
        rec.0.lock().unwrap().0,
        b"first ",
        "acked before the sink had it"
    );
    s.write_all(&segment(END, 1, b"second")).unwrap();
    expect(&mut s, &xfer_ack(END, 1, 12), "XFER_ACK of the END segment");
    let (data, flushed) = rec.0.lock().unwrap().clone();
    assert_eq!(data, b"first second");
    assert!(
        flushed,
        "the END segment was acked before the bundle was flushed"
    );
}

// ----- TLS-capable listeners -----------------------------------------------------------

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tls_listener(name: &str, require_tls: bool) -> (Listener, TempDir) {
    use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
    let dir =
        TempDir(std::env::temp_dir().join(format!("hostile-tcpcl-{name}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let ca = CertFactory::new_ca("hostile test CA").unwrap();
    let (cert, key) = ca.issue(&LeafSpec::node(NODE)).unwrap();
    let write = |f: &str, text: &str| {
        let p = dir.0.join(f);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut c = base_config();
    c.tls_enable = true;
    c.require_tls = Some(require_tls);
    c.tls_ca_file = Some(write("ca.pem", ca.ca_pem()));
    c.tls_cert_file = Some(write("cert.pem", &cert));
    c.tls_key_file = Some(write("key.pem", &key));
    (listener_with(c), dir)
}

const CONTACT_V4_TLS: [u8; 6] = *b"dtn!\x04\x01";

#[test]
fn tls_negotiated_then_stalled_or_garbage_is_closed() {
    let (l, _dir) = tls_listener("stall", false);
    // CAN_TLS from both, then silence instead of a ClientHello: the contact timeout
    // covers the TLS handshake.
    let start = Instant::now();
    let mut stalled = raw(l.addr);
    stalled.write_all(&CONTACT_V4_TLS).unwrap();
    expect(&mut stalled, &CONTACT_V4_TLS, "contact header with CAN_TLS");
    // Plaintext SESS_INIT where a ClientHello belongs: the handshake fails.
    let mut garbage = raw(l.addr);
    let mut hello = CONTACT_V4_TLS.to_vec();
    hello.extend(sess_init_with("dtn://raw/", &[]));
    garbage.write_all(&hello).unwrap();
    expect(&mut garbage, &CONTACT_V4_TLS, "contact header with CAN_TLS");
    let (got, _end) = read_to_close(&mut garbage, READ);
    // At most a TLS alert record; never a TCPCL message in plaintext.
    assert!(got.is_empty() || got[0] == 0x15, "{got:02x?}");
    // A plaintext client is still served meanwhile.
    l.assert_serves();
    let (got, end) = read_to_close(&mut stalled, CONTACT + READ);
    assert_eq!((got, end), (vec![], End::Eof));
    let took = start.elapsed();
    assert!(took >= CONTACT / 2 && took < CONTACT + READ, "{took:?}");
}

#[test]
fn plaintext_peer_of_a_listener_requiring_tls_gets_contact_failure() {
    let (l, _dir) = tls_listener("require", true);
    let mut s = raw(l.addr);
    let mut hello = CONTACT_V4.to_vec();
    hello.extend(sess_init_with("dtn://raw/", &[]));
    s.write_all(&hello).unwrap();
    let mut want = CONTACT_V4_TLS.to_vec();
    want.extend(sess_term(0, TERM_CONTACT_FAILURE));
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!(got, want);
    // The SESS_INIT sent after the contact header was unread: a reset is acceptable
    // here, but the SESS_TERM must have arrived first.
    let _ = end;
}

#[test]
fn a_silent_established_peer_is_ended_by_the_keepalive_limit() {
    let mut c = base_config();
    c.keepalive_time = 1;
    let l = listener_with(c);
    let mut s = raw(l.addr);
    let mut hello = CONTACT_V4.to_vec();
    let mut si = sess_init_with("dtn://raw/", &[]);
    si[2] = 1; // keepalive 1 s
    hello.extend(si);
    let start = Instant::now();
    s.write_all(&hello).unwrap();
    expect(&mut s, &CONTACT_V4, "contact header");
    let mut theirs = their_sess_init();
    theirs[2] = 1;
    expect(&mut s, &theirs, "SESS_INIT");
    // A KEEPALIVE after 1 s of silence from the listener, SESS_TERM Idle Timeout after
    // 2 s without anything from us, then the close once its reply wait runs out.
    expect(&mut s, &[0x04], "KEEPALIVE");
    expect(
        &mut s,
        &sess_term(0, TERM_IDLE_TIMEOUT),
        "SESS_TERM idle timeout",
    );
    let idle = start.elapsed();
    assert!(
        idle >= Duration::from_millis(1900) && idle < Duration::from_secs(4),
        "{idle:?}"
    );
    let (got, end) = read_to_close(&mut s, SESS_TERM + READ);
    assert_eq!(end, End::Eof);
    assert!(got.iter().all(|&b| b == 0x04), "{got:02x?}");
    l.assert_serves();
}

#[test]
fn half_closed_peers_are_released() {
    let l = listener();
    // FIN right after establishment, and FIN inside a segment: the listener closes too,
    // delivering nothing partial.
    let mut s = established(l.addr);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s, READ), (vec![], End::Eof));
    let mut s = established(l.addr);
    s.write_all(&segment(START | END, 0, b"cut short")[..20])
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s, READ), (vec![], End::Eof));
    // FIN inside the contact header: closed without a reply.
    let mut s = raw(l.addr);
    s.write_all(b"dtn!").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s, READ), (vec![], End::Eof));
    thread::sleep(Duration::from_millis(50));
    assert!(!l.delivered(|b| b.starts_with(b"cut")));
    l.assert_serves();
}
