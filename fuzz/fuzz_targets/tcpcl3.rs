//! Fuzzes TCPCLv3 (RFC 7242): the v3 message decoder and a v3 session fed arbitrary
//! input after a valid contact header — the twins of `tcpcl_message` for v3.
//!
//! Properties: nothing panics; a `Complete` decode never claims more bytes than given
//! and its message re-encodes to something that decodes to the same message (SDNVs may
//! arrive non-minimally encoded and unused nibbles may be set, so bytes can differ); a
//! session never consumes more than it was given, always makes progress or says why
//! not (a segment awaiting confirmation, full queues, closed), and its outputs drain.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::tcpcl::v3::{Message, Session, SessionConfig};
use proto_core::tcpcl::{Ready, Side, Status};
use std::time::{Duration, Instant};

fn check_message(data: &[u8]) {
    let Ok(Status::Complete((m, n))) = Message::decode(data) else {
        return;
    };
    assert!(n <= data.len() && n <= Message::MAX_LEN, "used {n}");
    let mut out = [0u8; Message::MAX_LEN];
    let k = m.encode(&mut out).expect("a decoded message re-encodes");
    assert_eq!(k, m.encoded_len());
    assert_eq!(Message::decode(&out[..k]), Ok(Status::Complete((m, k))));
    let _ = m.to_string();
}

fn drain(s: &mut Session, now: Instant, buf: &mut [u8]) {
    let none = |_| Ready {
        available: 0,
        complete: false,
    };
    for _ in 0..10_000 {
        match s.poll_transmit(now, buf, none) {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    while s.poll_event().is_some() {}
}

fn drive(data: &[u8]) {
    let now = Instant::now();
    let cfg = SessionConfig {
        local_eid: "dtn://fuzz/".into(),
        keepalive_interval: 5,
        transfer_mru: 4096,
        max_eid_len: 64,
        ..SessionConfig::default()
    };
    let mut s = Session::new(cfg, Side::Passive, now).expect("valid configuration");
    let mut buf = vec![0u8; 1024];
    // A valid header (acks, refusal, LENGTH), then the fuzzer's bytes.
    let mut input = b"dtn!\x03\x0d\x00\x05\x05dtn:x".to_vec();
    input.extend_from_slice(data);
    let mut pos = 0;
    let mut stalled = 0;
    for _ in 0..100_000 {
        drain(&mut s, now, &mut buf);
        if pos >= input.len() || s.is_closed() {
            break;
        }
        let r = s.handle_input(now, &input[pos..]);
        assert!(r.consumed <= input.len() - pos);
        pos += r.consumed;
        let progress = r.consumed > 0 || r.data.is_some();
        if let Some(d) = r.data {
            if d.end_of_segment {
                // Refuse every third bundle, confirm the rest.
                if d.transfer_id % 3 == 2 {
                    let reason = proto_core::tcpcl::XferRefuseReason::NO_RESOURCES;
                    let _ = s.refuse_transfer(d.transfer_id, reason);
                } else {
                    let _ = s.confirm_segment(d.transfer_id);
                }
            }
        }
        // Draining the queues is the only other thing that lets input go on.
        stalled = if progress { 0 } else { stalled + 1 };
        if stalled > 2 {
            break;
        }
    }
    s.handle_timeout(now + Duration::from_secs(3600));
    s.handle_eof(now + Duration::from_secs(3600));
    drain(&mut s, now, &mut buf);
}

fuzz_target!(|data: &[u8]| {
    check_message(data);
    drive(data);
});
