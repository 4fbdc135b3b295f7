//! `listen --bundles`: the sink that collects a transfer in memory, parses it as a BPv7
//! bundle when it is complete, and stores the bundle (or with `--payload-only` its
//! payload) in `--out-dir` under its number or (`--keep-names`) the name it carries,
//! all before the last segment is acknowledged. A transfer that is not a valid bundle
//! fails the sink, so the agent refuses it instead of acknowledging it.

use super::lock;
use super::names::{publish_named, PublishError};
use super::report::BundleSummary;
use super::store::{create_temp, publish, SinkState, Store, Stored};
use crate::decode::hex;
use proto_core::bpv7;
use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How `listen --bundles` stores bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BundleMode {
    /// Store the payload only.
    pub(super) payload_only: bool,
    /// Store under the carried file name.
    pub(super) keep_names: bool,
    /// Largest bundle held in memory (the agent's transfer MRU).
    pub(super) limit: u64,
}

/// Collects one transfer; see the module doc.
pub(super) struct BundleSink {
    pub(super) buf: Vec<u8>,
    pub(super) mode: BundleMode,
    pub(super) transfer_id: u64,
    pub(super) node_id: String,
    pub(super) state: SinkState,
    pub(super) store: Arc<Store>,
    pub(super) finished: bool,
}

impl Write for BundleSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The agent enforces the transfer MRU; this is the memory bound if it did not.
        if (self.buf.len() as u64).saturating_add(buf.len() as u64) > self.mode.limit {
            return Err(std::io::Error::new(
                ErrorKind::OutOfMemory,
                format!("bundle larger than {} bytes", self.mode.limit),
            ));
        }
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
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
                self.store.failed.fetch_add(1, Ordering::SeqCst);
                *lock(&self.state) = Stored::Failed;
                Err(e)
            }
        }
    }
}

impl Drop for BundleSink {
    fn drop(&mut self) {
        if !self.finished {
            *lock(&self.state) = Stored::Abandoned;
        }
    }
}

impl BundleSink {
    fn finish(&mut self) -> std::io::Result<Stored> {
        let bytes = std::mem::take(&mut self.buf);
        let view = bpv7::parse(&bytes).map_err(|e| {
            log::warn!(
                "transfer {} from {} ({} bytes) is refused: {e}",
                self.transfer_id,
                self.node_id,
                bytes.len()
            );
            std::io::Error::new(ErrorKind::InvalidData, e)
        })?;
        let name = match view.file_name(&bytes) {
            Ok(n) => n.map(str::to_string),
            Err(e) => {
                log::warn!("transfer {}: {e}; name ignored", self.transfer_id);
                None
            }
        };
        let data = if self.mode.payload_only {
            view.payload(&bytes)
        } else {
            &bytes[..]
        };
        let mut summary = BundleSummary {
            source: view.source.clone(),
            destination: view.destination.clone(),
            created_ms: view.created_ms,
            sequence: view.sequence,
            lifetime_ms: view.lifetime_ms,
            bundle_size: bytes.len() as u64,
            payload_size: view.payload.len() as u64,
            name,
            name_refused: None,
        };
        let sha256 = hex(Sha256::digest(data).as_slice());
        let (seq, file) = match &self.store.out_dir {
            Some(dir) => self.store_in(dir, data, &mut summary)?,
            None => (self.store.arrivals.next_seq().unwrap_or_default(), None),
        };
        Ok(Stored::Done {
            seq,
            sha256,
            len: data.len() as u64,
            extra: Some(Box::new((summary, file))),
        })
    }

    /// Writes `data` to a `.part` file and publishes it; the arrival number and path.
    fn store_in(
        &self,
        dir: &Path,
        data: &[u8],
        summary: &mut BundleSummary,
    ) -> std::io::Result<(u64, Option<PathBuf>)> {
        let (_, temp, mut f) = create_temp(&self.store, dir)?;
        let written = f.write_all(data).and_then(|()| f.sync_all());
        drop(f);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            log::warn!("cannot store a bundle of {} bytes: {e}", data.len());
            return Err(e);
        }
        if let (true, Some(name)) = (self.mode.keep_names, summary.name.clone()) {
            match publish_named(&temp, dir, &name) {
                Ok(path) => {
                    let seq = self.store.arrivals.next_seq().unwrap_or_default();
                    return Ok((seq, Some(path)));
                }
                Err(PublishError::Refused(why)) => {
                    log::warn!(
                        "transfer {} from {}: the name {name:?} is refused ({why}); stored under its number",
                        self.transfer_id,
                        self.node_id
                    );
                    summary.name_refused = Some(why.to_string());
                }
                Err(PublishError::Io(e)) => {
                    let _ = std::fs::remove_file(&temp);
                    log::warn!("cannot store {name:?}: {e}");
                    return Err(e);
                }
            }
        }
        match publish(&temp, &self.store.arrivals) {
            Ok(seq) => Ok((seq, self.store.arrivals.path_for(seq))),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }
}
