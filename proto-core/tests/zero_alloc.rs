//! After construction and the handshake, moving data through the cores performs no
//! heap allocation. A counting global allocator observes this test thread only.

use proto_core::cotp::connection::{Config, Connection, Side};
use proto_core::tcpcl::session::{Ready, Session, SessionConfig, Side as TcpclSide, Transmit};
use proto_core::tcpcl::{v3, Event};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count_allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// Moves every control TPDU `from` wants to send into `to`.
fn pump(now: Instant, from: &mut Connection, to: &mut Connection, wire: &mut [u8]) {
    while let Ok(Some(n)) = from.poll_transmit(now, wire) {
        let mut input = &wire[..n];
        while !input.is_empty() {
            let r = to.handle_input(now, input);
            input = &input[r.consumed..];
        }
    }
    while from.poll_event().is_some() {}
    while to.poll_event().is_some() {}
}

#[test]
fn cotp_moves_1000_messages_each_way_without_allocating() {
    let now = Instant::now();
    let mut a = Connection::new(Config::default(), Side::Active, now).unwrap();
    let mut b = Connection::new(Config::default(), Side::Passive, now).unwrap();
    let mut wire = vec![0u8; 64 * 1024];
    pump(now, &mut a, &mut b, &mut wire);
    pump(now, &mut b, &mut a, &mut wire);
    assert!(a.is_open() && b.is_open());

    let message = vec![0xa5u8; 3000];
    let mut received = [0usize; 2];
    let mut messages = [0usize; 2];
    let allocations = count_allocations(|| {
        for _ in 0..1000 {
            for i in 0..2 {
                let (tx, rx) = if i == 0 {
                    (&mut a, &mut b)
                } else {
                    (&mut b, &mut a)
                };
                let mut data = &message[..];
                while !data.is_empty() {
                    let f = tx.frame_data(data, true, &mut wire).unwrap();
                    data = &data[f.consumed..];
                    let mut input = &wire[..f.written];
                    while !input.is_empty() {
                        let r = rx.handle_input(now, input);
                        input = &input[r.consumed..];
                        if let Some(d) = r.data {
                            received[i] += d.bytes.len();
                            messages[i] += usize::from(d.end_of_message);
                        }
                    }
                }
                while rx.poll_event().is_some() {}
            }
        }
    });
    assert_eq!(received, [3_000_000, 3_000_000]);
    assert_eq!(messages, [1000, 1000]);
    assert_eq!(allocations, 0, "the COTP core allocated on the data path");
}

/// Defines `$name`, which moves every control message `from` wants to send into `to`
/// and returns whether any moved: one body for the v4 and the v3 session, which share
/// the transmit/input/event calls but no trait outside the `testing` feature.
macro_rules! control_pump {
    ($name:ident, $session:ty, $stalled:literal) => {
        fn $name(now: Instant, from: &mut $session, to: &mut $session, wire: &mut [u8]) -> bool {
            let mut moved = false;
            let no_data = |_| Ready {
                available: 0,
                complete: false,
            };
            // With no data offered, only control messages come out.
            while let Ok(Some(Transmit::Control(n))) = from.poll_transmit(now, wire, no_data) {
                moved = true;
                let mut input = &wire[..n];
                while !input.is_empty() {
                    let r = to.handle_input(now, input);
                    assert!(r.consumed > 0, $stalled);
                    input = &input[r.consumed..];
                }
            }
            while from.poll_event().is_some() {}
            while to.poll_event().is_some() {}
            moved
        }
    };
}

control_pump!(pump_tcpcl, Session, "session stalled on control input");
control_pump!(
    pump_tcpcl3,
    v3::Session,
    "v3 session stalled on control input"
);

#[test]
fn tcpcl_moves_1000_segments_each_way_without_allocating() {
    let now = Instant::now();
    let cfg = |node: &str| SessionConfig {
        node_id: node.into(),
        keepalive_interval: 30,
        ..SessionConfig::default()
    };
    let mut a = Session::new(cfg("dtn://a/"), TcpclSide::Active, now).unwrap();
    let mut b = Session::new(cfg("dtn://b/"), TcpclSide::Passive, now).unwrap();
    let mut wire = vec![0u8; 64 * 1024];
    let mut wire2 = vec![0u8; 1024];
    while pump_tcpcl(now, &mut a, &mut b, &mut wire) | pump_tcpcl(now, &mut b, &mut a, &mut wire) {}
    assert!(a.is_established() && b.is_established());

    let bundle = vec![0x5au8; 3000];
    let mut received = [0u64; 2];
    let mut finished = [0usize; 2];
    let allocations = count_allocations(|| {
        for _ in 0..1000 {
            for i in 0..2 {
                let (tx, rx) = if i == 0 {
                    (&mut a, &mut b)
                } else {
                    (&mut b, &mut a)
                };
                let id = tx.start_transfer(Some(bundle.len() as u64)).unwrap();
                let ready = |_| Ready {
                    available: bundle.len() as u64,
                    complete: true,
                };
                let t = tx.poll_transmit(now, &mut wire, ready).unwrap();
                let Some(Transmit::Segment {
                    transfer_id,
                    offset: 0,
                    header_len,
                    data_len,
                    end: true,
                }) = t
                else {
                    panic!("one whole segment: {t:?}");
                };
                assert_eq!((transfer_id, data_len), (id, bundle.len()));
                // The payload goes straight from the bundle, as a vectored write
                // would send it: header first, then the caller's bytes.
                for part in [&wire[..header_len], &bundle[..]] {
                    let mut input = part;
                    while !input.is_empty() {
                        let r = rx.handle_input(now, input);
                        input = &input[r.consumed..];
                        if let Some(d) = r.data {
                            received[i] += d.bytes.len() as u64;
                            finished[i] += usize::from(d.end_of_transfer);
                            if d.end_of_segment {
                                rx.confirm_segment(d.transfer_id).unwrap();
                            }
                        }
                    }
                }
                // The receiver's XFER_ACK goes back to the sender.
                pump_tcpcl(now, rx, tx, &mut wire2);
                while tx.poll_event().is_some() {}
            }
        }
    });
    assert_eq!(received, [3_000_000, 3_000_000]);
    assert_eq!(finished, [1000, 1000]);
    assert_eq!(allocations, 0, "the TCPCL core allocated on the data path");
}

#[test]
fn tcpcl3_moves_1000_bundles_each_way_without_allocating() {
    let now = Instant::now();
    let cfg = |eid: &str| v3::SessionConfig {
        local_eid: eid.into(),
        keepalive_interval: 30,
        // Two segments per bundle, each acknowledged; LENGTH before each bundle.
        tx_segment_size: 2000,
        ..v3::SessionConfig::default()
    };
    let mut a = v3::Session::new(cfg("dtn://a/"), TcpclSide::Active, now).unwrap();
    let mut b = v3::Session::new(cfg("dtn://b/"), TcpclSide::Passive, now).unwrap();
    let mut wire = vec![0u8; 64 * 1024];
    let mut wire2 = vec![0u8; 1024];
    while pump_tcpcl3(now, &mut a, &mut b, &mut wire) | pump_tcpcl3(now, &mut b, &mut a, &mut wire)
    {
    }
    assert!(a.is_established() && b.is_established());
    assert!(a.negotiated().is_some_and(|n| n.acks && n.send_length));

    let bundle = vec![0xa5u8; 3000];
    let mut received = [0u64; 2];
    let mut finished = [0usize; 2];
    let mut acked = [0usize; 2];
    let allocations = count_allocations(|| {
        for _ in 0..1000 {
            for i in 0..2 {
                let (tx, rx) = if i == 0 {
                    (&mut a, &mut b)
                } else {
                    (&mut b, &mut a)
                };
                tx.start_transfer(Some(bundle.len() as u64)).unwrap();
                let mut framed = 0usize;
                while framed < bundle.len() {
                    let ready = |_| Ready {
                        available: (bundle.len() - framed) as u64,
                        complete: true,
                    };
                    let (head, payload) = match tx.poll_transmit(now, &mut wire, ready).unwrap() {
                        Some(Transmit::Control(n)) => (n, &bundle[..0]),
                        Some(Transmit::Segment {
                            header_len,
                            data_len,
                            offset,
                            ..
                        }) => {
                            framed += data_len;
                            let o = offset as usize;
                            (header_len, &bundle[o..o + data_len])
                        }
                        None => panic!("nothing to send"),
                    };
                    for part in [&wire[..head], payload] {
                        let mut input = part;
                        while !input.is_empty() {
                            let r = rx.handle_input(now, input);
                            input = &input[r.consumed..];
                            if let Some(d) = r.data {
                                received[i] += d.bytes.len() as u64;
                                finished[i] += usize::from(d.end_of_transfer);
                                if d.end_of_segment {
                                    rx.confirm_segment(d.transfer_id).unwrap();
                                }
                            }
                        }
                    }
                }
                // The ACK_SEGMENTs go back to the sender.
                let no_data = |_| Ready {
                    available: 0,
                    complete: false,
                };
                while let Ok(Some(Transmit::Control(n))) =
                    rx.poll_transmit(now, &mut wire2, no_data)
                {
                    let mut input = &wire2[..n];
                    while !input.is_empty() {
                        let r = tx.handle_input(now, input);
                        input = &input[r.consumed..];
                    }
                }
                while rx.poll_event().is_some() {}
                while let Some(e) = tx.poll_event() {
                    if matches!(e, Event::OutgoingAcked { finished: true, .. }) {
                        acked[i] += 1;
                    }
                }
            }
        }
    });
    assert_eq!(received, [3_000_000, 3_000_000]);
    assert_eq!(finished, [1000, 1000]);
    assert_eq!(acked, [1000, 1000]);
    assert_eq!(
        allocations, 0,
        "the TCPCLv3 core allocated on the data path"
    );
}
