//! The last word of a COTP connection is never lost (issue 9, items 2 and 6).
//!
//! Class 0 releases by closing TCP. A side that refuses a message sends a DR and
//! closes; if it closes with the peer's input unread (or still arriving), its kernel
//! answers with a RST. These tests pin both halves of the fix:
//!
//! - a sender whose connection was reset still reads the DR that arrived before the
//!   reset, from `close` and from a failed write, and reports its reason;
//! - a listener that refused a message half-closes and drains the sender's input
//!   before closing, so it produces no RST at all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_core::cotp::{DisconnectReason, TpduSize};
use proto_net::cotp::{ConnectOptions, Connection, Error, ListenOptions, Listener};
use proto_tests::cotp_wire::{cr_with, dr, dt, read_frame, read_to_close, End, CR_PARAMS};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const CONGESTION_AT_TSAP: u8 = 1;
const NORMAL: u8 = 128;
/// The client's source reference (`ConnectOptions::default`) and the listener's.
const CLIENT_REF: u16 = 0;
const SERVER_REF: u16 = 1;

fn opts() -> ConnectOptions {
    ConnectOptions::default()
        .max_tpdu_size(TpduSize::S1024)
        .timeout(Some(Duration::from_secs(10)))
}

/// A peer that completes the handshake through the library, then reads `read` raw
/// bytes, answers with DR "congestion at TSAP" and resets the connection (SO_LINGER
/// 0): the worst case a refusing peer can produce. Reports on `done` once the RST
/// is out.
fn resetting_peer(read: usize) -> (SocketAddr, mpsc::Receiver<()>) {
    let listener = Listener::bind("127.0.0.1:0", ListenOptions::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut s = conn.stream().try_clone().unwrap();
        let mut got = vec![0u8; read];
        s.read_exact(&mut got).unwrap();
        s.write_all(&dr(CLIENT_REF, SERVER_REF, CONGESTION_AT_TSAP))
            .unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
        drop(conn);
        let _ = tx.send(());
    });
    (addr, rx)
}

#[test]
fn close_reports_a_dr_that_arrived_before_the_reset() {
    // One DT of 100 bytes is 107 bytes on the wire.
    let (addr, reset) = resetting_peer(107);
    let mut conn = Connection::connect(addr, opts()).unwrap();
    conn.send_data(&[7; 100]).unwrap();
    reset.recv_timeout(Duration::from_secs(10)).unwrap();
    // Let the RST land: our DR write and our half-close then fail, but the peer's
    // DR is in the receive buffer and must be what `close` reports.
    thread::sleep(Duration::from_millis(100));
    match conn.close() {
        Err(Error::Disconnected { reason }) => {
            assert_eq!(reason, DisconnectReason::CONGESTION_AT_TSAP);
        }
        other => panic!("expected the peer's DR, got {other:?}"),
    }
}

#[test]
fn a_write_failing_on_a_reset_reports_the_dr_that_preceded_it() {
    let (addr, _reset) = resetting_peer(64 * 1024);
    let mut conn = Connection::connect(addr, opts()).unwrap();
    // Far more than the socket buffers hold: the peer resets us mid-write.
    let big = vec![1u8; 32 << 20];
    match conn.send_data(&big) {
        Err(Error::Disconnected { reason }) => {
            assert_eq!(reason, DisconnectReason::CONGESTION_AT_TSAP);
        }
        other => panic!("expected the peer's DR, got {other:?}"),
    }
    // The same through the streaming path.
    let (addr, _reset) = resetting_peer(64 * 1024);
    let mut conn = Connection::connect(addr, opts()).unwrap();
    match conn.send_from(std::io::repeat(3).take(32 << 20)) {
        Err(Error::Disconnected { reason }) => {
            assert_eq!(reason, DisconnectReason::CONGESTION_AT_TSAP);
        }
        other => panic!("expected the peer's DR, got {other:?}"),
    }
}

/// A listener whose connections refuse messages over 10 bytes; each handler's error
/// goes to the returned channel.
fn strict_listener() -> (SocketAddr, mpsc::Receiver<Error>) {
    let listener = Listener::bind(
        "127.0.0.1:0",
        ListenOptions {
            max_message_size: 10,
            ..ListenOptions::default()
        },
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = listener.serve(move |mut conn| {
            let e = loop {
                if let Err(e) = conn.recv_data() {
                    break e;
                }
            };
            let _ = tx.send(e);
            Ok(())
        });
    });
    (addr, rx)
}

fn raw_connected(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&cr_with(CLIENT_REF, 0, &CR_PARAMS)).unwrap();
    assert_eq!(read_frame(&mut s)[5], 0xd0, "expected a CC");
    s
}

#[test]
fn a_refusing_listener_reads_what_the_sender_still_sends_and_closes_without_a_reset() {
    let (addr, errors) = strict_listener();
    for round in 0..20 {
        let mut s = raw_connected(addr);
        s.write_all(&dt(true, &[7; 100])).unwrap();
        // The refusal arrives...
        assert_eq!(
            read_frame(&mut s),
            dr(CLIENT_REF, SERVER_REF, CONGESTION_AT_TSAP),
            "round {round}"
        );
        // ...and what we send after it (our DR, as `close` does, then more) must not
        // meet a closed socket: a RST here is what used to destroy the DR in flight.
        let mut after = dr(SERVER_REF, CLIENT_REF, NORMAL);
        after.extend_from_slice(&dt(true, &[8; 50]));
        s.write_all(&after)
            .and_then(|()| s.shutdown(std::net::Shutdown::Write))
            .unwrap_or_else(|e| panic!("round {round}: the listener reset the connection: {e}"));
        let (rest, end) = read_to_close(&mut s, Duration::from_secs(5));
        assert_eq!(
            end,
            End::Eof,
            "round {round}: the listener reset the connection"
        );
        assert!(rest.is_empty(), "round {round}: {rest:02x?}");
        let e = errors.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            matches!(e, Error::Protocol(_)),
            "round {round}: handler ended with {e:?}"
        );
    }
}

#[test]
fn a_refusing_listener_gives_up_draining_a_sender_that_never_stops() {
    // Flat out (the byte bound ends the drain) and trickling (the time bound does).
    for pause in [Duration::ZERO, Duration::from_millis(50)] {
        let (addr, errors) = strict_listener();
        let mut s = raw_connected(addr);
        s.write_all(&dt(true, &[7; 100])).unwrap();
        assert_eq!(
            read_frame(&mut s),
            dr(CLIENT_REF, SERVER_REF, CONGESTION_AT_TSAP)
        );
        let started = std::time::Instant::now();
        let chunk = dt(false, &[9; 1000]);
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let e = loop {
            if let Ok(e) = errors.try_recv() {
                break e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the listener drained for more than its bound ({pause:?} between writes)"
            );
            if s.write_all(&chunk).is_err() {
                // Reset once the listener stopped draining: its handler is ending.
                break errors.recv_timeout(Duration::from_secs(5)).unwrap();
            }
            thread::sleep(pause);
        };
        assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    }
}
