//! The fields of each TPDU type, one struct per type (X.224 §13.3–§13.12), as
//! [`Tpdu`](super::Tpdu) decodes and encodes them.

use crate::cotp::codes::{DisconnectReason, Format, RejectCause};
use crate::cotp::params::Params;

/// CR or CC: connection establishment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Initial credit (low nibble of the code octet; always 0 in class 0).
    pub credit: u8,
    /// Destination reference (0 in a CR).
    pub dst_ref: u16,
    /// Source reference.
    pub src_ref: u16,
    /// Preferred (CR) or selected (CC) protocol class, 0 to 4.
    pub class: u8,
    /// Option bits, see [`options`](crate::cotp::codes::options).
    pub options: u8,
    /// Variable part.
    pub params: Params<'a>,
    /// User data (not permitted in class 0, carried when present).
    pub user_data: &'a [u8],
}

impl Default for Connect<'_> {
    fn default() -> Self {
        Connect {
            credit: 0,
            dst_ref: 0,
            src_ref: 0,
            class: 0,
            options: 0,
            params: Params::EMPTY,
            user_data: &[],
        }
    }
}

/// DR: disconnect request, or refusal of a CR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisconnectRequest<'a> {
    /// Destination reference.
    pub dst_ref: u16,
    /// Source reference.
    pub src_ref: u16,
    /// Reason for the disconnection.
    pub reason: DisconnectReason,
    /// Variable part (additional information E0, checksum).
    pub params: Params<'a>,
    /// Bytes after the header. Class 0 does not allow user data in a DR, but some peers
    /// (python-snap7) send a byte here; it is reported, not rejected.
    pub user_data: &'a [u8],
}

/// DC: disconnect confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisconnectConfirm<'a> {
    /// Destination reference.
    pub dst_ref: u16,
    /// Source reference.
    pub src_ref: u16,
    /// Variable part (checksum).
    pub params: Params<'a>,
}

/// DT: data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    /// Normal or extended format.
    pub format: Format,
    /// Destination reference; absent in the class 0/1 form (LI = 2).
    pub dst_ref: Option<u16>,
    /// End of TSDU: this DT completes a user message.
    pub eot: bool,
    /// Send sequence number (7 bits normal, 31 bits extended; 0 in class 0).
    pub nr: u32,
    /// Variable part (checksum, classes 2-4 only).
    pub params: Params<'a>,
    /// User data.
    pub data: &'a [u8],
}

impl<'a> Data<'a> {
    /// A class 0 DT carrying `data`.
    pub fn class0(eot: bool, data: &'a [u8]) -> Self {
        Data {
            format: Format::Normal,
            dst_ref: None,
            eot,
            nr: 0,
            params: Params::EMPTY,
            data,
        }
    }
}

/// ED: expedited data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpeditedData<'a> {
    /// Normal or extended format.
    pub format: Format,
    /// Destination reference; absent in the RFC 1006 class 0 form, which is shaped
    /// like a class 0 DT (LI = 2), see [`expedited`](crate::cotp::expedited).
    pub dst_ref: Option<u16>,
    /// End of TSDU.
    pub eot: bool,
    /// Expedited sequence number.
    pub nr: u32,
    /// Variable part (checksum).
    pub params: Params<'a>,
    /// User data (at most 16 octets per X.224).
    pub data: &'a [u8],
}

/// AK: data acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataAck<'a> {
    /// Normal or extended format.
    pub format: Format,
    /// Credit (4 bits normal, 16 bits extended).
    pub credit: u16,
    /// Destination reference.
    pub dst_ref: u16,
    /// Next expected sequence number.
    pub nr: u32,
    /// Variable part (checksum, subsequence number, flow control confirmation).
    pub params: Params<'a>,
}

/// EA: expedited data acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpeditedAck<'a> {
    /// Normal or extended format.
    pub format: Format,
    /// Destination reference.
    pub dst_ref: u16,
    /// Sequence number of the acknowledged ED.
    pub nr: u32,
    /// Variable part (checksum).
    pub params: Params<'a>,
}

/// RJ: reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject<'a> {
    /// Normal or extended format.
    pub format: Format,
    /// Credit (4 bits normal, 16 bits extended).
    pub credit: u16,
    /// Destination reference.
    pub dst_ref: u16,
    /// Next expected sequence number.
    pub nr: u32,
    /// Variable part.
    pub params: Params<'a>,
}

/// ER: TPDU error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorTpdu<'a> {
    /// Destination reference.
    pub dst_ref: u16,
    /// Reject cause.
    pub cause: RejectCause,
    /// Variable part: the invalid TPDU's header (C1) and checksum.
    pub params: Params<'a>,
}
