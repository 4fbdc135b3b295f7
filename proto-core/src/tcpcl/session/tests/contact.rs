//! Contact header phase (RFC 9174 §4.2–§4.4): who speaks first, magic and version
//! checks, the contact timeout and the TLS boundary.

use super::*;
use crate::tcpcl::{CloseReason, ContactHeaderV3, SessTermReason, State, TlsRole, V3ContactFlags};
use crate::testing::Side::{A, B};

#[test]
fn active_speaks_first_and_passive_answers_only_after_the_header() {
    let mut a = Raw::new(config("dtn://a/"), Side::Active);
    assert_eq!(a.out_msgs(), ["CONTACT v4 flags=0"]);
    let mut b = Raw::new(config("dtn://b/"), Side::Passive);
    assert!(b.out().is_empty(), "passive must wait for the active side");
    let hdr = contact(0);
    assert_eq!(b.feed(&hdr[..4]), 4);
    assert!(b.out().is_empty());
    assert_eq!(b.feed(&hdr[4..]), 2);
    // The passive side answers the contact header, but not with SESS_INIT yet.
    assert_eq!(b.out_msgs(), ["CONTACT v4 flags=0"]);
    assert_eq!(b.s.state(), State::SessionInit);
}

#[test]
fn pair_establishes_with_any_chunking() {
    for seed in SEEDS {
        let mut p = pair(seed);
        p.max_chunk = 1 + (seed as usize % 7);
        establish(&mut p);
        assert_eq!(p.a.session.peer_node_id(), Some("dtn://b/"));
        assert_eq!(p.b.session.peer_node_id(), Some("dtn://a/"));
        assert_eq!(p.events(A), ["SessionEstablished"]);
        assert_eq!(p.events(B), ["SessionEstablished"]);
        assert!(!p.a.session.tls_in_use());
    }
}

#[test]
fn bad_magic_closes_without_reply() {
    for side in [Side::Active, Side::Passive] {
        let mut r = Raw::new(config("dtn://a/"), side);
        let _ = r.out();
        r.feed(b"GET / HTTP/1.1\r\n");
        assert!(
            r.out().is_empty(),
            "{side:?} must not answer a non-TCPCL peer"
        );
        assert_eq!(
            r.events(),
            [Event::Closed {
                reason: CloseReason::BadMagic
            }]
        );
        assert!(r.s.is_closed());
    }
}

#[test]
fn passive_answers_v3_with_its_header_and_version_mismatch() {
    let v3 = ContactHeaderV3 {
        flags: V3ContactFlags(0x0f),
        keepalive: 30,
        eid: b"dtn://old/",
    };
    let mut bytes = vec![0; v3.encoded_len()];
    v3.encode(&mut bytes).unwrap();
    // Whole header, and just up to the version byte: both are answered at once.
    for cut in [bytes.len(), 5] {
        let mut b = Raw::new(config("dtn://b/"), Side::Passive);
        b.feed(&bytes[..cut]);
        assert_eq!(
            b.out_msgs(),
            [
                "CONTACT v4 flags=0",
                "SESS_TERM flags=0 reason=version mismatch"
            ]
        );
        assert_eq!(
            b.events(),
            [Event::Closed {
                reason: CloseReason::VersionMismatch { version: 3 }
            }]
        );
    }
}

#[test]
fn active_closes_on_another_version_without_sess_term() {
    // RFC 9174 §4.3: the active entity closes the TCP connection; a v3 peer could not
    // parse a v4 SESS_TERM.
    for version in [3u8, 5, 0xff] {
        let mut a = Raw::new(config("dtn://a/"), Side::Active);
        let _ = a.out();
        a.feed(&[b'd', b't', b'n', b'!', version, 0]);
        assert!(a.out().is_empty());
        assert_eq!(
            a.events(),
            [Event::Closed {
                reason: CloseReason::VersionMismatch { version }
            }]
        );
    }
}

#[test]
fn contact_header_wait_is_bounded() {
    let cfg = SessionConfig {
        contact_timeout: Duration::from_secs(3),
        ..config("dtn://b/")
    };
    let mut b = Raw::new(cfg.clone(), Side::Passive);
    assert_eq!(b.s.poll_timeout(), Some(b.now + Duration::from_secs(3)));
    b.advance(Duration::from_secs(2));
    assert!(!b.s.is_closed());
    b.advance(Duration::from_secs(1));
    assert!(b.out().is_empty());
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::ContactTimeout
        }]
    );
    // Waiting for SESS_INIT is bounded too; by then SESS_TERM can be sent.
    let mut b = Raw::new(cfg, Side::Passive);
    b.feed(&contact(0));
    let _ = b.out();
    b.advance(Duration::from_secs(3));
    assert_eq!(b.out_msgs(), ["SESS_TERM flags=0 reason=idle timeout"]);
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::ContactTimeout
        }]
    );
}

#[test]
fn start_tls_at_the_exact_byte_boundary() {
    let cfg = SessionConfig {
        can_tls: true,
        ..config("dtn://b/")
    };
    let mut b = Raw::new(cfg, Side::Passive);
    let mut input = contact(1);
    input.extend_from_slice(b"\x16\x03\x01 client hello");
    // Fed a byte at a time and all at once: consumption stops after the header.
    assert_eq!(b.feed(&input), 6);
    assert_eq!(
        b.events(),
        [Event::StartTls {
            role: TlsRole::Server
        }]
    );
    assert_eq!(b.out_msgs(), ["CONTACT v4 flags=1"]);
    assert_eq!(b.s.handle_input(b.now, &input[6..]).consumed, 0);
    assert_eq!(b.s.state(), State::TlsHandshake);
    b.s.tls_established(b.now, &[]).unwrap();
    assert!(b.out().is_empty(), "passive waits for the active SESS_INIT");
    b.feed(&sess_init("dtn://a/", 0, 1000, &[]));
    assert!(b.out_msgs()[0].starts_with("SESS_INIT"));
    assert!(b.s.tls_in_use());
    assert!(b.s.negotiated().unwrap().tls);

    let mut a = Raw::new(
        SessionConfig {
            can_tls: true,
            ..config("dtn://a/")
        },
        Side::Active,
    );
    assert_eq!(a.out_msgs(), ["CONTACT v4 flags=1"]);
    for byte in contact(1) {
        a.feed(&[byte]);
    }
    assert_eq!(
        a.events(),
        [Event::StartTls {
            role: TlsRole::Client
        }]
    );
    assert!(
        a.out().is_empty(),
        "nothing plaintext after the contact headers"
    );
    assert_eq!(a.s.tls_established(a.now, &[]), Ok(()));
    assert!(a.out_msgs()[0].starts_with("SESS_INIT"));
    assert!(a.s.tls_established(a.now, &[]).is_err());
}

#[test]
fn tls_pair_both_can_tls() {
    for seed in SEEDS {
        let tls = |n: &str| SessionConfig {
            can_tls: true,
            ..config(n)
        };
        let mut p = pair_with(tls("dtn://a/"), tls("dtn://b/"), seed);
        establish(&mut p);
        assert_eq!(p.events(A)[0], "StartTls { role: Client }");
        assert_eq!(p.events(B)[0], "StartTls { role: Server }");
        assert!(p.a.session.tls_in_use() && p.b.session.tls_in_use());
        // One side without CAN_TLS: plaintext session.
        let mut p = pair_with(tls("dtn://a/"), config("dtn://b/"), seed);
        establish(&mut p);
        assert!(!p.a.session.tls_in_use());
    }
}

#[test]
fn require_tls_against_a_peer_without_tls_is_a_contact_failure() {
    let req = SessionConfig {
        can_tls: true,
        require_tls: true,
        ..config("dtn://b/")
    };
    let mut b = Raw::new(req.clone(), Side::Passive);
    b.feed(&contact(0));
    assert_eq!(
        b.out_msgs(),
        [
            "CONTACT v4 flags=1",
            "SESS_TERM flags=0 reason=contact failure"
        ]
    );
    assert_eq!(
        b.events(),
        [Event::Closed {
            reason: CloseReason::TlsRequired
        }]
    );
    for seed in SEEDS {
        let mut p = pair_with(
            SessionConfig {
                node_id: "dtn://a/".into(),
                ..req.clone()
            },
            config("dtn://b/"),
            seed,
        );
        p.run_until(Duration::from_secs(5), |p| p.both_closed());
        assert_eq!(p.events(A), ["Closed { reason: TlsRequired }"]);
        // The peer sees the SESS_TERM, answers it and closes.
        assert!(has(
            &p,
            B,
            "Terminating { reason: SessTermReason(4), by_peer: true }"
        ));
        assert_eq!(
            p.b.session.close_reason(),
            Some(CloseReason::Terminated {
                reason: SessTermReason::CONTACT_FAILURE,
                by_peer: true
            })
        );
    }
}

#[test]
fn reserved_contact_flags_are_ignored() {
    // RFC 9174 §4.2: reserved flag bits are ignored on receipt and never sent.
    let mut b = Raw::new(config("dtn://b/"), Side::Passive);
    b.feed(&contact(0xfe));
    assert_eq!(b.out_msgs(), ["CONTACT v4 flags=0"]);
    assert_eq!(b.s.state(), State::SessionInit, "no TLS without CAN_TLS");
    assert!(b.events().is_empty());
}

#[test]
fn tls_handshake_failure_closes_without_sess_term() {
    // RFC 9174 §4.4.3: a failed TLS handshake closes the TCP connection; there is no
    // session to terminate, so no SESS_TERM goes out (it could not be parsed anyway).
    let cfg = SessionConfig {
        can_tls: true,
        ..config("dtn://b/")
    };
    for abort in [true, false] {
        let mut b = Raw::new(cfg.clone(), Side::Passive);
        b.feed(&contact(1));
        let _ = b.out();
        let _ = b.events();
        assert_eq!(b.s.state(), State::TlsHandshake);
        if abort {
            b.s.close();
        } else {
            b.s.terminate(b.now, SessTermReason::CONTACT_FAILURE)
                .unwrap();
        }
        assert!(b.out().is_empty());
        assert_eq!(
            b.events(),
            [Event::Closed {
                reason: CloseReason::LocalClose
            }]
        );
    }
}

#[test]
fn default_contact_timeout_is_at_most_a_minute() {
    // RFC 9174 §4.1: a contact header reception timeout no longer than 60 s.
    let d = SessionConfig::default().contact_timeout;
    assert!(d > Duration::ZERO && d <= Duration::from_secs(60), "{d:?}");
}

#[test]
fn passive_answers_unknown_versions_with_version_mismatch() {
    // RFC 9174 §4.3: a version the passive entity does not implement is answered with
    // its contact header and SESS_TERM Version Mismatch.
    for version in [0u8, 5, 0xff] {
        let mut b = Raw::new(config("dtn://b/"), Side::Passive);
        b.feed(&[b'd', b't', b'n', b'!', version, 0]);
        assert_eq!(
            b.out_msgs(),
            [
                "CONTACT v4 flags=0",
                "SESS_TERM flags=0 reason=version mismatch"
            ]
        );
        assert_eq!(
            b.events(),
            [Event::Closed {
                reason: CloseReason::VersionMismatch { version }
            }]
        );
    }
}
