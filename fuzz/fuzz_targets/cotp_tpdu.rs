//! Fuzzes the X.224 TPDU decoder: `Tpdu::decode` / `decode_with` in both formats on the
//! whole input, and `decode_frame` over the input as a stream of TPKT frames.
//!
//! Properties: nothing panics; `decode` is `decode_with(.., Format::Normal)`; every
//! TPDU that decodes re-encodes (bare and behind a TPKT header when it fits) and
//! decodes back to an equal value (checksum octets aside, which the encoder recomputes
//! and `Params` equality ignores); `decode_frame` never claims more than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::cotp::{decode_frame, Format, Tpdu};
use proto_core::tpkt::{Status, DEFAULT_MAX_FRAME_LEN};

/// Re-encodes `t` and checks it decodes (in `format`) to an equal TPDU.
fn round_trip(t: &Tpdu<'_>, format: Format) {
    let len = t.encoded_len();
    let mut out = vec![0u8; len + 4];
    let n = t
        .encode(&mut out[..len])
        .expect("a decoded TPDU re-encodes");
    assert_eq!(n, len, "encoded_len disagrees with encode");
    let again = Tpdu::decode_with(&out[..n], format).expect("a re-encoded TPDU decodes");
    assert_eq!(again, *t, "round trip changed the TPDU");
    assert_eq!(again.kind(), t.kind());

    // Behind a TPKT header too, when the frame length fits in 16 bits.
    match t.encode_frame(&mut out) {
        Ok(m) => {
            assert_eq!(m, len + 4);
            if format == Format::Normal {
                match decode_frame(&out[..m], DEFAULT_MAX_FRAME_LEN) {
                    Ok(Status::Complete((f, flen))) => {
                        assert_eq!(flen, m);
                        assert_eq!(f, *t);
                    }
                    other => panic!("re-encoded frame does not decode: {other:?}"),
                }
            }
        }
        Err(_) => assert!(
            len + 4 > usize::from(u16::MAX),
            "encode_frame failed on {len} bytes"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    for format in [Format::Normal, Format::Extended] {
        if let Ok(t) = Tpdu::decode_with(data, format) {
            let _ = t.params().iter().count();
            let _ = t.user_data();
            round_trip(&t, format);
        }
    }
    assert_eq!(Tpdu::decode(data), Tpdu::decode_with(data, Format::Normal));

    // The input as a stream of TPKT frames.
    let mut rest = data;
    loop {
        match decode_frame(rest, DEFAULT_MAX_FRAME_LEN) {
            Ok(Status::Complete((t, len))) => {
                assert!((7..=rest.len()).contains(&len), "frame length {len}");
                round_trip(&t, Format::Normal);
                rest = &rest[len..];
            }
            Ok(Status::Partial { needed }) => {
                assert!(needed > 0);
                break;
            }
            Err(_) => break,
        }
    }
});
