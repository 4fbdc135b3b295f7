//! Errors of the blocking COTP API.

use proto_core::cotp::connection::{ConfigError, ProtocolError, Timer, UsageError};
use proto_core::cotp::{DisconnectReason, RejectCause, TsapError};
use std::io;

/// Why a COTP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed. Displays as the I/O error itself (and is not its own
    /// source), so an error chain names the OS cause once.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The peer answered the CR with a DR.
    #[error("connection refused by peer: {reason}")]
    Refused {
        /// The peer's disconnect reason.
        reason: DisconnectReason,
    },
    /// The peer sent an ER.
    #[error("peer reported a TPDU error: {cause}")]
    PeerError {
        /// The peer's reject cause.
        cause: RejectCause,
    },
    /// The peer disconnected with a DR.
    #[error("peer disconnected: {reason}")]
    Disconnected {
        /// The peer's disconnect reason.
        reason: DisconnectReason,
    },
    /// We refused the peer's CR with a DR (TSAP policy, negotiation).
    #[error("connection refused locally: {reason}")]
    LocalRefused {
        /// The reason sent in our DR.
        reason: DisconnectReason,
    },
    /// The peer violated the protocol (an ER or DR was sent to it).
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// The connection is closed (the transport ended or `close` was called).
    #[error("connection closed")]
    Closed,
    /// An operation or protocol timer ran out.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The configuration cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// `recv_data` stopped: 64 expedited data units are waiting for
    /// [`Connection::recv`](super::Connection::recv). Nothing is lost; the message in
    /// progress is kept.
    #[error("expedited data is waiting to be received (call recv)")]
    ExpeditedBacklog,
    /// The call is not allowed now.
    #[error("{0}")]
    Usage(#[from] UsageError),
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e.to_string())
    }
}

impl From<TsapError> for Error {
    fn from(e: TsapError) -> Self {
        Error::Config(e.to_string())
    }
}

impl From<proto_core::EncodeError> for Error {
    fn from(e: proto_core::EncodeError) -> Self {
        Error::Config(e.to_string())
    }
}

impl Error {
    pub(crate) fn from_close(reason: proto_core::cotp::connection::CloseReason) -> Error {
        use proto_core::cotp::connection::CloseReason as C;
        match reason {
            C::PeerRefused { reason } => Error::Refused { reason },
            C::PeerDisconnect { reason } => Error::Disconnected { reason },
            C::PeerError { cause } => Error::PeerError { cause },
            C::ProtocolError(e) => Error::Protocol(e),
            C::TimedOut(Timer::Connect) => Error::Timeout("connection establishment"),
            C::TimedOut(Timer::Inactivity) => Error::Timeout("inactivity"),
            C::LocalRefused { reason } => Error::LocalRefused { reason },
            C::LocalDisconnect { .. } | C::DisconnectConfirmed | C::TransportClosed => {
                Error::Closed
            }
        }
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
