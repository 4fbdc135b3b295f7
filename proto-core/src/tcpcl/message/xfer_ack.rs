//! XFER_ACK (RFC 9174 §5.2.3): acknowledges segments with the cumulative length
//! received, reflecting the flags of the acknowledged segment.

use super::MessageType;
use crate::tcpcl::error::Fail;
use crate::tcpcl::flags::SegmentFlags;
use crate::wire::{encode_with, EncodeError, Reader};

/// An XFER_ACK message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XferAck {
    /// Flags of the segment being acknowledged.
    pub flags: SegmentFlags,
    /// The transfer acknowledged.
    pub transfer_id: u64,
    /// Bytes of the transfer received so far (cumulative).
    pub acked_len: u64,
}

impl XferAck {
    /// Encoded length, type byte included.
    pub const LEN: usize = 18;

    /// Encoded length ([`XferAck::LEN`]).
    pub const fn encoded_len(&self) -> usize {
        Self::LEN
    }

    /// Encodes the message into `out`, returning the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_with(out, Self::LEN, |w| {
            w.put_u8(MessageType::XferAck.code())?;
            w.put_u8(self.flags.0)?;
            w.put_u64(self.transfer_id)?;
            w.put_u64(self.acked_len)
        })
    }

    /// Decodes the fields after the type byte.
    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Fail> {
        Ok(XferAck {
            flags: SegmentFlags(r.u8()?),
            transfer_id: r.u64()?,
            acked_len: r.u64()?,
        })
    }
}
