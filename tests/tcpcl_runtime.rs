//! The TCPCL runtime's design promises (issue 10), over real loopback sockets: a
//! stalled event consumer never kills a session, the wire order is the core's send
//! policy (the pair harness and the runtime agree), a blocking `Read` source never
//! stalls acks or keepalives, and a handler answers bundles from the session thread.
//! (Thousands of sessions, one thread each: `tcpcl_many.rs`, alone in its binary.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use proto_net::tcpcl::{Agent, CloseReason, Direction, Event, ReceivedBundle, State};
use proto_tests::tcpcl::{
    any_session, bundles, config, drain, no_close, pair_with, pattern, wait_event, Fails, Gated, T,
};
use proto_tests::tcpcl_policy::{harness_segments, SegmentRecord};
use proto_tests::tcpcl_wire::{segment, xfer_ack, Msg, RawPeer, END, KEEPALIVE, START};

// ----- 1. a slow or stalled event consumer ---------------------------------------------

/// An application that does not read its 4-slot event channel for 4.5 s (over twice
/// the 2 s receive-idle limit of keepalive 1 s) while its peer sends 16 MiB: neither
/// side times out, the sender is held back by TCP (not finished during the stall), and
/// once the application reads, every bundle arrives once, intact, in order.
#[test]
fn a_stalled_event_consumer_holds_back_the_peer_without_timing_out() -> Result<()> {
    const N: usize = 32;
    const LEN: usize = 512 << 10;
    let mut rx_cfg = config("dtn://rx/");
    rx_cfg.event_capacity = 4;
    rx_cfg.keepalive_time = 1;
    let mut tx_cfg = config("dtn://tx/");
    tx_cfg.keepalive_time = 1;
    let p = pair_with(rx_cfg, tx_cfg)?;
    assert_eq!(p.session.parameters().context("params")?.keepalive, 1);
    let rx_session = any_session(&p.rx)?;

    let sender = {
        let h = p.session.clone();
        std::thread::spawn(move || -> Result<Vec<u64>> {
            // `send_bytes` blocks once 16 bundles are queued: that is the backpressure.
            (0..N)
                .map(|i| Ok(h.send_bytes(pattern(LEN, i as u8))?))
                .collect()
        })
    };
    let stall = Instant::now();
    while stall.elapsed() < Duration::from_millis(4500) {
        std::thread::sleep(Duration::from_millis(250));
        no_close(&drain(&p.tx_events), "sender")?;
        ensure!(p.session.state() == State::Established, "sender session");
        ensure!(rx_session.state() == State::Established, "receiver session");
    }
    ensure!(
        !p.session.is_idle(),
        "the sender finished during the stall: the consumer never held it back"
    );

    // The application reads now.
    let mut got = Vec::new();
    let deadline = Instant::now() + T;
    while got.len() < N {
        let ev = p
            .rx_events
            .recv_deadline(deadline)
            .with_context(|| format!("{} of {N} bundles", got.len()))?;
        no_close(std::slice::from_ref(&ev), "receiver")?;
        if let Event::BundleReceived {
            transfer_id,
            bundle,
            ..
        } = ev
        {
            got.push((transfer_id, bundle));
        }
    }
    let tids = sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    p.session.wait_sent(T)?;
    for (i, (tid, bundle)) in got.iter().enumerate() {
        assert_eq!(*tid, tids[i], "bundle {i} out of order");
        let ReceivedBundle::Bytes(b) = bundle else {
            bail!("expected bytes")
        };
        assert!(*b == pattern(LEN, i as u8), "bundle {i} damaged");
    }
    // Exactly once: nothing more arrives.
    std::thread::sleep(Duration::from_millis(300));
    let rest = drain(&p.rx_events);
    no_close(&rest, "receiver")?;
    ensure!(
        !rest
            .iter()
            .any(|e| matches!(e, Event::BundleReceived { .. })),
        "a bundle arrived twice"
    );
    assert_eq!(rx_session.state(), State::Established);
    Ok(())
}

/// While its application does not read events, the stalled side still sends
/// KEEPALIVEs (checked by a raw peer that keeps sending bundles), and acknowledges the
/// bundles once the application reads.
#[test]
fn a_stalled_consumer_still_sends_keepalives() -> Result<()> {
    let mut cfg = config("dtn://rx/");
    cfg.event_capacity = 4;
    cfg.keepalive_time = 1;
    let agent = Agent::new(cfg)?;
    let events = agent.events();
    let addr = agent.listen("127.0.0.1:0")?;
    let mut raw = RawPeer::connect(addr, None)?;
    raw.handshake(1, 1 << 20, 1 << 30, "dtn://raw/")?;
    any_session(&agent)?.wait_established(T)?;

    // One bundle every 300 ms for 4.5 s, plus our own keepalives; the channel is full
    // after the first transfer's events.
    let start = Instant::now();
    let mut sent = 0u64;
    let mut keepalives = Vec::new();
    let mut acked = Vec::new();
    let mut last_keepalive_sent = start;
    while start.elapsed() < Duration::from_millis(4500) {
        if start.elapsed() >= Duration::from_millis(300 * sent) {
            raw.send(&segment(START | END, sent, &pattern(100, sent as u8)))?;
            sent += 1;
        }
        if last_keepalive_sent.elapsed() >= Duration::from_secs(1) {
            raw.send(&KEEPALIVE)?;
            last_keepalive_sent = Instant::now();
        }
        match raw.poll(Duration::from_millis(50))? {
            None => {}
            Some(Msg::Keepalive) => keepalives.push(start.elapsed()),
            Some(Msg::Ack { tid, .. }) => acked.push(tid),
            Some(m) => bail!("unexpected while stalled: {m:?}"),
        }
    }
    ensure!(
        keepalives.len() >= 3,
        "KEEPALIVEs at {keepalives:?} in 4.5 s with keepalive 1 s"
    );
    ensure!(
        // No gap as long as the peer's receive-idle limit (twice the keepalive).
        keepalives
            .windows(2)
            .all(|w| w[1] - w[0] < Duration::from_secs(2)),
        "KEEPALIVEs at {keepalives:?}"
    );
    ensure!(
        (acked.len() as u64) < sent,
        "every bundle was acknowledged during the stall ({acked:?}): the consumer never stalled"
    );

    // The application reads: every bundle is delivered and acknowledged, once.
    let got = bundles(&events, sent as usize, T)?;
    for (i, (_, tid, b)) in got.iter().enumerate() {
        assert_eq!(*tid, i as u64);
        assert_eq!(*b, ReceivedBundle::Bytes(pattern(100, i as u8)));
    }
    while (acked.len() as u64) < sent {
        match raw.poll(Duration::from_secs(5))? {
            Some(Msg::Ack { tid, .. }) => acked.push(tid),
            Some(Msg::Keepalive) => {}
            other => bail!("waiting for acks: {other:?}"),
        }
    }
    assert_eq!(acked, (0..sent).collect::<Vec<_>>());
    Ok(())
}

/// A full event channel (shared by all sessions of an agent) pauses the reading of
/// established sessions only: a new session still completes its contact and SESS_INIT
/// exchange instead of dying of its contact timeout, and its events follow once the
/// application reads.
#[test]
fn a_full_event_channel_does_not_keep_new_sessions_from_establishing() -> Result<()> {
    let mut rx_cfg = config("dtn://rx/");
    rx_cfg.event_capacity = 2;
    rx_cfg.contact_timeout = 1.0;
    let p = pair_with(rx_cfg, config("dtn://tx/"))?;
    let first = any_session(&p.rx)?;
    ensure!(
        first.wait_established(Duration::from_secs(3)).is_ok(),
        "the first session"
    );
    // The channel is full now; nobody reads it.
    let second = p.tx.connect(p.rx.listen_addrs()[0])?;
    second
        .wait_established(Duration::from_secs(3))
        .context("a session opened while the channel is full never got the peer's SESS_INIT")?;
    // Past the contact timeout, both ends are up.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(second.state(), State::Established);
    for h in p.rx.session_handles() {
        assert_eq!(h.state(), State::Established, "{}", h.id());
    }
    let established = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::SessionEstablished { .. }))
            .count()
    };
    let mut seen = Vec::new();
    let deadline = Instant::now() + T;
    while established(&seen) < 2 {
        seen.push(p.rx_events.recv_deadline(deadline).context("events")?);
    }
    no_close(&seen, "listener")?;
    Ok(())
}

// ----- 2. one send policy ----------------------------------------------------------------

/// The runtime puts on the wire exactly the segments the core's policy yields in the
/// pair harness (same IDs, flags, Transfer Length items and sizes, in the same order)
/// for bundles of 0, 1, MRU, MRU+1, 3·MRU+7 and 5000·MRU+3 bytes submitted back to
/// back, while it also acknowledges 40 segments of the peer's: every XFER_ACK comes
/// between segments, never inside one. The peer's segments arrive while the agent's
/// output is stuck in the middle of a segment: 5 MB do not fit in the socket buffers
/// (about 3 MB on loopback against a 4 KiB receive window) of a peer that does not
/// read yet.
#[test]
fn the_runtime_sends_what_the_core_policy_and_pair_harness_send() -> Result<()> {
    const MRU: u64 = 1000;
    const PEER_SEGMENTS: u64 = 40;
    let sizes = [0, 1, MRU, MRU + 1, 3 * MRU + 7, 5000 * MRU + 3];
    let data: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(n as usize, i as u8))
        .collect();
    let cfg = config("dtn://agent/");
    let expected = harness_segments(cfg.session_config(false)?, MRU, &data)?;
    // The harness is not vacuous: START/END and the MRU split as RFC 9174 says.
    let mut by_hand = Vec::new();
    for (tid, &n) in sizes.iter().enumerate() {
        let parts = n.div_ceil(MRU).max(1);
        for k in 0..parts {
            let len = (n - k * MRU).min(MRU) as usize;
            let flags = if k == 0 { START } else { 0 } | if k + 1 == parts { END } else { 0 };
            by_hand.push((tid as u64, flags, len));
        }
    }
    let shape: Vec<(u64, u8, usize)> = expected.iter().map(|s| (s.0, s.1, s.3)).collect();
    assert_eq!(shape, by_hand);

    let agent = Agent::new(cfg)?;
    let _events = agent.events();
    let addr = agent.listen("127.0.0.1:0")?;
    let mut raw = RawPeer::connect(addr, Some(4096))?;
    let Msg::SessInit { segment_mru, .. } = raw.handshake(0, MRU, 1 << 30, "dtn://raw/")? else {
        bail!("no SESS_INIT")
    };
    assert_eq!(segment_mru, 10_485_760);
    let h = any_session(&agent)?;
    assert_eq!(h.wait_established(T)?.peer_segment_mru, MRU);

    for d in &data {
        h.send_bytes(d.clone())?;
    }
    // The agent fills the socket buffers and blocks half-way through a segment; then
    // our bundle arrives and its acks wait for the agent's output.
    std::thread::sleep(Duration::from_millis(100));
    for k in 0..PEER_SEGMENTS {
        let flags = if k == 0 { START } else { 0 } | if k + 1 == PEER_SEGMENTS { END } else { 0 };
        raw.send(&segment(flags, 0, &[k as u8; 100]))?;
    }
    std::thread::sleep(Duration::from_millis(100));

    let mut got: Vec<SegmentRecord> = Vec::new();
    let mut offsets = BTreeMap::new();
    let mut acks = Vec::new();
    // Acks that arrived while the agent was still in the middle of its transfers.
    let mut acks_between_segments = 0;
    while got.len() < expected.len() || (acks.len() as u64) < PEER_SEGMENTS {
        let m = raw
            .poll(Duration::from_secs(10))?
            .context("the agent went quiet")?;
        match m {
            Msg::Segment {
                flags,
                tid,
                ext,
                data: payload,
            } => {
                let at: &mut usize = offsets.entry(tid).or_default();
                let want = data
                    .get(tid as usize)
                    .and_then(|d| d.get(*at..*at + payload.len()))
                    .with_context(|| format!("segment of unknown transfer {tid}"))?;
                ensure!(
                    payload == want,
                    "transfer {tid} at {at}: payload differs from the bundle"
                );
                *at += payload.len();
                raw.send(&xfer_ack(flags, tid, *at as u64))?;
                got.push((tid, flags, ext, payload.len()));
            }
            Msg::Ack { tid: 0, len, .. } => {
                if !got.is_empty() && got.len() < expected.len() {
                    acks_between_segments += 1;
                }
                acks.push(len);
            }
            other => bail!("unexpected {other:?}"),
        }
    }
    if let Some(i) = (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i)) {
        let around = |v: &[SegmentRecord]| -> Vec<(u64, u8, usize)> {
            v.iter()
                .skip(i.saturating_sub(2))
                .take(5)
                .map(|s| (s.0, s.1, s.3))
                .collect()
        };
        bail!(
            "segment {i} of the runtime differs from the core's policy (transfer, flags, \
             length from {}):\n runtime {:?}\n harness {:?}",
            i.saturating_sub(2),
            around(&got),
            around(&expected)
        );
    }
    let want_acks: Vec<u64> = (1..=PEER_SEGMENTS).map(|k| k * 100).collect();
    assert_eq!(acks, want_acks);
    h.wait_sent(T)?;
    eprintln!(
        "{acks_between_segments} of {PEER_SEGMENTS} acks arrived between the agent's segments"
    );
    ensure!(
        acks_between_segments >= PEER_SEGMENTS / 2,
        "only {acks_between_segments} acks came while segments were going out"
    );
    Ok(())
}

// ----- 3. Read sources that block or fail -------------------------------------------------

/// A bundle whose reader blocks for 4.5 s after its first 1,000 bytes: meanwhile the
/// peer's bundles are acknowledged within a second, and with nothing else to send for
/// over twice the 1 s keepalive both sides stay up on keepalives; after the reader
/// unblocks, its bundle completes intact.
#[test]
fn a_blocked_reader_stalls_neither_acks_nor_keepalives() -> Result<()> {
    let mut a_cfg = config("dtn://a/");
    a_cfg.keepalive_time = 1;
    let mut b_cfg = config("dtn://b/");
    b_cfg.keepalive_time = 1;
    let p = pair_with(b_cfg, a_cfg)?;
    assert_eq!(p.session.parameters().context("params")?.keepalive, 1);
    let b_session = any_session(&p.rx)?;
    let head = pattern(1000, 1);
    let tail = pattern(300_000, 2);
    let (reader, open) = Gated::new(head.clone(), tail.clone());
    let tid = p.session.send_reader(reader, None)?;
    wait_event(
        &p.rx_events,
        T,
        |e| matches!(e, Event::TransferStarted { direction: Direction::Incoming, transfer_id, .. } if *transfer_id == tid),
    )?;
    let start = Instant::now();
    // For 2 s the peer sends bundles, each acknowledged within a second.
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(2) {
        b_session.send_bytes(pattern(5000, sent))?;
        b_session
            .wait_sent(Duration::from_secs(1))
            .with_context(|| format!("bundle {sent} not acknowledged while our reader blocks"))?;
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    // Then 2.5 s of silence but for keepalives.
    while start.elapsed() < Duration::from_millis(4500) {
        std::thread::sleep(Duration::from_millis(100));
        ensure!(p.session.state() == State::Established, "our session");
        ensure!(b_session.state() == State::Established, "peer session");
    }
    no_close(&drain(&p.rx_events), "peer")?;
    open.send(())?;
    p.session.wait_sent(T)?;
    let got = bundles(&p.rx_events, 1, T)?;
    assert_eq!(got[0].1, tid);
    let ReceivedBundle::Bytes(b) = &got[0].2 else {
        bail!("expected bytes")
    };
    ensure!(b.len() == head.len() + tail.len(), "length {}", b.len());
    ensure!(
        b[..1000] == head[..] && b[1000..] == tail[..],
        "bundle damaged"
    );
    let ours = bundles(&p.tx_events, usize::from(sent), T)?;
    for (i, (_, _, b)) in ours.iter().enumerate() {
        assert_eq!(*b, ReceivedBundle::Bytes(pattern(5000, i as u8)));
    }
    assert_eq!(p.session.state(), State::Established);
    Ok(())
}

/// A reader that fails before its first byte: the transfer is cancelled, nothing of it
/// reaches the peer, and the session goes on with the next bundle (already queued
/// when the reader fails, so nothing but the failure itself wakes the session).
#[test]
fn a_reader_failing_before_its_first_byte_cancels_only_its_transfer() -> Result<()> {
    let p = pair_with(config("dtn://b/"), config("dtn://a/"))?;
    let bad = p.session.send_reader(
        Fails {
            good: 0,
            delay: Duration::from_millis(300),
        },
        None,
    )?;
    let good = p.session.send_bytes(b"after".to_vec())?;
    wait_event(
        &p.tx_events,
        T,
        |e| matches!(e, Event::TransferCancelled { direction: Direction::Outgoing, transfer_id, .. } if *transfer_id == bad),
    )?;
    p.session
        .wait_sent(Duration::from_secs(5))
        .context("the bundle queued behind the failed one was never sent")?;
    let got = bundles(&p.rx_events, 1, T)?;
    assert_eq!(got[0].1, good);
    assert_eq!(got[0].2, ReceivedBundle::Bytes(b"after".to_vec()));
    // The peer never heard of the failed transfer.
    std::thread::sleep(Duration::from_millis(200));
    let rest = drain(&p.rx_events);
    ensure!(
        !rest.iter().any(
            |e| matches!(e, Event::TransferStarted { transfer_id, .. } if *transfer_id == bad)
        ),
        "{rest:?}"
    );
    no_close(&rest, "peer")?;
    assert_eq!(p.session.state(), State::Established);
    Ok(())
}

/// A reader that fails after its first segment went out: TCPCL cannot abandon a
/// started transfer, so the session closes with `SourceFailed`; the peer drops the
/// partial bundle.
#[test]
fn a_reader_failing_mid_transfer_closes_the_session_with_source_failed() -> Result<()> {
    let p = pair_with(config("dtn://b/"), config("dtn://a/"))?;
    // Fewer bytes than a page: the helper hands them over before reading on.
    let tid = p.session.send_reader(
        Fails {
            good: 1000,
            delay: Duration::from_millis(100),
        },
        None,
    )?;
    let reason = p.session.wait_closed(T)?;
    ensure!(
        matches!(reason, CloseReason::SourceFailed(..)),
        "closed with {reason:?}"
    );
    wait_event(
        &p.rx_events,
        T,
        |e| matches!(e, Event::TransferCancelled { direction: Direction::Incoming, transfer_id, .. } if *transfer_id == tid),
    )?;
    let ev = wait_event(&p.rx_events, T, |e| {
        matches!(e, Event::SessionClosed { .. })
    })?;
    let Event::SessionClosed { reason, .. } = ev else {
        bail!("not a close")
    };
    ensure!(!reason.is_graceful(), "{reason:?}");
    Ok(())
}

// ----- 4. a handler on the session thread --------------------------------------------------

/// A handler answers every bundle from the session thread (`Reply::send_bytes`): the
/// peer gets each answer, and the handler sees the session's events on that one
/// thread, in the same order as the event channel.
#[test]
fn a_handler_answers_bundles_on_the_session_thread() -> Result<()> {
    type Seen = Vec<(String, String)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let rx = Agent::new(config("dtn://rx/"))?;
    {
        let seen = seen.clone();
        rx.set_handler(move |e: &Event, reply: &mut proto_net::tcpcl::Reply<'_>| {
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((thread, format!("{e:?}")));
            if let Event::BundleReceived {
                bundle: ReceivedBundle::Bytes(b),
                ..
            } = e
            {
                let mut answer = b"re: ".to_vec();
                answer.extend_from_slice(b);
                reply.send_bytes(answer);
            }
        });
    }
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let tx = Agent::new(config("dtn://tx/"))?;
    let tx_events = tx.events();
    let s = tx.connect(addr)?;
    s.wait_established(T)?;
    let pid = any_session(&rx)?.id();
    for i in 0..5 {
        s.send_bytes(format!("question {i}").into_bytes())?;
    }
    let answers = bundles(&tx_events, 5, T)?;
    for (i, (_, tid, b)) in answers.iter().enumerate() {
        assert_eq!(*tid, i as u64);
        assert_eq!(
            *b,
            ReceivedBundle::Bytes(format!("re: question {i}").into_bytes())
        );
    }
    s.terminate(proto_net::tcpcl::SessTermReason::UNKNOWN)?;
    s.wait_closed(T)?;
    // The channel's copy of the passive session's events, up to its close.
    let mut channel = Vec::new();
    loop {
        let e = rx_events.recv_timeout(T).context("passive events")?;
        let last = matches!(e, Event::SessionClosed { .. });
        if !matches!(e, Event::TransferProgress { .. }) {
            channel.push(format!("{e:?}"));
        }
        if last {
            break;
        }
    }
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let threads: std::collections::BTreeSet<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    ensure!(
        threads.len() == 1
            && threads
                .iter()
                .all(|t| t.starts_with("tcpcl-") && !t.contains("listen")),
        "handler ran on {threads:?}"
    );
    let handled: Vec<&String> = seen
        .iter()
        .map(|(_, e)| e)
        .filter(|e| !e.starts_with("TransferProgress"))
        .collect();
    assert_eq!(handled, channel.iter().collect::<Vec<_>>());
    // In protocol order: established first, each bundle before its answer, closed last.
    let pos = |needle: &str| handled.iter().position(|e| e.contains(needle));
    let mut last = pos("SessionEstablished").context("established")?;
    for i in 0..5 {
        let got = pos(&format!(
            "BundleReceived {{ session: {pid:?}, transfer_id: {i},"
        ))
        .with_context(|| format!("bundle {i}"))?;
        ensure!(last < got, "bundle {i} out of order: {handled:#?}");
        last = got;
    }
    ensure!(handled
        .last()
        .is_some_and(|e| e.starts_with("SessionClosed")));
    Ok(())
}
