//! What a COTP connection reports to its owner.

use crate::cotp::{DisconnectReason, FrameError, RejectCause, TpduKind};

/// Events, drained with [`Connection::poll_event`](super::Connection::poll_event).
/// Small and `Copy`; variable data (the last TPDU, negotiated values) comes from
/// getters on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A TPDU other than DT arrived; [`last_tpdu`](super::Connection::last_tpdu) decodes
    /// it until the next input call. This is the raw access the seed API's
    /// `receive_tpdu` offers.
    TpduReceived {
        /// Its type.
        kind: TpduKind,
    },
    /// Passive side with `manual_accept`: a CR arrived; answer with
    /// [`accept`](super::Connection::accept) or [`refuse`](super::Connection::refuse).
    ConnectRequested,
    /// The connection is established (CC received, or CC queued by the passive side).
    Connected,
    /// An RFC 1006 expedited data TPDU (ED) arrived on a connection that negotiated
    /// it. It is not part of any message: it may overtake data sent before it.
    Expedited(ExpeditedBytes),
    /// The peer violated the protocol; an ER or DR has been queued where the standard
    /// prescribes one. A [`Event::Closed`] follows.
    ProtocolError(ProtocolError),
    /// The connection is over. Terminal: the runtime closes the transport once
    /// [`poll_transmit`](super::Connection::poll_transmit) returns nothing more.
    Closed(CloseReason),
}

/// The user data of one received ED (1 to 16 octets), held inline so the event stays
/// small and `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ExpeditedBytes {
    bytes: [u8; crate::cotp::expedited::MAX_ED_DATA],
    len: u8,
}

impl ExpeditedBytes {
    /// Copies `data`; `None` if it is longer than 16 octets.
    pub fn new(data: &[u8]) -> Option<Self> {
        let mut bytes = [0; crate::cotp::expedited::MAX_ED_DATA];
        bytes.get_mut(..data.len())?.copy_from_slice(data);
        Some(ExpeditedBytes {
            bytes,
            len: data.len() as u8,
        })
    }

    /// The octets.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for ExpeditedBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ExpeditedBytes({:02x?})", self.as_slice())
    }
}

/// A protocol violation by the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// A TPKT or TPDU that cannot be decoded (offsets count from the frame start).
    Malformed(FrameError),
    /// A TPDU that is valid but not allowed in the current state or in class 0.
    UnexpectedTpdu {
        /// Its type.
        kind: TpduKind,
    },
    /// The CC selected a class other than 0.
    ClassNotSupported {
        /// The class selected.
        class: u8,
    },
    /// A reassembled message would exceed the configured maximum.
    MessageTooLarge {
        /// The configured maximum.
        limit: usize,
    },
    /// A non-DT TPDU larger than the configured control-TPDU maximum.
    ControlTpduTooLarge {
        /// Its length.
        len: usize,
    },
    /// The transport ended in the middle of a TPKT frame or of a message (DTs without
    /// the final EOT): the partial message is lost.
    Truncated,
    /// A negotiated ED that breaks RFC 1006's rules: not 1 to 16 octets, or not the
    /// class 0 form.
    InvalidExpedited(crate::cotp::expedited::EdError),
}

impl core::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProtocolError::Malformed(e) => write!(f, "malformed input: {e}"),
            ProtocolError::UnexpectedTpdu { kind } => write!(f, "unexpected {kind} TPDU"),
            ProtocolError::ClassNotSupported { class } => {
                write!(
                    f,
                    "the peer selected class {class}; only class 0 is supported"
                )
            }
            ProtocolError::MessageTooLarge { limit } => {
                write!(f, "message larger than the {limit}-byte limit")
            }
            ProtocolError::ControlTpduTooLarge { len } => {
                write!(f, "{len}-byte control TPDU exceeds the buffer")
            }
            ProtocolError::Truncated => {
                f.write_str("the transport ended inside a frame or message")
            }
            ProtocolError::InvalidExpedited(e) => write!(f, "invalid expedited data: {e}"),
        }
    }
}

/// Timers that can end a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Connection establishment took too long.
    Connect,
    /// Nothing was received for the inactivity period.
    Inactivity,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// We disconnected with a DR (normal release or [`close`](super::Connection::close)).
    LocalDisconnect {
        /// The reason we sent.
        reason: DisconnectReason,
    },
    /// The peer disconnected with a DR after the connection was established.
    PeerDisconnect {
        /// The peer's reason.
        reason: DisconnectReason,
    },
    /// The peer answered our CR with a DR.
    PeerRefused {
        /// The peer's reason.
        reason: DisconnectReason,
    },
    /// We answered the peer's CR with a DR.
    LocalRefused {
        /// The reason we sent.
        reason: DisconnectReason,
    },
    /// The peer sent an ER.
    PeerError {
        /// The peer's reject cause.
        cause: RejectCause,
    },
    /// The peer confirmed a disconnection with a DC.
    DisconnectConfirmed,
    /// The transport closed; while connected this is the normal class 0 release.
    TransportClosed,
    /// The peer violated the protocol.
    ProtocolError(ProtocolError),
    /// A timer expired.
    TimedOut(Timer),
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CloseReason::LocalDisconnect { reason } => write!(f, "disconnected locally: {reason}"),
            CloseReason::PeerDisconnect { reason } => write!(f, "peer disconnected: {reason}"),
            CloseReason::PeerRefused { reason } => {
                write!(f, "connection refused by peer: {reason}")
            }
            CloseReason::LocalRefused { reason } => write!(f, "connection refused: {reason}"),
            CloseReason::PeerError { cause } => write!(f, "peer reported a TPDU error: {cause}"),
            CloseReason::DisconnectConfirmed => f.write_str("disconnect confirmed by peer"),
            CloseReason::TransportClosed => f.write_str("transport closed"),
            CloseReason::ProtocolError(e) => write!(f, "protocol error: {e}"),
            CloseReason::TimedOut(Timer::Connect) => {
                f.write_str("timed out waiting for the connection")
            }
            CloseReason::TimedOut(Timer::Inactivity) => f.write_str("inactivity timeout"),
        }
    }
}
