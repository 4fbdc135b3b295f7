//! Where `listen` puts incoming bundles: each streams through a hashing writer into a
//! hidden `.part` file with a name of its own, which gets its final name in
//! `--out-dir` (never replacing a file) once the bundle is complete and before the
//! last segment is acknowledged.

use super::bundle_sink::{BundleMode, BundleSink};
use super::lock;
use super::report::BundleSummary;
use crate::arrivals::Arrivals;
use crate::decode::hex;
use proto_net::tcpcl::{IncomingTransfer, SessionId, Sink, XferRefuseReason};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What became of an incoming bundle's sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Stored {
    /// Still streaming.
    #[default]
    Streaming,
    /// Complete, and published as arrival `seq` (under its final name in `--out-dir`,
    /// if one is set) before the agent acknowledged the last segment.
    Done {
        seq: u64,
        sha256: String,
        len: u64,
        /// With `--bundles`: what the bundle said, and where it was stored.
        extra: Option<Box<BundleArrival>>,
    },
    /// Could not be stored: the sink failed, so the agent refused the transfer
    /// instead of acknowledging it.
    Failed,
    /// The transfer ended before it completed; its `.part` file is removed.
    Abandoned,
}

pub(super) type SinkState = Arc<Mutex<Stored>>;

/// A parsed bundle's fields and the path it was stored at (`--bundles`).
pub(super) type BundleArrival = (BundleSummary, Option<PathBuf>);

/// An incoming bundle, from its sink's creation until its line is printed.
pub(super) struct Pending {
    pub(super) session: SessionId,
    pub(super) transfer_id: u64,
    pub(super) node_id: String,
    pub(super) temp: Option<PathBuf>,
    pub(super) state: SinkState,
}

/// Keyed by a per-sink token, in creation order: a peer may reuse a transfer ID, so
/// (session, transfer ID) does not identify a sink.
pub(super) type PendingMap = Mutex<BTreeMap<u64, Pending>>;

/// What the sink chooser, the sinks and the main thread share.
pub(super) struct Store {
    pub(super) arrivals: Arrivals,
    pub(super) out_dir: Option<PathBuf>,
    pub(super) refuse: Option<XferRefuseReason>,
    pub(super) pending: PendingMap,
    /// Sink tokens, also the unique part of `.part` file names.
    pub(super) next_token: AtomicU64,
    /// Bundles that could not be stored (refused, never acknowledged).
    pub(super) failed: AtomicU64,
    /// `--bundles`: parse and store bundles with [`BundleSink`].
    pub(super) bundles: Option<BundleMode>,
}

/// Streams a bundle into a `.part` file (or nowhere) while hashing it. The agent
/// flushes it when the bundle is complete and acknowledges the last segment only if
/// that flush succeeds; the flush publishes the file under its final name, so every
/// acknowledged bundle is already stored. A sink dropped without that flush belonged
/// to an abandoned transfer and removes its file.
struct HashingSink {
    file: Option<(PathBuf, BufWriter<File>)>,
    hasher: Sha256,
    len: u64,
    state: SinkState,
    store: Arc<Store>,
    finished: bool,
}

impl HashingSink {
    /// Syncs and publishes the file; the arrival it became.
    fn finish(&mut self) -> std::io::Result<Stored> {
        let sha256 = hex(self.hasher.clone().finalize().as_slice());
        let seq = match self.file.take() {
            Some((temp, f)) => {
                let stored = f
                    .into_inner()
                    .map_err(std::io::IntoInnerError::into_error)
                    .and_then(|f| f.sync_all())
                    .and_then(|()| publish(&temp, &self.store.arrivals));
                if stored.is_err() {
                    let _ = std::fs::remove_file(&temp);
                }
                stored?
            }
            None => self.store.arrivals.next_seq().unwrap_or_default(),
        };
        Ok(Stored::Done {
            seq,
            sha256,
            len: self.len,
            extra: None,
        })
    }
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &mut self.file {
            Some((_, f)) => f.write(buf)?,
            None => buf.len(),
        };
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        match self.finish() {
            Ok(stored) => {
                *lock(&self.state) = stored;
                Ok(())
            }
            Err(e) => {
                log::warn!("cannot store a bundle of {} bytes: {e}", self.len);
                self.store.failed.fetch_add(1, Ordering::SeqCst);
                *lock(&self.state) = Stored::Failed;
                Err(e)
            }
        }
    }
}

impl Drop for HashingSink {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some((path, f)) = self.file.take() {
            drop(f);
            let _ = std::fs::remove_file(path);
        }
        *lock(&self.state) = Stored::Abandoned;
    }
}

/// Gives the complete bundle at `temp` the next free final name; returns its number.
/// An existing file is never replaced (a bundle of an earlier run, or of another
/// listener on the same directory): the name is taken with a hard link, which fails
/// if it exists, and then the next number is tried. Where hard links are not
/// supported, a rename of a name found free.
pub(super) fn publish(temp: &Path, arrivals: &Arrivals) -> std::io::Result<u64> {
    loop {
        let seq = arrivals.next_seq().unwrap_or_default();
        let Some(dst) = arrivals.path_for(seq) else {
            return Ok(seq);
        };
        match std::fs::hard_link(temp, &dst) {
            Ok(()) => {
                if let Err(e) = std::fs::remove_file(temp) {
                    log::warn!("cannot remove {}: {e}", temp.display());
                }
                return Ok(seq);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                if dst.symlink_metadata().is_err() {
                    log::debug!("linking {} failed ({e}); renaming", dst.display());
                    std::fs::rename(temp, &dst)?;
                    return Ok(seq);
                }
            }
        }
    }
}

/// A new, empty `.part` file in `dir` with a name no other sink (of this or another
/// listener) uses; its token.
pub(super) fn create_temp(store: &Store, dir: &Path) -> std::io::Result<(u64, PathBuf, File)> {
    let pid = std::process::id();
    let mut taken = 0;
    loop {
        let token = store.next_token.fetch_add(1, Ordering::SeqCst);
        let temp = dir.join(format!(".tcpcl-{pid}-{token}.part"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(f) => return Ok((token, temp, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && taken < 1000 => taken += 1,
            Err(e) => return Err(e),
        }
    }
}

pub(super) fn choose_sink(t: &IncomingTransfer, store: &Arc<Store>) -> Sink {
    if let Some(r) = store.refuse {
        return Sink::Refuse(r);
    }
    if let Some(mode) = store.bundles {
        let state = SinkState::default();
        let token = store.next_token.fetch_add(1, Ordering::SeqCst);
        lock(&store.pending).insert(
            token,
            Pending {
                session: t.session,
                transfer_id: t.transfer_id,
                node_id: t.peer_node_id.clone(),
                temp: None,
                state: state.clone(),
            },
        );
        return Sink::Writer(Box::new(BundleSink {
            buf: Vec::new(),
            mode,
            transfer_id: t.transfer_id,
            node_id: t.peer_node_id.clone(),
            state,
            store: store.clone(),
            finished: false,
        }));
    }
    let (token, file) = match &store.out_dir {
        Some(dir) => match create_temp(store, dir) {
            Ok((token, temp, f)) => (token, Some((temp, BufWriter::with_capacity(256 << 10, f)))),
            Err(e) => {
                log::error!(
                    "cannot create a .part file in {}: {e}; refusing the transfer",
                    dir.display()
                );
                return Sink::Refuse(XferRefuseReason::NO_RESOURCES);
            }
        },
        None => (store.next_token.fetch_add(1, Ordering::SeqCst), None),
    };
    let state = SinkState::default();
    lock(&store.pending).insert(
        token,
        Pending {
            session: t.session,
            transfer_id: t.transfer_id,
            node_id: t.peer_node_id.clone(),
            temp: file.as_ref().map(|(p, _)| p.clone()),
            state: state.clone(),
        },
    );
    Sink::Writer(Box::new(HashingSink {
        file,
        hasher: Sha256::new(),
        len: 0,
        state,
        store: store.clone(),
        finished: false,
    }))
}

impl Pending {
    pub(super) fn is_done(&self) -> bool {
        matches!(*lock(&self.state), Stored::Done { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_never_replaces_a_file() {
        let dir = std::env::temp_dir().join(format!("proto-tcpcl-publish-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let arrivals = Arrivals::new("tcpcl", Some(dir.clone()), None).unwrap();
        std::fs::write(dir.join("tcpcl-000001.bin"), b"earlier").unwrap();
        std::fs::write(dir.join("tcpcl-000002.bin"), b"earlier too").unwrap();
        let temp = dir.join(".x.part");
        std::fs::write(&temp, b"new").unwrap();
        assert_eq!(publish(&temp, &arrivals).unwrap(), 3);
        assert!(!temp.exists());
        assert_eq!(
            std::fs::read(dir.join("tcpcl-000001.bin")).unwrap(),
            b"earlier"
        );
        assert_eq!(std::fs::read(dir.join("tcpcl-000003.bin")).unwrap(), b"new");
        // A temporary file that is gone is an error, not an empty bundle.
        assert!(publish(&temp, &arrivals).is_err());
        assert!(!dir.join("tcpcl-000004.bin").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
