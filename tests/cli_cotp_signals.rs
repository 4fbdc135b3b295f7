//! `proto cotp listen` and SIGINT/SIGTERM while a peer stalls mid-message (issue 9,
//! item 5): like `tcpcl listen`, the first signal is announced and lets the message
//! in flight finish within a bound; a second one stops at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::ChildGuard;
use proto_tests::cli;
use proto_tests::cotp_wire::{cr_with, dt, read_frame, CR_PARAMS};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

/// The listener's grace for a message in flight (`SHUTDOWN_GRACE` in
/// cli/src/cotp/listen.rs).
const GRACE: Duration = Duration::from_secs(5);

/// A raw peer that connects (CR, CC), sends the first 50 bytes of a 107-byte DT
/// frame and then stalls, holding the connection open.
fn stalled_peer(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&cr_with(1, 0, &CR_PARAMS)).unwrap();
    assert_eq!(read_frame(&mut s)[5], 0xd0, "expected a CC");
    s.write_all(&dt(true, &[5; 100])[..50]).unwrap();
    s
}

fn listening_with_a_stalled_peer() -> (ChildGuard, TcpStream) {
    let (listener, addr) = cli::cotp_listen(bin(), &[]);
    let peer = stalled_peer(&addr);
    // Let the listener read the partial frame.
    std::thread::sleep(Duration::from_millis(300));
    (listener, peer)
}

fn announced(listener: &ChildGuard) {
    assert!(
        listener
            .wait_stderr_line(|l| l.contains("shutting down"), Duration::from_secs(2))
            .is_some(),
        "the first signal was not announced: {}",
        listener.stderr()
    );
}

#[test]
fn sigterm_while_a_peer_stalls_mid_message_stops_within_the_grace() {
    let (listener, _peer) = listening_with_a_stalled_peer();
    let signalled = Instant::now();
    listener.signal("TERM");
    announced(&listener);
    let done = listener.finish(GRACE + Duration::from_secs(3));
    let took = signalled.elapsed();
    assert!(done.status.success(), "{}", done.stderr);
    // Graceful: the message in flight had its chance before it was dropped.
    assert!(took >= GRACE - Duration::from_secs(1), "{took:?}");
    assert!(
        done.stderr.contains("dropped a message still arriving"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_second_signal_stops_the_listener_at_once() {
    let (listener, _peer) = listening_with_a_stalled_peer();
    listener.signal("INT");
    announced(&listener);
    let second = Instant::now();
    listener.signal("TERM");
    let done = listener.finish(Duration::from_millis(1500));
    assert!(second.elapsed() < Duration::from_millis(1500));
    assert!(done.stderr.contains("stopping now"), "{}", done.stderr);
}
