//! The session's byte pipe: a non-blocking socket, with rustls between it and the
//! session once TLS is up, and the output waiting to be written.
//!
//! Output is a run of staged bytes (control messages and at most one segment header,
//! at the end) followed by that segment's payload, which is never copied in plaintext:
//! header and payload leave in one `writev` straight from the application's buffer.
//! With TLS both go through rustls, whose record buffer is bounded, so a slow peer
//! holds at most [`TLS_BUFFER`] of encrypted output here.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;
use std::sync::Arc;

use super::super::close::{CloseReason, IoOp, TlsFailure};
use super::super::tls::verify::{clear_rejection, restore_rejection};
use super::super::tls::{TlsContext, TlsError};
use proto_core::tcpcl::TlsRole;

/// Most encrypted output rustls holds before it refuses more plaintext.
const TLS_BUFFER: usize = 256 << 10;
/// Raw bytes read at once from the socket under TLS.
const TLS_READ: usize = 32 << 10;

/// A segment's payload: a range of a buffer shared with (or taken from) its source.
pub(crate) struct Payload {
    pub(crate) buf: Arc<Vec<u8>>,
    pub(crate) range: Range<usize>,
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        self.buf.get(self.range.clone()).unwrap_or_default()
    }
}

/// What is waiting to be written.
#[derive(Default)]
pub(crate) struct Output {
    staged: Vec<u8>,
    sent: usize,
    payload: Option<Payload>,
}

impl Output {
    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.sent >= self.staged.len() && self.payload.is_none()
    }

    /// Bytes staged and not written yet.
    pub(crate) fn staged_len(&self) -> usize {
        self.staged.len() - self.sent
    }

    /// Whether a segment is staged (nothing may follow it until its payload is out).
    pub(crate) fn has_segment(&self) -> bool {
        self.payload.is_some()
    }

    /// Room for the core to encode into, at least `min` bytes.
    pub(crate) fn room(&mut self, min: usize) -> &mut [u8] {
        if self.sent > 0 && self.sent >= self.staged.len() {
            self.staged.clear();
            self.sent = 0;
        }
        let at = self.staged.len();
        self.staged.resize(at + min, 0);
        &mut self.staged[at..]
    }

    /// The core wrote `n` bytes into [`Output::room`] (`asked` long).
    pub(crate) fn commit(&mut self, n: usize, asked: usize) {
        let keep = self.staged.len() - asked + n;
        self.staged.truncate(keep);
    }

    /// The payload of the segment whose header was just committed.
    pub(crate) fn set_payload(&mut self, p: Payload) {
        self.payload = (!p.range.is_empty()).then_some(p);
    }

    /// Takes a payload whose bytes were all written, so its buffer can be reused.
    fn finish_payload(&mut self) -> Option<Payload> {
        self.payload.take()
    }
}

/// The TLS layer; boxed, since a rustls connection is large and most sessions
/// spend their life idle.
enum Tls {
    Plain,
    Handshaking(Box<rustls::Connection>),
    Up(Box<rustls::Connection>),
}

/// How a read ended.
pub(crate) enum Read_ {
    /// Bytes were read.
    Data(usize),
    /// Nothing now.
    WouldBlock,
    /// The peer closed (cleanly: FIN, or close_notify under TLS).
    Eof,
}

/// A transport failure, by cause.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The socket failed.
    Io(io::Error),
    /// TLS failed (handshake or a record).
    Tls(rustls::Error),
    /// TLS could not start: our side cannot act in the negotiated role.
    Setup(TlsFailure),
}

impl From<io::Error> for Failure {
    /// rustls reports an earlier TLS failure (an alert received, say) to a later read
    /// or write as an `InvalidData` I/O error wrapping it: that is a TLS failure.
    fn from(e: io::Error) -> Self {
        match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(tls) => Failure::Tls(tls.clone()),
            None => Failure::Io(e),
        }
    }
}

impl From<TlsError> for Failure {
    fn from(e: TlsError) -> Self {
        match e {
            TlsError::Rustls(e) => Failure::Tls(e),
            TlsError::InvalidServerName(n) => Failure::Setup(TlsFailure::InvalidServerName(n)),
            TlsError::NoServerCertificate => Failure::Setup(TlsFailure::NoServerCertificate),
            e => Failure::Io(io::Error::other(e)),
        }
    }
}

impl Failure {
    /// Why the session closes, the failure having happened during `op`.
    pub(crate) fn into_reason(self, op: IoOp) -> CloseReason {
        match self {
            Failure::Io(e) => CloseReason::io(op, &e),
            f => CloseReason::TlsFailed(f.into_tls()),
        }
    }

    /// The failure as a TLS failure (it happened during the handshake).
    pub(crate) fn into_tls(self) -> TlsFailure {
        match self {
            Failure::Io(e) => TlsFailure::handshake_io(&e),
            Failure::Tls(e) => e.into(),
            Failure::Setup(f) => f,
        }
    }
}

/// The socket and its TLS layer.
pub(crate) struct Transport {
    pub(crate) sock: TcpStream,
    tls: Tls,
    /// Raw bytes read under TLS; `[raw_pos, raw_end)` not yet fed to rustls.
    raw: Vec<u8>,
    raw_pos: usize,
    raw_end: usize,
    /// Payload buffers whose bytes were written, for the source to reuse.
    pub(crate) spent: Option<Arc<Vec<u8>>>,
}

impl Transport {
    pub(crate) fn new(sock: TcpStream) -> io::Result<Transport> {
        sock.set_nonblocking(true)?;
        Ok(Transport {
            sock,
            tls: Tls::Plain,
            raw: Vec::new(),
            raw_pos: 0,
            raw_end: 0,
            spent: None,
        })
    }

    /// Whether TLS is being negotiated.
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(self.tls, Tls::Handshaking(_))
    }

    /// The TLS connection, once up.
    pub(crate) fn tls(&self) -> Option<&rustls::Connection> {
        match &self.tls {
            Tls::Up(c) => Some(c),
            _ => None,
        }
    }

    /// Starts TLS in `role`, feeding the bytes that arrived after the contact header.
    /// Plaintext output (our contact header) must have been written already.
    pub(crate) fn start_tls(
        &mut self,
        ctx: &TlsContext,
        role: TlsRole,
        server_name: &str,
        leftover: &[u8],
    ) -> Result<(), Failure> {
        let mut conn: rustls::Connection = match role {
            TlsRole::Client => ctx.client(server_name)?.into(),
            TlsRole::Server => ctx.server()?.into(),
        };
        conn.set_buffer_limit(Some(TLS_BUFFER));
        clear_rejection();
        let mut rest = leftover;
        while !rest.is_empty() {
            conn.read_tls(&mut rest)?;
            conn.process_new_packets()
                .map_err(|e| Failure::Tls(restore_rejection(e)))?;
        }
        self.tls = Tls::Handshaking(Box::new(conn));
        Ok(())
    }

    /// Advances a TLS handshake as far as the socket allows; true once it completed.
    pub(crate) fn drive_handshake(&mut self) -> Result<bool, Failure> {
        let Tls::Handshaking(conn) = &mut self.tls else {
            return Ok(true);
        };
        loop {
            while conn.wants_write() {
                match conn.write_tls(&mut self.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !conn.is_handshaking() {
                break;
            }
            match conn.read_tls(&mut self.sock) {
                Ok(0) => {
                    return Err(Failure::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed during the TLS handshake",
                    )))
                }
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        // Send our alert before giving up.
                        let _ = conn.write_tls(&mut self.sock);
                        // Our verifier's specific reason, not the bad_certificate sent.
                        return Err(Failure::Tls(restore_rejection(e)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Tls::Handshaking(conn) = std::mem::replace(&mut self.tls, Tls::Plain) {
            self.tls = Tls::Up(conn);
        }
        Ok(true)
    }

    /// Reads plaintext into `buf`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<Read_, Failure> {
        match &mut self.tls {
            Tls::Plain => loop {
                match self.sock.read(buf) {
                    Ok(0) => return Ok(Read_::Eof),
                    Ok(n) => return Ok(Read_::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Read_::WouldBlock)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            },
            Tls::Handshaking(_) => Ok(Read_::WouldBlock),
            Tls::Up(conn) => loop {
                match conn.reader().read(buf) {
                    Ok(0) => return Ok(Read_::Eof),
                    Ok(n) => return Ok(Read_::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        // TCP closed without close_notify: a truncation, reported as
                        // the end of the stream (the core decides what it means).
                        return Ok(Read_::Eof);
                    }
                    Err(e) => return Err(e.into()),
                }
                if self.raw_pos < self.raw_end {
                    // Feed rustls a record's worth at a time: its plaintext buffer is
                    // bounded, so raw input goes in only as plaintext comes out.
                    let mut rest = &self.raw[self.raw_pos..self.raw_end];
                    let before = rest.len();
                    conn.read_tls(&mut rest)?;
                    self.raw_pos += before - rest.len();
                    if let Err(e) = conn.process_new_packets() {
                        let _ = conn.write_tls(&mut self.sock);
                        // Our verifier's specific reason, not the bad_certificate sent.
                        return Err(Failure::Tls(restore_rejection(e)));
                    }
                    continue;
                }
                if self.raw.len() < TLS_READ {
                    self.raw.resize(TLS_READ, 0);
                }
                match self.sock.read(&mut self.raw) {
                    Ok(0) => {
                        // Let rustls see the end: it answers Ok(0) after close_notify,
                        // UnexpectedEof otherwise.
                        let _ = conn.read_tls(&mut &[][..]);
                        if let Err(e) = conn.process_new_packets() {
                            return Err(Failure::Tls(e));
                        }
                        if !conn.wants_read() {
                            // Nothing more can come; the reader reports how it ended.
                            continue;
                        }
                        return Ok(Read_::Eof);
                    }
                    Ok(n) => {
                        self.raw_pos = 0;
                        self.raw_end = n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Read_::WouldBlock)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            },
        }
    }

    /// Whether bytes the session has not taken yet wait in the socket or, under TLS,
    /// in the raw buffer not yet fed to rustls.
    pub(crate) fn has_unread_input(&self) -> bool {
        let mut b = [0u8; 1];
        self.raw_pos < self.raw_end || matches!(self.sock.peek(&mut b), Ok(n) if n > 0)
    }

    /// Writes as much of `out` as the socket takes; true when all of it is out
    /// (including TLS records).
    pub(crate) fn flush(&mut self, out: &mut Output) -> Result<bool, Failure> {
        let done = match &mut self.tls {
            Tls::Plain => flush_plain(&mut self.sock, out)?,
            Tls::Handshaking(_) => return Ok(out.is_empty()),
            Tls::Up(conn) => flush_tls(&mut self.sock, conn, out)?,
        };
        if done {
            out.staged.clear();
            out.sent = 0;
            if let Some(p) = out.finish_payload() {
                self.spent = Some(p.buf);
            }
        }
        Ok(done)
    }

    /// Whether the TLS layer still holds records to write.
    pub(crate) fn tls_pending(&self) -> bool {
        match &self.tls {
            Tls::Up(c) | Tls::Handshaking(c) => c.wants_write(),
            Tls::Plain => false,
        }
    }

    /// Queues close_notify (TLS only); [`Transport::flush`] writes it.
    pub(crate) fn close_notify(&mut self) {
        if let Tls::Up(c) = &mut self.tls {
            c.send_close_notify();
        }
    }

    /// Sends our FIN.
    pub(crate) fn shutdown_write(&self) {
        let _ = self.sock.shutdown(Shutdown::Write);
    }

    /// Closes both directions at once.
    pub(crate) fn shutdown_both(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// Reads and discards raw bytes (lingering after our FIN); true at the peer's FIN.
    pub(crate) fn discard_input(&mut self) -> io::Result<bool> {
        let mut sink = [0u8; 4096];
        loop {
            match self.sock.read(&mut sink) {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn flush_plain(sock: &mut TcpStream, out: &mut Output) -> io::Result<bool> {
    loop {
        let staged = &out.staged[out.sent.min(out.staged.len())..];
        let payload = out.payload.as_ref().map_or(&[][..], Payload::bytes);
        if staged.is_empty() && payload.is_empty() {
            return Ok(true);
        }
        let r = sock.write_vectored(&[IoSlice::new(staged), IoSlice::new(payload)]);
        match r {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => advance(out, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Marks `n` bytes of staged-then-payload as written.
fn advance(out: &mut Output, mut n: usize) {
    let staged = out.staged.len() - out.sent.min(out.staged.len());
    let k = n.min(staged);
    out.sent += k;
    n -= k;
    if n > 0 {
        if let Some(p) = &mut out.payload {
            p.range.start = (p.range.start + n).min(p.range.end);
        }
    }
}

fn flush_tls(
    sock: &mut TcpStream,
    conn: &mut rustls::Connection,
    out: &mut Output,
) -> Result<bool, Failure> {
    loop {
        // Hand plaintext to rustls while its record buffer has room.
        loop {
            let staged = &out.staged[out.sent.min(out.staged.len())..];
            let payload = out.payload.as_ref().map_or(&[][..], Payload::bytes);
            if staged.is_empty() && payload.is_empty() {
                break;
            }
            let n = conn
                .writer()
                .write_vectored(&[IoSlice::new(staged), IoSlice::new(payload)])?;
            if n == 0 {
                break;
            }
            advance(out, n);
        }
        if !conn.wants_write() {
            let staged = out.staged.len() - out.sent.min(out.staged.len());
            let payload = out.payload.as_ref().map_or(0, |p| p.range.len());
            return Ok(staged == 0 && payload == 0);
        }
        match conn.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription;

    #[test]
    fn a_tls_error_rustls_reports_as_io_stays_a_tls_failure() {
        // rustls answers a write after a received alert with InvalidData wrapping it.
        let alert = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        let e = io::Error::new(io::ErrorKind::InvalidData, alert);
        assert_eq!(
            Failure::from(e).into_reason(IoOp::Write),
            CloseReason::TlsFailed(TlsFailure::AlertReceived(AlertDescription::UnknownCA))
        );
        let e = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(
            Failure::from(e).into_reason(IoOp::Read),
            CloseReason::Io {
                op: IoOp::Read,
                kind: io::ErrorKind::ConnectionReset,
                ..
            }
        ));
        // During the handshake a socket failure is a TLS failure.
        let e = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert!(matches!(
            Failure::from(e).into_tls(),
            TlsFailure::HandshakeIo {
                kind: io::ErrorKind::UnexpectedEof,
                ..
            }
        ));
    }
}
