//! Round trips, corruption and truncation of bundles built by [`super::encode`].

use super::*;

fn outgoing<'a>(payload: &'a [u8], name: Option<&'a str>) -> Outgoing<'a> {
    Outgoing {
        source: "dtn://tx/",
        destination: "dtn://node2/incoming",
        created_ms: Some(850_000_000_000),
        sequence: 7,
        lifetime_ms: 3_600_000,
        file_name: name,
        payload,
    }
}

#[test]
fn round_trip_keeps_every_field() {
    for payload in [&b""[..], b"x", &[0xA5; 70_000][..]] {
        let bytes = encode(&outgoing(payload, None)).unwrap();
        let v = parse(&bytes).unwrap();
        assert_eq!(v.source, "dtn://tx/");
        assert_eq!(v.destination, "dtn://node2/incoming");
        assert_eq!(v.report_to, "dtn://tx/");
        assert_eq!(v.created_ms, Some(850_000_000_000));
        assert_eq!(v.sequence, 7);
        assert_eq!(v.lifetime_ms, 3_600_000);
        assert_eq!(v.payload(&bytes), payload);
        assert_eq!(v.file_name(&bytes), Ok(None));
        let kinds: Vec<(u64, u64, Crc)> = v
            .blocks
            .iter()
            .map(|b| (b.number, b.block_type, b.crc))
            .collect();
        assert_eq!(kinds, [(0, 0, Crc::Crc32c), (1, 1, Crc::Crc32c)]);
        assert!(!v.non_canonical);
    }
}

#[test]
fn the_file_name_travels_in_its_own_block() {
    let bytes = encode(&outgoing(b"data", Some("sub dir/ä.txt"))).unwrap();
    let v = parse(&bytes).unwrap();
    assert_eq!(v.file_name(&bytes), Ok(Some("sub dir/ä.txt")));
    assert_eq!(v.payload(&bytes), b"data");
    let types: Vec<u64> = v.blocks.iter().map(|b| b.block_type).collect();
    assert_eq!(types, [0, FILE_NAME_BLOCK, 1]);
    assert_eq!(v.blocks[1].type_name(), "file name (proto)");
    assert_eq!(encode(&outgoing(b"", Some(""))), Err(Error::BadFileName(0)));
    let long = "n".repeat(MAX_FILE_NAME + 1);
    assert_eq!(
        encode(&outgoing(b"", Some(&long))),
        Err(Error::BadFileName(MAX_FILE_NAME + 1))
    );
}

#[test]
fn ipn_eids_and_no_clock() {
    let mut o = outgoing(b"p", None);
    o.source = "ipn:1.0";
    o.destination = "ipn:2.1";
    o.created_ms = None;
    let bytes = encode(&o).unwrap();
    let v = parse(&bytes).unwrap();
    assert_eq!(
        (v.source.as_str(), v.destination.as_str()),
        ("ipn:1.0", "ipn:2.1")
    );
    assert_eq!(v.created_ms, None);
}

#[test]
fn bad_eids_are_refused_by_role() {
    let mut o = outgoing(b"p", None);
    o.destination = "http://x";
    assert!(matches!(
        encode(&o),
        Err(Error::BadEid {
            role: "destination",
            ..
        })
    ));
    o.destination = "dtn://ok/";
    o.source = "";
    assert!(matches!(
        encode(&o),
        Err(Error::BadEid { role: "source", .. })
    ));
}

#[test]
fn any_flipped_byte_or_truncation_is_refused_or_harmless() {
    let bytes = encode(&outgoing(b"payload bytes", Some("a/b"))).unwrap();
    // Every truncation is an error, never a panic.
    for n in 0..bytes.len() {
        assert!(parse(&bytes[..n]).is_err(), "truncated to {n} parsed");
    }
    // Every single-bit flip either fails (CRC, structure) or parses; it never panics,
    // and a flip inside the CRC-protected payload data never goes unnoticed.
    let v = parse(&bytes).unwrap();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let r = parse(&b);
        if v.payload.contains(&i) {
            assert!(r.is_err(), "a flip in payload byte {i} went unnoticed");
        }
    }
}

#[test]
fn trailing_bytes_and_garbage_are_refused() {
    let mut bytes = encode(&outgoing(b"x", None)).unwrap();
    bytes.push(0);
    assert!(matches!(parse(&bytes), Err(Error::Invalid(_))));
    for junk in [&b""[..], b"\x00", b"\x9f\xff", b"\x80", &[0xff; 32][..]] {
        assert!(matches!(parse(junk), Err(Error::Invalid(_))), "{junk:?}");
    }
}

#[test]
fn block_type_names() {
    let table = [
        (0, 0, "primary"),
        (1, 1, "payload"),
        (2, 6, "previous node"),
        (3, 7, "bundle age"),
        (4, 10, "hop count"),
        (5, 11, "block integrity (BIB)"),
        (6, 12, "block confidentiality (BCB)"),
        (7, 192, "file name (proto)"),
        (8, 200, "private/experimental"),
        (9, 99, "unknown"),
    ];
    for (n, t, name) in table {
        assert_eq!(block_type_name(n, t), name);
    }
}
