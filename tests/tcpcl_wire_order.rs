//! Where the runtime's control messages land relative to the segments it is writing,
//! and what an unclean close leaves on the wire (RFC 9174 §5.2.4, §6.1), read by a raw
//! peer (`tests/support/tcpcl_wire.rs`) with a small receive window, so the agent's
//! writes are partial and a segment is in flight when the event under test happens.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use proto_net::tcpcl::{Agent, CloseReason, Event, SessTermReason, SessionHandle};
use proto_tests::tcpcl::{any_session, config, pattern, wait_event, Gated, T};
use proto_tests::tcpcl_wire::{
    segment, sess_term, xfer_ack, xfer_refuse, Msg, RawPeer, END, START,
};

/// The agent's segments: large next to the peer's window, so one is always in flight.
const SEGMENT: u64 = 256 << 10;
/// The raw peer's receive buffer.
const RCVBUF: usize = 16 << 10;
const NODE: &str = "dtn://raw/";

/// A listening agent sending `SEGMENT`-byte segments, a raw peer connected and
/// established (segment MRU `peer_mru`), and the agent's session handle.
fn setup(
    peer_mru: u64,
) -> Result<(
    Agent,
    crossbeam_channel::Receiver<Event>,
    RawPeer,
    SessionHandle,
)> {
    let mut cfg = config("dtn://agent/");
    cfg.segment_size_tx_initial = SEGMENT;
    cfg.segment_size_tx_max = SEGMENT;
    cfg.sess_term_timeout = 5.0;
    let agent = Agent::new(cfg)?;
    let events = agent.events();
    let addr = agent.listen("127.0.0.1:0")?;
    let mut raw = RawPeer::connect(addr, Some(RCVBUF))?;
    raw.handshake(0, peer_mru, 1 << 30, NODE)?;
    let session = any_session(&agent)?;
    session.wait_established(T)?;
    Ok((agent, events, raw, session))
}

/// Reads until `done` says so, acknowledging every segment (cumulatively) and
/// answering a SESS_TERM with its reply; returns every message read.
fn read_acking(raw: &mut RawPeer, mut done: impl FnMut(&[Msg]) -> bool) -> Result<Vec<Msg>> {
    let mut seen = Vec::new();
    let mut acked: Vec<(u64, u64)> = Vec::new();
    let deadline = Instant::now() + T;
    while !done(&seen) {
        ensure!(
            Instant::now() < deadline,
            "gave up after {} messages",
            seen.len()
        );
        let Some(m) = raw.next(T)? else {
            bail!("the agent closed after {:?}", summary(&seen))
        };
        match &m {
            Msg::Segment {
                flags, tid, data, ..
            } => {
                let total = match acked.iter_mut().find(|a| a.0 == *tid) {
                    Some(a) => {
                        a.1 += data.len() as u64;
                        a.1
                    }
                    None => {
                        acked.push((*tid, data.len() as u64));
                        data.len() as u64
                    }
                };
                raw.send(&xfer_ack(*flags, *tid, total))?;
            }
            Msg::SessTerm { flags, reason } if flags & 0x01 == 0 => {
                raw.send(&sess_term(0x01, *reason))?;
            }
            _ => {}
        }
        seen.push(m);
    }
    Ok(seen)
}

/// The messages as short names, for failure messages.
fn summary(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .map(|m| match m {
            Msg::Segment {
                flags, tid, data, ..
            } => {
                format!("SEG{{flags={flags},tid={tid},len={}}}", data.len())
            }
            other => format!("{other:?}"),
        })
        .collect()
}

/// RFC 9174 §6.1 SHALL: SESS_TERM goes out only between whole messages. The agent is
/// writing a four-segment bundle (the peer reads nothing yet, so a segment is cut by
/// the window) and its source is blocked when the session is terminated: the SESS_TERM
/// lands between two segments, and the bundle in progress still completes (§6.1).
#[test]
fn sess_term_lands_between_the_segments_of_a_bundle_being_written() -> Result<()> {
    let (_agent, events, mut raw, session) = setup(SEGMENT)?;
    let head = pattern(2 * SEGMENT as usize + 1000, 1);
    let tail = pattern(SEGMENT as usize + 5000, 2);
    let (source, gate) = Gated::new(head.clone(), tail.clone());
    let tid = session.send_reader(source, Some((head.len() + tail.len()) as u64))?;
    // The transfer has started; let the agent fill the window: a segment is in flight.
    wait_event(
        &events,
        T,
        |e| matches!(e, Event::TransferStarted { transfer_id, .. } if *transfer_id == tid),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    session.terminate(SessTermReason::BUSY)?;
    std::thread::sleep(Duration::from_millis(100));
    gate.send(()).ok();
    let msgs = read_acking(&mut raw, |m| {
        m.iter().any(|m| matches!(m, Msg::SessTerm { .. }))
            && m.iter()
                .any(|m| matches!(m, Msg::Segment { flags, .. } if flags & END != 0))
    })?;
    let names = summary(&msgs);
    // Every message parsed (a SESS_TERM inside a payload would have put the stream out
    // of step), the SESS_TERM came after the first segment and before the last.
    let term_at = msgs
        .iter()
        .position(|m| {
            matches!(
                m,
                Msg::SessTerm {
                    flags: 0,
                    reason: 3
                }
            )
        })
        .context("no SESS_TERM (Busy)")?;
    let first_seg = msgs
        .iter()
        .position(|m| matches!(m, Msg::Segment { .. }))
        .unwrap();
    let last_seg = msgs
        .iter()
        .rposition(|m| matches!(m, Msg::Segment { .. }))
        .unwrap();
    ensure!(first_seg < term_at && term_at < last_seg, "{names:?}");
    let data: Vec<u8> = msgs
        .iter()
        .filter_map(|m| match m {
            Msg::Segment { tid: t, data, .. } if *t == tid => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    ensure!(
        data == [head, tail].concat(),
        "the bundle was damaged: {names:?}"
    );
    let reason = session.wait_closed(T).or_else(|_| {
        drop(raw);
        session.wait_closed(T)
    })?;
    ensure!(
        matches!(reason, CloseReason::Session(_)),
        "closed by the exchange: {reason}"
    );
    Ok(())
}

/// RFC 9174 §5.2.4 MUST: a refusal while a segment is being written lets that segment
/// finish (the stream stays framed), starts no further segment of the refused bundle,
/// and the next bundle goes out normally; no MSG_REJECT anywhere.
#[test]
fn a_refusal_while_a_segment_is_in_flight_keeps_the_stream_framed() -> Result<()> {
    let (_agent, events, mut raw, session) = setup(SEGMENT)?;
    let big = pattern(64 * SEGMENT as usize, 3);
    let tid = session.send_bytes(big)?;
    let next = pattern(1000, 4);
    // The first segment is read; the agent is by then writing later ones into the
    // window, and the refusal arrives while one is cut.
    let first = raw.next(T)?.context("no first segment")?;
    ensure!(
        matches!(first, Msg::Segment { tid: t, flags: START, .. } if t == tid),
        "{first:?}"
    );
    raw.send(&xfer_refuse(0x02, tid))?; // No Resources
    std::thread::sleep(Duration::from_millis(200));
    let next_tid = session.send_bytes(next.clone())?;
    let msgs = read_acking(&mut raw, |m| {
        m.iter()
            .any(|m| matches!(m, Msg::Segment { tid, flags, .. } if *tid == next_tid && flags & END != 0))
    })?;
    let names = summary(&msgs);
    ensure!(
        !msgs.iter().any(|m| matches!(m, Msg::Reject { .. })),
        "MSG_REJECT: {names:?}"
    );
    let refused: Vec<&Msg> = msgs
        .iter()
        .filter(|m| matches!(m, Msg::Segment { tid: t, .. } if *t == tid))
        .collect();
    ensure!(
        !refused
            .iter()
            .any(|m| matches!(m, Msg::Segment { flags, .. } if flags & END != 0)),
        "the refused bundle went on to its end: {names:?}"
    );
    // Segments already handed to the kernel when the refusal was read (its send
    // buffer autotunes to a few MiB) still arrive; the 63 left did not all follow.
    ensure!(
        refused.len() < 63,
        "{} segments after the refusal: {names:?}",
        refused.len()
    );
    let got: Vec<u8> = msgs
        .iter()
        .filter_map(|m| match m {
            Msg::Segment { tid, data, .. } if *tid == next_tid => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    ensure!(got == next, "the next bundle was damaged");
    wait_event(
        &events,
        T,
        |e| matches!(e, Event::TransferRefused { transfer_id, .. } if *transfer_id == tid),
    )?;
    session.wait_sent(T)?;
    Ok(())
}

/// RFC 9174 §6.1 MUST NOT: a session closed in the middle of a message sends no
/// SESS_TERM. `SessionHandle::close` while a segment is cut by the window: the raw
/// stream holds whole messages, then part of a segment, then the end; no SESS_TERM.
#[test]
fn a_close_in_the_middle_of_a_segment_sends_no_sess_term() -> Result<()> {
    const BIG: u64 = 8 << 20; // larger than any send buffer, so it cannot all be out
    let mut cfg = config("dtn://agent/");
    cfg.segment_size_tx_initial = BIG;
    cfg.segment_size_tx_max = BIG;
    let agent = Agent::new(cfg)?;
    let events = agent.events();
    let addr = agent.listen("127.0.0.1:0")?;
    let mut raw = RawPeer::connect(addr, Some(RCVBUF))?;
    raw.handshake(0, BIG, 1 << 30, NODE)?;
    let session = any_session(&agent)?;
    session.wait_established(T)?;
    let tid = session.send_bytes(pattern(2 * BIG as usize, 5))?;
    wait_event(
        &events,
        T,
        |e| matches!(e, Event::TransferStarted { transfer_id, .. } if *transfer_id == tid),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    session.close();
    let (msgs, cut) = raw.read_to_end(T)?;
    let names = summary(&msgs);
    ensure!(
        !msgs.iter().any(|m| matches!(m, Msg::SessTerm { .. })),
        "SESS_TERM after a mid-message close: {names:?}"
    );
    ensure!(
        !cut.is_empty() && cut[0] == 0x01,
        "the close was not mid-segment: {names:?}, {} bytes cut",
        cut.len()
    );
    ensure!(cut.len() < (BIG as usize) + 30, "more than one segment cut");
    let reason = session.wait_closed(T)?;
    ensure!(matches!(reason, CloseReason::LocalClose), "{reason}");
    Ok(())
}

/// RFC 9174 §6.1 SHOULD, over loopback: before an unclean close the segments received
/// are acknowledged. The peer sends the first two segments of a bundle (no END) and
/// the application closes the session: both XFER_ACKs are on the wire before the
/// close, and no SESS_TERM. (Which acks are still queued when the close comes is a
/// matter of timing here; the core test
/// `tcpcl::session::tests::termination::an_unclean_close_still_sends_the_acks_of_received_segments`
/// pins the case where they are.)
#[test]
fn an_unclean_close_acknowledges_the_segments_received() -> Result<()> {
    let (_agent, _events, mut raw, session) = setup(SEGMENT)?;
    let mut two = segment(START, 9, &pattern(3000, 6));
    two.extend(segment(0, 9, &pattern(5000, 7)));
    raw.send(&two)?;
    // Both segments reach the agent (loopback, no window in this direction).
    std::thread::sleep(Duration::from_millis(300));
    session.close();
    let (msgs, cut) = raw.read_to_end(T)?;
    ensure!(cut.is_empty(), "a message was cut");
    ensure!(
        msgs == [
            Msg::Ack {
                flags: START,
                tid: 9,
                len: 3000
            },
            Msg::Ack {
                flags: 0,
                tid: 9,
                len: 8000
            },
        ],
        "{:?}",
        summary(&msgs)
    );
    Ok(())
}
