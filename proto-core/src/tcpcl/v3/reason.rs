//! Reason codes of REFUSE_BUNDLE and SHUTDOWN (RFC 7242 §5.4, §6.1; registries in
//! §8.4, §8.5), and how they map onto the v4 codes that session events carry.
//!
//! Like the v4 codes they are newtypes over the raw value, so an unassigned code a
//! peer sends is kept and shown, never a decode error.

use crate::tcpcl::reason::reason_code;
use crate::tcpcl::{SessTermReason, XferRefuseReason};

reason_code! {
    /// Why a bundle is refused (REFUSE_BUNDLE, RFC 7242 §5.4). Only the four low-order
    /// bits of the message header carry it, so values are 0..=15.
    RefuseReason {
        /// Reason for refusal is unknown or not specified.
        UNKNOWN = 0x0 => "unknown";
        /// The receiver now has the complete bundle.
        COMPLETED = 0x1 => "completed";
        /// The receiver's resources are exhausted.
        NO_RESOURCES = 0x2 => "no resources";
        /// The receiver wants the bundle retransmitted in its entirety.
        RETRANSMIT = 0x3 => "retransmit";
    }
}

reason_code! {
    /// Why a connection is shut down (SHUTDOWN, RFC 7242 §6.1).
    ShutdownReason {
        /// The connection was idle too long.
        IDLE_TIMEOUT = 0x00 => "idle timeout";
        /// The peer's contact header version is not supported.
        VERSION_MISMATCH = 0x01 => "version mismatch";
        /// The node is too busy.
        BUSY = 0x02 => "busy";
    }
}

impl RefuseReason {
    /// The v4 code with the same meaning. RFC 7242 and RFC 9174 share codes 0–3; the
    /// other v3 values are unassigned or reserved and pass through unchanged.
    pub const fn to_v4(self) -> XferRefuseReason {
        XferRefuseReason(self.0)
    }

    /// The v3 code for a reason the session machinery chose in v4 terms. Codes 0–3
    /// exist in both; v4-only reasons (not acceptable, extension failure, session
    /// terminating) have no v3 counterpart and are sent as "unknown".
    pub const fn from_v4(r: XferRefuseReason) -> RefuseReason {
        if r.0 <= 0x3 {
            RefuseReason(r.0)
        } else {
            RefuseReason::UNKNOWN
        }
    }
}

impl ShutdownReason {
    /// The v4 SESS_TERM code with the same meaning, so v3 sessions report through the
    /// same events as v4 ones: idle timeout, version mismatch and busy map to their v4
    /// twins (v4 code = v3 code + 1); an unassigned v3 code maps to v4 "unknown" (the
    /// raw code stays available from the session).
    pub const fn to_v4(self) -> SessTermReason {
        match self.0 {
            0x00 => SessTermReason::IDLE_TIMEOUT,
            0x01 => SessTermReason::VERSION_MISMATCH,
            0x02 => SessTermReason::BUSY,
            _ => SessTermReason::UNKNOWN,
        }
    }

    /// The v3 code for a v4 SESS_TERM reason, if v3 has one. `None` means "send
    /// SHUTDOWN without a reason code" (v4 unknown, contact failure, resource
    /// exhaustion: RFC 7242 has no code for them).
    pub const fn from_v4(r: SessTermReason) -> Option<ShutdownReason> {
        match r.0 {
            0x01 => Some(ShutdownReason::IDLE_TIMEOUT),
            0x02 => Some(ShutdownReason::VERSION_MISMATCH),
            0x03 => Some(ShutdownReason::BUSY),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpcl3_reason_names_and_v4_mapping() {
        let refuse: &[(u8, Option<&str>, XferRefuseReason)] = &[
            (0, Some("unknown"), XferRefuseReason::UNKNOWN),
            (1, Some("completed"), XferRefuseReason::COMPLETED),
            (2, Some("no resources"), XferRefuseReason::NO_RESOURCES),
            (3, Some("retransmit"), XferRefuseReason::RETRANSMIT),
            (4, None, XferRefuseReason(4)),
            (0xf, None, XferRefuseReason(0xf)),
        ];
        for &(v, name, v4) in refuse {
            assert_eq!(RefuseReason(v).name(), name);
            assert_eq!(RefuseReason(v).to_v4(), v4);
        }
        assert_eq!(
            RefuseReason::from_v4(XferRefuseReason::NOT_ACCEPTABLE),
            RefuseReason::UNKNOWN
        );
        assert_eq!(
            RefuseReason::from_v4(XferRefuseReason::NO_RESOURCES),
            RefuseReason::NO_RESOURCES
        );
        let shutdown: &[(u8, &str, SessTermReason)] = &[
            (0, "idle timeout", SessTermReason::IDLE_TIMEOUT),
            (1, "version mismatch", SessTermReason::VERSION_MISMATCH),
            (2, "busy", SessTermReason::BUSY),
            (3, "unknown(0x03)", SessTermReason::UNKNOWN),
            (0xff, "unknown(0xff)", SessTermReason::UNKNOWN),
        ];
        for &(v, text, v4) in shutdown {
            assert_eq!(ShutdownReason(v).to_string(), text);
            assert_eq!(ShutdownReason(v).to_v4(), v4);
            if v <= 2 {
                assert_eq!(ShutdownReason::from_v4(v4), Some(ShutdownReason(v)));
            }
        }
        assert_eq!(ShutdownReason::from_v4(SessTermReason::UNKNOWN), None);
        assert_eq!(
            ShutdownReason::from_v4(SessTermReason::RESOURCE_EXHAUSTION),
            None
        );
    }
}
