//! Contact headers, negotiation and version mismatch (RFC 7242 §4).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

// ----- contact header and negotiation ----------------------------------------------

#[test]
fn tcpcl3_contact_header_is_sent_at_once_and_negotiated() {
    let mut r = Raw::new(
        SessionConfig {
            keepalive_interval: 30,
            ..cfg("dtn://me/")
        },
        Side::Active,
    );
    // §4.1: magic, version 3, flags (acks, refusal, LENGTH), keepalive, SDNV EID length.
    assert_eq!(r.drain(&[]), contact(0x0d, 30, "dtn://me/"));
    assert_eq!(r.s.state(), State::Contact);
    // The peer's header, split at every octet.
    let h = contact(0x01, 10, "dtn://peer/");
    for b in &h {
        assert_eq!(r.feed(std::slice::from_ref(b)), 1);
    }
    assert_eq!(r.events(), [Event::SessionEstablished]);
    assert_eq!(r.s.peer_node_id(), Some("dtn://peer/"));
    assert_eq!(r.s.peer_keepalive(), Some(10));
    let n = r.s.negotiated().unwrap();
    assert_eq!(n.keepalive, 10);
    assert!(n.acks && !n.refusal && !n.send_length && n.length_requested);
}

#[test]
fn tcpcl3_pair_establishes_with_every_chunking() {
    for seed in SEEDS {
        let mut p = pair_with(cfg("dtn://a/"), cfg("dtn://b/"), seed);
        establish(&mut p);
        assert_eq!(p.a.session.peer_node_id(), Some("dtn://b/"));
        assert_eq!(p.b.session.peer_node_id(), Some("dtn://a/"));
        let n = p.a.session.negotiated().unwrap();
        assert!(n.acks && n.refusal && n.send_length);
    }
}

#[test]
fn tcpcl3_v4_header_gets_v3_header_and_shutdown_version_mismatch() {
    let mut r = Raw::new(cfg("dtn://me/"), Side::Passive);
    // A v4 contact header: magic, version 4, flags.
    assert_eq!(r.feed(b"dtn!\x04\x00"), 6);
    let mut want = contact(0x0d, 0, "dtn://me/");
    want.extend_from_slice(&[0x52, 0x01]); // SHUTDOWN, R flag, reason Version mismatch
    assert_eq!(r.drain(&[]), want);
    assert!(r.s.is_closed());
    assert_eq!(
        r.events(),
        [Event::Closed {
            reason: CloseReason::VersionMismatch { version: 4 }
        }]
    );
    // Decided from the version octet alone.
    let mut r = Raw::new(cfg("dtn://me/"), Side::Active);
    r.drain(&[]);
    assert_eq!(r.feed(b"dtn!\x07"), 5);
    assert_eq!(r.drain(&[]), [0x52, 0x01]);
    assert_eq!(
        r.s.close_reason(),
        Some(CloseReason::VersionMismatch { version: 7 })
    );
}

#[test]
fn tcpcl3_bad_magic_and_oversized_eid_close() {
    let mut r = Raw::new(cfg("dtn://me/"), Side::Passive);
    r.drain(&[]);
    r.feed(b"HTTP/1.1");
    assert_eq!(r.s.close_reason(), Some(CloseReason::BadMagic));
    assert_eq!(r.drain(&[]), b"");
    // An EID longer than max_eid_len is refused from its length field alone.
    let mut r = Raw::new(
        SessionConfig {
            max_eid_len: 16,
            ..cfg("dtn://me/")
        },
        Side::Passive,
    );
    r.drain(&[]);
    let mut h = b"dtn!\x03\x00\x00\x00".to_vec();
    h.extend_from_slice(&[0x8f, 0xff, 0xff, 0xff, 0x7f]); // ~4 GiB EID
    assert_eq!(r.feed(&h), h.len());
    assert_eq!(
        r.s.close_reason(),
        Some(CloseReason::ProtocolError(ProtocolError::TooLarge {
            message_type: 0
        }))
    );
    assert_eq!(r.drain(&[]), [0x50]);
}
