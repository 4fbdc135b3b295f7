//! `proto decode tcpcl` after a TCPCLv3 contact header: the RFC 7242 messages
//! (DATA_SEGMENT with its data, ACK_SEGMENT, REFUSE_BUNDLE, KEEPALIVE, SHUTDOWN,
//! LENGTH) in the same tree and JSON shape as the v4 ones.

use super::tcpcl::{bytes, failure, flags_leaf, reason_leaf, truncated};
use super::tree::{hex, hex_preview, Node};
use super::{DecodeFailure, Frame};
use proto_core::tcpcl::v3::{DataFlags, Message, ShutdownFlags};
use proto_core::tcpcl::Status;

/// Decodes v3 messages from `at` to the end of `input`, after `frames`.
pub(super) fn decode_rest(
    input: &[u8],
    mut at: usize,
    mut frames: Vec<Frame>,
) -> (Vec<Frame>, Option<DecodeFailure>) {
    while at < input.len() {
        let rest = &input[at..];
        let (msg, head) = match Message::decode(rest) {
            Ok(Status::Complete(m)) => m,
            Ok(Status::Partial { needed }) => {
                return (frames, Some(truncated("TCPCLv3 message", at, needed, None)))
            }
            Err(e) => return (frames, Some(failure("TCPCLv3 message", e, at))),
        };
        let mut len = head;
        let mut data: &[u8] = &[];
        if let Message::DataSegment { len: n, .. } = msg {
            // Never trusts the declared length beyond the input.
            let avail = rest.len() - head;
            match usize::try_from(n) {
                Ok(n) if n <= avail => {
                    data = &rest[head..head + n];
                    len += n;
                }
                _ => {
                    let needed = n.saturating_sub(avail as u64);
                    let mut f = truncated("DATA_SEGMENT", at, 1, Some(("data", head)));
                    f.message = format!(
                        "DATA_SEGMENT truncated: {needed} more bytes needed; the input ends in field data (offset {})",
                        at + head
                    );
                    return (frames, Some(f));
                }
            }
        }
        frames.push(Frame {
            offset: at,
            len,
            tree: describe(&msg, data, at, len),
        });
        at += len;
    }
    (frames, None)
}

fn describe(m: &Message, data: &[u8], at: usize, len: usize) -> Node {
    let name = m.message_type().name();
    let mut f = Node::group("frame", Some(at)).with_summary(format!("{name}, {}", bytes(len)));
    f.push(Node::value("kind", None, "message"));
    f.push(Node::value("version", None, 3));
    f.push(Node::leaf(
        "message_type",
        Some(at),
        name,
        format!("{name} ({:#x})", m.message_type().code()),
    ));
    match *m {
        Message::DataSegment { flags, len: n } => {
            f.push(flags_leaf("flags", at, flags.0, flags, DataFlags::DEFINED));
            f.push(Node::value("data_length", Some(at + 1), n));
            let data_at = at + len - data.len();
            f.push(Node::leaf(
                "data",
                Some(data_at),
                hex(data),
                hex_preview(data),
            ));
        }
        Message::AckSegment { len: n } => {
            f.push(Node::value("acked_length", Some(at + 1), n));
        }
        Message::RefuseBundle { reason } => {
            f.push(reason_leaf(at, reason.0, reason, reason.name().is_some()));
        }
        Message::Keepalive => {}
        Message::Shutdown(s) => {
            let flags = s.flags();
            f.push(flags_leaf(
                "flags",
                at,
                flags.0,
                flags,
                ShutdownFlags::DEFINED,
            ));
            if let Some(r) = s.reason {
                f.push(reason_leaf(at + 1, r.0, r, r.name().is_some()));
            }
            if let Some(d) = s.delay {
                let off = at + 1 + usize::from(s.reason.is_some());
                f.push(Node::leaf(
                    "reconnection_delay",
                    Some(off),
                    d,
                    format!("{d} s"),
                ));
            }
        }
        Message::Length { len: n } => {
            f.push(Node::value("bundle_length", Some(at + 1), n));
        }
    }
    f
}
