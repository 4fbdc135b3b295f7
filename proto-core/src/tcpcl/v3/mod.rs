//! TCPCLv3 (RFC 7242): the message codec, contact-header negotiation and the v3
//! session state machine, beside the v4 code in the parent module.
//!
//! - [`Message`]: DATA_SEGMENT (head), ACK_SEGMENT, REFUSE_BUNDLE, KEEPALIVE, SHUTDOWN,
//!   LENGTH, decoded without allocation (lengths and delays are SDNVs of at most ten
//!   octets that never overflow a `u64`).
//! - [`Negotiated`]: what two v3 contact headers agree on (RFC 7242 §4.2).
//! - [`RefuseReason`], [`ShutdownReason`]: the v3 reason codes and their v4 twins.
//! - [`Session`]: the v3 session, with the v4 session's contract (same [`Event`]s,
//!   [`Transmit`], [`Input`], [`RxData`]), so a runtime drives both alike.
//!
//! The contact header is [`ContactHeaderV3`](crate::tcpcl::ContactHeaderV3), shared
//! with the v4 side that recognises v3 peers.
//!
//! # Version detection and the RFC 7242 §4.1 deviation
//!
//! RFC 7242 §4.1 has both sides send their contact header as soon as the TCP
//! connection is up. A listener that serves v3 and v4 on one port cannot: it does not
//! know which header to send until it has seen the peer's. So a dual-version passive
//! side reads the first five octets (magic and version,
//! [`Contact::peek_version`](crate::tcpcl::Contact::peek_version)) before it answers,
//! which is what RFC 9174 §4.2 asks of every v4 passive side anyway. v3 active peers
//! (ION, µD3TN, DTNME, pyd3tn) send their header unprompted, so they see no
//! difference beyond the delay of one header. A v3 [`Session`] itself still queues
//! its header at construction on both sides, as §4.1 says; only the runtime's choice
//! of when to construct the passive one defers it.
//!
//! [`Event`]: crate::tcpcl::Event
//! [`Transmit`]: crate::tcpcl::Transmit
//! [`Input`]: crate::tcpcl::Input
//! [`RxData`]: crate::tcpcl::RxData

mod contact;
mod message;
mod reason;
pub mod session;

#[cfg(test)]
mod tests;

pub use contact::Negotiated;
pub use message::{DataFlags, Message, MessageType, Shutdown, ShutdownFlags};
pub use reason::{RefuseReason, ShutdownReason};
pub use session::{Session, SessionConfig, MAX_SEGMENT_HEAD};
