//! X.224 / ISO 8073 connection-oriented transport (COTP), as carried over TCP in RFC
//! 1006 TPKT frames.
//!
//! - [`tpdu`]: the ten TPDU types, decode and encode.
//! - [`params`]: the variable-part parameters (C0–C7, F0, F2, 85–8F, E0, unknown ones).
//! - [`codes`]: TPDU type codes, classes, sizes, disconnect reasons, reject causes.
//! - [`checksum`]: the C3 checksum.
//! - [`error`]: decode errors naming the field and offset.

pub mod checksum;
pub mod codes;
pub mod error;
pub mod params;
pub mod tpdu;

pub use codes::{DisconnectReason, Format, RejectCause, TpduKind, TpduSize};
pub use error::{FrameError, TpduError};
pub use params::{Param, Params};
pub use tpdu::{
    class0_dt_frame_header, decode_frame, Connect, Data, DataAck, DisconnectConfirm,
    DisconnectRequest, ErrorTpdu, ExpeditedAck, ExpeditedData, Reject, Tpdu,
};

#[cfg(test)]
mod tests;
