//! The BPv7 side of `proto tcpcl`: the flags that make `send` wrap each file in a
//! bundle and `listen` take bundles apart, and the wrapping itself (see
//! `proto_core::bpv7` and `docs/bundles.md`).

use anyhow::{anyhow, Result};
use proto_core::bpv7::{self, Outgoing};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Default bundle lifetime, seconds (one day).
const DEFAULT_LIFETIME: u64 = 86_400;

/// Bundles held in memory by `listen --bundles` are at most this large unless
/// `--transfer-mru` says otherwise (the agent refuses bigger transfers).
pub(super) const BUNDLE_MEMORY_LIMIT: u64 = 256 << 20;

/// `send`: wrap each file as the payload of a BPv7 bundle.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SendBundleArgs {
    /// Wrap each file in a BPv7 bundle (RFC 9171) for this destination EID, e.g.
    /// dtn://node2/incoming or ipn:2.1 (the file is read into memory). Each file's
    /// name (its path below a DIR argument) travels in a block of type 192.
    #[arg(long, value_name = "EID")]
    pub(super) bundle_to: Option<String>,
    /// Source EID of the bundles (default: --node-id).
    #[arg(long, value_name = "EID", requires = "bundle_to")]
    pub(super) bundle_from: Option<String>,
    /// Bundle lifetime, seconds.
    #[arg(long, value_name = "SECS", requires = "bundle_to", default_value_t = DEFAULT_LIFETIME)]
    pub(super) lifetime: u64,
    /// Print one JSON object per file (file, name, size, sha256, transfer_id, result)
    /// instead of the summary line.
    #[arg(long)]
    pub(super) json: bool,
}

/// `listen`: parse incoming transfers as BPv7 bundles.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ListenBundleArgs {
    /// Parse every transfer as a BPv7 bundle (RFC 9171; CRCs verified); the arrival
    /// line adds source, destination, creation time and payload size. A transfer that
    /// is not a valid bundle is refused. Bundles are held in memory (the transfer MRU
    /// becomes 256 MiB unless --transfer-mru is given).
    #[arg(long)]
    pub(super) bundles: bool,
    /// Store (and hash) only each bundle's payload, not the whole bundle.
    #[arg(long, requires = "bundles")]
    pub(super) payload_only: bool,
    /// Store each bundle under the file name it carries (block type 192), a relative
    /// path inside --out-dir; names with `..`, absolute paths or links on the way are
    /// refused (the bundle is then stored under its number).
    #[arg(long, requires = "bundles")]
    pub(super) keep_names: bool,
    /// Print one JSON object per arrival instead of the arrival line.
    #[arg(long)]
    pub(super) json: bool,
}

/// Makes the bundles of one `send` run: creation time now, sequence numbers counting
/// up so two bundles made in the same millisecond differ.
pub(super) struct Wrapper {
    source: String,
    destination: String,
    lifetime_ms: u64,
    sequence: AtomicU64,
}

impl Wrapper {
    /// A wrapper for `a`, if it asks for bundles; `node_id` is the default source.
    pub(super) fn new(a: &SendBundleArgs, node_id: &str) -> Result<Option<Wrapper>> {
        let Some(destination) = &a.bundle_to else {
            return Ok(None);
        };
        let w = Wrapper {
            source: a.bundle_from.clone().unwrap_or_else(|| node_id.to_string()),
            destination: destination.clone(),
            lifetime_ms: a.lifetime.saturating_mul(1000),
            sequence: AtomicU64::new(0),
        };
        // Bad EIDs are found before connecting.
        w.wrap(b"", None)?;
        w.sequence.store(0, Ordering::SeqCst);
        Ok(Some(w))
    }

    /// The destination EID.
    pub(super) fn destination(&self) -> &str {
        &self.destination
    }

    /// The source EID.
    pub(super) fn source(&self) -> &str {
        &self.source
    }

    /// `payload` as a bundle, carrying `name` in a file-name block if given.
    pub(super) fn wrap(&self, payload: &[u8], name: Option<&str>) -> Result<Vec<u8>> {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let created = unix_ms.checked_sub(bpv7::DTN_EPOCH_UNIX_SECS * 1000);
        bpv7::encode(&Outgoing {
            source: &self.source,
            destination: &self.destination,
            created_ms: created,
            sequence: self.sequence.fetch_add(1, Ordering::SeqCst),
            lifetime_ms: self.lifetime_ms,
            file_name: name,
            payload,
        })
        .map_err(|e| match e {
            bpv7::Error::BadEid { role, text, reason } => {
                let flag = if role == "destination" {
                    "--bundle-to"
                } else {
                    "--bundle-from (or --node-id)"
                };
                anyhow!("{flag} {text:?} is not a valid endpoint ID ({reason}); use dtn://node/service or ipn:NODE.SERVICE")
            }
            e => anyhow!(e),
        })
    }
}
