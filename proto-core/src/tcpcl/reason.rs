//! Reason codes of SESS_TERM, XFER_REFUSE and MSG_REJECT (RFC 9174 §9.6–§9.8).
//!
//! Each is a newtype over the raw octet so codes registered after this crate was
//! written pass through unchanged: an unknown reason is never a decode error.

macro_rules! reason_code {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$cmeta:meta])* $code:ident = $value:literal => $label:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub u8);

        impl $name {
            $( $(#[$cmeta])* pub const $code: Self = $name($value); )*

            /// The registered name of this code, or `None` if it is unassigned.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($label), )*
                    _ => None,
                }
            }
        }

        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                $name(v)
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v.0
            }
        }

        /// The registered name, or `unknown(0xNN)` for an unassigned code (the form
        /// `proto decode` shows next to the raw octet). The alternate form (`{:#}`) is
        /// the sentence form for messages: the name with the code in decimal, e.g.
        /// `no resources (2)`, or `unassigned (42)`.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match (self.name(), f.alternate()) {
                    (Some(n), false) => f.write_str(n),
                    (None, false) => write!(f, "unknown(0x{:02x})", self.0),
                    (Some(n), true) => write!(f, "{n} ({})", self.0),
                    (None, true) => write!(f, "unassigned ({})", self.0),
                }
            }
        }
    };
}

// The v3 codec declares its reason codes with the same macro.
pub(crate) use reason_code;

reason_code! {
    /// Why a session is being terminated (SESS_TERM, RFC 9174 §6.1).
    SessTermReason {
        /// No reason given.
        UNKNOWN = 0x00 => "unknown";
        /// The session was idle too long.
        IDLE_TIMEOUT = 0x01 => "idle timeout";
        /// The peer's contact header version is not supported.
        VERSION_MISMATCH = 0x02 => "version mismatch";
        /// The node is too busy.
        BUSY = 0x03 => "busy";
        /// The contact header or SESS_INIT could not be processed.
        CONTACT_FAILURE = 0x04 => "contact failure";
        /// The node ran out of resources.
        RESOURCE_EXHAUSTION = 0x05 => "resource exhaustion";
    }
}

reason_code! {
    /// Why a transfer is refused (XFER_REFUSE, RFC 9174 §5.2.4).
    XferRefuseReason {
        /// No reason given.
        UNKNOWN = 0x00 => "unknown";
        /// The receiver already has the whole bundle.
        COMPLETED = 0x01 => "completed";
        /// The receiver lacks resources for the transfer.
        NO_RESOURCES = 0x02 => "no resources";
        /// The receiver wants the transfer sent again.
        RETRANSMIT = 0x03 => "retransmit";
        /// Some aspect of the transfer is not acceptable.
        NOT_ACCEPTABLE = 0x04 => "not acceptable";
        /// A critical transfer extension item failed.
        EXTENSION_FAILURE = 0x05 => "extension failure";
        /// The session is terminating.
        SESSION_TERMINATING = 0x06 => "session terminating";
    }
}

reason_code! {
    /// Why a message is rejected (MSG_REJECT, RFC 9174 §5.1.1).
    MsgRejectReason {
        /// The message type code is unknown.
        UNKNOWN_TYPE = 0x01 => "message type unknown";
        /// The message type is known but not supported.
        UNSUPPORTED = 0x02 => "message unsupported";
        /// The message was not expected in the session's state.
        UNEXPECTED = 0x03 => "message unexpected";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpcl_reason_names_and_unknown_values() {
        let sess: &[(u8, Option<&str>, &str)] = &[
            (0, Some("unknown"), "unknown"),
            (1, Some("idle timeout"), "idle timeout"),
            (2, Some("version mismatch"), "version mismatch"),
            (3, Some("busy"), "busy"),
            (4, Some("contact failure"), "contact failure"),
            (5, Some("resource exhaustion"), "resource exhaustion"),
            (6, None, "unknown(0x06)"),
            (0x2a, None, "unknown(0x2a)"),
        ];
        for &(v, name, text) in sess {
            assert_eq!(SessTermReason(v).name(), name);
            assert_eq!(SessTermReason(v).to_string(), text);
        }
        let refuse: &[(XferRefuseReason, u8)] = &[
            (XferRefuseReason::UNKNOWN, 0),
            (XferRefuseReason::COMPLETED, 1),
            (XferRefuseReason::NO_RESOURCES, 2),
            (XferRefuseReason::RETRANSMIT, 3),
            (XferRefuseReason::NOT_ACCEPTABLE, 4),
            (XferRefuseReason::EXTENSION_FAILURE, 5),
            (XferRefuseReason::SESSION_TERMINATING, 6),
        ];
        for &(r, v) in refuse {
            assert_eq!(u8::from(r), v);
            assert!(r.name().is_some());
        }
        assert_eq!(XferRefuseReason(7).to_string(), "unknown(0x07)");
        assert_eq!(MsgRejectReason::UNKNOWN_TYPE.0, 1);
        assert_eq!(MsgRejectReason::UNSUPPORTED.0, 2);
        assert_eq!(MsgRejectReason::UNEXPECTED.0, 3);
        assert_eq!(MsgRejectReason(0).to_string(), "unknown(0x00)");
        assert_eq!(MsgRejectReason(3).to_string(), "message unexpected");
        // The sentence form names the code in decimal, assigned or not.
        assert_eq!(format!("{:#}", SessTermReason::UNKNOWN), "unknown (0)");
        assert_eq!(format!("{:#}", SessTermReason(0x2a)), "unassigned (42)");
        assert_eq!(
            format!("{:#}", XferRefuseReason::NO_RESOURCES),
            "no resources (2)"
        );
        assert_eq!(
            format!("{:#}", MsgRejectReason::UNEXPECTED),
            "message unexpected (3)"
        );
    }
}
