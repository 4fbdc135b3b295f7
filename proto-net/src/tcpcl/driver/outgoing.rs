//! Outgoing bundles: their sources, in transfer-ID order, answering the core's "how
//! much can you append now" ([`Ready`]) and handing over each segment's payload.
//!
//! - bytes in memory: shared with the transport, segments are written straight from
//!   them;
//! - a file: read on the session thread, one segment at a time (regular files do not
//!   block for long);
//! - any other reader: read on a helper thread (spawned when its bundle becomes the
//!   current one, at most one per session) into a queue of two chunks; the helper
//!   wakes the session when a chunk is ready, so a reader that blocks never stalls
//!   acknowledgements or timers.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use proto_core::tcpcl::Ready;

use super::super::close::SourceFailure;
use super::super::shared::Source;
use super::super::wake::Waker;
use super::transport::Payload;

/// Bytes a helper reads into one chunk.
const CHUNK_MIN: usize = 16 << 10;
const CHUNK_MAX: usize = 1 << 20;

/// A chunk from a reader helper.
struct Chunk {
    buf: Arc<Vec<u8>>,
    pos: usize,
    last: bool,
}

enum From {
    Bytes(Arc<Vec<u8>>),
    File {
        file: std::fs::File,
        len: u64,
    },
    Reader {
        reader: Option<Box<dyn Read + Send>>,
        len: Option<u64>,
    },
    Helper {
        rx: Receiver<io::Result<(Vec<u8>, bool)>>,
        back: Sender<Vec<u8>>,
        front: Option<Chunk>,
    },
}

struct Bundle {
    tid: u64,
    from: From,
    /// Bytes handed out as payload so far.
    sent: u64,
    total: Option<u64>,
}

/// Why a source could not supply its bytes.
#[derive(Debug)]
pub(crate) struct SourceError {
    pub(crate) tid: u64,
    pub(crate) failure: SourceFailure,
}

impl SourceError {
    fn read(tid: u64, e: &io::Error) -> SourceError {
        SourceError {
            tid,
            failure: SourceFailure::read(e),
        }
    }
}

/// The outgoing bundles of a session.
pub(crate) struct Outgoing {
    bundles: VecDeque<Bundle>,
    waker: Arc<Waker>,
    chunk: usize,
    /// A buffer for file reads, reused when the transport is done with it.
    spare: Option<Vec<u8>>,
    /// A reader helper failed (reported at the next chance).
    pub(crate) failed: Option<SourceError>,
}

impl Outgoing {
    pub(crate) fn new(waker: Arc<Waker>, segment_size: u64) -> Outgoing {
        let chunk = usize::try_from(segment_size)
            .unwrap_or(CHUNK_MAX)
            .clamp(CHUNK_MIN, CHUNK_MAX);
        Outgoing {
            bundles: VecDeque::new(),
            waker,
            chunk,
            spare: None,
            failed: None,
        }
    }

    /// Registers the source of transfer `tid` (IDs arrive in increasing order).
    pub(crate) fn push(&mut self, tid: u64, source: Source) {
        let total = source.len();
        let from = match source {
            Source::Bytes(b) => From::Bytes(Arc::new(b)),
            Source::File { file, len, .. } => From::File { file, len },
            Source::Reader { reader, len } => From::Reader {
                reader: Some(reader),
                len,
            },
        };
        self.bundles.push_back(Bundle {
            tid,
            from,
            sent: 0,
            total,
        });
    }

    /// Forgets transfer `tid` (finished, refused or cancelled).
    pub(crate) fn remove(&mut self, tid: u64) {
        self.bundles.retain(|b| b.tid != tid);
    }

    /// Transfer IDs still held.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.bundles.iter().map(|b| b.tid).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }

    /// A payload buffer the transport has finished with.
    pub(crate) fn recycle(&mut self, buf: Arc<Vec<u8>>) {
        if let Ok(v) = Arc::try_unwrap(buf) {
            if v.capacity() <= CHUNK_MAX && self.spare.is_none() {
                self.spare = Some(v);
            }
        }
    }

    /// The announced length of transfer `tid`, if any.
    pub(crate) fn total_len(&self, tid: u64) -> Option<u64> {
        self.bundles
            .iter()
            .find(|b| b.tid == tid)
            .and_then(|b| b.total)
    }

    /// What transfer `tid` can supply right now, from its next unsent byte on.
    pub(crate) fn ready(&mut self, tid: u64) -> Ready {
        const NOTHING: Ready = Ready {
            available: 0,
            complete: false,
        };
        let chunk = self.chunk;
        let waker = &self.waker;
        let Some(b) = self.bundles.iter_mut().find(|b| b.tid == tid) else {
            return NOTHING;
        };
        if let From::Reader { reader, len } = &mut b.from {
            let Some(r) = reader.take() else {
                return NOTHING;
            };
            b.from = spawn_helper(r, *len, chunk, waker.clone());
        }
        let offset = b.sent;
        match &mut b.from {
            From::Bytes(data) => Ready {
                available: (data.len() as u64).saturating_sub(offset),
                complete: true,
            },
            From::File { len, .. } => Ready {
                available: len.saturating_sub(offset),
                complete: true,
            },
            From::Reader { .. } => NOTHING,
            From::Helper { rx, back, front } => {
                if front
                    .as_ref()
                    .is_some_and(|c| c.pos >= c.buf.len() && !c.last)
                {
                    if let Some(c) = front.take() {
                        if let Ok(v) = Arc::try_unwrap(c.buf) {
                            let _ = back.try_send(v);
                        }
                    }
                }
                if front.is_none() {
                    match rx.try_recv() {
                        Ok(Ok((buf, last))) => {
                            *front = Some(Chunk {
                                buf: Arc::new(buf),
                                pos: 0,
                                last,
                            })
                        }
                        Ok(Err(error)) => {
                            self.failed = Some(SourceError::read(tid, &error));
                            return NOTHING;
                        }
                        Err(TryRecvError::Empty) => return NOTHING,
                        Err(TryRecvError::Disconnected) => {
                            let e = io::Error::other("the bundle reader's thread ended");
                            self.failed = Some(SourceError::read(tid, &e));
                            return NOTHING;
                        }
                    }
                }
                match front {
                    Some(c) => Ready {
                        available: (c.buf.len() - c.pos) as u64,
                        complete: c.last,
                    },
                    None => NOTHING,
                }
            }
        }
    }

    /// The `len` payload bytes of `tid` starting at `offset`, as promised by the last
    /// [`Outgoing::ready`].
    pub(crate) fn payload(
        &mut self,
        tid: u64,
        offset: u64,
        len: usize,
    ) -> Result<Payload, SourceError> {
        let fail = |e: io::Error| SourceError::read(tid, &e);
        let spare = &mut self.spare;
        let b = self
            .bundles
            .iter_mut()
            .find(|b| b.tid == tid)
            .ok_or_else(|| fail(io::Error::other("no source for this transfer")))?;
        let start =
            usize::try_from(offset).map_err(|_| fail(io::ErrorKind::InvalidInput.into()))?;
        b.sent = offset + len as u64;
        match &mut b.from {
            From::Bytes(data) => Ok(Payload {
                buf: data.clone(),
                range: start..start + len,
            }),
            From::File { file, .. } => {
                let mut v = spare.take().unwrap_or_default();
                v.clear();
                v.resize(len, 0);
                file.read_exact_at(&mut v, offset).map_err(|e| {
                    fail(if e.kind() == io::ErrorKind::UnexpectedEof {
                        io::Error::new(e.kind(), "the file became shorter while being sent")
                    } else {
                        e
                    })
                })?;
                Ok(Payload {
                    buf: Arc::new(v),
                    range: 0..len,
                })
            }
            From::Helper { front: Some(c), .. } => {
                let p = Payload {
                    buf: c.buf.clone(),
                    range: c.pos..c.pos + len,
                };
                c.pos += len;
                Ok(p)
            }
            _ if len == 0 => Ok(Payload {
                buf: Arc::new(Vec::new()),
                range: 0..0,
            }),
            _ => Err(fail(io::Error::other(
                "the bundle reader has no data ready",
            ))),
        }
    }
}

/// Starts the helper thread reading `reader` into chunks.
fn spawn_helper(
    mut reader: Box<dyn Read + Send>,
    len: Option<u64>,
    chunk: usize,
    waker: Arc<Waker>,
) -> From {
    let (tx, rx) = bounded::<io::Result<(Vec<u8>, bool)>>(2);
    let (back, recycled) = bounded::<Vec<u8>>(2);
    let w = waker.clone();
    let spawned = std::thread::Builder::new()
        .name("tcpcl-source".into())
        .stack_size(64 << 10)
        .spawn(move || {
            let mut left = len;
            loop {
                let want = left.map_or(chunk, |l| chunk.min(usize::try_from(l).unwrap_or(chunk)));
                let mut buf = recycled.try_recv().unwrap_or_default();
                buf.clear();
                buf.resize(want, 0);
                let mut got = 0;
                let mut eof = false;
                // Fill the chunk, but hand over what a slow stream gave as soon as a
                // read returns less than asked (a pipe delivers in bursts).
                while got < want {
                    match reader.read(&mut buf[got..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => {
                            got += n;
                            if got < want && n < 4096 {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            w.wake();
                            return;
                        }
                    }
                }
                buf.truncate(got);
                if let Some(l) = &mut left {
                    *l -= got as u64;
                }
                let last = eof || left == Some(0);
                if tx.send(Ok((buf, last))).is_err() {
                    return;
                }
                w.wake();
                if last {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        let (tx, rx) = bounded(1);
        let _ = tx.send(Err(e));
        return From::Helper {
            rx,
            back,
            front: None,
        };
    }
    From::Helper {
        rx,
        back,
        front: None,
    }
}
