//! The blocking COTP runtime over loopback TCP: handshake, data of every shape,
//! refusal, errors, release, many connections, and a caller-provided stream.

#![allow(clippy::unwrap_used)]

use proto_core::cotp::{DisconnectReason, ErrorTpdu, Params, RejectCause, Tpdu, TpduSize};
use proto_net::cotp::{ConnectOptions, Connection, Error, ListenOptions, Listener, Unbounded};
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

fn opts() -> ConnectOptions {
    ConnectOptions::default()
        .src_tsap("0100")
        .unwrap()
        .dst_tsap("0102")
        .unwrap()
        .max_tpdu_size(TpduSize::S1024)
        .timeout(Some(Duration::from_secs(10)))
        .max_message_size(4 << 20)
}

/// An echo server on an ephemeral port; returns its address.
fn echo_server(listen: ListenOptions) -> SocketAddr {
    let listener = Listener::bind("127.0.0.1:0", listen).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let _ = listener.serve(|mut conn| loop {
            let msg = conn.recv_data()?;
            conn.send_data(&msg)?;
        });
    });
    addr
}

fn big_listen() -> ListenOptions {
    ListenOptions {
        max_message_size: 4 << 20,
        ..ListenOptions::default()
    }
}

#[test]
fn connect_exchange_close_with_every_message_shape() {
    let addr = echo_server(big_listen());
    let mut conn = Connection::connect(addr, opts()).unwrap();
    assert_eq!(conn.tpdu_size(), TpduSize::S1024);
    assert_eq!(conn.core().max_dt_payload(), 1021);
    assert_eq!(
        conn.core().called_tsap().map(ToString::to_string),
        Some("0102".into())
    );
    for len in [1usize, 1021, 1022, 100 * 1024, 4 << 20] {
        let msg: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8).collect();
        conn.send_data(&msg).unwrap();
        assert_eq!(conn.recv_data().unwrap(), msg, "length {len}");
    }
    assert!(matches!(conn.send_data(&[]), Err(Error::Usage(_))));
    conn.close().unwrap();
    assert!(matches!(conn.send_data(b"x"), Err(Error::Closed)));
}

#[test]
fn refused_by_dr_carries_the_reason() {
    let listen = ListenOptions {
        local_tsap: Some("0102".parse().unwrap()),
        ..ListenOptions::default()
    };
    let addr = echo_server(listen);
    let wrong = opts().dst_tsap("0103").unwrap();
    match Connection::connect(addr, wrong) {
        Err(Error::Refused { reason }) => assert_eq!(reason, DisconnectReason::ADDRESS_UNKNOWN),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The listener keeps serving.
    let mut ok = Connection::connect(addr, opts()).unwrap();
    ok.send_data(b"still here").unwrap();
    assert_eq!(ok.recv_data().unwrap(), b"still here");
}

#[test]
fn policy_refuses_by_calling_tsap() {
    let listen = ListenOptions {
        policy: Some(std::sync::Arc::new(|calling, _called| match calling {
            Some(t) if t.as_bytes() == [0x01, 0x00] => Ok(()),
            _ => Err(DisconnectReason::REQUEST_REFUSED),
        })),
        ..ListenOptions::default()
    };
    let addr = echo_server(listen);
    let mut ok = Connection::connect(addr, opts()).unwrap();
    ok.send_data(b"a").unwrap();
    assert_eq!(ok.recv_data().unwrap(), b"a");
    let bad = opts().src_tsap("0200").unwrap();
    assert!(matches!(
        Connection::connect(addr, bad),
        Err(Error::Refused {
            reason: DisconnectReason::REQUEST_REFUSED
        })
    ));
}

#[test]
fn er_from_the_peer_is_an_error_with_the_cause() {
    let listener = Listener::bind("127.0.0.1:0", ListenOptions::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let er = Tpdu::Error(ErrorTpdu {
            dst_ref: conn.core().remote_ref(),
            cause: RejectCause::INVALID_PARAMETER_VALUE,
            params: Params::EMPTY,
        });
        conn.send_tpdu(&er).unwrap();
        // Keep the socket open until the client has read the ER.
        thread::sleep(Duration::from_millis(200));
    });
    let mut conn = Connection::connect(addr, opts()).unwrap();
    match conn.recv_data() {
        Err(Error::PeerError { cause }) => assert_eq!(cause, RejectCause::INVALID_PARAMETER_VALUE),
        other => panic!("expected the ER, got {other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn peer_close_and_dr_surface_on_the_next_receive() {
    let listener = Listener::bind("127.0.0.1:0", ListenOptions::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let msg = conn.recv_data().unwrap();
        conn.send_data(&msg).unwrap();
        conn.close_with_reason(DisconnectReason(0x2a)).unwrap();
    });
    let mut conn = Connection::connect(addr, opts()).unwrap();
    conn.send_data(b"bye").unwrap();
    assert_eq!(conn.recv_data().unwrap(), b"bye");
    match conn.recv_data() {
        Err(Error::Disconnected { reason }) => assert_eq!(reason, DisconnectReason(0x2a)),
        other => panic!("expected the DR, got {other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn receive_tpdu_sees_dts_and_control_tpdus() {
    let listener = Listener::bind("127.0.0.1:0", ListenOptions::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.send_data(&[7u8; 1500]).unwrap();
        conn.close().unwrap();
    });
    let mut conn = Connection::connect(addr, opts()).unwrap();
    let first = conn.receive_tpdu().unwrap();
    let Some(Tpdu::Data(d)) = first.tpdu() else {
        panic!("not a DT: {first:?}")
    };
    assert_eq!((d.data.len(), d.eot), (1021, false));
    let second = conn.receive_tpdu().unwrap();
    let Some(Tpdu::Data(d)) = second.tpdu() else {
        panic!("not a DT")
    };
    assert_eq!((d.data.len(), d.eot), (479, true));
    let third = conn.receive_tpdu().unwrap();
    assert!(
        matches!(third.tpdu(), Some(Tpdu::DisconnectRequest(_))),
        "{third:?}"
    );
    server.join().unwrap();
}

#[test]
fn several_connections_at_once() {
    let addr = echo_server(big_listen());
    let clients: Vec<_> = (0..8u8)
        .map(|i| {
            thread::spawn(move || {
                let mut conn = Connection::connect(addr, opts().src_ref(u16::from(i))).unwrap();
                for round in 0..20usize {
                    let msg = vec![i; 1 + round * 997];
                    conn.send_data(&msg).unwrap();
                    assert_eq!(conn.recv_data().unwrap(), msg);
                }
                conn.close().unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn receive_timeout_is_an_error_not_a_hang() {
    let addr = echo_server(ListenOptions::default());
    let mut conn =
        Connection::connect(addr, opts().timeout(Some(Duration::from_millis(200)))).unwrap();
    let start = std::time::Instant::now();
    assert!(matches!(conn.recv_data(), Err(Error::Timeout(_))));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn connect_to_a_silent_peer_times_out() {
    // A TCP listener that never answers the CR.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let hold = thread::spawn(move || {
        let accepted = tcp.accept();
        thread::sleep(Duration::from_secs(2));
        accepted.map(|_| ())
    });
    let start = std::time::Instant::now();
    let r = Connection::connect(addr, opts().connect_timeout(Duration::from_millis(300)));
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    hold.join().unwrap().unwrap();
}

#[test]
fn runs_over_a_caller_provided_stream() {
    // A Unix socket pair stands in for any `Read + Write` the caller has (a TLS
    // stream, a pipe): both sides run over it, wrapped in `Unbounded`.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let echo = thread::spawn(move || {
        let mut s = Connection::accept_over(Unbounded(b), &ListenOptions::default()).unwrap();
        let m = s.recv_data().unwrap();
        s.send_data(&m).unwrap();
        s.core().called_tsap().map(ToString::to_string)
    });
    let mut conn = Connection::over(Unbounded(a), opts()).unwrap();
    conn.send_data(b"over a pipe").unwrap();
    assert_eq!(conn.recv_data().unwrap(), b"over a pipe");
    assert_eq!(echo.join().unwrap(), Some("0102".to_string()));
}

#[test]
fn send_from_streams_a_reader_as_one_message() {
    let addr = echo_server(big_listen());
    let mut conn = Connection::connect(addr, opts()).unwrap();
    for len in [1usize, 1021, 65_536, 65_537, 3_000_001] {
        let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        // A reader that yields odd-sized pieces.
        let reader = std::io::BufReader::with_capacity(777, &msg[..]);
        assert_eq!(conn.send_from(reader).unwrap(), len as u64);
        assert_eq!(conn.recv_data().unwrap(), msg, "length {len}");
    }
    assert!(matches!(conn.send_from(&[][..]), Err(Error::Usage(_))));
}

#[test]
fn a_receive_timeout_mid_message_loses_nothing() {
    let listener = Listener::bind("127.0.0.1:0", ListenOptions::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        // Send the first half of a message as a DT without EOT, pause, then the rest.
        let first = Tpdu::Data(proto_core::cotp::Data::class0(false, &[1; 500]));
        conn.send_tpdu(&first).unwrap();
        thread::sleep(Duration::from_millis(600));
        let last = Tpdu::Data(proto_core::cotp::Data::class0(true, &[2; 300]));
        conn.send_tpdu(&last).unwrap();
        thread::sleep(Duration::from_millis(200));
    });
    let mut conn =
        Connection::connect(addr, opts().timeout(Some(Duration::from_millis(200)))).unwrap();
    assert!(matches!(conn.recv_data(), Err(Error::Timeout(_))));
    conn.set_timeout(Some(Duration::from_secs(5))).unwrap();
    let msg = conn.recv_data().unwrap();
    assert_eq!(msg.len(), 800);
    assert!(msg[..500].iter().all(|&b| b == 1) && msg[500..].iter().all(|&b| b == 2));
    server.join().unwrap();
}
