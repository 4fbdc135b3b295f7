//! Session configuration, its validation, and the two error types of the session API
//! (bad configuration, caller misuse).

use std::time::Duration;

use crate::tcpcl::{ExtensionItems, SessInit};

/// Everything a [`Session`](super::Session) needs to know up front.
///
/// Tables and buffers are sized from these values in [`Session::new`](super::Session::new),
/// which validates them and never allocates again in steady state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our node ID, sent in SESS_INIT: a URI (`scheme ':' rest`, e.g. `dtn://node/`
    /// or `ipn:1.0`).
    pub node_id: String,
    /// Keepalive interval we offer, in seconds; 0 disables keepalives. The session uses
    /// the minimum of both peers' values (0 if either is 0).
    pub keepalive_interval: u16,
    /// Largest XFER_SEGMENT data we accept (our Segment MRU).
    pub segment_mru: u64,
    /// Largest transfer (bundle) we accept (our Transfer MRU).
    pub transfer_mru: u64,
    /// Initial (and, without adaptive sizing, fixed) segment size we send; the peer's
    /// Segment MRU and `tx_segment_max` still bound it.
    pub tx_segment_size: u64,
    /// Cap on the data of every segment we send, whatever the peer's Segment MRU
    /// allows; it also bounds adaptive growth. `u64::MAX`: no cap of our own.
    pub tx_segment_max: u64,
    /// With `Some(target)`, the send segment size adapts so each segment is
    /// acknowledged in about `target`: it doubles while acks come back in under half
    /// the target and halves when they take longer than the target, staying between
    /// [`MIN_ADAPTIVE_SEGMENT`] (or the upper bound, if smaller) and the smaller of the
    /// peer's Segment MRU and `tx_segment_max`.
    pub modulate_target_ack_time: Option<Duration>,
    /// We can do TLS (CAN_TLS in our contact header).
    pub can_tls: bool,
    /// Refuse a session unless TLS is negotiated (requires `can_tls`).
    pub require_tls: bool,
    /// Require the peer's SESS_INIT node ID to be one the TLS certificate
    /// authenticates (see [`Session::tls_established`](super::Session::tls_established)).
    pub require_node_authn: bool,
    /// Bound on session establishment: from construction until both SESS_INITs have
    /// been exchanged (contact headers, TLS handshake and SESS_INIT wait included).
    pub contact_timeout: Duration,
    /// How long to wait for the peer's SESS_TERM reply after sending ours, and how long
    /// a side that is finished waits for the transport to close (or for its queued
    /// control messages to be written) before it gives up.
    pub sess_term_timeout: Duration,
    /// End an established session (SESS_TERM, reason Idle Timeout) after this long
    /// without transfer activity; `None` keeps idle sessions open.
    pub idle_timeout: Option<Duration>,
    /// Incoming transfers tracked at once (RFC 9174 senders do not interleave, so 1
    /// suffices for a conforming peer; more tolerates interleaving peers).
    pub max_incoming_transfers: usize,
    /// Outgoing transfers tracked at once (started and not yet fully acknowledged).
    pub max_outgoing_transfers: usize,
    /// Sent segments awaiting XFER_ACK; also bounds the XFER_ACKs we queue before
    /// input processing pauses for [`Session::poll_transmit`](super::Session::poll_transmit).
    pub max_pending_acks: usize,
    /// Encoded session extension items to send in our SESS_INIT (validated at
    /// construction).
    pub session_extensions: Vec<u8>,
    /// Largest peer SESS_INIT (and transfer extension block) we buffer; a larger one
    /// terminates the session with Contact Failure.
    pub max_sess_init_len: usize,
}

/// Smallest segment size the adaptive sizing shrinks to.
pub const MIN_ADAPTIVE_SEGMENT: u64 = 1024;

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            node_id: "dtn://localhost/".to_owned(),
            keepalive_interval: 0,
            segment_mru: 10_485_760,
            transfer_mru: 1 << 32,
            tx_segment_size: 104_857,
            tx_segment_max: u64::MAX,
            modulate_target_ack_time: None,
            can_tls: false,
            require_tls: false,
            require_node_authn: false,
            contact_timeout: Duration::from_secs(30),
            sess_term_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_incoming_transfers: 4,
            max_outgoing_transfers: 16,
            max_pending_acks: 256,
            session_extensions: Vec::new(),
            max_sess_init_len: 4096,
        }
    }
}

/// Why a [`SessionConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The node ID is not a URI.
    #[error("node ID {0:?} is not a URI (scheme ':' rest)")]
    InvalidNodeId(String),
    /// Our node ID or session extension block is too long for its SESS_INIT length field.
    #[error("our SESS_INIT ({len} bytes) has a node ID or extension block too long for its length field")]
    SessInitTooLarge {
        /// Encoded length of our SESS_INIT.
        len: usize,
    },
    /// `session_extensions` is not a well-formed extension item block.
    #[error("session extension items are malformed: {0}")]
    BadExtensions(crate::tcpcl::DecodeError),
    /// A `session_extensions` item has flag bits set that RFC 9174 §4.8 reserves
    /// (only CRITICAL is defined): they SHALL be sent as 0, so such a block is refused
    /// rather than sent verbatim or silently altered.
    #[error("session extension item of type {item_type} has reserved flag bits {flags:#04x} set (RFC 9174 §4.8: only CRITICAL, 0x01, may be set)")]
    ReservedExtensionFlags {
        /// The item's type code.
        item_type: u16,
        /// The item's flags octet as given.
        flags: u8,
    },
    /// `require_tls` without `can_tls`.
    #[error("require_tls needs can_tls")]
    TlsRequiredButDisabled,
    /// A size that must be positive is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

/// Caller misuse of the session API. The session state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The session is not established (or already closed).
    #[error("session is not established")]
    NotEstablished,
    /// SESS_TERM was sent or received: no new transfers may begin.
    #[error("session is terminating")]
    SessionTerminating,
    /// The session is closed.
    #[error("session is closed")]
    Closed,
    /// The transfer ID is not an active transfer of this session.
    #[error("unknown transfer {0}")]
    UnknownTransfer(u64),
    /// The outgoing transfer table is full.
    #[error("too many outgoing transfers in progress")]
    TooManyTransfers,
    /// All 2^64 transfer IDs have been used. Unlike other usage errors this changes the
    /// session: it is now terminating with SESS_TERM Resource Exhaustion (RFC 9174
    /// §5.2.1).
    #[error("transfer IDs exhausted")]
    TransferIdsExhausted,
    /// The transfer is (or its data grew) larger than the peer's Transfer MRU.
    #[error("transfer of {len} bytes exceeds the peer's transfer MRU {mru}")]
    TransferTooLarge {
        /// Bytes the transfer would have.
        len: u64,
        /// The peer's Transfer MRU.
        mru: u64,
    },
    /// The peer's Segment MRU is 0, so it cannot receive any data.
    #[error("peer segment MRU is 0: it accepts no transfers")]
    PeerAcceptsNoData,
    /// The caller's data disagrees with the transfer's announced total length: the
    /// source ended short of it, or has more bytes than it.
    #[error("the data ({yielded} bytes) disagrees with the announced length of {announced} bytes")]
    LengthMismatch {
        /// The total length given to [`Session::start_transfer`](super::Session::start_transfer).
        announced: u64,
        /// Bytes the source yielded: sent so far plus those it offered now (when it
        /// has more than announced, at least this many).
        yielded: u64,
    },
    /// The outgoing transfer has sent a segment already, so it cannot be abandoned.
    #[error("transfer {0} has started")]
    TransferStarted(u64),
    /// The call does not apply in the current state.
    #[error("not possible in the current state")]
    WrongState,
    /// No segment of this transfer awaits
    /// [`confirm_segment`](super::Session::confirm_segment).
    #[error("no segment of transfer {0} awaits confirmation")]
    NothingToConfirm(u64),
}

/// Whether `s` looks like a URI: `scheme ':' rest` with an RFC 3986 scheme and a
/// non-empty rest without whitespace or control characters.
pub fn is_valid_node_id(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl SessionConfig {
    /// Checks the configuration; returns the encoded length of our SESS_INIT.
    pub(crate) fn validate(&self) -> Result<usize, ConfigError> {
        if !is_valid_node_id(&self.node_id) {
            return Err(ConfigError::InvalidNodeId(self.node_id.clone()));
        }
        if self.require_tls && !self.can_tls {
            return Err(ConfigError::TlsRequiredButDisabled);
        }
        for (v, name) in [
            (self.max_incoming_transfers, "max_incoming_transfers"),
            (self.max_outgoing_transfers, "max_outgoing_transfers"),
            (self.max_pending_acks, "max_pending_acks"),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        for (v, name) in [
            (self.tx_segment_size, "tx_segment_size"),
            (self.tx_segment_max, "tx_segment_max"),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        let ext = ExtensionItems::parse(&self.session_extensions, 0)
            .map_err(ConfigError::BadExtensions)?;
        if let Some(item) = ext.iter().find(|i| i.flags.reserved_bits() != 0) {
            return Err(ConfigError::ReservedExtensionFlags {
                item_type: item.item_type,
                flags: item.flags.0,
            });
        }
        let init = SessInit {
            keepalive: self.keepalive_interval,
            segment_mru: self.segment_mru,
            transfer_mru: self.transfer_mru,
            node_id: &self.node_id,
            extensions: ext,
        };
        let len = init.encoded_len();
        if self.node_id.len() > usize::from(u16::MAX) || u32::try_from(ext.encoded_len()).is_err() {
            return Err(ConfigError::SessInitTooLarge { len });
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_validation() {
        for ok in ["dtn://node/", "ipn:1.0", "dtn:none", "x-y.z+1:a"] {
            assert!(is_valid_node_id(ok), "{ok}");
        }
        for bad in [
            "",
            "dtn",
            ":x",
            "1dtn:x",
            "dtn:",
            "dtn://a b/",
            "d_n:x",
            "dtn:\n",
        ] {
            assert!(!is_valid_node_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn config_validation() {
        assert!(SessionConfig::default().validate().is_ok());
        let c = SessionConfig {
            require_tls: true,
            ..SessionConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::TlsRequiredButDisabled));
        let c = SessionConfig {
            node_id: "nope".into(),
            ..SessionConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::InvalidNodeId(_))));
        let c = SessionConfig {
            session_extensions: vec![1, 0],
            ..SessionConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::BadExtensions(_))));
        // RFC 9174 §4.8: reserved item flag bits are sent as 0; a caller's block with
        // any of them set is refused (each reserved bit, and one next to CRITICAL).
        for (flags, ok) in [
            (0x00, true),
            (0x01, true),
            (0x02, false),
            (0x81, false),
            (0xfe, false),
        ] {
            let c = SessionConfig {
                session_extensions: vec![
                    0x00, 0x00, 0x07, 0x00, 0x01, 0xaa, flags, 0x12, 0x34, 0x00, 0x00,
                ],
                ..SessionConfig::default()
            };
            let r = c.validate();
            if ok {
                assert!(r.is_ok(), "{flags:#x}: {r:?}");
            } else {
                assert_eq!(
                    r,
                    Err(ConfigError::ReservedExtensionFlags {
                        item_type: 0x1234,
                        flags
                    }),
                    "{flags:#x}"
                );
            }
        }
        let c = SessionConfig {
            max_pending_acks: 0,
            ..SessionConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Zero("max_pending_acks")));
        let c = SessionConfig {
            tx_segment_max: 0,
            ..SessionConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Zero("tx_segment_max")));
    }
}
