//! Hostile peers against the real COTP listener (`proto_net::cotp::Listener::serve`
//! with an echo handler), speaking raw bytes over loopback TCP.
//!
//! Every case asserts the exact TPDU the listener answers with (X.224 class 0 over
//! RFC 1006: ER with the offending header echoed, DR with a reason, DC, or a silent
//! close), that nothing malformed or truncated reaches the handler, and that a
//! well-behaved client still connects and echoes afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_core::cotp::TpduSize;
use proto_net::cotp::{ConnectOptions, Connection, ListenOptions, Listener};
use proto_tests::cotp_wire::{
    self as wire, dc, dr, dt, er, read_frame, read_to_close, tpkt, End, CR_PARAMS,
};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bound on every read of a test socket.
const READ: Duration = Duration::from_secs(3);
/// The listener's bound on waiting for a CR.
const HANDSHAKE: Duration = Duration::from_secs(1);
/// The listener's largest message.
const MAX_MESSAGE: usize = 1 << 20;

/// Our source reference in raw CRs, and the listener's (the `ListenOptions` default).
const OUR_REF: u16 = 2;
const SERVER_REF: u16 = 1;

// ----- the listener --------------------------------------------------------------------

/// An echo listener; `delivered` records the length of every message its handler got,
/// `errors` the error each handler ended with.
struct Server {
    addr: SocketAddr,
    delivered: Arc<Mutex<Vec<usize>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

fn server() -> Server {
    server_with(ListenOptions {
        handshake_timeout: HANDSHAKE,
        max_message_size: MAX_MESSAGE,
        ..ListenOptions::default()
    })
}

fn server_with(opts: ListenOptions) -> Server {
    let listener = Listener::bind("127.0.0.1:0", opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (seen, failed) = (Arc::clone(&delivered), Arc::clone(&errors));
    thread::spawn(move || {
        let _ = listener.serve(move |mut conn| {
            let e = loop {
                let msg = match conn.recv_data() {
                    Ok(m) => m,
                    Err(e) => break e,
                };
                seen.lock().unwrap().push(msg.len());
                if let Err(e) = conn.send_data(&msg) {
                    break e;
                }
            };
            failed.lock().unwrap().push(e.to_string());
            Err(e)
        });
    });
    Server {
        addr,
        delivered,
        errors,
    }
}

impl Server {
    /// A well-behaved client connects, echoes a few messages (one spanning several
    /// DTs) and closes.
    fn assert_serves(&self) {
        let opts = ConnectOptions::default()
            .src_tsap("0100")
            .unwrap()
            .dst_tsap("0102")
            .unwrap()
            .max_tpdu_size(TpduSize::S1024)
            .connect_timeout(READ)
            .timeout(Some(READ));
        let mut c = Connection::connect(self.addr, opts).expect("well-behaved client connects");
        for len in [1usize, 3000] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            c.send_data(&msg).expect("send");
            assert_eq!(c.recv_data().expect("echo"), msg, "echo of {len} bytes");
        }
        c.close().expect("close");
    }

    fn delivered(&self) -> Vec<usize> {
        self.delivered.lock().unwrap().clone()
    }

    /// Waits for a handler to end with an error containing `text`.
    fn assert_handler_error(&self, text: &str) {
        let deadline = Instant::now() + READ;
        loop {
            let errors = self.errors.lock().unwrap().clone();
            if errors.iter().any(|e| e.contains(text)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no handler error containing {text:?}: {errors:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

// ----- raw wire helpers ----------------------------------------------------------------

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, READ).unwrap();
    s.set_read_timeout(Some(READ)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A CR (in its TPKT) with source reference [`OUR_REF`], the class/option octet
/// `class_opt` and the encoded parameter block `params`.
fn cr_with(class_opt: u8, params: &[u8]) -> Vec<u8> {
    wire::cr_with(OUR_REF, class_opt, params)
}

fn cr() -> Vec<u8> {
    cr_with(0, &CR_PARAMS)
}

/// The CC the listener answers [`cr`] with.
fn cc() -> Vec<u8> {
    wire::cc(OUR_REF, SERVER_REF, &CR_PARAMS)
}

/// Sends `bytes` and expects exactly `reply` followed by the listener's close.
fn expect_reply_then_close(s: &mut TcpStream, bytes: &[u8], reply: &[u8]) {
    s.write_all(bytes).unwrap();
    let (got, end) = read_to_close(s, READ);
    assert_eq!(got, reply, "reply to {bytes:02x?}");
    assert_eq!(end, End::Eof, "the listener closed with a reset");
}

/// A raw connection through CR/CC.
fn connected(addr: SocketAddr) -> TcpStream {
    let mut s = raw(addr);
    s.write_all(&cr()).unwrap();
    assert_eq!(read_frame(&mut s), cc(), "CC");
    s
}

/// Opens a fresh connection, sends `bytes` before any CR, expects `reply` and the close.
fn before_cr(server: &Server, bytes: &[u8], reply: &[u8]) {
    let mut s = raw(server.addr);
    expect_reply_then_close(&mut s, bytes, reply);
    server.assert_serves();
}

/// Connects, sends `bytes` in the data phase, expects `reply` and the close, and the
/// handler's `recv_data` to fail with an error naming `error`.
fn in_data_phase(server: &Server, bytes: &[u8], reply: &[u8], error: &str) {
    server.errors.lock().unwrap().clear();
    let mut s = connected(server.addr);
    expect_reply_then_close(&mut s, bytes, reply);
    server.assert_handler_error(error);
    assert!(server.delivered().iter().all(|&n| n == 1 || n == 3000));
    server.assert_serves();
}

// ----- the cases -----------------------------------------------------------------------

const PROTOCOL_ERROR: u8 = 133;
const NEGOTIATION_FAILED: u8 = 130;
const HEADER_OR_PARAMETER_LENGTH_INVALID: u8 = 138;
const CONGESTION_AT_TSAP: u8 = 1;
const NORMAL: u8 = 128;
const CAUSE_NOT_SPECIFIED: u8 = 0;
const CAUSE_INVALID_TPDU_TYPE: u8 = 2;
const CAUSE_INVALID_PARAMETER_VALUE: u8 = 3;

#[test]
fn tpkt_version_4_is_a_protocol_error_dr() {
    let srv = server();
    let v4 = [4, 0, 0, 7, 2, 0xf0, 0x80];
    before_cr(&srv, &v4, &dr(0, SERVER_REF, PROTOCOL_ERROR));
    in_data_phase(
        &srv,
        &v4,
        &dr(OUR_REF, SERVER_REF, PROTOCOL_ERROR),
        "TPKT version",
    );
    // The version octet alone is enough to refuse: no need to wait for the header.
    before_cr(&srv, &[4], &dr(0, SERVER_REF, PROTOCOL_ERROR));
}

#[test]
fn tpkt_length_below_7_is_a_protocol_error_dr() {
    let srv = server();
    for len in [0u8, 4, 6] {
        let bad = [3, 0, 0, len, 2, 0xf0, 0x80];
        before_cr(&srv, &bad, &dr(0, SERVER_REF, PROTOCOL_ERROR));
        in_data_phase(
            &srv,
            &bad,
            &dr(OUR_REF, SERVER_REF, PROTOCOL_ERROR),
            "is below the minimum of 7",
        );
    }
}

#[test]
fn tpkt_length_at_the_16_bit_maximum_for_a_control_tpdu_is_refused_before_buffering() {
    // A CR announcing 65535 octets: larger than any control TPDU buffer. Refused from the
    // first three octets with an ER echoing them; the 65 KiB are never awaited.
    let srv = server();
    let head = [3, 0, 0xff, 0xff, 0x11, 0xe0, 0];
    before_cr(&srv, &head, &er(0, CAUSE_NOT_SPECIFIED, &head[4..]));
    in_data_phase(
        &srv,
        &head,
        &er(OUR_REF, CAUSE_NOT_SPECIFIED, &head[4..]),
        "control TPDU exceeds the buffer",
    );
}

#[test]
fn li_255_is_rejected_with_the_header_echoed() {
    let srv = server();
    let tpdu = [0xff, 0xe0, 0, 0, 0, 2, 0];
    before_cr(&srv, &tpkt(&tpdu), &er(0, CAUSE_NOT_SPECIFIED, &tpdu));
    let ak = [0xff, 0x60, 0, 1, 0];
    in_data_phase(
        &srv,
        &tpkt(&ak),
        &er(OUR_REF, CAUSE_NOT_SPECIFIED, &ak),
        "length indicator",
    );
}

#[test]
fn li_beyond_the_tpkt_is_rejected_with_the_header_echoed() {
    let srv = server();
    // LI 17 (a full CR header) in a 7-octet TPDU.
    let tpdu = [0x11, 0xe0, 0, 0, 0, 2, 0];
    before_cr(&srv, &tpkt(&tpdu), &er(0, CAUSE_NOT_SPECIFIED, &tpdu));
    // LI 0: not even a code octet.
    let zero = [0, 0xf0, 0x80];
    in_data_phase(
        &srv,
        &tpkt(&zero),
        &er(OUR_REF, CAUSE_NOT_SPECIFIED, &zero[..1]),
        "length indicator",
    );
}

#[test]
fn unknown_tpdu_code_is_invalid_tpdu_type() {
    let srv = server();
    let tpdu = [2, 0x90, 0];
    before_cr(&srv, &tpkt(&tpdu), &er(0, CAUSE_INVALID_TPDU_TYPE, &tpdu));
    in_data_phase(
        &srv,
        &tpkt(&tpdu),
        &er(OUR_REF, CAUSE_INVALID_TPDU_TYPE, &tpdu),
        "is not a valid TPDU type",
    );
    // A DR code with a non-zero low nibble is no DR.
    let dr_bad = [6, 0x81, 0, 1, 0, 2, 0];
    in_data_phase(
        &srv,
        &tpkt(&dr_bad),
        &er(OUR_REF, CAUSE_INVALID_TPDU_TYPE, &dr_bad),
        "is not a valid TPDU type",
    );
}

#[test]
fn dt_before_cr_is_an_unexpected_tpdu() {
    let srv = server();
    before_cr(
        &srv,
        &dt(true, b"sneaky"),
        &er(0, CAUSE_INVALID_TPDU_TYPE, &[2, 0xf0, 0x80]),
    );
    assert!(
        srv.delivered().iter().all(|&n| n != 6),
        "DT before CR delivered"
    );
}

#[test]
fn cr_preferring_class_2_without_alternative_is_refused_with_negotiation_failed() {
    let srv = server();
    let mut s = raw(srv.addr);
    expect_reply_then_close(
        &mut s,
        &cr_with(0x20, &CR_PARAMS),
        &dr(OUR_REF, 0, NEGOTIATION_FAILED),
    );
    // Class 4 with class 2 as the only alternative: refused the same way.
    let mut params = CR_PARAMS.to_vec();
    params.extend_from_slice(&[0xc7, 1, 0x20]);
    let mut s = raw(srv.addr);
    expect_reply_then_close(
        &mut s,
        &cr_with(0x40, &params),
        &dr(OUR_REF, 0, NEGOTIATION_FAILED),
    );
    // Class 2 with class 0 as an alternative is answered with a class 0 CC.
    let mut params = CR_PARAMS.to_vec();
    params.extend_from_slice(&[0xc7, 1, 0x00]);
    let mut s = raw(srv.addr);
    s.write_all(&cr_with(0x20, &params)).unwrap();
    assert_eq!(read_frame(&mut s), cc());
    s.write_all(&dt(true, b"class 0 after all")).unwrap();
    assert_eq!(read_frame(&mut s), dt(true, b"class 0 after all"));
    srv.assert_serves();
}

#[test]
fn cr_with_an_invalid_tpdu_size_code_is_an_invalid_parameter_value() {
    let srv = server();
    // C0 0x0e is not one of the seven sizes (0x07..=0x0d).
    let params = [0xc0, 1, 0x0e, 0xc1, 2, 1, 0, 0xc2, 2, 1, 2];
    let frame = cr_with(0, &params);
    before_cr(
        &srv,
        &frame,
        &er(0, CAUSE_INVALID_PARAMETER_VALUE, &frame[4..]),
    );
    // A C0 of the wrong length is the same error.
    let frame = cr_with(0, &[0xc0, 2, 0x0a, 0x0a]);
    before_cr(
        &srv,
        &frame,
        &er(0, CAUSE_INVALID_PARAMETER_VALUE, &frame[4..]),
    );
}

#[test]
fn cr_with_a_33_octet_tsap_is_refused_with_a_length_reason() {
    let srv = server();
    for code in [0xc1u8, 0xc2] {
        let mut params = vec![0xc0, 1, 0x0a, code, 33];
        params.extend_from_slice(&[0x5a; 33]);
        let mut s = raw(srv.addr);
        expect_reply_then_close(
            &mut s,
            &cr_with(0, &params),
            &dr(OUR_REF, 0, HEADER_OR_PARAMETER_LENGTH_INVALID),
        );
    }
    // 32 octets is the supported maximum: accepted.
    let mut params = vec![0xc0, 1, 0x0a, 0xc2, 32];
    params.extend_from_slice(&[0x5a; 32]);
    let mut s = raw(srv.addr);
    s.write_all(&cr_with(0, &params)).unwrap();
    let cc = read_frame(&mut s);
    assert_eq!(cc[5], 0xd0, "CC expected, got {cc:02x?}");
    srv.assert_serves();
}

#[test]
fn cr_with_a_header_full_of_unknown_parameters() {
    let srv = server();
    // LI 254, the largest header: the known parameters plus 237 octets of an unknown
    // parameter. Unknown parameters are ignored; the CR is accepted.
    let mut params = CR_PARAMS.to_vec();
    params.extend_from_slice(&[0x99, 235]);
    params.extend_from_slice(&[0xab; 235]);
    assert_eq!(6 + params.len(), 254);
    let mut s = raw(srv.addr);
    s.write_all(&cr_with(0, &params)).unwrap();
    assert_eq!(read_frame(&mut s), cc());
    s.write_all(&dt(true, b"after a fat CR")).unwrap();
    assert_eq!(read_frame(&mut s), dt(true, b"after a fat CR"));
    drop(s);

    // 250 octets of unknown parameters cannot fit a header: the parameter's length runs
    // past the LI. Invalid parameter value, the header echoed up to the ER's 128-octet
    // echo limit (the offending length octet is well inside it).
    let mut params = CR_PARAMS.to_vec();
    params.extend_from_slice(&[0x99, 248]);
    params.extend_from_slice(&[0xab; 235]);
    let frame = cr_with(0, &params);
    let mut tail = frame.clone();
    tail.extend_from_slice(&[0xab; 13]);
    let tail = tpkt(&tail[4..]);
    before_cr(
        &srv,
        &tail,
        &er(0, CAUSE_INVALID_PARAMETER_VALUE, &tail[4..4 + 128]),
    );
}

#[test]
fn ed_ak_rj_ea_cr_cc_in_the_data_phase_are_invalid_tpdu_type_with_header_echo() {
    let srv = server();
    let ed = [4, 0x10, 0, 1, 0x80];
    let mut ed_frame = ed.to_vec();
    ed_frame.extend_from_slice(b"urgent");
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (tpkt(&ed_frame), ed.to_vec()),
        (tpkt(&[4, 0x61, 0, 1, 5]), vec![4, 0x61, 0, 1, 5]),
        (tpkt(&[4, 0x51, 0, 1, 5]), vec![4, 0x51, 0, 1, 5]),
        (tpkt(&[4, 0x20, 0, 1, 5]), vec![4, 0x20, 0, 1, 5]),
        (cr(), cr()[4..].to_vec()),
        (cc(), cc()[4..].to_vec()),
    ];
    for (frame, echo) in cases {
        in_data_phase(
            &srv,
            &frame,
            &er(OUR_REF, CAUSE_INVALID_TPDU_TYPE, &echo),
            "unexpected",
        );
    }
}

#[test]
fn message_over_the_maximum_is_disconnected_and_never_delivered() {
    let srv = server();
    let mut s = raw(srv.addr);
    // Propose 8192-octet TPDUs so the 2 MiB go out in few frames.
    let mut params = CR_PARAMS.to_vec();
    params[2] = 0x0d;
    s.write_all(&cr_with(0, &params)).unwrap();
    let cc = read_frame(&mut s);
    assert_eq!(&cc[4..7], &[0x11, 0xd0, 0]);
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let chunk = vec![0x42u8; 8189];
        let mut sent = 0usize;
        while sent < 2 << 20 {
            let take = chunk.len().min((2 << 20) - sent);
            let eot = sent + take == 2 << 20;
            if w.write_all(&dt(eot, &chunk[..take])).is_err() {
                return sent;
            }
            sent += take;
        }
        sent
    });
    let (got, _end) = read_to_close(&mut s, Duration::from_secs(5));
    let sent = writer.join().unwrap();
    assert_eq!(
        got,
        dr(OUR_REF, SERVER_REF, CONGESTION_AT_TSAP),
        "after {sent} bytes"
    );
    assert!(
        srv.delivered().is_empty(),
        "a truncated message reached the handler: {:?}",
        srv.delivered()
    );
    srv.assert_handler_error("larger than the 1048576-byte limit");
    srv.assert_serves();
}

#[test]
fn a_stalled_half_tpkt_does_not_block_other_clients() {
    let srv = server();
    // Half a CR, then silence: the handshake bound closes it without a reply.
    let mut stalled = raw(srv.addr);
    stalled.write_all(&cr()[..6]).unwrap();
    // Half a DT in the data phase, then silence.
    let mut stalled_dt = connected(srv.addr);
    stalled_dt
        .write_all(&dt(true, b"never finished")[..9])
        .unwrap();
    let start = Instant::now();
    srv.assert_serves();
    assert!(
        start.elapsed() < HANDSHAKE,
        "a stalled peer delayed another client by {:?}",
        start.elapsed()
    );
    let (got, end) = read_to_close(&mut stalled, HANDSHAKE + READ);
    assert_eq!((got, end), (vec![], End::Eof));
    assert!(start.elapsed() >= HANDSHAKE / 2);
    // The stalled DT connection is still open and still completes.
    stalled_dt
        .write_all(&dt(true, b"never finished")[9..])
        .unwrap();
    assert_eq!(read_frame(&mut stalled_dt), dt(true, b"never finished"));
    srv.assert_serves();
}

#[test]
fn a_silent_peer_is_closed_by_the_handshake_timeout() {
    let srv = server();
    let start = Instant::now();
    let mut s = raw(srv.addr);
    let (got, end) = read_to_close(&mut s, HANDSHAKE + READ);
    let took = start.elapsed();
    assert_eq!((got, end), (vec![], End::Eof));
    assert!(
        took >= HANDSHAKE && took < HANDSHAKE + Duration::from_secs(2),
        "closed after {took:?}"
    );
    srv.assert_serves();
}

#[test]
fn two_hundred_connections_at_once_then_dropped() {
    let srv = server();
    let mut conns = Vec::new();
    for i in 0..200 {
        let mut s = raw(srv.addr);
        match i % 4 {
            0 => {}
            1 => s.write_all(&cr()[..3]).unwrap(),
            2 => s.write_all(&cr()).unwrap(),
            _ => {
                s.write_all(&cr()).unwrap();
                s.write_all(&dt(false, b"partial")).unwrap();
            }
        }
        conns.push(s);
    }
    srv.assert_serves();
    drop(conns);
    srv.assert_serves();
    // And 50 complete exchanges at once afterwards.
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let addr = srv.addr;
            thread::spawn(move || {
                let mut s = connected(addr);
                s.write_all(&dt(true, b"many")).unwrap();
                read_frame(&mut s)
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), dt(true, b"many"));
    }
    assert!(srv.delivered().iter().all(|&n| n != 7), "partial delivered");
}

#[test]
fn byte_at_a_time_delivery_of_a_valid_exchange() {
    let srv = server();
    let mut s = raw(srv.addr);
    let mut bytes = cr();
    bytes.extend(dt(false, b"split "));
    bytes.extend(dt(false, b"over "));
    bytes.extend(dt(true, b"three DTs"));
    for b in &bytes {
        s.write_all(&[*b]).unwrap();
        thread::sleep(Duration::from_micros(300));
    }
    assert_eq!(read_frame(&mut s), cc());
    assert_eq!(read_frame(&mut s), dt(true, b"split over three DTs"));
    // Release: the listener answers a DR with a DC.
    s.write_all(&dr(SERVER_REF, OUR_REF, NORMAL)).unwrap();
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (dc(OUR_REF, SERVER_REF), End::Eof));
    srv.assert_serves();
}

#[test]
fn dr_in_the_middle_of_a_message_is_confirmed_and_nothing_is_delivered() {
    let srv = server();
    let mut s = connected(srv.addr);
    s.write_all(&dt(false, b"first half, ")).unwrap();
    // Let the listener consume the first DT before the DR arrives.
    thread::sleep(Duration::from_millis(50));
    s.write_all(&dr(SERVER_REF, OUR_REF, NORMAL)).unwrap();
    let (got, end) = read_to_close(&mut s, READ);
    assert_eq!((got, end), (dc(OUR_REF, SERVER_REF), End::Eof));
    assert!(
        srv.delivered().is_empty(),
        "half a message reached the handler: {:?}",
        srv.delivered()
    );
    srv.assert_handler_error("peer disconnected");
    srv.assert_serves();
}

#[test]
fn garbage_after_an_error_does_not_lose_the_error_reply() {
    // The offending TPDU and more bytes arrive together: the reply must still reach
    // the peer, ahead of any reset caused by unread input.
    let srv = server();
    for garbage in [3000usize, 1 << 20] {
        for handshake in [false, true] {
            let mut s = if handshake {
                raw(srv.addr)
            } else {
                connected(srv.addr)
            };
            let mut bytes = tpkt(&[2, 0x90, 0]);
            bytes.extend(vec![0x55; garbage]);
            let mut w = s.try_clone().unwrap();
            let writer = thread::spawn(move || {
                let _ = w.write_all(&bytes);
            });
            let (got, end) = read_to_close(&mut s, READ);
            eprintln!("garbage {garbage} handshake {handshake}: {end:?}");
            let dst = if handshake { 0 } else { OUR_REF };
            assert_eq!(
                got,
                er(dst, CAUSE_INVALID_TPDU_TYPE, &[2, 0x90, 0]),
                "{garbage} octets of garbage, in the handshake: {handshake}"
            );
            writer.join().unwrap();
        }
    }
    srv.assert_serves();
}

#[test]
fn half_closed_peers_are_released() {
    let srv = server();
    // FIN after the CC, and FIN in the middle of a DT: the listener closes too (the class
    // 0 release), delivering nothing partial.
    let mut s = connected(srv.addr);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s, READ), (vec![], End::Eof));
    let mut s = connected(srv.addr);
    s.write_all(&dt(true, b"cut short")[..8]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s, READ), (vec![], End::Eof));
    srv.assert_handler_error("ended inside a frame or message");
    // FIN in the middle of the CR: closed without a reply.
    let mut s = raw(srv.addr);
    s.write_all(&cr()[..10]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s, READ), (vec![], End::Eof));
    assert!(srv.delivered().is_empty());
    srv.assert_serves();
}

#[test]
fn a_dt_larger_than_the_negotiated_tpdu_size_is_tolerated_within_the_message_limit() {
    // Leniency, not a requirement: peers that send DTs above the negotiated size (the
    // TPKT bound of 65535 still applies) are accepted; the message limit still holds.
    let srv = server();
    let mut s = connected(srv.addr);
    let big = vec![0x61u8; 4000];
    s.write_all(&dt(true, &big)).unwrap();
    // The echo comes back in 1024-octet TPDUs (1021 data octets each).
    let mut echoed = Vec::new();
    while echoed.len() < big.len() {
        let f = read_frame(&mut s);
        assert!(f.len() <= 1024 + 4, "echo frame of {} octets", f.len());
        echoed.extend_from_slice(&f[7..]);
    }
    assert_eq!(echoed, big);
    srv.assert_serves();
}

#[test]
fn a_stall_in_the_data_phase_ends_with_the_inactivity_timeout() {
    let srv = server_with(ListenOptions {
        handshake_timeout: HANDSHAKE,
        max_message_size: MAX_MESSAGE,
        inactivity_timeout: Some(HANDSHAKE),
        ..ListenOptions::default()
    });
    let mut s = connected(srv.addr);
    s.write_all(&dt(true, b"stalled")[..9]).unwrap();
    let start = Instant::now();
    let (got, end) = read_to_close(&mut s, HANDSHAKE + READ);
    let took = start.elapsed();
    assert_eq!((got, end), (dr(OUR_REF, SERVER_REF, 0), End::Eof));
    assert!(took >= HANDSHAKE / 2 && took < HANDSHAKE + READ, "{took:?}");
    srv.assert_handler_error("inactivity");
    assert!(srv.delivered().is_empty());
    srv.assert_serves();
}
