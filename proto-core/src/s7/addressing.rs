//! Rack/slot addressing: how S7 clients (snap7 and the tools built on it, STEP 7,
//! TIA Portal) turn a PLC's rack and slot and a connection type into the TSAPs of the
//! COTP connection request.
//!
//! The called (remote) TSAP is two octets: the connection type in the high octet and
//! `rack × 32 + slot` in the low one (rack in the top three bits, slot in the bottom
//! five, which is where the 0–7 and 0–31 ranges come from). The calling (local) TSAP
//! is `01 00`.

use crate::cotp::Tsap;

/// The calling TSAP S7 clients send with rack/slot addressing (`01 00`).
pub const LOCAL_TSAP: [u8; 2] = [0x01, 0x00];
/// The largest rack number (three bits).
pub const MAX_RACK: u8 = 7;
/// The largest slot number (five bits).
pub const MAX_SLOT: u8 = 31;

/// What kind of S7 connection the CR asks for; the PLC counts them against separate
/// resource pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionType {
    /// Programming device (PG), type 1: what engineering tools and most clients use.
    Pg,
    /// Operator panel (OP), type 2: an HMI connection.
    Op,
    /// S7 basic communication, type 3.
    Basic,
}

impl ConnectionType {
    /// The code that goes into the high octet of the remote TSAP.
    pub fn code(self) -> u8 {
        match self {
            ConnectionType::Pg => 1,
            ConnectionType::Op => 2,
            ConnectionType::Basic => 3,
        }
    }

    /// Short lower-case name (`pg`, `op`, `basic`).
    pub fn name(self) -> &'static str {
        match self {
            ConnectionType::Pg => "pg",
            ConnectionType::Op => "op",
            ConnectionType::Basic => "basic",
        }
    }
}

/// A rack or slot outside what the remote TSAP can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Rack above [`MAX_RACK`].
    #[error("rack {0} is out of range (0 to 7)")]
    Rack(u32),
    /// Slot above [`MAX_SLOT`].
    #[error("slot {0} is out of range (0 to 31)")]
    Slot(u32),
}

/// A validated rack/slot address with its connection type.
///
/// ```
/// use proto_core::s7::{ConnectionType, S7Address};
/// let a = S7Address::new(0, 2, ConnectionType::Pg)?;
/// assert_eq!(a.remote_tsap().as_bytes(), &[0x01, 0x02]);
/// # Ok::<(), proto_core::s7::AddressError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct S7Address {
    rack: u8,
    slot: u8,
    connection_type: ConnectionType,
}

impl S7Address {
    /// Checks the ranges (rack 0–7, slot 0–31). Takes wide integers so a caller can
    /// pass what the user typed and get a range error rather than a truncation.
    pub fn new(
        rack: u32,
        slot: u32,
        connection_type: ConnectionType,
    ) -> Result<S7Address, AddressError> {
        let rack = u8::try_from(rack)
            .ok()
            .filter(|r| *r <= MAX_RACK)
            .ok_or(AddressError::Rack(rack))?;
        let slot = u8::try_from(slot)
            .ok()
            .filter(|s| *s <= MAX_SLOT)
            .ok_or(AddressError::Slot(slot))?;
        Ok(S7Address {
            rack,
            slot,
            connection_type,
        })
    }

    /// The rack.
    pub fn rack(&self) -> u8 {
        self.rack
    }

    /// The slot.
    pub fn slot(&self) -> u8 {
        self.slot
    }

    /// The connection type.
    pub fn connection_type(&self) -> ConnectionType {
        self.connection_type
    }

    /// The called TSAP: connection type, then `rack × 32 + slot`.
    pub fn remote_tsap(&self) -> Tsap {
        let bytes = [self.connection_type.code(), self.rack << 5 | self.slot];
        Tsap::new(&bytes).unwrap_or_else(|_| unreachable!("two octets always fit"))
    }

    /// The calling TSAP ([`LOCAL_TSAP`]).
    pub fn local_tsap(&self) -> Tsap {
        Tsap::new(&LOCAL_TSAP).unwrap_or_else(|_| unreachable!("two octets always fit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_tsaps() {
        use ConnectionType::*;
        // (rack, slot, type, remote TSAP)
        let table: &[(u32, u32, ConnectionType, [u8; 2])] = &[
            (0, 0, Pg, [0x01, 0x00]),
            (0, 1, Pg, [0x01, 0x01]),
            (0, 2, Pg, [0x01, 0x02]), // S7-300 CPU
            (0, 1, Op, [0x02, 0x01]),
            (0, 2, Basic, [0x03, 0x02]),
            (1, 0, Pg, [0x01, 0x20]),
            (1, 3, Op, [0x02, 0x23]),
            (7, 31, Basic, [0x03, 0xff]),
            (7, 0, Pg, [0x01, 0xe0]),
            (0, 31, Pg, [0x01, 0x1f]),
        ];
        for &(rack, slot, ct, want) in table {
            let a = S7Address::new(rack, slot, ct).unwrap();
            assert_eq!(
                a.remote_tsap().as_bytes(),
                &want,
                "rack {rack} slot {slot} {ct:?}"
            );
            assert_eq!(a.local_tsap().as_bytes(), &LOCAL_TSAP);
        }
    }

    #[test]
    fn out_of_range() {
        let pg = ConnectionType::Pg;
        assert_eq!(S7Address::new(8, 0, pg), Err(AddressError::Rack(8)));
        assert_eq!(S7Address::new(0, 32, pg), Err(AddressError::Slot(32)));
        assert_eq!(S7Address::new(300, 0, pg), Err(AddressError::Rack(300)));
        assert_eq!(
            S7Address::new(0, u32::MAX, pg),
            Err(AddressError::Slot(u32::MAX))
        );
        assert!(S7Address::new(7, 31, pg).is_ok());
    }
}
