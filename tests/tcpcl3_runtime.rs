//! TCPCLv3 (RFC 7242) in the runtime (issue 12): one listener serves v3 and v4 peers
//! at once, `tcpcl_version: 3` connects with v3, sessions of both versions report
//! through the same events, and what v3 cannot do is refused with a typed error.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use proto_net::tcpcl::{
    Agent, CloseReason, ConfigError, Error, Event, ReceivedBundle, SessTermReason,
};
use proto_tests::tcpcl::{bundles, config, drain, pattern, wait_event, T};

/// Both versions against one listener, at the same time: bundles each way arrive
/// intact, and each session says which version it speaks.
#[test]
fn one_listener_serves_v3_and_v4_peers_at_once() -> Result<()> {
    let rx = Agent::new(config("dtn://rx/"))?;
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let mut c3 = config("dtn://v3/");
    c3.tcpcl_version = 3;
    c3.segment_size_tx_initial = 4000; // several segments per bundle
    let v3 = Agent::new(c3)?;
    let v4 = Agent::new(config("dtn://v4/"))?;
    let s3 = v3.connect(addr)?;
    let s4 = v4.connect(addr)?;
    let p3 = s3.wait_established(T)?;
    let p4 = s4.wait_established(T)?;
    ensure!(p3.version == 3 && p4.version == 4, "versions {p3:?} {p4:?}");
    let n = p3.v3.context("v3 parameters")?;
    ensure!(n.acks && n.refusal && n.send_length, "negotiated {n:?}");
    ensure!(p3.peer_node_id == "dtn://rx/");

    // Both send at once.
    let senders: Vec<_> = [(s3.clone(), 3u8), (s4.clone(), 4u8)]
        .into_iter()
        .map(|(h, v)| {
            std::thread::spawn(move || -> Result<()> {
                for i in 0..4u8 {
                    h.send_bytes(pattern(50_000 + usize::from(i), v * 16 + i))?;
                }
                h.wait_sent(T)?;
                Ok(())
            })
        })
        .collect();
    for s in senders {
        s.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    }
    let got = bundles(&rx_events, 8, T)?;
    let mut by_session: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for (session, _, b) in got {
        let ReceivedBundle::Bytes(b) = b else {
            anyhow::bail!("memory sink expected")
        };
        by_session.entry(session.0).or_default().push(b);
    }
    ensure!(
        by_session.len() == 2,
        "two sessions: {:?}",
        by_session.keys()
    );
    let seen: Vec<usize> = by_session.values().map(Vec::len).collect();
    ensure!(seen == [4, 4], "{seen:?}");
    // Every bundle of each sender, in order.
    let all: Vec<Vec<u8>> = by_session.into_values().flatten().collect();
    for v in [3u8, 4] {
        for i in 0..4u8 {
            let want = pattern(50_000 + usize::from(i), v * 16 + i);
            ensure!(all.contains(&want), "bundle {i} of the v{v} peer");
        }
    }
    // The listener's sessions say which version they are.
    let versions: Vec<u8> = rx
        .session_handles()
        .iter()
        .filter_map(|h| h.parameters().map(|p| p.version))
        .collect();
    ensure!(
        versions.contains(&3) && versions.contains(&4),
        "{versions:?}"
    );

    // Both end cleanly.
    s3.terminate(SessTermReason::UNKNOWN)?;
    s4.terminate(SessTermReason::UNKNOWN)?;
    for s in [&s3, &s4] {
        let r = s.wait_closed(T)?;
        ensure!(
            matches!(
                r,
                CloseReason::Session(proto_core::tcpcl::CloseReason::Terminated { .. })
            ),
            "{r:?}"
        );
    }
    Ok(())
}

/// A v3 session reports its acknowledged bundle with the same event as v4.
#[test]
fn v3_bundles_are_acknowledged_through_the_same_events() -> Result<()> {
    let rx = Agent::new(config("dtn://rx/"))?;
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let mut c = config("dtn://tx/");
    c.tcpcl_version = 3;
    let tx = Agent::new(c)?;
    let tx_events = tx.events();
    let s = tx.connect(addr)?;
    s.wait_established(T)?;
    let tid = s.send_bytes(pattern(1000, 1))?;
    wait_event(
        &tx_events,
        T,
        |e| matches!(e, Event::TransferFinished { transfer_id, .. } if *transfer_id == tid),
    )?;
    let got = bundles(&rx_events, 1, T)?;
    ensure!(got.len() == 1);
    let _ = drain(&tx_events);
    Ok(())
}

/// What v3 cannot do is a typed configuration error, not a silent downgrade.
#[test]
fn v3_refuses_tls_and_node_authentication_settings() -> Result<()> {
    for (key, tweak) in [
        (
            "require_tls",
            (|c: &mut proto_net::tcpcl::Config| c.require_tls = Some(true)) as fn(&mut _),
        ),
        ("require_node_authn", |c| c.require_node_authn = true),
    ] {
        let mut c = config("dtn://x/");
        c.tcpcl_version = 3;
        tweak(&mut c);
        match c.validate() {
            Err(Error::Config(ConfigError::NotInTcpclV3 { setting })) => {
                ensure!(setting == key, "{setting} for {key}")
            }
            other => anyhow::bail!("{key}: {other:?}"),
        }
    }
    let mut c = config("dtn://x/");
    c.tcpcl_version = 5;
    ensure!(matches!(
        c.validate(),
        Err(Error::Config(ConfigError::InvalidValue {
            key: "tcpcl_version",
            ..
        }))
    ));
    Ok(())
}

/// A listener that accepts only v3 answers a v4 peer with a v3 contact header and
/// SHUTDOWN Version mismatch; one that accepts only v4 refuses a v3 peer.
#[test]
fn single_version_listeners_refuse_the_other_version() -> Result<()> {
    for (accept, connect) in [(3u8, 4u8), (4, 3)] {
        let mut rc = config("dtn://rx/");
        rc.accept_tcpcl_version = Some(accept);
        let rx = Agent::new(rc)?;
        let addr = rx.listen("127.0.0.1:0")?;
        let mut tc = config("dtn://tx/");
        tc.tcpcl_version = connect;
        let tx = Agent::new(tc)?;
        let s = tx.connect(addr)?;
        let r = s.wait_closed(T)?;
        ensure!(
            matches!(
                r,
                CloseReason::Session(proto_core::tcpcl::CloseReason::VersionMismatch { version })
                    if version == accept
            ),
            "accept {accept}, connect {connect}: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

// ----- against a raw v3 peer written from RFC 7242 (tests/support/tcpcl3_wire.rs) -----

use proto_tests::tcpcl3_wire::{ack, contact, data_segment, shutdown, Msg, RawV3};
use std::net::TcpListener;

/// proto as the active v3 side against a peer that asks for acks and LENGTH: LENGTH
/// before each bundle, S/E segments of the configured size, cumulative acks turn into
/// TransferFinished; then our SHUTDOWN.
#[test]
fn active_v3_with_acks_and_length_against_a_raw_peer() -> Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let mut c = config("dtn://tx/");
    c.tcpcl_version = 3;
    c.segment_size_tx_initial = 4;
    c.keepalive_time = 30;
    let tx = Agent::new(c)?;
    let events = tx.events();
    let s = tx.connect(addr)?;
    let mut peer = RawV3::accept(&l);
    peer.send(&contact(0x09, 10, "dtn://raw/"));
    let (flags, ka, eid) = peer.read_contact();
    ensure!((flags, ka, eid.as_str()) == (0x0d, 30, "dtn://tx/"));
    let p = s.wait_established(T)?;
    ensure!(p.keepalive == 10 && p.peer_node_id == "dtn://raw/");
    let tid = s.send_bytes(b"0123456789".to_vec())?;
    let mut got = Vec::new();
    let mut total = 0u64;
    while got
        .last()
        .is_none_or(|m| !matches!(m, Msg::Data(_, true, _)))
    {
        let m = peer.read_msg().context("message")?;
        if let Msg::Data(_, _, d) = &m {
            total += d.len() as u64;
            peer.send(&ack(total));
        }
        got.push(m);
    }
    ensure!(
        got == [
            Msg::Length(10),
            Msg::Data(true, false, b"0123".to_vec()),
            Msg::Data(false, false, b"4567".to_vec()),
            Msg::Data(false, true, b"89".to_vec()),
        ],
        "{got:?}"
    );
    wait_event(
        &events,
        T,
        |e| matches!(e, Event::TransferFinished { transfer_id, len: 10, .. } if *transfer_id == tid),
    )?;
    s.terminate(SessTermReason::UNKNOWN)?;
    ensure!(peer.read_msg() == Some(Msg::Shutdown(None, None)));
    ensure!(s.wait_closed(T)?.is_graceful());
    Ok(())
}

/// A peer that asks for nothing: no LENGTH, one segment, TransferSent (unconfirmed);
/// a peer REFUSE_BUNDLE stops a bundle; keepalives flow when the peer asks for them.
#[test]
fn active_v3_without_acks_and_with_refusal_and_keepalive() -> Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let mut c = config("dtn://tx/");
    c.tcpcl_version = 3;
    c.keepalive_time = 1;
    let tx = Agent::new(c)?;
    let events = tx.events();
    let s = tx.connect(addr)?;
    let mut peer = RawV3::accept(&l);
    peer.send(&contact(0x00, 1, "dtn://raw/"));
    peer.read_contact();
    s.wait_established(T)?;
    let tid = s.send_bytes(b"abc".to_vec())?;
    ensure!(peer.read_msg() == Some(Msg::Data(true, true, b"abc".to_vec())));
    wait_event(
        &events,
        T,
        |e| matches!(e, Event::TransferSent { transfer_id, len: 3, .. } if *transfer_id == tid),
    )?;
    // Silence from us for the interval: a KEEPALIVE (§5.6).
    ensure!(peer.read_msg() == Some(Msg::Keepalive));
    peer.send(&[0x40]);
    drop(peer);
    let _ = s.wait_closed(T)?;

    // Refusal: the peer allows it and asks for acks.
    let mut c = config("dtn://tx/");
    c.tcpcl_version = 3;
    c.segment_size_tx_initial = 2;
    let tx = Agent::new(c)?;
    let events = tx.events();
    let s = tx.connect(addr)?;
    let mut peer = RawV3::accept(&l);
    peer.send(&contact(0x05, 0, "dtn://raw/"));
    peer.read_contact();
    s.wait_established(T)?;
    let tid = s.send_bytes(b"refuse me".to_vec())?;
    ensure!(peer.read_msg() == Some(Msg::Data(true, false, b"re".to_vec())));
    peer.send(&[0x32]); // REFUSE_BUNDLE, no resources
    wait_event(
        &events,
        T,
        |e| matches!(e, Event::TransferRefused { transfer_id, .. } if *transfer_id == tid),
    )?;
    // The next bundle starts anew with S.
    s.send_bytes(b"ok".to_vec())?;
    loop {
        match peer.read_msg().context("message")? {
            Msg::Data(true, true, d) if d == b"ok" => break,
            Msg::Data(false, _, _) => {} // segments already in flight
            m => anyhow::bail!("unexpected {m:?}"),
        }
    }
    Ok(())
}

/// The passive side: the raw peer's segments are delivered and acknowledged per
/// segment only after they are stored; a SHUTDOWN with a reconnection delay is
/// honoured by `connect`.
#[test]
fn raw_peer_bundle_acks_and_reconnection_delay() -> Result<()> {
    let rx = Agent::new(config("dtn://rx/"))?;
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let mut peer = RawV3 {
        s: std::net::TcpStream::connect(addr)?,
    };
    peer.s.set_read_timeout(Some(Duration::from_secs(20)))?;
    peer.send(&contact(0x01, 0, "dtn://raw/"));
    let (flags, _, eid) = peer.read_contact();
    ensure!(flags == 0x0d && eid == "dtn://rx/");
    peer.send(&data_segment(true, false, b"hello "));
    peer.send(&data_segment(false, true, b"world"));
    ensure!(peer.read_msg() == Some(Msg::Ack(6)));
    ensure!(peer.read_msg() == Some(Msg::Ack(11)));
    let got = bundles(&rx_events, 1, T)?;
    ensure!(matches!(&got[0].2, ReceivedBundle::Bytes(b) if b == b"hello world"));
    peer.send(&shutdown(Some(2), Some(7)));
    ensure!(
        peer.read_msg() == Some(Msg::Shutdown(None, None)),
        "our answer"
    );

    // Now proto connects to a peer that asked for a delay: refused until it passes.
    let l = TcpListener::bind("127.0.0.1:0")?;
    let to = l.local_addr()?;
    let mut c = config("dtn://tx/");
    c.tcpcl_version = 3;
    let tx = Agent::new(c)?;
    let s = tx.connect(to)?;
    let mut p2 = RawV3::accept(&l);
    p2.send(&contact(0x00, 0, "dtn://raw/"));
    p2.read_contact();
    s.wait_established(T)?;
    p2.send(&shutdown(None, Some(3600)));
    drop(p2);
    s.wait_closed(T)?;
    match tx.connect(to) {
        Err(Error::ReconnectDelay { peer, remaining }) => {
            ensure!(
                peer == to && remaining > Duration::from_secs(3500),
                "{remaining:?}"
            )
        }
        other => anyhow::bail!("connect during the delay: {:?}", other.map(|h| h.id())),
    }
    Ok(())
}
