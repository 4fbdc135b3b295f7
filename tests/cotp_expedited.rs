//! RFC 1006 expedited data over loopback: raw peers (bytes written and read by hand,
//! checked with our own decoder) against the `proto_net::cotp` listener and client.
//!
//! tshark 4.0 dissects the CR/CC option but shows a class 0 ED only as data, so these
//! frames are checked here, byte for byte, rather than in `tshark_codecs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_core::cotp::connection::UsageError;
use proto_core::cotp::{decode_frame, expedited, Tpdu};
use proto_core::tpkt::Status;
use proto_net::cotp::{ConnectOptions, Connection, Error, ListenOptions, Listener, Received};
use proto_tests::cotp_wire::{cc, cr_with, dt, ed, er, read_frame, read_to_close, CR_PARAMS};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const READ: Duration = Duration::from_secs(3);

/// An echo listener that negotiates expedited data when `expedited`: messages come
/// back as messages, EDs as EDs. Every received unit is reported on the channel.
fn server(expedited: bool) -> (SocketAddr, mpsc::Receiver<Received>) {
    let listener = Listener::bind(
        "127.0.0.1:0",
        ListenOptions {
            expedited,
            handshake_timeout: Duration::from_secs(2),
            ..ListenOptions::default()
        },
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = listener.serve(move |mut conn| loop {
            let got = conn.recv()?;
            match &got {
                Received::Message(m) => conn.send_data(m)?,
                Received::Expedited(e) => conn.send_expedited(e)?,
            }
            let _ = tx.send(got);
        });
    });
    (addr, rx)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READ)).unwrap();
    s
}

/// The CR parameters plus C6 = `c6`.
fn cr_params_with_c6(c6: u8) -> Vec<u8> {
    let mut p = CR_PARAMS.to_vec();
    p.extend([0xc6, 1, c6]);
    p
}

fn decode(frame: &[u8]) -> Tpdu<'_> {
    match decode_frame(frame, 65535).unwrap() {
        Status::Complete((t, n)) => {
            assert_eq!(n, frame.len());
            t
        }
        Status::Partial { .. } => panic!("partial frame {frame:02x?}"),
    }
}

#[test]
fn negotiated_expedited_data_is_echoed_and_an_ed_between_dts_keeps_the_message_whole() {
    let (addr, got) = server(true);
    let mut s = connect(addr);
    s.write_all(&cr_with(2, 0, &cr_params_with_c6(0x01)))
        .unwrap();
    let cc_frame = read_frame(&mut s);
    let Tpdu::ConnectionConfirm(c) = decode(&cc_frame) else {
        panic!("no CC: {cc_frame:02x?}")
    };
    assert!(
        expedited::selected(&c.params),
        "the CC selects expedited data"
    );
    // One ED of 1 octet, one of 16 (the limit): each comes back as the same ED.
    for data in [&b"!"[..], &[0xa5; 16][..]] {
        s.write_all(&ed(data)).unwrap();
        let echoed = read_frame(&mut s);
        assert_eq!(echoed, ed(data));
        let Tpdu::ExpeditedData(e) = decode(&echoed) else {
            panic!()
        };
        assert_eq!((e.dst_ref, e.eot, e.nr, e.data), (None, true, 0, data));
    }
    // An ED between two DTs of one message: the handler gets the ED first, then the
    // whole message; the echo follows the same order.
    let mut burst = dt(false, b"first half ");
    burst.extend(ed(b"urgent"));
    burst.extend(dt(true, b"second half"));
    s.write_all(&burst).unwrap();
    assert_eq!(read_frame(&mut s), ed(b"urgent"));
    assert_eq!(read_frame(&mut s), dt(true, b"first half second half"));
    let units: Vec<Received> = got.iter().take(4).collect();
    assert_eq!(
        units,
        [
            Received::Expedited(b"!".to_vec()),
            Received::Expedited(vec![0xa5; 16]),
            Received::Expedited(b"urgent".to_vec()),
            Received::Message(b"first half second half".to_vec()),
        ]
    );
}

#[test]
fn an_ed_over_16_octets_is_answered_with_an_er_echoing_its_header() {
    let (addr, got) = server(true);
    let mut s = connect(addr);
    s.write_all(&cr_with(2, 0, &cr_params_with_c6(0x01)))
        .unwrap();
    read_frame(&mut s);
    s.write_all(&ed(&[0; 17])).unwrap();
    let (rest, _) = read_to_close(&mut s, READ);
    assert_eq!(
        rest,
        er(2, 0, &[2, 0x10, 0x80]),
        "ER cause 0 with the ED header"
    );
    assert!(got.try_recv().is_err(), "nothing reached the handler");
}

#[test]
fn without_negotiation_an_ed_is_an_invalid_tpdu_type() {
    // (listener willing, CR's C6): neither leaves the option on.
    for (willing, c6) in [(true, None), (true, Some(0x00)), (false, Some(0x01))] {
        let (addr, got) = server(willing);
        let mut s = connect(addr);
        let params = c6.map_or(CR_PARAMS.to_vec(), cr_params_with_c6);
        s.write_all(&cr_with(2, 0, &params)).unwrap();
        let cc_frame = read_frame(&mut s);
        let Tpdu::ConnectionConfirm(c) = decode(&cc_frame) else {
            panic!("no CC")
        };
        assert!(!expedited::selected(&c.params), "{willing} {c6:?}");
        s.write_all(&ed(b"x")).unwrap();
        let (rest, _) = read_to_close(&mut s, READ);
        assert_eq!(rest, er(2, 2, &[2, 0x10, 0x80]), "{willing} {c6:?}");
        assert!(got.try_recv().is_err());
    }
}

/// A raw responder: reads the CR, answers with a CC whose parameters are `cc_params`,
/// then runs `then` on the socket.
fn raw_server(
    cc_params: &'static [u8],
    then: impl FnOnce(&mut TcpStream, Vec<u8>) + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(READ)).unwrap();
        let cr = read_frame(&mut s);
        s.write_all(&cc(0, 0x77, cc_params)).unwrap();
        then(&mut s, cr);
    });
    (addr, h)
}

#[test]
fn our_client_proposes_sends_and_receives_expedited_data() {
    let (addr, peer) = raw_server(&[0xc0, 1, 0x0a, 0xc6, 1, 1], |s, cr| {
        let Tpdu::ConnectionRequest(c) = decode(&cr) else {
            panic!("no CR")
        };
        assert!(expedited::selected(&c.params), "our CR proposes it");
        assert_eq!(read_frame(s), ed(b"hi"));
        // An ED, then a message: `recv_data` returns the message and keeps the ED.
        let mut out = ed(b"interrupt");
        out.extend(dt(true, b"data"));
        s.write_all(&out).unwrap();
        read_to_close(s, READ);
    });
    let opts = ConnectOptions::default().expedited(true);
    let mut c = Connection::connect(addr, opts).unwrap();
    assert!(c.expedited_selected());
    c.send_expedited(b"hi").unwrap();
    assert_eq!(c.recv_data().unwrap(), b"data");
    assert_eq!(
        c.recv().unwrap(),
        Received::Expedited(b"interrupt".to_vec())
    );
    c.close().unwrap();
    peer.join().unwrap();
}

#[test]
fn our_client_does_not_send_ed_when_the_cc_leaves_the_option_out() {
    let (addr, peer) = raw_server(&[0xc0, 1, 0x0a], |s, _| {
        // Nothing but our DR at the close: no ED was written.
        let (rest, _) = read_to_close(s, READ);
        assert_eq!(rest[4..6], [6, 0x80], "only a DR: {rest:02x?}");
    });
    let mut c = Connection::connect(addr, ConnectOptions::default().expedited(true)).unwrap();
    assert!(!c.expedited_selected());
    assert!(matches!(
        c.send_expedited(b"x"),
        Err(Error::Usage(UsageError::ExpeditedNotSelected))
    ));
    c.close().unwrap();
    peer.join().unwrap();
}

#[test]
fn recv_data_stops_at_64_waiting_eds_and_loses_nothing() {
    let (addr, peer) = raw_server(&[0xc0, 1, 0x0a, 0xc6, 1, 1], |s, _| {
        let mut out = dt(false, b"begun ");
        for i in 0..65u8 {
            out.extend(ed(&[i]));
        }
        out.extend(dt(true, b"and ended"));
        s.write_all(&out).unwrap();
        read_to_close(s, READ);
    });
    let mut c = Connection::connect(addr, ConnectOptions::default().expedited(true)).unwrap();
    assert!(matches!(c.recv_data(), Err(Error::ExpeditedBacklog)));
    for i in 0..64u8 {
        assert_eq!(c.recv().unwrap(), Received::Expedited(vec![i]));
    }
    // The 65th ED was still in the input: `recv` returns it, then the message whole.
    assert_eq!(c.recv().unwrap(), Received::Expedited(vec![64]));
    assert_eq!(c.recv_data().unwrap(), b"begun and ended");
    c.close().unwrap();
    peer.join().unwrap();
}
