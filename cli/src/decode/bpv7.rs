//! `proto decode bpv7`: one BPv7 bundle (RFC 9171), verified by
//! [`proto_core::bpv7::parse`] (CBOR structure and every CRC), shown block by block:
//! the primary block's fields, each canonical block's type, number, flags, CRC type and
//! data, and the payload's length and first bytes.

use super::tree::{hex, hex_preview, Node};
use super::{DecodeFailure, Frame};
use crate::arrivals::rfc3339;
use proto_core::bpv7::{self, BlockView, BundleView, FILE_NAME_BLOCK};
use std::time::{Duration, SystemTime};

/// Decodes `input` as one bundle.
pub(crate) fn decode_stream(input: &[u8]) -> (Vec<Frame>, Option<DecodeFailure>) {
    match bpv7::parse(input) {
        Ok(v) => (
            vec![Frame {
                offset: 0,
                len: input.len(),
                tree: describe(&v, input),
            }],
            None,
        ),
        // The library names the field but not its offset.
        Err(e) => (
            vec![],
            Some(DecodeFailure {
                offset: 0,
                message: e.to_string(),
            }),
        ),
    }
}

/// RFC 3339 text of a DTN time (ms since 2000-01-01T00:00:00Z); "no clock" for a
/// source without one.
pub(crate) fn dtn_time_text(ms: Option<u64>) -> String {
    match ms {
        None => "no clock (0)".to_string(),
        Some(ms) => rfc3339(
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(bpv7::DTN_EPOCH_UNIX_SECS)
                + Duration::from_millis(ms),
        ),
    }
}

fn describe(v: &BundleView, input: &[u8]) -> Node {
    let mut root = Node::group("bundle", Some(0)).with_summary(format!(
        "BPv7 {} -> {}, {} blocks, payload {} bytes",
        v.source,
        v.destination,
        v.blocks.len(),
        v.payload.len()
    ));
    root.push(Node::value("source", None, v.source.as_str()));
    root.push(Node::value("destination", None, v.destination.as_str()));
    root.push(Node::value("payload_length", None, v.payload.len()));
    let mut blocks = Node::list("blocks", None);
    for b in &v.blocks {
        blocks.push(if b.number == 0 {
            primary(v, b)
        } else {
            canonical(v, b, input)
        });
    }
    root.push(blocks);
    if v.non_canonical {
        root.push(Node::leaf(
            "non_canonical",
            None,
            true,
            "yes (accepted; RFC 9171 §4.1 asks for canonical CBOR)",
        ));
    }
    root
}

fn block_header(b: &BlockView, key: &str) -> Node {
    let mut n = Node::group(key, Some(b.extent.start)).with_summary(format!(
        "{} (type {}, number {}), {} bytes",
        b.type_name(),
        b.block_type,
        b.number,
        b.extent.len()
    ));
    n.push(Node::value("type", None, b.block_type));
    n.push(Node::value("type_name", None, b.type_name()));
    n.push(Node::value("number", None, b.number));
    n.push(Node::leaf(
        "flags",
        None,
        b.flags,
        format!("{:#x}", b.flags),
    ));
    n.push(Node::leaf(
        "crc_type",
        None,
        b.crc.code(),
        format!("{} ({})", b.crc.code(), b.crc.name()),
    ));
    n.push(Node::value("length", None, b.extent.len()));
    n
}

fn primary(v: &BundleView, b: &BlockView) -> Node {
    let mut n = block_header(b, "primary");
    n.push(Node::value("version", None, 7));
    n.push(Node::value("destination", None, v.destination.as_str()));
    n.push(Node::value("source", None, v.source.as_str()));
    n.push(Node::value("report_to", None, v.report_to.as_str()));
    n.push(Node::leaf(
        "creation_time_ms",
        None,
        v.created_ms.unwrap_or(0),
        format!(
            "{} ({})",
            v.created_ms.unwrap_or(0),
            dtn_time_text(v.created_ms)
        ),
    ));
    n.push(Node::value("sequence", None, v.sequence));
    n.push(Node::value("lifetime_ms", None, v.lifetime_ms));
    if let Some((offset, total)) = v.fragment {
        n.push(Node::leaf(
            "fragment",
            None,
            serde_json::json!({"offset": offset, "total_adu_length": total}),
            format!("offset {offset} of {total}"),
        ));
    }
    n
}

fn canonical(v: &BundleView, b: &BlockView, input: &[u8]) -> Node {
    let key = if b.number == 1 { "payload" } else { "block" };
    let mut n = block_header(b, key);
    let data = input.get(b.data.clone()).unwrap_or_default();
    n.push(Node::value("data_offset", None, b.data.start));
    n.push(Node::value("data_length", None, data.len()));
    match b.block_type {
        6 => {
            if let Some(p) = &v.previous_node {
                n.push(Node::value("previous_node", None, p.as_str()));
            }
        }
        7 => {
            if let Some(a) = v.age_ms {
                n.push(Node::value("age_ms", None, a));
            }
        }
        10 => {
            if let Some((limit, count)) = v.hop_count {
                n.push(Node::leaf(
                    "hop_count",
                    None,
                    serde_json::json!({"limit": limit, "count": count}),
                    format!("{count} of {limit}"),
                ));
            }
        }
        FILE_NAME_BLOCK if b.number != 1 => {
            let name = std::str::from_utf8(data).unwrap_or("(not UTF-8)");
            n.push(Node::value("file_name", None, name));
        }
        _ => {}
    }
    n.push(Node::leaf("data", None, hex(data), hex_preview(data)));
    n
}
