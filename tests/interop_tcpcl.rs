//! TCPCLv4 (RFC 9174) interoperability: proto's agent (`proto_net::tcpcl::Agent`,
//! in-process) against dtn7-rs's `dtnd` in both directions, and against itself over
//! plaintext and over TLS with node authentication.
//!
//! The bundles are real BPv7 bundles (`proto_tests::bpv7`): the test builds them for
//! dtnd, which must accept and deliver them to its `incoming` endpoint (read back with
//! `dtnrecv -r` and decoded), and decodes what dtnd forwards to proto.
//!
//! Every case is captured live on `lo` (tshark, port filter) and dissected as TCPCL
//! (decode-as on the port, two-pass): frames proto sent must have no malformed packet
//! and no warning/error expert item; the peer's findings are printed as quirks. TLS
//! captures are decrypted with the key log rustls writes to `SSLKEYLOGFILE`, set once
//! for this test process before any TLS context exists. dtnd runs as a subprocess with
//! a hard time limit. Every case is `#[ignore = "needs ..."]` (run them with `cargo test
//! -- --include-ignored`); then a missing dtn7 or tshark skips with a printed reason (or
//! fails under `PROTO_REQUIRE_PEERS=1`); see `docs/interop.md` for the matrix and dtn7's
//! quirks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use crossbeam_channel::Receiver;
use proto_core::tcpcl::CloseReason as CoreClose;
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use proto_net::tcpcl::tls::Authn;
use proto_net::tcpcl::{
    Agent, CloseReason, Config, Event, ReceivedBundle, SessTermReason, SessionHandle, SessionId,
    XferRefuseReason,
};
use proto_tests::bpv7::Bundle;
use proto_tests::dtnd::Dtnd;
use proto_tests::peers::{dtn7, LiveCapture, Side, WireReport};
use proto_tests::tcpcl::pattern;
use proto_tests::tshark::Layer;

/// Bound on any wait for the agent or the peer.
const T: Duration = Duration::from_secs(30);

/// TCPCLv4 message types (RFC 9174 §5.2.1).
const XFER_SEGMENT: u64 = 0x01;
const XFER_ACK: u64 = 0x02;
const SESS_TERM: u64 = 0x05;
const SESS_INIT: u64 = 0x07;
const KEEPALIVE: u64 = 0x04;
const MSG_REJECT: u64 = 0x06;

/// dtnd's fixed session parameters (`dtn7::cla::tcp`: KEEPALIVE, SEGMENT_MRU,
/// TRANSFER_MRU).
const DTND_KEEPALIVE: u16 = 30;
const DTND_MRU: u64 = 64_000;

// ----- process-wide setup ------------------------------------------------------------

/// The key log file every TLS context of this process appends to.
///
/// rustls reads `SSLKEYLOGFILE` when a context is built, so it is set once, first thing
/// in every test of this binary (before any other thread of ours could read the
/// environment), and never changed.
fn keylog() -> &'static Path {
    static KEYLOG: OnceLock<PathBuf> = OnceLock::new();
    KEYLOG.get_or_init(|| {
        let p =
            std::env::temp_dir().join(format!("proto-interop-tcpcl-{}.keys", std::process::id()));
        let _ = std::fs::remove_file(&p);
        std::env::set_var("SSLKEYLOGFILE", &p);
        p
    })
}

fn unique(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "proto-interop-tcpcl-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<TempDir> {
        let p = unique(name);
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }

    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> Result<PathBuf> {
        let p = self.0.join(name);
        std::fs::write(&p, data)?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ----- proto side --------------------------------------------------------------------

/// A plaintext agent configuration for talking to dtnd.
///
/// Keepalive 30 s: a negotiated keepalive of 0 makes dtnd end the session at once (see
/// [`dtnd_ends_the_session_when_keepalive_is_zero`]).
fn dtnd_config(node: &str) -> Config {
    let mut c = Config::with_node_id(node);
    c.tls_enable = false;
    c.keepalive_time = DTND_KEEPALIVE;
    c.contact_timeout = 10.0;
    c.sess_term_timeout = 3.0;
    c
}

/// Waits for an event matching `f`, returning it.
fn wait_event<T>(
    events: &Receiver<Event>,
    within: Duration,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    loop {
        let ev = events
            .recv_deadline(deadline)
            .context("the expected event did not arrive")?;
        if let Some(v) = f(&ev) {
            return Ok(v);
        }
    }
}

/// Waits for the next bundle received on `events`.
fn next_bundle(events: &Receiver<Event>) -> Result<(SessionId, Vec<u8>)> {
    wait_event(events, T, |ev| match ev {
        Event::BundleReceived {
            session,
            bundle: ReceivedBundle::Bytes(b),
            ..
        } => Some((*session, b.clone())),
        _ => None,
    })
}

/// The first session the agent's events report as established.
fn established(agent: &Agent, events: &Receiver<Event>) -> Result<SessionHandle> {
    let id = wait_event(events, T, |ev| match ev {
        Event::SessionEstablished { session, .. } => Some(*session),
        _ => None,
    })?;
    agent
        .session(id)
        .context("established session not in the registry")
}

// ----- wire helpers -------------------------------------------------------------------

fn data_lens(segments: &[Layer]) -> Vec<u64> {
    segments
        .iter()
        .filter_map(|l| l.uint("tcpcl.v4.xfer_segment.data_len"))
        .collect()
}

fn flags(msgs: &[Layer]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|l| l.uint("tcpcl.v4.xfer_flags"))
        .collect()
}

/// Prints the message types each side sent.
fn print_sequence(label: &str, wire: &WireReport) {
    let name = |t: &u64| match *t {
        XFER_SEGMENT => "XFER_SEGMENT",
        XFER_ACK => "XFER_ACK",
        0x03 => "XFER_REFUSE",
        KEEPALIVE => "KEEPALIVE",
        SESS_TERM => "SESS_TERM",
        MSG_REJECT => "MSG_REJECT",
        SESS_INIT => "SESS_INIT",
        _ => "?",
    };
    for (who, ours) in [("ours", true), ("peer", false)] {
        let seq: Vec<&str> = wire.tcpcl_types(ours).iter().map(name).collect();
        eprintln!("[{label}] {who}: {}", seq.join(" "));
    }
}

/// RFC 9174 §5.2.3: every XFER_ACK `ours` sent reflects the flags of the segment it
/// acknowledges, whose cumulative length it carries.
fn assert_acks_reflect(wire: &WireReport, ours: bool) {
    let segs = wire.tcpcl_messages(!ours, XFER_SEGMENT);
    let acks = wire.tcpcl_messages(ours, XFER_ACK);
    assert_eq!(acks.len(), segs.len(), "one XFER_ACK per segment");
    let mut seen = 0;
    for (s, a) in segs.iter().zip(acks.iter()) {
        if s.uint("tcpcl.v4.xfer_flags.start") == Some(1) {
            seen = 0;
        }
        seen += s.uint("tcpcl.v4.xfer_segment.data_len").unwrap();
        assert_eq!(
            a.uint("tcpcl.v4.xfer_flags"),
            s.uint("tcpcl.v4.xfer_flags"),
            "ack flags"
        );
        assert_eq!(
            a.uint("tcpcl.v4.xfer_ack.ack_len"),
            Some(seen),
            "ack length"
        );
    }
}

/// Checks the transfers one side sent from the decoded segment fields alone (not from
/// tshark's transfer accounting): per transfer ID, START on the first segment only, END
/// on the last only, and the data lengths adding up to the Transfer Length extension
/// when there is one. Returns each transfer's total length, in order.
fn verify_transfers(wire: &WireReport, ours: bool) -> Vec<u64> {
    let mut totals: Vec<(String, u64, bool, Option<u64>)> = Vec::new();
    for s in wire.tcpcl_messages(ours, XFER_SEGMENT) {
        let id = s.first("tcpcl.v4.xfer_id").unwrap().to_owned();
        let start = s.uint("tcpcl.v4.xfer_flags.start") == Some(1);
        let end = s.uint("tcpcl.v4.xfer_flags.end") == Some(1);
        let len = s.uint("tcpcl.v4.xfer_segment.data_len").unwrap();
        match totals.last_mut() {
            Some((tid, total, done, _)) if *tid == id && !*done => {
                assert!(!start, "START inside transfer {id}");
                *total += len;
                *done = end;
            }
            _ => {
                assert!(start, "transfer {id} does not begin with START");
                let announced = s.uint("tcpcl.v4.xferext.transfer_length.total_len");
                totals.push((id, len, end, announced));
            }
        }
    }
    for (id, total, done, announced) in &totals {
        assert!(done, "transfer {id} has no END segment");
        if let Some(a) = announced {
            assert_eq!(a, total, "transfer {id}: Transfer Length vs segments");
        }
    }
    totals.into_iter().map(|(_, t, _, _)| t).collect()
}

// ----- proto → dtnd ---------------------------------------------------------------

/// proto connects to dtnd and sends two BPv7 bundles: a small one in one segment and a
/// 50 000-byte one in 16 KiB segments (with a Transfer Length extension). dtnd accepts
/// both and delivers them to `dtn://node2/incoming`, where `dtnrecv` reads them back
/// intact. proto then ends the session with SESS_TERM, which dtnd answers.
#[test]
#[ignore = "needs dtnd and tshark"]
fn proto_sends_bundles_to_dtnd() {
    keylog();
    let Some(dtn7) = dtn7() else {
        return;
    };
    let label = "proto→dtnd";
    let started = Instant::now();
    let dtnd = Dtnd::start(&dtn7, "node2", None, label).unwrap();
    let Some(capture) = LiveCapture::start(dtnd.tcp_port).unwrap() else {
        return;
    };
    let mut cfg = dtnd_config("dtn://proto/");
    cfg.segment_size_tx_initial = 16 * 1024;
    let agent = Agent::new(cfg).unwrap();
    let s = agent.connect(("127.0.0.1", dtnd.tcp_port)).unwrap();
    let params = s.wait_established(T).unwrap();
    eprintln!("[{label}] {} ; session {params:?}", dtn7.version());
    assert_eq!(params.peer_node_id, "dtn://node2/");
    assert_eq!(params.keepalive, DTND_KEEPALIVE);
    assert_eq!(params.peer_segment_mru, DTND_MRU);
    assert_eq!(params.peer_transfer_mru, DTND_MRU);
    assert!(!params.tls);

    let small = Bundle::new(
        "dtn://proto/",
        "dtn://node2/incoming",
        1,
        b"hello dtn7, from proto",
    );
    let big = Bundle::new(
        "dtn://proto/",
        "dtn://node2/incoming",
        2,
        &pattern(50_000, 7),
    );
    let sent_at = Instant::now();
    s.send_bytes(small.encode().unwrap()).unwrap();
    s.send_bytes(big.encode().unwrap()).unwrap();
    s.wait_sent(T).unwrap();
    let sent_in = sent_at.elapsed();

    // dtnd delivered both to its endpoint; read them back and decode.
    let mut got: Vec<Bundle> = (0..2)
        .map(|_| Bundle::decode(&dtnd.recv("incoming", T).unwrap()).unwrap())
        .collect();
    got.sort_by_key(|b| b.sequence);
    for (g, want) in got.iter().zip([&small, &big]) {
        eprintln!(
            "[{label}] dtnd delivered seq {} from {} to {}: {} payload bytes, blocks {:?}",
            g.sequence,
            g.source,
            g.destination,
            g.payload().map_or(0, <[u8]>::len),
            g.block_types()
        );
        assert_eq!(g.source, want.source);
        assert_eq!(g.destination, want.destination);
        assert_eq!(g.created_ms, want.created_ms);
        assert_eq!(g.lifetime_ms, want.lifetime_ms);
        assert_eq!(g.payload(), want.payload(), "payload intact");
    }

    s.shutdown(SessTermReason::UNKNOWN).unwrap();
    let closed = s.wait_closed(T).unwrap();
    assert!(closed.is_graceful(), "{closed:?}");
    let wire = capture.finish_tcpcl(Side::Client).unwrap();
    let _log = dtnd.stop_and_report();

    print_sequence(label, &wire);
    wire.assert_ours_clean(label).unwrap();
    let our_segs = wire.tcpcl_messages(true, XFER_SEGMENT);
    let lens = data_lens(&our_segs);
    eprintln!("[{label}] our segment lengths {lens:?}");
    let small_len = small.encode().unwrap().len() as u64;
    let big_len = big.encode().unwrap().len() as u64;
    assert_eq!(lens[0], small_len);
    assert_eq!(&lens[1..], [16384, 16384, 16384, big_len - 3 * 16384]);
    assert!(
        lens.iter().all(|&n| n <= DTND_MRU),
        "within dtnd's segment MRU"
    );
    assert_eq!(verify_transfers(&wire, true), [small_len, big_len]);
    assert_eq!(flags(&our_segs), [0x03, 0x02, 0x00, 0x00, 0x01]);
    // The multi-segment transfer announces its length (RFC 9174 §5.2.5).
    assert_eq!(
        our_segs[1].uint("tcpcl.v4.xferext.transfer_length.total_len"),
        Some(big_len)
    );
    assert!(!our_segs[0].has("tcpcl.v4.xferext.transfer_length.total_len"));
    // tshark's BPv7 dissector took our bundles apart without complaint (CRC-32C checked).
    let bp = wire
        .our_packets()
        .find(|p| p.has_layer("bpv7"))
        .expect("a bundle tshark decoded");
    assert_eq!(
        bp.first("bpv7.primary.dst_uri"),
        Some("dtn://node2/incoming")
    );
    assert_eq!(bp.first("bpv7.primary.src_uri"), Some("dtn://proto/"));
    assert_eq!(bp.uint("bpv7.crc_type"), Some(2));
    // Our SESS_TERM, and dtnd's reply.
    let term = wire.tcpcl_messages(true, SESS_TERM);
    assert_eq!(term.len(), 1);
    assert_eq!(term[0].uint("tcpcl.v4.sess_term.flags.reply"), Some(0));
    let reply = wire.tcpcl_messages(false, SESS_TERM);
    assert_eq!(reply.len(), 1, "dtnd answers SESS_TERM");
    assert_eq!(reply[0].uint("tcpcl.v4.sess_term.flags.reply"), Some(1));
    // dtn7 quirk: its XFER_ACKs carry no flags (RFC 9174 wants the segment's flags).
    let acks = wire.tcpcl_messages(false, XFER_ACK);
    assert_eq!(acks.len(), 5, "dtnd acks every segment");
    assert_eq!(flags(&acks), [0; 5], "dtnd's XFER_ACK flags (quirk pinned)");
    let ack_lens: Vec<u64> = acks
        .iter()
        .filter_map(|a| a.uint("tcpcl.v4.xfer_ack.ack_len"))
        .collect();
    assert_eq!(
        ack_lens,
        [small_len, 16384, 32768, 49152, big_len],
        "cumulative ack lengths"
    );
    eprintln!(
        "[{label}] done in {:?} (both bundles acknowledged {sent_in:?} after submission)",
        started.elapsed()
    );
}

// ----- dtnd → proto ---------------------------------------------------------------

/// dtnd, with proto's listener as a static peer, forwards a bundle made by `dtnsend`
/// to `dtn://proto/incoming`. proto's listener (Segment MRU 8192, so dtnd must segment)
/// receives it intact into a memory sink; the bundle decodes and its payload matches.
/// proto then ends the session.
#[test]
#[ignore = "needs dtnd and tshark"]
fn dtnd_forwards_a_dtnsend_bundle_to_proto() {
    keylog();
    let Some(dtn7) = dtn7() else {
        return;
    };
    let label = "dtnd→proto";
    let started = Instant::now();
    let mut cfg = dtnd_config("dtn://proto/");
    cfg.segment_size_mru = 8192;
    let agent = Agent::new(cfg).unwrap();
    let events = agent.events();
    let addr = agent.listen("127.0.0.1:0").unwrap();
    let Some(capture) = LiveCapture::start(addr.port()).unwrap() else {
        return;
    };
    let peer = format!("tcp://127.0.0.1:{}/proto", addr.port());
    let dtnd = Dtnd::start(&dtn7, "node2", Some(&peer), label).unwrap();
    let payload = pattern(20_000, 3);
    let out = dtnd.send("dtn://proto/incoming", &payload).unwrap();
    eprintln!("[{label}] dtnsend: {}", out.replace('\n', " | "));

    let s = established(&agent, &events).unwrap();
    let params = s.parameters().unwrap();
    assert_eq!(params.peer_node_id, "dtn://node2/");
    assert_eq!(params.keepalive, DTND_KEEPALIVE);
    let (sid, bytes) = next_bundle(&events).unwrap();
    assert_eq!(sid, s.id());
    let b = Bundle::decode(&bytes).unwrap();
    eprintln!(
        "[{label}] received {} bytes: {} → {}, blocks {:?}, crc type {}",
        bytes.len(),
        b.source,
        b.destination,
        b.block_types(),
        b.crc_type
    );
    assert_eq!(b.destination, "dtn://proto/incoming");
    assert_eq!(b.source, "dtn://node2/");
    assert_eq!(b.payload(), Some(&payload[..]), "payload intact");

    s.shutdown(SessTermReason::UNKNOWN).unwrap();
    let closed = s.wait_closed(T).unwrap();
    assert!(closed.is_graceful(), "{closed:?}");
    let wire = capture.finish_tcpcl(Side::Server).unwrap();
    dtnd.stop_and_report();

    print_sequence(label, &wire);
    wire.assert_ours_clean(label).unwrap();
    // dtnd segments by our Segment MRU: 8192, 8192, rest.
    let segs = wire.tcpcl_messages(false, XFER_SEGMENT);
    let lens = data_lens(&segs);
    eprintln!("[{label}] dtnd's segment lengths {lens:?}");
    let n = bytes.len() as u64;
    assert_eq!(lens, [8192, 8192, n - 16384]);
    assert_eq!(flags(&segs), [0x02, 0x00, 0x01]);
    assert_eq!(verify_transfers(&wire, false), [n]);
    assert_acks_reflect(&wire, true);
    let ours = wire.tcpcl_messages(true, SESS_INIT);
    assert_eq!(ours[0].uint("tcpcl.v4.sess_init.seg_mru"), Some(8192));
    let reply = wire.tcpcl_messages(false, SESS_TERM);
    assert_eq!(reply.len(), 1, "dtnd answers SESS_TERM");
    assert_eq!(reply[0].uint("tcpcl.v4.sess_term.flags.reply"), Some(1));
    eprintln!("[{label}] done in {:?}", started.elapsed());
}

// ----- dtn7 quirks -----------------------------------------------------------------

/// dtn7 quirk: with a negotiated keepalive of 0 (RFC 9174: no keepalives), dtnd's
/// session loop sleeps for 0 s, sends a KEEPALIVE at once and, with nothing received
/// in that zero interval, terminates the session with SESS_TERM "idle timeout". proto
/// answers the SESS_TERM correctly and does not send a KEEPALIVE itself.
#[test]
#[ignore = "needs dtnd and tshark"]
fn dtnd_ends_the_session_when_keepalive_is_zero() {
    keylog();
    let Some(dtn7) = dtn7() else {
        return;
    };
    let label = "keepalive 0";
    let dtnd = Dtnd::start(&dtn7, "node2", None, label).unwrap();
    let Some(capture) = LiveCapture::start(dtnd.tcp_port).unwrap() else {
        return;
    };
    let mut cfg = dtnd_config("dtn://proto/");
    cfg.keepalive_time = 0;
    let agent = Agent::new(cfg).unwrap();
    let events = agent.events();
    let s = agent.connect(("127.0.0.1", dtnd.tcp_port)).unwrap();
    let params = s.wait_established(T).unwrap();
    assert_eq!(params.keepalive, 0);
    let closed = s.wait_closed(T).unwrap();
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let Event::SessionTerminating {
            reason, by_peer, ..
        } = ev
        {
            seen.push((reason, by_peer));
        }
    }
    eprintln!("[{label}] closed: {closed:?}; terminating: {seen:?}");
    let wire = capture.finish_tcpcl(Side::Client).unwrap();
    dtnd.stop_and_report();
    print_sequence(label, &wire);
    wire.assert_ours_clean(label).unwrap();
    assert_eq!(
        closed,
        CloseReason::Session(CoreClose::Terminated {
            reason: SessTermReason::IDLE_TIMEOUT,
            by_peer: true
        })
    );
    assert!(
        !wire.tcpcl_types(true).contains(&KEEPALIVE),
        "we send no KEEPALIVE at keepalive 0"
    );
    let peer = wire.tcpcl_types(false);
    assert!(
        peer.contains(&KEEPALIVE),
        "dtnd's KEEPALIVE (quirk): {peer:?}"
    );
    let term = wire.tcpcl_messages(false, SESS_TERM);
    assert_eq!(
        term[0].uint("tcpcl.v4.ses_term.reason"),
        Some(1),
        "idle timeout"
    );
    let ours = wire.tcpcl_messages(true, SESS_TERM);
    assert_eq!(ours.len(), 1, "we reply to SESS_TERM");
    assert_eq!(ours[0].uint("tcpcl.v4.sess_term.flags.reply"), Some(1));
}

/// dtn7 quirks: dtnd ignores the peer's Transfer MRU, and cannot take a repeated
/// XFER_REFUSE. proto's listener offers a Transfer MRU of 16 KiB; dtnd still sends a
/// ~30 kB bundle, without a Transfer Length extension, in Segment-MRU-sized pieces
/// (all written before it reads any reply). proto refuses the transfer (XFER_REFUSE No
/// Resources) once the data passes its Transfer MRU, refuses each later segment of it
/// again (RFC 9174 §5.2.4), and delivers nothing. dtnd takes the first refusal, then
/// treats the second — for a transfer it has already given up — as a protocol error
/// and closes the TCP connection without SESS_TERM. proto sees the connection end.
#[test]
#[ignore = "needs dtnd and tshark"]
fn dtnd_ignores_our_transfer_mru_and_proto_refuses() {
    keylog();
    let Some(dtn7) = dtn7() else {
        return;
    };
    let label = "transfer MRU";
    let mut cfg = dtnd_config("dtn://proto/");
    cfg.segment_size_mru = 8192;
    cfg.transfer_mru = 16 * 1024;
    let agent = Agent::new(cfg).unwrap();
    let events = agent.events();
    let addr = agent.listen("127.0.0.1:0").unwrap();
    let Some(capture) = LiveCapture::start(addr.port()).unwrap() else {
        return;
    };
    let peer = format!("tcp://127.0.0.1:{}/proto", addr.port());
    let dtnd = Dtnd::start(&dtn7, "node2", Some(&peer), label).unwrap();
    dtnd.send("dtn://proto/incoming", &pattern(30_000, 5))
        .unwrap();
    let s = established(&agent, &events).unwrap();
    let refused = wait_event(&events, T, |ev| match ev {
        Event::TransferRefused {
            transfer_id,
            reason,
            ..
        } => Some((*transfer_id, *reason)),
        Event::BundleReceived { len, .. } => panic!("a {len}-byte bundle got through"),
        _ => None,
    })
    .unwrap();
    eprintln!("[{label}] refused: {refused:?}");
    assert_eq!(refused.1, XferRefuseReason::NO_RESOURCES);
    let closed = s.wait_closed(T).unwrap();
    eprintln!("[{label}] session closed: {closed:?}");
    assert!(
        !closed.is_graceful(),
        "dtnd closes without SESS_TERM: {closed:?}"
    );
    let mut late = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let Event::BundleReceived { len, .. } = ev {
            late.push(len);
        }
    }
    assert!(
        late.is_empty(),
        "bundles delivered despite the refusal: {late:?}"
    );
    let wire = capture.finish_tcpcl(Side::Server).unwrap();
    dtnd.stop_and_report();
    print_sequence(label, &wire);
    wire.assert_ours_clean(label).unwrap();
    let ours = wire.tcpcl_messages(true, SESS_INIT);
    assert_eq!(ours[0].uint("tcpcl.v4.sess_init.xfer_mru"), Some(16 * 1024));
    // dtnd sent the whole bundle regardless, with no Transfer Length extension.
    let segs = wire.tcpcl_messages(false, XFER_SEGMENT);
    let total: u64 = data_lens(&segs).iter().sum();
    eprintln!("[{label}] dtnd's segments {:?}", data_lens(&segs));
    assert!(total > 16 * 1024, "dtnd sent {total} bytes");
    assert!(!segs[0].has("tcpcl.v4.xferext.transfer_length.total_len"));
    let over_mru = wire
        .peer_findings()
        .iter()
        .filter(|f| f.contains("tcpcl.v4.xferload_over_xfer_mru"))
        .count();
    assert!(
        over_mru > 0,
        "tshark flags dtnd's segments beyond our Transfer MRU"
    );
    // Our refusals: one per segment past the MRU, all No Resources (2).
    let refuse = wire.tcpcl_messages(true, 0x03);
    let reasons: Vec<u64> = refuse
        .iter()
        .filter_map(|r| r.uint("tcpcl.v4.xfer_refuse.reason"))
        .collect();
    eprintln!("[{label}] our XFER_REFUSE reasons {reasons:?}");
    assert!(!reasons.is_empty() && reasons.iter().all(|&r| r == 2));
    // dtnd never sent SESS_TERM: it just closed.
    assert!(!wire.tcpcl_types(false).contains(&SESS_TERM));
}

// ----- proto ↔ proto -----------------------------------------------------------------

/// Two proto agents, each sending a BPv7 bundle to the other over one session; the
/// capture must be clean in both directions (every frame is proto's).
fn proto_pair(label: &str, rx_cfg: Config, tx_cfg: Config, tls: bool) -> Result<()> {
    let started = Instant::now();
    let rx = Agent::new(rx_cfg)?;
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let Some(capture) = LiveCapture::start(addr.port())? else {
        return Ok(());
    };
    let tx = Agent::new(tx_cfg)?;
    let tx_events = tx.events();
    let active = tx.connect(addr)?;
    let params = active.wait_established(T)?;
    let passive = established(&rx, &rx_events)?;
    assert_eq!(params.tls, tls);
    assert_eq!(params.peer_node_id, "dtn://rx/");
    assert_eq!(
        passive.parameters().context("passive params")?.peer_node_id,
        "dtn://tx/"
    );
    if tls {
        for (who, s) in [("active", &active), ("passive", &passive)] {
            let info = s.tls_info().context("tls info")?;
            eprintln!(
                "[{label}] {who}: {} {}, peer node IDs {:?}, node authn {:?}",
                info.version, info.cipher_suite, info.peer_identity.node_ids, info.node_authn
            );
            assert_eq!(info.version, "TLSv1_3");
            assert_eq!(info.node_authn, Some(Authn::Success), "{who}");
        }
    }

    // Each side sends a bundle to the other at the same time; the active side's is big
    // enough to take several segments.
    let to_rx = Bundle::new("dtn://tx/", "dtn://rx/incoming", 1, &pattern(300_000, 1));
    let to_tx = Bundle::new(
        "dtn://rx/",
        "dtn://tx/incoming",
        1,
        b"reply from the passive side",
    );
    active.send_bytes(to_rx.encode()?)?;
    passive.send_bytes(to_tx.encode()?)?;
    for (events, want) in [(&rx_events, &to_rx), (&tx_events, &to_tx)] {
        let (_, bytes) = next_bundle(events)?;
        let got = Bundle::decode(&bytes)?;
        assert_eq!(&got, want, "bundle intact");
    }
    active.wait_sent(T)?;
    passive.wait_sent(T)?;
    active.shutdown(SessTermReason::UNKNOWN)?;
    let closed = active.wait_closed(T)?;
    assert!(closed.is_graceful(), "{closed:?}");
    let pclosed = passive.wait_closed(T)?;
    assert!(pclosed.is_graceful(), "{pclosed:?}");
    let wire = if tls {
        capture.finish_tcpcl_tls(Side::Server, keylog())?
    } else {
        capture.finish_tcpcl(Side::Server)?
    };
    print_sequence(label, &wire);
    // Both sides close in order: after its FIN (and close_notify) each reads until the
    // peer's, so no RST (docs/interop.md, fixed).
    wire.assert_all_clean_except(label, &[])?;
    // Contact headers: CAN_TLS as configured, on both sides.
    for ours in [true, false] {
        let ch: Vec<Layer> = wire
            .tcpcl_pdus(ours)
            .into_iter()
            .filter(|l| l.has("tcpcl.contact_hdr.magic"))
            .collect();
        ensure!(ch.len() == 1, "one contact header each, got {}", ch.len());
        assert_eq!(ch[0].uint("tcpcl.contact_hdr.version"), Some(4));
        assert_eq!(
            ch[0].uint("tcpcl.v4.chdr.flags.can_tls"),
            Some(u64::from(tls))
        );
    }
    if tls {
        ensure!(
            wire.report.packets.iter().any(|p| p.has_layer("tls")),
            "no TLS records in the capture"
        );
        // RFC 9174 §4.4 SHOULD: the SESS_TERM sender (the active side) sends close_notify
        // before closing; so does the passive side.
        for ours in [false, true] {
            let (n, f) = wire.close_notify_before_fin(ours)?;
            eprintln!("[{label}] close_notify in frame {n}, FIN in frame {f} (ours: {ours})");
        }
    }
    // The TCPCL messages inside (decrypted for TLS): both SESS_INITs, segments and
    // reflected acks both ways, the SESS_TERM exchange.
    for ours in [true, false] {
        let types = wire.tcpcl_types(ours);
        ensure!(
            types.first() == Some(&SESS_INIT),
            "SESS_INIT first: {types:?} (ours: {ours})"
        );
        ensure!(types.contains(&XFER_SEGMENT), "segments: {types:?}");
        ensure!(
            types.iter().filter(|&&t| t == SESS_TERM).count() == 1,
            "one SESS_TERM: {types:?}"
        );
        assert_acks_reflect(&wire, ours);
    }
    // The transfers, from the decoded fields: passive (ours = Server) sent the reply,
    // the active side the big bundle.
    assert_eq!(
        verify_transfers(&wire, true),
        [to_tx.encode()?.len() as u64]
    );
    assert_eq!(
        verify_transfers(&wire, false),
        [to_rx.encode()?.len() as u64]
    );
    let active_segs = wire.tcpcl_messages(false, XFER_SEGMENT);
    eprintln!(
        "[{label}] done in {:?}; active side's segments {:?}",
        started.elapsed(),
        data_lens(&active_segs)
    );
    Ok(())
}

fn plain_config(node: &str) -> Config {
    let mut c = Config::with_node_id(node);
    c.tls_enable = false;
    c.contact_timeout = 10.0;
    c.sess_term_timeout = 3.0;
    c.segment_size_tx_initial = 64 * 1024;
    c
}

#[test]
#[ignore = "needs tshark live capture"]
fn proto_to_proto_plaintext_both_directions() {
    keylog();
    proto_pair(
        "proto↔proto plain",
        plain_config("dtn://rx/"),
        plain_config("dtn://tx/"),
        false,
    )
    .unwrap();
}

/// TLS 1.3 with certificates from the certgen CA naming each node (NODE-ID otherName),
/// `require_tls` and `require_node_authn` on both sides.
#[test]
#[ignore = "needs tshark live capture"]
fn proto_to_proto_tls_node_authentication_both_directions() {
    keylog();
    let dir = TempDir::new("tls").unwrap();
    let ca = CertFactory::new_ca("proto interop CA").unwrap();
    let ca_file = dir.write("ca.pem", ca.ca_pem()).unwrap();
    let tls_config = |node: &str, name: &str| -> Result<Config> {
        let (cert, key) = ca.issue(&LeafSpec::node(node))?;
        let mut c = plain_config(node);
        c.tls_enable = true;
        c.require_tls = Some(true);
        c.require_node_authn = true;
        c.tls_ca_file = Some(ca_file.clone());
        c.tls_cert_file = Some(dir.write(&format!("{name}.pem"), cert)?);
        c.tls_key_file = Some(dir.write(&format!("{name}.key"), key)?);
        Ok(c)
    };
    proto_pair(
        "proto↔proto TLS",
        tls_config("dtn://rx/", "rx").unwrap(),
        tls_config("dtn://tx/", "tx").unwrap(),
        true,
    )
    .unwrap();
}
