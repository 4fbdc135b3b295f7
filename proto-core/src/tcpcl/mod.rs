//! TCPCLv4 (RFC 9174) wire codec and session state machine, and TCPCLv3 (RFC 7242)
//! beside it in [`v3`].
//!
//! This module owns the bytes on the wire and, in [`session`], the session state machine
//! built on them. The codec part covers the contact header ([`Contact`]), the seven
//! messages ([`Message`], [`MessageHead`]), extension items ([`ExtensionItems`]), reason
//! codes, flag bytes and SDNVs; the codec itself holds no session state.
//!
//! Decoders borrow from the caller's input and never allocate; they return
//! [`Status::Partial`] when the input ends early (httparse style) and a
//! [`DecodeError`] naming the field and offset when it is malformed. No length field,
//! up to 2^64-1, can make them overflow or panic, and [`DecodeLimits`] bounds what a
//! peer can make a caller buffer. Encoders write into a caller buffer and report
//! [`EncodeError::BufferTooSmall`](crate::EncodeError::BufferTooSmall) before writing.
//!
//! Decoding a stream of messages:
//!
//! ```
//! use proto_core::tcpcl::{DecodeLimits, Message, MessageHead, Status};
//! let stream = [0x04, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0x05, 0x00];
//! let mut input = &stream[..];
//! let mut seen = vec![];
//! while let Status::Complete((head, used)) = MessageHead::decode(input, &DecodeLimits::new(4096))? {
//!     if let MessageHead::Message(m) = head {
//!         seen.push(m.message_type().name());
//!     }
//!     input = &input[used..];
//! }
//! assert_eq!(seen, ["KEEPALIVE", "XFER_ACK"]);
//! assert_eq!(input, &[0x05, 0x00]); // a SESS_TERM still missing its reason byte
//! # Ok::<(), proto_core::tcpcl::DecodeError>(())
//! ```

mod contact;
mod error;
mod extension;
mod flags;
mod limits;
mod message;
mod reason;
pub mod sdnv;
pub mod session;
pub mod v3;

#[cfg(test)]
mod tests;

pub use crate::tpkt::Status;
pub use contact::{Contact, ContactHeader, ContactHeaderV3, MAGIC, VERSION, VERSION_3};
pub use error::DecodeError;
pub use extension::{
    ExtensionItem, ExtensionItems, ExtensionIter, TransferLength, ITEM_HEADER_LEN,
};
pub use flags::{ContactFlags, ExtensionFlags, SegmentFlags, SessTermFlags, V3ContactFlags};
pub use limits::DecodeLimits;
pub use message::{
    Message, MessageHead, MessageType, MsgReject, SessInit, SessTerm, XferAck, XferRefuse,
    XferSegment, XferSegmentHead,
};
pub use reason::{MsgRejectReason, SessTermReason, XferRefuseReason};
pub use session::{
    CloseReason, ConfigError, ContactFailure, Event, Input, Negotiated, ProtocolError, Ready,
    RxData, Session, SessionConfig, Side, State, TlsRole, Transmit, TransmitError, UsageError,
    MAX_SEGMENT_HEAD,
};
