//! SESS_INIT exchange and parameter negotiation (RFC 9174 §4.6–§4.8).

use super::*;
use crate::tcpcl::{CloseReason, ContactFailure};
use crate::testing::Side::{A, B};

#[test]
fn passive_sends_sess_init_only_after_the_actives() {
    let mut b = Raw::new(config("dtn://b/"), Side::Passive);
    b.feed(&contact(0));
    assert_eq!(b.out_msgs(), ["CONTACT v4 flags=0"]);
    let init = sess_init("dtn://a/", 0, 500, &[]);
    b.feed(&init[..init.len() - 1]);
    assert!(b.out().is_empty());
    b.feed(&init[init.len() - 1..]);
    let out = b.out_msgs();
    assert_eq!(out.len(), 1);
    assert!(
        out[0].starts_with("SESS_INIT keepalive=0 segment_mru=10485760"),
        "{out:?}"
    );
    assert!(out[0].contains("node_id=\"dtn://b/\""));
}

#[test]
fn keepalive_is_the_minimum_and_mrus_are_recorded() {
    let cases = [
        (30, 10, 10),
        (10, 30, 10),
        (0, 30, 0),
        (30, 0, 0),
        (5, 5, 5),
    ];
    for (i, (ka, kb, want)) in cases.into_iter().enumerate() {
        let a = SessionConfig {
            keepalive_interval: ka,
            segment_mru: 1111,
            transfer_mru: 2222,
            ..config("ipn:1.0")
        };
        let b = SessionConfig {
            keepalive_interval: kb,
            segment_mru: 3333,
            transfer_mru: 4444,
            ..config("dtn://b/")
        };
        let mut p = pair_with(a, b, SEEDS[i % SEEDS.len()]);
        establish(&mut p);
        assert_eq!(p.a.session.keepalive_interval(), Some(want));
        assert_eq!(p.b.session.keepalive_interval(), Some(want));
        assert_eq!(p.a.session.peer_segment_mru(), Some(3333));
        assert_eq!(p.a.session.peer_transfer_mru(), Some(4444));
        assert_eq!(p.b.session.peer_segment_mru(), Some(1111));
        assert_eq!(p.b.session.peer_transfer_mru(), Some(2222));
        assert_eq!(p.b.session.peer_node_id(), Some("ipn:1.0"));
    }
}

fn failing_init(init: Vec<u8>) -> (Vec<String>, Vec<Event>) {
    let mut b = Raw::new(config("dtn://b/"), Side::Passive);
    b.feed(&contact(0));
    let _ = b.out();
    b.feed(&init);
    (b.out_msgs(), b.events())
}

#[test]
fn unknown_critical_session_extension_is_a_contact_failure() {
    let (out, ev) = failing_init(sess_init(
        "dtn://a/",
        0,
        100,
        &[ExtensionItem::new(true, 0x7777, b"x")],
    ));
    assert_eq!(out, ["SESS_TERM flags=0 reason=contact failure"]);
    assert_eq!(
        ev,
        [Event::Closed {
            reason: CloseReason::ContactFailure(ContactFailure::CriticalExtension {
                item_type: 0x7777
            })
        }]
    );
    // Non-critical unknown items are ignored.
    let mut b = Raw::new(config("dtn://b/"), Side::Passive);
    b.feed(&contact(0));
    b.feed(&sess_init(
        "dtn://a/",
        0,
        100,
        &[ExtensionItem::new(false, 0x7777, b"x")],
    ));
    assert!(b.s.is_established());
}

#[test]
fn invalid_peer_node_id_is_a_contact_failure() {
    let (out, ev) = failing_init(sess_init("not a uri", 0, 100, &[]));
    assert_eq!(out, ["SESS_TERM flags=0 reason=contact failure"]);
    assert_eq!(
        ev,
        [Event::Closed {
            reason: CloseReason::ContactFailure(ContactFailure::InvalidNodeId)
        }]
    );
}

#[test]
fn own_node_id_is_validated_at_construction() {
    let err =
        Session::new(config("node-without-scheme"), Side::Active, Instant::now()).unwrap_err();
    assert!(matches!(err, crate::tcpcl::ConfigError::InvalidNodeId(_)));
}

#[test]
fn node_authentication_against_the_tls_certificate() {
    let tls = |n: &str, authn: bool| SessionConfig {
        can_tls: true,
        require_node_authn: authn,
        ..config(n)
    };
    for seed in SEEDS {
        // The certificate names A's node ID: accepted.
        let mut p = pair_with(tls("dtn://a/", false), tls("dtn://b/", true), seed);
        p.b.cert_node_ids = vec!["dtn://other/".into(), "dtn://a/".into()];
        establish(&mut p);
        // It names someone else: SESS_TERM Contact Failure.
        let mut p = pair_with(tls("dtn://a/", false), tls("dtn://b/", true), seed);
        p.b.cert_node_ids = vec!["dtn://mallory/".into()];
        p.run_until(Duration::from_secs(5), |p| p.both_closed());
        assert_eq!(
            p.b.session.close_reason(),
            Some(CloseReason::ContactFailure(
                ContactFailure::NodeNotAuthenticated
            ))
        );
        assert!(has(
            &p,
            A,
            "Terminating { reason: SessTermReason(4), by_peer: true }"
        ));
        assert!(!has(&p, B, "SessionEstablished"));
    }
    // Without TLS, node authentication cannot succeed.
    let (out, _) = {
        let mut b = Raw::new(
            SessionConfig {
                require_node_authn: true,
                ..config("dtn://b/")
            },
            Side::Passive,
        );
        b.feed(&contact(0));
        let _ = b.out();
        b.feed(&sess_init("dtn://a/", 0, 100, &[]));
        (b.out_msgs(), b.events())
    };
    assert_eq!(out, ["SESS_TERM flags=0 reason=contact failure"]);
}

#[test]
fn sess_init_larger_than_the_bound_terminates() {
    let mut b = Raw::new(
        SessionConfig {
            max_sess_init_len: 100,
            ..config("dtn://b/")
        },
        Side::Passive,
    );
    b.feed(&contact(0));
    let _ = b.out();
    let long = format!("dtn://{}/", "n".repeat(200));
    b.feed(&sess_init(&long, 0, 100, &[]));
    assert_eq!(b.out_msgs(), ["SESS_TERM flags=0 reason=contact failure"]);
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::ContactFailure(ContactFailure::SessInitTooLarge)
        }]
    );
}

#[test]
fn empty_peer_node_id_is_accepted_unless_node_authn_is_required() {
    // RFC 9174 §4.6: a zero-length Node ID means the peer withholds it.
    let mut b = Raw::new(config("dtn://b/"), Side::Passive);
    b.feed(&contact(0));
    let _ = b.out();
    b.feed(&sess_init("", 0, 100, &[]));
    assert!(b.s.is_established());
    assert_eq!(b.s.peer_node_id(), Some(""));
    // With node authentication required, an absent Node ID cannot be authenticated
    // (§4.4.4.3): Contact Failure.
    let mut b = Raw::new(
        SessionConfig {
            can_tls: true,
            require_node_authn: true,
            ..config("dtn://b/")
        },
        Side::Passive,
    );
    b.feed(&contact(1));
    let _ = b.out();
    b.s.tls_established(b.now, &["dtn://a/"]).unwrap();
    let _ = b.events();
    b.feed(&sess_init("", 0, 100, &[]));
    assert_eq!(b.out_msgs(), ["SESS_TERM flags=0 reason=contact failure"]);
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::ContactFailure(ContactFailure::NodeNotAuthenticated)
        }]
    );
}

#[test]
fn malformed_session_extension_block_is_a_contact_failure() {
    // RFC 9174 §4.6: extension items disagreeing with the Session Extension Length
    // make the SESS_INIT reception fail.
    let mut init = vec![0x07, 0, 0];
    init.extend(100u64.to_be_bytes());
    init.extend(1000u64.to_be_bytes());
    init.extend(8u16.to_be_bytes());
    init.extend(b"dtn://a/");
    init.extend(5u32.to_be_bytes());
    init.extend([0x00, 0x00, 0x01, 0x00, 0x0a]); // an item claiming 10 value bytes
    let (out, ev) = failing_init(init);
    assert_eq!(out, ["SESS_TERM flags=0 reason=contact failure"]);
    assert_eq!(
        ev,
        [Event::Closed {
            reason: CloseReason::ContactFailure(ContactFailure::MalformedSessInit)
        }]
    );
}

#[test]
fn node_id_matching_normalizes_scheme_case_and_ipn_numbers() {
    // RFC 9174 §4.4.1: RFC 3986 comparison with scheme-based normalization.
    use crate::tcpcl::session::handshake::node_ids_match as m;
    assert!(m("dtn://a/", "dtn://a/"));
    assert!(m("DTN://a/", "dtn://a/"));
    assert!(m("ipn:1.0", "IPN:01.00"));
    assert!(!m("dtn://a/", "dtn://A/"));
    assert!(!m("dtn://a/", "dtn://a"));
    assert!(!m("ipn:1.0", "ipn:1.1"));
    assert!(!m("ipn:1.0", "ipn:1.0.0"));
    assert!(!m("dtn://a/", ""));
    assert!(!m("", ""));
    // Through a session: the certificate's NODE-ID differs only in scheme case.
    for seed in SEEDS {
        let tls = |n: &str, authn: bool| SessionConfig {
            can_tls: true,
            require_node_authn: authn,
            ..config(n)
        };
        let mut p = pair_with(tls("ipn:7.0", false), tls("dtn://b/", true), seed);
        p.b.cert_node_ids = vec!["IPN:007.0".into()];
        establish(&mut p);
    }
}

#[test]
fn reserved_session_extension_flags_are_ignored() {
    // RFC 9174 §4.8: reserved item flag bits are ignored; only CRITICAL counts.
    let mut b = Raw::new(config("dtn://b/"), Side::Passive);
    b.feed(&contact(0));
    let _ = b.out();
    let item = ExtensionItem {
        flags: crate::tcpcl::ExtensionFlags(0xfe),
        item_type: 0x7777,
        value: b"x",
    };
    b.feed(&sess_init("dtn://a/", 0, 100, &[item]));
    assert!(b.s.is_established());
}
