//! What the agent reports on its event channel ([`Agent::events`](super::Agent::events)),
//! and the identifiers and parameter records those events carry.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use proto_core::tcpcl::{SessTermReason, Side, State, XferRefuseReason};

use super::close::CloseReason;
use super::tls_glue::TlsInfo;

/// Identifies a session within its agent (the seed's contact object path).
///
/// Displayed and parsed as `session/N`; plain `N` parses too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session/{}", self.0)
    }
}

impl FromStr for SessionId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().trim_start_matches("session/");
        n.parse().map(SessionId)
    }
}

/// Direction of a transfer as seen from this agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer sends, we receive.
    Incoming,
    /// We send, the peer receives.
    Outgoing,
}

/// Session parameters after SESS_INIT negotiation (the seed's
/// `get_session_parameters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// Our side of the connection.
    pub side: Side,
    /// The TCPCL version of the session: 4 (RFC 9174) or 3 (RFC 7242).
    pub version: u8,
    /// The peer's node ID from its SESS_INIT (v4), or the EID from its contact
    /// header (v3: never authenticated, RFC 7242 has no means to).
    pub peer_node_id: String,
    /// What the v3 contact headers negotiated (acknowledgments, refusal, LENGTH,
    /// reactive fragmentation); `None` for v4 sessions.
    pub v3: Option<proto_core::tcpcl::v3::Negotiated>,
    /// Negotiated keepalive interval, seconds (0: none).
    pub keepalive: u16,
    /// Largest segment the peer accepts (v3 has no such limit: `u64::MAX`).
    pub peer_segment_mru: u64,
    /// Largest transfer the peer accepts (v3 has no such limit: `u64::MAX`).
    pub peer_transfer_mru: u64,
    /// Our Segment MRU.
    pub local_segment_mru: u64,
    /// Our Transfer MRU.
    pub local_transfer_mru: u64,
    /// Whether TLS is in use.
    pub tls: bool,
    /// The peer's socket address.
    pub peer_addr: SocketAddr,
    /// Our socket address.
    pub local_addr: SocketAddr,
}

/// A received bundle as delivered by [`Event::BundleReceived`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceivedBundle {
    /// Collected in memory.
    Bytes(Vec<u8>),
    /// Streamed to this file.
    File(PathBuf),
    /// Streamed into a writer the sink chooser supplied.
    Writer,
}

/// Something that happened in the agent.
#[derive(Debug, Clone)]
pub enum Event {
    /// A session's TCP connection is up (the seed's `connection_opened`).
    SessionOpened {
        /// The session.
        session: SessionId,
        /// The peer's address.
        peer: SocketAddr,
        /// Our side.
        side: Side,
    },
    /// A session changed state (the seed's `session_state_changed`).
    SessionStateChanged {
        /// The session.
        session: SessionId,
        /// The new state.
        state: State,
    },
    /// TLS is up; identities checked (per-identity results in `info`).
    TlsEstablished {
        /// The session.
        session: SessionId,
        /// Protocol version, cipher suite and authentication results.
        info: TlsInfo,
    },
    /// SESS_INIT negotiation finished; transfers may start.
    SessionEstablished {
        /// The session.
        session: SessionId,
        /// Negotiated parameters.
        params: SessionParams,
    },
    /// SESS_TERM was sent or received; in-progress transfers finish.
    SessionTerminating {
        /// The session.
        session: SessionId,
        /// The SESS_TERM reason.
        reason: SessTermReason,
        /// Whether the peer sent it first.
        by_peer: bool,
    },
    /// A session is over (the seed's `connection_closed`).
    SessionClosed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// A transfer started (first segment sent, or the peer's START segment accepted).
    TransferStarted {
        /// The session.
        session: SessionId,
        /// Which way.
        direction: Direction,
        /// The transfer ID (ours for outgoing, the peer's for incoming).
        transfer_id: u64,
        /// Total length if known.
        total_len: Option<u64>,
    },
    /// Progress: bytes acknowledged (outgoing) or received (incoming), before the
    /// transfer completes (its completion is [`Event::TransferFinished`]). Progress
    /// events are dropped, never waited for, when the event channel is full.
    TransferProgress {
        /// The session.
        session: SessionId,
        /// Which way.
        direction: Direction,
        /// The transfer ID.
        transfer_id: u64,
        /// Bytes so far.
        bytes: u64,
    },
    /// A transfer completed: fully acknowledged (outgoing) or fully received
    /// (incoming, followed by [`Event::BundleReceived`]).
    TransferFinished {
        /// The session.
        session: SessionId,
        /// Which way.
        direction: Direction,
        /// The transfer ID.
        transfer_id: u64,
        /// Total bytes.
        len: u64,
    },
    /// Every byte of an outgoing transfer was handed to the transport, and the peer
    /// will not acknowledge it: a TCPCLv3 session whose peer did not ask for
    /// acknowledgments. The transfer is over, but its delivery is unconfirmed
    /// (compare [`Event::TransferFinished`]).
    TransferSent {
        /// The session.
        session: SessionId,
        /// The transfer ID.
        transfer_id: u64,
        /// Total bytes.
        len: u64,
    },
    /// A transfer was refused (XFER_REFUSE sent or received).
    TransferRefused {
        /// The session.
        session: SessionId,
        /// Which way.
        direction: Direction,
        /// The transfer ID.
        transfer_id: u64,
        /// The refusal reason.
        reason: XferRefuseReason,
    },
    /// A transfer was abandoned: the session ended (or began terminating) before it
    /// could complete, or its source or sink failed.
    TransferCancelled {
        /// The session.
        session: SessionId,
        /// Which way.
        direction: Direction,
        /// The transfer ID.
        transfer_id: u64,
    },
    /// A whole bundle arrived (the seed's `recv_bundle_finished`).
    BundleReceived {
        /// The session.
        session: SessionId,
        /// The peer's transfer ID.
        transfer_id: u64,
        /// Its length.
        len: u64,
        /// Where it is.
        bundle: ReceivedBundle,
    },
    /// The agent stopped.
    AgentStopped,
}

impl Event {
    /// The session the event is about, if any.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Event::SessionOpened { session, .. }
            | Event::SessionStateChanged { session, .. }
            | Event::TlsEstablished { session, .. }
            | Event::SessionEstablished { session, .. }
            | Event::SessionTerminating { session, .. }
            | Event::SessionClosed { session, .. }
            | Event::TransferStarted { session, .. }
            | Event::TransferProgress { session, .. }
            | Event::TransferFinished { session, .. }
            | Event::TransferSent { session, .. }
            | Event::TransferRefused { session, .. }
            | Event::TransferCancelled { session, .. }
            | Event::BundleReceived { session, .. } => Some(*session),
            Event::AgentStopped => None,
        }
    }
}
