//! Errors of the TCPCL agent API.

use std::io;
use std::path::PathBuf;

use proto_core::tcpcl::{ConfigError as CoreConfigError, UsageError};

use super::tls::TlsError;

/// Why an agent or session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket or file operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The configuration cannot be used.
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
    /// The peer's address could not be resolved (DNS failure, or a name with no
    /// address).
    #[error("cannot resolve the address: {0}")]
    Resolve(io::Error),
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
    /// A TCPCLv3 peer ended its last session with a SHUTDOWN reconnection delay
    /// (RFC 7242 §6.1) that has not passed yet: `connect` honours it.
    #[error("{peer} asked not to be reconnected to for another {} s (TCPCLv3 SHUTDOWN reconnection delay)", remaining.as_secs().max(1))]
    ReconnectDelay {
        /// The peer.
        peer: std::net::SocketAddr,
        /// Time left until a connect is allowed.
        remaining: std::time::Duration,
    },
}

/// What is wrong with a configuration; each variant names the key or part at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key has a value that cannot be used.
    #[error("{key}: {reason}")]
    InvalidValue {
        /// The key (the seed's option name).
        key: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The YAML text does not parse, or a key is unknown or has the wrong type. The
    /// message names the key and position.
    #[error("{message}")]
    Yaml {
        /// The parser's message.
        message: String,
        /// Line of the error (1-based), when known.
        line: Option<usize>,
        /// Column of the error (1-based), when known.
        column: Option<usize>,
    },
    /// A configuration file is invalid.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        error: Box<ConfigError>,
    },
    /// `require_tls` is set, but TLS is not available (`tls_enable`, a CA and
    /// credentials).
    #[error("require_tls is set but TLS is not available (tls_enable and credentials)")]
    TlsRequiredButUnavailable,
    /// A setting asks for something TCPCLv3 (RFC 7242) cannot do — TLS
    /// (`require_tls`), node authentication (`require_node_authn`) — while v3 is the
    /// version to connect with (`tcpcl_version: 3`) or the only one accepted
    /// (`accept_tcpcl_version: 3`).
    #[error("{setting} cannot be honoured with TCPCL version 3 (RFC 7242 has no TLS or node authentication)")]
    NotInTcpclV3 {
        /// The key asking for it.
        setting: &'static str,
    },
    /// The TLS settings (`tls_*` keys) cannot be used.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The session settings are refused by the protocol core (node ID syntax,
    /// sizes).
    #[error("{0}")]
    Core(#[from] CoreConfigError),
}

impl From<CoreConfigError> for Error {
    fn from(e: CoreConfigError) -> Self {
        Error::Config(ConfigError::Core(e))
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
