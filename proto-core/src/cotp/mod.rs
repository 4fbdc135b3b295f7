//! X.224 / ISO 8073 connection-oriented transport (COTP), as carried over TCP in RFC
//! 1006 TPKT frames.
//!
//! - [`connection`]: the class 0 connection state machine (sans-IO), both sides.
//! - [`tpdu`]: the ten TPDU types, decode and encode.
//! - [`params`]: the variable-part parameters (C0–C7, F0, F2, 85–8F, E0, unknown ones).
//! - [`codes`]: TPDU type codes, classes, sizes, disconnect reasons, reject causes.
//! - [`expedited`]: RFC 1006's expedited data extension to class 0 (C6 option, ED form).
//! - [`checksum`]: the C3 checksum.
//! - [`error`]: decode errors naming the field and offset.

pub mod checksum;
pub mod codes;
pub mod connection;
pub mod error;
pub mod expedited;
pub mod params;
pub mod tpdu;
mod tsap;

pub use codes::{DisconnectReason, Format, RejectCause, TpduKind, TpduSize};
pub use error::{FrameError, TpduError};
pub use params::{Param, Params};
pub use tpdu::{
    class0_dt_frame_header, decode_frame, Connect, Data, DataAck, DisconnectConfirm,
    DisconnectRequest, ErrorTpdu, ExpeditedAck, ExpeditedData, Reject, Tpdu,
};
pub use tsap::{Tsap, TsapError};

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod tests_support {
    /// Bytes from a hex string (test vectors).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
