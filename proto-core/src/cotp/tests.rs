//! Table-driven codec tests: round trips of every TPDU type at every split point,
//! golden vectors captured from real peers, and malformed input.

use super::codes::{class, options};
use super::*;
use crate::tpkt::Status;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const TSAP_A: &[u8] = &[0x01, 0x00];
const TSAP_B: &[u8] = &[0x01, 0x02];

fn samples() -> Vec<Tpdu<'static>> {
    static CR_PARAMS: [Param<'static>; 5] = [
        Param::TpduSize(TpduSize::S1024),
        Param::CallingTsap(TSAP_A),
        Param::CalledTsap(TSAP_B),
        Param::PreferredMaxTpduSize(64),
        Param::Unknown {
            code: 0x42,
            value: &[1, 2, 3],
        },
    ];
    static CK: [Param<'static>; 1] = [Param::Checksum([0, 0])];
    static CK_SEQ: [Param<'static>; 2] = [Param::Checksum([0, 0]), Param::SubsequenceNumber(9)];
    static DR_PARAMS: [Param<'static>; 1] = [Param::AdditionalInfo(b"gone")];
    static ER_PARAMS: [Param<'static>; 1] = [Param::InvalidTpdu(&[0x02, 0xf1, 0x80])];
    static C4: [Param<'static>; 6] = [
        Param::Version(1),
        Param::AdditionalOptions(1),
        Param::AlternativeClasses(&[0x20, 0x00]),
        Param::InactivityTimer(30_000),
        Param::AckTime(100),
        Param::Checksum([0, 0]),
    ];
    let mut v = vec![
        Tpdu::ConnectionRequest(Connect {
            src_ref: 1,
            params: Params::list(&CR_PARAMS),
            ..Connect::default()
        }),
        Tpdu::ConnectionRequest(Connect {
            credit: 3,
            src_ref: 0x1234,
            class: class::CLASS4,
            options: options::EXTENDED_FORMATS,
            params: Params::list(&C4),
            user_data: b"cr-data",
            ..Connect::default()
        }),
        Tpdu::ConnectionConfirm(Connect {
            dst_ref: 1,
            src_ref: 2,
            params: Params::list(&CR_PARAMS[..3]),
            ..Connect::default()
        }),
        Tpdu::DisconnectRequest(DisconnectRequest {
            dst_ref: 1,
            src_ref: 2,
            reason: DisconnectReason::NORMAL,
            params: Params::EMPTY,
            user_data: &[],
        }),
        Tpdu::DisconnectRequest(DisconnectRequest {
            dst_ref: 7,
            src_ref: 8,
            reason: DisconnectReason(0x55),
            params: Params::list(&DR_PARAMS),
            user_data: b"why",
        }),
        Tpdu::DisconnectConfirm(DisconnectConfirm {
            dst_ref: 2,
            src_ref: 1,
            params: Params::EMPTY,
        }),
        Tpdu::Data(Data::class0(true, b"hello")),
        Tpdu::Data(Data::class0(false, b"x")),
        Tpdu::Data(Data {
            format: Format::Normal,
            dst_ref: Some(9),
            eot: true,
            nr: 0x55,
            params: Params::list(&CK),
            data: b"checked",
        }),
        Tpdu::Error(ErrorTpdu {
            dst_ref: 3,
            cause: RejectCause::INVALID_TPDU_TYPE,
            params: Params::list(&ER_PARAMS),
        }),
    ];
    for format in [Format::Normal, Format::Extended] {
        let nr = if format == Format::Normal {
            0x7f
        } else {
            0x7fff_fff0
        };
        let credit = if format == Format::Normal { 15 } else { 0x1234 };
        v.extend([
            Tpdu::ExpeditedData(ExpeditedData {
                format,
                dst_ref: Some(5),
                eot: true,
                nr,
                params: Params::EMPTY,
                data: b"urgent",
            }),
            Tpdu::DataAck(DataAck {
                format,
                credit,
                dst_ref: 5,
                nr,
                params: Params::list(&CK_SEQ),
            }),
            Tpdu::ExpeditedAck(ExpeditedAck {
                format,
                dst_ref: 5,
                nr,
                params: Params::EMPTY,
            }),
            Tpdu::Reject(Reject {
                format,
                credit,
                dst_ref: 5,
                nr: 1,
                params: Params::EMPTY,
            }),
        ]);
    }
    v.push(Tpdu::Data(Data {
        format: Format::Extended,
        dst_ref: Some(1),
        eot: false,
        nr: 0x1234_5678,
        params: Params::EMPTY,
        data: &[0; 40],
    }));
    v
}

fn format_of(t: &Tpdu<'_>) -> Format {
    match t {
        Tpdu::Data(d) => d.format,
        Tpdu::ExpeditedData(d) => d.format,
        Tpdu::DataAck(d) => d.format,
        Tpdu::ExpeditedAck(d) => d.format,
        Tpdu::Reject(d) => d.format,
        _ => Format::Normal,
    }
}

#[test]
fn every_tpdu_round_trips_at_every_split_point() {
    for tpdu in samples() {
        let mut buf = [0u8; 512];
        let n = tpdu.encode_frame(&mut buf).unwrap();
        assert_eq!(n, tpdu.encoded_len() + 4);
        let frame = &buf[..n];
        let format = format_of(&tpdu);
        let decoded = Tpdu::decode_with(&frame[4..], format).unwrap();
        assert_eq!(decoded, tpdu, "{frame:02x?}");
        // Re-encoding the decoded form gives identical bytes (checksums included).
        let mut again = [0u8; 512];
        let m = decoded.encode(&mut again).unwrap();
        assert_eq!(&again[..m], &frame[4..]);
        // Every prefix of the frame is incomplete, never an error.
        if format == Format::Normal {
            for cut in 0..n {
                match decode_frame(&frame[..cut], 65535) {
                    Ok(Status::Partial { needed }) => assert!(needed > 0),
                    other => panic!("prefix {cut} of {frame:02x?}: {other:?}"),
                }
            }
            let Status::Complete((t, len)) = decode_frame(frame, 65535).unwrap() else {
                panic!("whole frame incomplete")
            };
            assert_eq!((t, len), (tpdu, n));
        }
        // A too-small output buffer reports the size needed.
        assert_eq!(
            tpdu.encode(&mut buf[..tpdu.encoded_len() - 1]),
            Err(EncodeError::BufferTooSmall {
                needed: tpdu.encoded_len()
            })
        );
    }
}

use crate::EncodeError;

#[test]
fn icspacket_cr_golden_vector() {
    let frame = hex("0300001611e00000000100c0010ac1020000c2020001");
    let Status::Complete((Tpdu::ConnectionRequest(cr), 22)) = decode_frame(&frame, 65535).unwrap()
    else {
        panic!("not a CR")
    };
    assert_eq!(
        (cr.dst_ref, cr.src_ref, cr.class, cr.options, cr.credit),
        (0, 1, 0, 0, 0)
    );
    assert_eq!(cr.params.tpdu_size(), Some(TpduSize::S1024));
    assert_eq!(cr.params.calling_tsap(), Some(&[0u8, 0][..]));
    assert_eq!(cr.params.called_tsap(), Some(&[0u8, 1][..]));
    assert!(cr.user_data.is_empty());
}

#[test]
fn snap7_cr_cc_golden_vectors() {
    let cr = hex("0300001611e00000000100c1020100c2020101c0010a");
    let Status::Complete((Tpdu::ConnectionRequest(c), _)) = decode_frame(&cr, 65535).unwrap()
    else {
        panic!("not a CR")
    };
    assert_eq!((c.src_ref, c.class), (1, 0));
    assert_eq!(c.params.calling_tsap(), Some(TSAP_A));
    assert_eq!(c.params.called_tsap(), Some(&[0x01u8, 0x01][..]));
    assert_eq!(c.params.tpdu_size(), Some(TpduSize::S1024));

    let cc = hex("0300001611d00001000100c0010ac1020100c2020101");
    let Status::Complete((Tpdu::ConnectionConfirm(c), _)) = decode_frame(&cc, 65535).unwrap()
    else {
        panic!("not a CC")
    };
    assert_eq!((c.dst_ref, c.src_ref, c.class), (1, 1, 0));
    assert_eq!(c.params.tpdu_size(), Some(TpduSize::S1024));
    assert_eq!(c.params.calling_tsap(), Some(TSAP_A));
    assert_eq!(c.params.called_tsap(), Some(&[0x01u8, 0x01][..]));
    // Re-encoding keeps the peer's parameter order byte for byte.
    let mut out = [0u8; 64];
    let n = Tpdu::ConnectionConfirm(c).encode_frame(&mut out).unwrap();
    assert_eq!(&out[..n], &cc[..]);
}

#[test]
fn snap7_dr_with_stray_byte_and_dc() {
    let dr = hex("0300000c0680000100010000");
    let Status::Complete((Tpdu::DisconnectRequest(d), 12)) = decode_frame(&dr, 65535).unwrap()
    else {
        panic!("not a DR")
    };
    assert_eq!((d.dst_ref, d.src_ref), (1, 1));
    assert_eq!(d.reason, DisconnectReason::NOT_SPECIFIED);
    assert_eq!(d.user_data, &[0u8]);

    let dc = hex("0300000a05c000010001");
    let Status::Complete((Tpdu::DisconnectConfirm(d), 10)) = decode_frame(&dc, 65535).unwrap()
    else {
        panic!("not a DC")
    };
    assert_eq!((d.dst_ref, d.src_ref), (1, 1));
}

#[test]
fn class0_dt_header_matches_the_encoder() {
    let payload = b"abc";
    let h = class0_dt_frame_header(payload.len(), true).unwrap();
    let mut buf = [0u8; 16];
    let n = Tpdu::Data(Data::class0(true, payload))
        .encode_frame(&mut buf)
        .unwrap();
    assert_eq!(&buf[..7], &h);
    assert_eq!(&buf[7..n], payload);
    assert!(class0_dt_frame_header(65_528, false).is_ok());
    assert!(class0_dt_frame_header(65_529, false).is_err());
}

#[test]
fn malformed_tpdus_are_typed_errors() {
    let cases: Vec<(&str, TpduError)> = vec![
        (
            "",
            TpduError::Truncated {
                field: "length indicator",
                offset: 0,
                needed: 1,
            },
        ),
        (
            "ff",
            TpduError::LengthIndicator {
                offset: 0,
                li: 255,
                problem: "255 is reserved",
            },
        ),
        (
            "00",
            TpduError::LengthIndicator {
                offset: 0,
                li: 0,
                problem: "a header has at least a code octet",
            },
        ),
        (
            "06e000",
            TpduError::LengthIndicator {
                offset: 0,
                li: 6,
                problem: "runs past the end of the TPDU (TPKT length too small)",
            },
        ),
        ("020000", TpduError::UnknownType { offset: 1, code: 0 }),
        (
            "02f180",
            TpduError::UnknownType {
                offset: 1,
                code: 0xf1,
            },
        ),
        (
            "03e00000",
            TpduError::LengthIndicator {
                offset: 0,
                li: 3,
                problem: "too small for the fixed part of the header",
            },
        ),
        (
            "08e000000001000c0c",
            TpduError::ParameterLength {
                offset: 7,
                code: 0x0c,
                len: 0x0c,
                problem: "runs past the end of the header",
            },
        ),
        // A DC whose LI covers a parameter code but not its length octet.
        (
            "06c00001000100",
            TpduError::Truncated {
                field: "parameter length",
                offset: 7,
                needed: 1,
            },
        ),
        (
            "05c0000100017a",
            TpduError::LengthIndicator {
                offset: 0,
                li: 5,
                problem: "shorter than the TPDU, but this TPDU type carries no data",
            },
        ),
        (
            "0460000181",
            TpduError::InvalidValue {
                field: "YR-TU-NR (bit 8 must be zero)",
                offset: 4,
                value: 0x81,
            },
        ),
        ("08f0000980c302000055", TpduError::Checksum { offset: 5 }),
    ];
    for (input, err) in cases {
        let bytes = hex(input);
        assert_eq!(Tpdu::decode(&bytes), Err(err), "{input}");
    }
}

#[test]
fn non_minimal_parameter_encodings_survive_re_encoding() {
    // Found by the cotp_tpdu fuzz target: F0 sent in two octets (value 44).
    let cr = hex("0ae00000000100f002002c");
    let t = Tpdu::decode(&cr).unwrap();
    assert_eq!(t.params().preferred_max_tpdu_size(), Some(44 * 128));
    let mut out = [0u8; 32];
    let n = t.encode(&mut out).unwrap();
    assert_eq!(n, t.encoded_len());
    assert_eq!(&out[..n], &cr[..]);
    let n = t.encode_frame(&mut out).unwrap();
    assert!(matches!(decode_frame(&out[..n], 65535), Ok(Status::Complete((_, len))) if len == n));
}

#[test]
fn frame_errors_count_offsets_from_the_tpkt_header() {
    let bytes = hex("0300000702f180");
    assert_eq!(
        decode_frame(&bytes, 65535),
        Err(FrameError::Tpdu(TpduError::UnknownType {
            offset: 5,
            code: 0xf1
        }))
    );
    assert_eq!(
        decode_frame(&hex("0400000702f080"), 65535),
        Err(FrameError::Tpkt(crate::tpkt::TpktError::BadVersion {
            offset: 0,
            version: 4
        }))
    );
}

#[test]
fn oversized_header_is_refused_by_the_encoder() {
    static BIG: [u8; 250] = [0; 250];
    static P: [Param<'static>; 1] = [Param::Unknown {
        code: 0x99,
        value: &BIG,
    }];
    let cr = Tpdu::ConnectionRequest(Connect {
        params: Params::list(&P),
        ..Connect::default()
    });
    let mut buf = [0u8; 600];
    assert_eq!(
        cr.encode(&mut buf),
        Err(EncodeError::ValueTooLarge {
            field: "length indicator"
        })
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Tpdu::decode(&bytes);
            let _ = Tpdu::decode_with(&bytes, Format::Extended);
            let _ = decode_frame(&bytes, 65535);
            if let Ok(t) = Tpdu::decode(&bytes) {
                // Whatever decodes re-encodes to a TPDU that decodes to the same value.
                let mut out = vec![0u8; t.encoded_len()];
                let n = t.encode(&mut out).unwrap();
                prop_assert_eq!(Tpdu::decode(&out[..n]).unwrap(), t);
            }
        }

        #[test]
        fn arbitrary_connect_round_trips(
            credit in 0u8..16, dst in any::<u16>(), src in any::<u16>(), cls in 0u8..5, opts in 0u8..16,
            size in 7u8..=13, calling in proptest::collection::vec(any::<u8>(), 0..32),
            called in proptest::collection::vec(any::<u8>(), 0..32),
            user in proptest::collection::vec(any::<u8>(), 0..64), confirm in any::<bool>(),
        ) {
            let params = [
                Param::TpduSize(TpduSize::from_code(size).unwrap()),
                Param::CallingTsap(&calling),
                Param::CalledTsap(&called),
            ];
            let c = Connect { credit, dst_ref: dst, src_ref: src, class: cls, options: opts,
                params: Params::list(&params), user_data: &user };
            let t = if confirm { Tpdu::ConnectionConfirm(c) } else { Tpdu::ConnectionRequest(c) };
            let mut out = vec![0u8; t.encoded_len()];
            let n = t.encode(&mut out).unwrap();
            prop_assert_eq!(Tpdu::decode(&out[..n]).unwrap(), t);
        }

        #[test]
        fn arbitrary_data_round_trips(eot in any::<bool>(), nr in any::<u32>(), ext in any::<bool>(),
            data in proptest::collection::vec(any::<u8>(), 0..200), dst in any::<u16>()) {
            let format = if ext { Format::Extended } else { Format::Normal };
            let nr = if ext { nr & 0x7fff_ffff } else { nr & 0x7f };
            let t = Tpdu::Data(Data { format, dst_ref: Some(dst), eot, nr, params: Params::EMPTY, data: &data });
            let mut out = vec![0u8; t.encoded_len()];
            let n = t.encode(&mut out).unwrap();
            prop_assert_eq!(Tpdu::decode_with(&out[..n], format).unwrap(), t);
        }
    }
}
