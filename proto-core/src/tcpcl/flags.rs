//! The flag bytes of the contact headers and messages.
//!
//! Each is a newtype over the raw octet: reserved bits a peer sets are kept (RFC 9174
//! says receivers ignore them) and stay visible through `reserved_bits()` (for example
//! [`SegmentFlags::reserved_bits`]), while the defined bits have typed accessors.

macro_rules! flag_byte {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$cmeta:meta])* $flag:ident = $value:literal => $label:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub u8);

        impl $name {
            $( $(#[$cmeta])* pub const $flag: Self = $name($value); )*

            /// No flag set.
            pub const EMPTY: Self = $name(0);

            /// The bits the protocol defines; every other bit is reserved.
            pub const DEFINED: u8 = 0 $( | $value )*;

            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Set bits the protocol reserves (kept as received, never interpreted).
            pub const fn reserved_bits(self) -> u8 {
                self.0 & !Self::DEFINED
            }

            /// `self` with the bits of `other` also set.
            pub const fn with(self, other: Self) -> Self {
                $name(self.0 | other.0)
            }

            /// `self` with the bits of `other` cleared.
            pub const fn without(self, other: Self) -> Self {
                $name(self.0 & !other.0)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                self.with(rhs)
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

        /// Lists the set flags by name in the order they are declared (the order of
        /// the RFC's flag table), `|`-separated, then any reserved bits in hex; `0`
        /// when nothing is set.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut first = true;
                let mut sep = |f: &mut std::fmt::Formatter<'_>| {
                    let s = if first { "" } else { "|" };
                    first = false;
                    f.write_str(s)
                };
                $(
                    if self.contains($name($value)) {
                        sep(f)?;
                        f.write_str($label)?;
                    }
                )*
                if self.reserved_bits() != 0 {
                    sep(f)?;
                    write!(f, "0x{:02x}", self.reserved_bits())?;
                }
                if self.0 == 0 {
                    f.write_str("0")?;
                }
                Ok(())
            }
        }
    };
}

// The v3 codec declares its flag bytes with the same macro.
pub(crate) use flag_byte;

flag_byte! {
    /// Flags of the TCPCLv4 contact header (RFC 9174 §4.2).
    ContactFlags {
        /// The sender can use TLS.
        CAN_TLS = 0x01 => "CAN_TLS";
    }
}

impl ContactFlags {
    /// Whether CAN_TLS is set.
    pub const fn can_tls(self) -> bool {
        self.contains(Self::CAN_TLS)
    }
}

flag_byte! {
    /// Flags of the TCPCLv3 contact header (RFC 7242 §4.1).
    V3ContactFlags {
        /// Request acknowledgment of bundle segments.
        ENA_ACK = 0x01 => "ENA_ACK";
        /// Request enabling of reactive fragmentation.
        ENA_FRAG = 0x02 => "ENA_FRAG";
        /// Support bundle refusal.
        ENA_REFUSE = 0x04 => "ENA_REFUSE";
        /// Request sending of LENGTH messages.
        ENA_LENGTH = 0x08 => "ENA_LENGTH";
    }
}

flag_byte! {
    /// Flags of XFER_SEGMENT and XFER_ACK (RFC 9174 §5.2.2, §5.2.3).
    ///
    /// An XFER_ACK reflects the flags of the segment it acknowledges.
    SegmentFlags {
        /// First segment of the transfer (carries the transfer extension items).
        /// Declared first so that flags print `START|END`, the order of RFC 9174's
        /// table and of docs/cli.md.
        START = 0x02 => "START";
        /// Last segment of the transfer.
        END = 0x01 => "END";
    }
}

impl SegmentFlags {
    /// Whether START is set.
    pub const fn is_start(self) -> bool {
        self.contains(Self::START)
    }

    /// Whether END is set.
    pub const fn is_end(self) -> bool {
        self.contains(Self::END)
    }
}

flag_byte! {
    /// Flags of SESS_TERM (RFC 9174 §6.1).
    SessTermFlags {
        /// This SESS_TERM acknowledges the peer's.
        REPLY = 0x01 => "REPLY";
    }
}

impl SessTermFlags {
    /// Whether REPLY is set.
    pub const fn is_reply(self) -> bool {
        self.contains(Self::REPLY)
    }
}

flag_byte! {
    /// Flags of a session or transfer extension item (RFC 9174 §4.8, §5.2.5).
    ExtensionFlags {
        /// The receiver must understand the item or fail the session / transfer.
        CRITICAL = 0x01 => "CRITICAL";
    }
}

impl ExtensionFlags {
    /// Whether CRITICAL is set.
    pub const fn is_critical(self) -> bool {
        self.contains(Self::CRITICAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpcl_flags_keep_reserved_bits_and_display() {
        let cases: &[(SegmentFlags, bool, bool, u8, &str)] = &[
            (SegmentFlags(0), false, false, 0, "0"),
            (SegmentFlags(0x01), false, true, 0, "END"),
            (SegmentFlags(0x02), true, false, 0, "START"),
            (SegmentFlags(0x03), true, true, 0, "START|END"),
            (SegmentFlags(0x83), true, true, 0x80, "START|END|0x80"),
            (SegmentFlags(0x40), false, false, 0x40, "0x40"),
        ];
        for &(f, start, end, reserved, text) in cases {
            assert_eq!(f.is_start(), start, "{f:?}");
            assert_eq!(f.is_end(), end, "{f:?}");
            assert_eq!(f.reserved_bits(), reserved, "{f:?}");
            assert_eq!(f.to_string(), text);
        }
        assert_eq!(SegmentFlags::START | SegmentFlags::END, SegmentFlags(3));
        assert_eq!(
            SegmentFlags(3).without(SegmentFlags::END),
            SegmentFlags::START
        );
        assert!(ContactFlags(1).can_tls());
        assert!(!ContactFlags(0xfe).can_tls());
        assert!(SessTermFlags(1).is_reply());
        assert_eq!(
            V3ContactFlags(0x0f).to_string(),
            "ENA_ACK|ENA_FRAG|ENA_REFUSE|ENA_LENGTH"
        );
    }
}
