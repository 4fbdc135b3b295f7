//! The helper thread that reads a session's outgoing bundles from `Read` sources that
//! may block (pipes, sockets, generators), so the session thread never does.
//!
//! One helper per session, started with the first such bundle and kept until the
//! session ends (a thread per bundle cost a stack mapping and a TLB shoot-down each);
//! it reads one bundle at a time, in the order the session hands them over, into
//! chunks it passes through a queue of [`QUEUE`] (one chunk being sent, one ready, one
//! being read) and wakes the session for each.
//! Chunks come back to it for reuse once written. A bundle the session gave up on is
//! recognised by its transfer ID: the helper stops reading it at its next chunk, and
//! the session drops chunks that arrive for it.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TryRecvError};

use super::super::wake::Waker;

/// Chunks read ahead of the session.
const QUEUE: usize = 1;
/// No transfer is being read.
const NONE: u64 = u64::MAX;

/// A bundle for the helper to read.
struct Job {
    tid: u64,
    reader: Box<dyn Read + Send>,
    len: Option<u64>,
}

/// What the helper sends back.
pub(crate) enum Msg {
    /// A chunk of transfer `tid`; `last` when the source ended with it.
    Chunk { tid: u64, buf: Vec<u8>, last: bool },
    /// Reading transfer `tid` failed.
    Failed { tid: u64, error: io::Error },
}

/// The session's end of its reader helper.
pub(crate) struct ReaderHelper {
    jobs: Sender<Job>,
    chunks: Receiver<Msg>,
    back: Sender<Vec<u8>>,
    /// The transfer the session wants read now.
    current: Arc<AtomicU64>,
}

impl ReaderHelper {
    /// Starts the helper thread; chunks of `chunk` bytes.
    pub(crate) fn spawn(waker: Arc<Waker>, chunk: usize) -> io::Result<ReaderHelper> {
        let (jobs, job_rx) = unbounded::<Job>();
        let (chunk_tx, chunks) = bounded::<Msg>(QUEUE);
        let (back, recycled) = bounded::<Vec<u8>>(QUEUE + 1);
        let current = Arc::new(AtomicU64::new(NONE));
        let cur = current.clone();
        std::thread::Builder::new()
            .name("tcpcl-source".into())
            .stack_size(64 << 10)
            .spawn(move || {
                for job in job_rx {
                    if !read_one(job, chunk, &chunk_tx, &recycled, &cur, &waker) {
                        return;
                    }
                }
            })?;
        Ok(ReaderHelper {
            jobs,
            chunks,
            back,
            current,
        })
    }

    /// Hands over the bundle of `tid`, to be read after any before it.
    pub(crate) fn start(&self, tid: u64, reader: Box<dyn Read + Send>, len: Option<u64>) {
        self.current.store(tid, Ordering::Release);
        let _ = self.jobs.send(Job { tid, reader, len });
    }

    /// Stops reading `tid` (its transfer ended early).
    pub(crate) fn cancel(&self, tid: u64) {
        let _ = self
            .current
            .compare_exchange(tid, NONE, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The next message for `tid`, dropping any left over for other transfers; `None`
    /// while nothing is ready. A helper that is gone reports a failure.
    pub(crate) fn next(&self, tid: u64) -> Option<Msg> {
        loop {
            match self.chunks.try_recv() {
                Ok(Msg::Chunk { tid: t, buf, .. }) if t != tid => self.recycle(buf),
                Ok(Msg::Failed { tid: t, .. }) if t != tid => {}
                Ok(m) => return Some(m),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => {
                    return Some(Msg::Failed {
                        tid,
                        error: io::Error::other("the bundle reader's thread ended"),
                    })
                }
            }
        }
    }

    /// Gives a chunk back for reuse.
    pub(crate) fn recycle(&self, buf: Vec<u8>) {
        let _ = self.back.try_send(buf);
    }
}

/// Reads one bundle into chunks; false when the session is gone.
fn read_one(
    job: Job,
    chunk: usize,
    out: &Sender<Msg>,
    recycled: &Receiver<Vec<u8>>,
    current: &AtomicU64,
    waker: &Waker,
) -> bool {
    let Job {
        tid,
        mut reader,
        len,
    } = job;
    let mut left = len;
    loop {
        if current.load(Ordering::Acquire) != tid {
            // Given up by the session (or superseded): stop reading it.
            return true;
        }
        let want = left.map_or(chunk, |l| chunk.min(usize::try_from(l).unwrap_or(chunk)));
        let mut buf = recycled.try_recv().unwrap_or_default();
        if buf.len() != want {
            // Only the part beyond what the buffer held before is zeroed.
            buf.resize(want, 0);
        }
        let mut got = 0;
        let mut eof = false;
        // Fill the chunk, but hand over what a slow stream gave as soon as a read
        // returns less than asked (a pipe delivers in bursts).
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
                Err(error) => {
                    let sent = out.send(Msg::Failed { tid, error }).is_ok();
                    waker.wake();
                    return sent;
                }
            }
        }
        buf.truncate(got);
        if let Some(l) = &mut left {
            *l -= got as u64;
        }
        let last = eof || left == Some(0);
        if out.send(Msg::Chunk { tid, buf, last }).is_err() {
            return false;
        }
        waker.wake();
        if last {
            return true;
        }
    }
}
