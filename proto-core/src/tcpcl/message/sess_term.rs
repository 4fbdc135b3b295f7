//! SESS_TERM (RFC 9174 §6.1): starts or acknowledges the end of a session.

use super::MessageType;
use crate::tcpcl::error::Fail;
use crate::tcpcl::flags::SessTermFlags;
use crate::tcpcl::reason::SessTermReason;
use crate::wire::{encode_with, EncodeError, Reader};

/// A SESS_TERM message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessTerm {
    /// Flags (REPLY when answering the peer's SESS_TERM).
    pub flags: SessTermFlags,
    /// Why the session ends.
    pub reason: SessTermReason,
}

impl SessTerm {
    /// Encoded length, type byte included.
    pub const LEN: usize = 3;

    /// Encoded length ([`SessTerm::LEN`]).
    pub const fn encoded_len(&self) -> usize {
        Self::LEN
    }

    /// Encodes the message into `out`, returning the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_with(out, Self::LEN, |w| {
            w.put_u8(MessageType::SessTerm.code())?;
            w.put_u8(self.flags.0)?;
            w.put_u8(self.reason.0)
        })
    }

    /// Decodes the fields after the type byte.
    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Fail> {
        Ok(SessTerm {
            flags: SessTermFlags(r.u8()?),
            reason: SessTermReason(r.u8()?),
        })
    }
}
