//! Outgoing bundles: their sources, in transfer-ID order, answering the core's "how
//! much can you append now" ([`Ready`]) and handing over each segment's payload.
//!
//! - bytes in memory: shared with the transport, segments are written straight from
//!   them;
//! - a file: read on the session thread, one segment at a time (regular files do not
//!   block for long);
//! - any other reader: read by the session's reader helper ([`super::reader`]) into a
//!   queue of two chunks; the helper wakes the session when a chunk is ready, so a
//!   reader that blocks never stalls acknowledgements or timers.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use proto_core::tcpcl::Ready;

use super::super::close::SourceFailure;
use super::super::shared::Source;
use super::super::wake::Waker;
use super::reader::{Msg, ReaderHelper};
use super::transport::Payload;

/// Bytes a helper reads into one chunk.
const CHUNK_MIN: usize = 16 << 10;
/// At most 32 KiB: a session holds about three chunks, and 200 busy sessions must fit
/// in tens of MiB.
const CHUNK_MAX: usize = 32 << 10;
/// Largest file-read buffer kept for the next segment.
const FILE_BUF_MAX: usize = 4 << 20;

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
    /// Handed to the reader helper; the chunk being sent from.
    Helper {
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
    /// The session's reader helper, once a reader bundle needed it.
    helper: Option<ReaderHelper>,
    /// A reader failed (reported at the next chance).
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
            helper: None,
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
        if let Some(h) = &self.helper {
            h.cancel(tid);
        }
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
        let Ok(v) = Arc::try_unwrap(buf) else {
            return;
        };
        if v.capacity() > FILE_BUF_MAX {
            return;
        }
        match &self.helper {
            Some(h) if self.spare.is_some() => h.recycle(v),
            _ => self.spare = Some(v),
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
        let Some(b) = self.bundles.iter_mut().find(|b| b.tid == tid) else {
            return NOTHING;
        };
        if let From::Reader { reader, len } = &mut b.from {
            let Some(r) = reader.take() else {
                return NOTHING;
            };
            let len = *len;
            if self.helper.is_none() {
                match ReaderHelper::spawn(self.waker.clone(), self.chunk) {
                    Ok(h) => self.helper = Some(h),
                    Err(e) => {
                        self.failed = Some(SourceError::read(tid, &e));
                        return NOTHING;
                    }
                }
            }
            if let Some(h) = &self.helper {
                h.start(tid, r, len);
            }
            b.from = From::Helper { front: None };
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
            From::Helper { front } => {
                let Some(h) = &self.helper else {
                    return NOTHING;
                };
                if front
                    .as_ref()
                    .is_some_and(|c| c.pos >= c.buf.len() && !c.last)
                {
                    if let Some(c) = front.take() {
                        if let Ok(v) = Arc::try_unwrap(c.buf) {
                            h.recycle(v);
                        }
                    }
                }
                if front.is_none() {
                    match h.next(tid) {
                        Some(Msg::Chunk { buf, last, .. }) => {
                            *front = Some(Chunk {
                                buf: Arc::new(buf),
                                pos: 0,
                                last,
                            })
                        }
                        Some(Msg::Failed { error, .. }) => {
                            self.failed = Some(SourceError::read(tid, &error));
                            return NOTHING;
                        }
                        None => return NOTHING,
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
