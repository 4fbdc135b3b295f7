//! MSG_REJECT (RFC 9174 §5.1.1): the answer to a message that is unknown, unsupported
//! or unexpected.

use super::MessageType;
use crate::tcpcl::error::Fail;
use crate::tcpcl::reason::MsgRejectReason;
use crate::wire::{encode_with, EncodeError, Reader};

/// A MSG_REJECT message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsgReject {
    /// Why the message was rejected.
    pub reason: MsgRejectReason,
    /// The type byte of the rejected message.
    pub rejected_header: u8,
}

impl MsgReject {
    /// Encoded length, type byte included.
    pub const LEN: usize = 3;

    /// Encoded length ([`MsgReject::LEN`]).
    pub const fn encoded_len(&self) -> usize {
        Self::LEN
    }

    /// Encodes the message into `out`, returning the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_with(out, Self::LEN, |w| {
            w.put_u8(MessageType::MsgReject.code())?;
            w.put_u8(self.reason.0)?;
            w.put_u8(self.rejected_header)
        })
    }

    /// Decodes the fields after the type byte.
    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Fail> {
        Ok(MsgReject {
            reason: MsgRejectReason(r.u8()?),
            rejected_header: r.u8()?,
        })
    }
}
