//! The v3 contact header exchange: what we send and what both headers negotiate
//! (RFC 7242 §4.1, §4.2).
//!
//! The header itself is [`ContactHeaderV3`](crate::tcpcl::ContactHeaderV3), shared with
//! the v4 code that recognises (and refuses) v3 peers.

use crate::tcpcl::{ContactHeaderV3, V3ContactFlags};

/// The session parameters both contact headers agree on (RFC 7242 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Negotiated {
    /// Keepalive interval in seconds: the minimum of both headers; 0 (either side
    /// sent 0) disables keepalives (§4.2, §5.6).
    pub keepalive: u16,
    /// Segment acknowledgments: only when both headers request them (§4.2).
    pub acks: bool,
    /// Reactive fragmentation: only when both headers request it (§4.2). proto never
    /// fragments reactively; the flag is reported, not acted on.
    pub reactive_fragmentation: bool,
    /// Bundle refusal: only when both headers allow it *and* acknowledgments are on
    /// (§4.2; §4.1 forbids the refusal flag without the acknowledgment flag).
    pub refusal: bool,
    /// We send a LENGTH message before each bundle: the peer's header requested
    /// LENGTH messages. The flag is a request by the receiving side (§4.1 "Request
    /// sending of LENGTH messages"), so the peer's flag governs what we send and ours
    /// governs what the peer sends (§5.5).
    pub send_length: bool,
    /// We asked the peer for LENGTH messages. LENGTH messages are accepted whether or
    /// not we asked; this only records the request.
    pub length_requested: bool,
}

impl Negotiated {
    /// Negotiates from our header's flags and keepalive and the peer's header.
    pub fn new(ours: V3ContactFlags, our_keepalive: u16, peer: &ContactHeaderV3<'_>) -> Self {
        let both = |f: V3ContactFlags| ours.contains(f) && peer.flags.contains(f);
        let acks = both(V3ContactFlags::ENA_ACK);
        Negotiated {
            keepalive: our_keepalive.min(peer.keepalive),
            acks,
            reactive_fragmentation: both(V3ContactFlags::ENA_FRAG),
            refusal: acks && both(V3ContactFlags::ENA_REFUSE),
            send_length: peer.flags.contains(V3ContactFlags::ENA_LENGTH),
            length_requested: ours.contains(V3ContactFlags::ENA_LENGTH),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag combination of §4.2 that matters, one row each.
    #[test]
    fn tcpcl3_negotiation_table() {
        // (ours, our keepalive, peer's, peer keepalive) -> (keepalive, acks, frag,
        // refusal, send_length, length_requested)
        type Row = (u8, u16, u8, u16, (u16, bool, bool, bool, bool, bool));
        let rows: &[Row] = &[
            (0x00, 0, 0x00, 0, (0, false, false, false, false, false)),
            (0x01, 30, 0x01, 10, (10, true, false, false, false, false)),
            (0x01, 30, 0x00, 10, (10, false, false, false, false, false)),
            (0x00, 0, 0x01, 60, (0, false, false, false, false, false)),
            (0x05, 15, 0x05, 15, (15, true, false, true, false, false)),
            // Refusal needs acks too: both allow refusal, one side has no acks.
            (0x05, 15, 0x04, 15, (15, false, false, false, false, false)),
            (0x04, 15, 0x04, 15, (15, false, false, false, false, false)),
            // Reactive fragmentation only when both request it.
            (0x02, 1, 0x02, 2, (1, false, true, false, false, false)),
            (0x02, 1, 0x00, 2, (1, false, false, false, false, false)),
            // LENGTH: the receiver's request decides who sends.
            (0x00, 5, 0x08, 5, (5, false, false, false, true, false)),
            (0x08, 5, 0x00, 5, (5, false, false, false, false, true)),
            (
                0x0f,
                65535,
                0x0f,
                65535,
                (65535, true, true, true, true, true),
            ),
            // Reserved bits are ignored.
            (0xf0, 3, 0xf1, 4, (3, false, false, false, false, false)),
        ];
        for &(ours, our_ka, theirs, their_ka, want) in rows {
            let peer = ContactHeaderV3 {
                flags: V3ContactFlags(theirs),
                keepalive: their_ka,
                eid: b"dtn://peer/",
            };
            let n = Negotiated::new(V3ContactFlags(ours), our_ka, &peer);
            let got = (
                n.keepalive,
                n.acks,
                n.reactive_fragmentation,
                n.refusal,
                n.send_length,
                n.length_requested,
            );
            assert_eq!(
                got, want,
                "ours {ours:#04x}/{our_ka}, theirs {theirs:#04x}/{their_ka}"
            );
        }
    }
}
