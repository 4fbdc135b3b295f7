//! What a session reports: [`Event`]s, the terminal [`CloseReason`], the [`State`]
//! and the data a peer sent ([`Input`], [`RxData`]).
//!
//! Events are small and `Copy`; variable-length facts (the peer's node ID) are read
//! through getters on [`Session`](super::Session).

use std::fmt;

use crate::tcpcl::{MessageType, MsgRejectReason, SessTermReason, XferRefuseReason};

/// Which TLS role the runtime takes when the session asks for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsRole {
    /// TLS client (the active side).
    Client,
    /// TLS server (the passive side).
    Server,
}

/// Something the session reports to its runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Both contact headers carried CAN_TLS: the runtime must start TLS now. Input was
    /// consumed exactly up to the end of the peer's contact header; everything after it
    /// belongs to TLS. Call [`Session::tls_established`](super::Session::tls_established)
    /// when the handshake succeeds and feed decrypted bytes from then on.
    StartTls {
        /// Our TLS role.
        role: TlsRole,
    },
    /// Both SESS_INITs were exchanged; transfers may start.
    SessionEstablished,
    /// The peer started a transfer (its START segment was accepted).
    /// [`Session::handle_input`](super::Session::handle_input) returns right after it,
    /// before the segment's data, so the transfer can still be refused.
    IncomingTransferStarted {
        /// The peer's transfer ID.
        transfer_id: u64,
        /// Total length from the Transfer Length extension, if present.
        total_len: Option<u64>,
    },
    /// An incoming transfer completed: its END segment was received, confirmed
    /// ([`Session::confirm_segment`](super::Session::confirm_segment)) and its
    /// XFER_ACK queued.
    IncomingTransferFinished {
        /// The peer's transfer ID.
        transfer_id: u64,
        /// Total bytes received.
        len: u64,
    },
    /// We refused an incoming transfer (XFER_REFUSE queued); data already delivered for
    /// it must be discarded.
    IncomingTransferRefused {
        /// The peer's transfer ID.
        transfer_id: u64,
        /// The reason sent.
        reason: XferRefuseReason,
    },
    /// The peer acknowledged data of one of our transfers.
    OutgoingAcked {
        /// Our transfer ID.
        transfer_id: u64,
        /// Cumulative bytes acknowledged.
        acked_len: u64,
        /// Whether the whole transfer is now acknowledged.
        finished: bool,
    },
    /// Every byte of one of our transfers was handed out for sending and the peer will
    /// not acknowledge it: a TCPCLv3 session without negotiated acknowledgments
    /// ([`v3::Session`](crate::tcpcl::v3::Session)). The transfer is over as far as
    /// the session can tell, but delivery is unconfirmed. v4 sessions never report
    /// this (every v4 transfer is acknowledged: [`Event::OutgoingAcked`]).
    OutgoingSent {
        /// Our transfer ID.
        transfer_id: u64,
        /// Bytes sent.
        len: u64,
    },
    /// The peer refused one of our transfers; stop sending it.
    OutgoingRefused {
        /// Our transfer ID.
        transfer_id: u64,
        /// The peer's reason.
        reason: XferRefuseReason,
    },
    /// A transfer we had started but not sent a segment of was dropped: the session is
    /// terminating (RFC 9174 §6.1: no new transfers in the Ending state), or the caller
    /// abandoned it ([`Session::abandon_transfer`](super::Session::abandon_transfer)).
    OutgoingCancelled {
        /// Our transfer ID.
        transfer_id: u64,
    },
    /// The peer rejected one of our messages.
    MessageRejected {
        /// The rejected message's type code.
        message_type: u8,
        /// The peer's reason.
        reason: MsgRejectReason,
    },
    /// A KEEPALIVE arrived.
    KeepaliveReceived,
    /// SESS_TERM was sent or received: the session is ending. In-progress transfers
    /// may complete, new ones are refused.
    Terminating {
        /// The reason code.
        reason: SessTermReason,
        /// Whether the peer sent the first SESS_TERM.
        by_peer: bool,
    },
    /// The session is over; close the transport. Always the last event.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a session closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// A SESS_TERM exchange completed and no transfer was left in progress.
    Terminated {
        /// The reason code of the exchange.
        reason: SessTermReason,
        /// Whether the peer initiated it.
        by_peer: bool,
    },
    /// The peer closed the transport without completing a SESS_TERM exchange.
    PeerClosed,
    /// The peer's contact header did not start with `dtn!` (closed without reply).
    BadMagic,
    /// The peer speaks another TCPCL version. A v4 passive side answers with its
    /// contact header and SESS_TERM Version Mismatch; a v4 active side closes without a
    /// reply (RFC 9174 §4.3). A v3 session answers with SHUTDOWN Version Mismatch
    /// after its contact header (RFC 7242 §4.2).
    VersionMismatch {
        /// The version byte the peer sent.
        version: u8,
    },
    /// Contact or SESS_INIT negotiation failed (answered with SESS_TERM Contact
    /// Failure).
    ContactFailure(ContactFailure),
    /// We require TLS and the peer did not offer it (SESS_TERM Contact Failure).
    TlsRequired,
    /// The contact header / TLS / SESS_INIT phase exceeded `contact_timeout`.
    ContactTimeout,
    /// The peer did not answer our SESS_TERM within `sess_term_timeout`.
    SessTermTimeout,
    /// The peer violated the protocol in a way that loses message framing.
    ProtocolError(ProtocolError),
    /// [`Session::close`](super::Session::close) was called.
    LocalClose,
}

/// What failed during SESS_INIT negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactFailure {
    /// The peer's node ID is not a URI.
    InvalidNodeId,
    /// The peer sent a critical session extension item we do not understand.
    CriticalExtension {
        /// Its item type.
        item_type: u16,
    },
    /// `require_node_authn` is set and the TLS certificate does not authenticate the
    /// peer's node ID (or TLS is not in use).
    NodeNotAuthenticated,
    /// The peer's SESS_INIT exceeds `max_sess_init_len`.
    SessInitTooLarge,
    /// The peer's SESS_INIT is malformed.
    MalformedSessInit,
}

/// A framing-level protocol violation by the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// An unknown message type (answered with MSG_REJECT, then closed: the message's
    /// length is unknown, so the stream cannot be parsed further).
    UnknownMessageType {
        /// The type code.
        message_type: u8,
    },
    /// A malformed message (answered with SESS_TERM, then closed).
    Malformed {
        /// The message type code.
        message_type: u8,
    },
    /// A message declared more bytes than we buffer (answered with SESS_TERM Resource
    /// Exhaustion, then closed).
    TooLarge {
        /// The message type code.
        message_type: u8,
    },
}

/// A sentence fragment for users and logs, e.g. `terminated by us: unknown (0)` or
/// `contact failure: the peer's node ID is not a URI`.
impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Terminated { reason, by_peer } => {
                let who = if *by_peer { "the peer" } else { "us" };
                write!(f, "terminated by {who}: {reason:#}")
            }
            CloseReason::PeerClosed => {
                f.write_str("the peer closed the connection without SESS_TERM")
            }
            CloseReason::BadMagic => {
                f.write_str("the peer is not a TCPCL node (no \"dtn!\" contact header)")
            }
            // Version 4 is refused only by a v3-only session, 3 (and any other) by a
            // v4-only one.
            CloseReason::VersionMismatch { version: 4 } => {
                f.write_str("the peer speaks TCPCL version 4, not 3")
            }
            CloseReason::VersionMismatch { version } => {
                write!(f, "the peer speaks TCPCL version {version}, not 4")
            }
            CloseReason::ContactFailure(c) => write!(f, "contact failure: {c}"),
            CloseReason::TlsRequired => {
                f.write_str("the peer does not offer TLS, which we require")
            }
            CloseReason::ContactTimeout => {
                f.write_str("timed out during session setup (contact header, TLS, SESS_INIT)")
            }
            CloseReason::SessTermTimeout => {
                f.write_str("timed out waiting for the peer's SESS_TERM reply")
            }
            CloseReason::ProtocolError(e) => write!(f, "protocol error: {e}"),
            CloseReason::LocalClose => f.write_str("closed locally"),
        }
    }
}

/// A sentence fragment, e.g. `the peer's SESS_INIT is malformed`.
impl fmt::Display for ContactFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContactFailure::InvalidNodeId => f.write_str("the peer's node ID is not a URI"),
            ContactFailure::CriticalExtension { item_type } => write!(
                f,
                "the peer requires session extension {item_type:#06x}, which we do not support"
            ),
            ContactFailure::NodeNotAuthenticated => f.write_str(
                "the peer's node ID is not authenticated by its TLS certificate \
                 (require_node_authn)",
            ),
            ContactFailure::SessInitTooLarge => f.write_str("the peer's SESS_INIT is too large"),
            ContactFailure::MalformedSessInit => f.write_str("the peer's SESS_INIT is malformed"),
        }
    }
}

/// A sentence fragment, e.g. `malformed SESS_TERM (type 0x05)`.
impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = |code: u8| MessageType::from_code(code).map_or("message", MessageType::name);
        match *self {
            ProtocolError::UnknownMessageType { message_type } => {
                write!(f, "unknown message type {message_type:#04x}")
            }
            ProtocolError::Malformed { message_type } => {
                write!(
                    f,
                    "malformed {} (type {message_type:#04x})",
                    kind(message_type)
                )
            }
            ProtocolError::TooLarge { message_type } => write!(
                f,
                "{} (type {message_type:#04x}) larger than we accept",
                kind(message_type)
            ),
        }
    }
}

/// The phase of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting for the peer's contact header.
    Contact,
    /// Waiting for the runtime's TLS handshake.
    TlsHandshake,
    /// Waiting for the peer's SESS_INIT.
    SessionInit,
    /// Transfers may run.
    Established,
    /// SESS_TERM sent or received; in-progress transfers finish.
    Ending,
    /// Writing the last queued control messages, then closed.
    Closing,
    /// Over.
    Closed,
}

/// The result of one [`Session::handle_input`](super::Session::handle_input) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input<'a> {
    /// Bytes of the input consumed. Call again with the rest; 0 means the session
    /// cannot take more now (drain `poll_transmit`/`poll_event`, finish TLS, confirm
    /// or refuse the segment just delivered, or the session is closed).
    pub consumed: usize,
    /// Transfer data found in the consumed bytes, if any (at most one piece per call).
    pub data: Option<RxData<'a>>,
}

/// A piece of incoming transfer data, borrowed from the caller's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxData<'a> {
    /// The peer's transfer ID.
    pub transfer_id: u64,
    /// The bytes (empty only for a zero-length segment).
    pub bytes: &'a [u8],
    /// Offset of `bytes[0]` within the transfer.
    pub offset: u64,
    /// Whether this piece completes a segment. Its XFER_ACK is then held, and input
    /// pauses, until the application has stored the data and calls
    /// [`Session::confirm_segment`](super::Session::confirm_segment), or refuses the
    /// transfer ([`Session::refuse_transfer`](super::Session::refuse_transfer)) if it
    /// could not (RFC 9174 §5.2.3: a segment is acknowledged once fully processed).
    pub end_of_segment: bool,
    /// Whether this is the last piece of the transfer (implies `end_of_segment`).
    pub end_of_transfer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What users read: sentences with reason names and codes, never `Debug` text.
    #[test]
    fn close_reasons_display_as_sentences() {
        let cases: &[(CloseReason, &str)] = &[
            (
                CloseReason::Terminated {
                    reason: SessTermReason::UNKNOWN,
                    by_peer: false,
                },
                "terminated by us: unknown (0)",
            ),
            (
                CloseReason::Terminated {
                    reason: SessTermReason(9),
                    by_peer: true,
                },
                "terminated by the peer: unassigned (9)",
            ),
            (
                CloseReason::ContactFailure(ContactFailure::CriticalExtension { item_type: 0x1234 }),
                "contact failure: the peer requires session extension 0x1234, which we do not support",
            ),
            (
                CloseReason::ProtocolError(ProtocolError::Malformed { message_type: 5 }),
                "protocol error: malformed SESS_TERM (type 0x05)",
            ),
            (
                CloseReason::ProtocolError(ProtocolError::TooLarge { message_type: 0x42 }),
                "protocol error: message (type 0x42) larger than we accept",
            ),
            (
                CloseReason::ProtocolError(ProtocolError::UnknownMessageType { message_type: 0x99 }),
                "protocol error: unknown message type 0x99",
            ),
            (
                CloseReason::VersionMismatch { version: 3 },
                "the peer speaks TCPCL version 3, not 4",
            ),
            (
                CloseReason::VersionMismatch { version: 4 },
                "the peer speaks TCPCL version 4, not 3",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), *text);
        }
        for reason in [
            CloseReason::PeerClosed,
            CloseReason::BadMagic,
            CloseReason::ContactFailure(ContactFailure::InvalidNodeId),
            CloseReason::ContactFailure(ContactFailure::NodeNotAuthenticated),
            CloseReason::ContactFailure(ContactFailure::SessInitTooLarge),
            CloseReason::ContactFailure(ContactFailure::MalformedSessInit),
            CloseReason::TlsRequired,
            CloseReason::ContactTimeout,
            CloseReason::SessTermTimeout,
            CloseReason::LocalClose,
        ] {
            let text = reason.to_string();
            assert!(
                !text.contains(&format!("{reason:?}")) && !text.contains('{'),
                "{text}"
            );
        }
    }
}
