//! Code points of COTP fixed fields: TPDU types, protocol classes and options, TPDU
//! sizes, disconnect reasons and reject causes.
//!
//! Reasons and causes are newtypes over the wire byte so that a value this crate does
//! not name is carried through unchanged: an unknown reason is information, not an
//! error.

use core::fmt;

/// The ten TPDU types, by the high nibble of the code octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TpduKind {
    /// Connection request (0xE_).
    ConnectionRequest,
    /// Connection confirm (0xD_).
    ConnectionConfirm,
    /// Disconnect request (0x80).
    DisconnectRequest,
    /// Disconnect confirm (0xC0).
    DisconnectConfirm,
    /// Data (0xF0).
    Data,
    /// Expedited data (0x10).
    ExpeditedData,
    /// Data acknowledgement (0x6_).
    DataAck,
    /// Expedited data acknowledgement (0x20).
    ExpeditedAck,
    /// Reject (0x5_).
    Reject,
    /// TPDU error (0x70).
    Error,
}

impl TpduKind {
    /// The kind of a code octet, if it is one X.224 defines. For CR, CC, AK and RJ the
    /// low nibble is the credit; for the others it must be zero.
    pub fn from_code(code: u8) -> Option<TpduKind> {
        let low = code & 0x0f;
        let kind = match code >> 4 {
            0xE => TpduKind::ConnectionRequest,
            0xD => TpduKind::ConnectionConfirm,
            0x6 => TpduKind::DataAck,
            0x5 => TpduKind::Reject,
            0x8 if low == 0 => TpduKind::DisconnectRequest,
            0xC if low == 0 => TpduKind::DisconnectConfirm,
            0xF if low == 0 => TpduKind::Data,
            0x1 if low == 0 => TpduKind::ExpeditedData,
            0x2 if low == 0 => TpduKind::ExpeditedAck,
            0x7 if low == 0 => TpduKind::Error,
            _ => return None,
        };
        Some(kind)
    }

    /// The code octet with a zero low nibble.
    pub fn code(self) -> u8 {
        match self {
            TpduKind::ConnectionRequest => 0xE0,
            TpduKind::ConnectionConfirm => 0xD0,
            TpduKind::DisconnectRequest => 0x80,
            TpduKind::DisconnectConfirm => 0xC0,
            TpduKind::Data => 0xF0,
            TpduKind::ExpeditedData => 0x10,
            TpduKind::DataAck => 0x60,
            TpduKind::ExpeditedAck => 0x20,
            TpduKind::Reject => 0x50,
            TpduKind::Error => 0x70,
        }
    }

    /// The two-letter abbreviation X.224 uses (CR, CC, DR, …).
    pub fn abbreviation(self) -> &'static str {
        match self {
            TpduKind::ConnectionRequest => "CR",
            TpduKind::ConnectionConfirm => "CC",
            TpduKind::DisconnectRequest => "DR",
            TpduKind::DisconnectConfirm => "DC",
            TpduKind::Data => "DT",
            TpduKind::ExpeditedData => "ED",
            TpduKind::DataAck => "AK",
            TpduKind::ExpeditedAck => "EA",
            TpduKind::Reject => "RJ",
            TpduKind::Error => "ER",
        }
    }
}

impl fmt::Display for TpduKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbreviation())
    }
}

/// Whether the data-phase TPDUs (DT, ED, AK, EA, RJ) use the normal or extended
/// format (7-bit or 31-bit sequence numbers), as selected in CR/CC options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Normal format: 7-bit sequence numbers, 4-bit credit.
    #[default]
    Normal,
    /// Extended format: 31-bit sequence numbers, 16-bit credit.
    Extended,
}

/// Protocol class numbers (high nibble of the CR/CC class octet).
pub mod class {
    /// Class 0: simple class (the only class RFC 1006 requires).
    pub const CLASS0: u8 = 0;
    /// Class 1: basic error recovery.
    pub const CLASS1: u8 = 1;
    /// Class 2: multiplexing.
    pub const CLASS2: u8 = 2;
    /// Class 3: error recovery and multiplexing.
    pub const CLASS3: u8 = 3;
    /// Class 4: error detection and recovery.
    pub const CLASS4: u8 = 4;
}

/// Option bits (low nibble of the CR/CC class octet).
pub mod options {
    /// Use of extended formats in classes 2, 3 and 4.
    pub const EXTENDED_FORMATS: u8 = 0x02;
    /// No use of explicit flow control in class 2 (bit set = not used).
    pub const NO_EXPLICIT_FLOW_CONTROL: u8 = 0x01;
}

/// Maximum TPDU size, as coded in parameter C0 (2^code octets, 128 to 8192).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TpduSize {
    /// 128 octets (code 0x07), the default when C0 is absent.
    S128 = 7,
    /// 256 octets (code 0x08).
    S256 = 8,
    /// 512 octets (code 0x09).
    S512 = 9,
    /// 1024 octets (code 0x0A).
    S1024 = 10,
    /// 2048 octets (code 0x0B).
    S2048 = 11,
    /// 4096 octets (code 0x0C; not permitted in class 0 by X.224, used by peers anyway).
    S4096 = 12,
    /// 8192 octets (code 0x0D; not permitted in class 0 by X.224, used by peers anyway).
    S8192 = 13,
}

impl TpduSize {
    /// Every size, smallest first.
    pub const ALL: [TpduSize; 7] = [
        TpduSize::S128,
        TpduSize::S256,
        TpduSize::S512,
        TpduSize::S1024,
        TpduSize::S2048,
        TpduSize::S4096,
        TpduSize::S8192,
    ];

    /// The size for a C0 code octet.
    pub fn from_code(code: u8) -> Option<TpduSize> {
        TpduSize::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The C0 code octet.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The size in octets.
    pub fn bytes(self) -> usize {
        1usize << (self as u8)
    }

    /// The largest size that is at most `bytes` octets (128 if `bytes` is smaller).
    pub fn at_most(bytes: usize) -> TpduSize {
        TpduSize::ALL
            .into_iter()
            .rev()
            .find(|s| s.bytes() <= bytes)
            .unwrap_or(TpduSize::S128)
    }
}

impl fmt::Display for TpduSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.bytes())
    }
}

macro_rules! code_newtype {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $konst:ident = $val:expr => $text:expr,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub u8);

        impl $name {
            $($(#[$cdoc])* pub const $konst: $name = $name($val);)*

            /// The standard's name for this value, if it has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($text),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{n} ({})", self.0),
                    None => write!(f, "unknown({:#04x})", self.0),
                }
            }
        }
    };
}

code_newtype! {
    /// DR reason code (X.224 §13.5.3 e).
    DisconnectReason {
        /// Reason not specified.
        NOT_SPECIFIED = 0 => "reason not specified",
        /// Congestion at TSAP.
        CONGESTION_AT_TSAP = 1 => "congestion at TSAP",
        /// Session entity not attached to TSAP.
        SESSION_NOT_ATTACHED = 2 => "session entity not attached to TSAP",
        /// Address unknown (at TSAP).
        ADDRESS_UNKNOWN = 3 => "address unknown",
        /// Normal disconnect initiated by the session entity.
        NORMAL = 128 => "normal disconnect",
        /// Remote transport entity congestion at connect time.
        REMOTE_CONGESTION = 129 => "remote transport entity congestion",
        /// Connection negotiation failed (proposed class not supported).
        NEGOTIATION_FAILED = 130 => "connection negotiation failed",
        /// Duplicate source reference for the same pair of NSAPs.
        DUPLICATE_SOURCE_REF = 131 => "duplicate source reference",
        /// Mismatched references.
        MISMATCHED_REFERENCES = 132 => "mismatched references",
        /// Protocol error.
        PROTOCOL_ERROR = 133 => "protocol error",
        /// Reference overflow.
        REFERENCE_OVERFLOW = 135 => "reference overflow",
        /// Connection request refused on this network connection.
        REQUEST_REFUSED = 136 => "connection request refused",
        /// Header or parameter length invalid.
        HEADER_OR_PARAMETER_LENGTH_INVALID = 138 => "header or parameter length invalid",
    }
}

code_newtype! {
    /// ER reject cause (X.224 §13.12.3 d).
    RejectCause {
        /// Reason not specified.
        NOT_SPECIFIED = 0 => "reason not specified",
        /// Invalid parameter code.
        INVALID_PARAMETER_CODE = 1 => "invalid parameter code",
        /// Invalid TPDU type.
        INVALID_TPDU_TYPE = 2 => "invalid TPDU type",
        /// Invalid parameter value.
        INVALID_PARAMETER_VALUE = 3 => "invalid parameter value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_codes() {
        for code in 0..=255u8 {
            if let Some(kind) = TpduKind::from_code(code) {
                assert_eq!(kind.code(), code & 0xf0, "{code:#x}");
            }
        }
        assert_eq!(TpduKind::from_code(0xE3), Some(TpduKind::ConnectionRequest));
        assert_eq!(TpduKind::from_code(0xF1), None);
        assert_eq!(TpduKind::from_code(0x00), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(TpduSize::from_code(0x0a), Some(TpduSize::S1024));
        assert_eq!(TpduSize::S1024.bytes(), 1024);
        assert_eq!(TpduSize::from_code(0x0e), None);
        assert_eq!(TpduSize::at_most(1500), TpduSize::S1024);
        assert_eq!(TpduSize::at_most(10), TpduSize::S128);
        assert_eq!(TpduSize::at_most(1 << 20), TpduSize::S8192);
    }

    #[test]
    fn unknown_reasons_are_kept() {
        assert_eq!(DisconnectReason(0x2a).to_string(), "unknown(0x2a)");
        assert_eq!(
            DisconnectReason::NORMAL.to_string(),
            "normal disconnect (128)"
        );
        assert_eq!(RejectCause(3).name(), Some("invalid parameter value"));
    }
}
