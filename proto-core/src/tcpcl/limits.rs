//! Bounds on how much input a decoder may need before it can complete.
//!
//! A sans-IO session buffers a message (or an XFER_SEGMENT head) until it decodes, so
//! it needs to know up front that a peer's declared lengths fit its buffer. The
//! decoders check every variable-length field against [`DecodeLimits::max_len`] as
//! soon as its length is read, before any of it has arrived.

use super::DecodeError;

/// Limits applied while decoding.
///
/// `max_len` bounds the total number of bytes (from the start of the contact header or
/// message) a decoder may need to see before it returns `Complete`: the node ID and
/// session extension items of SESS_INIT, the transfer extension items of an
/// XFER_SEGMENT head, the EID of a v3 contact header, and — for the whole-message
/// decoder only — XFER_SEGMENT data. The fixed-size parts of messages (at most 25
/// bytes) are not checked, so a useful bound is at least that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest number of bytes a decoder may need before completing.
    pub max_len: usize,
}

impl DecodeLimits {
    /// No bound beyond what addresses in memory.
    pub const UNLIMITED: Self = DecodeLimits {
        max_len: usize::MAX,
    };

    /// Limits with the given `max_len`.
    pub const fn new(max_len: usize) -> Self {
        DecodeLimits { max_len }
    }

    /// Checks that a field of `len` bytes, starting at `start` and followed by
    /// `trailing` fixed bytes the decoder also needs, ends within the limit.
    ///
    /// `len_offset` is where the field's length was read, for the error.
    pub(crate) fn check(
        &self,
        field: &'static str,
        len_offset: usize,
        start: usize,
        len: u64,
        trailing: usize,
    ) -> Result<usize, DecodeError> {
        let too_large = DecodeError::TooLarge {
            field,
            offset: len_offset,
            len,
            max: self.max_len,
        };
        let n = usize::try_from(len).map_err(|_| too_large)?;
        let end = start
            .checked_add(n)
            .and_then(|e| e.checked_add(trailing))
            .ok_or(too_large)?;
        if end > self.max_len {
            return Err(too_large);
        }
        Ok(n)
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits::UNLIMITED
    }
}
