//! Table tests of the v3 message codec: every message encoded and decoded against
//! octets written out by hand from RFC 7242 §5–§6, every truncation `Partial`, and
//! the malformed cases (unknown types, overlong SDNVs).

use super::*;
use crate::tcpcl::{DecodeError, Status};
use crate::EncodeError;

fn sd(reason: Option<u8>, delay: Option<u64>) -> Message {
    Message::Shutdown(Shutdown {
        reason: reason.map(ShutdownReason),
        delay,
    })
}

#[test]
fn tcpcl3_message_vectors() {
    let cases: &[(Message, &[u8])] = &[
        // DATA_SEGMENT: type 1 in the high nibble, S=0x2 E=0x1 in the low one.
        (
            Message::DataSegment {
                flags: DataFlags(3),
                len: 0,
            },
            &[0x13, 0x00],
        ),
        (
            Message::DataSegment {
                flags: DataFlags::START,
                len: 127,
            },
            &[0x12, 0x7f],
        ),
        (
            Message::DataSegment {
                flags: DataFlags::END,
                len: 128,
            },
            &[0x11, 0x81, 0x00],
        ),
        (
            Message::DataSegment {
                flags: DataFlags(0),
                len: u64::MAX,
            },
            &[
                0x10, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ),
        (
            Message::AckSegment { len: 0x4234 },
            &[0x20, 0x81, 0x84, 0x34],
        ),
        (
            Message::RefuseBundle {
                reason: RefuseReason::NO_RESOURCES,
            },
            &[0x32],
        ),
        (
            Message::RefuseBundle {
                reason: RefuseReason(0xf),
            },
            &[0x3f],
        ),
        (Message::Keepalive, &[0x40]),
        (sd(None, None), &[0x50]),
        (sd(Some(0x02), None), &[0x52, 0x02]),
        (sd(None, Some(300)), &[0x51, 0x82, 0x2c]),
        (sd(Some(0x00), Some(0)), &[0x53, 0x00, 0x00]),
        (
            sd(Some(0xff), Some(u64::MAX)),
            &[
                0x53, 0xff, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ),
        (
            Message::Length { len: 4_000_000 },
            &[0x60, 0x81, 0xf4, 0x92, 0x00],
        ),
    ];
    for &(m, bytes) in cases {
        assert_eq!(m.encoded_len(), bytes.len(), "{m}");
        assert!(bytes.len() <= Message::MAX_LEN);
        let mut out = [0u8; Message::MAX_LEN];
        assert_eq!(m.encode(&mut out), Ok(bytes.len()), "{m}");
        assert_eq!(&out[..bytes.len()], bytes, "{m}");
        assert_eq!(
            Message::decode(bytes),
            Ok(Status::Complete((m, bytes.len())))
        );
        for cut in 0..bytes.len() {
            assert!(
                matches!(Message::decode(&bytes[..cut]), Ok(Status::Partial { .. })),
                "{m} cut at {cut}"
            );
        }
        // Trailing bytes belong to the next message (or a DATA_SEGMENT's data).
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[0xaa, 0xbb]);
        assert_eq!(
            Message::decode(&longer),
            Ok(Status::Complete((m, bytes.len())))
        );
        let mut small = [0u8; 1];
        if bytes.len() > 1 {
            assert_eq!(
                m.encode(&mut small),
                Err(EncodeError::BufferTooSmall {
                    needed: bytes.len()
                })
            );
            assert_eq!(small, [0]);
        }
    }
}

#[test]
fn tcpcl3_unused_nibbles_are_ignored_and_reserved_flags_kept() {
    // The low nibble of ACK_SEGMENT, KEEPALIVE and LENGTH carries nothing.
    assert_eq!(
        Message::decode(&[0x2f, 0x05]),
        Ok(Status::Complete((Message::AckSegment { len: 5 }, 2)))
    );
    assert_eq!(
        Message::decode(&[0x4a]),
        Ok(Status::Complete((Message::Keepalive, 1)))
    );
    assert_eq!(
        Message::decode(&[0x61, 0x00]),
        Ok(Status::Complete((Message::Length { len: 0 }, 2)))
    );
    // Reserved DATA_SEGMENT and SHUTDOWN bits are kept / ignored respectively.
    assert_eq!(
        Message::decode(&[0x1f, 0x01]),
        Ok(Status::Complete((
            Message::DataSegment {
                flags: DataFlags(0xf),
                len: 1
            },
            2
        )))
    );
    assert_eq!(DataFlags(0xf).reserved_bits(), 0xc);
    assert_eq!(
        Message::decode(&[0x5c]),
        Ok(Status::Complete((sd(None, None), 1)))
    );
}

#[test]
fn tcpcl3_malformed_messages() {
    for code in [0x0u8, 0x7, 0x8, 0xe, 0xf] {
        assert_eq!(
            Message::decode(&[code << 4 | 0x3, 0, 0]),
            Err(DecodeError::UnknownMessageType {
                offset: 0,
                message_type: code
            })
        );
    }
    // An SDNV past 64 bits, or longer than ten octets, is an error, not a wait.
    let overflow = [
        0x10, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
    ];
    assert_eq!(
        Message::decode(&overflow),
        Err(DecodeError::SdnvOverflow {
            field: "segment length",
            offset: 1
        })
    );
    let mut padded = vec![0x20];
    padded.extend_from_slice(&[0x80; 11]);
    assert!(matches!(
        Message::decode(&padded),
        Err(DecodeError::SdnvOverflow {
            field: "acknowledged length",
            ..
        })
    ));
    let mut delay = vec![0x51];
    delay.extend_from_slice(&[0xff; 20]);
    assert!(matches!(
        Message::decode(&delay),
        Err(DecodeError::SdnvOverflow {
            field: "reconnection delay",
            offset: 1
        })
    ));
    let mut len = vec![0x60];
    len.extend_from_slice(&[0xff; 10]);
    assert!(matches!(
        Message::decode(&len),
        Err(DecodeError::SdnvOverflow {
            field: "bundle length",
            ..
        })
    ));
}

#[test]
fn tcpcl3_message_display() {
    let cases: &[(Message, &str)] = &[
        (
            Message::DataSegment {
                flags: DataFlags(3),
                len: 9,
            },
            "DATA_SEGMENT (flags S|E, 9 bytes)",
        ),
        (Message::AckSegment { len: 9 }, "ACK_SEGMENT (9 bytes)"),
        (
            Message::RefuseBundle {
                reason: RefuseReason(3),
            },
            "REFUSE_BUNDLE (reason retransmit (3))",
        ),
        (Message::Keepalive, "KEEPALIVE"),
        (sd(None, None), "SHUTDOWN"),
        (sd(Some(2), None), "SHUTDOWN (reason busy (2))"),
        (sd(None, Some(30)), "SHUTDOWN (reconnect after 30 s)"),
        (
            sd(Some(9), Some(1)),
            "SHUTDOWN (reason unassigned (9), reconnect after 1 s)",
        ),
        (Message::Length { len: 7 }, "LENGTH (7 bytes)"),
    ];
    for (m, text) in cases {
        assert_eq!(m.to_string(), *text);
    }
}

#[test]
fn tcpcl3_peek_version() {
    use crate::tcpcl::Contact;
    assert_eq!(
        Contact::peek_version(b""),
        Ok(Status::Partial { needed: 5 })
    );
    assert_eq!(
        Contact::peek_version(b"dtn!"),
        Ok(Status::Partial { needed: 1 })
    );
    for v in [3u8, 4, 0, 0xff] {
        let mut h = b"dtn!".to_vec();
        h.push(v);
        h.push(0x55);
        assert_eq!(Contact::peek_version(&h), Ok(Status::Complete(v)));
    }
    assert_eq!(
        Contact::peek_version(b"GET"),
        Err(DecodeError::BadMagic {
            offset: 0,
            found: b'G'
        })
    );
    assert_eq!(
        Contact::peek_version(b"dtx!\x03"),
        Err(DecodeError::BadMagic {
            offset: 2,
            found: b'x'
        })
    );
}
