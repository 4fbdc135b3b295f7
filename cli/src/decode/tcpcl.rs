//! `proto decode tcpcl`: contact headers and TCPCLv4 messages (TCPCLv3 messages, after
//! a v3 contact header, are in `tcpcl3`).
//!
//! The input is a byte stream as one side of a session sends it: an optional contact
//! header (recognised by its `dtn!` magic; a v3 one switches to v3 messages), then
//! TCPCLv4 messages. Decoding never
//! allocates for a declared length: a length larger than the input is reported as a
//! truncated message.

use super::tree::{hex, hex_preview, Node};
use super::{DecodeFailure, Frame};
use proto_core::tcpcl::{
    Contact, ContactHeaderV3, DecodeError, ExtensionItems, Message, MessageType, MsgReject,
    SessInit, SessTerm, Status, TransferLength, XferAck, XferRefuse, XferSegment, ITEM_HEADER_LEN,
    MAGIC,
};
use serde_json::json;
use std::fmt::Display;

/// Decodes a TCPCL byte stream.
pub(crate) fn decode_stream(input: &[u8]) -> (Vec<Frame>, Option<DecodeFailure>) {
    let mut frames = vec![];
    let mut at = 0;
    while at < input.len() {
        let rest = &input[at..];
        let step = if rest[0] == MAGIC[0] {
            decode_contact(rest, at)
        } else {
            decode_message(rest, at)
        };
        match step {
            Ok((frame, stop)) => {
                at += frame.len;
                let v3 = stop.as_deref() == Some(V3_CONTACT);
                frames.push(frame);
                if v3 {
                    // The contact header decides the version of what follows.
                    return super::tcpcl3::decode_rest(input, at, frames);
                }
                if let Some(reason) = stop {
                    if at < input.len() {
                        return (
                            frames,
                            Some(DecodeFailure {
                                offset: at,
                                message: format!(
                                    "{} bytes after the {reason} are not decoded \
                                     (only TCPCLv4 messages are)",
                                    input.len() - at
                                ),
                            }),
                        );
                    }
                }
            }
            Err(failure) => return (frames, Some(failure)),
        }
    }
    (frames, None)
}

/// What a v3 contact header is called when it stops v4 decoding.
const V3_CONTACT: &str = "TCPCLv3 contact header";

/// A decoded frame and, when what follows it cannot be decoded as TCPCLv4 messages,
/// what the frame was (for the error).
type Step = Result<(Frame, Option<String>), DecodeFailure>;

fn decode_contact(rest: &[u8], at: usize) -> Step {
    let (contact, len) = match Contact::decode(rest) {
        Ok(Status::Complete(c)) => c,
        Ok(Status::Partial { needed }) => {
            return Err(truncated(
                "contact header",
                at,
                needed,
                contact_missing_field(rest),
            ))
        }
        Err(e) => return Err(failure("contact header", e, at)),
    };
    let stop = match contact {
        Contact::V4(_) => None,
        Contact::V3(_) => Some(V3_CONTACT.to_owned()),
        Contact::Other { version } => Some(format!("TCPCL version {version} contact header")),
    };
    Ok((
        Frame {
            offset: at,
            len,
            tree: describe_contact(&contact, at, len),
        },
        stop,
    ))
}

fn decode_message(rest: &[u8], at: usize) -> Step {
    let (msg, len) = match Message::decode(rest) {
        Ok(Status::Complete(m)) => m,
        Ok(Status::Partial { needed }) => {
            let what = MessageType::from_code(rest[0]).map_or("message", MessageType::name);
            return Err(truncated(what, at, needed, message_missing_field(rest)));
        }
        Err(e @ DecodeError::UnknownMessageType { offset: 0, .. }) if at == 0 => {
            let mut f = failure("TCPCL message", e, at);
            f.message
                .push_str(" (and no contact header: the input does not start with \"dtn!\")");
            return Err(f);
        }
        Err(e) => return Err(failure("TCPCL message", e, at)),
    };
    // A Transfer Length item whose value is not 8 bytes is malformed.
    if let Message::XferSegment(seg) = &msg {
        if let Err(e) = seg.extensions.transfer_length() {
            return Err(failure(msg.message_type().name(), e, at));
        }
    }
    Ok((
        Frame {
            offset: at,
            len,
            tree: describe_message(&msg, at, len),
        },
        None,
    ))
}

pub(super) fn failure(what: &str, e: DecodeError, base: usize) -> DecodeFailure {
    let e = shift(e, base);
    DecodeFailure {
        offset: error_offset(&e),
        message: format!("{what}: {e}"),
    }
}

pub(super) fn truncated(
    what: &str,
    at: usize,
    needed: usize,
    field: Option<(&'static str, usize)>,
) -> DecodeFailure {
    let mut message = format!("{what} truncated: {needed} more bytes needed");
    if let Some((name, off)) = field {
        message.push_str(&format!(
            "; the input ends in field {name} (offset {})",
            at + off
        ));
    }
    DecodeFailure {
        offset: at,
        message,
    }
}

/// `e` with its offset moved from message coordinates to stream coordinates.
fn shift(e: DecodeError, base: usize) -> DecodeError {
    use DecodeError::*;
    match e {
        BadMagic { offset, found } => BadMagic {
            offset: offset + base,
            found,
        },
        UnknownMessageType {
            offset,
            message_type,
        } => UnknownMessageType {
            offset: offset + base,
            message_type,
        },
        InvalidUtf8 { field, offset } => InvalidUtf8 {
            field,
            offset: offset + base,
        },
        Overrun {
            field,
            offset,
            len,
            available,
        } => Overrun {
            field,
            offset: offset + base,
            len,
            available,
        },
        TooLarge {
            field,
            offset,
            len,
            max,
        } => TooLarge {
            field,
            offset: offset + base,
            len,
            max,
        },
        SdnvOverflow { field, offset } => SdnvOverflow {
            field,
            offset: offset + base,
        },
        BadLength {
            field,
            offset,
            len,
            expected,
        } => BadLength {
            field,
            offset: offset + base,
            len,
            expected,
        },
    }
}

fn error_offset(e: &DecodeError) -> usize {
    use DecodeError::*;
    match *e {
        BadMagic { offset, .. }
        | UnknownMessageType { offset, .. }
        | InvalidUtf8 { offset, .. }
        | Overrun { offset, .. }
        | TooLarge { offset, .. }
        | SdnvOverflow { offset, .. }
        | BadLength { offset, .. } => offset,
    }
}

/// Walks the fields of a truncated frame to name the one the input ends in.
struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The field the input ends in and its offset in the frame.
type Missing = (&'static str, usize);

impl<'a> Walk<'a> {
    fn new(buf: &'a [u8], pos: usize) -> Self {
        Walk { buf, pos }
    }

    /// Takes a field of `len` bytes, or names it if the input ends inside it.
    fn field(&mut self, name: &'static str, len: u64) -> Result<&'a [u8], Missing> {
        let start = self.pos;
        let rest = self.buf.get(start..).unwrap_or_default();
        match usize::try_from(len) {
            Ok(n) if n <= rest.len() => {
                self.pos += n;
                Ok(&rest[..n])
            }
            _ => Err((name, start)),
        }
    }

    fn uint(&mut self, name: &'static str, len: u64) -> Result<u64, Missing> {
        Ok(self
            .field(name, len)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn sdnv(&mut self, name: &'static str) -> Result<u64, Missing> {
        let start = self.pos;
        let mut value = 0u64;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err((name, start));
            };
            self.pos += 1;
            value = (value << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }
}

fn missing(r: Result<(), Missing>) -> Option<Missing> {
    r.err()
}

fn contact_missing_field(buf: &[u8]) -> Option<Missing> {
    let mut w = Walk::new(buf, 0);
    missing((|| {
        w.field("magic", 4)?;
        let version = w.uint("version", 1)?;
        w.field("flags", 1)?;
        if version == 3 {
            w.field("keepalive", 2)?;
            let n = w.sdnv("EID length")?;
            w.field("EID", n)?;
        }
        Ok(())
    })())
}

fn message_missing_field(buf: &[u8]) -> Option<Missing> {
    let mut w = Walk::new(buf, 1);
    missing((|| {
        match buf.first().copied().and_then(MessageType::from_code) {
            Some(MessageType::XferSegment) => {
                let flags = w.uint("flags", 1)?;
                w.field("transfer_id", 8)?;
                if flags & 0x02 != 0 {
                    let n = w.uint("extensions_length", 4)?;
                    w.field("extensions", n)?;
                }
                let n = w.uint("data_length", 8)?;
                w.field("data", n)?;
            }
            Some(MessageType::XferAck) => {
                w.field("flags", 1)?;
                w.field("transfer_id", 8)?;
                w.field("acked_length", 8)?;
            }
            Some(MessageType::XferRefuse) => {
                w.field("reason", 1)?;
                w.field("transfer_id", 8)?;
            }
            Some(MessageType::SessTerm) => {
                w.field("flags", 1)?;
                w.field("reason", 1)?;
            }
            Some(MessageType::MsgReject) => {
                w.field("reason", 1)?;
                w.field("rejected_header", 1)?;
            }
            Some(MessageType::SessInit) => {
                w.field("keepalive", 2)?;
                w.field("segment_mru", 8)?;
                w.field("transfer_mru", 8)?;
                let n = w.uint("node_id_length", 2)?;
                w.field("node_id", n)?;
                let n = w.uint("extensions_length", 4)?;
                w.field("extensions", n)?;
            }
            Some(MessageType::Keepalive) | None => {}
        }
        Ok(())
    })())
}

/// `n bytes`, or `1 byte`.
pub(super) fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// A flag byte: its value, the set flags by name and any reserved bits.
pub(super) fn flags_leaf(key: &str, at: usize, raw: u8, shown: impl Display, defined: u8) -> Node {
    let text = shown.to_string();
    let names: Vec<&str> = text
        .split('|')
        .filter(|n| *n != "0" && !n.starts_with("0x"))
        .collect();
    let json = json!({"value": raw, "names": names, "reserved": raw & !defined});
    Node::leaf(key, Some(at), json, format!("{text} ({raw:#04x})"))
}

/// A reason code: its value and its registered name (or `unknown(0xNN)`).
pub(super) fn reason_leaf(at: usize, code: u8, shown: impl Display, known: bool) -> Node {
    let name = shown.to_string();
    let json = json!({"code": code, "name": name, "known": known});
    Node::leaf("reason", Some(at), json, format!("{name} ({code:#04x})"))
}

fn describe_contact(c: &Contact<'_>, at: usize, len: usize) -> Node {
    let summary = match c {
        Contact::V4(_) => "contact header, TCPCLv4".to_owned(),
        Contact::V3(_) => "contact header, TCPCLv3".to_owned(),
        Contact::Other { version } => format!("contact header, TCPCL version {version}"),
    };
    let mut f = Node::group("frame", Some(at)).with_summary(format!("{summary}, {}", bytes(len)));
    f.push(Node::value("kind", None, "contact_header"));
    f.push(Node::leaf("magic", Some(at), "dtn!", "\"dtn!\""));
    f.push(Node::value("version", Some(at + 4), c.version()));
    match c {
        Contact::V4(h) => {
            use proto_core::tcpcl::ContactFlags;
            f.push(flags_leaf(
                "flags",
                at + 5,
                h.flags.0,
                h.flags,
                ContactFlags::DEFINED,
            ));
            f.push(Node::value("can_tls", None, h.flags.can_tls()));
        }
        Contact::V3(h) => describe_v3(&mut f, h, at, len),
        Contact::Other { .. } => {
            f.push(Node::value(
                "note",
                None,
                "unknown TCPCL version: nothing after the version byte is decoded",
            ));
        }
    }
    f
}

fn describe_v3(f: &mut Node, h: &ContactHeaderV3<'_>, at: usize, len: usize) {
    use proto_core::tcpcl::V3ContactFlags;
    f.push(flags_leaf(
        "flags",
        at + 5,
        h.flags.0,
        h.flags,
        V3ContactFlags::DEFINED,
    ));
    f.push(Node::leaf(
        "keepalive",
        Some(at + 6),
        h.keepalive,
        format!("{} s", h.keepalive),
    ));
    f.push(Node::value("eid_length", Some(at + 8), h.eid.len()));
    // The EID ends the header (its SDNV length may be written non-minimally).
    let eid_at = at + len - h.eid.len();
    f.push(match h.eid_str() {
        Some(s) => Node::leaf("eid", Some(eid_at), s, format!("{s:?}")),
        None => Node::leaf("eid_hex", Some(eid_at), hex(h.eid), hex_preview(h.eid)),
    });
    f.push(Node::value(
        "note",
        None,
        "TCPCLv3 (RFC 7242): the messages after it are decoded as TCPCLv3",
    ));
}

fn describe_message(msg: &Message<'_>, at: usize, len: usize) -> Node {
    let t = msg.message_type();
    let mut f =
        Node::group("frame", Some(at)).with_summary(format!("{}, {}", t.name(), bytes(len)));
    f.push(Node::value("kind", None, "message"));
    f.push(Node::value("type", Some(at), t.name()));
    f.push(Node::leaf(
        "type_code",
        Some(at),
        t.code(),
        format!("{:#04x}", t.code()),
    ));
    match msg {
        Message::XferSegment(m) => describe_segment(&mut f, m, at),
        Message::XferAck(XferAck {
            flags,
            transfer_id,
            acked_len,
        }) => {
            use proto_core::tcpcl::SegmentFlags;
            f.push(flags_leaf(
                "flags",
                at + 1,
                flags.0,
                flags,
                SegmentFlags::DEFINED,
            ));
            f.push(Node::value("transfer_id", Some(at + 2), *transfer_id));
            f.push(Node::value("acked_length", Some(at + 10), *acked_len));
        }
        Message::XferRefuse(XferRefuse {
            reason,
            transfer_id,
        }) => {
            f.push(reason_leaf(
                at + 1,
                reason.0,
                reason,
                reason.name().is_some(),
            ));
            f.push(Node::value("transfer_id", Some(at + 2), *transfer_id));
        }
        Message::Keepalive => {}
        Message::SessTerm(SessTerm { flags, reason }) => {
            use proto_core::tcpcl::SessTermFlags;
            f.push(flags_leaf(
                "flags",
                at + 1,
                flags.0,
                flags,
                SessTermFlags::DEFINED,
            ));
            f.push(Node::value("reply", None, flags.is_reply()));
            f.push(reason_leaf(
                at + 2,
                reason.0,
                reason,
                reason.name().is_some(),
            ));
        }
        Message::MsgReject(MsgReject {
            reason,
            rejected_header,
        }) => {
            f.push(reason_leaf(
                at + 1,
                reason.0,
                reason,
                reason.name().is_some(),
            ));
            let name =
                MessageType::from_code(*rejected_header).map_or("unknown", MessageType::name);
            f.push(Node::leaf(
                "rejected_header",
                Some(at + 2),
                *rejected_header,
                format!("{rejected_header:#04x} ({name})"),
            ));
        }
        Message::SessInit(m) => describe_sess_init(&mut f, m, at),
    }
    f
}

fn describe_sess_init(f: &mut Node, m: &SessInit<'_>, at: usize) {
    f.push(Node::leaf(
        "keepalive",
        Some(at + 1),
        m.keepalive,
        format!("{} s", m.keepalive),
    ));
    f.push(Node::value("segment_mru", Some(at + 3), m.segment_mru));
    f.push(Node::value("transfer_mru", Some(at + 11), m.transfer_mru));
    f.push(Node::value(
        "node_id_length",
        Some(at + 19),
        m.node_id.len(),
    ));
    f.push(Node::leaf(
        "node_id",
        Some(at + 21),
        m.node_id,
        format!("{:?}", m.node_id),
    ));
    let len_at = at + 21 + m.node_id.len();
    f.push(Node::value(
        "extensions_length",
        Some(len_at),
        m.extensions.encoded_len(),
    ));
    f.push(describe_items(&m.extensions, len_at + 4, false));
}

fn describe_segment(f: &mut Node, m: &XferSegment<'_>, at: usize) {
    use proto_core::tcpcl::SegmentFlags;
    f.push(flags_leaf(
        "flags",
        at + 1,
        m.flags.0,
        m.flags,
        SegmentFlags::DEFINED,
    ));
    f.push(Node::value("transfer_id", Some(at + 2), m.transfer_id));
    let mut pos = at + 10;
    if m.flags.is_start() {
        f.push(Node::value(
            "extensions_length",
            Some(pos),
            m.extensions.encoded_len(),
        ));
        f.push(describe_items(&m.extensions, pos + 4, true));
        pos += 4 + m.extensions.encoded_len();
    }
    f.push(Node::value("data_length", Some(pos), m.data.len()));
    f.push(Node::leaf(
        "data",
        Some(pos + 8),
        hex(m.data),
        hex_preview(m.data),
    ));
}

/// The items of an extension block that starts at `block_at` in the stream (the
/// iterator's offsets are relative to the block, which was parsed at offset 0 of the
/// message, so they are rebased here).
fn describe_items(items: &ExtensionItems<'_>, block_at: usize, transfer: bool) -> Node {
    let n = items.iter().count();
    let kind = if transfer { "transfer" } else { "session" };
    let mut list = Node::list("extensions", Some(block_at)).with_summary(format!(
        "{n} {kind} extension item{}",
        if n == 1 { "" } else { "s" }
    ));
    let mut it = items.iter();
    let first = it.offset();
    loop {
        let item_at = block_at + (it.offset() - first);
        let Some(item) = it.next() else { break };
        let name = match item.item_type {
            TransferLength::ITEM_TYPE if transfer => "Transfer Length",
            _ => "unknown",
        };
        let mut node = Node::group("item", Some(item_at)).with_summary(format!(
            "{name} ({:#06x}){}, {}",
            item.item_type,
            if item.is_critical() { ", critical" } else { "" },
            bytes(item.value.len())
        ));
        use proto_core::tcpcl::ExtensionFlags;
        node.push(flags_leaf(
            "flags",
            item_at,
            item.flags.0,
            item.flags,
            ExtensionFlags::DEFINED,
        ));
        node.push(Node::value("critical", None, item.is_critical()));
        node.push(Node::leaf(
            "type",
            Some(item_at + 1),
            item.item_type,
            format!("{:#06x}", item.item_type),
        ));
        node.push(Node::value("name", None, name));
        node.push(Node::value("length", Some(item_at + 3), item.value.len()));
        let value_at = item_at + ITEM_HEADER_LEN;
        node.push(Node::leaf(
            "value",
            Some(value_at),
            hex(item.value),
            hex_preview(item.value),
        ));
        if transfer {
            if let Some(TransferLength(total)) = TransferLength::from_item(&item) {
                node.push(Node::value("transfer_length", Some(value_at), total));
            }
        }
        list.push(node);
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_field_names() {
        assert_eq!(message_missing_field(&[0x05, 0x00]), Some(("reason", 2)));
        assert_eq!(message_missing_field(&[0x07, 0x00]), Some(("keepalive", 1)));
        assert_eq!(contact_missing_field(b"dtn"), Some(("magic", 0)));
        assert_eq!(contact_missing_field(b"dtn!\x04"), Some(("flags", 5)));
        let mut seg = vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        seg.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(message_missing_field(&seg), Some(("data", 18)));
    }

    #[test]
    fn huge_data_length_is_truncated_not_allocated() {
        let mut seg = vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        seg.extend_from_slice(&u64::MAX.to_be_bytes());
        seg.push(0xaa);
        let (frames, fail) = decode_stream(&seg);
        assert!(frames.is_empty());
        let fail = fail.map(|f| (f.offset, f.message));
        let (offset, message) = fail.unwrap_or_default();
        assert_eq!(offset, 0);
        assert!(message.contains("truncated"), "{message}");
        assert!(message.contains("field data (offset 18)"), "{message}");
    }
}
