//! Decoding errors for COTP TPDUs, each naming the field and its byte offset.

use crate::tpkt::TpktError;

/// A TPDU that cannot be decoded. Offsets count from the first octet of the TPDU (the
/// length indicator) unless the error came through [`FrameError`], where they count
/// from the TPKT header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TpduError {
    /// The input ends inside the fixed part of the header.
    #[error("{field} at offset {offset}: TPDU truncated ({needed} more bytes needed)")]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Offset of that field.
        offset: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// The length indicator is inconsistent with the input or the TPDU type.
    #[error("length indicator {li} at offset {offset}: {problem}")]
    LengthIndicator {
        /// Offset of the length indicator.
        offset: usize,
        /// The value seen.
        li: u8,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The code octet is not one of the ten TPDU types.
    #[error("TPDU code {code:#04x} at offset {offset} is not a valid TPDU type")]
    UnknownType {
        /// Offset of the code octet.
        offset: usize,
        /// The code seen.
        code: u8,
    },
    /// A parameter's length runs past the header or does not fit its type.
    #[error("parameter {code:#04x} at offset {offset}: length {len} is invalid ({problem})")]
    ParameterLength {
        /// Offset of the parameter code.
        offset: usize,
        /// The parameter code.
        code: u8,
        /// The parameter length seen.
        len: u8,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A parameter or fixed field has a value the standard does not allow.
    #[error("{field} at offset {offset}: invalid value {value:#04x}")]
    InvalidValue {
        /// Name of the field or parameter.
        field: &'static str,
        /// Offset of the value.
        offset: usize,
        /// The first octet of the offending value.
        value: u8,
    },
    /// The checksum parameter (C3) does not verify.
    #[error("checksum parameter at offset {offset} does not verify")]
    Checksum {
        /// Offset of the checksum parameter code.
        offset: usize,
    },
}

impl TpduError {
    /// The byte offset the error names.
    pub fn offset(&self) -> usize {
        match *self {
            TpduError::Truncated { offset, .. }
            | TpduError::LengthIndicator { offset, .. }
            | TpduError::UnknownType { offset, .. }
            | TpduError::ParameterLength { offset, .. }
            | TpduError::InvalidValue { offset, .. }
            | TpduError::Checksum { offset } => offset,
        }
    }

    /// The same error with every offset moved by `base` (to report offsets within a
    /// larger stream).
    pub fn shifted(mut self, base: usize) -> Self {
        match &mut self {
            TpduError::Truncated { offset, .. }
            | TpduError::LengthIndicator { offset, .. }
            | TpduError::UnknownType { offset, .. }
            | TpduError::ParameterLength { offset, .. }
            | TpduError::InvalidValue { offset, .. }
            | TpduError::Checksum { offset } => *offset += base,
        }
        self
    }
}

/// A TPKT frame whose header or TPDU cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The TPKT header is invalid.
    #[error("TPKT: {0}")]
    Tpkt(#[from] TpktError),
    /// The TPDU inside is invalid; offsets count from the TPKT header.
    #[error("COTP: {0}")]
    Tpdu(TpduError),
}
