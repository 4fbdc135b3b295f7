//! 1,200 concurrent TCPCL sessions between two agents in this process: one thread per
//! session per side, and none left after the shutdown. Alone in its test binary so the
//! process's thread count measures only this test.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use crossbeam_channel::Receiver;
use proto_net::tcpcl::{Agent, Event, ReceivedBundle, SessionHandle, SessionId};
use proto_tests::procfs::{fd_limit, proc_status, threads_settle_to};
use proto_tests::tcpcl::{bundles, config, drain, T};

/// 1,200 sessions between two agents in this process, all established at once, each
/// carrying one bundle: one thread per session per side plus a few, and after the
/// shutdown the threads are gone.
#[test]
fn twelve_hundred_concurrent_sessions_take_one_thread_each() -> Result<()> {
    const N: usize = 1200;
    let limit = fd_limit()?;
    ensure!(
        limit >= 2 * N as u64 + 256,
        "the fd limit {limit} is too low for {N} sessions (2 descriptors each)"
    );
    let start = Instant::now();
    // libtest's main thread and this one.
    let baseline = proc_status("Threads")?;
    let mut lcfg = config("dtn://listener/");
    lcfg.max_sessions = N + 10;
    lcfg.event_capacity = 1 << 15;
    let listener = Agent::new(lcfg)?;
    let l_events = listener.events();
    let addr = listener.listen("127.0.0.1:0")?;
    let mut ccfg = config("dtn://client/");
    ccfg.max_sessions = N + 10;
    ccfg.event_capacity = 1 << 15;
    let client = Agent::new(ccfg)?;
    let c_events = client.events();
    let handles: Vec<SessionHandle> = (0..N)
        .map(|_| client.connect(addr))
        .collect::<Result<_, _>>()?;
    for h in &handles {
        h.wait_established(T)?;
    }
    let connected = start.elapsed();
    for (i, h) in handles.iter().enumerate() {
        h.send_bytes(format!("bundle {i}").into_bytes())?;
    }
    for h in &handles {
        h.wait_sent(T)?;
    }
    let got = bundles(&l_events, N, T)?;
    let mut per_session: BTreeMap<SessionId, usize> = BTreeMap::new();
    for (s, tid, b) in &got {
        assert_eq!(*tid, 0);
        let ReceivedBundle::Bytes(b) = b else {
            bail!("expected bytes")
        };
        ensure!(b.starts_with(b"bundle "), "{b:?}");
        *per_session.entry(*s).or_default() += 1;
    }
    assert_eq!(per_session.len(), N, "one bundle on every session");
    assert_eq!(listener.sessions().len(), N);
    assert_eq!(client.sessions().len(), N);
    let peak = proc_status("Threads")?;
    eprintln!(
        "{N} sessions established in {connected:?}, bundles acknowledged at {:?}; threads: \
         {baseline} before, {peak} with all sessions up",
        start.elapsed()
    );
    ensure!(
        peak >= baseline + 2 * N as u64,
        "{peak} threads for {N} sessions per side: sessions were not all alive at once?"
    );
    ensure!(
        peak <= 2 * N as u64 + 64 && peak <= baseline + 2 * N as u64 + 16,
        "{peak} threads for {N} sessions per side (baseline {baseline})"
    );

    assert!(!client.shutdown(), "sessions are open");
    ensure!(client.wait_stopped(T), "client shutdown");
    ensure!(listener.wait_sessions_closed(T), "listener sessions");
    listener.stop();
    drop(handles);
    let after = threads_settle_to(baseline, Duration::from_secs(10))?;
    eprintln!(
        "threads after shutdown: {after}; total {:?}",
        start.elapsed()
    );
    ensure!(
        after <= baseline,
        "{after} threads left after shutdown (baseline {baseline})"
    );
    // Every session closed gracefully on both sides.
    let closed = |events: &Receiver<Event>| {
        drain(events)
            .iter()
            .filter(|e| matches!(e, Event::SessionClosed { reason, .. } if reason.is_graceful()))
            .count()
    };
    assert_eq!(closed(&c_events), N);
    assert_eq!(closed(&l_events), N);
    ensure!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    Ok(())
}
