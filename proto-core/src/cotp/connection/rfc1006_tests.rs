//! Transcript tests of what RFC 1006 adds to or assumes of class 0 on a connection:
//! expedited data (negotiation from both sides, sending, receiving, the ER for an ED
//! that is not acceptable), user data in CR/CC, and a CC without C0.

use super::*;
use crate::cotp::decode_frame;
use crate::cotp::expedited::{self as ed, EdError};
use crate::cotp::tests_support::hex;
use crate::testing::cotp::CotpEndpoint;
use crate::testing::{Pair, Side as PairSide};

fn cfg(expedited: bool, src_ref: u16) -> Config {
    Config {
        src_ref,
        expedited,
        ..Config::default()
    }
}

fn pair(client: bool, server: bool, seed: u64) -> Pair<CotpEndpoint, CotpEndpoint> {
    let now = Instant::now();
    let a = CotpEndpoint::new(Connection::new(cfg(client, 1), Side::Active, now).unwrap());
    let b = CotpEndpoint::new(Connection::new(cfg(server, 0x4242), Side::Passive, now).unwrap());
    let mut p = Pair::new(a, b, now, seed);
    p.settle();
    assert!(
        p.a.conn.is_open() && p.b.conn.is_open(),
        "{}",
        p.transcript_text()
    );
    p
}

/// The first TPDU in a TPKT frame.
fn tpdu(frame: &[u8]) -> Tpdu<'_> {
    match decode_frame(frame, 65535) {
        Ok(crate::tpkt::Status::Complete((t, _))) => t,
        other => panic!("not a frame: {other:?}"),
    }
}

/// A passive connection (configured with `expedited`) that received a CR with C6 =
/// `c6` (or none); returns it and whether its CC carries C6 bit 1.
fn answer_cr(expedited: bool, c6: Option<u8>) -> (Connection, bool) {
    let now = Instant::now();
    let mut b = Connection::new(cfg(expedited, 0x4242), Side::Passive, now).unwrap();
    let cr_params: Vec<Param<'_>> = [Some(Param::TpduSize(TpduSize::S1024))]
        .into_iter()
        .chain([c6.map(Param::AdditionalOptions)])
        .flatten()
        .collect();
    let cr = Tpdu::ConnectionRequest(Connect {
        src_ref: 1,
        params: Params::list(&cr_params),
        ..Connect::default()
    });
    let mut wire = [0u8; 64];
    let n = cr.encode_frame(&mut wire).unwrap();
    b.handle_input(now, &wire[..n]);
    let mut out = [0u8; 256];
    let n = b.poll_transmit(now, &mut out).unwrap().unwrap();
    let Tpdu::ConnectionConfirm(cc) = tpdu(&out[..n]) else {
        panic!("no CC")
    };
    let selected = ed::selected(&cc.params);
    (b, selected)
}

#[test]
fn negotiation_needs_the_cr_to_propose_and_the_cc_to_select() {
    // (client proposes, server willing) -> in use on both sides.
    for (client, server) in [(false, false), (true, false), (false, true), (true, true)] {
        for seed in 0..4 {
            let p = pair(client, server, seed);
            let both = client && server;
            assert_eq!(p.a.conn.expedited_selected(), both, "{client} {server}");
            assert_eq!(p.b.conn.expedited_selected(), both, "{client} {server}");
        }
    }
    // The CR carries C6 = 01 only when proposing.
    let now = Instant::now();
    for on in [false, true] {
        let mut a = Connection::new(cfg(on, 1), Side::Active, now).unwrap();
        let mut out = [0u8; 256];
        let n = a.poll_transmit(now, &mut out).unwrap().unwrap();
        let Tpdu::ConnectionRequest(cr) = tpdu(&out[..n]) else {
            panic!("no CR")
        };
        assert_eq!(ed::selected(&cr.params), on);
    }
    // The responder: C6 in the CC only when the CR proposed it and it is willing; a C6
    // without bit 1 proposes nothing.
    for (willing, c6, cc_selects) in [
        (true, Some(0x01), true),
        (true, Some(0x00), false),
        (true, None, false),
        (false, Some(0x01), false),
        (true, Some(0x03), true),
    ] {
        let (b, sel) = answer_cr(willing, c6);
        assert_eq!(sel, cc_selects, "{willing} {c6:?}");
        assert_eq!(b.expedited_selected(), cc_selects, "{willing} {c6:?}");
    }
}

#[test]
fn a_cc_selecting_what_the_cr_did_not_propose_leaves_it_off() {
    let now = Instant::now();
    let mut a = Connection::new(cfg(false, 1), Side::Active, now).unwrap();
    let mut out = [0u8; 256];
    a.poll_transmit(now, &mut out).unwrap().unwrap();
    // CC: dst 1, src 0x4242, class 0, C0 1024, C6 01.
    let cc = hex("030000110cd00001424200c0010ac60101");
    assert!(matches!(tpdu(&cc), Tpdu::ConnectionConfirm(c) if ed::selected(&c.params)));
    assert_eq!(a.handle_input(now, &cc).consumed, cc.len());
    assert!(a.is_open());
    assert!(!a.expedited_selected());
    assert_eq!(
        a.send_expedited(b"x"),
        Err(UsageError::ExpeditedNotSelected)
    );
}

#[test]
fn expedited_data_flows_both_ways_and_can_overtake_a_message() {
    for seed in 0..10 {
        let mut p = pair(true, true, seed);
        p.max_chunk = [1, 3, 64, 5000][seed as usize % 4];
        p.a.conn.send_expedited(b"urgent").unwrap();
        p.b.conn.send_expedited(&[0xee; 16]).unwrap();
        // A message of several DTs, with an ED queued after its first DTs are framed:
        // the ED is a TPDU of its own and the message still arrives whole.
        let msg: Vec<u8> = (0..5000).map(|i| i as u8).collect();
        p.a.send(msg.clone());
        p.step();
        p.a.conn.send_expedited(b"1").unwrap();
        p.settle();
        let urgent = format!(
            "{:?}",
            Event::Expedited(ExpeditedBytes::new(b"urgent").unwrap())
        );
        let one = format!("{:?}", Event::Expedited(ExpeditedBytes::new(b"1").unwrap()));
        let ee = format!(
            "{:?}",
            Event::Expedited(ExpeditedBytes::new(&[0xee; 16]).unwrap())
        );
        let b_events = p.events(PairSide::B);
        assert!(b_events.contains(&urgent.as_str()), "{b_events:?}");
        assert!(b_events.contains(&one.as_str()), "{b_events:?}");
        assert!(p.events(PairSide::A).contains(&ee.as_str()));
        let got: Vec<&Vec<u8>> = p.received_b.complete.iter().map(|(_, m)| m).collect();
        assert_eq!(got, [&msg], "seed {seed}");
        assert!(p.a.conn.is_open() && p.b.conn.is_open());
    }
}

#[test]
fn sending_checks_state_negotiation_and_length() {
    let now = Instant::now();
    let mut a = Connection::new(cfg(true, 1), Side::Active, now).unwrap();
    assert_eq!(
        a.send_expedited(b"x"),
        Err(UsageError::NotOpen(State::AwaitingConfirm))
    );
    let mut p = pair(true, true, 1);
    let c = &mut p.a.conn;
    assert_eq!(
        c.send_expedited(b""),
        Err(UsageError::Expedited(EdError::Length { len: 0 }))
    );
    assert_eq!(
        c.send_expedited(&[0; 17]),
        Err(UsageError::Expedited(EdError::Length { len: 17 }))
    );
    c.send_expedited(&[7; 16]).unwrap();
    c.send_expedited(&[8]).unwrap();
    // On the wire: the RFC 1006 form, LI 2, EOT set, TPDU-NR 0, no EA expected.
    let mut out = [0u8; 64];
    let n = c.poll_transmit(now, &mut out).unwrap().unwrap();
    assert_eq!(
        &out[..n],
        &[&hex("03000017021080")[..], &[7; 16]].concat()[..]
    );
    let n = c.poll_transmit(now, &mut out).unwrap().unwrap();
    assert_eq!(&out[..n], &hex("0300000802108008")[..]);
    // The queue is bounded: a caller that never transmits gets an error, not growth.
    let mut queued = 0;
    while c.send_expedited(b"q").is_ok() {
        queued += 1;
        assert!(queued <= 8);
    }
    assert_eq!(c.send_expedited(b"q"), Err(UsageError::QueueFull));
    assert!(queued <= 6, "two slots stay free");
    // A violation now still queues its ER after the EDs.
    let bad = hex("0300000804900000");
    c.handle_input(now, &bad);
    let mut last = vec![];
    while let Some(n) = c.poll_transmit(now, &mut out).unwrap() {
        last = out[..n].to_vec();
    }
    assert!(matches!(tpdu(&last), Tpdu::Error(_)), "{last:02x?}");
    // Without negotiation.
    let mut p = pair(true, false, 1);
    assert_eq!(
        p.a.conn.send_expedited(b"x"),
        Err(UsageError::ExpeditedNotSelected)
    );
}

#[test]
fn an_unacceptable_ed_is_answered_with_an_er_echoing_its_header() {
    // (TPDU after the TPKT header, negotiated, expected cause, expected error)
    let cases: &[(&str, bool, RejectCause, ProtocolError)] = &[
        // Not negotiated: an invalid TPDU type in class 0, even in RFC 1006's form.
        (
            "021080aa",
            false,
            RejectCause::INVALID_TPDU_TYPE,
            ProtocolError::UnexpectedTpdu {
                kind: TpduKind::ExpeditedData,
            },
        ),
        // 17 octets.
        (
            "0210800102030405060708090a0b0c0d0e0f1011",
            true,
            RejectCause::NOT_SPECIFIED,
            ProtocolError::InvalidExpedited(EdError::Length { len: 17 }),
        ),
        // No data.
        (
            "021080",
            true,
            RejectCause::NOT_SPECIFIED,
            ProtocolError::InvalidExpedited(EdError::Length { len: 0 }),
        ),
        // X.224's form with a DST-REF.
        (
            "0410424280aa",
            true,
            RejectCause::NOT_SPECIFIED,
            ProtocolError::InvalidExpedited(EdError::Form),
        ),
    ];
    let now = Instant::now();
    for (body, negotiated, cause, error) in cases {
        let (mut b, sel) = answer_cr(*negotiated, Some(0x01));
        assert_eq!(sel, *negotiated);
        while b.poll_event().is_some() {}
        let body = hex(body);
        let mut frame = vec![3, 0, 0, (body.len() + 4) as u8];
        frame.extend_from_slice(&body);
        b.handle_input(now, &frame);
        let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
        assert!(events.contains(&Event::ProtocolError(*error)), "{events:?}");
        let mut out = [0u8; 256];
        let n = b.poll_transmit(now, &mut out).unwrap().unwrap();
        let Tpdu::Error(er) = tpdu(&out[..n]) else {
            panic!("no ER")
        };
        assert_eq!(er.cause, *cause);
        let header_len = usize::from(body[0]) + 1;
        assert_eq!(er.params.invalid_tpdu(), Some(&body[..header_len]));
        assert!(b.is_closed());
    }
}

#[test]
fn an_ed_at_the_limit_is_delivered_and_the_connection_goes_on() {
    let now = Instant::now();
    let (mut b, _) = answer_cr(true, Some(0x01));
    while b.poll_event().is_some() {}
    let mut input = hex("03000017021080");
    input.extend([0x5a; 16]);
    input.extend(hex("0300000802f08041")); // then a one-byte message
    let mut off = 0;
    let mut data = vec![];
    while off < input.len() {
        let r = b.handle_input(now, &input[off..]);
        off += r.consumed;
        if let Some(d) = r.data {
            data.extend_from_slice(d.bytes);
        }
    }
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert_eq!(
        events,
        [
            Event::TpduReceived {
                kind: TpduKind::ExpeditedData
            },
            Event::Expedited(ExpeditedBytes::new(&[0x5a; 16]).unwrap())
        ]
    );
    assert_eq!(data, b"A");
    assert!(b.is_open());
    // RFC 1006's ED has no EA: nothing is sent in answer.
    let mut out = [0u8; 64];
    assert_eq!(b.poll_transmit(now, &mut out), Ok(None));
    assert_eq!(ExpeditedBytes::new(&[0; 17]), None);
}

#[test]
fn a_cc_without_c0_means_128_octets_for_the_initiator() {
    // X.224 §13.3.4 b: without the TPDU size parameter the size is 128 octets; we
    // proposed 1024, the CC names none.
    let now = Instant::now();
    let mut a = Connection::new(cfg(false, 1), Side::Active, now).unwrap();
    let mut out = [0u8; 256];
    a.poll_transmit(now, &mut out).unwrap().unwrap();
    assert_eq!(a.tpdu_size(), TpduSize::S1024);
    a.handle_input(now, &hex("0300000b06d00001424200"));
    assert!(a.is_open());
    assert_eq!(a.tpdu_size(), TpduSize::S128);
    assert_eq!(a.max_dt_payload(), 125);
    let framed = a.frame_data(&[1; 300], true, &mut [0u8; 1024]).unwrap();
    // 300 bytes in DTs of at most 125: three frames of 7 + payload.
    assert_eq!(framed.written, 300 + 3 * 7);
}

#[test]
fn user_data_in_a_cr_or_cc_is_accepted_and_never_sent() {
    // X.224 class 0 allows no user data in CR/CC; RFC 1006 implementations may carry up
    // to 32 octets. Received, it is tolerated (the connection opens, the bytes are
    // visible through `last_tpdu`); we never send any.
    let now = Instant::now();
    let mut b = Connection::new(cfg(false, 0x4242), Side::Passive, now).unwrap();
    let ud = [0x55u8; 32];
    let params = [Param::TpduSize(TpduSize::S1024)];
    let cr = Tpdu::ConnectionRequest(Connect {
        src_ref: 1,
        params: Params::list(&params),
        user_data: &ud,
        ..Connect::default()
    });
    let mut wire = [0u8; 128];
    let n = cr.encode_frame(&mut wire).unwrap();
    assert_eq!(b.handle_input(now, &wire[..n]).consumed, n);
    assert_eq!(b.last_tpdu().map(|t| t.user_data().len()), Some(32));
    assert!(b.is_open());
    let mut out = [0u8; 256];
    let n = b.poll_transmit(now, &mut out).unwrap().unwrap();
    let Tpdu::ConnectionConfirm(cc) = tpdu(&out[..n]) else {
        panic!("no CC")
    };
    assert!(cc.user_data.is_empty());
    // The initiator: our CR has none; a CC with user data opens the connection.
    let mut a = Connection::new(cfg(false, 1), Side::Active, now).unwrap();
    let n = a.poll_transmit(now, &mut out).unwrap().unwrap();
    let Tpdu::ConnectionRequest(ours) = tpdu(&out[..n]) else {
        panic!("no CR")
    };
    assert!(ours.user_data.is_empty());
    let cc = Tpdu::ConnectionConfirm(Connect {
        dst_ref: 1,
        src_ref: 0x4242,
        params: Params::list(&params),
        user_data: b"hello",
        ..Connect::default()
    });
    let n = cc.encode_frame(&mut wire).unwrap();
    a.handle_input(now, &wire[..n]);
    assert!(a.is_open());
}
