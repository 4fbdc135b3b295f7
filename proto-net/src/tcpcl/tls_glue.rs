//! The runtime's side of TLS: the handshake at the contact-header boundary, reads and
//! writes through a rustls connection shared by the reader and writer threads, and the
//! per-identity authentication results reported to the application.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};

use proto_core::tcpcl::TlsRole;

use super::tls::{Authn, PeerIdentity, TlsContext};

/// A rustls connection shared by one session's reader and writer threads. Raw socket
/// I/O happens outside the lock.
pub(crate) type SharedTls = Arc<Mutex<rustls::Connection>>;

pub(crate) fn lock(c: &SharedTls) -> MutexGuard<'_, rustls::Connection> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// TLS details of a session, with the RFC 9174 §4.4.4 authentication results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Negotiated protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// Negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// Identities in the peer's certificate (empty if it presented none).
    pub peer_identity: PeerIdentity,
    /// Whether the peer presented a certificate.
    pub peer_certificate: bool,
    /// Host authentication (DNS-ID / IPADDR-ID against the connected name and the
    /// peer's address).
    pub host_authn: Authn,
    /// Node authentication (NODE-ID against the peer's SESS_INIT node ID); `None` until
    /// SESS_INIT arrived.
    pub node_authn: Option<Authn>,
}

/// What the session thread hands the reader thread to start TLS.
pub(crate) struct TlsStart {
    pub(crate) ctx: TlsContext,
    pub(crate) role: TlsRole,
    /// SNI / host name for the client role.
    pub(crate) server_name: String,
}

/// A finished handshake.
pub(crate) struct TlsUp {
    pub(crate) conn: SharedTls,
    pub(crate) info: TlsInfo,
}

/// Runs the handshake on the socket, after feeding `leftover` (bytes already read past
/// the contact header). Plaintext that arrived with the last handshake flight stays in
/// the connection's reader for [`read_plain`].
pub(crate) fn handshake(
    sock: &mut TcpStream,
    start: &TlsStart,
    leftover: &[u8],
) -> Result<rustls::Connection, String> {
    let mut conn: rustls::Connection = match start.role {
        TlsRole::Client => start
            .ctx
            .client(&start.server_name)
            .map_err(|e| e.to_string())?
            .into(),
        TlsRole::Server => start.ctx.server().map_err(|e| e.to_string())?.into(),
    };
    let mut rest = leftover;
    while !rest.is_empty() {
        conn.read_tls(&mut rest).map_err(|e| e.to_string())?;
        if let Err(e) = conn.process_new_packets() {
            let _ = conn.write_tls(sock);
            return Err(e.to_string());
        }
    }
    while conn.is_handshaking() {
        conn.complete_io(sock).map_err(|e| e.to_string())?;
    }
    while conn.wants_write() {
        conn.write_tls(sock).map_err(|e| e.to_string())?;
    }
    Ok(conn)
}

/// Describes an established connection (authentication of the node ID comes later).
pub(crate) fn describe(
    conn: &rustls::Connection,
    host_authn: impl FnOnce(&PeerIdentity) -> Authn,
) -> TlsInfo {
    let peer_certificate = conn.peer_certificates().is_some_and(|c| !c.is_empty());
    let id = PeerIdentity::from_connection(conn).unwrap_or_default();
    TlsInfo {
        version: conn
            .protocol_version()
            .map_or_else(|| "unknown".into(), |v| format!("{v:?}")),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".into(), |s| format!("{:?}", s.suite())),
        host_authn: host_authn(&id),
        peer_identity: id,
        peer_certificate,
        node_authn: None,
    }
}

/// Raw bytes read from the socket and not yet fed to rustls.
pub(crate) struct RawBuf {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl RawBuf {
    /// Empty; it grows to the size of the plaintext buffers it is read for.
    pub(crate) fn new() -> RawBuf {
        RawBuf {
            buf: Vec::new(),
            pos: 0,
            end: 0,
        }
    }
}

/// Reads plaintext into `out`: what the connection already holds, else raw bytes fed
/// through rustls (a little at a time, so its plaintext buffer never overflows), else
/// more raw bytes from the socket, read outside the lock. Ok(0) is the end of the
/// stream. `wants_write` is set when rustls has records to send (a KeyUpdate reply).
pub(crate) fn read_plain(
    sock: &mut TcpStream,
    conn: &SharedTls,
    raw: &mut RawBuf,
    out: &mut [u8],
    wants_write: &mut bool,
) -> io::Result<usize> {
    loop {
        {
            let mut c = lock(conn);
            loop {
                match c.reader().read(out) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if raw.pos >= raw.end {
                    break;
                }
                let mut rest = &raw.buf[raw.pos..raw.end];
                let n = c.read_tls(&mut rest)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "TLS layer accepts no more input",
                    ));
                }
                raw.pos += n;
                let state = c
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                *wants_write |= c.wants_write();
                if state.peer_has_closed() && state.plaintext_bytes_to_read() == 0 {
                    return Ok(0);
                }
            }
        }
        // Raw reads as big as the plaintext buffer (whose size the reader adapts and
        // budgets), plus room for a record's overhead.
        let want = out.len().max(4096) + 256;
        if raw.buf.len() < want {
            raw.buf.resize(want, 0);
        }
        let n = sock.read(&mut raw.buf[..want])?;
        if n == 0 {
            return Ok(0);
        }
        raw.pos = 0;
        raw.end = n;
    }
}

/// Encrypts `parts` (in order) and writes the records; the lock is held only while
/// encrypting, and records are written in batches of about 64 KiB (a small part, such
/// as a segment header, shares a write with what follows). With no parts, writes
/// whatever rustls has pending.
pub(crate) fn write_plain(
    sock: &mut TcpStream,
    conn: &SharedTls,
    parts: &[&[u8]],
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    encrypt_parts(conn, parts, scratch, |buf| sock.write_all(buf))?;
    if !scratch.is_empty() {
        sock.write_all(scratch)?;
        scratch.clear();
    }
    Ok(())
}

/// Encrypts `parts` into `scratch`, handing `flush` the records whenever 64 KiB or more
/// have accumulated; what is left in `scratch` at the end is the caller's to write.
pub(crate) fn encrypt_parts(
    conn: &SharedTls,
    parts: &[&[u8]],
    scratch: &mut Vec<u8>,
    mut flush: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    const CHUNK: usize = 64 << 10;
    scratch.clear();
    if parts.iter().all(|p| p.is_empty()) {
        let mut c = lock(conn);
        while c.wants_write() {
            c.write_tls(scratch)?;
        }
        return Ok(());
    }
    for part in parts {
        let mut data = *part;
        while !data.is_empty() {
            let n = {
                let mut c = lock(conn);
                let take = data.len().min(CHUNK);
                let n = c.writer().write(&data[..take])?;
                while c.wants_write() {
                    c.write_tls(scratch)?;
                }
                n
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "TLS connection accepts no more data",
                ));
            }
            data = &data[n..];
            if scratch.len() >= CHUNK {
                flush(scratch)?;
                scratch.clear();
            }
        }
    }
    Ok(())
}

/// Sends close_notify.
pub(crate) fn close_notify(sock: &mut TcpStream, conn: &SharedTls) -> io::Result<()> {
    let mut buf = Vec::new();
    {
        let mut c = lock(conn);
        c.send_close_notify();
        while c.wants_write() {
            c.write_tls(&mut buf)?;
        }
    }
    sock.write_all(&buf)
}
