//! Cross-cutting codec tests: round trips at every split point, golden vectors from
//! real peers, error cases and property tests.

use super::*;
use crate::wire::EncodeError;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn encode(msg: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; msg.encoded_len()];
    assert_eq!(msg.encode(&mut out), Ok(out.len()), "{msg:?}");
    out
}

/// Encodes `msg`, decodes it back (whole, as a head, and at every split point) and
/// returns the bytes.
fn check_round_trip(msg: &Message<'_>) -> Vec<u8> {
    let bytes = encode(msg);
    let len = bytes.len();
    if len > 0 {
        assert_eq!(
            msg.encode(&mut vec![0u8; len - 1]),
            Err(EncodeError::BufferTooSmall { needed: len })
        );
    }
    assert_eq!(
        Message::decode(&bytes),
        Ok(Status::Complete((*msg, len))),
        "{bytes:02x?}"
    );
    // Bytes after the message are left alone.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0x04, 0xff]);
    assert_eq!(Message::decode(&longer), Ok(Status::Complete((*msg, len))));

    let head_len = match msg {
        Message::XferSegment(s) => s.head().encoded_len(),
        _ => len,
    };
    let limits = DecodeLimits::UNLIMITED;
    for cut in 0..=len {
        let prefix = &bytes[..cut];
        if cut < len {
            match Message::decode(prefix) {
                Ok(Status::Partial { needed }) => {
                    assert!(
                        (1..=len - cut).contains(&needed),
                        "cut {cut}: needed {needed}"
                    )
                }
                other => panic!("cut {cut} of {msg:?}: {other:?}"),
            }
        }
        let head = MessageHead::decode(prefix, &limits);
        if cut < head_len {
            match head {
                Ok(Status::Partial { needed }) => {
                    assert!((1..=head_len - cut).contains(&needed), "cut {cut}")
                }
                other => panic!("head cut {cut} of {msg:?}: {other:?}"),
            }
        } else {
            let want = match msg {
                Message::XferSegment(s) => MessageHead::Segment(s.head()),
                m => MessageHead::Message(*m),
            };
            assert_eq!(head, Ok(Status::Complete((want, head_len))), "cut {cut}");
        }
        if let Message::XferSegment(s) = msg {
            let h = XferSegmentHead::decode(prefix, &limits);
            if cut < head_len {
                assert!(matches!(h, Ok(Status::Partial { .. })), "cut {cut}: {h:?}");
            } else {
                assert_eq!(h, Ok(Status::Complete((s.head(), head_len))));
            }
        }
    }
    bytes
}

#[test]
fn tcpcl_round_trip_every_message_and_split() {
    let mut tl = [0u8; 8];
    let items = [
        TransferLength(123_456).item(false, &mut tl),
        ExtensionItem::new(true, 0x8000, b"\x01\x02\x03"),
        ExtensionItem {
            flags: ExtensionFlags(0xf0),
            item_type: 0xffff,
            value: b"",
        },
    ];
    let sess_items = [ExtensionItem::new(false, 0x0042, b"value")];
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let msgs: Vec<Message<'_>> = vec![
        Message::Keepalive,
        SessTerm {
            flags: SessTermFlags::EMPTY,
            reason: SessTermReason::IDLE_TIMEOUT,
        }
        .into(),
        SessTerm {
            flags: SessTermFlags::REPLY,
            reason: SessTermReason(0x99),
        }
        .into(),
        SessTerm {
            flags: SessTermFlags(0xff),
            reason: SessTermReason::RESOURCE_EXHAUSTION,
        }
        .into(),
        MsgReject {
            reason: MsgRejectReason::UNKNOWN_TYPE,
            rejected_header: 0x2a,
        }
        .into(),
        MsgReject {
            reason: MsgRejectReason(0),
            rejected_header: 0x07,
        }
        .into(),
        XferRefuse {
            reason: XferRefuseReason::SESSION_TERMINATING,
            transfer_id: u64::MAX,
        }
        .into(),
        XferRefuse {
            reason: XferRefuseReason(0xfe),
            transfer_id: 0,
        }
        .into(),
        XferAck {
            flags: SegmentFlags::START | SegmentFlags::END,
            transfer_id: 1,
            acked_len: u64::MAX,
        }
        .into(),
        XferAck {
            flags: SegmentFlags(0x80),
            transfer_id: 0,
            acked_len: 0,
        }
        .into(),
        SessInit {
            keepalive: 0,
            segment_mru: 0,
            transfer_mru: 0,
            node_id: "",
            extensions: ExtensionItems::EMPTY,
        }
        .into(),
        SessInit {
            keepalive: 60,
            segment_mru: 1 << 20,
            transfer_mru: u64::MAX,
            node_id: "dtn://node-ü/",
            extensions: ExtensionItems::from_slice(&sess_items),
        }
        .into(),
        XferSegment {
            flags: SegmentFlags::START,
            transfer_id: 5,
            extensions: ExtensionItems::from_slice(&items),
            data: &data,
        }
        .into(),
        XferSegment {
            flags: SegmentFlags::START | SegmentFlags::END,
            transfer_id: 0,
            extensions: ExtensionItems::EMPTY,
            data: b"",
        }
        .into(),
        XferSegment {
            flags: SegmentFlags::EMPTY,
            transfer_id: u64::MAX,
            extensions: ExtensionItems::EMPTY,
            data: b"middle",
        }
        .into(),
        XferSegment {
            flags: SegmentFlags::END | SegmentFlags(0x40),
            transfer_id: 3,
            extensions: ExtensionItems::EMPTY,
            data: &data[..17],
        }
        .into(),
    ];
    for msg in &msgs {
        let bytes = check_round_trip(msg);
        // Decoded messages re-encode to the same bytes.
        let Ok(Status::Complete((decoded, _))) = Message::decode(&bytes) else {
            panic!("decode {msg:?}")
        };
        assert_eq!(encode(&decoded), bytes);
        assert!(!decoded.to_string().is_empty());
    }
    let types: std::collections::BTreeSet<u8> =
        msgs.iter().map(|m| m.message_type().code()).collect();
    assert_eq!(types.len(), 7, "every message type is covered");
}

#[test]
fn tcpcl_golden_vectors_from_real_peers() {
    let contact = hex("64746e210400");
    assert_eq!(
        Contact::decode(&contact),
        Ok(Status::Complete((
            Contact::V4(ContactHeader::new(ContactFlags(0))),
            6
        )))
    );
    let mut out = [0u8; 6];
    assert_eq!(ContactHeader::default().encode(&mut out), Ok(6));
    assert_eq!(out.to_vec(), contact);

    let cases: Vec<(&str, Message<'_>, &str)> = vec![
        (
            "07000a0000000000a00000ffffffffffffffff000d64746e3a2f2f636c69656e742f00000000",
            SessInit {
                keepalive: 10,
                segment_mru: 10_485_760,
                transfer_mru: u64::MAX,
                node_id: "dtn://client/",
                extensions: ExtensionItems::EMPTY,
            }
            .into(),
            "SESS_INIT keepalive=10 segment_mru=10485760 transfer_mru=18446744073709551615 node_id=\"dtn://client/\"",
        ),
        (
            "020200000000000000070000000000020000",
            XferAck {
                flags: SegmentFlags::START,
                transfer_id: 7,
                acked_len: 131_072,
            }
            .into(),
            "XFER_ACK flags=START transfer_id=7 acked_len=131072",
        ),
        (
            "050000",
            SessTerm {
                flags: SessTermFlags(0),
                reason: SessTermReason::UNKNOWN,
            }
            .into(),
            "SESS_TERM flags=0 reason=unknown",
        ),
        (
            "050100",
            SessTerm {
                flags: SessTermFlags::REPLY,
                reason: SessTermReason::UNKNOWN,
            }
            .into(),
            "SESS_TERM flags=REPLY reason=unknown",
        ),
        ("04", Message::Keepalive, "KEEPALIVE"),
    ];
    for (text, want, display) in &cases {
        let bytes = hex(text);
        assert_eq!(
            Message::decode(&bytes),
            Ok(Status::Complete((*want, bytes.len()))),
            "{text}"
        );
        assert_eq!(encode(want), bytes, "{text}");
        assert_eq!(want.to_string(), *display);
        check_round_trip(want);
    }
    // The SESS_INIT's fields through the public accessors, as a session reads them.
    let bytes = hex(cases[0].0);
    let Ok(Status::Complete((Message::SessInit(init), 38))) = Message::decode(&bytes) else {
        panic!("SESS_INIT")
    };
    assert_eq!(init.node_id, "dtn://client/");
    assert!(init.extensions.is_empty());
    assert_eq!(init.extensions.iter().count(), 0);
}

#[test]
fn tcpcl_message_errors() {
    let mut bad_utf8 = hex("07000a0000000000a00000ffffffffffffffff0003");
    bad_utf8.extend_from_slice(&[b'a', 0xff, b'b', 0, 0, 0, 0]);
    let mut ext_overrun = hex("07000a0000000000a00000ffffffffffffffff0001");
    ext_overrun.extend_from_slice(b"x");
    // Block of 6 bytes holding an item that claims 2 value bytes but has 1.
    ext_overrun.extend_from_slice(&[0, 0, 0, 6, 0x00, 0x00, 0x01, 0x00, 0x02, 0xaa]);
    let mut seg_overrun = hex("0102000000000000000100000004");
    seg_overrun.extend_from_slice(&[0x01, 0x00, 0x01, 0x00]);
    seg_overrun.extend_from_slice(&[0; 8]);
    let cases: Vec<(Vec<u8>, DecodeError, &str)> = vec![
        (
            vec![0x00],
            DecodeError::UnknownMessageType {
                offset: 0,
                message_type: 0,
            },
            "unknown message type 0x00 at offset 0",
        ),
        (
            vec![0x08, 1, 2, 3],
            DecodeError::UnknownMessageType {
                offset: 0,
                message_type: 8,
            },
            "unknown message type 0x08 at offset 0",
        ),
        (
            bad_utf8,
            DecodeError::InvalidUtf8 {
                field: "node ID",
                offset: 22,
            },
            "node ID is not valid UTF-8 (first bad byte at offset 22)",
        ),
        (
            ext_overrun,
            DecodeError::Overrun {
                field: "extension item length",
                offset: 29,
                len: 2,
                available: 1,
            },
            "extension item length at offset 29 declares 2 bytes but only 1 remain in the block",
        ),
        (
            seg_overrun,
            DecodeError::Overrun {
                field: "extension item header",
                offset: 14,
                len: 5,
                available: 4,
            },
            "extension item header at offset 14 declares 5 bytes but only 4 remain in the block",
        ),
    ];
    for (bytes, err, text) in &cases {
        assert_eq!(Message::decode(bytes), Err(*err), "{bytes:02x?}");
        assert_eq!(
            MessageHead::decode(bytes, &DecodeLimits::UNLIMITED),
            Err(*err)
        );
        assert_eq!(err.to_string(), *text);
    }
    // The head decoder refuses a message of another type.
    assert_eq!(
        XferSegmentHead::decode(&[0x04], &DecodeLimits::UNLIMITED),
        Err(DecodeError::UnknownMessageType {
            offset: 0,
            message_type: 4
        })
    );
}

#[test]
fn tcpcl_huge_lengths_never_allocate_or_panic() {
    let unlimited = DecodeLimits::UNLIMITED;
    let small = DecodeLimits::new(4096);
    // XFER_SEGMENT with data length 2^64-1: the head decodes, the whole message waits.
    let seg = hex("0101000000000000002affffffffffffffff");
    let head = XferSegmentHead::new(SegmentFlags::END, 42, ExtensionItems::EMPTY, u64::MAX);
    assert_eq!(
        XferSegmentHead::decode(&seg, &unlimited),
        Ok(Status::Complete((head, 18)))
    );
    assert_eq!(
        MessageHead::decode(&seg, &small),
        Ok(Status::Complete((MessageHead::Segment(head), 18)))
    );
    assert!(matches!(
        Message::decode(&seg),
        Ok(Status::Partial { needed }) if needed >= usize::MAX / 2
    ));
    assert_eq!(
        Message::decode_with(&seg, &small),
        Err(DecodeError::TooLarge {
            field: "segment data",
            offset: 10,
            len: u64::MAX,
            max: 4096
        })
    );
    let mut hdr = [0u8; 18];
    assert_eq!(head.encode(&mut hdr), Ok(18));
    assert_eq!(hdr.to_vec(), seg);

    // START segment with 2^32-1 bytes of transfer extension items.
    let seg_ext = hex("01020000000000000001ffffffff");
    assert!(matches!(
        MessageHead::decode(&seg_ext, &unlimited),
        Ok(Status::Partial { .. })
    ));
    assert_eq!(
        MessageHead::decode(&seg_ext, &small),
        Err(DecodeError::TooLarge {
            field: "transfer extension items",
            offset: 10,
            len: u64::from(u32::MAX),
            max: 4096
        })
    );

    // SESS_INIT with a 65535-byte node ID, and with 2^32-1 bytes of extensions.
    let init_id = hex("07000a0000000000a00000ffffffffffffffffffff");
    assert!(matches!(
        Message::decode(&init_id),
        Ok(Status::Partial { needed: 65_535 })
    ));
    assert_eq!(
        Message::decode_with(&init_id, &small),
        Err(DecodeError::TooLarge {
            field: "node ID",
            offset: 19,
            len: 65_535,
            max: 4096
        })
    );
    let init_ext = hex("07000a0000000000a00000ffffffffffffffff0000ffffffff");
    assert!(matches!(
        Message::decode(&init_ext),
        Ok(Status::Partial { .. })
    ));
    assert_eq!(
        Message::decode_with(&init_ext, &small),
        Err(DecodeError::TooLarge {
            field: "session extension items",
            offset: 21,
            len: u64::from(u32::MAX),
            max: 4096
        })
    );
    assert_eq!(
        DecodeError::TooLarge {
            field: "node ID",
            offset: 19,
            len: 65_535,
            max: 4096
        }
        .to_string(),
        "node ID length 65535 at offset 19 exceeds the 4096-byte decode limit"
    );
}

#[test]
fn tcpcl_encode_misuse() {
    let long_id = "x".repeat(65_536);
    let init = SessInit {
        keepalive: 0,
        segment_mru: 0,
        transfer_mru: 0,
        node_id: &long_id,
        extensions: ExtensionItems::EMPTY,
    };
    let mut out = vec![0u8; init.encoded_len()];
    assert_eq!(
        init.encode(&mut out),
        Err(EncodeError::ValueTooLarge { field: "node ID" })
    );
    let items = [ExtensionItem::new(false, 1, b"x")];
    let seg = XferSegment {
        flags: SegmentFlags::END,
        transfer_id: 1,
        extensions: ExtensionItems::from_slice(&items),
        data: b"abc",
    };
    let mut out = vec![0u8; 64];
    assert_eq!(
        seg.encode(&mut out),
        Err(EncodeError::ValueTooLarge {
            field: "transfer extension items without the START flag"
        })
    );
    // Header-only encoding for a payload the caller sends itself.
    let head = XferSegmentHead::new(
        SegmentFlags::START,
        9,
        ExtensionItems::from_slice(&items),
        1 << 30,
    );
    let n = head.encode(&mut out).unwrap();
    assert_eq!(n, head.encoded_len());
    assert_eq!(n, 18 + 4 + 6);
    assert_eq!(
        MessageHead::decode(&out[..n], &DecodeLimits::new(64)),
        Ok(Status::Complete((MessageHead::Segment(head), n)))
    );
}

#[derive(Debug, Clone)]
enum Owned {
    Keepalive,
    SessTerm(u8, u8),
    MsgReject(u8, u8),
    XferRefuse(u8, u64),
    XferAck(u8, u64, u64),
    SessInit(u16, u64, u64, String, Vec<(u8, u16, Vec<u8>)>),
    XferSegment(u8, u64, Vec<(u8, u16, Vec<u8>)>, Vec<u8>),
}

fn items_strategy() -> impl Strategy<Value = Vec<(u8, u16, Vec<u8>)>> {
    proptest::collection::vec(
        (
            any::<u8>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..20),
        ),
        0..4,
    )
}

fn owned_strategy() -> impl Strategy<Value = Owned> {
    prop_oneof![
        Just(Owned::Keepalive),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Owned::SessTerm(a, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Owned::MsgReject(a, b)),
        (any::<u8>(), any::<u64>()).prop_map(|(a, b)| Owned::XferRefuse(a, b)),
        (any::<u8>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c)| Owned::XferAck(a, b, c)),
        (
            any::<u16>(),
            any::<u64>(),
            any::<u64>(),
            ".{0,30}",
            items_strategy()
        )
            .prop_map(|(a, b, c, d, e)| Owned::SessInit(a, b, c, d, e)),
        (
            any::<u8>(),
            any::<u64>(),
            items_strategy(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(f, id, items, data)| {
                // Extension items only travel on START segments.
                let items = if f & 0x02 != 0 { items } else { vec![] };
                Owned::XferSegment(f, id, items, data)
            }),
    ]
}

fn to_items(items: &[(u8, u16, Vec<u8>)]) -> Vec<ExtensionItem<'_>> {
    items
        .iter()
        .map(|(f, t, v)| ExtensionItem {
            flags: ExtensionFlags(*f),
            item_type: *t,
            value: v,
        })
        .collect()
}

proptest! {
    #[test]
    fn tcpcl_arbitrary_messages_round_trip(owned in owned_strategy()) {
        let items;
        let msg: Message<'_> = match &owned {
            Owned::Keepalive => Message::Keepalive,
            Owned::SessTerm(f, r) => SessTerm { flags: SessTermFlags(*f), reason: SessTermReason(*r) }.into(),
            Owned::MsgReject(r, h) => MsgReject { reason: MsgRejectReason(*r), rejected_header: *h }.into(),
            Owned::XferRefuse(r, id) => XferRefuse { reason: XferRefuseReason(*r), transfer_id: *id }.into(),
            Owned::XferAck(f, id, n) => XferAck { flags: SegmentFlags(*f), transfer_id: *id, acked_len: *n }.into(),
            Owned::SessInit(k, s, t, id, ext) => {
                items = to_items(ext);
                SessInit { keepalive: *k, segment_mru: *s, transfer_mru: *t, node_id: id, extensions: ExtensionItems::from_slice(&items) }.into()
            }
            Owned::XferSegment(f, id, ext, data) => {
                items = to_items(ext);
                XferSegment { flags: SegmentFlags(*f), transfer_id: *id, extensions: ExtensionItems::from_slice(&items), data }.into()
            }
        };
        check_round_trip(&msg);
    }

    #[test]
    fn tcpcl_arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        max in 0usize..300,
    ) {
        let limits = DecodeLimits::new(max);
        for l in [DecodeLimits::UNLIMITED, limits] {
            if let Ok(Status::Complete((m, n))) = Message::decode_with(&bytes, &l) {
                // Every decoded message re-encodes to exactly the bytes it came from.
                prop_assert!(n <= bytes.len());
                prop_assert_eq!(encode(&m), bytes[..n].to_vec());
                let _ = m.to_string();
            }
            if let Ok(Status::Complete((h, n))) = MessageHead::decode(&bytes, &l) {
                prop_assert!(n <= bytes.len());
                let _ = h.message_type();
            }
            let _ = XferSegmentHead::decode(&bytes, &l);
            if let Ok(Status::Complete((c, n))) = Contact::decode_with(&bytes, &l) {
                prop_assert!(n <= bytes.len());
                let _ = c.to_string();
            }
        }
        if let Ok(items) = ExtensionItems::parse(&bytes, 0) {
            let total: usize = items.iter().map(|i| i.encoded_len()).sum();
            prop_assert_eq!(total, bytes.len());
            let _ = items.transfer_length();
        }
        let _ = sdnv::decode(&bytes);
        // The same bytes behind a valid prefix exercise the deeper decoders.
        let mut contact = b"dtn!\x03".to_vec();
        contact.extend_from_slice(&bytes);
        let _ = Contact::decode_with(&contact, &limits);
        for t in 1..=7u8 {
            let mut msg = vec![t];
            msg.extend_from_slice(&bytes);
            let _ = Message::decode_with(&msg, &limits);
            let _ = MessageHead::decode(&msg, &DecodeLimits::UNLIMITED);
        }
    }

    #[test]
    fn tcpcl_sdnv_round_trip(v in any::<u64>()) {
        let mut out = [0u8; sdnv::MAX_LEN];
        let n = sdnv::encode(v, &mut out).unwrap();
        prop_assert_eq!(sdnv::decode(&out[..n]), Ok(Status::Complete((v, n))));
    }

    #[test]
    fn tcpcl_v3_contact_round_trip(flags in any::<u8>(), keepalive in any::<u16>(), eid in proptest::collection::vec(any::<u8>(), 0..300)) {
        let h = ContactHeaderV3 { flags: V3ContactFlags(flags), keepalive, eid: &eid };
        let mut out = vec![0u8; h.encoded_len()];
        prop_assert_eq!(h.encode(&mut out), Ok(out.len()));
        prop_assert_eq!(Contact::decode(&out), Ok(Status::Complete((Contact::V3(h), out.len()))));
        for cut in 0..out.len() {
            let partial = matches!(Contact::decode(&out[..cut]), Ok(Status::Partial { .. }));
            prop_assert!(partial, "cut {}", cut);
        }
    }
}
