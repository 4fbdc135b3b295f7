//! A raw TCPCLv3 peer for tests, written from RFC 7242 and independent of proto's
//! codec: it encodes SDNVs and messages itself and reads what proto sends one message
//! at a time, so acknowledgments, LENGTH, refusal, segmentation, keepalives and proto
//! as the active side can be checked byte by byte.

// Test helpers fail the test that called them by panicking, with a message.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// An SDNV (RFC 6256): 7 bits per octet, most significant first, high bit on all but
/// the last.
pub fn sdnv(mut v: u64) -> Vec<u8> {
    let mut out = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.reverse();
    out
}

/// A v3 contact header (§4.1): magic, version 3, flags, keepalive, SDNV EID length, EID.
pub fn contact(flags: u8, keepalive: u16, eid: &str) -> Vec<u8> {
    let mut v = b"dtn!\x03".to_vec();
    v.push(flags);
    v.extend_from_slice(&keepalive.to_be_bytes());
    v.extend(sdnv(eid.len() as u64));
    v.extend_from_slice(eid.as_bytes());
    v
}

/// DATA_SEGMENT (§5.2): type 1, S = 0x2, E = 0x1, SDNV length, data.
pub fn data_segment(start: bool, end: bool, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0x10 | if start { 2 } else { 0 } | u8::from(end)];
    v.extend(sdnv(data.len() as u64));
    v.extend_from_slice(data);
    v
}

/// ACK_SEGMENT (§5.3) with a cumulative length.
pub fn ack(len: u64) -> Vec<u8> {
    let mut v = vec![0x20];
    v.extend(sdnv(len));
    v
}

/// SHUTDOWN (§6.1) with an optional reason and reconnection delay.
pub fn shutdown(reason: Option<u8>, delay: Option<u64>) -> Vec<u8> {
    let flags = if reason.is_some() { 2 } else { 0 } | u8::from(delay.is_some());
    let mut v = vec![0x50 | flags];
    v.extend(reason);
    if let Some(d) = delay {
        v.extend(sdnv(d));
    }
    v
}

/// A message proto sent, as the raw peer read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// DATA_SEGMENT: S, E, data.
    Data(bool, bool, Vec<u8>),
    /// ACK_SEGMENT.
    Ack(u64),
    /// REFUSE_BUNDLE with its reason nibble.
    Refuse(u8),
    /// KEEPALIVE.
    Keepalive,
    /// SHUTDOWN: reason, delay.
    Shutdown(Option<u8>, Option<u64>),
    /// LENGTH.
    Length(u64),
}

/// One connection to or from proto.
pub struct RawV3 {
    /// The socket.
    pub s: TcpStream,
}

impl RawV3 {
    /// Accepts one connection on `l`.
    pub fn accept(l: &TcpListener) -> RawV3 {
        let (s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        RawV3 { s }
    }

    /// Writes `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    fn byte(&mut self) -> Option<u8> {
        let mut b = [0u8];
        match self.s.read(&mut b) {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    }

    fn read_sdnv(&mut self) -> u64 {
        let mut v = 0u64;
        for _ in 0..10 {
            let b = self.byte().expect("SDNV octet");
            v = (v << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("SDNV longer than 10 octets");
    }

    /// Reads proto's contact header; returns (flags, keepalive, EID).
    pub fn read_contact(&mut self) -> (u8, u16, String) {
        let mut head = [0u8; 8];
        self.s.read_exact(&mut head).expect("contact header");
        assert_eq!(&head[..5], b"dtn!\x03", "a v3 contact header");
        let n = self.read_sdnv() as usize;
        let mut eid = vec![0u8; n];
        self.s.read_exact(&mut eid).expect("EID");
        (
            head[5],
            u16::from_be_bytes([head[6], head[7]]),
            String::from_utf8(eid).expect("UTF-8 EID"),
        )
    }

    /// Reads one message; `None` at end of stream.
    pub fn read_msg(&mut self) -> Option<Msg> {
        let h = self.byte()?;
        let flags = h & 0x0f;
        Some(match h >> 4 {
            1 => {
                let n = self.read_sdnv() as usize;
                let mut d = vec![0u8; n];
                self.s.read_exact(&mut d).expect("segment data");
                Msg::Data(flags & 2 != 0, flags & 1 != 0, d)
            }
            2 => Msg::Ack(self.read_sdnv()),
            3 => Msg::Refuse(flags),
            4 => Msg::Keepalive,
            5 => {
                let r = (flags & 2 != 0).then(|| self.byte().expect("reason"));
                let d = (flags & 1 != 0).then(|| self.read_sdnv());
                Msg::Shutdown(r, d)
            }
            6 => Msg::Length(self.read_sdnv()),
            t => panic!("proto sent unknown v3 message type {t:#x}"),
        })
    }
}
