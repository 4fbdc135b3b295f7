//! S7 on top of COTP: the addressing S7 tools use to reach a PLC by rack and slot
//! ([`addressing`]), and a parser for the S7comm header found in DT payloads
//! ([`header`]), enough to label what a capture carries. S7comm itself (items,
//! values, user-data services) and S7comm-plus are not decoded.

pub mod addressing;
pub mod header;

pub use addressing::{AddressError, ConnectionType, S7Address};
pub use header::{classify, Function, Header, HeaderError, Payload, Rosctr, S7Pdu};
