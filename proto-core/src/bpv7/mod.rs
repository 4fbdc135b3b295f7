//! BPv7 bundles (RFC 9171) as `proto` sends and receives them over TCPCL: one payload
//! block, optionally a file-name block, built and taken apart by the `hardy-bpv7`
//! crate (see `docs/bundles.md` for why the field's library and not our own codec).
//!
//! This module owns the thin layer between that crate and the rest of `proto`:
//! [`encode`] builds a bundle from plain strings and bytes (no clock is read here; the
//! caller gives the creation time), and [`parse`] verifies a bundle (CBOR structure,
//! every CRC, block numbering, payload last) and returns a [`BundleView`]: owned
//! strings and byte ranges into the caller's buffer, so the payload is never copied.
//!
//! The file name of `proto tcpcl send DIR` travels in a canonical block of type
//! [`FILE_NAME_BLOCK`] (a code from RFC 9171's private/experimental range 192–255),
//! whose block-type-specific data is the relative path in UTF-8 with `/` separators.
//! Nodes that do not know the type forward it untouched (no "delete" flags are set).

use hardy_bpv7::block::{self, Type};
use hardy_bpv7::builder::Builder;
use hardy_bpv7::bundle::ParsedBundle;
use hardy_bpv7::crc::CrcType;
use hardy_bpv7::creation_timestamp::CreationTimestamp;
use hardy_bpv7::dtn_time::DtnTime;
use hardy_bpv7::eid::Eid;
use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

#[cfg(test)]
mod tests;

/// Block type code of the canonical block carrying a file's relative name (private
/// use range of RFC 9171 §9.1).
pub const FILE_NAME_BLOCK: u64 = 192;

/// Longest file name [`encode`] puts in a [`FILE_NAME_BLOCK`], bytes.
pub const MAX_FILE_NAME: usize = 4096;

/// Unix time of the DTN epoch (2000-01-01T00:00:00Z), seconds.
pub const DTN_EPOCH_UNIX_SECS: u64 = 946_684_800;

/// Why a bundle could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An endpoint ID given to [`encode`] is not a valid `dtn:` or `ipn:` URI.
    #[error("{role} EID {text:?} is not valid: {reason}")]
    BadEid {
        /// Which EID: "source", "destination" or "report-to".
        role: &'static str,
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file name is empty or longer than [`MAX_FILE_NAME`].
    #[error("a file name of {0} bytes cannot travel in a bundle (1 to 4096 bytes)")]
    BadFileName(usize),
    /// The bundle could not be encoded.
    #[error("cannot encode the bundle: {0}")]
    Encode(String),
    /// The bytes are not a valid BPv7 bundle.
    #[error("not a valid BPv7 bundle: {0}")]
    Invalid(String),
    /// The file-name block's data is not UTF-8.
    #[error("the file-name block (type 192) does not hold UTF-8 text")]
    FileNameNotUtf8,
}

/// What [`encode`] needs for a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// Source node ID, e.g. `dtn://tx/` or `ipn:1.0`.
    pub source: &'a str,
    /// Destination EID, e.g. `dtn://node2/incoming`.
    pub destination: &'a str,
    /// Creation time, milliseconds since the DTN epoch; `None`: the source has no
    /// clock (creation time 0, RFC 9171 §4.2.7).
    pub created_ms: Option<u64>,
    /// Creation sequence number (unique per source and creation time).
    pub sequence: u64,
    /// Lifetime, milliseconds.
    pub lifetime_ms: u64,
    /// Relative file name for a [`FILE_NAME_BLOCK`], if any.
    pub file_name: Option<&'a str>,
    /// The payload.
    pub payload: &'a [u8],
}

/// Builds a bundle: primary block with CRC-32C, report-to = source, no status
/// reports requested, optionally a [`FILE_NAME_BLOCK`], and the payload block (block
/// number 1, CRC-32C) last.
pub fn encode(b: &Outgoing<'_>) -> Result<Vec<u8>, Error> {
    let source = eid("source", b.source)?;
    let destination = eid("destination", b.destination)?;
    let mut builder = Builder::new(source, destination)
        .with_lifetime(Duration::from_millis(b.lifetime_ms))
        .with_payload(Cow::Borrowed(b.payload));
    if let Some(name) = b.file_name {
        if name.is_empty() || name.len() > MAX_FILE_NAME {
            return Err(Error::BadFileName(name.len()));
        }
        builder = builder
            .add_extension_block(Type::Unrecognised(FILE_NAME_BLOCK))
            .map_err(|e| Error::Encode(e.to_string()))?
            .build(Cow::Borrowed(name.as_bytes()));
    }
    let ts = CreationTimestamp::from_parts(b.created_ms.map(DtnTime::new), b.sequence);
    let (_, data) = builder
        .build(ts)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(data.into_vec())
}

fn eid(role: &'static str, text: &str) -> Result<Eid, Error> {
    text.parse::<Eid>().map_err(|e| Error::BadEid {
        role,
        text: text.to_string(),
        reason: e.to_string(),
    })
}

/// CRC type of a block (RFC 9171 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crc {
    /// No CRC.
    None,
    /// CRC-16/X-25.
    Crc16,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// A code RFC 9171 does not define.
    Other(u64),
}

impl Crc {
    /// The name `decode bpv7` shows.
    pub fn name(self) -> &'static str {
        match self {
            Crc::None => "none",
            Crc::Crc16 => "CRC-16/X-25",
            Crc::Crc32c => "CRC-32C",
            Crc::Other(_) => "unknown",
        }
    }

    /// The wire code.
    pub fn code(self) -> u64 {
        match self {
            Crc::None => 0,
            Crc::Crc16 => 1,
            Crc::Crc32c => 2,
            Crc::Other(c) => c,
        }
    }
}

impl From<CrcType> for Crc {
    fn from(c: CrcType) -> Self {
        match c {
            CrcType::None => Crc::None,
            CrcType::CRC16_X25 => Crc::Crc16,
            CrcType::CRC32_CASTAGNOLI => Crc::Crc32c,
            CrcType::Unrecognised(v) => Crc::Other(v),
        }
    }
}

/// One block of a parsed bundle, primary block included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockView {
    /// Block number (0 for the primary block, 1 for the payload block).
    pub number: u64,
    /// Block type code (0 stands for the primary block here).
    pub block_type: u64,
    /// Block processing control flags (bundle processing control flags for the
    /// primary block).
    pub flags: u64,
    /// CRC type.
    pub crc: Crc,
    /// Where the whole block lies in the bundle.
    pub extent: Range<usize>,
    /// Where the block-type-specific data lies in the bundle (empty for the primary
    /// block).
    pub data: Range<usize>,
}

impl BlockView {
    /// The block type's name (RFC 9171 §9.1, plus ours).
    pub fn type_name(&self) -> &'static str {
        block_type_name(self.number, self.block_type)
    }
}

/// The name of block type `t` (`number` 0 is the primary block).
pub fn block_type_name(number: u64, t: u64) -> &'static str {
    match (number, t) {
        (0, _) => "primary",
        (_, 1) => "payload",
        (_, 6) => "previous node",
        (_, 7) => "bundle age",
        (_, 10) => "hop count",
        (_, 11) => "block integrity (BIB)",
        (_, 12) => "block confidentiality (BCB)",
        (_, FILE_NAME_BLOCK) => "file name (proto)",
        (_, 192..=255) => "private/experimental",
        _ => "unknown",
    }
}

/// A verified bundle, with ranges into the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleView {
    /// Source node ID.
    pub source: String,
    /// Destination EID.
    pub destination: String,
    /// Report-to EID.
    pub report_to: String,
    /// Creation time, ms since the DTN epoch; `None` when the source has no clock.
    pub created_ms: Option<u64>,
    /// Creation sequence number.
    pub sequence: u64,
    /// Lifetime, milliseconds.
    pub lifetime_ms: u64,
    /// Bundle processing control flags.
    pub flags: u64,
    /// Fragment offset and total ADU length, if the bundle is a fragment.
    pub fragment: Option<(u64, u64)>,
    /// Previous node (block type 6), if present.
    pub previous_node: Option<String>,
    /// Bundle age in ms (block type 7), if present.
    pub age_ms: Option<u64>,
    /// Hop limit and count (block type 10), if present.
    pub hop_count: Option<(u64, u64)>,
    /// Whether the encoding was not canonical CBOR (accepted, as RFC 9171 allows).
    pub non_canonical: bool,
    /// Every block, in the order they appear.
    pub blocks: Vec<BlockView>,
    /// Where the payload lies in the bundle.
    pub payload: Range<usize>,
    /// Where the data of the [`FILE_NAME_BLOCK`] lies, if there is one.
    pub file_name: Option<Range<usize>>,
}

impl BundleView {
    /// The payload of this bundle inside `bytes` (the buffer it was parsed from).
    pub fn payload<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        bytes.get(self.payload.clone()).unwrap_or_default()
    }

    /// The file name carried by this bundle, if any.
    pub fn file_name<'a>(&self, bytes: &'a [u8]) -> Result<Option<&'a str>, Error> {
        match &self.file_name {
            None => Ok(None),
            Some(r) => std::str::from_utf8(bytes.get(r.clone()).unwrap_or_default())
                .map(Some)
                .map_err(|_| Error::FileNameNotUtf8),
        }
    }
}

/// Parses and verifies a whole bundle. Unknown extension blocks are kept (and listed);
/// BPSec blocks are listed but not verified (no keys).
pub fn parse(bytes: &[u8]) -> Result<BundleView, Error> {
    let parsed = ParsedBundle::parse(bytes, hardy_bpv7::bpsec::no_keys)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let b = &parsed.bundle;
    let mut blocks: Vec<BlockView> = b.blocks.iter().map(|(n, blk)| view(*n, blk, b)).collect();
    blocks.sort_by_key(|v| v.extent.start);
    let payload = blocks
        .iter()
        .find(|v| v.number == 1)
        .map(|v| v.data.clone())
        .ok_or_else(|| Error::Invalid("no payload block".into()))?;
    let file_name = blocks
        .iter()
        .find(|v| v.number != 0 && v.block_type == FILE_NAME_BLOCK)
        .map(|v| v.data.clone());
    let (created, sequence) = b.id.timestamp.clone().into_parts();
    Ok(BundleView {
        source: b.id.source.to_string(),
        destination: b.destination.to_string(),
        report_to: b.report_to.to_string(),
        created_ms: created.map(|t| t.millisecs()),
        sequence,
        lifetime_ms: u64::try_from(b.lifetime.as_millis()).unwrap_or(u64::MAX),
        flags: u64::from(&b.flags),
        fragment: b
            .id
            .fragment_info
            .as_ref()
            .map(|f| (f.offset, f.total_adu_length)),
        previous_node: b.previous_node.as_ref().map(ToString::to_string),
        age_ms: b
            .age
            .map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
        hop_count: b.hop_count.as_ref().map(|h| (h.limit, h.count)),
        non_canonical: parsed.non_canonical,
        blocks,
        payload,
        file_name,
    })
}

fn view(number: u64, blk: &block::Block, b: &hardy_bpv7::bundle::Bundle) -> BlockView {
    let primary = number == 0;
    BlockView {
        number,
        block_type: if primary { 0 } else { blk.block_type.into() },
        flags: if primary {
            u64::from(&b.flags)
        } else {
            u64::from(&blk.flags)
        },
        crc: blk.crc_type.into(),
        extent: blk.extent.clone(),
        data: if primary {
            blk.extent.start..blk.extent.start
        } else {
            blk.payload_range()
        },
    }
}
