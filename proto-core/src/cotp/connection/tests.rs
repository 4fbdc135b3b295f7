//! Transcript tests for the COTP connection: both sides driven by the pair harness
//! with seeded random chunking and virtual time.

use super::*;
use crate::cotp::codes::TpduSize;
use crate::cotp::tpdu::{Data, ExpeditedData};
use crate::cotp::Format;
use crate::testing::cotp::CotpEndpoint;
use crate::testing::{Pair, Side as PairSide};
use core::time::Duration;

type CotpPair = Pair<CotpEndpoint, CotpEndpoint>;

fn tsap(s: &str) -> Option<Tsap> {
    Some(s.parse().unwrap())
}

fn client_cfg() -> Config {
    Config {
        calling_tsap: tsap("0100"),
        called_tsap: tsap("0102"),
        tpdu_size: TpduSize::S1024,
        ..Config::default()
    }
}

fn server_cfg() -> Config {
    Config {
        src_ref: 0x4242,
        tpdu_size: TpduSize::S8192,
        ..Config::default()
    }
}

fn pair_with(client: Config, server: Config, seed: u64) -> CotpPair {
    let now = Instant::now();
    let a = CotpEndpoint::new(Connection::new(client, Side::Active, now).unwrap());
    let b = CotpEndpoint::new(Connection::new(server, Side::Passive, now).unwrap());
    Pair::new(a, b, now, seed)
}

fn connected(seed: u64) -> CotpPair {
    let mut p = pair_with(client_cfg(), server_cfg(), seed);
    p.settle();
    assert!(
        p.a.conn.is_open() && p.b.conn.is_open(),
        "{}",
        p.transcript_text()
    );
    p
}

fn closed_reason(p: &CotpPair, side: PairSide) -> Option<CloseReason> {
    match side {
        PairSide::A => p.a.conn.close_reason(),
        PairSide::B => p.b.conn.close_reason(),
    }
}

/// Encodes `t` in a TPKT frame.
fn frame(t: &Tpdu<'_>) -> Vec<u8> {
    let mut out = vec![0u8; t.encoded_len() + 4];
    let n = t.encode_frame(&mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn handshake_negotiates_down_and_echoes_tsaps() {
    for seed in 0..20 {
        let p = connected(seed);
        assert_eq!(
            p.events(PairSide::A),
            vec!["TpduReceived { kind: ConnectionConfirm }", "Connected"]
        );
        assert_eq!(
            p.events(PairSide::B),
            vec!["TpduReceived { kind: ConnectionRequest }", "Connected"]
        );
        for c in [&p.a.conn, &p.b.conn] {
            assert_eq!(c.tpdu_size(), TpduSize::S1024);
            assert_eq!(c.max_dt_payload(), 1021);
            assert_eq!(c.calling_tsap(), tsap("0100").as_ref());
            assert_eq!(c.called_tsap(), tsap("0102").as_ref());
        }
        assert_eq!(p.a.conn.remote_ref(), 0x4242);
        assert_eq!(p.b.conn.remote_ref(), 1);
    }
}

#[test]
fn cc_on_the_wire_echoes_c0_c1_c2() {
    let now = Instant::now();
    let mut b = Connection::new(server_cfg(), Side::Passive, now).unwrap();
    let cr = crate::cotp::tests_support::hex("0300001611e00000000100c1020100c2020101c0010a");
    b.handle_input(now, &cr);
    let mut out = [0u8; 256];
    let n = b.poll_transmit(now, &mut out).unwrap().unwrap();
    let Ok(crate::tpkt::Status::Complete((Tpdu::ConnectionConfirm(cc), _))) =
        crate::cotp::decode_frame(&out[..n], 65535)
    else {
        panic!("no CC")
    };
    assert_eq!((cc.dst_ref, cc.src_ref, cc.class), (1, 0x4242, 0));
    assert_eq!(cc.params.tpdu_size(), Some(TpduSize::S1024));
    assert_eq!(cc.params.calling_tsap(), Some(&[1u8, 0][..]));
    assert_eq!(cc.params.called_tsap(), Some(&[1u8, 1][..]));
}

#[test]
fn larger_proposal_is_negotiated_down_never_refused() {
    let server = Config {
        tpdu_size: TpduSize::S512,
        ..server_cfg()
    };
    let client = Config {
        tpdu_size: TpduSize::S8192,
        ..client_cfg()
    };
    let mut p = pair_with(client, server, 7);
    p.settle();
    assert_eq!(p.a.conn.tpdu_size(), TpduSize::S512);
    assert_eq!(p.b.conn.tpdu_size(), TpduSize::S512);
    assert_eq!(p.a.conn.max_dt_payload(), 509);
}

#[test]
fn cr_without_c0_means_128() {
    let now = Instant::now();
    let cr = Tpdu::ConnectionRequest(Connect {
        src_ref: 9,
        ..Connect::default()
    });
    let a = CotpEndpoint::new(Connection::new_raw(Config::default(), &cr, now).unwrap());
    let b = CotpEndpoint::new(Connection::new(server_cfg(), Side::Passive, now).unwrap());
    let mut p = Pair::new(a, b, now, 3);
    p.settle();
    assert!(p.a.conn.is_open());
    assert_eq!(p.b.conn.tpdu_size(), TpduSize::S128);
    assert_eq!(p.a.conn.tpdu_size(), TpduSize::S128);
    assert_eq!(p.a.conn.local_ref(), 9);
}

#[test]
fn preferred_max_tpdu_size_is_negotiated() {
    let client = Config {
        preferred_max_tpdu_size: Some(4000),
        ..client_cfg()
    };
    let server = Config {
        tpdu_size: TpduSize::S2048,
        ..server_cfg()
    };
    let mut p = pair_with(client, server, 1);
    p.settle();
    // F0 proposes 31 × 128 = 3968; the responder caps it at its 2048.
    assert_eq!(p.b.conn.preferred_max_tpdu_size(), Some(2048));
    assert_eq!(p.a.conn.preferred_max_tpdu_size(), Some(2048));
    assert_eq!(p.a.conn.max_dt_payload(), 2045);
}

fn raw_cr_pair(class: u8, alternatives: &'static [u8]) -> CotpPair {
    let now = Instant::now();
    static ALT0: [Param<'static>; 1] = [Param::TpduSize(TpduSize::S1024)];
    let params_alt;
    let list: &[Param<'_>] = if alternatives.is_empty() {
        &ALT0
    } else {
        params_alt = [
            Param::TpduSize(TpduSize::S1024),
            Param::AlternativeClasses(alternatives),
        ];
        &params_alt
    };
    let cr = Tpdu::ConnectionRequest(Connect {
        src_ref: 5,
        class,
        params: Params::list(list),
        ..Connect::default()
    });
    let a = CotpEndpoint::new(Connection::new_raw(Config::default(), &cr, now).unwrap());
    let b = CotpEndpoint::new(Connection::new(server_cfg(), Side::Passive, now).unwrap());
    Pair::new(a, b, now, 11)
}

#[test]
fn class_negotiation_follows_table_3() {
    let mut p = raw_cr_pair(2, &[0x00]);
    p.settle();
    assert!(p.a.conn.is_open(), "{}", p.transcript_text());
    assert!(p.b.conn.is_open());

    let mut p = raw_cr_pair(4, &[0x10]);
    p.settle();
    assert!(p.b.conn.is_open());

    let mut p = raw_cr_pair(2, &[]);
    p.settle();
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::LocalRefused {
            reason: DisconnectReason::NEGOTIATION_FAILED
        })
    );
    assert_eq!(
        closed_reason(&p, PairSide::A),
        Some(CloseReason::PeerRefused {
            reason: DisconnectReason::NEGOTIATION_FAILED
        })
    );
}

#[test]
fn tsap_policy_refuses_with_dr_address_unknown() {
    let server = Config {
        local_tsap: tsap("0102"),
        ..server_cfg()
    };
    let mut ok = pair_with(client_cfg(), server.clone(), 2);
    ok.settle();
    assert!(ok.a.conn.is_open());

    let client = Config {
        called_tsap: tsap("0103"),
        ..client_cfg()
    };
    let mut p = pair_with(client, server, 2);
    p.settle();
    let refused = CloseReason::PeerRefused {
        reason: DisconnectReason::ADDRESS_UNKNOWN,
    };
    assert_eq!(closed_reason(&p, PairSide::A), Some(refused));
    assert!(p.both_closed());
    assert_eq!(
        p.events(PairSide::A).last().copied(),
        Some(format!("Closed({refused:?})").as_str())
    );
}

#[test]
fn manual_accept_and_refuse() {
    let server = Config {
        manual_accept: true,
        ..server_cfg()
    };
    let mut p = pair_with(client_cfg(), server.clone(), 4);
    p.settle();
    assert_eq!(p.b.conn.state(), State::AwaitingAccept);
    assert!(p.events(PairSide::B).contains(&"ConnectRequested"));
    assert_eq!(p.b.conn.refuse(DisconnectReason::NORMAL), Ok(()));
    assert_eq!(p.b.conn.state(), State::Closing);
    p.settle();
    assert_eq!(
        closed_reason(&p, PairSide::A),
        Some(CloseReason::PeerRefused {
            reason: DisconnectReason::NORMAL
        })
    );

    let mut p = pair_with(client_cfg(), server, 4);
    p.settle();
    let now = p.now;
    p.b.conn.accept(now).unwrap();
    assert_eq!(p.b.conn.accept(now), Err(UsageError::NoPendingRequest));
    p.settle();
    assert!(p.a.conn.is_open() && p.b.conn.is_open());
}

fn exchange(p: &mut CotpPair, sizes: &[usize]) {
    let msgs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (j * 31 + i * 7) as u8).collect())
        .collect();
    for m in &msgs {
        p.a.send(m.clone());
        p.b.send(m.iter().rev().copied().collect::<Vec<u8>>());
    }
    p.settle();
    let got_b: Vec<&Vec<u8>> = p.received_b.complete.iter().map(|(_, m)| m).collect();
    assert_eq!(got_b, msgs.iter().collect::<Vec<_>>(), "seed {}", p.seed());
    let back: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| m.iter().rev().copied().collect())
        .collect();
    let got_a: Vec<&Vec<u8>> = p.received_a.complete.iter().map(|(_, m)| m).collect();
    assert_eq!(got_a, back.iter().collect::<Vec<_>>());
}

#[test]
fn messages_of_every_shape_arrive_whole_both_ways() {
    // 1 byte, exactly one DT, one byte more than a DT, many DTs, the maximum.
    for seed in 0..10 {
        let mut p = connected(seed);
        p.max_chunk = [1, 7, 100, 5000][seed as usize % 4];
        exchange(&mut p, &[1, 1021, 1022, 100 * 1024, 1 << 20]);
    }
}

#[test]
fn no_empty_dt_is_ever_sent_and_eot_marks_the_last() {
    let mut p = connected(1);
    let mut out = vec![0u8; 1 << 16];
    assert_eq!(
        p.a.conn.frame_data(&[], true, &mut out),
        Err(UsageError::EmptyMessage)
    );
    for len in [1usize, 1020, 1021, 1022, 2042, 2043, 5000] {
        let data = vec![0x5a; len];
        let mut off = 0;
        let mut dts = vec![];
        // A small buffer forces the framing to stop and resume between DTs.
        while off < len {
            let f =
                p.a.conn
                    .frame_data(&data[off..], true, &mut out[..2100])
                    .unwrap();
            off += f.consumed;
            let mut at = 0;
            while at < f.written {
                let Ok(crate::tpkt::Status::Complete((Tpdu::Data(d), n))) =
                    crate::cotp::decode_frame(&out[at..f.written], 65535)
                else {
                    panic!("not a DT")
                };
                dts.push((d.data.len(), d.eot));
                at += n;
            }
        }
        assert!(
            dts.iter().all(|&(n, _)| n > 0 && n <= 1021),
            "{len}: {dts:?}"
        );
        assert_eq!(dts.iter().map(|&(n, _)| n).sum::<usize>(), len);
        assert!(dts[..dts.len() - 1].iter().all(|&(_, eot)| !eot));
        assert!(dts.last().unwrap().1);
        assert_eq!(dts.len(), len.div_ceil(1021));
    }
    // Without end of message only whole DTs are framed.
    let f = p.a.conn.frame_data(&[1; 1500], false, &mut out).unwrap();
    assert_eq!((f.consumed, f.written), (1021, 1028));
    let f = p.a.conn.frame_data(&[1; 479], false, &mut out).unwrap();
    assert_eq!((f.consumed, f.written), (0, 0));
    assert_eq!(
        p.a.conn.frame_data(&[1; 10], true, &mut out[..16]),
        Err(UsageError::BufferTooSmall { needed: 17 })
    );
}

#[test]
fn too_large_message_is_refused_with_dr_not_truncated() {
    let server = Config {
        max_message_size: 3000,
        ..server_cfg()
    };
    let mut p = pair_with(client_cfg(), server, 5);
    p.settle();
    p.a.send(vec![1; 3000]);
    p.a.send(vec![2; 3001]);
    p.settle();
    assert_eq!(p.received_b.complete.len(), 1);
    assert_eq!(p.received_b.complete[0].1, vec![1; 3000]);
    let too_large = ProtocolError::MessageTooLarge { limit: 3000 };
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::ProtocolError(too_large))
    );
    assert_eq!(
        closed_reason(&p, PairSide::A),
        Some(CloseReason::PeerDisconnect {
            reason: DisconnectReason::CONGESTION_AT_TSAP
        })
    );
    assert!(p
        .events(PairSide::B)
        .contains(&format!("ProtocolError({too_large:?})").as_str()));
}

#[test]
fn unexpected_tpdu_in_data_phase_gets_an_er_with_the_header() {
    let mut p = connected(6);
    let ed = Tpdu::ExpeditedData(ExpeditedData {
        format: Format::Normal,
        dst_ref: Some(0x4242),
        eot: true,
        nr: 0,
        params: Params::EMPTY,
        data: b"urgent",
    });
    p.a.conn.send_tpdu(&ed).unwrap();
    p.settle();
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::ProtocolError(ProtocolError::UnexpectedTpdu {
            kind: TpduKind::ExpeditedData
        }))
    );
    assert_eq!(
        closed_reason(&p, PairSide::A),
        Some(CloseReason::PeerError {
            cause: RejectCause::INVALID_TPDU_TYPE
        })
    );
    assert!(p
        .events(PairSide::B)
        .contains(&"TpduReceived { kind: ExpeditedData }"));
}

#[test]
fn er_carries_the_invalid_header_on_the_wire() {
    let now = Instant::now();
    let mut b = Connection::new(server_cfg(), Side::Passive, now).unwrap();
    let cr = crate::cotp::tests_support::hex("0300001611e00000000100c1020100c2020101c0010a");
    b.handle_input(now, &cr);
    let mut out = [0u8; 256];
    b.poll_transmit(now, &mut out).unwrap().unwrap();
    // A TPDU with an unknown type code 0x90.
    let bad = [3, 0, 0, 9, 4, 0x90, 0, 1, 0];
    b.handle_input(now, &bad);
    let n = b.poll_transmit(now, &mut out).unwrap().unwrap();
    let Ok(crate::tpkt::Status::Complete((Tpdu::Error(er), _))) =
        crate::cotp::decode_frame(&out[..n], 65535)
    else {
        panic!("no ER")
    };
    assert_eq!(er.cause, RejectCause::INVALID_TPDU_TYPE);
    assert_eq!(er.dst_ref, 1);
    assert_eq!(er.params.invalid_tpdu(), Some(&[4u8, 0x90, 0, 1, 0][..]));
    assert!(b.is_closed());
    assert_eq!(b.poll_transmit(now, &mut out), Ok(None));
}

#[test]
fn malformed_input_is_answered_and_never_panics() {
    let cases: &[(&str, &[u8])] = &[
        ("bad TPKT version", &[4, 0, 0, 7, 2, 0xf0, 0x80]),
        ("TPKT length below 7", &[3, 0, 0, 5, 1]),
        ("LI beyond the TPDU", &[3, 0, 0, 8, 9, 0xf0, 0x80, 0]),
        ("parameter overrun", &[3, 0, 0, 11, 6, 0xe0, 0, 0, 0, 1, 0]),
    ];
    for (what, bytes) in cases {
        let mut p = connected(9);
        p.inject_to_b(bytes);
        p.settle();
        assert!(p.b.conn.is_closed(), "{what}");
        assert!(
            matches!(
                closed_reason(&p, PairSide::B),
                Some(CloseReason::ProtocolError(_))
            ),
            "{what}: {:?}",
            closed_reason(&p, PairSide::B)
        );
        assert!(
            matches!(
                closed_reason(&p, PairSide::A),
                Some(CloseReason::PeerError { .. } | CloseReason::PeerDisconnect { .. })
            ),
            "{what}: {:?}",
            closed_reason(&p, PairSide::A)
        );
    }
}

#[test]
fn frames_above_the_configured_maximum_are_rejected_before_buffering() {
    let server = Config {
        max_frame_len: 2048,
        ..server_cfg()
    };
    let mut p = pair_with(client_cfg(), server, 3);
    p.settle();
    p.inject_to_b(&[3, 0, 0x10, 0x00]);
    p.settle();
    assert!(matches!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::ProtocolError(ProtocolError::Malformed(
            FrameError::Tpkt(crate::tpkt::TpktError::TooLong { .. })
        )))
    ));
}

#[test]
fn release_by_dr_is_answered_with_dc() {
    let mut p = connected(8);
    p.a.conn.close(DisconnectReason::NORMAL);
    p.settle();
    assert_eq!(
        closed_reason(&p, PairSide::A),
        Some(CloseReason::LocalDisconnect {
            reason: DisconnectReason::NORMAL
        })
    );
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::PeerDisconnect {
            reason: DisconnectReason::NORMAL
        })
    );
    assert!(p.both_closed());
}

#[test]
fn snap7_dr_with_a_stray_byte_is_a_normal_disconnect() {
    let mut p = connected(2);
    p.inject_to_a(&crate::cotp::tests_support::hex("0300000c0680000100010000"));
    p.settle();
    assert_eq!(
        closed_reason(&p, PairSide::A),
        Some(CloseReason::PeerDisconnect {
            reason: DisconnectReason::NOT_SPECIFIED
        })
    );
}

#[test]
fn transport_close_is_class0_release() {
    let mut p = connected(3);
    p.a.send(vec![7; 4000]);
    p.settle();
    p.drop_a();
    p.settle();
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::TransportClosed)
    );
    assert_eq!(p.received_b.complete.len(), 1);
}

#[test]
fn eof_inside_a_frame_is_truncation() {
    let mut p = connected(3);
    p.inject_to_b(&[3, 0, 0, 50, 2, 0xf0]);
    p.settle();
    p.drop_a();
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::ProtocolError(ProtocolError::Truncated))
    );
}

#[test]
fn connect_timeout_without_answer() {
    let client = Config {
        connect_timeout: Some(Duration::from_secs(5)),
        ..client_cfg()
    };
    let server = Config {
        manual_accept: true,
        connect_timeout: None,
        ..server_cfg()
    };
    let mut p = pair_with(client, server, 1);
    p.run_until(Duration::from_secs(60), |p| p.a.conn.is_closed());
    assert_eq!(p.elapsed(), Duration::from_secs(5));
    assert_eq!(
        closed_reason(&p, PairSide::A),
        Some(CloseReason::TimedOut(Timer::Connect))
    );
}

#[test]
fn inactivity_timeout_sends_dr() {
    let server = Config {
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..server_cfg()
    };
    let mut p = pair_with(client_cfg(), server, 1);
    p.settle();
    p.sleep(Duration::from_secs(20));
    p.a.send(vec![1; 10]);
    p.settle();
    // Traffic at 20 s pushes the deadline to 50 s.
    p.run_until(Duration::from_secs(120), |p| p.both_closed());
    assert_eq!(p.elapsed(), Duration::from_secs(50));
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::TimedOut(Timer::Inactivity))
    );
    assert_eq!(
        closed_reason(&p, PairSide::A),
        Some(CloseReason::PeerDisconnect {
            reason: DisconnectReason::NOT_SPECIFIED
        })
    );
}

#[test]
fn every_control_tpdu_is_visible_raw() {
    let now = Instant::now();
    let mut b = Connection::new(server_cfg(), Side::Passive, now).unwrap();
    let cr = crate::cotp::tests_support::hex("0300001611e00000000100c0010ac1020000c2020001");
    let dt = frame(&Tpdu::Data(Data::class0(true, b"x")));
    let mut stream = cr.clone();
    stream.extend(&dt);
    let r = b.handle_input(now, &stream);
    // The call stops after the control TPDU so it can be inspected.
    assert_eq!(r.consumed, cr.len());
    assert_eq!(
        b.poll_event(),
        Some(Event::TpduReceived {
            kind: TpduKind::ConnectionRequest
        })
    );
    let Some(Tpdu::ConnectionRequest(c)) = b.last_tpdu() else {
        panic!("no CR")
    };
    assert_eq!(c.params.called_tsap(), Some(&[0u8, 1][..]));
    let r = b.handle_input(now, &stream[cr.len()..]);
    assert_eq!(b.last_tpdu(), None);
    assert_eq!(r.data.map(|d| d.bytes), Some(&b"x"[..]));
}

#[test]
fn raw_cr_and_close_raw() {
    let now = Instant::now();
    let params = [Param::TpduSize(TpduSize::S256), Param::CalledTsap(&[0xab])];
    let cr = Tpdu::ConnectionRequest(Connect {
        src_ref: 0x77,
        params: Params::list(&params),
        ..Connect::default()
    });
    let a = CotpEndpoint::new(Connection::new_raw(Config::default(), &cr, now).unwrap());
    let b = CotpEndpoint::new(Connection::new(server_cfg(), Side::Passive, now).unwrap());
    let mut p = Pair::new(a, b, now, 5);
    p.settle();
    assert_eq!(p.b.conn.called_tsap(), Tsap::new(&[0xab]).ok().as_ref());
    assert_eq!(p.b.conn.tpdu_size(), TpduSize::S256);
    p.a.conn
        .close_raw(&DisconnectRequest {
            dst_ref: 0x4242,
            src_ref: 0x77,
            reason: DisconnectReason(0x99),
            params: Params::EMPTY,
            user_data: &[],
        })
        .unwrap();
    p.settle();
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::PeerDisconnect {
            reason: DisconnectReason(0x99)
        })
    );
    assert!(matches!(
        Connection::new_raw(
            Config::default(),
            &Tpdu::Data(Data::class0(true, b"x")),
            now
        ),
        Err(ConfigError::NotAConnectionRequest(_))
    ));
}

#[test]
fn data_before_connection_is_an_error() {
    let mut p = connected(0);
    assert_eq!(
        p.a.conn
            .frame_data(b"x", true, &mut [0u8; 64])
            .map(|f| f.consumed),
        Ok(1)
    );
    let now = Instant::now();
    let mut c = Connection::new(client_cfg(), Side::Active, now).unwrap();
    assert_eq!(
        c.frame_data(b"x", true, &mut [0u8; 64]),
        Err(UsageError::NotOpen(State::AwaitingConfirm))
    );
    // And a DT arriving before the CR is answered with an ER.
    let mut s = Connection::new(server_cfg(), Side::Passive, now).unwrap();
    s.handle_input(now, &frame(&Tpdu::Data(Data::class0(true, b"early"))));
    let mut out = [0u8; 128];
    let n = s.poll_transmit(now, &mut out).unwrap().unwrap();
    assert!(matches!(
        crate::cotp::decode_frame(&out[..n], 65535),
        Ok(crate::tpkt::Status::Complete((Tpdu::Error(_), _)))
    ));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn every_byte_delivered_exactly_once_in_order(
            seed in any::<u64>(),
            sizes in proptest::collection::vec(1usize..40_000, 1..12),
            chunk in 1usize..9000,
            pause_ms in 0u64..5000,
        ) {
            let mut p = connected(seed);
            p.max_chunk = chunk;
            for (i, &n) in sizes.iter().enumerate() {
                p.a.send(vec![i as u8; n]);
                if i % 3 == 0 {
                    p.sleep(Duration::from_millis(pause_ms));
                }
            }
            p.settle();
            let got: Vec<usize> = p.received_b.complete.iter().map(|(_, m)| m.len()).collect();
            prop_assert_eq!(&got, &sizes);
            for (i, (_, m)) in p.received_b.complete.iter().enumerate() {
                prop_assert!(m.iter().all(|&b| b == i as u8));
            }
            p.a.conn.close(DisconnectReason::NORMAL);
            p.settle();
            prop_assert!(p.both_closed());
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_connection(bytes in proptest::collection::vec(any::<u8>(), 0..600), open in any::<bool>()) {
            let now = Instant::now();
            let mut c = if open {
                let p = connected(1);
                p.b.conn
            } else {
                Connection::new(server_cfg(), Side::Passive, now).unwrap()
            };
            let mut input = &bytes[..];
            let mut guard = 0;
            while !input.is_empty() {
                let r = c.handle_input(now, input);
                input = &input[r.consumed..];
                guard += 1;
                prop_assert!(guard < 10_000, "no progress");
                while c.poll_event().is_some() {}
                let mut out = [0u8; 1024];
                while let Ok(Some(_)) = c.poll_transmit(now, &mut out) {}
            }
            c.handle_eof(now);
            // Whatever came before, end of stream leaves the connection closed with a reason.
            prop_assert!(c.is_closed());
            prop_assert!(c.close_reason().is_some());
        }
    }
}

/// The active side's view after the peer answers `cr_cfg`'s CR with `cc`.
fn active_after_cc(cr_cfg: Config, cc: &Tpdu<'_>) -> Connection {
    let now = Instant::now();
    let mut a = Connection::new(cr_cfg, Side::Active, now).unwrap();
    let mut out = [0u8; 512];
    while a.poll_transmit(now, &mut out).unwrap().is_some() {}
    a.handle_input(now, &frame(cc));
    a
}

#[test]
fn a_cc_with_f0_zero_never_shrinks_dts_below_128() {
    let params = [
        Param::TpduSize(TpduSize::S1024),
        Param::PreferredMaxTpduSize(0),
    ];
    let cc = Tpdu::ConnectionConfirm(Connect {
        dst_ref: 1,
        src_ref: 2,
        params: Params::list(&params),
        ..Connect::default()
    });
    let cfg = Config {
        preferred_max_tpdu_size: Some(1024),
        ..client_cfg()
    };
    let a = active_after_cc(cfg, &cc);
    assert!(a.is_open());
    assert_eq!(a.preferred_max_tpdu_size(), Some(128));
    assert_eq!(a.max_dt_payload(), 125);
}

#[test]
fn the_preferred_size_we_use_is_the_one_our_cr_proposed() {
    // 4000 is sent as 31 units (3968 octets); a CC echoing a larger F0 is capped there.
    let params = [
        Param::TpduSize(TpduSize::S1024),
        Param::PreferredMaxTpduSize(40),
    ];
    let cc = Tpdu::ConnectionConfirm(Connect {
        dst_ref: 1,
        src_ref: 2,
        params: Params::list(&params),
        ..Connect::default()
    });
    let cfg = Config {
        preferred_max_tpdu_size: Some(4000),
        ..client_cfg()
    };
    let a = active_after_cc(cfg, &cc);
    assert_eq!(a.preferred_max_tpdu_size(), Some(3968));
}

#[test]
fn a_raw_cr_without_c0_never_accepts_more_than_128() {
    let now = Instant::now();
    let called = [Param::CalledTsap(&[1, 2])];
    let cr = Tpdu::ConnectionRequest(Connect {
        src_ref: 3,
        params: Params::list(&called),
        ..Connect::default()
    });
    let mut a = Connection::new_raw(Config::default(), &cr, now).unwrap();
    let mut out = [0u8; 512];
    while a.poll_transmit(now, &mut out).unwrap().is_some() {}
    let params = [Param::TpduSize(TpduSize::S1024)];
    let cc = Tpdu::ConnectionConfirm(Connect {
        dst_ref: 3,
        src_ref: 9,
        params: Params::list(&params),
        ..Connect::default()
    });
    a.handle_input(now, &frame(&cc));
    assert!(a.is_open());
    assert_eq!(a.tpdu_size(), TpduSize::S128);
    assert_eq!(a.max_dt_payload(), 125);
}

#[test]
fn eof_inside_a_message_is_truncation_not_release() {
    let mut p = connected(4);
    // Two DTs without EOT, then the transport ends.
    p.inject_to_b(&frame(&Tpdu::Data(Data::class0(false, &[1; 100]))));
    p.inject_to_b(&frame(&Tpdu::Data(Data::class0(false, &[2; 100]))));
    p.settle();
    p.drop_a();
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::ProtocolError(ProtocolError::Truncated))
    );
    assert!(p.received_b.complete.is_empty());
}

#[test]
fn a_dr_while_the_application_decides_is_the_peer_abandoning() {
    let server = Config {
        manual_accept: true,
        ..server_cfg()
    };
    let mut p = pair_with(client_cfg(), server, 6);
    p.settle();
    assert_eq!(p.b.conn.state(), State::AwaitingAccept);
    p.inject_to_b(&frame(&Tpdu::DisconnectRequest(DisconnectRequest {
        dst_ref: 0x4242,
        src_ref: 1,
        reason: DisconnectReason::NORMAL,
        params: Params::EMPTY,
        user_data: &[],
    })));
    p.settle();
    assert_eq!(
        closed_reason(&p, PairSide::B),
        Some(CloseReason::PeerDisconnect {
            reason: DisconnectReason::NORMAL
        })
    );
}
