//! COTP class 0 over TPKT as raw bytes, for tests that play a peer by hand (hostile,
//! stalling or resetting peers) instead of through `proto_net::cotp`.

// Test helpers fail the test that called them by panicking, with a message.
#![allow(clippy::panic, clippy::expect_used)]

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The parameters of a well-formed CR: TPDU size 1024, TSAPs 0100 -> 0102.
pub const CR_PARAMS: [u8; 11] = [0xc0, 1, 0x0a, 0xc1, 2, 1, 0, 0xc2, 2, 1, 2];

/// A TPKT frame around `tpdu`.
pub fn tpkt(tpdu: &[u8]) -> Vec<u8> {
    let len = u16::try_from(tpdu.len() + 4).expect("TPDU fits a TPKT");
    let mut f = vec![3, 0];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(tpdu);
    f
}

/// A CR (in its TPKT) with source reference `src_ref`, the class/option octet
/// `class_opt` and the encoded parameter block `params`.
pub fn cr_with(src_ref: u16, class_opt: u8, params: &[u8]) -> Vec<u8> {
    let li = u8::try_from(6 + params.len()).expect("CR header fits");
    let mut t = vec![li, 0xe0, 0, 0];
    t.extend_from_slice(&src_ref.to_be_bytes());
    t.push(class_opt);
    t.extend_from_slice(params);
    tpkt(&t)
}

/// A CC (in its TPKT) answering a CR from `dst_ref`, with our reference `src_ref` and
/// the parameter block `params`.
pub fn cc(dst_ref: u16, src_ref: u16, params: &[u8]) -> Vec<u8> {
    let li = u8::try_from(6 + params.len()).expect("CC header fits");
    let mut t = vec![li, 0xd0];
    t.extend_from_slice(&dst_ref.to_be_bytes());
    t.extend_from_slice(&src_ref.to_be_bytes());
    t.push(0);
    t.extend_from_slice(params);
    tpkt(&t)
}

/// A class 0 DT (in its TPKT), with EOT when `eot`.
pub fn dt(eot: bool, data: &[u8]) -> Vec<u8> {
    let mut t = vec![2, 0xf0, if eot { 0x80 } else { 0 }];
    t.extend_from_slice(data);
    tpkt(&t)
}

/// An RFC 1006 class 0 ED (in its TPKT): a DT's shape with code 0x10, EOT set, no
/// DST-REF.
pub fn ed(data: &[u8]) -> Vec<u8> {
    let mut t = vec![2, 0x10, 0x80];
    t.extend_from_slice(data);
    tpkt(&t)
}

/// A DR (in its TPKT).
pub fn dr(dst: u16, src: u16, reason: u8) -> Vec<u8> {
    let mut t = vec![6, 0x80];
    t.extend_from_slice(&dst.to_be_bytes());
    t.extend_from_slice(&src.to_be_bytes());
    t.push(reason);
    tpkt(&t)
}

/// A DC (in its TPKT).
pub fn dc(dst: u16, src: u16) -> Vec<u8> {
    let mut t = vec![5, 0xc0];
    t.extend_from_slice(&dst.to_be_bytes());
    t.extend_from_slice(&src.to_be_bytes());
    tpkt(&t)
}

/// An ER (in its TPKT) with `cause` and the rejected header in parameter C1.
pub fn er(dst: u16, cause: u8, echo: &[u8]) -> Vec<u8> {
    let li = u8::try_from(4 + 2 + echo.len()).expect("ER header fits");
    let mut t = vec![li, 0x70];
    t.extend_from_slice(&dst.to_be_bytes());
    t.push(cause);
    t.push(0xc1);
    t.push(u8::try_from(echo.len()).expect("echo fits"));
    t.extend_from_slice(echo);
    tpkt(&t)
}

/// How a read of the rest of a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Orderly close (FIN).
    Eof,
    /// The peer reset the connection.
    Reset,
}

/// Reads everything until the peer closes; panics if it stays open past `within`.
pub fn read_to_close(s: &mut TcpStream, within: Duration) -> (Vec<u8>, End) {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the peer kept the connection open (read so far: {got:02x?})"
        );
        s.set_read_timeout(Some(left)).expect("set_read_timeout");
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

/// Reads one whole TPKT frame (header included).
pub fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).expect("TPKT header");
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    assert!(len >= 7, "bad TPKT from the peer: {h:02x?}");
    let mut f = h.to_vec();
    f.resize(len, 0);
    s.read_exact(&mut f[4..]).expect("TPKT payload");
    f
}
