//! The S7comm header at the start of a COTP DT payload, and what kind of payload it
//! is: S7comm (protocol id 0x32), S7comm-plus (0x72, named but not decoded) or
//! neither.
//!
//! S7comm header, big-endian: protocol id (1), ROSCTR (1, the PDU type), redundancy
//! identification (2), PDU reference (2), parameter length (2), data length (2); an
//! Ack or Ack-Data PDU adds error class (1) and error code (1). The parameter block
//! follows, then the data block. For jobs and acks the first parameter octet is the
//! function; user-data PDUs carry a method, a function group and a subfunction in
//! their parameter head instead.

use crate::wire::Reader;

/// Protocol id of S7comm.
pub const PROTOCOL_ID: u8 = 0x32;
/// Protocol id of S7comm-plus (S7-1200/1500 with newer firmware).
pub const PLUS_PROTOCOL_ID: u8 = 0x72;
/// Header length of Job and User-data PDUs.
pub const SHORT_HEADER_LEN: usize = 10;
/// Header length of Ack and Ack-Data PDUs (error class and code included).
pub const LONG_HEADER_LEN: usize = 12;

/// The PDU type ("remote operating service control").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rosctr(pub u8);

impl Rosctr {
    /// A request.
    pub const JOB: Rosctr = Rosctr(0x01);
    /// An acknowledgement without data.
    pub const ACK: Rosctr = Rosctr(0x02);
    /// An acknowledgement with data (the answer to most jobs).
    pub const ACK_DATA: Rosctr = Rosctr(0x03);
    /// User data (diagnostics, block and clock functions, cyclic data...).
    pub const USERDATA: Rosctr = Rosctr(0x07);

    /// The name, for the four types S7comm defines.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Rosctr::JOB => "job",
            Rosctr::ACK => "ack",
            Rosctr::ACK_DATA => "ack-data",
            Rosctr::USERDATA => "userdata",
            _ => return None,
        })
    }

    /// Whether the header carries error class and code.
    pub fn has_error_fields(self) -> bool {
        matches!(self, Rosctr::ACK | Rosctr::ACK_DATA)
    }
}

/// The function of a job or acknowledgement (first parameter octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Function(pub u8);

impl Function {
    /// CPU services.
    pub const CPU_SERVICES: Function = Function(0x00);
    /// Read variables.
    pub const READ_VAR: Function = Function(0x04);
    /// Write variables.
    pub const WRITE_VAR: Function = Function(0x05);
    /// Setup communication: the first exchange, negotiating the PDU size.
    pub const SETUP_COMMUNICATION: Function = Function(0xf0);

    /// The name, for the functions known here.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "CPU services",
            0x04 => "read var",
            0x05 => "write var",
            0x1a => "request download",
            0x1b => "download block",
            0x1c => "download ended",
            0x1d => "start upload",
            0x1e => "upload",
            0x1f => "end upload",
            0x28 => "PI service",
            0x29 => "PLC stop",
            0xf0 => "setup communication",
            _ => return None,
        })
    }
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// PDU type.
    pub rosctr: Rosctr,
    /// Redundancy identification (normally 0).
    pub redundancy_id: u16,
    /// PDU reference: a request and its answer carry the same one.
    pub pdu_ref: u16,
    /// Length of the parameter block.
    pub param_len: u16,
    /// Length of the data block.
    pub data_len: u16,
    /// Error class and code (Ack and Ack-Data only).
    pub error: Option<(u8, u8)>,
}

impl Header {
    /// Length of this header on the wire (10 or 12).
    pub fn len(&self) -> usize {
        if self.error.is_some() {
            LONG_HEADER_LEN
        } else {
            SHORT_HEADER_LEN
        }
    }

    /// Never empty; present because clippy pairs `len` with it.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// An S7comm PDU: header and the two blocks it announces, borrowed from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S7Pdu<'a> {
    /// The header.
    pub header: Header,
    /// Parameter block (`param_len` octets).
    pub params: &'a [u8],
    /// Data block (`data_len` octets).
    pub data: &'a [u8],
    /// Octets after the data block (0 in a well-formed PDU).
    pub trailing: usize,
}

impl S7Pdu<'_> {
    /// The function of a job or acknowledgement that has parameters.
    pub fn function(&self) -> Option<Function> {
        if self.header.rosctr == Rosctr::USERDATA {
            return None;
        }
        self.params.first().copied().map(Function)
    }

    /// For setup communication with its full parameter block: max AmQ calling, max
    /// AmQ called, PDU length.
    pub fn setup_communication(&self) -> Option<(u16, u16, u16)> {
        if self.function() != Some(Function::SETUP_COMMUNICATION) {
            return None;
        }
        let mut r = Reader::new(self.params.get(2..)?);
        Some((r.u16().ok()?, r.u16().ok()?, r.u16().ok()?))
    }

    /// For read var / write var: the item count (second parameter octet).
    pub fn item_count(&self) -> Option<u8> {
        match self.function()? {
            Function::READ_VAR | Function::WRITE_VAR => self.params.get(1).copied(),
            _ => None,
        }
    }

    /// For user data with the usual parameter head (`00 01 12`): method (0x11
    /// request, 0x12 response), type (high nibble), function group (low nibble) and
    /// subfunction.
    pub fn userdata(&self) -> Option<(u8, u8, u8, u8)> {
        if self.header.rosctr != Rosctr::USERDATA {
            return None;
        }
        match self.params {
            [0x00, 0x01, 0x12, _len, method, type_group, sub, ..] => {
                Some((*method, type_group >> 4, type_group & 0x0f, *sub))
            }
            _ => None,
        }
    }
}

/// What a DT payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// S7comm, header parsed.
    S7comm(S7Pdu<'a>),
    /// S7comm-plus, not decoded; the octet after the protocol id is its version.
    S7commPlus {
        /// Protocol version (absent when the payload is one octet).
        version: Option<u8>,
    },
    /// Neither: the first octet is not 0x32 or 0x72 (or the payload is empty).
    Other,
}

/// A payload that starts with 0x32 but is no whole S7comm PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Shorter than the header its ROSCTR calls for.
    #[error("S7comm header truncated: {needed} bytes needed, {available} present")]
    Truncated {
        /// Header length required.
        needed: usize,
        /// Payload length.
        available: usize,
    },
    /// A ROSCTR S7comm does not define.
    #[error("ROSCTR {0:#04x} is not an S7comm PDU type")]
    UnknownRosctr(u8),
    /// Parameter and data blocks announce more than the payload holds (the PDU may
    /// continue in the next DT, or the lengths are wrong).
    #[error(
        "parameter ({param_len}) and data ({data_len}) lengths run past the {available} \
         bytes after the header"
    )]
    BlocksTooLong {
        /// Announced parameter length.
        param_len: u16,
        /// Announced data length.
        data_len: u16,
        /// Octets after the header.
        available: usize,
    },
}

impl HeaderError {
    /// Offset in the payload of the field at fault.
    pub fn offset(&self) -> usize {
        match self {
            HeaderError::Truncated { available, .. } => *available,
            HeaderError::UnknownRosctr(_) => 1,
            HeaderError::BlocksTooLong { .. } => 6,
        }
    }
}

/// Says what `payload` (a whole COTP message or the first DT of one) is. Only a
/// payload starting with 0x32 can fail: it claims to be S7comm and is not a whole
/// PDU.
pub fn classify(payload: &[u8]) -> Result<Payload<'_>, HeaderError> {
    match payload.first() {
        Some(&PROTOCOL_ID) => parse(payload).map(Payload::S7comm),
        Some(&PLUS_PROTOCOL_ID) => Ok(Payload::S7commPlus {
            version: payload.get(1).copied(),
        }),
        _ => Ok(Payload::Other),
    }
}

fn parse(payload: &[u8]) -> Result<S7Pdu<'_>, HeaderError> {
    let truncated = |needed| HeaderError::Truncated {
        needed,
        available: payload.len(),
    };
    let rosctr = Rosctr(*payload.get(1).ok_or(truncated(SHORT_HEADER_LEN))?);
    if rosctr.name().is_none() {
        return Err(HeaderError::UnknownRosctr(rosctr.0));
    }
    let needed = if rosctr.has_error_fields() {
        LONG_HEADER_LEN
    } else {
        SHORT_HEADER_LEN
    };
    let mut r = Reader::new(payload.get(2..needed).ok_or(truncated(needed))?);
    let short = |_| truncated(needed);
    let redundancy_id = r.u16().map_err(short)?;
    let pdu_ref = r.u16().map_err(short)?;
    let param_len = r.u16().map_err(short)?;
    let data_len = r.u16().map_err(short)?;
    let error = if rosctr.has_error_fields() {
        Some((r.u8().map_err(short)?, r.u8().map_err(short)?))
    } else {
        None
    };
    let rest = &payload[needed..];
    let (p, d) = (usize::from(param_len), usize::from(data_len));
    if p + d > rest.len() {
        return Err(HeaderError::BlocksTooLong {
            param_len,
            data_len,
            available: rest.len(),
        });
    }
    Ok(S7Pdu {
        header: Header {
            rosctr,
            redundancy_id,
            pdu_ref,
            param_len,
            data_len,
            error,
        },
        params: &rest[..p],
        data: &rest[p..p + d],
        trailing: rest.len() - p - d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(hex: &str) -> Vec<u8> {
        let hex: String = hex.split_whitespace().collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// (payload, ROSCTR, PDU ref, param len, data len, error, function)
    #[test]
    fn s7comm_headers() {
        type Row = (
            &'static str,
            Rosctr,
            u16,
            u16,
            u16,
            Option<(u8, u8)>,
            Option<u8>,
        );
        let table: &[Row] = &[
            // Setup communication job: AmQ 1/1, PDU 480.
            (
                "32 01 0000 0400 0008 0000  f0 00 0001 0001 01e0",
                Rosctr::JOB,
                0x0400,
                8,
                0,
                None,
                Some(0xf0),
            ),
            // Its Ack-Data answer, PDU 240.
            (
                "32 03 0000 0400 0008 0000 00 00  f0 00 0001 0001 00f0",
                Rosctr::ACK_DATA,
                0x0400,
                8,
                0,
                Some((0, 0)),
                Some(0xf0),
            ),
            // Read var, one item (DB1.DBB0, 4 bytes).
            (
                "32 01 0000 0001 000e 0000  04 01 12 0a 10 02 0004 0001 84 000000",
                Rosctr::JOB,
                1,
                14,
                0,
                None,
                Some(0x04),
            ),
            // Ack without parameters, error class 0x81 code 0x04.
            (
                "32 02 0000 0007 0000 0000 81 04",
                Rosctr::ACK,
                7,
                0,
                0,
                Some((0x81, 0x04)),
                None,
            ),
            // User data: CPU functions, read SZL request, with a data block.
            (
                "32 07 0000 0005 0008 0008  00 01 12 04 11 44 01 00  ff 09 0004 0011 0000",
                Rosctr::USERDATA,
                5,
                8,
                8,
                None,
                None,
            ),
        ];
        for (hex, rosctr, pdu_ref, p, d, error, function) in table {
            let b = bytes(hex);
            let Ok(Payload::S7comm(pdu)) = classify(&b) else {
                panic!("{hex}: {:?}", classify(&b));
            };
            assert_eq!(pdu.header.rosctr, *rosctr, "{hex}");
            assert_eq!(pdu.header.pdu_ref, *pdu_ref, "{hex}");
            assert_eq!(pdu.header.param_len, *p, "{hex}");
            assert_eq!(pdu.header.data_len, *d, "{hex}");
            assert_eq!(pdu.header.error, *error, "{hex}");
            assert_eq!(pdu.function().map(|f| f.0), *function, "{hex}");
            assert_eq!(pdu.params.len(), usize::from(*p));
            assert_eq!(pdu.data.len(), usize::from(*d));
            assert_eq!(pdu.trailing, 0);
        }
    }

    #[test]
    fn function_details() {
        let b = bytes("32 01 0000 0400 0008 0000  f0 00 0001 0002 01e0");
        let Ok(Payload::S7comm(pdu)) = classify(&b) else {
            panic!()
        };
        assert_eq!(pdu.setup_communication(), Some((1, 2, 480)));
        assert_eq!(
            pdu.function().and_then(Function::name),
            Some("setup communication")
        );
        let b = bytes("32 01 0000 0001 000e 0000  04 01 12 0a 10 02 0004 0001 84 000000");
        let Ok(Payload::S7comm(pdu)) = classify(&b) else {
            panic!()
        };
        assert_eq!(pdu.item_count(), Some(1));
        assert_eq!(pdu.setup_communication(), None);
        let b = bytes("32 07 0000 0005 0008 0000  00 01 12 04 11 44 01 00");
        let Ok(Payload::S7comm(pdu)) = classify(&b) else {
            panic!()
        };
        assert_eq!(pdu.userdata(), Some((0x11, 4, 4, 1)));
        assert_eq!(pdu.function(), None);
        // A setup communication cut short has no details, but still a function.
        let b = bytes("32 01 0000 0400 0002 0000  f0 00");
        let Ok(Payload::S7comm(pdu)) = classify(&b) else {
            panic!()
        };
        assert_eq!(pdu.setup_communication(), None);
        assert_eq!(pdu.function(), Some(Function::SETUP_COMMUNICATION));
    }

    #[test]
    fn other_payloads() {
        assert_eq!(classify(&[]), Ok(Payload::Other));
        assert_eq!(classify(b"hello"), Ok(Payload::Other));
        assert_eq!(
            classify(&[0x72, 0x01, 0x00, 0x1f]),
            Ok(Payload::S7commPlus {
                version: Some(0x01)
            })
        );
        assert_eq!(classify(&[0x72]), Ok(Payload::S7commPlus { version: None }));
    }

    #[test]
    fn broken_s7comm() {
        // Edge sizes: the protocol id alone, one short of each header, exactly each.
        assert_eq!(
            classify(&[0x32]),
            Err(HeaderError::Truncated {
                needed: 10,
                available: 1
            })
        );
        let job = bytes("32 01 0000 0001 0000 0000");
        assert!(matches!(classify(&job), Ok(Payload::S7comm(_))));
        assert_eq!(
            classify(&job[..9]),
            Err(HeaderError::Truncated {
                needed: 10,
                available: 9
            })
        );
        let ack = bytes("32 03 0000 0001 0000 0000 00 00");
        assert!(matches!(classify(&ack), Ok(Payload::S7comm(_))));
        assert_eq!(
            classify(&ack[..11]),
            Err(HeaderError::Truncated {
                needed: 12,
                available: 11
            })
        );
        assert_eq!(
            classify(&bytes("32 05 0000 0001 0000 0000")),
            Err(HeaderError::UnknownRosctr(5))
        );
        // Blocks longer than the payload, by one; and both at their maximum.
        let e = classify(&bytes("32 01 0000 0001 0002 0001  f0 00")).unwrap_err();
        assert_eq!(
            e,
            HeaderError::BlocksTooLong {
                param_len: 2,
                data_len: 1,
                available: 2
            }
        );
        assert_eq!(e.offset(), 6);
        assert!(classify(&bytes("32 01 0000 0001 ffff ffff")).is_err());
        // Trailing bytes are counted, not an error.
        let b = bytes("32 01 0000 0001 0000 0000 aa bb");
        let Ok(Payload::S7comm(pdu)) = classify(&b) else {
            panic!()
        };
        assert_eq!(pdu.trailing, 2);
    }
}
