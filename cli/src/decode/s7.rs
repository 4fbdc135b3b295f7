//! What the DT payload of a COTP frame is: an S7comm header labelled field by field,
//! S7comm-plus named, or neither said so (see [`proto_core::s7::header`]).

use super::tree::Node;
use proto_core::s7::{classify, Payload, Rosctr, S7Pdu};

/// The `payload` node for DT user data starting at offset `at`. `continuation` is
/// set for a DT that continues a message (the previous DT had no EOT): its first
/// bytes are the middle of a PDU, not a header.
pub(crate) fn describe(data: &[u8], at: usize, continuation: bool) -> Node {
    if continuation {
        return Node::group("payload", Some(at))
            .with_summary("continuation of the previous DT's message (no header here)");
    }
    match classify(data) {
        Ok(Payload::S7comm(pdu)) => s7comm(&pdu, at),
        Ok(Payload::S7commPlus { version }) => {
            let mut n = Node::group("payload", Some(at))
                .with_summary("S7comm-plus (protocol id 0x72), not decoded");
            n.push(Node::value("protocol", Some(at), "s7comm-plus"));
            if let Some(v) = version {
                n.push(Node::leaf("version", Some(at + 1), v, format!("{v:#04x}")));
            }
            n
        }
        Ok(Payload::Other) => {
            let first = data
                .first()
                .map_or("empty".to_owned(), |b| format!("first byte {b:#04x}"));
            let mut n = Node::group("payload", Some(at)).with_summary(format!(
                "neither S7comm (0x32) nor S7comm-plus (0x72): {first}"
            ));
            n.push(Node::value("protocol", Some(at), "unknown"));
            n
        }
        Err(e) => {
            let mut n = Node::group("payload", Some(at))
                .with_summary(format!("protocol id 0x32 but not a whole S7comm PDU: {e}"));
            n.push(Node::value("protocol", Some(at), "s7comm"));
            n.push(Node::leaf(
                "error",
                Some(at + e.offset()),
                e.to_string(),
                e.to_string(),
            ));
            n
        }
    }
}

fn s7comm(pdu: &S7Pdu<'_>, at: usize) -> Node {
    let h = &pdu.header;
    let rosctr = h.rosctr.name().unwrap_or("unknown");
    let what = match (pdu.function(), pdu.userdata()) {
        (Some(f), _) => f
            .name()
            .map_or_else(|| format!("function {:#04x}", f.0), str::to_owned),
        (None, Some((_, _, group, sub))) => {
            format!("{} / subfunction {sub:#04x}", group_name(group))
        }
        (None, None) => "no parameters".to_owned(),
    };
    let mut n = Node::group("payload", Some(at))
        .with_summary(format!("S7comm {rosctr}, {what}, PDU ref {}", h.pdu_ref));
    n.push(Node::leaf("protocol", Some(at), "s7comm", "s7comm (0x32)"));
    n.push(Node::leaf(
        "rosctr",
        Some(at + 1),
        rosctr,
        format!("{rosctr} ({:#04x})", h.rosctr.0),
    ));
    n.push(Node::value("redundancy_id", Some(at + 2), h.redundancy_id));
    n.push(Node::value("pdu_ref", Some(at + 4), h.pdu_ref));
    n.push(Node::value("param_len", Some(at + 6), h.param_len));
    n.push(Node::value("data_len", Some(at + 8), h.data_len));
    if let Some((class, code)) = h.error {
        n.push(Node::leaf(
            "error",
            Some(at + 10),
            format!("{class:#04x}{code:02x}"),
            if class == 0 && code == 0 {
                "none".to_owned()
            } else {
                format!("class {class:#04x}, code {code:#04x}")
            },
        ));
    }
    let params_at = at + h.len();
    if let Some(f) = pdu.function() {
        n.push(Node::leaf(
            "function",
            Some(params_at),
            f.name().unwrap_or("unknown"),
            format!("{} ({:#04x})", f.name().unwrap_or("unknown"), f.0),
        ));
    }
    if let Some((calling, called, pdu_len)) = pdu.setup_communication() {
        n.push(Node::value("max_amq_calling", Some(params_at + 2), calling));
        n.push(Node::value("max_amq_called", Some(params_at + 4), called));
        n.push(Node::value("pdu_length", Some(params_at + 6), pdu_len));
    }
    if let Some(items) = pdu.item_count() {
        n.push(Node::value("item_count", Some(params_at + 1), items));
    }
    if let Some((method, kind, group, sub)) = pdu.userdata() {
        let method = match method {
            0x11 => "request",
            0x12 => "response",
            _ => "unknown",
        };
        n.push(Node::value("method", Some(params_at + 4), method));
        n.push(Node::value("type", Some(params_at + 5), kind));
        n.push(Node::leaf(
            "function_group",
            Some(params_at + 5),
            group,
            format!("{} ({group})", group_name(group)),
        ));
        n.push(Node::leaf(
            "subfunction",
            Some(params_at + 6),
            sub,
            format!("{sub:#04x}"),
        ));
    }
    if pdu.trailing > 0 {
        n.push(Node::value("trailing_bytes", None, pdu.trailing));
    }
    if h.rosctr == Rosctr::USERDATA && pdu.userdata().is_none() && !pdu.params.is_empty() {
        n.push(Node::value(
            "note",
            None,
            "user-data parameters without the usual 00 01 12 head",
        ));
    }
    n
}

/// Names of the user-data function groups.
fn group_name(group: u8) -> &'static str {
    match group {
        0x0 => "mode transition",
        0x1 => "programmer commands",
        0x2 => "cyclic data",
        0x3 => "block functions",
        0x4 => "CPU functions",
        0x5 => "security",
        0x6 => "PBC",
        0x7 => "time functions",
        0xf => "NC programming",
        _ => "unknown group",
    }
}
