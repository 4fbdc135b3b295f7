//! What a session reports: [`Event`]s, the terminal [`CloseReason`], the [`State`]
//! and the data a peer sent ([`Input`], [`RxData`]).
//!
//! Events are small and `Copy`; variable-length facts (the peer's node ID) are read
//! through getters on [`Session`](super::Session).

use crate::tcpcl::{MsgRejectReason, SessTermReason, XferRefuseReason};

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
    /// The peer speaks another TCPCL version. A passive side answers with its contact
    /// header and SESS_TERM Version Mismatch; an active side closes without a reply
    /// (RFC 9174 §4.3).
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
