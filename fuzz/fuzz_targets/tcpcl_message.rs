//! Fuzzes the TCPCL decoders: `Contact::decode` / `decode_with`, `Message::decode` /
//! `decode_with`, `MessageHead::decode` and `XferSegmentHead::decode`, each unbounded
//! and with a small `DecodeLimits` taken from the first input byte.
//!
//! Properties: nothing panics; a `Complete` result never claims more bytes than given;
//! a decoded message re-encodes to exactly the bytes it was decoded from (the codec
//! keeps reserved flag bits and extension items as received); a decode that completes
//! under a limit completes identically without one; a control message found by
//! `MessageHead::decode` is the one `Message::decode_with` finds, and a segment head
//! re-encodes to its bytes; a contact header re-encodes and decodes to an equal value
//! (the v3 EID length is an SDNV, which may arrive non-minimally encoded, so bytes can
//! differ there).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::tcpcl::{Contact, DecodeLimits, Message, MessageHead, Status, XferSegmentHead};

fn encode_message(m: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut out).expect("a decoded message re-encodes");
    assert_eq!(n, out.len(), "encoded_len disagrees with encode");
    out
}

fn check_message(data: &[u8], limits: &DecodeLimits) {
    let Ok(Status::Complete((m, n))) = Message::decode_with(data, limits) else {
        return;
    };
    assert!(n <= data.len() && n <= limits.max_len.max(25), "used {n}");
    assert_eq!(
        encode_message(&m),
        &data[..n],
        "{m:?} re-encodes differently"
    );
    assert_eq!(Message::decode(data), Ok(Status::Complete((m, n))));
    let _ = m.to_string();
}

fn check_head(data: &[u8], limits: &DecodeLimits) {
    let Ok(Status::Complete((head, n))) = MessageHead::decode(data, limits) else {
        return;
    };
    assert!(n <= data.len(), "used {n}");
    match head {
        MessageHead::Message(m) => {
            assert!(!matches!(m, Message::XferSegment(_)));
            assert_eq!(
                Message::decode_with(data, limits),
                Ok(Status::Complete((m, n)))
            );
        }
        MessageHead::Segment(h) => {
            assert_eq!(h.encoded_len(), n);
            let mut out = vec![0u8; n];
            assert_eq!(h.encode(&mut out), Ok(n));
            assert_eq!(out, &data[..n], "{h:?} re-encodes differently");
            assert_eq!(
                XferSegmentHead::decode(data, limits),
                Ok(Status::Complete((h, n)))
            );
            // The whole message completes once the data is there.
            let whole = usize::try_from(h.data_len)
                .ok()
                .and_then(|d| d.checked_add(n));
            if whole.is_some_and(|w| w <= data.len()) {
                check_message(data, &DecodeLimits::UNLIMITED);
                assert!(matches!(
                    Message::decode(data),
                    Ok(Status::Complete((Message::XferSegment(_), _)))
                ));
            }
        }
    }
    let _ = head.message_type();
}

fn check_contact(data: &[u8], limits: &DecodeLimits) {
    let Ok(Status::Complete((c, n))) = Contact::decode_with(data, limits) else {
        return;
    };
    assert!(n <= data.len(), "used {n}");
    assert_eq!(Contact::decode(data), Ok(Status::Complete((c, n))));
    let _ = c.to_string();
    let mut out = vec![0u8; n.max(6) + 16];
    let m = match c {
        Contact::V4(h) => {
            let m = h.encode(&mut out).expect("v4 contact re-encodes");
            assert_eq!(&out[..m], &data[..n]);
            m
        }
        Contact::V3(h) => h.encode(&mut out).expect("v3 contact re-encodes"),
        Contact::Other { version } => {
            assert_eq!(n, 5);
            assert_eq!(data[4], version);
            return;
        }
    };
    assert_eq!(Contact::decode(&out[..m]), Ok(Status::Complete((c, m))));
}

fuzz_target!(|data: &[u8]| {
    let (limit, data) = match data {
        [l, rest @ ..] => (DecodeLimits::new(usize::from(*l) * 2), rest),
        [] => (DecodeLimits::new(0), data),
    };
    for limits in [DecodeLimits::UNLIMITED, limit] {
        check_message(data, &limits);
        check_head(data, &limits);
        check_contact(data, &limits);
        let _ = XferSegmentHead::decode(data, &limits);
    }
});
