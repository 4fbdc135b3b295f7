//! The last XFER_ACK of a bundle and the application's event channel (found by the
//! soak, `tests/soak_tcpcl.rs`): while the channel is full, a completed bundle's
//! BundleReceived waits in its session's backlog, and a session that ends then keeps
//! its last events only a bounded time. So the END segment is acknowledged only once
//! the event is on the channel: a peer never holds an acknowledgement for a bundle the
//! application did not get.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use proto_net::tcpcl::{Agent, Event, ReceivedBundle};
use proto_tests::tcpcl::{config, drain, wait_event, T};
use proto_tests::tcpcl_wire::{segment, Msg, RawPeer, END, START};

const CAPACITY: usize = 8;

/// Waits up to `within` for the XFER_ACK of `tid`'s END segment (other messages are
/// skipped); whether it came.
fn final_ack(raw: &mut RawPeer, tid: u64, within: Duration) -> Result<bool> {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Some(Msg::Ack { tid: t, flags, .. }) = raw.poll(left)? {
            if t == tid && flags & END != 0 {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A listener whose application has its channel full (other connections' events) and
/// does not read, and a raw peer with an established session on it.
fn stalled_listener() -> Result<(
    Agent,
    crossbeam_channel::Receiver<Event>,
    RawPeer,
    Vec<TcpStream>,
)> {
    let mut cfg = config("dtn://rx/");
    cfg.event_capacity = CAPACITY;
    cfg.keepalive_time = 1;
    let rx = Agent::new(cfg)?;
    let events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let mut raw = RawPeer::connect(addr, None)?;
    raw.handshake(1, 1 << 20, 1 << 30, "dtn://raw/")?;
    wait_event(&events, T, |e| {
        matches!(e, Event::SessionEstablished { .. })
    })?;
    drain(&events);
    // Each connection reports SessionOpened: the channel fills up.
    let fillers: Vec<TcpStream> = (0..CAPACITY + 2)
        .map(|_| TcpStream::connect(addr))
        .collect::<std::io::Result<_>>()?;
    let deadline = Instant::now() + T;
    while events.len() < CAPACITY {
        ensure!(Instant::now() < deadline, "the channel did not fill");
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((rx, events, raw, fillers))
}

fn got_bundle(events: &[Event], data: &[u8]) -> bool {
    events.iter().any(
        |e| matches!(e, Event::BundleReceived { bundle: ReceivedBundle::Bytes(b), .. } if b == data),
    )
}

/// The peer resets the connection while the application is stalled for longer than a
/// closing session keeps its events: if the peer saw the bundle acknowledged, the
/// application must get it. (Before the fix the XFER_ACK went out at once and the
/// BundleReceived was dropped 1 s after the session ended.)
#[test]
fn an_acknowledged_bundle_reaches_a_stalled_application_even_if_the_session_dies() -> Result<()> {
    let (_rx, events, mut raw, _fillers) = stalled_listener()?;
    let data = b"acknowledged means delivered";
    raw.send(&segment(START | END, 0, data))?;
    let acked = final_ack(&mut raw, 0, Duration::from_millis(1500))?;
    // A reset: the listener's next keepalive fails and its session ends.
    let w = raw.writer();
    socket2::SockRef::from(&*w.lock().unwrap_or_else(|p| p.into_inner()))
        .set_linger(Some(Duration::ZERO))?;
    drop(w);
    drop(raw);
    // The application stays stalled past the closing session's bounded wait.
    std::thread::sleep(Duration::from_millis(3500));
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Ok(e) = events.recv_deadline(deadline) {
        seen.push(e);
    }
    ensure!(
        !acked || got_bundle(&seen, data),
        "the peer got the bundle acknowledged, the application never got it"
    );
    Ok(())
}

/// Once the stalled application reads, the acknowledgement follows promptly.
#[test]
fn the_last_ack_follows_once_the_application_reads() -> Result<()> {
    let (_rx, events, mut raw, _fillers) = stalled_listener()?;
    let data = b"wait for the application";
    raw.send(&segment(START | END, 0, data))?;
    ensure!(
        !final_ack(&mut raw, 0, Duration::from_millis(500))?,
        "acknowledged while the application's channel was full"
    );
    let mut seen = drain(&events);
    let t = Instant::now();
    let acked = final_ack(&mut raw, 0, Duration::from_secs(5))?;
    seen.extend(drain(&events));
    ensure!(acked, "no acknowledgement after the application read");
    ensure!(
        t.elapsed() < Duration::from_secs(1),
        "acknowledged only after {:?}",
        t.elapsed()
    );
    let deadline = Instant::now() + T;
    while !got_bundle(&seen, data) && Instant::now() < deadline {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(50)) {
            seen.push(e);
        }
    }
    ensure!(
        got_bundle(&seen, data),
        "the bundle never reached the application"
    );
    Ok(())
}
