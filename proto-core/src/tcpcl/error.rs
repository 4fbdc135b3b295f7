//! The decode error every TCPCL decoder returns, and the internal plumbing that turns
//! running out of input into [`Status::Partial`] instead of an error.
//!
//! Offsets in errors are relative to the start of the buffer handed to the decoder
//! (the contact header's first byte, or the message's type byte).

use crate::tpkt::Status;
use crate::wire::Short;

/// A malformed contact header, message or extension item.
///
/// Every variant names the offending field and its byte offset, so the text reads well
/// in a CLI (`proto decode tcpcl`) and a session can pick the right response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The contact header does not start with `dtn!`.
    #[error("bad contact header magic: byte 0x{found:02x} at offset {offset} (expected \"dtn!\")")]
    BadMagic {
        /// Offset of the first byte that differs from the magic.
        offset: usize,
        /// The byte seen there.
        found: u8,
    },
    /// The message type code is not one RFC 9174 defines.
    ///
    /// A session answers this with MSG_REJECT (reason "message type unknown") carrying
    /// `message_type` as the rejected header.
    #[error("unknown message type 0x{message_type:02x} at offset {offset}")]
    UnknownMessageType {
        /// Offset of the message type byte.
        offset: usize,
        /// The type code seen.
        message_type: u8,
    },
    /// A text field is not valid UTF-8.
    #[error("{field} is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Name of the field.
        field: &'static str,
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// A length inside an enclosing block points past the end of that block.
    #[error(
        "{field} at offset {offset} declares {len} bytes but only {available} remain in the block"
    )]
    Overrun {
        /// Name of the field whose length overruns.
        field: &'static str,
        /// Offset of the field (for an item value: of its length field).
        offset: usize,
        /// Declared length.
        len: u64,
        /// Bytes left in the enclosing block.
        available: usize,
    },
    /// A declared length would make the decoder need more than the configured bound
    /// (see [`DecodeLimits`](super::DecodeLimits)), or more than fits in memory.
    #[error("{field} length {len} at offset {offset} exceeds the {max}-byte decode limit")]
    TooLarge {
        /// Name of the field.
        field: &'static str,
        /// Offset of the length field.
        offset: usize,
        /// Declared length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// An SDNV does not fit in 64 bits (or is longer than any 64-bit SDNV can be).
    #[error("SDNV {field} at offset {offset} does not fit in 64 bits")]
    SdnvOverflow {
        /// Name of the field.
        field: &'static str,
        /// Offset of the SDNV's first byte.
        offset: usize,
    },
    /// A fixed-size value has the wrong length.
    #[error("{field} at offset {offset} is {len} bytes long (expected {expected})")]
    BadLength {
        /// Name of the field.
        field: &'static str,
        /// Offset of the value.
        offset: usize,
        /// Length seen.
        len: usize,
        /// Length required.
        expected: usize,
    },
}

/// Why an inner decode step stopped: too little input (not an error) or a real error.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The input ends inside a field.
    Short(Short),
    /// The input is malformed.
    Error(DecodeError),
}

impl From<Short> for Fail {
    fn from(s: Short) -> Self {
        Fail::Short(s)
    }
}

impl From<DecodeError> for Fail {
    fn from(e: DecodeError) -> Self {
        Fail::Error(e)
    }
}

/// Turns an inner decode result into the public `Status` shape.
pub(crate) fn finish<T>(r: Result<T, Fail>) -> Result<Status<T>, DecodeError> {
    match r {
        Ok(v) => Ok(Status::Complete(v)),
        Err(Fail::Short(s)) => Ok(Status::Partial {
            needed: s.needed.max(1),
        }),
        Err(Fail::Error(e)) => Err(e),
    }
}
