//! The seven TCPCLv4 messages (RFC 9174 §5, §6): their type codes, the [`Message`]
//! enum, and the two decoders a session uses.
//!
//! - [`MessageHead::decode`] is the streaming entry point: it returns a control message
//!   whole, but stops an XFER_SEGMENT after its data-length field, so segment data can
//!   be consumed in pieces as it arrives.
//! - [`Message::decode`] is the convenience form that also borrows the segment data
//!   when all of it is present.
//!
//! Each message lives in its own file with its encoder; every encoder writes into a
//! caller buffer and reports `BufferTooSmall { needed }` before writing anything.

mod msg_reject;
mod sess_init;
mod sess_term;
mod xfer_ack;
mod xfer_refuse;
mod xfer_segment;

use std::fmt;

pub use msg_reject::MsgReject;
pub use sess_init::SessInit;
pub use sess_term::SessTerm;
pub use xfer_ack::XferAck;
pub use xfer_refuse::XferRefuse;
pub use xfer_segment::{XferSegment, XferSegmentHead};

use super::error::{finish, DecodeError, Fail};
use super::limits::DecodeLimits;
use crate::tpkt::Status;
use crate::wire::{encode_with, EncodeError, Reader};

/// The message type codes of RFC 9174 §9.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// XFER_SEGMENT (0x01).
    XferSegment = 0x01,
    /// XFER_ACK (0x02).
    XferAck = 0x02,
    /// XFER_REFUSE (0x03).
    XferRefuse = 0x03,
    /// KEEPALIVE (0x04).
    Keepalive = 0x04,
    /// SESS_TERM (0x05).
    SessTerm = 0x05,
    /// MSG_REJECT (0x06).
    MsgReject = 0x06,
    /// SESS_INIT (0x07).
    SessInit = 0x07,
}

impl MessageType {
    /// The type for a code, or `None` if RFC 9174 does not define it.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => MessageType::XferSegment,
            0x02 => MessageType::XferAck,
            0x03 => MessageType::XferRefuse,
            0x04 => MessageType::Keepalive,
            0x05 => MessageType::SessTerm,
            0x06 => MessageType::MsgReject,
            0x07 => MessageType::SessInit,
            _ => return None,
        })
    }

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The RFC name, e.g. `XFER_SEGMENT`.
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::XferSegment => "XFER_SEGMENT",
            MessageType::XferAck => "XFER_ACK",
            MessageType::XferRefuse => "XFER_REFUSE",
            MessageType::Keepalive => "KEEPALIVE",
            MessageType::SessTerm => "SESS_TERM",
            MessageType::MsgReject => "MSG_REJECT",
            MessageType::SessInit => "SESS_INIT",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A TCPCLv4 message, borrowing its variable-length fields from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// XFER_SEGMENT.
    XferSegment(XferSegment<'a>),
    /// XFER_ACK.
    XferAck(XferAck),
    /// XFER_REFUSE.
    XferRefuse(XferRefuse),
    /// KEEPALIVE (no fields).
    Keepalive,
    /// SESS_TERM.
    SessTerm(SessTerm),
    /// MSG_REJECT.
    MsgReject(MsgReject),
    /// SESS_INIT.
    SessInit(SessInit<'a>),
}

impl<'a> Message<'a> {
    /// Decodes the message at the start of `buf`, returning it and the number of bytes
    /// it occupies. Too little input is `Partial { needed }`, not an error; bytes after
    /// the message are left for the next call.
    ///
    /// No length field, however large, makes this allocate or overflow: an XFER_SEGMENT
    /// whose data is not all present yet is `Partial`. Use [`MessageHead::decode`] to
    /// stream segment data instead of waiting for it, and [`Message::decode_with`] to
    /// bound what a peer can make you buffer.
    ///
    /// ```
    /// use proto_core::tcpcl::{Message, SessTerm, SessTermFlags, SessTermReason, Status};
    /// let input = [0x05, 0x01, 0x03, 0x04];
    /// let Status::Complete((msg, used)) = Message::decode(&input)? else { panic!("incomplete") };
    /// assert_eq!(used, 3);
    /// assert_eq!(
    ///     msg,
    ///     Message::SessTerm(SessTerm { flags: SessTermFlags::REPLY, reason: SessTermReason::BUSY })
    /// );
    /// assert_eq!(Message::decode(&input[used..])?, Status::Complete((Message::Keepalive, 1)));
    /// // A message cut short needs more input.
    /// assert_eq!(Message::decode(&input[..2])?, Status::Partial { needed: 1 });
    /// // An unknown type is an error carrying the type byte, for MSG_REJECT.
    /// assert_eq!(
    ///     Message::decode(&[0x2a]).unwrap_err().to_string(),
    ///     "unknown message type 0x2a at offset 0"
    /// );
    /// # Ok::<(), proto_core::tcpcl::DecodeError>(())
    /// ```
    pub fn decode(buf: &'a [u8]) -> Result<Status<(Self, usize)>, DecodeError> {
        Self::decode_with(buf, &DecodeLimits::UNLIMITED)
    }

    /// [`Message::decode`] with `limits` on how many bytes the message may need,
    /// segment data included; a longer declared length is [`DecodeError::TooLarge`]
    /// as soon as its length field arrives.
    pub fn decode_with(
        buf: &'a [u8],
        limits: &DecodeLimits,
    ) -> Result<Status<(Self, usize)>, DecodeError> {
        let mut r = Reader::new(buf);
        let msg = decode_whole(&mut r, limits);
        finish(msg.map(|m| (m, r.position())))
    }

    /// The message's type.
    pub const fn message_type(&self) -> MessageType {
        match self {
            Message::XferSegment(_) => MessageType::XferSegment,
            Message::XferAck(_) => MessageType::XferAck,
            Message::XferRefuse(_) => MessageType::XferRefuse,
            Message::Keepalive => MessageType::Keepalive,
            Message::SessTerm(_) => MessageType::SessTerm,
            Message::MsgReject(_) => MessageType::MsgReject,
            Message::SessInit(_) => MessageType::SessInit,
        }
    }

    /// Encoded length, type byte (and any segment data) included.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::XferSegment(m) => m.encoded_len(),
            Message::XferAck(m) => m.encoded_len(),
            Message::XferRefuse(m) => m.encoded_len(),
            Message::Keepalive => 1,
            Message::SessTerm(m) => m.encoded_len(),
            Message::MsgReject(m) => m.encoded_len(),
            Message::SessInit(m) => m.encoded_len(),
        }
    }

    /// Encodes the message into `out`, returning the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Message::XferSegment(m) => m.encode(out),
            Message::XferAck(m) => m.encode(out),
            Message::XferRefuse(m) => m.encode(out),
            Message::Keepalive => encode_with(out, 1, |w| w.put_u8(MessageType::Keepalive.code())),
            Message::SessTerm(m) => m.encode(out),
            Message::MsgReject(m) => m.encode(out),
            Message::SessInit(m) => m.encode(out),
        }
    }
}

/// What [`MessageHead::decode`] returns: a whole control message, or the head of an
/// XFER_SEGMENT whose data follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageHead<'a> {
    /// An XFER_SEGMENT head; `data_len` bytes of data follow the decoded bytes.
    Segment(XferSegmentHead<'a>),
    /// Any other message, complete (never [`Message::XferSegment`]).
    Message(Message<'a>),
}

impl<'a> MessageHead<'a> {
    /// Decodes a control message, or an XFER_SEGMENT up to and including its data
    /// length, at the start of `buf`; returns it and the number of bytes decoded.
    ///
    /// This is the streaming decoder: a segment head is `Complete` as soon as its
    /// header is present, whatever its data length, so segment data never has to be
    /// buffered whole. `limits` bounds control messages and segment heads.
    ///
    /// ```
    /// use proto_core::tcpcl::{DecodeLimits, MessageHead, Status};
    /// // A START|END segment with no extensions and 3 data bytes, of which 1 arrived.
    /// let input = [1, 3, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0xaa];
    /// let limits = DecodeLimits::new(4096);
    /// let Status::Complete((MessageHead::Segment(head), used)) = MessageHead::decode(&input, &limits)? else {
    ///     panic!("expected a segment head")
    /// };
    /// assert_eq!((head.transfer_id, head.data_len, used), (7, 3, 22));
    /// assert!(head.flags.is_start() && head.flags.is_end());
    /// assert_eq!(&input[used..], &[0xaa]); // the data received so far
    /// # Ok::<(), proto_core::tcpcl::DecodeError>(())
    /// ```
    pub fn decode(
        buf: &'a [u8],
        limits: &DecodeLimits,
    ) -> Result<Status<(Self, usize)>, DecodeError> {
        let mut r = Reader::new(buf);
        let head = decode_head(&mut r, limits);
        finish(head.map(|h| (h, r.position())))
    }

    /// The message's type.
    pub const fn message_type(&self) -> MessageType {
        match self {
            MessageHead::Segment(_) => MessageType::XferSegment,
            MessageHead::Message(m) => m.message_type(),
        }
    }
}

fn decode_head<'a>(r: &mut Reader<'a>, limits: &DecodeLimits) -> Result<MessageHead<'a>, Fail> {
    let offset = r.position();
    let code = r.u8()?;
    let t = MessageType::from_code(code).ok_or(DecodeError::UnknownMessageType {
        offset,
        message_type: code,
    })?;
    let msg = match t {
        MessageType::XferSegment => {
            return Ok(MessageHead::Segment(XferSegmentHead::decode_body(
                r, limits,
            )?))
        }
        MessageType::XferAck => Message::XferAck(XferAck::decode_body(r)?),
        MessageType::XferRefuse => Message::XferRefuse(XferRefuse::decode_body(r)?),
        MessageType::Keepalive => Message::Keepalive,
        MessageType::SessTerm => Message::SessTerm(SessTerm::decode_body(r)?),
        MessageType::MsgReject => Message::MsgReject(MsgReject::decode_body(r)?),
        MessageType::SessInit => Message::SessInit(SessInit::decode_body(r, limits)?),
    };
    Ok(MessageHead::Message(msg))
}

fn decode_whole<'a>(r: &mut Reader<'a>, limits: &DecodeLimits) -> Result<Message<'a>, Fail> {
    match decode_head(r, limits)? {
        MessageHead::Message(m) => Ok(m),
        MessageHead::Segment(head) => {
            let data = head.take_data(r, limits)?;
            Ok(Message::XferSegment(head.with_data(data)))
        }
    }
}

impl<'a> From<XferSegment<'a>> for Message<'a> {
    fn from(m: XferSegment<'a>) -> Self {
        Message::XferSegment(m)
    }
}

impl<'a> From<SessInit<'a>> for Message<'a> {
    fn from(m: SessInit<'a>) -> Self {
        Message::SessInit(m)
    }
}

macro_rules! from_fixed {
    ($($ty:ident),*) => {
        $(
            impl From<$ty> for Message<'_> {
                fn from(m: $ty) -> Self {
                    Message::$ty(m)
                }
            }
        )*
    };
}

from_fixed!(XferAck, XferRefuse, SessTerm, MsgReject);

/// One line per message, for logs and `proto decode tcpcl`.
impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message_type())?;
        match self {
            Message::XferSegment(m) => {
                write!(
                    f,
                    " flags={} transfer_id={} data_len={}",
                    m.flags,
                    m.transfer_id,
                    m.data.len()
                )?;
                fmt_extensions(f, &m.extensions)
            }
            Message::XferAck(m) => write!(
                f,
                " flags={} transfer_id={} acked_len={}",
                m.flags, m.transfer_id, m.acked_len
            ),
            Message::XferRefuse(m) => {
                write!(f, " reason={} transfer_id={}", m.reason, m.transfer_id)
            }
            Message::Keepalive => Ok(()),
            Message::SessTerm(m) => write!(f, " flags={} reason={}", m.flags, m.reason),
            Message::MsgReject(m) => write!(
                f,
                " reason={} rejected_header=0x{:02x}",
                m.reason, m.rejected_header
            ),
            Message::SessInit(m) => {
                write!(
                    f,
                    " keepalive={} segment_mru={} transfer_mru={} node_id={:?}",
                    m.keepalive, m.segment_mru, m.transfer_mru, m.node_id
                )?;
                fmt_extensions(f, &m.extensions)
            }
        }
    }
}

fn fmt_extensions(f: &mut fmt::Formatter<'_>, items: &super::ExtensionItems<'_>) -> fmt::Result {
    for item in items {
        write!(
            f,
            " ext(type=0x{:04x}{} len={})",
            item.item_type,
            if item.is_critical() { " critical" } else { "" },
            item.value.len()
        )?;
    }
    Ok(())
}
