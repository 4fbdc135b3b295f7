//! XFER_REFUSE (RFC 9174 §5.2.4): the receiver refuses (or stops) a transfer.

use super::MessageType;
use crate::tcpcl::error::Fail;
use crate::tcpcl::reason::XferRefuseReason;
use crate::wire::{encode_with, EncodeError, Reader};

/// An XFER_REFUSE message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XferRefuse {
    /// Why the transfer is refused.
    pub reason: XferRefuseReason,
    /// The transfer refused.
    pub transfer_id: u64,
}

impl XferRefuse {
    /// Encoded length, type byte included.
    pub const LEN: usize = 10;

    /// Encoded length ([`XferRefuse::LEN`]).
    pub const fn encoded_len(&self) -> usize {
        Self::LEN
    }

    /// Encodes the message into `out`, returning the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_with(out, Self::LEN, |w| {
            w.put_u8(MessageType::XferRefuse.code())?;
            w.put_u8(self.reason.0)?;
            w.put_u64(self.transfer_id)
        })
    }

    /// Decodes the fields after the type byte.
    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Fail> {
        Ok(XferRefuse {
            reason: XferRefuseReason(r.u8()?),
            transfer_id: r.u64()?,
        })
    }
}
