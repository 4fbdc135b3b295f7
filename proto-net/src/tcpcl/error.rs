//! Errors of the TCPCL agent API.

use std::io;

use proto_core::tcpcl::{ConfigError as CoreConfigError, UsageError};

/// Why an agent or session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket or file operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The configuration cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The session is closed (or closed while the operation waited).
    #[error("session closed")]
    SessionClosed,
    /// The session is terminating (SESS_TERM sent or received, or a graceful shutdown
    /// is draining it): no new transfers.
    #[error("session is terminating")]
    Terminating,
    /// The agent is stopped or shutting down.
    #[error("agent is stopped")]
    Stopped,
    /// The core refused the call.
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// A transfer is larger than the peer's Transfer MRU.
    #[error("transfer of {len} bytes exceeds the peer's transfer MRU {mru}")]
    TooLarge {
        /// Length of the bundle.
        len: u64,
        /// The peer's Transfer MRU.
        mru: u64,
    },
    /// An operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// No listener is bound to that address.
    #[error("not listening on {0}")]
    NotListening(std::net::SocketAddr),
    /// The agent already has `max_sessions` sessions.
    #[error("session limit reached")]
    TooManySessions,
}

impl From<CoreConfigError> for Error {
    fn from(e: CoreConfigError) -> Self {
        Error::Config(e.to_string())
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
