//! The variable part of a TPDU header: parameters coded as code, length, value.
//!
//! Decoding validates the whole parameter block once and keeps it borrowed
//! ([`Params`] over the encoded bytes); iterating then yields typed [`Param`] values
//! without further checks. Encoding takes a caller-owned slice of [`Param`]s, so
//! building a TPDU allocates nothing. Parameters this crate does not know are kept as
//! [`Param::Unknown`] and written back unchanged.

use super::codes::{TpduKind, TpduSize};
use super::error::TpduError;
use crate::wire::{Overflow, Reader, Writer};

/// Parameter codes (X.224 §13).
pub mod code {
    /// TPDU size (CR, CC).
    pub const TPDU_SIZE: u8 = 0xC0;
    /// Calling transport selector (CR, CC); in an ER the same code means "invalid TPDU".
    pub const CALLING_TSAP: u8 = 0xC1;
    /// The ER parameter holding the header of the rejected TPDU.
    pub const INVALID_TPDU: u8 = 0xC1;
    /// Called transport selector (CR, CC).
    pub const CALLED_TSAP: u8 = 0xC2;
    /// Checksum (class 4).
    pub const CHECKSUM: u8 = 0xC3;
    /// Version number.
    pub const VERSION: u8 = 0xC4;
    /// Protection parameters (user defined).
    pub const PROTECTION: u8 = 0xC5;
    /// Additional option selection.
    pub const ADDITIONAL_OPTIONS: u8 = 0xC6;
    /// Alternative protocol classes.
    pub const ALTERNATIVE_CLASSES: u8 = 0xC7;
    /// Preferred maximum TPDU size, in units of 128 octets.
    pub const PREFERRED_MAX_TPDU_SIZE: u8 = 0xF0;
    /// Inactivity timer, in milliseconds.
    pub const INACTIVITY_TIMER: u8 = 0xF2;
    /// Acknowledgement time (class 4), in milliseconds.
    pub const ACK_TIME: u8 = 0x85;
    /// Residual error rate.
    pub const RESIDUAL_ERROR_RATE: u8 = 0x86;
    /// Priority.
    pub const PRIORITY: u8 = 0x87;
    /// Transit delay.
    pub const TRANSIT_DELAY: u8 = 0x88;
    /// Throughput.
    pub const THROUGHPUT: u8 = 0x89;
    /// Subsequence number (AK, class 4).
    pub const SUBSEQUENCE_NUMBER: u8 = 0x8A;
    /// Reassignment time.
    pub const REASSIGNMENT_TIME: u8 = 0x8B;
    /// Flow control confirmation (AK, class 4).
    pub const FLOW_CONTROL_CONFIRMATION: u8 = 0x8C;
    /// Selective acknowledgement parameters (AK, class 4).
    pub const SELECTIVE_ACK: u8 = 0x8F;
    /// Additional information related to the clearing (DR).
    pub const ADDITIONAL_INFO: u8 = 0xE0;
}

/// One parameter of a TPDU's variable part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    /// C0: maximum TPDU size.
    TpduSize(TpduSize),
    /// C1: calling TSAP.
    CallingTsap(&'a [u8]),
    /// C2: called TSAP.
    CalledTsap(&'a [u8]),
    /// C3: checksum octets. The encoder computes them; the value given is ignored.
    Checksum([u8; 2]),
    /// C4: protocol version number.
    Version(u8),
    /// C5: protection parameters.
    Protection(&'a [u8]),
    /// C6: additional option selection bits.
    AdditionalOptions(u8),
    /// C7: alternative protocol classes, one octet each (class in the high nibble).
    AlternativeClasses(&'a [u8]),
    /// F0: preferred maximum TPDU size in units of 128 octets.
    PreferredMaxTpduSize(u32),
    /// F2: inactivity timer in milliseconds.
    InactivityTimer(u32),
    /// 85: acknowledgement time in milliseconds.
    AckTime(u16),
    /// 86: residual error rate (target, minimum acceptable, TSDU size exponent).
    ResidualErrorRate([u8; 3]),
    /// 87: priority (0 is highest).
    Priority(u16),
    /// 88: transit delay (target and maximum acceptable, calling→called and
    /// called→calling, in milliseconds).
    TransitDelay([u16; 4]),
    /// 89: throughput (12 octets, or 24 with average throughput).
    Throughput(&'a [u8]),
    /// 8A: subsequence number.
    SubsequenceNumber(u16),
    /// 8B: reassignment time in seconds.
    ReassignmentTime(u16),
    /// 8C: flow control confirmation.
    FlowControlConfirmation {
        /// Lower window edge.
        lower_window_edge: u32,
        /// Your subsequence.
        subsequence: u16,
        /// Your credit.
        credit: u16,
    },
    /// 8F: selective acknowledgement parameters.
    SelectiveAck(&'a [u8]),
    /// E0: additional information related to the clearing (DR).
    AdditionalInfo(&'a [u8]),
    /// C1 in an ER: the header octets of the TPDU being rejected.
    InvalidTpdu(&'a [u8]),
    /// Any parameter not listed above, kept as it was received.
    Unknown {
        /// Parameter code.
        code: u8,
        /// Parameter value.
        value: &'a [u8],
    },
}

impl<'a> Param<'a> {
    /// The parameter code this value is written with.
    pub fn code(&self) -> u8 {
        match self {
            Param::TpduSize(_) => code::TPDU_SIZE,
            Param::CallingTsap(_) => code::CALLING_TSAP,
            Param::CalledTsap(_) => code::CALLED_TSAP,
            Param::Checksum(_) => code::CHECKSUM,
            Param::Version(_) => code::VERSION,
            Param::Protection(_) => code::PROTECTION,
            Param::AdditionalOptions(_) => code::ADDITIONAL_OPTIONS,
            Param::AlternativeClasses(_) => code::ALTERNATIVE_CLASSES,
            Param::PreferredMaxTpduSize(_) => code::PREFERRED_MAX_TPDU_SIZE,
            Param::InactivityTimer(_) => code::INACTIVITY_TIMER,
            Param::AckTime(_) => code::ACK_TIME,
            Param::ResidualErrorRate(_) => code::RESIDUAL_ERROR_RATE,
            Param::Priority(_) => code::PRIORITY,
            Param::TransitDelay(_) => code::TRANSIT_DELAY,
            Param::Throughput(_) => code::THROUGHPUT,
            Param::SubsequenceNumber(_) => code::SUBSEQUENCE_NUMBER,
            Param::ReassignmentTime(_) => code::REASSIGNMENT_TIME,
            Param::FlowControlConfirmation { .. } => code::FLOW_CONTROL_CONFIRMATION,
            Param::SelectiveAck(_) => code::SELECTIVE_ACK,
            Param::AdditionalInfo(_) => code::ADDITIONAL_INFO,
            Param::InvalidTpdu(_) => code::INVALID_TPDU,
            Param::Unknown { code, .. } => *code,
        }
    }

    /// A short human name for the parameter.
    pub fn name(&self) -> &'static str {
        match self {
            Param::TpduSize(_) => "tpdu-size",
            Param::CallingTsap(_) => "calling-tsap",
            Param::CalledTsap(_) => "called-tsap",
            Param::Checksum(_) => "checksum",
            Param::Version(_) => "version",
            Param::Protection(_) => "protection",
            Param::AdditionalOptions(_) => "additional-options",
            Param::AlternativeClasses(_) => "alternative-classes",
            Param::PreferredMaxTpduSize(_) => "preferred-max-tpdu-size",
            Param::InactivityTimer(_) => "inactivity-timer",
            Param::AckTime(_) => "ack-time",
            Param::ResidualErrorRate(_) => "residual-error-rate",
            Param::Priority(_) => "priority",
            Param::TransitDelay(_) => "transit-delay",
            Param::Throughput(_) => "throughput",
            Param::SubsequenceNumber(_) => "subsequence-number",
            Param::ReassignmentTime(_) => "reassignment-time",
            Param::FlowControlConfirmation { .. } => "flow-control-confirmation",
            Param::SelectiveAck(_) => "selective-ack",
            Param::AdditionalInfo(_) => "additional-info",
            Param::InvalidTpdu(_) => "invalid-tpdu",
            Param::Unknown { .. } => "unknown",
        }
    }

    /// Interprets one raw parameter. `kind` matters because code C1 means "calling
    /// TSAP" in a CR/CC and "invalid TPDU" in an ER. `offset` names the parameter code's
    /// position in errors.
    pub fn parse(
        kind: TpduKind,
        code: u8,
        value: &'a [u8],
        offset: usize,
    ) -> Result<Self, TpduError> {
        let bad_len = |problem| TpduError::ParameterLength {
            offset,
            code,
            len: value.len() as u8,
            problem,
        };
        let fixed = |n: usize| {
            if value.len() == n {
                Ok(value)
            } else {
                Err(bad_len("wrong length for this parameter"))
            }
        };
        let be = |v: &[u8]| v.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        let u16_of = |v: &[u8]| u16::from_be_bytes([v[0], v[1]]);
        Ok(match code {
            code::TPDU_SIZE => {
                let v = fixed(1)?[0];
                Param::TpduSize(TpduSize::from_code(v).ok_or(TpduError::InvalidValue {
                    field: "TPDU size parameter (C0)",
                    offset: offset + 2,
                    value: v,
                })?)
            }
            code::INVALID_TPDU if kind == TpduKind::Error => Param::InvalidTpdu(value),
            code::CALLING_TSAP => Param::CallingTsap(value),
            code::CALLED_TSAP => Param::CalledTsap(value),
            code::CHECKSUM => {
                let v = fixed(2)?;
                Param::Checksum([v[0], v[1]])
            }
            code::VERSION => Param::Version(fixed(1)?[0]),
            code::PROTECTION => Param::Protection(value),
            code::ADDITIONAL_OPTIONS => Param::AdditionalOptions(fixed(1)?[0]),
            code::ALTERNATIVE_CLASSES => {
                if value.is_empty() {
                    return Err(bad_len("no class listed"));
                }
                Param::AlternativeClasses(value)
            }
            code::PREFERRED_MAX_TPDU_SIZE => {
                if value.is_empty() || value.len() > 4 {
                    return Err(bad_len("must be 1 to 4 octets"));
                }
                Param::PreferredMaxTpduSize(be(value))
            }
            code::INACTIVITY_TIMER => Param::InactivityTimer(be(fixed(4)?)),
            code::ACK_TIME => Param::AckTime(u16_of(fixed(2)?)),
            code::RESIDUAL_ERROR_RATE => {
                let v = fixed(3)?;
                Param::ResidualErrorRate([v[0], v[1], v[2]])
            }
            code::PRIORITY => Param::Priority(u16_of(fixed(2)?)),
            code::TRANSIT_DELAY => {
                let v = fixed(8)?;
                Param::TransitDelay([
                    u16_of(&v[0..]),
                    u16_of(&v[2..]),
                    u16_of(&v[4..]),
                    u16_of(&v[6..]),
                ])
            }
            code::THROUGHPUT => {
                if value.len() != 12 && value.len() != 24 {
                    return Err(bad_len("must be 12 or 24 octets"));
                }
                Param::Throughput(value)
            }
            code::SUBSEQUENCE_NUMBER => Param::SubsequenceNumber(u16_of(fixed(2)?)),
            code::REASSIGNMENT_TIME => Param::ReassignmentTime(u16_of(fixed(2)?)),
            code::FLOW_CONTROL_CONFIRMATION => {
                let v = fixed(8)?;
                Param::FlowControlConfirmation {
                    lower_window_edge: be(&v[0..4]),
                    subsequence: u16_of(&v[4..]),
                    credit: u16_of(&v[6..]),
                }
            }
            code::SELECTIVE_ACK => Param::SelectiveAck(value),
            code::ADDITIONAL_INFO => Param::AdditionalInfo(value),
            _ => Param::Unknown { code, value },
        })
    }

    /// Length of the value field in octets.
    pub fn value_len(&self) -> usize {
        match self {
            Param::TpduSize(_) | Param::Version(_) | Param::AdditionalOptions(_) => 1,
            Param::Checksum(_)
            | Param::AckTime(_)
            | Param::Priority(_)
            | Param::SubsequenceNumber(_)
            | Param::ReassignmentTime(_) => 2,
            Param::ResidualErrorRate(_) => 3,
            Param::InactivityTimer(_) => 4,
            Param::PreferredMaxTpduSize(v) => match *v {
                0..=0xff => 1,
                0x100..=0xffff => 2,
                0x1_0000..=0xff_ffff => 3,
                _ => 4,
            },
            Param::TransitDelay(_) | Param::FlowControlConfirmation { .. } => 8,
            Param::CallingTsap(v)
            | Param::CalledTsap(v)
            | Param::Protection(v)
            | Param::AlternativeClasses(v)
            | Param::Throughput(v)
            | Param::SelectiveAck(v)
            | Param::AdditionalInfo(v)
            | Param::InvalidTpdu(v)
            | Param::Unknown { value: v, .. } => v.len(),
        }
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Overflow> {
        let len = u8::try_from(self.value_len()).map_err(|_| Overflow)?;
        w.put_u8(self.code())?;
        w.put_u8(len)?;
        match *self {
            Param::TpduSize(s) => w.put_u8(s.code()),
            Param::Version(v) | Param::AdditionalOptions(v) => w.put_u8(v),
            // Zeros while encoding; the TPDU encoder fills in the real value.
            Param::Checksum(_) => w.put_u16(0),
            Param::AckTime(v)
            | Param::Priority(v)
            | Param::SubsequenceNumber(v)
            | Param::ReassignmentTime(v) => w.put_u16(v),
            Param::ResidualErrorRate(v) => w.put_slice(&v),
            Param::InactivityTimer(v) => w.put_u32(v),
            Param::PreferredMaxTpduSize(v) => w.put_slice(&v.to_be_bytes()[4 - usize::from(len)..]),
            Param::TransitDelay(v) => v.iter().try_for_each(|&d| w.put_u16(d)),
            Param::FlowControlConfirmation {
                lower_window_edge,
                subsequence,
                credit,
            } => {
                w.put_u32(lower_window_edge)?;
                w.put_u16(subsequence)?;
                w.put_u16(credit)
            }
            Param::CallingTsap(v)
            | Param::CalledTsap(v)
            | Param::Protection(v)
            | Param::AlternativeClasses(v)
            | Param::Throughput(v)
            | Param::SelectiveAck(v)
            | Param::AdditionalInfo(v)
            | Param::InvalidTpdu(v)
            | Param::Unknown { value: v, .. } => w.put_slice(v),
        }
    }
}

/// The parameters of one TPDU: either the validated encoded block of a decoded TPDU, or
/// a caller-provided list to encode.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a>(Repr<'a>);

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    Encoded { bytes: &'a [u8], kind: TpduKind },
    List(&'a [Param<'a>]),
}

impl<'a> Params<'a> {
    /// No parameters.
    pub const EMPTY: Params<'static> = Params(Repr::List(&[]));

    /// Parameters to encode, in this order.
    pub fn list(params: &'a [Param<'a>]) -> Self {
        Params(Repr::List(params))
    }

    /// Validates an encoded parameter block of a TPDU of type `kind`. `offset` is the
    /// block's position in the TPDU, used in errors.
    pub fn parse(kind: TpduKind, bytes: &'a [u8], offset: usize) -> Result<Self, TpduError> {
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            let at = offset + r.position();
            let code = r.u8().map_err(|_| TpduError::Truncated {
                field: "parameter code",
                offset: at,
                needed: 1,
            })?;
            let len = r.u8().map_err(|s| TpduError::Truncated {
                field: "parameter length",
                offset: offset + s.offset,
                needed: 1,
            })?;
            let value = r
                .take(usize::from(len))
                .map_err(|_| TpduError::ParameterLength {
                    offset: at,
                    code,
                    len,
                    problem: "runs past the end of the header",
                })?;
            Param::parse(kind, code, value, at)?;
        }
        Ok(Params(Repr::Encoded { bytes, kind }))
    }

    /// Iterates over the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        match self.0 {
            Repr::Encoded { bytes, kind } => ParamIter {
                repr: IterRepr::Encoded {
                    reader: Reader::new(bytes),
                    kind,
                },
                offset: 0,
            },
            Repr::List(list) => ParamIter {
                repr: IterRepr::List(list.iter()),
                offset: 0,
            },
        }
    }

    /// Iterates over the parameters with the offset of each parameter's code octet,
    /// counted from the start of the parameter block.
    pub fn iter_with_offsets(&self) -> impl Iterator<Item = (usize, Param<'a>)> + 'a {
        let mut it = self.iter();
        core::iter::from_fn(move || {
            let at = it.offset;
            it.next().map(|p| (at, p))
        })
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Octets the block occupies when encoded.
    pub fn encoded_len(&self) -> usize {
        match self.0 {
            Repr::Encoded { bytes, .. } => bytes.len(),
            Repr::List(list) => list.iter().map(|p| 2 + p.value_len()).sum(),
        }
    }

    /// Writes the block; returns the position of the checksum value within the writer,
    /// if a checksum parameter was written.
    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<Option<usize>, Overflow> {
        if let Repr::Encoded { bytes, .. } = self.0 {
            // A decoded block is written back as received, so a peer's non-minimal
            // encodings (an F0 of two octets, say) keep their length.
            let start = w.position();
            w.put_slice(bytes)?;
            let checksum_at = self
                .iter_with_offsets()
                .find(|(_, p)| matches!(p, Param::Checksum(_)))
                .map(|(at, _)| start + at + 2);
            if let Some(at) = checksum_at {
                // The TPDU encoder computes the checksum over a zeroed field.
                w.written_mut()[at..at + 2].fill(0);
            }
            return Ok(checksum_at);
        }
        let mut checksum_at = None;
        for p in self.iter() {
            if let Param::Checksum(_) = p {
                checksum_at = Some(w.position() + 2);
            }
            p.encode(w)?;
        }
        Ok(checksum_at)
    }

    /// The C0 TPDU size, if present.
    pub fn tpdu_size(&self) -> Option<TpduSize> {
        self.iter().find_map(|p| match p {
            Param::TpduSize(s) => Some(s),
            _ => None,
        })
    }

    /// The C1 calling TSAP, if present.
    pub fn calling_tsap(&self) -> Option<&'a [u8]> {
        self.iter().find_map(|p| match p {
            Param::CallingTsap(v) => Some(v),
            _ => None,
        })
    }

    /// The C2 called TSAP, if present.
    pub fn called_tsap(&self) -> Option<&'a [u8]> {
        self.iter().find_map(|p| match p {
            Param::CalledTsap(v) => Some(v),
            _ => None,
        })
    }

    /// The F0 preferred maximum TPDU size in octets (the parameter counts 128-octet
    /// units), if present.
    pub fn preferred_max_tpdu_size(&self) -> Option<u64> {
        self.iter().find_map(|p| match p {
            Param::PreferredMaxTpduSize(units) => Some(u64::from(units) * 128),
            _ => None,
        })
    }

    /// The C7 alternative protocol classes, if present.
    pub fn alternative_classes(&self) -> Option<&'a [u8]> {
        self.iter().find_map(|p| match p {
            Param::AlternativeClasses(v) => Some(v),
            _ => None,
        })
    }

    /// The E0 additional clearing information of a DR, if present.
    pub fn additional_info(&self) -> Option<&'a [u8]> {
        self.iter().find_map(|p| match p {
            Param::AdditionalInfo(v) => Some(v),
            _ => None,
        })
    }

    /// The invalid-TPDU parameter of an ER, if present.
    pub fn invalid_tpdu(&self) -> Option<&'a [u8]> {
        self.iter().find_map(|p| match p {
            Param::InvalidTpdu(v) => Some(v),
            _ => None,
        })
    }

    /// Whether a checksum parameter is present.
    pub fn has_checksum(&self) -> bool {
        self.iter().any(|p| matches!(p, Param::Checksum(_)))
    }
}

/// Parameters compare equal when they list the same parameters in the same order.
/// Checksum octets are derived from the encoded TPDU, so their values do not take part.
impl PartialEq for Params<'_> {
    fn eq(&self, other: &Self) -> bool {
        fn blank(p: Param<'_>) -> Param<'_> {
            match p {
                Param::Checksum(_) => Param::Checksum([0, 0]),
                p => p,
            }
        }
        self.iter().map(blank).eq(other.iter().map(blank))
    }
}

impl Eq for Params<'_> {}

/// Iterator over [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    repr: IterRepr<'a>,
    /// Offset in the block of the next parameter.
    offset: usize,
}

#[derive(Debug, Clone)]
enum IterRepr<'a> {
    Encoded { reader: Reader<'a>, kind: TpduKind },
    List(core::slice::Iter<'a, Param<'a>>),
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        match &mut self.repr {
            IterRepr::List(it) => {
                let p = it.next().copied()?;
                self.offset += 2 + p.value_len();
                Some(p)
            }
            IterRepr::Encoded { reader, kind } => {
                // The block was validated by `Params::parse`, so these reads succeed;
                // should they not, iteration simply ends.
                let code = reader.u8().ok()?;
                let len = reader.u8().ok()?;
                let value = reader.take(usize::from(len)).ok()?;
                self.offset = reader.position();
                Param::parse(*kind, code, value, 0).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_round_trips() {
        let params = [
            Param::TpduSize(TpduSize::S2048),
            Param::CallingTsap(&[1, 0]),
            Param::CalledTsap(&[1, 2]),
            Param::Version(1),
            Param::Protection(b"secret"),
            Param::AdditionalOptions(0x01),
            Param::AlternativeClasses(&[0x20, 0x00]),
            Param::PreferredMaxTpduSize(0x1234),
            Param::InactivityTimer(120_000),
            Param::AckTime(500),
            Param::ResidualErrorRate([1, 2, 3]),
            Param::Priority(7),
            Param::TransitDelay([1, 2, 3, 4]),
            Param::Throughput(&[9; 12]),
            Param::SubsequenceNumber(3),
            Param::ReassignmentTime(30),
            Param::FlowControlConfirmation {
                lower_window_edge: 0x0102_0304,
                subsequence: 5,
                credit: 6,
            },
            Param::SelectiveAck(&[1, 2, 3, 4]),
            Param::AdditionalInfo(b"bye"),
            Param::Unknown {
                code: 0x99,
                value: &[0xaa, 0xbb],
            },
        ];
        let list = Params::list(&params);
        let mut buf = [0u8; 255];
        let mut w = Writer::new(&mut buf);
        assert_eq!(list.encode(&mut w), Ok(None));
        let n = w.position();
        assert_eq!(n, list.encoded_len());
        let parsed = Params::parse(TpduKind::ConnectionRequest, &buf[..n], 0).unwrap();
        assert_eq!(parsed, list);
        assert_eq!(parsed.tpdu_size(), Some(TpduSize::S2048));
        assert_eq!(parsed.calling_tsap(), Some(&[1u8, 0][..]));
        assert_eq!(parsed.called_tsap(), Some(&[1u8, 2][..]));
        assert_eq!(parsed.preferred_max_tpdu_size(), Some(0x1234 * 128));
        assert_eq!(parsed.additional_info(), Some(&b"bye"[..]));
        let offsets: Vec<usize> = parsed.iter_with_offsets().map(|(at, _)| at).collect();
        let listed: Vec<usize> = list.iter_with_offsets().map(|(at, _)| at).collect();
        assert_eq!(offsets, listed);
        assert_eq!(&offsets[..3], &[0, 3, 7]);
    }

    #[test]
    fn c1_is_invalid_tpdu_in_an_er() {
        let p = Params::parse(TpduKind::Error, &[0xc1, 2, 0x02, 0xf0], 4).unwrap();
        assert_eq!(p.invalid_tpdu(), Some(&[0x02u8, 0xf0][..]));
        assert_eq!(p.calling_tsap(), None);
    }

    #[test]
    fn malformed_blocks_name_offset_and_code() {
        let cases: &[(&[u8], TpduError)] = &[
            (
                &[0xc0],
                TpduError::Truncated {
                    field: "parameter length",
                    offset: 8,
                    needed: 1,
                },
            ),
            (
                &[0xc1, 5, 1, 2],
                TpduError::ParameterLength {
                    offset: 7,
                    code: 0xc1,
                    len: 5,
                    problem: "runs past the end of the header",
                },
            ),
            (
                &[0xc0, 2, 10, 0],
                TpduError::ParameterLength {
                    offset: 7,
                    code: 0xc0,
                    len: 2,
                    problem: "wrong length for this parameter",
                },
            ),
            (
                &[0xc2, 0, 0xc0, 1, 0x0e],
                TpduError::InvalidValue {
                    field: "TPDU size parameter (C0)",
                    offset: 11,
                    value: 0x0e,
                },
            ),
            (
                &[0xf0, 5, 1, 2, 3, 4, 5],
                TpduError::ParameterLength {
                    offset: 7,
                    code: 0xf0,
                    len: 5,
                    problem: "must be 1 to 4 octets",
                },
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(
                Params::parse(TpduKind::ConnectionRequest, bytes, 7),
                Err(*err),
                "{bytes:02x?}"
            );
        }
    }
}
