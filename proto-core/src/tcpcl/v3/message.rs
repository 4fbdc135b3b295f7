//! The six TCPCLv3 messages (RFC 7242 §5, §6.1) and their codec.
//!
//! Every v3 message starts with one octet whose four high-order bits are the type
//! (§5.1, Table 1) and whose four low-order bits are type-specific flags; lengths and
//! delays are SDNVs ([`crate::tcpcl::sdnv`], at most ten octets, never overflowing).
//! [`Message::decode`] stops a DATA_SEGMENT after its length field, like the v4
//! `MessageHead`, so a session can stream the data as it arrives; it never allocates
//! and never needs more than [`Message::MAX_LEN`] octets.

use std::fmt;

use super::reason::{RefuseReason, ShutdownReason};
use crate::tcpcl::error::{finish, DecodeError, Fail};
use crate::tcpcl::flags::flag_byte;
use crate::tcpcl::sdnv;
use crate::tpkt::Status;
use crate::wire::{encode_with, EncodeError, Reader};

flag_byte! {
    /// Flags of DATA_SEGMENT (RFC 7242 §5.2), the low nibble of its header octet.
    DataFlags {
        /// First segment of a bundle ('S').
        START = 0x02 => "S";
        /// Last segment of a bundle ('E').
        END = 0x01 => "E";
    }
}

impl DataFlags {
    /// Whether S is set.
    pub const fn is_start(self) -> bool {
        self.contains(Self::START)
    }

    /// Whether E is set.
    pub const fn is_end(self) -> bool {
        self.contains(Self::END)
    }
}

flag_byte! {
    /// Flags of SHUTDOWN (RFC 7242 §6.1), the low nibble of its header octet.
    ShutdownFlags {
        /// A reason code follows ('R').
        REASON = 0x02 => "R";
        /// A reconnection delay follows ('D').
        DELAY = 0x01 => "D";
    }
}

/// The v3 message type codes (RFC 7242 §5.1, Table 1; registry §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// DATA_SEGMENT (0x1).
    DataSegment = 0x1,
    /// ACK_SEGMENT (0x2).
    AckSegment = 0x2,
    /// REFUSE_BUNDLE (0x3).
    RefuseBundle = 0x3,
    /// KEEPALIVE (0x4).
    Keepalive = 0x4,
    /// SHUTDOWN (0x5).
    Shutdown = 0x5,
    /// LENGTH (0x6).
    Length = 0x6,
}

impl MessageType {
    /// The type for a 4-bit code, or `None` for the unassigned ones (0x0, 0x7–0xf).
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x1 => MessageType::DataSegment,
            0x2 => MessageType::AckSegment,
            0x3 => MessageType::RefuseBundle,
            0x4 => MessageType::Keepalive,
            0x5 => MessageType::Shutdown,
            0x6 => MessageType::Length,
            _ => return None,
        })
    }

    /// The 4-bit wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The RFC name, e.g. `DATA_SEGMENT`.
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::DataSegment => "DATA_SEGMENT",
            MessageType::AckSegment => "ACK_SEGMENT",
            MessageType::RefuseBundle => "REFUSE_BUNDLE",
            MessageType::Keepalive => "KEEPALIVE",
            MessageType::Shutdown => "SHUTDOWN",
            MessageType::Length => "LENGTH",
        }
    }

    const fn header(self, flags: u8) -> u8 {
        (self.code() << 4) | (flags & 0x0f)
    }
}

/// A SHUTDOWN message: an optional reason code and an optional reconnection delay in
/// seconds (RFC 7242 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shutdown {
    /// The reason, when the 'R' flag is set.
    pub reason: Option<ShutdownReason>,
    /// Seconds the peer should wait before reconnecting, when the 'D' flag is set.
    pub delay: Option<u64>,
}

impl Shutdown {
    /// The flags this message carries.
    pub const fn flags(&self) -> ShutdownFlags {
        let r = if self.reason.is_some() { 0x02 } else { 0 };
        let d = if self.delay.is_some() { 0x01 } else { 0 };
        ShutdownFlags(r | d)
    }
}

/// A TCPCLv3 message. A DATA_SEGMENT is its head only: `len` octets of bundle data
/// follow it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// DATA_SEGMENT head (§5.2): flags and the length of the data that follows.
    DataSegment {
        /// S/E flags (reserved bits kept as received).
        flags: DataFlags,
        /// Data octets that follow the head.
        len: u64,
    },
    /// ACK_SEGMENT (§5.3): octets of the current bundle received so far (cumulative).
    AckSegment {
        /// Cumulative acknowledged length.
        len: u64,
    },
    /// REFUSE_BUNDLE (§5.4): the receiver refuses the bundle being sent.
    RefuseBundle {
        /// The reason (low nibble of the header).
        reason: RefuseReason,
    },
    /// KEEPALIVE (§5.6).
    Keepalive,
    /// SHUTDOWN (§6.1).
    Shutdown(Shutdown),
    /// LENGTH (§5.5): the total length of the next bundle.
    Length {
        /// Bundle length in octets.
        len: u64,
    },
}

impl Message {
    /// The longest encoded message (head): a header octet, a one-octet reason and a
    /// ten-octet SDNV (SHUTDOWN with both fields).
    pub const MAX_LEN: usize = 2 + sdnv::MAX_LEN;

    /// The message type.
    pub const fn message_type(&self) -> MessageType {
        match self {
            Message::DataSegment { .. } => MessageType::DataSegment,
            Message::AckSegment { .. } => MessageType::AckSegment,
            Message::RefuseBundle { .. } => MessageType::RefuseBundle,
            Message::Keepalive => MessageType::Keepalive,
            Message::Shutdown(_) => MessageType::Shutdown,
            Message::Length { .. } => MessageType::Length,
        }
    }

    /// Decodes one message (for DATA_SEGMENT: its head) at the start of `buf`,
    /// returning it and the octets it occupies.
    ///
    /// The low nibble of ACK_SEGMENT, KEEPALIVE and LENGTH is unused by RFC 7242 and
    /// ignored here. An unassigned type is
    /// [`DecodeError::UnknownMessageType`] (with the 4-bit code): v3 has no way to
    /// skip it, since its length is unknown.
    ///
    /// ```
    /// use proto_core::tcpcl::Status;
    /// use proto_core::tcpcl::v3::{DataFlags, Message};
    /// let wire = [0x13, 0x81, 0x00];
    /// assert_eq!(
    ///     Message::decode(&wire)?,
    ///     Status::Complete((Message::DataSegment { flags: DataFlags(3), len: 128 }, 3))
    /// );
    /// assert_eq!(Message::decode(&wire[..2])?, Status::Partial { needed: 1 });
    /// # Ok::<(), proto_core::tcpcl::DecodeError>(())
    /// ```
    pub fn decode(buf: &[u8]) -> Result<Status<(Message, usize)>, DecodeError> {
        let mut r = Reader::new(buf);
        finish(decode_inner(&mut r).map(|m| (m, r.position())))
    }

    /// Encoded length (for DATA_SEGMENT: of the head).
    pub fn encoded_len(&self) -> usize {
        match *self {
            Message::DataSegment { len, .. }
            | Message::AckSegment { len }
            | Message::Length { len } => 1 + sdnv::encoded_len(len),
            Message::RefuseBundle { .. } | Message::Keepalive => 1,
            Message::Shutdown(s) => {
                1 + usize::from(s.reason.is_some()) + s.delay.map_or(0, sdnv::encoded_len)
            }
        }
    }

    /// Encodes the message (for DATA_SEGMENT: the head) into `out`, returning the
    /// number of octets written. Flags outside the low nibble are dropped; a refusal
    /// reason above 15 cannot be sent and is written as its low nibble.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let t = self.message_type();
        encode_with(out, self.encoded_len(), |w| match *self {
            Message::DataSegment { flags, len } => {
                w.put_u8(t.header(flags.0))?;
                sdnv::write(len, w)
            }
            Message::AckSegment { len } | Message::Length { len } => {
                w.put_u8(t.header(0))?;
                sdnv::write(len, w)
            }
            Message::RefuseBundle { reason } => w.put_u8(t.header(reason.0)),
            Message::Keepalive => w.put_u8(t.header(0)),
            Message::Shutdown(s) => {
                w.put_u8(t.header(s.flags().0))?;
                if let Some(r) = s.reason {
                    w.put_u8(r.0)?;
                }
                match s.delay {
                    Some(d) => sdnv::write(d, w),
                    None => Ok(()),
                }
            }
        })
    }
}

fn decode_inner(r: &mut Reader<'_>) -> Result<Message, Fail> {
    let head = r.u8()?;
    let (code, flags) = (head >> 4, head & 0x0f);
    let Some(t) = MessageType::from_code(code) else {
        return Err(DecodeError::UnknownMessageType {
            offset: 0,
            message_type: code,
        }
        .into());
    };
    Ok(match t {
        MessageType::DataSegment => Message::DataSegment {
            flags: DataFlags(flags),
            len: sdnv::read(r, "segment length")?,
        },
        MessageType::AckSegment => Message::AckSegment {
            len: sdnv::read(r, "acknowledged length")?,
        },
        MessageType::RefuseBundle => Message::RefuseBundle {
            reason: RefuseReason(flags),
        },
        MessageType::Keepalive => Message::Keepalive,
        MessageType::Shutdown => {
            let f = ShutdownFlags(flags);
            // §6.1: the reason octet comes first, then the delay, each only when
            // its flag is set.
            let reason = if f.contains(ShutdownFlags::REASON) {
                Some(ShutdownReason(r.u8()?))
            } else {
                None
            };
            let delay = if f.contains(ShutdownFlags::DELAY) {
                Some(sdnv::read(r, "reconnection delay")?)
            } else {
                None
            };
            Message::Shutdown(Shutdown { reason, delay })
        }
        MessageType::Length => Message::Length {
            len: sdnv::read(r, "bundle length")?,
        },
    })
}

/// One line, e.g. `DATA_SEGMENT (flags S|E, 128 bytes)` or
/// `SHUTDOWN (reason busy, reconnect after 30 s)`.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.message_type().name();
        match *self {
            Message::DataSegment { flags, len } => {
                write!(f, "{name} (flags {flags}, {len} bytes)")
            }
            Message::AckSegment { len } => write!(f, "{name} ({len} bytes)"),
            Message::Length { len } => write!(f, "{name} ({len} bytes)"),
            Message::RefuseBundle { reason } => write!(f, "{name} (reason {reason:#})"),
            Message::Keepalive => f.write_str(name),
            Message::Shutdown(s) => {
                f.write_str(name)?;
                match (s.reason, s.delay) {
                    (None, None) => Ok(()),
                    (Some(r), None) => write!(f, " (reason {r:#})"),
                    (None, Some(d)) => write!(f, " (reconnect after {d} s)"),
                    (Some(r), Some(d)) => write!(f, " (reason {r:#}, reconnect after {d} s)"),
                }
            }
        }
    }
}
