//! What a v3 [`Session`](super::Session) needs to know up front, and its validation.

use std::time::Duration;

use crate::tcpcl::session::ConfigError;
use crate::tcpcl::{SessionConfig as V4Config, V3ContactFlags};

/// Configuration of a TCPCLv3 session.
///
/// Runtimes that already hold a v4 [`SessionConfig`](crate::tcpcl::SessionConfig)
/// derive this one with [`SessionConfig::from_v4`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our endpoint ID, sent in the contact header ("local EID", RFC 7242 §4.1).
    pub local_eid: String,
    /// Keepalive interval we offer, in seconds; 0 disables keepalives (the session uses
    /// the minimum of both headers, §4.2).
    pub keepalive_interval: u16,
    /// Request acknowledgment of bundle segments (contact flag 0x01).
    pub request_acks: bool,
    /// Allow bundle refusal (contact flag 0x04; needs `request_acks`, §4.1).
    pub allow_refusal: bool,
    /// Request LENGTH messages from the peer (contact flag 0x08).
    pub request_length: bool,
    /// Largest bundle we accept; a larger one is refused (No Resources) when refusal
    /// was negotiated, else the session ends.
    pub transfer_mru: u64,
    /// Data per DATA_SEGMENT we send (v3 has no segment MRU; the peer takes any size).
    pub tx_segment_size: u64,
    /// Bound on waiting for the peer's contact header.
    pub contact_timeout: Duration,
    /// Bound on ending: after [`Session::terminate`](super::Session::terminate), on
    /// the transfers in progress finishing, and after SHUTDOWN on the acknowledgments
    /// still owed; also how long a closing session may take to write its last
    /// messages.
    pub sess_term_timeout: Duration,
    /// SHUTDOWN (Idle timeout) after this long without bundle data (§6.2); `None`
    /// keeps idle sessions open.
    pub idle_timeout: Option<Duration>,
    /// Outgoing bundles tracked at once (started and not yet done).
    pub max_outgoing_transfers: usize,
    /// Sent segments awaiting ACK_SEGMENT; also bounds the acks queued before input
    /// pauses for [`Session::poll_transmit`](super::Session::poll_transmit).
    pub max_pending_acks: usize,
    /// Longest peer EID we accept in its contact header; a longer one ends the
    /// session before any of it is buffered.
    pub max_eid_len: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig::from_v4(&V4Config::default())
    }
}

impl SessionConfig {
    /// The v3 configuration matching a v4 one: same EID (node ID), keepalive, Transfer
    /// MRU (as the largest bundle accepted), segment size, timeouts and table sizes;
    /// acknowledgments, refusal and LENGTH requested. TLS and extension settings have
    /// no v3 counterpart and are ignored here (runtimes refuse them for v3 sessions).
    pub fn from_v4(c: &V4Config) -> Self {
        SessionConfig {
            local_eid: c.node_id.clone(),
            keepalive_interval: c.keepalive_interval,
            request_acks: true,
            allow_refusal: true,
            request_length: true,
            transfer_mru: c.transfer_mru,
            tx_segment_size: c.tx_segment_size.min(c.tx_segment_max),
            contact_timeout: c.contact_timeout,
            sess_term_timeout: c.sess_term_timeout,
            idle_timeout: c.idle_timeout,
            max_outgoing_transfers: c.max_outgoing_transfers,
            max_pending_acks: c.max_pending_acks,
            max_eid_len: c.max_sess_init_len,
        }
    }

    /// The flags of our contact header.
    pub fn contact_flags(&self) -> V3ContactFlags {
        let mut f = V3ContactFlags::EMPTY;
        if self.request_acks {
            f = f | V3ContactFlags::ENA_ACK;
            // §4.1: the refusal flag only together with the acknowledgment flag.
            if self.allow_refusal {
                f = f | V3ContactFlags::ENA_REFUSE;
            }
        }
        if self.request_length {
            f = f | V3ContactFlags::ENA_LENGTH;
        }
        f
    }

    /// Checks the configuration.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        // A v3 EID is any string (§4.1), but a URI is what every peer expects.
        if !crate::tcpcl::session::is_valid_node_id(&self.local_eid) {
            return Err(ConfigError::InvalidNodeId(self.local_eid.clone()));
        }
        for (v, name) in [
            (self.max_outgoing_transfers, "max_outgoing_transfers"),
            (self.max_pending_acks, "max_pending_acks"),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.tx_segment_size == 0 {
            return Err(ConfigError::Zero("tx_segment_size"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpcl3_config_flags_and_validation() {
        let c = SessionConfig::default();
        assert_eq!(c.contact_flags(), V3ContactFlags(0x0d));
        assert!(c.validate().is_ok());
        // Refusal is never offered without acks.
        let c = SessionConfig {
            request_acks: false,
            ..SessionConfig::default()
        };
        assert_eq!(c.contact_flags(), V3ContactFlags::ENA_LENGTH);
        let c = SessionConfig {
            request_length: false,
            allow_refusal: false,
            ..SessionConfig::default()
        };
        assert_eq!(c.contact_flags(), V3ContactFlags::ENA_ACK);
        let c = SessionConfig {
            local_eid: "no uri".into(),
            ..SessionConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::InvalidNodeId(_))));
        let c = SessionConfig {
            tx_segment_size: 0,
            ..SessionConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Zero("tx_segment_size")));
    }
}
