//! Fuzzes RFC 1006 framing: `parse_frame` over the whole input, and the streaming
//! `Deframer` over the same bytes delivered in several chunkings, which must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::tpkt::{parse_frame, Deframer, Status, DEFAULT_MAX_FRAME_LEN};

/// Frames found by repeated `parse_frame`, and whether it stopped on an error.
fn parse_all(mut buf: &[u8], max: usize) -> (Vec<Vec<u8>>, bool) {
    let mut frames = Vec::new();
    loop {
        match parse_frame(buf, max) {
            Ok(Status::Complete(frame)) => {
                assert!(frame.len >= 7 && frame.len <= buf.len() && frame.len <= max);
                assert_eq!(frame.payload.len(), frame.len - 4);
                frames.push(frame.payload.to_vec());
                buf = &buf[frame.len..];
            }
            Ok(Status::Partial { needed }) => {
                assert!(needed > 0);
                return (frames, false);
            }
            Err(_) => return (frames, true),
        }
    }
}

/// Complete frames reassembled by the `Deframer` from reads of `step` bytes.
fn deframe_all(data: &[u8], max: usize, step: usize) -> (Vec<Vec<u8>>, bool) {
    let mut d = Deframer::new(max);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for read in data.chunks(step) {
        let mut input = read;
        while !input.is_empty() {
            match d.next_chunk(input) {
                Ok((used, chunk)) => {
                    assert!(used > 0 && used <= input.len(), "no progress");
                    input = &input[used..];
                    if let Some(c) = chunk {
                        assert_eq!(c.offset_in_frame, current.len());
                        current.extend_from_slice(c.data);
                        if c.is_last() {
                            assert_eq!(current.len(), c.frame_payload_len);
                            frames.push(std::mem::take(&mut current));
                        }
                    }
                }
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    // First two bytes choose the maximum frame length, the rest is the stream.
    let (max, stream) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => (DEFAULT_MAX_FRAME_LEN, data),
    };
    let (expected, parse_err) = parse_all(stream, max);
    let steps = [1, 2, 3, 4, 7, 64, stream.len().max(1)];
    for step in steps {
        let (frames, deframe_err) = deframe_all(stream, max, step);
        assert_eq!(frames, expected, "step {step}");
        assert_eq!(deframe_err, parse_err, "step {step}");
    }
});
