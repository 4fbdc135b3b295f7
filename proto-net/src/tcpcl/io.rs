//! The three helper threads of a session: the socket reader, the socket writer, and
//! the feeder that reads an outgoing bundle's source.
//!
//! None of them touches the session state machine; they exchange buffers with the
//! session thread over bounded channels, and buffers are recycled.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;

use crossbeam_channel::{Receiver, Sender};

use super::tls_glue::{self, SharedTls, TlsStart, TlsUp};

/// Size of the reader's buffers.
pub(crate) const READ_BUF: usize = 64 << 10;
/// Bytes reserved in front of feeder data for the XFER_SEGMENT header.
pub(crate) const HEADROOM: usize = 64;

/// From the reader thread.
pub(crate) enum ReaderMsg {
    /// `buf[..len]` was read.
    Data(Vec<u8>, usize),
    /// The peer closed its side.
    Eof,
    /// Reading failed.
    Error(io::Error),
    /// The TLS handshake completed.
    TlsUp(TlsUp),
    /// The TLS handshake failed.
    TlsFailed(String),
    /// rustls has records to send (e.g. a KeyUpdate reply): have the writer flush.
    TlsWantsWrite,
}

/// To the reader while the contact headers are exchanged: the reader waits for one
/// after each chunk, so no byte past the contact header is read as plaintext.
pub(crate) enum Directive {
    /// Still in the contact phase: read on.
    Continue,
    /// No TLS: read freely from now on.
    Plain,
    /// Start TLS, feeding these bytes (read past the contact header) first.
    Tls(Vec<u8>, Box<TlsStart>),
    /// Stop reading.
    Stop,
}

pub(crate) fn reader_main(
    mut sock: TcpStream,
    out: Sender<ReaderMsg>,
    directives: Receiver<Directive>,
    pool: Receiver<Vec<u8>>,
) {
    let mut contact = true;
    let mut tls: Option<SharedTls> = None;
    let mut raw = tls_glue::RawBuf::new(READ_BUF);
    loop {
        let mut buf = pool.try_recv().unwrap_or_default();
        buf.resize(READ_BUF, 0);
        let mut wants_write = false;
        let r = match &tls {
            None => loop {
                match sock.read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r,
                }
            },
            Some(c) => tls_glue::read_plain(&mut sock, c, &mut raw, &mut buf, &mut wants_write),
        };
        let msg = match r {
            Ok(0) => ReaderMsg::Eof,
            Ok(n) => ReaderMsg::Data(buf, n),
            Err(e) => ReaderMsg::Error(e),
        };
        let last = !matches!(msg, ReaderMsg::Data(..));
        if out.send(msg).is_err() || last {
            return;
        }
        if wants_write && out.send(ReaderMsg::TlsWantsWrite).is_err() {
            return;
        }
        if !contact {
            continue;
        }
        match directives.recv() {
            Ok(Directive::Continue) => {}
            Ok(Directive::Plain) => contact = false,
            Ok(Directive::Tls(leftover, start)) => {
                contact = false;
                match tls_glue::handshake(&mut sock, &start, &leftover) {
                    Ok(conn) => {
                        let peer_ip = sock.peer_addr().ok().map(|a| a.ip());
                        let name = (start.role == proto_core::tcpcl::TlsRole::Client)
                            .then_some(start.server_name.as_str());
                        let info = tls_glue::describe(&conn, |id| {
                            super::tls::authenticate_host(id, name, peer_ip)
                        });
                        let conn = std::sync::Arc::new(std::sync::Mutex::new(conn));
                        tls = Some(conn.clone());
                        if out.send(ReaderMsg::TlsUp(TlsUp { conn, info })).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = out.send(ReaderMsg::TlsFailed(e));
                        return;
                    }
                }
            }
            Ok(Directive::Stop) | Err(_) => return,
        }
    }
}

/// What a write job carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobKind {
    /// Control messages (the outbox).
    Control,
    /// One XFER_SEGMENT.
    Data,
}

/// To the writer thread.
pub(crate) enum WriterJob {
    /// Write `buf[range]`, then hand the buffer back.
    Write(Vec<u8>, Range<usize>, JobKind),
    /// TLS is up: encrypt everything from now on.
    SetTls(SharedTls),
    /// Write whatever rustls has pending.
    Flush,
    /// Send TLS close_notify (if TLS), shut down the write side and exit.
    Shutdown,
}

/// From the writer thread.
pub(crate) enum WriterDone {
    /// A `Write` job finished; the buffer comes back.
    Written(Vec<u8>, JobKind),
    /// Writing failed; the writer has exited.
    Failed(io::Error),
}

pub(crate) fn writer_main(
    mut sock: TcpStream,
    jobs: Receiver<WriterJob>,
    done: Sender<WriterDone>,
) {
    let mut tls: Option<SharedTls> = None;
    let mut scratch = Vec::new();
    for job in jobs {
        let r = match job {
            WriterJob::Write(buf, range, kind) => {
                let data = buf.get(range).unwrap_or_default();
                let r = match &tls {
                    None => sock.write_all(data),
                    Some(c) => tls_glue::write_plain(&mut sock, c, data, &mut scratch),
                };
                match r {
                    Ok(()) => {
                        if done.send(WriterDone::Written(buf, kind)).is_err() {
                            return;
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            WriterJob::SetTls(c) => {
                tls = Some(c);
                Ok(())
            }
            WriterJob::Flush => match &tls {
                Some(c) => tls_glue::write_plain(&mut sock, c, &[], &mut scratch),
                None => Ok(()),
            },
            WriterJob::Shutdown => {
                if let Some(c) = &tls {
                    let _ = tls_glue::close_notify(&mut sock, c);
                }
                let _ = sock.flush();
                let _ = sock.shutdown(Shutdown::Write);
                return;
            }
        };
        if let Err(e) = r {
            let _ = done.send(WriterDone::Failed(e));
            return;
        }
    }
}

/// A request to the feeder: fill this buffer with up to `max` bytes after
/// [`HEADROOM`].
pub(crate) struct FeedRequest {
    pub(crate) buf: Vec<u8>,
    pub(crate) max: usize,
}

/// From the feeder.
pub(crate) enum FeedMsg {
    /// `buf[HEADROOM..HEADROOM + len]` holds the next data; `last`: nothing follows.
    Chunk {
        buf: Vec<u8>,
        len: usize,
        last: bool,
    },
    /// The source failed (or ended before its announced length).
    Failed(io::Error),
}

/// Reads an outgoing bundle's source chunk by chunk, on request.
pub(crate) fn feeder_main(
    mut reader: Box<dyn Read + Send>,
    total: Option<u64>,
    requests: Receiver<FeedRequest>,
    out: Sender<FeedMsg>,
) {
    let mut sent: u64 = 0;
    for FeedRequest { mut buf, max } in requests {
        let want = match total {
            Some(t) => usize::try_from(t - sent).map_or(max, |left| left.min(max)),
            None => max,
        };
        buf.resize(HEADROOM + want, 0);
        let mut filled = 0;
        let mut eof = false;
        while filled < want {
            match reader.read(&mut buf[HEADROOM + filled..HEADROOM + want]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = out.send(FeedMsg::Failed(e));
                    return;
                }
            }
        }
        sent += filled as u64;
        let last = match total {
            Some(t) if sent == t => true,
            Some(t) if eof => {
                let _ = out.send(FeedMsg::Failed(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("source ended after {sent} of {t} bytes"),
                )));
                return;
            }
            Some(_) => false,
            None => eof,
        };
        buf.truncate(HEADROOM + filled);
        if out
            .send(FeedMsg::Chunk {
                buf,
                len: filled,
                last,
            })
            .is_err()
            || last
        {
            return;
        }
    }
}
