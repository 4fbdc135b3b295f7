//! The three helper threads of a session: the socket reader, the socket writer, and
//! the feeder that reads an outgoing bundle's source.
//!
//! None of them touches the session state machine; they exchange buffers with the
//! session thread over bounded channels, and buffers are recycled.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::{Deref, DerefMut, Range};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::tls_glue::{self, SharedTls, TlsStart, TlsUp};

/// Size of the reader's first buffers; a read that fills one doubles the size of the
/// next, up to [`READ_BUF_MAX`] (idle sessions stay small, bulk ones read in big
/// chunks: fewer hand-overs to the session thread). Growth beyond [`READ_BUF_FREE`] is
/// charged to the agent's [`ReadBudget`]; a run of reads that fill less than a quarter
/// of the buffer halves the size again.
pub(crate) const READ_BUF: usize = 16 << 10;
/// Reader buffers grow to this size without asking the budget.
pub(crate) const READ_BUF_FREE: usize = 64 << 10;
/// Largest reader buffer.
pub(crate) const READ_BUF_MAX: usize = 256 << 10;
/// An agent's budget for reader-buffer bytes beyond [`READ_BUF_FREE`], all sessions
/// together: a handful of bulk sessions read in 256 KiB chunks, hundreds of busy ones
/// stay at 64 KiB each.
pub(crate) const READ_BUDGET: usize = 16 << 20;
/// Consecutive small reads (under a quarter of the buffer) before the size halves.
const SHRINK_AFTER: u32 = 16;

/// Reader-buffer bytes beyond [`READ_BUF_FREE`] that an agent's sessions may hold at
/// once.
#[derive(Debug)]
pub(crate) struct ReadBudget {
    used: AtomicUsize,
    limit: usize,
}

impl ReadBudget {
    pub(crate) fn new(limit: usize) -> Arc<ReadBudget> {
        Arc::new(ReadBudget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Charges up to `n` bytes; returns how many were granted.
    fn take(&self, n: usize) -> usize {
        match self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                let grant = n.min(self.limit.saturating_sub(u));
                (grant > 0).then_some(u + grant)
            }) {
            Ok(before) => n.min(self.limit.saturating_sub(before)),
            Err(_) => 0,
        }
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes currently charged.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// A reader buffer; what it holds beyond [`READ_BUF_FREE`] is charged to the budget
/// until it is dropped or shrunk.
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    charged: usize,
    budget: Arc<ReadBudget>,
}

impl ReadBuf {
    pub(crate) fn new(budget: &Arc<ReadBudget>) -> ReadBuf {
        ReadBuf {
            buf: Vec::new(),
            charged: 0,
            budget: budget.clone(),
        }
    }

    /// Makes the buffer `want` bytes long, or as long as the budget allows (at least
    /// [`READ_BUF_FREE`] or `want`, whichever is smaller); returns the length.
    pub(crate) fn fit(&mut self, want: usize) -> usize {
        let want = want.max(1);
        if want < self.buf.capacity() && self.charged > 0 {
            // Shrink: give the memory back (and the budget).
            self.buf = Vec::new();
            self.budget.give(self.charged);
            self.charged = 0;
        }
        let need = want.saturating_sub(READ_BUF_FREE);
        let mut len = want;
        if need > self.charged {
            self.charged += self.budget.take(need - self.charged);
            len = READ_BUF_FREE + self.charged;
        }
        if self.buf.capacity() < len {
            self.buf.reserve_exact(len - self.buf.len());
        }
        self.buf.resize(len, 0);
        len
    }
}

impl Deref for ReadBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl DerefMut for ReadBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl Drop for ReadBuf {
    fn drop(&mut self) {
        self.budget.give(self.charged);
    }
}
/// Bytes reserved in front of feeder data for the XFER_SEGMENT header.
pub(crate) const HEADROOM: usize = 64;

/// From the reader thread.
pub(crate) enum ReaderMsg {
    /// `buf[..len]` was read.
    Data(ReadBuf, usize),
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
    pool: Receiver<ReadBuf>,
    budget: Arc<ReadBudget>,
) {
    let mut contact = true;
    let mut tls: Option<SharedTls> = None;
    let mut raw = tls_glue::RawBuf::new();
    let mut size = READ_BUF;
    let mut small_reads = 0u32;
    loop {
        let mut buf = pool.try_recv().unwrap_or_else(|_| ReadBuf::new(&budget));
        let len = buf.fit(size);
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
        match r {
            Ok(n) if n == len => {
                small_reads = 0;
                size = (size * 2).min(READ_BUF_MAX);
            }
            Ok(n) if n < len / 4 && size > READ_BUF => {
                small_reads += 1;
                if small_reads >= SHRINK_AFTER {
                    small_reads = 0;
                    size = (size / 2).max(READ_BUF);
                }
            }
            _ => small_reads = 0,
        }
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
    /// Bytes already encrypted (the rest of a direct write): written as they are.
    Raw,
    /// A segment of a shared in-memory bundle: nothing to recycle.
    Shared,
}

/// To the writer thread.
pub(crate) enum WriterJob {
    /// Write `buf[range]`, then hand the buffer back.
    Write(Vec<u8>, Range<usize>, JobKind),
    /// Write `hdr` followed by `data[range]` in one gather write: one XFER_SEGMENT of
    /// an in-memory bundle, framed without copying the payload.
    Segment {
        hdr: [u8; HEADROOM],
        hlen: usize,
        data: Arc<Vec<u8>>,
        range: Range<usize>,
    },
    /// TLS is up: encrypt everything from now on.
    SetTls(SharedTls),
    /// Write whatever rustls has pending.
    Flush,
    /// Send TLS close_notify (if TLS), shut down the write side and exit.
    Shutdown,
}

/// From the writer thread.
pub(crate) enum WriterDone {
    /// A `Write`, `Segment` or `Flush` job finished; the buffer comes back.
    Written(Vec<u8>, JobKind),
    /// Writing failed; the writer has exited.
    Failed(io::Error),
}

/// Writes all of `parts` with gather writes (`writev`), resuming after short writes.
pub(crate) fn write_all_parts(sock: &mut TcpStream, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        match sock.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(crate) fn writer_main(
    mut sock: TcpStream,
    jobs: Receiver<WriterJob>,
    done: Sender<WriterDone>,
) {
    let mut tls: Option<SharedTls> = None;
    let mut scratch = Vec::new();
    for job in jobs {
        let (r, back) = match job {
            WriterJob::Write(buf, range, kind) => {
                let data = buf.get(range).unwrap_or_default();
                let r = match &tls {
                    Some(c) if kind != JobKind::Raw => {
                        tls_glue::write_plain(&mut sock, c, &[data], &mut scratch)
                    }
                    _ => write_all_parts(&mut sock, &[data]),
                };
                (r, Some((buf, kind)))
            }
            WriterJob::Segment {
                hdr,
                hlen,
                data,
                range,
            } => {
                let parts = [&hdr[..hlen], data.get(range).unwrap_or_default()];
                let r = match &tls {
                    Some(c) => tls_glue::write_plain(&mut sock, c, &parts, &mut scratch),
                    None => write_all_parts(&mut sock, &parts),
                };
                (r, Some((Vec::new(), JobKind::Shared)))
            }
            WriterJob::SetTls(c) => {
                tls = Some(c);
                (Ok(()), None)
            }
            WriterJob::Flush => {
                let r = match &tls {
                    Some(c) => tls_glue::write_plain(&mut sock, c, &[], &mut scratch),
                    None => Ok(()),
                };
                (r, Some((Vec::new(), JobKind::Shared)))
            }
            WriterJob::Shutdown => {
                if let Some(c) = &tls {
                    let _ = tls_glue::close_notify(&mut sock, c);
                }
                let _ = sock.flush();
                let _ = sock.shutdown(Shutdown::Write);
                return;
            }
        };
        match r {
            Ok(()) => {
                if let Some((buf, kind)) = back {
                    if done.send(WriterDone::Written(buf, kind)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = done.send(WriterDone::Failed(e));
                return;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_buffers_grow_within_the_budget_and_give_it_back() {
        let budget = ReadBudget::new(300 << 10);
        let mut a = ReadBuf::new(&budget);
        let mut b = ReadBuf::new(&budget);
        // Up to READ_BUF_FREE costs nothing.
        assert_eq!(a.fit(READ_BUF_FREE), READ_BUF_FREE);
        assert_eq!(budget.used(), 0);
        // Beyond it, the growth is charged...
        assert_eq!(a.fit(READ_BUF_MAX), READ_BUF_MAX);
        assert_eq!(budget.used(), READ_BUF_MAX - READ_BUF_FREE);
        // ...and a second buffer gets only what is left: its free part plus the
        // remaining 108 KiB.
        let left = (300 << 10) - (READ_BUF_MAX - READ_BUF_FREE);
        assert_eq!(b.fit(READ_BUF_MAX), READ_BUF_FREE + left);
        assert_eq!(budget.used(), 300 << 10);
        // Shrinking gives the memory and the budget back.
        assert_eq!(a.fit(READ_BUF), READ_BUF);
        assert_eq!(budget.used(), left);
        drop(b);
        assert_eq!(budget.used(), 0);
        // An exhausted budget still leaves READ_BUF_FREE.
        let none = ReadBudget::new(0);
        let mut c = ReadBuf::new(&none);
        assert_eq!(c.fit(READ_BUF_MAX), READ_BUF_FREE);
        assert_eq!(c.len(), READ_BUF_FREE);
    }
}
