//! A tiny BPv7 (RFC 9171) bundle encoder and decoder for the interop tests: just enough
//! CBOR to build a valid bundle (primary block + payload block) to hand to a peer, and
//! to take apart what a peer delivers (any canonical blocks, payload found by type).
//!
//! - [`Bundle::encode`] writes an indefinite-length CBOR array of blocks: the primary
//!   block `[7, flags, crc type, dest EID, source EID, report-to EID, [DTN time ms,
//!   seq], lifetime ms, crc]` and each canonical block `[type, number, flags, crc type,
//!   bstr data, crc]`. CRCs (RFC 9171 §4.2.1: X.25 CRC-16 or CRC-32C over the block's
//!   encoding with the CRC field zeroed, big-endian) are computed when the block's CRC
//!   type asks for one. The primary block carries a CRC-32C by default — RFC 9171 §4.3.1
//!   requires one unless a BIB covers it.
//! - [`Bundle::decode`] parses definite or indefinite arrays, EIDs of the `dtn` and
//!   `ipn` schemes, and verifies every present CRC.
//!
//! EIDs are handled as URIs: `dtn://node/svc` ↔ `[1, "//node/svc"]`, `dtn:none` ↔
//! `[1, 0]`, `ipn:N.S` ↔ `[2, [N, S]]`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context as _};

/// Block type code of the payload block.
pub const PAYLOAD_BLOCK: u64 = 1;
/// CRC type: none.
pub const CRC_NONE: u64 = 0;
/// CRC type: X.25 CRC-16.
pub const CRC_16: u64 = 1;
/// CRC type: CRC-32C (Castagnoli).
pub const CRC_32C: u64 = 2;

/// Milliseconds since the DTN epoch (2000-01-01T00:00:00Z), RFC 9171 §4.2.6.
pub fn dtn_time_ms() -> u64 {
    const DTN_EPOCH_UNIX_MS: u64 = 946_684_800_000;
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    unix_ms.saturating_sub(DTN_EPOCH_UNIX_MS)
}

/// One canonical block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Block type code (1: payload, 6: previous node, 7: bundle age, 10: hop count).
    pub block_type: u64,
    /// Block number (1 for the payload block).
    pub number: u64,
    /// Block processing control flags.
    pub flags: u64,
    /// CRC type ([`CRC_NONE`], [`CRC_16`], [`CRC_32C`]).
    pub crc_type: u64,
    /// Block-type-specific data (the byte string's content).
    pub data: Vec<u8>,
}

/// A bundle: primary block fields and the canonical blocks in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Bundle processing control flags.
    pub flags: u64,
    /// CRC type of the primary block.
    pub crc_type: u64,
    /// Destination EID as a URI.
    pub destination: String,
    /// Source node ID as a URI.
    pub source: String,
    /// Report-to EID as a URI.
    pub report_to: String,
    /// Creation time, ms since the DTN epoch.
    pub created_ms: u64,
    /// Creation sequence number.
    pub sequence: u64,
    /// Lifetime, ms.
    pub lifetime_ms: u64,
    /// Canonical blocks, payload last.
    pub blocks: Vec<Block>,
}

impl Bundle {
    /// A bundle from `source` to `destination` created now, lifetime one hour, primary
    /// block with CRC-32C, one payload block (number 1, no flags, no CRC).
    pub fn new(source: &str, destination: &str, sequence: u64, payload: &[u8]) -> Bundle {
        Bundle {
            flags: 0,
            crc_type: CRC_32C,
            destination: destination.to_owned(),
            source: source.to_owned(),
            report_to: source.to_owned(),
            created_ms: dtn_time_ms(),
            sequence,
            lifetime_ms: 3_600_000,
            blocks: vec![Block {
                block_type: PAYLOAD_BLOCK,
                number: 1,
                flags: 0,
                crc_type: CRC_NONE,
                data: payload.to_vec(),
            }],
        }
    }

    /// The payload block's data, if there is a payload block.
    pub fn payload(&self) -> Option<&[u8]> {
        self.blocks
            .iter()
            .find(|b| b.block_type == PAYLOAD_BLOCK)
            .map(|b| b.data.as_slice())
    }

    /// The block types in order (e.g. `[6, 10, 1]` for previous node, hop count, payload).
    pub fn block_types(&self) -> Vec<u64> {
        self.blocks.iter().map(|b| b.block_type).collect()
    }

    /// The CBOR encoding (indefinite-length array of blocks).
    ///
    /// # Errors
    ///
    /// An EID that is not a `dtn:` or `ipn:` URI, or an unknown CRC type.
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = vec![0x9f];
        let mut primary = Vec::new();
        let n = if self.crc_type == CRC_NONE { 8 } else { 9 };
        head(&mut primary, 4, n);
        head(&mut primary, 0, 7);
        head(&mut primary, 0, self.flags);
        head(&mut primary, 0, self.crc_type);
        for eid in [&self.destination, &self.source, &self.report_to] {
            encode_eid(&mut primary, eid)?;
        }
        head(&mut primary, 4, 2);
        head(&mut primary, 0, self.created_ms);
        head(&mut primary, 0, self.sequence);
        head(&mut primary, 0, self.lifetime_ms);
        finish_crc(&mut primary, self.crc_type)?;
        out.extend_from_slice(&primary);
        for b in &self.blocks {
            let mut block = Vec::new();
            head(&mut block, 4, if b.crc_type == CRC_NONE { 5 } else { 6 });
            head(&mut block, 0, b.block_type);
            head(&mut block, 0, b.number);
            head(&mut block, 0, b.flags);
            head(&mut block, 0, b.crc_type);
            head(&mut block, 2, b.data.len() as u64);
            block.extend_from_slice(&b.data);
            finish_crc(&mut block, b.crc_type)?;
            out.extend_from_slice(&block);
        }
        out.push(0xff);
        Ok(out)
    }

    /// Parses a CBOR-encoded bundle, checking its structure and every present CRC.
    ///
    /// # Errors
    ///
    /// Malformed CBOR, a wrong version, a bad EID, a CRC mismatch, trailing bytes.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Bundle> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let (major, len) = r.head()?;
        ensure!(
            major == 4,
            "bundle is not a CBOR array (major type {major})"
        );
        let mut blocks = Vec::new();
        let mut i = 0u64;
        loop {
            match len {
                Some(n) if i == n => break,
                None if r.peek()? == 0xff => {
                    r.pos += 1;
                    break;
                }
                _ => {}
            }
            let start = r.pos;
            let value = r.value().with_context(|| format!("block {i}"))?;
            blocks.push((value, &bytes[start..r.pos]));
            i += 1;
        }
        ensure!(
            r.pos == bytes.len(),
            "{} trailing bytes after the bundle",
            bytes.len() - r.pos
        );
        let mut it = blocks.into_iter();
        let (primary, raw) = it.next().ok_or_else(|| anyhow!("no primary block"))?;
        let p = primary.array().context("primary block")?;
        ensure!(
            p.len() == 8 || p.len() == 9 || p.len() == 10 || p.len() == 11,
            "primary block has {} items",
            p.len()
        );
        ensure!(p[0].uint()? == 7, "bundle protocol version {:?}", p[0]);
        let crc_type = p[2].uint()?;
        check_crc(raw, crc_type).context("primary block CRC")?;
        let ts = p[6].array().context("creation timestamp")?;
        ensure!(ts.len() == 2, "creation timestamp has {} items", ts.len());
        let mut bundle = Bundle {
            flags: p[1].uint()?,
            crc_type,
            destination: decode_eid(&p[3]).context("destination")?,
            source: decode_eid(&p[4]).context("source")?,
            report_to: decode_eid(&p[5]).context("report-to")?,
            created_ms: ts[0].uint()?,
            sequence: ts[1].uint()?,
            lifetime_ms: p[7].uint()?,
            blocks: Vec::new(),
        };
        for (value, raw) in it {
            let b = value.array().context("canonical block")?;
            ensure!(
                b.len() == 5 || b.len() == 6,
                "canonical block has {} items",
                b.len()
            );
            let crc_type = b[3].uint()?;
            check_crc(raw, crc_type).with_context(|| format!("CRC of block type {:?}", b[0]))?;
            bundle.blocks.push(Block {
                block_type: b[0].uint()?,
                number: b[1].uint()?,
                flags: b[2].uint()?,
                crc_type,
                data: b[4].bytes()?.to_vec(),
            });
        }
        Ok(bundle)
    }
}

/// Writes a CBOR head: major type and argument, shortest form.
fn head(out: &mut Vec<u8>, major: u8, value: u64) {
    let m = major << 5;
    if value < 24 {
        out.push(m | value as u8);
    } else if value <= 0xff {
        out.extend_from_slice(&[m | 24, value as u8]);
    } else if value <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn encode_eid(out: &mut Vec<u8>, uri: &str) -> anyhow::Result<()> {
    head(out, 4, 2);
    if uri == "dtn:none" {
        head(out, 0, 1);
        head(out, 0, 0);
    } else if let Some(ssp) = uri.strip_prefix("dtn:") {
        head(out, 0, 1);
        head(out, 3, ssp.len() as u64);
        out.extend_from_slice(ssp.as_bytes());
    } else if let Some(ssp) = uri.strip_prefix("ipn:") {
        let (node, svc) = ssp
            .split_once('.')
            .ok_or_else(|| anyhow!("ipn EID without service: {uri}"))?;
        head(out, 0, 2);
        head(out, 4, 2);
        head(out, 0, node.parse()?);
        head(out, 0, svc.parse()?);
    } else {
        bail!("unsupported EID {uri}");
    }
    Ok(())
}

fn decode_eid(v: &Value) -> anyhow::Result<String> {
    let a = v.array()?;
    ensure!(a.len() == 2, "EID has {} items", a.len());
    match (a[0].uint()?, &a[1]) {
        (1, Value::Uint(0)) => Ok("dtn:none".to_owned()),
        (1, Value::Text(ssp)) => Ok(format!("dtn:{ssp}")),
        (2, Value::Array(n)) if n.len() == 2 => {
            Ok(format!("ipn:{}.{}", n[0].uint()?, n[1].uint()?))
        }
        (scheme, ssp) => bail!("unsupported EID scheme {scheme} / {ssp:?}"),
    }
}

/// Appends the CRC field (when `crc_type` asks for one) to a block encoded without it:
/// the byte string is written zeroed, the CRC computed over the whole block, then
/// stored big-endian in place.
fn finish_crc(block: &mut Vec<u8>, crc_type: u64) -> anyhow::Result<()> {
    let n = match crc_type {
        CRC_NONE => return Ok(()),
        CRC_16 => 2,
        CRC_32C => 4,
        t => bail!("unknown CRC type {t}"),
    };
    head(block, 2, n as u64);
    let at = block.len();
    block.resize(at + n, 0);
    let crc = block_crc(block, crc_type);
    block[at..].copy_from_slice(&crc[crc.len() - n..]);
    Ok(())
}

/// The CRC of `block` (encoded with a zeroed CRC field), as 4 big-endian bytes (CRC-16
/// in the last two).
fn block_crc(block: &[u8], crc_type: u64) -> [u8; 4] {
    match crc_type {
        CRC_16 => u32::from(crc16_x25(block)).to_be_bytes(),
        _ => crc32c(block).to_be_bytes(),
    }
}

/// Verifies the CRC at the end of a block's raw encoding (the last item, a 2- or 4-byte
/// byte string).
fn check_crc(raw: &[u8], crc_type: u64) -> anyhow::Result<()> {
    let n = match crc_type {
        CRC_NONE => return Ok(()),
        CRC_16 => 2,
        CRC_32C => 4,
        t => bail!("unknown CRC type {t}"),
    };
    ensure!(raw.len() > n, "block too short for its CRC");
    let at = raw.len() - n;
    ensure!(
        raw[at - 1] == 0x40 | n as u8,
        "CRC field is not a {n}-byte string"
    );
    let mut zeroed = raw.to_vec();
    zeroed[at..].fill(0);
    let want = block_crc(&zeroed, crc_type);
    ensure!(
        raw[at..] == want[4 - n..],
        "CRC mismatch: block has {:02x?}, computed {:02x?}",
        &raw[at..],
        &want[4 - n..]
    );
    Ok(())
}

/// CRC-32C (Castagnoli, reflected, init and xorout `0xffffffff`).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// CRC-16/X.25 (reflected polynomial 0x1021, init and xorout `0xffff`).
pub fn crc16_x25(data: &[u8]) -> u16 {
    let mut crc = !0u16;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A decoded CBOR data item (the subset bundles use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Unsigned integer.
    Uint(u64),
    /// Negative integer `-1 - n`.
    Neg(u64),
    /// Byte string.
    Bytes(Vec<u8>),
    /// Text string.
    Text(String),
    /// Array (definite or indefinite).
    Array(Vec<Value>),
    /// Map, as key/value pairs.
    Map(Vec<(Value, Value)>),
    /// Tagged item.
    Tag(u64, Box<Value>),
    /// Simple value or float (raw argument).
    Simple(u64),
}

impl Value {
    fn uint(&self) -> anyhow::Result<u64> {
        match self {
            Value::Uint(n) => Ok(*n),
            v => bail!("expected an unsigned integer, got {v:?}"),
        }
    }

    fn array(&self) -> anyhow::Result<&[Value]> {
        match self {
            Value::Array(a) => Ok(a),
            v => bail!("expected an array, got {v:?}"),
        }
    }

    fn bytes(&self) -> anyhow::Result<&[u8]> {
        match self {
            Value::Bytes(b) => Ok(b),
            v => bail!("expected a byte string, got {v:?}"),
        }
    }
}

/// Nesting limit, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 32;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> anyhow::Result<u8> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| anyhow!("truncated at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> anyhow::Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| anyhow!("truncated: need {n} bytes at {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Major type and argument; `None` for an indefinite length (additional info 31).
    fn head(&mut self) -> anyhow::Result<(u8, Option<u64>)> {
        let b = self.take(1)?[0];
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => Some(u64::from(info)),
            24 => Some(u64::from(self.take(1)?[0])),
            25 => Some(u64::from(u16::from_be_bytes(self.take(2)?.try_into()?))),
            26 => Some(u64::from(u32::from_be_bytes(self.take(4)?.try_into()?))),
            27 => Some(u64::from_be_bytes(self.take(8)?.try_into()?)),
            31 if matches!(major, 2..=5) => None,
            _ => bail!("unsupported CBOR head {b:#04x} at {}", self.pos - 1),
        };
        Ok((major, arg))
    }

    fn value(&mut self) -> anyhow::Result<Value> {
        self.value_at(0)
    }

    fn len(n: u64) -> anyhow::Result<usize> {
        usize::try_from(n).map_err(|_| anyhow!("length {n} too large"))
    }

    fn value_at(&mut self, depth: usize) -> anyhow::Result<Value> {
        ensure!(depth < MAX_DEPTH, "CBOR nested too deeply");
        let (major, arg) = self.head()?;
        Ok(match (major, arg) {
            (0, Some(n)) => Value::Uint(n),
            (1, Some(n)) => Value::Neg(n),
            (2, Some(n)) => Value::Bytes(self.take(Self::len(n)?)?.to_vec()),
            (3, Some(n)) => Value::Text(String::from_utf8(self.take(Self::len(n)?)?.to_vec())?),
            (2 | 3, None) => {
                let mut all = Vec::new();
                while self.peek()? != 0xff {
                    match self.value_at(depth + 1)? {
                        Value::Bytes(b) if major == 2 => all.extend(b),
                        Value::Text(t) if major == 3 => all.extend(t.into_bytes()),
                        v => bail!("bad chunk {v:?} in an indefinite string"),
                    }
                }
                self.pos += 1;
                if major == 2 {
                    Value::Bytes(all)
                } else {
                    Value::Text(String::from_utf8(all)?)
                }
            }
            (4, n) => {
                let mut items = Vec::new();
                match n {
                    Some(n) => {
                        for _ in 0..n {
                            items.push(self.value_at(depth + 1)?);
                        }
                    }
                    None => {
                        while self.peek()? != 0xff {
                            items.push(self.value_at(depth + 1)?);
                        }
                        self.pos += 1;
                    }
                }
                Value::Array(items)
            }
            (5, n) => {
                let mut pairs = Vec::new();
                let mut i = 0;
                loop {
                    match n {
                        Some(n) if i == n => break,
                        None if self.peek()? == 0xff => {
                            self.pos += 1;
                            break;
                        }
                        _ => {}
                    }
                    let k = self.value_at(depth + 1)?;
                    let v = self.value_at(depth + 1)?;
                    pairs.push((k, v));
                    i += 1;
                }
                Value::Map(pairs)
            }
            (6, Some(t)) => Value::Tag(t, Box::new(self.value_at(depth + 1)?)),
            (7, Some(v)) => Value::Simple(v),
            (m, a) => bail!("unsupported CBOR item major {m} arg {a:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_values() {
        // The standard check values of both algorithms.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc16_x25(b"123456789"), 0x906e);
    }

    #[test]
    fn round_trip_with_crcs() {
        let mut b = Bundle::new("dtn://a/", "dtn://b/incoming", 3, b"hello");
        b.blocks.insert(
            0,
            Block {
                block_type: 10,
                number: 2,
                flags: 0,
                crc_type: CRC_16,
                data: vec![0x82, 0x18, 0x20, 0x00],
            },
        );
        let bytes = b.encode().unwrap();
        assert_eq!(bytes[0], 0x9f);
        assert_eq!(bytes.last(), Some(&0xff));
        let d = Bundle::decode(&bytes).unwrap();
        assert_eq!(d, b);
        assert_eq!(d.payload(), Some(&b"hello"[..]));
        assert_eq!(d.block_types(), [10, 1]);
        // A flipped payload bit is fine (no payload CRC), a flipped primary bit is not.
        let mut bad = bytes.clone();
        bad[3] ^= 1;
        assert!(Bundle::decode(&bad).is_err());
    }

    #[test]
    fn decodes_a_dtn7_bundle() {
        // What `dtnsend -D -r dtn://node3/incoming` printed for "hello\n" (dtn7 0.21):
        // CRC type 0, a hop count block before the payload.
        let hex = "9f88071a00020004008201702f2f6e6f6465332f696e636f6d696e678201682f2f6e6f6465322f\
                   8201682f2f6e6f6465322f821b000000c592728db7001a0036ee80850a020000448218200085\
                   010100004668656c6c6f0aff";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let b = Bundle::decode(&bytes).unwrap();
        assert_eq!(b.destination, "dtn://node3/incoming");
        assert_eq!(b.source, "dtn://node2/");
        assert_eq!(b.lifetime_ms, 3_600_000);
        assert_eq!(b.block_types(), [10, 1]);
        assert_eq!(b.payload(), Some(&b"hello\n"[..]));
        assert_eq!(b.flags, 0x20004);
    }
}
