//! `proto decode cotp`: TPKT frames and the TPDUs inside them, and what the DT
//! payload carries (S7comm header, S7comm-plus or neither; see [`super::s7`]).

use super::tree::{hex, hex_preview, Node};
use super::{DecodeFailure, Frame};
use proto_core::cotp::{Param, Tpdu};
use proto_core::tpkt::{self, Status};

/// Decodes consecutive TPKT frames from `input`.
pub(crate) fn decode_stream(input: &[u8]) -> (Vec<Frame>, Option<DecodeFailure>) {
    let mut frames = vec![];
    let mut at = 0;
    // Whether the last DT had no EOT: the next one continues its message.
    let mut continuing = false;
    while at < input.len() {
        let rest = &input[at..];
        let frame = match tpkt::parse_frame(rest, tpkt::DEFAULT_MAX_FRAME_LEN) {
            Ok(Status::Complete(f)) => f,
            Ok(Status::Partial { needed }) => {
                return (
                    frames,
                    Some(DecodeFailure {
                        offset: at,
                        message: format!("TPKT frame truncated: {needed} more bytes needed"),
                    }),
                )
            }
            Err(e) => {
                return (
                    frames,
                    Some(DecodeFailure {
                        offset: at,
                        message: shift_tpkt(e, at).to_string(),
                    }),
                )
            }
        };
        let base = at + tpkt::HEADER_LEN;
        match Tpdu::decode(frame.payload) {
            Ok(tpdu) => {
                frames.push(Frame {
                    offset: at,
                    len: frame.len,
                    tree: describe(&tpdu, at, frame.len, continuing),
                });
                if let Tpdu::Data(d) = &tpdu {
                    continuing = !d.eot;
                }
            }
            Err(e) => {
                return (
                    frames,
                    Some(DecodeFailure {
                        offset: e.offset() + base,
                        message: format!("COTP: {}", e.shifted(base)),
                    }),
                )
            }
        }
        at += frame.len;
    }
    (frames, None)
}

fn shift_tpkt(e: tpkt::TpktError, base: usize) -> tpkt::TpktError {
    use tpkt::TpktError::*;
    match e {
        BadVersion { offset, version } => BadVersion {
            offset: offset + base,
            version,
        },
        TooShort { offset, length } => TooShort {
            offset: offset + base,
            length,
        },
        TooLong {
            offset,
            length,
            max,
        } => TooLong {
            offset: offset + base,
            length,
            max,
        },
    }
}

fn describe(tpdu: &Tpdu<'_>, at: usize, len: usize, continuing: bool) -> Node {
    let base = at + tpkt::HEADER_LEN;
    let mut frame = Node::group("frame", Some(at)).with_summary(format!("TPKT, {len} bytes"));
    let mut t = Node::group("tpkt", Some(at));
    t.push(Node::value("version", Some(at), tpkt::VERSION));
    t.push(Node::value("length", Some(at + 2), len));
    frame.push(t);

    let kind = tpdu.kind();
    let mut c = Node::group("cotp", Some(base)).with_summary(kind.abbreviation());
    c.push(Node::value("type", Some(base + 1), kind.abbreviation()));
    c.push(Node::value("li", Some(base), tpdu.header_len() - 1));
    let refs = |c: &mut Node, dst: u16, src: Option<u16>| {
        c.push(Node::leaf(
            "dst_ref",
            Some(base + 2),
            dst,
            format!("{dst:#06x}"),
        ));
        if let Some(src) = src {
            c.push(Node::leaf(
                "src_ref",
                Some(base + 4),
                src,
                format!("{src:#06x}"),
            ));
        }
    };
    match tpdu {
        Tpdu::ConnectionRequest(x) | Tpdu::ConnectionConfirm(x) => {
            c.push(Node::value("credit", Some(base + 1), x.credit));
            refs(&mut c, x.dst_ref, Some(x.src_ref));
            c.push(Node::value("class", Some(base + 6), x.class));
            c.push(Node::leaf(
                "options",
                Some(base + 6),
                x.options,
                format!("{:#03x}", x.options),
            ));
        }
        Tpdu::DisconnectRequest(x) => {
            refs(&mut c, x.dst_ref, Some(x.src_ref));
            c.push(Node::leaf(
                "reason",
                Some(base + 6),
                x.reason.0,
                x.reason.to_string(),
            ));
        }
        Tpdu::DisconnectConfirm(x) => refs(&mut c, x.dst_ref, Some(x.src_ref)),
        Tpdu::Data(x) => {
            if let Some(d) = x.dst_ref {
                refs(&mut c, d, None);
            }
            c.push(Node::value("eot", None, x.eot));
            c.push(Node::value("nr", None, x.nr));
        }
        Tpdu::ExpeditedData(x) => {
            // RFC 1006's class 0 ED (LI 2) has no DST-REF, like a class 0 DT.
            if let Some(d) = x.dst_ref {
                refs(&mut c, d, None);
            }
            c.push(Node::value("eot", None, x.eot));
            c.push(Node::value("nr", None, x.nr));
        }
        Tpdu::DataAck(x) => {
            refs(&mut c, x.dst_ref, None);
            c.push(Node::value("credit", None, x.credit));
            c.push(Node::value("nr", None, x.nr));
        }
        Tpdu::ExpeditedAck(x) => {
            refs(&mut c, x.dst_ref, None);
            c.push(Node::value("nr", None, x.nr));
        }
        Tpdu::Reject(x) => {
            refs(&mut c, x.dst_ref, None);
            c.push(Node::value("credit", None, x.credit));
            c.push(Node::value("nr", None, x.nr));
        }
        Tpdu::Error(x) => {
            refs(&mut c, x.dst_ref, None);
            c.push(Node::leaf(
                "cause",
                Some(base + 4),
                x.cause.0,
                x.cause.to_string(),
            ));
        }
    }
    let params_at = base + tpdu.params_offset();
    let mut params = Node::list("params", Some(params_at));
    for (off, p) in tpdu.params().iter_with_offsets() {
        params.push(describe_param(&p, params_at + off));
    }
    if !tpdu.params().is_empty() {
        c.push(params);
    }
    let data = tpdu.user_data();
    if !data.is_empty() {
        let at = base + tpdu.header_len();
        let key = match tpdu {
            Tpdu::Data(_) | Tpdu::ExpeditedData(_) => "data",
            _ => "user_data",
        };
        c.push(Node::leaf(key, Some(at), hex(data), hex_preview(data)));
        c.push(Node::value(format!("{key}_len"), None, data.len()));
        if matches!(tpdu, Tpdu::Data(_)) {
            c.push(super::s7::describe(data, at, continuing));
        }
        if matches!(tpdu, Tpdu::DisconnectRequest(_)) {
            c.push(Node::value(
                "note",
                None,
                "class 0 allows no user data in a DR; the bytes after the header are reported, not interpreted",
            ));
        }
    }
    frame.push(c);
    frame
}

fn describe_param(p: &Param<'_>, at: usize) -> Node {
    let (json, text): (serde_json::Value, String) = match *p {
        Param::TpduSize(s) => (
            s.bytes().into(),
            format!("{} (code {:#04x})", s.bytes(), s.code()),
        ),
        Param::CallingTsap(v)
        | Param::CalledTsap(v)
        | Param::Protection(v)
        | Param::AlternativeClasses(v)
        | Param::Throughput(v)
        | Param::SelectiveAck(v)
        | Param::AdditionalInfo(v)
        | Param::InvalidTpdu(v)
        | Param::Unknown { value: v, .. } => (hex(v).into(), hex(v)),
        Param::Checksum(c) => (hex(&c).into(), hex(&c)),
        Param::Version(v) => (v.into(), v.to_string()),
        Param::AdditionalOptions(v) => {
            // Bit 1 is the one RFC 1006 gives class 0: use of expedited data.
            let ed = if v & proto_core::cotp::expedited::OPTION_EXPEDITED != 0 {
                "use"
            } else {
                "non-use"
            };
            (v.into(), format!("{v:#04x} (expedited data: {ed})"))
        }
        Param::PreferredMaxTpduSize(u) => (
            (u64::from(u) * 128).into(),
            format!("{} bytes ({u} × 128)", u64::from(u) * 128),
        ),
        Param::InactivityTimer(ms) => (ms.into(), format!("{ms} ms")),
        Param::AckTime(v)
        | Param::Priority(v)
        | Param::SubsequenceNumber(v)
        | Param::ReassignmentTime(v) => (v.into(), v.to_string()),
        Param::ResidualErrorRate(v) => (hex(&v).into(), format!("{v:?}")),
        Param::TransitDelay(v) => (serde_json::json!(v), format!("{v:?}")),
        Param::FlowControlConfirmation {
            lower_window_edge,
            subsequence,
            credit,
        } => (
            serde_json::json!({"lower_window_edge": lower_window_edge, "subsequence": subsequence, "credit": credit}),
            format!("lwe {lower_window_edge}, subsequence {subsequence}, credit {credit}"),
        ),
    };
    let json = serde_json::json!({"code": format!("{:#04x}", p.code()), "name": p.name(), "value": json, "offset": at});
    Node::leaf(
        format!("{} ({:#04x})", p.name(), p.code()),
        Some(at),
        json,
        text,
    )
}
