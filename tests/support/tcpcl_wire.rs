//! A hand-played TCPCLv4 peer on a raw TCP socket: writes contact header, SESS_INIT,
//! XFER_SEGMENT, XFER_ACK and KEEPALIVE bytes built here, and parses what the agent
//! sends into [`Msg`]s with its own small decoder (not the core's), so the tests
//! check the runtime's wire bytes independently of the code that produced them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

/// XFER_SEGMENT flag: last segment of a transfer.
pub const END: u8 = 0x01;
/// XFER_SEGMENT flag: first segment of a transfer.
pub const START: u8 = 0x02;

/// One TCPCLv4 message after the contact header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// XFER_SEGMENT: flags, transfer ID, the START segment's extension block, data.
    Segment {
        /// Message flags (START, END).
        flags: u8,
        /// Transfer ID.
        tid: u64,
        /// Transfer extension items (START only; empty otherwise).
        ext: Vec<u8>,
        /// Payload.
        data: Vec<u8>,
    },
    /// XFER_ACK.
    Ack {
        /// Flags of the acknowledged segment.
        flags: u8,
        /// Transfer ID.
        tid: u64,
        /// Cumulative acknowledged length.
        len: u64,
    },
    /// XFER_REFUSE.
    Refuse {
        /// Reason code.
        reason: u8,
        /// Transfer ID.
        tid: u64,
    },
    /// KEEPALIVE.
    Keepalive,
    /// SESS_TERM.
    SessTerm {
        /// Flags (REPLY).
        flags: u8,
        /// Reason code.
        reason: u8,
    },
    /// MSG_REJECT.
    Reject {
        /// Reason code.
        reason: u8,
        /// The rejected message's type.
        header: u8,
    },
    /// SESS_INIT.
    SessInit {
        /// Keepalive interval offered, seconds.
        keepalive: u16,
        /// Segment MRU.
        segment_mru: u64,
        /// Transfer MRU.
        transfer_mru: u64,
        /// Node ID.
        node_id: String,
    },
}

/// A SESS_INIT without extensions.
pub fn sess_init(keepalive: u16, segment_mru: u64, transfer_mru: u64, node: &str) -> Vec<u8> {
    let mut m = vec![0x07];
    m.extend_from_slice(&keepalive.to_be_bytes());
    m.extend_from_slice(&segment_mru.to_be_bytes());
    m.extend_from_slice(&transfer_mru.to_be_bytes());
    m.extend_from_slice(&(node.len() as u16).to_be_bytes());
    m.extend_from_slice(node.as_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m
}

/// An XFER_SEGMENT without extension items.
pub fn segment(flags: u8, tid: u64, data: &[u8]) -> Vec<u8> {
    let mut m = vec![0x01, flags];
    m.extend_from_slice(&tid.to_be_bytes());
    if flags & START != 0 {
        m.extend_from_slice(&0u32.to_be_bytes());
    }
    m.extend_from_slice(&(data.len() as u64).to_be_bytes());
    m.extend_from_slice(data);
    m
}

/// An XFER_ACK.
pub fn xfer_ack(flags: u8, tid: u64, len: u64) -> Vec<u8> {
    let mut m = vec![0x02, flags];
    m.extend_from_slice(&tid.to_be_bytes());
    m.extend_from_slice(&len.to_be_bytes());
    m
}

/// An XFER_REFUSE.
pub fn xfer_refuse(reason: u8, tid: u64) -> Vec<u8> {
    let mut m = vec![0x03, reason];
    m.extend_from_slice(&tid.to_be_bytes());
    m
}

/// A SESS_TERM (`flags` 0x01 is REPLY).
pub fn sess_term(flags: u8, reason: u8) -> Vec<u8> {
    vec![0x05, flags, reason]
}

/// A KEEPALIVE.
pub const KEEPALIVE: [u8; 1] = [0x04];

/// The raw peer: a reading half that parses messages, and a writing half that may be
/// shared with other threads (each message is written whole under its lock).
pub struct RawPeer {
    sock: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    buf: Vec<u8>,
}

impl RawPeer {
    /// Connects to `addr`; `rcvbuf`, if given, shrinks the socket's receive buffer
    /// first (a small window makes the agent's writes partial).
    pub fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> Result<RawPeer> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if let Some(n) = rcvbuf {
            s.set_recv_buffer_size(n)?;
        }
        s.connect_timeout(&addr.into(), Duration::from_secs(5))?;
        let sock: TcpStream = s.into();
        sock.set_nodelay(true)?;
        let writer = Arc::new(Mutex::new(sock.try_clone()?));
        Ok(RawPeer {
            sock,
            writer,
            buf: Vec::new(),
        })
    }

    /// The writing half, for another thread.
    pub fn writer(&self) -> Arc<Mutex<TcpStream>> {
        self.writer.clone()
    }

    /// Writes `bytes` whole.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        send_on(&self.writer, bytes)
    }

    /// Active-side handshake: our contact header (no CAN_TLS) and SESS_INIT, then the
    /// agent's contact header and SESS_INIT, which is returned.
    pub fn handshake(
        &mut self,
        keepalive: u16,
        segment_mru: u64,
        transfer_mru: u64,
        node: &str,
    ) -> Result<Msg> {
        let mut hello = b"dtn!\x04\x00".to_vec();
        hello.extend(sess_init(keepalive, segment_mru, transfer_mru, node));
        self.send(&hello)?;
        let contact = self.take_raw(6, Duration::from_secs(10))?;
        ensure!(
            &contact[..5] == b"dtn!\x04",
            "contact header: {contact:02x?}"
        );
        match self.next(Duration::from_secs(10))? {
            Some(m @ Msg::SessInit { .. }) => Ok(m),
            other => bail!("expected SESS_INIT, got {other:?}"),
        }
    }

    /// The next whole message within `within`; `None` at end of stream. Fails on a
    /// timeout, a reset, or bytes that do not parse.
    pub fn next(&mut self, within: Duration) -> Result<Option<Msg>> {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 64 << 10];
        loop {
            if let Some((m, n)) = parse_msg(&self.buf)? {
                self.buf.drain(..n);
                return Ok(Some(m));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if self.buf.is_empty() {
                    return Err(Timeout.into());
                }
                bail!(
                    "timed out inside a message ({} bytes of it)",
                    self.buf.len()
                );
            }
            self.sock.set_read_timeout(Some(left))?;
            match self.sock.read(&mut chunk) {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => bail!("end of stream inside a message: {:02x?}", self.buf),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next message if one arrives within `within`, `Ok(None)` on silence; the end
    /// of the stream is an error here.
    pub fn poll(&mut self, within: Duration) -> Result<Option<Msg>> {
        match self.next(within) {
            Ok(Some(m)) => Ok(Some(m)),
            Ok(None) => bail!("the agent closed the connection"),
            Err(e) if is_timeout(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Everything until the agent closes (FIN or reset) within `within`: the whole
    /// messages, then the bytes of a message cut short by the close (empty when the
    /// stream ended at a message boundary).
    pub fn read_to_end(&mut self, within: Duration) -> Result<(Vec<Msg>, Vec<u8>)> {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 64 << 10];
        let mut msgs = Vec::new();
        loop {
            while let Some((m, n)) = parse_msg(&self.buf)? {
                self.buf.drain(..n);
                msgs.push(m);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            ensure!(!left.is_zero(), "the agent kept the connection open");
            self.sock.set_read_timeout(Some(left))?;
            match self.sock.read(&mut chunk) {
                Ok(0) => return Ok((msgs, std::mem::take(&mut self.buf))),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Ok((msgs, std::mem::take(&mut self.buf)))
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads exactly `n` raw bytes (the contact header) within `within`.
    fn take_raw(&mut self, n: usize, within: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            ensure!(!left.is_zero(), "timed out waiting for {n} bytes");
            self.sock.set_read_timeout(Some(left))?;
            match self.sock.read(&mut chunk) {
                Ok(0) => bail!("end of stream after {:02x?}", self.buf),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.buf.drain(..n).collect())
    }
}

/// Parses one message at the front of `b`: the message and its length, `None` while
/// `b` holds only part of one. Fails on an unknown message type (a stream out of
/// step, for instance a control message written inside a segment's payload).
pub fn parse_msg(b: &[u8]) -> Result<Option<(Msg, usize)>> {
    let mut r = Cursor { b, at: 0 };
    let Some(kind) = r.take(1) else {
        return Ok(None);
    };
    let m = match kind[0] {
        0x01 => {
            let Some(h) = r.take(9) else { return Ok(None) };
            let (flags, tid) = (h[0], be64(&h[1..9]));
            let ext = if flags & START != 0 {
                let Some(n) = r.take(4) else { return Ok(None) };
                let Some(ext) = r.take(be32(n) as usize) else {
                    return Ok(None);
                };
                ext.to_vec()
            } else {
                Vec::new()
            };
            let Some(len) = r.take(8) else {
                return Ok(None);
            };
            let len = be64(len);
            ensure!(
                len < 1 << 30,
                "segment of {len} bytes (stream out of step?)"
            );
            let Some(data) = r.take(len as usize) else {
                return Ok(None);
            };
            Msg::Segment {
                flags,
                tid,
                ext,
                data: data.to_vec(),
            }
        }
        0x02 => {
            let Some(b) = r.take(17) else { return Ok(None) };
            Msg::Ack {
                flags: b[0],
                tid: be64(&b[1..9]),
                len: be64(&b[9..17]),
            }
        }
        0x03 => {
            let Some(b) = r.take(9) else { return Ok(None) };
            Msg::Refuse {
                reason: b[0],
                tid: be64(&b[1..9]),
            }
        }
        0x04 => Msg::Keepalive,
        0x05 => {
            let Some(b) = r.take(2) else { return Ok(None) };
            Msg::SessTerm {
                flags: b[0],
                reason: b[1],
            }
        }
        0x06 => {
            let Some(b) = r.take(2) else { return Ok(None) };
            Msg::Reject {
                reason: b[0],
                header: b[1],
            }
        }
        0x07 => {
            let Some(h) = r.take(20) else { return Ok(None) };
            let n = u16::from_be_bytes([h[18], h[19]]) as usize;
            let Some(node) = r.take(n) else {
                return Ok(None);
            };
            let Some(ext) = r.take(4) else {
                return Ok(None);
            };
            if r.take(be32(ext) as usize).is_none() {
                return Ok(None);
            }
            Msg::SessInit {
                keepalive: u16::from_be_bytes([h[0], h[1]]),
                segment_mru: be64(&h[2..10]),
                transfer_mru: be64(&h[10..18]),
                node_id: String::from_utf8(node.to_vec()).context("node ID")?,
            }
        }
        other => bail!("unknown message type {other:#04x} (stream out of step?)"),
    };
    Ok(Some((m, r.at)))
}

/// Every message in `b`, which must end at a message boundary.
pub fn parse_all(mut b: &[u8]) -> Result<Vec<Msg>> {
    let mut all = Vec::new();
    while !b.is_empty() {
        let (m, n) = parse_msg(b)?.context("the bytes end inside a message")?;
        all.push(m);
        b = &b[n..];
    }
    Ok(all)
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
}

/// Writes `bytes` whole on a shared writing half.
pub fn send_on(w: &Mutex<TcpStream>, bytes: &[u8]) -> Result<()> {
    let mut s = w.lock().unwrap_or_else(|p| p.into_inner());
    s.write_all(bytes)?;
    Ok(())
}

/// No message arrived in time.
#[derive(Debug)]
pub struct Timeout;

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no message in time")
    }
}

impl std::error::Error for Timeout {}

/// Whether `e` is a [`Timeout`].
pub fn is_timeout(e: &anyhow::Error) -> bool {
    e.is::<Timeout>()
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}
