//! RFC 1006's expedited data extension to class 0 (RFC 1006 §5, "The Protocol").
//!
//! Class 0 of X.224 has no expedited data; RFC 1006 adds it for ISO transport over
//! TCP:
//!
//! - it is negotiated in the CR/CC **additional option selection** parameter (C6): bit 1
//!   (`0x01`) is "use of transport expedited data transfer service". The initiator
//!   proposes it in its CR; the responder selects it in its CC (or leaves it out, which
//!   means non-use). It is in use only when both did.
//! - the **ED TPDU** then has the shape of a class 0 DT: LI = 2, code `0x10`, one octet
//!   with EOT (always set: an expedited TSDU is never segmented) and TPDU-NR (always 0),
//!   then the user data: 1 to 16 octets (X.224 §13.8: "not exceeding 16 octets"). There
//!   is no DST-REF and no EA: TCP delivers it, nothing acknowledges it.
//!
//! This module owns those rules as pure functions; the connection state machine applies
//! them (negotiation, sending, receiving) and the codec in [`tpdu`](super::tpdu) decodes
//! and encodes the TPDU (`ExpeditedData` with `dst_ref: None`).

use super::codes::Format;
use super::params::{Param, Params};
use super::tpdu::ExpeditedData;

/// Bit 1 of the additional option selection parameter (C6): use of the transport
/// expedited data transfer service.
pub const OPTION_EXPEDITED: u8 = 0x01;

/// Most user data one ED carries (X.224 §13.8.3; RFC 1006 keeps the limit).
pub const MAX_ED_DATA: usize = 16;

/// Whether a CR or CC's variable part selects expedited data (C6 with bit 1 set).
///
/// ```
/// use proto_core::cotp::{expedited, Param, Params};
/// let cr = [Param::AdditionalOptions(expedited::OPTION_EXPEDITED)];
/// assert!(expedited::selected(&Params::list(&cr)));
/// assert!(!expedited::selected(&Params::EMPTY));
/// ```
pub fn selected(params: &Params<'_>) -> bool {
    params
        .iter()
        .any(|p| matches!(p, Param::AdditionalOptions(o) if o & OPTION_EXPEDITED != 0))
}

/// The C6 parameter that proposes (CR) or selects (CC) expedited data.
pub const fn option_param() -> Param<'static> {
    Param::AdditionalOptions(OPTION_EXPEDITED)
}

/// The RFC 1006 class 0 ED carrying `data` (EOT set, TPDU-NR 0, no DST-REF). The
/// length is not checked here; [`check_len`] says whether it may be sent.
pub fn class0(data: &[u8]) -> ExpeditedData<'_> {
    ExpeditedData {
        format: Format::Normal,
        dst_ref: None,
        eot: true,
        nr: 0,
        params: Params::EMPTY,
        data,
    }
}

/// Why an ED cannot be sent or is not acceptable in class 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EdError {
    /// User data of 0 or more than 16 octets.
    #[error("expedited data must be 1 to {MAX_ED_DATA} octets, not {len}")]
    Length {
        /// The length given or received.
        len: usize,
    },
    /// Not the RFC 1006 form: a DST-REF, a parameter, or the extended format.
    #[error("not the RFC 1006 class 0 ED form (LI 2, no DST-REF, no parameters)")]
    Form,
}

/// Checks the length of expedited user data: 1 to [`MAX_ED_DATA`] octets.
pub fn check_len(len: usize) -> Result<(), EdError> {
    if (1..=MAX_ED_DATA).contains(&len) {
        Ok(())
    } else {
        Err(EdError::Length { len })
    }
}

/// Checks a received ED against RFC 1006's class 0 form and the 16-octet limit. EOT
/// and TPDU-NR are not checked: each ED is one whole expedited TSDU whatever they say
/// (tolerated, as there is nothing else they could mean in class 0).
pub fn check_received(ed: &ExpeditedData<'_>) -> Result<(), EdError> {
    if ed.dst_ref.is_some() || ed.format != Format::Normal || !ed.params.is_empty() {
        return Err(EdError::Form);
    }
    check_len(ed.data.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cotp::tests_support::hex;
    use crate::cotp::{Tpdu, TpduError};

    #[test]
    fn class0_ed_codec_table() {
        // (encoded TPDU, expected data, accepted by `check_received`)
        let cases: &[(&str, &[u8], Result<(), EdError>)] = &[
            ("021080aa", &[0xaa], Ok(())),
            (
                "021080000102030405060708090a0b0c0d0e0f",
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
                Ok(()),
            ),
            (
                "021080000102030405060708090a0b0c0d0e0f10",
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
                Err(EdError::Length { len: 17 }),
            ),
            ("021080", &[], Err(EdError::Length { len: 0 })),
            // EOT clear and a non-zero TPDU-NR are tolerated.
            ("021005ab", &[0xab], Ok(())),
            // The X.224 form with a DST-REF is not RFC 1006's class 0 ED.
            ("04100001 80ab", &[0xab], Err(EdError::Form)),
        ];
        for (wire, data, verdict) in cases {
            let bytes = hex(&wire.replace(' ', ""));
            let Tpdu::ExpeditedData(ed) = Tpdu::decode(&bytes).unwrap() else {
                panic!("{wire}: not an ED")
            };
            assert_eq!(ed.data, *data, "{wire}");
            assert_eq!(check_received(&ed), *verdict, "{wire}");
            // Encoding gives the same bytes back.
            let mut out = [0u8; 64];
            let n = Tpdu::ExpeditedData(ed).encode(&mut out).unwrap();
            assert_eq!(&out[..n], &bytes[..], "{wire}");
        }
        // LI 1 is too short for an ED.
        assert!(matches!(
            Tpdu::decode(&hex("0110")),
            Err(TpduError::LengthIndicator { .. })
        ));
    }

    #[test]
    fn class0_builder_encodes_the_rfc1006_shape() {
        let mut out = [0u8; 32];
        let n = Tpdu::ExpeditedData(class0(b"hi")).encode(&mut out).unwrap();
        assert_eq!(&out[..n], &hex("0210806869")[..]);
        assert_eq!(check_received(&class0(b"hi")), Ok(()));
    }

    #[test]
    fn lengths_at_the_edges() {
        for (len, ok) in [(0, false), (1, true), (16, true), (17, false)] {
            assert_eq!(check_len(len).is_ok(), ok, "{len}");
        }
    }

    #[test]
    fn option_bit_in_c6() {
        // (C6 value, selects expedited data)
        for (v, sel) in [(0x00, false), (0x01, true), (0x03, true), (0x02, false)] {
            let p = [
                Param::TpduSize(crate::cotp::TpduSize::S1024),
                Param::AdditionalOptions(v),
            ];
            assert_eq!(selected(&Params::list(&p)), sel, "{v:#x}");
        }
        // Decoded from the wire: C6 length 1, value 01.
        let p = Params::parse(crate::cotp::TpduKind::ConnectionRequest, &[0xc6, 1, 1], 7).unwrap();
        assert!(selected(&p));
        assert_eq!(option_param(), Param::AdditionalOptions(1));
    }
}
