//! Fuzzes `proto_core::bpv7::parse` (hardy-bpv7 underneath), the parser `proto tcpcl
//! listen --bundles` and `proto decode bpv7` run on bytes from the network.
//!
//! Properties: nothing panics; every range in a parsed view lies inside the input;
//! the payload and file-name accessors never fail on the input they came from
//! (except a file name that is not UTF-8); a bundle rebuilt from a parsed view's
//! fields, payload and file name parses back to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::bpv7::{encode, parse, Outgoing};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = parse(data) else {
        return;
    };
    assert!(v.payload.end <= data.len());
    for b in &v.blocks {
        assert!(b.extent.end <= data.len() && b.data.end <= data.len());
        let _ = b.type_name();
    }
    let payload = v.payload(data);
    let name = v.file_name(data).ok().flatten();
    // Only what encode accepts: a file name of 1..=4096 bytes.
    let name = name.filter(|n| !n.is_empty() && n.len() <= proto_core::bpv7::MAX_FILE_NAME);
    let Ok(again) = encode(&Outgoing {
        source: &v.source,
        destination: &v.destination,
        created_ms: v.created_ms,
        sequence: v.sequence,
        lifetime_ms: v.lifetime_ms,
        file_name: name,
        payload,
    }) else {
        return;
    };
    let w = parse(&again).expect("a rebuilt bundle parses");
    assert_eq!(
        (
            &w.source,
            &w.destination,
            w.created_ms,
            w.sequence,
            w.lifetime_ms
        ),
        (
            &v.source,
            &v.destination,
            v.created_ms,
            v.sequence,
            v.lifetime_ms
        )
    );
    assert_eq!(w.payload(&again), payload);
    assert_eq!(w.file_name(&again).ok().flatten(), name);
});
