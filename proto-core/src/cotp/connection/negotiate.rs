//! Responder-side negotiation of a CR: protocol class, TPDU size, TSAP policy. Pure
//! functions, so every rule is tested on its own.

use crate::cotp::codes::{DisconnectReason, TpduSize};
use crate::cotp::tpdu::Connect;
use crate::cotp::Tsap;

/// Whether a responder that implements only class 0 may answer a CR proposing
/// `preferred` with `alternatives` (C7 octets, class in the high nibble).
///
/// X.224 §6.5.4 table 3: class 0 is a valid response when class 0 or 1 is preferred,
/// when class 2 is preferred with 0 as an alternative, and when class 3 or 4 is
/// preferred with 0 or 1 as an alternative.
pub fn class0_acceptable(preferred: u8, alternatives: &[u8]) -> bool {
    let alt = |c: u8| alternatives.iter().any(|&a| a >> 4 == c);
    match preferred {
        0 | 1 => true,
        2 => alt(0),
        3 | 4 => alt(0) || alt(1),
        _ => false,
    }
}

/// The TPDU size a responder selects: the proposal (128 without C0) capped by its own
/// maximum. A larger proposal is negotiated down, never refused.
pub fn select_tpdu_size(proposed: Option<TpduSize>, local_max: TpduSize) -> TpduSize {
    proposed.unwrap_or(TpduSize::S128).min(local_max)
}

/// The preferred maximum TPDU size (F0, in bytes) a responder answers with, if the CR
/// carried one: the proposal capped by `local_max_bytes`, rounded down to a multiple of
/// 128 and never below 128.
pub fn select_preferred_size(proposed_bytes: Option<u64>, local_max_bytes: u64) -> Option<u64> {
    proposed_bytes.map(|p| (p.min(local_max_bytes) / 128).max(1) * 128)
}

/// Outcome of checking a CR against the responder's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accept with these negotiated values.
    Accept {
        /// Selected TPDU size.
        tpdu_size: TpduSize,
        /// Selected preferred maximum TPDU size in bytes, when the CR proposed one.
        preferred_max: Option<u64>,
    },
    /// Refuse with a DR carrying this reason.
    Refuse(DisconnectReason),
}

/// Applies the class rule, the TSAP policy (`local_tsap`: the called TSAP this
/// responder answers to, `None` for any) and size negotiation to a CR.
pub fn decide(
    cr: &Connect<'_>,
    local_tsap: Option<&Tsap>,
    local_max: TpduSize,
    local_max_bytes: u64,
) -> Decision {
    let alternatives = cr.params.alternative_classes().unwrap_or(&[]);
    if !class0_acceptable(cr.class, alternatives) {
        return Decision::Refuse(DisconnectReason::NEGOTIATION_FAILED);
    }
    if let Some(want) = local_tsap {
        if cr.params.called_tsap() != Some(want.as_bytes()) {
            return Decision::Refuse(DisconnectReason::ADDRESS_UNKNOWN);
        }
    }
    if cr
        .params
        .calling_tsap()
        .is_some_and(|t| t.len() > Tsap::MAX_LEN)
        || cr
            .params
            .called_tsap()
            .is_some_and(|t| t.len() > Tsap::MAX_LEN)
    {
        return Decision::Refuse(DisconnectReason::HEADER_OR_PARAMETER_LENGTH_INVALID);
    }
    Decision::Accept {
        tpdu_size: select_tpdu_size(cr.params.tpdu_size(), local_max),
        preferred_max: select_preferred_size(cr.params.preferred_max_tpdu_size(), local_max_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cotp::{Param, Params};

    #[test]
    fn class_table_3() {
        // (preferred, alternatives, class 0 acceptable)
        let table: &[(u8, &[u8], bool)] = &[
            (0, &[], true),
            (1, &[], true),
            (1, &[0x00], true),
            (2, &[], false),
            (2, &[0x00], true),
            (2, &[0x10], false),
            (3, &[], false),
            (3, &[0x20], false),
            (3, &[0x10], true),
            (3, &[0x00], true),
            (4, &[], false),
            (4, &[0x20, 0x30], false),
            (4, &[0x20, 0x00], true),
            (4, &[0x10], true),
            (5, &[0x00], false),
            (15, &[], false),
        ];
        for &(pref, alt, ok) in table {
            assert_eq!(
                class0_acceptable(pref, alt),
                ok,
                "preferred {pref} alternatives {alt:02x?}"
            );
        }
    }

    #[test]
    fn sizes_negotiate_down_never_refuse() {
        assert_eq!(select_tpdu_size(None, TpduSize::S1024), TpduSize::S128);
        assert_eq!(
            select_tpdu_size(Some(TpduSize::S8192), TpduSize::S1024),
            TpduSize::S1024
        );
        assert_eq!(
            select_tpdu_size(Some(TpduSize::S256), TpduSize::S1024),
            TpduSize::S256
        );
        assert_eq!(select_preferred_size(None, 8192), None);
        assert_eq!(select_preferred_size(Some(65_536), 8192), Some(8192));
        assert_eq!(select_preferred_size(Some(1000), 8192), Some(896));
        assert_eq!(select_preferred_size(Some(0), 8192), Some(128));
    }

    #[test]
    fn decisions() {
        let tsap = Tsap::new(&[1, 2]).unwrap();
        let params = [Param::CalledTsap(&[1, 2]), Param::TpduSize(TpduSize::S4096)];
        let mut cr = Connect {
            params: Params::list(&params),
            ..Connect::default()
        };
        assert_eq!(
            decide(&cr, Some(&tsap), TpduSize::S1024, 1024),
            Decision::Accept {
                tpdu_size: TpduSize::S1024,
                preferred_max: None
            }
        );
        let other = Tsap::new(&[1, 3]).unwrap();
        assert_eq!(
            decide(&cr, Some(&other), TpduSize::S1024, 1024),
            Decision::Refuse(DisconnectReason::ADDRESS_UNKNOWN)
        );
        cr.class = 2;
        assert_eq!(
            decide(&cr, None, TpduSize::S1024, 1024),
            Decision::Refuse(DisconnectReason::NEGOTIATION_FAILED)
        );
    }
}
