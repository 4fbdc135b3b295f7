//! Where incoming bundles go: the application picks a [`Sink`] per incoming transfer.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use proto_core::tcpcl::XferRefuseReason;

use super::events::{ReceivedBundle, SessionId};

/// An incoming transfer awaiting a sink decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTransfer {
    /// The session it arrives on.
    pub session: SessionId,
    /// The peer's transfer ID.
    pub transfer_id: u64,
    /// Total length, when the peer announced it (Transfer Length extension).
    pub total_len: Option<u64>,
    /// The peer's node ID.
    pub peer_node_id: String,
}

/// Where an incoming bundle's bytes go.
pub enum Sink {
    /// Collect in memory; delivered as [`ReceivedBundle::Bytes`]. Bounded by the
    /// agent's `max_memory_bundle` (default 64 MiB): a transfer announced or growing
    /// larger is refused with No Resources. Choose [`Sink::File`] or [`Sink::Writer`]
    /// for bigger bundles.
    Memory,
    /// Stream to this file (created or truncated); delivered as
    /// [`ReceivedBundle::File`]. The file is removed if the transfer does not complete.
    File(PathBuf),
    /// Stream into this writer; delivered as [`ReceivedBundle::Writer`]. On an
    /// incomplete transfer the writer is dropped without further notice.
    Writer(Box<dyn Write + Send>),
    /// Refuse the transfer (XFER_REFUSE with this reason).
    Refuse(XferRefuseReason),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Memory => f.write_str("Memory"),
            Sink::File(p) => f.debug_tuple("File").field(p).finish(),
            Sink::Writer(_) => f.write_str("Writer(..)"),
            Sink::Refuse(r) => f.debug_tuple("Refuse").field(r).finish(),
        }
    }
}

/// Picks a sink for each incoming transfer; runs on the session's thread, so it should
/// return quickly.
pub type SinkChooser = Arc<dyn Fn(&IncomingTransfer) -> Sink + Send + Sync>;

/// How an agent picks sinks: the application's chooser, else a file in `recv_dir`,
/// else memory. Shared by the agent (which sets the chooser) and its sessions.
pub(crate) struct SinkPolicy {
    chooser: std::sync::RwLock<Option<SinkChooser>>,
    recv_dir: Option<PathBuf>,
    /// The agent's `max_memory_bundle`.
    pub(crate) max_memory: u64,
}

impl SinkPolicy {
    pub(crate) fn new(recv_dir: Option<PathBuf>, max_memory: u64) -> SinkPolicy {
        SinkPolicy {
            chooser: std::sync::RwLock::new(None),
            recv_dir,
            max_memory,
        }
    }

    pub(crate) fn set(&self, f: SinkChooser) {
        *self.chooser.write().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// The sink for one incoming transfer.
    pub(crate) fn choose(&self, t: &IncomingTransfer) -> Sink {
        let chooser = self
            .chooser
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(f) = chooser {
            return f(t);
        }
        match &self.recv_dir {
            Some(dir) => Sink::File(dir.join(format!(
                "session{}-transfer{}.bundle",
                t.session.0, t.transfer_id
            ))),
            None => Sink::Memory,
        }
    }
}

/// Largest up-front reservation for an in-memory bundle with an announced length; more
/// grows as data actually arrives, so a false announcement costs nothing.
const MAX_RESERVE: u64 = 16 << 20;

/// A sink in use for one incoming transfer.
pub(crate) enum ActiveSink {
    /// The bytes so far and the most they may become.
    Memory(Vec<u8>, u64),
    File(PathBuf, BufWriter<File>),
    Writer(Box<dyn Write + Send>),
}

impl ActiveSink {
    /// Opens the chosen sink; the refusal reason for [`Sink::Refuse`], and for a
    /// memory sink whose announced length exceeds `max_memory` (No Resources).
    pub(crate) fn open(
        sink: Sink,
        total_len: Option<u64>,
        max_memory: u64,
    ) -> io::Result<Result<ActiveSink, XferRefuseReason>> {
        Ok(Ok(match sink {
            Sink::Memory => {
                if total_len.is_some_and(|l| l > max_memory) {
                    return Ok(Err(XferRefuseReason::NO_RESOURCES));
                }
                let reserve = total_len.unwrap_or(0).min(MAX_RESERVE);
                ActiveSink::Memory(
                    Vec::with_capacity(usize::try_from(reserve).unwrap_or(0)),
                    max_memory,
                )
            }
            Sink::File(path) => {
                let f = File::create(&path)?;
                ActiveSink::File(path, BufWriter::with_capacity(256 << 10, f))
            }
            Sink::Writer(w) => ActiveSink::Writer(w),
            Sink::Refuse(r) => return Ok(Err(r)),
        }))
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            ActiveSink::Memory(v, max) => {
                if (v.len() as u64).saturating_add(bytes.len() as u64) > *max {
                    return Err(io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        format!("bundle exceeds max_memory_bundle ({max} bytes)"),
                    ));
                }
                v.extend_from_slice(bytes);
                Ok(())
            }
            ActiveSink::File(_, w) => w.write_all(bytes),
            ActiveSink::Writer(w) => w.write_all(bytes),
        }
    }

    /// Completes the bundle: everything is flushed (a file's buffer to the OS; no
    /// fsync). On failure a file sink's partial file is removed.
    pub(crate) fn finish(self) -> io::Result<ReceivedBundle> {
        match self {
            ActiveSink::Memory(v, _) => Ok(ReceivedBundle::Bytes(v)),
            ActiveSink::File(path, mut w) => {
                if let Err(e) = w.flush() {
                    ActiveSink::File(path, w).abort();
                    return Err(e);
                }
                Ok(ReceivedBundle::File(path))
            }
            ActiveSink::Writer(mut w) => {
                w.flush()?;
                Ok(ReceivedBundle::Writer)
            }
        }
    }

    /// Abandons an incomplete bundle (a partial file is removed).
    pub(crate) fn abort(self) {
        if let ActiveSink::File(path, w) = self {
            drop(w);
            if let Err(e) = std::fs::remove_file(&path) {
                log::debug!("removing partial bundle {}: {e}", path.display());
            }
        }
    }
}
