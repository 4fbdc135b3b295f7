//! CLI tests for `proto decode`: run the real binary.

// Helpers outside `#[test]` functions fail the test the same way the tests do.
#![allow(clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const COTP_CR: &str = "0300001611e00000000100c0010ac1020000c2020001";
const COTP_CR_SNAP7: &str = "0300001611e00000000100c1020100c2020101c0010a";
const COTP_CC: &str = "0300001611d00001000100c0010ac1020100c2020101";
const COTP_DR: &str = "0300000c0680000100010000";
const COTP_DC: &str = "0300000a05c000010001";

const TCPCL_CONTACT: &str = "64746e210400";
const TCPCL_SESS_INIT: &str =
    "07000a0000000000a00000ffffffffffffffff000d64746e3a2f2f636c69656e742f00000000";
const TCPCL_XFER_ACK: &str = "020200000000000000070000000000020000";
const TCPCL_SESS_TERM: &str = "050000";
const TCPCL_SESS_TERM_REPLY: &str = "050100";
const TCPCL_KEEPALIVE: &str = "04";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn proto(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proto"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn proto");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(bytes).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for proto");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn decode(args: &[&str]) -> Run {
    let mut all = vec!["decode"];
    all.extend_from_slice(args);
    proto(&all, None)
}

/// The JSON lines of a `--json` run.
fn json_lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

#[test]
fn cotp_golden_vectors_json() {
    let run = decode(&[
        "cotp",
        "--json",
        COTP_CR,
        COTP_CR_SNAP7,
        COTP_CC,
        COTP_DR,
        COTP_DC,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    assert_eq!(v.len(), 5);

    let cr = &v[0];
    assert_eq!(cr["protocol"], "cotp");
    assert_eq!(
        (cr["index"].as_u64(), cr["offset"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(cr["length"], 22);
    assert_eq!(cr["tpkt"]["version"], 3);
    assert_eq!(cr["tpkt"]["length"], 22);
    assert_eq!(cr["cotp"]["type"], "CR");
    assert_eq!(cr["cotp"]["src_ref"], 1);
    assert_eq!(cr["cotp"]["dst_ref"], 0);
    assert_eq!(cr["cotp"]["class"], 0);
    let params = cr["cotp"]["params"].as_array().expect("params");
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {params:?}"))
            .clone()
    };
    assert_eq!(param("tpdu-size")["value"], 1024);
    assert_eq!(param("calling-tsap")["value"], "0000");
    assert_eq!(param("called-tsap")["value"], "0001");
    assert_eq!(param("tpdu-size")["offset"], 11);

    let snap7 = &v[1];
    assert_eq!(snap7["offset"], 22);
    assert_eq!(snap7["cotp"]["type"], "CR");
    let p = snap7["cotp"]["params"].as_array().expect("params");
    assert_eq!(p[0]["name"], "calling-tsap");
    assert_eq!(p[0]["value"], "0100");
    assert_eq!(p[1]["value"], "0101");
    assert_eq!(p[2]["value"], 1024);

    let cc = &v[2];
    assert_eq!(cc["offset"], 44);
    assert_eq!(cc["cotp"]["type"], "CC");
    assert_eq!(cc["cotp"]["dst_ref"], 1);
    assert_eq!(cc["cotp"]["src_ref"], 1);

    let dr = &v[3];
    assert_eq!(dr["offset"], 66);
    assert_eq!(dr["cotp"]["type"], "DR");
    assert_eq!(dr["cotp"]["reason"], 0);
    assert_eq!(dr["cotp"]["user_data"], "00");
    assert_eq!(dr["cotp"]["user_data_len"], 1);

    let dc = &v[4];
    assert_eq!(dc["offset"], 78);
    assert_eq!(dc["length"], 10);
    assert_eq!(dc["cotp"]["type"], "DC");
    assert_eq!(dc["cotp"]["dst_ref"], 1);
    assert_eq!(dc["cotp"]["src_ref"], 1);
}

#[test]
fn cotp_text_output_has_offsets() {
    let run = decode(&["cotp", COTP_CR, COTP_DC]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    assert!(out.contains("[    0] frame: TPKT, 22 bytes"), "{out}");
    assert!(out.contains("[   11] tpdu-size (0xc0): 1024"), "{out}");
    assert!(out.contains("[   22] frame: TPKT, 10 bytes"), "{out}");
    assert!(out.contains("type: DC"), "{out}");
}

#[test]
fn cotp_error_keeps_earlier_frames() {
    // A good CR, then a frame whose TPKT version is 4.
    let run = decode(&["cotp", COTP_CR, "0400000a05c000010001"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("[    0] frame: TPKT, 22 bytes"));
    assert!(run.stderr.contains("at offset 22"), "{}", run.stderr);
    assert!(run.stderr.contains("version"), "{}", run.stderr);

    let run = decode(&["cotp", "--json", COTP_CR, "0400000a05c000010001"]);
    assert_eq!(run.code, 1);
    let v = json_lines(&run);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["cotp"]["type"], "CR");
    assert_eq!(v[1]["offset"], 22);
    assert!(v[1]["error"].as_str().expect("error").contains("version"));
}

#[test]
fn cotp_truncated_frame() {
    let run = decode(&["cotp", COTP_DR, "0300000702f1"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("user_data: 00"));
    assert!(
        run.stderr
            .contains("at offset 12: TPKT frame truncated: 1 more bytes needed"),
        "{}",
        run.stderr
    );
}

#[test]
fn tcpcl_golden_vectors_json() {
    let run = decode(&[
        "tcpcl",
        "--json",
        TCPCL_CONTACT,
        TCPCL_SESS_INIT,
        TCPCL_XFER_ACK,
        TCPCL_SESS_TERM,
        TCPCL_SESS_TERM_REPLY,
        TCPCL_KEEPALIVE,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    assert_eq!(v.len(), 6);
    for (i, f) in v.iter().enumerate() {
        assert_eq!(f["protocol"], "tcpcl");
        assert_eq!(f["index"], i);
    }

    let contact = &v[0];
    assert_eq!(contact["kind"], "contact_header");
    assert_eq!(contact["offset"], 0);
    assert_eq!(contact["length"], 6);
    assert_eq!(contact["magic"], "dtn!");
    assert_eq!(contact["version"], 4);
    assert_eq!(contact["flags"]["value"], 0);
    assert_eq!(contact["can_tls"], false);

    let init = &v[1];
    assert_eq!(init["kind"], "message");
    assert_eq!(init["type"], "SESS_INIT");
    assert_eq!(init["type_code"], 7);
    assert_eq!(init["offset"], 6);
    assert_eq!(init["length"], 38);
    assert_eq!(init["keepalive"], 10);
    assert_eq!(init["segment_mru"], 10_485_760);
    assert_eq!(init["transfer_mru"].as_u64(), Some(u64::MAX));
    assert_eq!(init["node_id_length"], 13);
    assert_eq!(init["node_id"], "dtn://client/");
    assert_eq!(init["extensions_length"], 0);
    assert_eq!(init["extensions"], serde_json::json!([]));

    let ack = &v[2];
    assert_eq!(ack["type"], "XFER_ACK");
    assert_eq!(ack["offset"], 44);
    assert_eq!(ack["length"], 18);
    assert_eq!(ack["flags"]["value"], 2);
    assert_eq!(ack["flags"]["names"], serde_json::json!(["START"]));
    assert_eq!(ack["transfer_id"], 7);
    assert_eq!(ack["acked_length"], 131_072);

    let term = &v[3];
    assert_eq!(term["type"], "SESS_TERM");
    assert_eq!(term["offset"], 62);
    assert_eq!(term["reply"], false);
    assert_eq!(term["reason"]["code"], 0);
    assert_eq!(term["reason"]["name"], "unknown");
    assert_eq!(term["reason"]["known"], true);

    let reply = &v[4];
    assert_eq!(reply["type"], "SESS_TERM");
    assert_eq!(reply["offset"], 65);
    assert_eq!(reply["reply"], true);
    assert_eq!(reply["flags"]["names"], serde_json::json!(["REPLY"]));

    let keepalive = &v[5];
    assert_eq!(keepalive["type"], "KEEPALIVE");
    assert_eq!(keepalive["offset"], 68);
    assert_eq!(keepalive["length"], 1);
}

#[test]
fn tcpcl_stream_without_contact_header() {
    let run = decode(&["tcpcl", "--json", TCPCL_SESS_TERM]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["type"], "SESS_TERM");
    assert_eq!(v[0]["offset"], 0);
}

#[test]
fn tcpcl_text_output() {
    let run = decode(&[
        "tcpcl",
        "64746e210401",
        TCPCL_SESS_INIT,
        TCPCL_XFER_ACK,
        "05012a",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    for want in [
        "[    0] frame: contact header, TCPCLv4, 6 bytes",
        "[    5] flags: CAN_TLS (0x01)",
        "[    6] frame: SESS_INIT, 38 bytes",
        "[   27] node_id: \"dtn://client/\"",
        "[   17] transfer_mru: 18446744073709551615",
        "[   45] flags: START (0x02)",
        "[   54] acked_length: 131072",
        "[   63] flags: REPLY (0x01)",
        "[   64] reason: unknown(0x2a) (0x2a)",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

/// Flags print in the order of the RFC's flag tables, as docs/cli.md shows them
/// (`START|END`), reserved bits last; text and JSON agree.
#[test]
fn tcpcl_flags_print_in_documented_order() {
    // Contact header with CAN_TLS and a reserved bit; a one-segment transfer (START|END,
    // 2 data bytes); its XFER_ACK with a reserved bit reflected; a SESS_TERM reply with
    // a reserved bit.
    let run = decode(&[
        "tcpcl",
        "64746e210481",
        "0103 0000000000000009 00000000 0000000000000002 6869",
        "0283 0000000000000009 0000000000000002",
        "054100",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for want in [
        "flags: CAN_TLS|0x80 (0x81)",
        "flags: START|END (0x03)",
        "flags: START|END|0x80 (0x83)",
        "flags: REPLY|0x40 (0x41)",
    ] {
        assert!(
            run.stdout.contains(want),
            "missing {want:?} in\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("END|START"), "{}", run.stdout);

    let run = decode(&[
        "tcpcl",
        "--json",
        "0103 0000000000000009 00000000 0000000000000002 6869",
        "0283 0000000000000009 0000000000000002",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    assert_eq!(v[0]["flags"]["names"], serde_json::json!(["START", "END"]));
    assert_eq!(v[1]["flags"]["names"], serde_json::json!(["START", "END"]));
    assert_eq!(v[1]["flags"]["reserved"], 0x80);
}

#[test]
fn tcpcl_segment_with_extensions() {
    // START segment, transfer 7, a critical Transfer Length of 131072 and an unknown
    // item, then 3 data bytes; then an END segment with 40 data bytes.
    let start = "0102 0000000000000007 00000015 0100010008 0000000000020000 \
                 0000ff0003 616263 0000000000000003 616263";
    let data: String = (1..=40).map(|b| format!("{b:02x}")).collect();
    let end = format!("0101 0000000000000007 0000000000000028 {data}");
    let run = decode(&["tcpcl", "--json", start, &end]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    assert_eq!(v.len(), 2);
    let seg = &v[0];
    assert_eq!(seg["type"], "XFER_SEGMENT");
    assert_eq!(seg["flags"]["names"], serde_json::json!(["START"]));
    assert_eq!(seg["extensions_length"], 21);
    let items = seg["extensions"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["offset"], 14);
    assert_eq!(items[0]["critical"], true);
    assert_eq!(items[0]["type"], 1);
    assert_eq!(items[0]["name"], "Transfer Length");
    assert_eq!(items[0]["length"], 8);
    assert_eq!(items[0]["transfer_length"], 131_072);
    assert_eq!(items[1]["offset"], 27);
    assert_eq!(items[1]["critical"], false);
    assert_eq!(items[1]["type"], 255);
    assert_eq!(items[1]["value"], "616263");
    assert_eq!(seg["data_length"], 3);
    assert_eq!(seg["data"], "616263");
    assert_eq!(v[1]["offset"], 46);
    assert_eq!(v[1]["data_length"], 40);
    assert_eq!(v[1]["data"], data);

    // The text tree shows a preview of long data.
    let run = decode(&["tcpcl", &end]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("[   10] data_length: 40"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("… (40 bytes)"), "{}", run.stdout);
}

#[test]
fn tcpcl_unknown_message_type_keeps_earlier_frames() {
    let run = decode(&["tcpcl", TCPCL_SESS_TERM, "09"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("[    0] frame: SESS_TERM, 3 bytes"));
    assert!(
        run.stderr
            .contains("at offset 3: TCPCL message: unknown message type 0x09"),
        "{}",
        run.stderr
    );

    let run = decode(&["tcpcl", "--json", TCPCL_SESS_TERM, "09"]);
    assert_eq!(run.code, 1);
    let v = json_lines(&run);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["type"], "SESS_TERM");
    assert_eq!(v[1]["offset"], 3);
}

#[test]
fn tcpcl_bad_magic() {
    let run = decode(&["tcpcl", "64746e220400"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("at offset 3") && run.stderr.contains("magic"),
        "{}",
        run.stderr
    );
}

#[test]
fn tcpcl_truncated_message_names_field() {
    let run = decode(&["tcpcl", TCPCL_CONTACT, "0500"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("contact header, TCPCLv4"));
    assert!(
        run.stderr.contains(
            "at offset 6: SESS_TERM truncated: 1 more bytes needed; \
             the input ends in field reason (offset 8)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn tcpcl_huge_data_length_is_an_error() {
    // An END segment declaring 2^64-1 data bytes, with one present.
    let run = decode(&["tcpcl", "0101 0000000000000001 ffffffffffffffff aa"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("at offset 0: XFER_SEGMENT truncated:")
            && run.stderr.contains("field data (offset 18)"),
        "{}",
        run.stderr
    );
}

#[test]
fn tcpcl_bad_transfer_length_item() {
    let run = decode(&[
        "tcpcl",
        "0102 0000000000000007 00000009 0100010004 00000000 0000000000000000",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("at offset 19")
            && run.stderr.contains("Transfer Length extension value"),
        "{}",
        run.stderr
    );
}

#[test]
fn tcpcl_v3_contact_header() {
    let run = decode(&["tcpcl", "--json", "64746e21030f001e0764746e3a2f2f61"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    assert_eq!(v[0]["version"], 3);
    assert_eq!(v[0]["keepalive"], 30);
    assert_eq!(v[0]["eid"], "dtn://a");
    assert_eq!(
        v[0]["flags"]["names"],
        serde_json::json!(["ENA_ACK", "ENA_FRAG", "ENA_REFUSE", "ENA_LENGTH"])
    );

    let run = decode(&["tcpcl", "64746e2105"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("TCPCL version 5"), "{}", run.stdout);
}

#[test]
fn file_input_raw_bytes() {
    let mut bytes = unhex(TCPCL_CONTACT);
    bytes.extend(unhex(TCPCL_XFER_ACK));
    bytes.extend(unhex(TCPCL_KEEPALIVE));
    let path = temp_file("tcpcl_stream.bin", &bytes);
    let path = path.to_str().expect("utf-8 path");
    let run = decode(&["tcpcl", "--json", "--file", path]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    let types: Vec<&str> = v
        .iter()
        .map(|f| f["type"].as_str().unwrap_or("contact"))
        .collect();
    assert_eq!(types, ["contact", "XFER_ACK", "KEEPALIVE"]);

    let mut cotp = unhex(COTP_CR);
    cotp.extend(unhex(COTP_DC));
    let path = temp_file("cotp_stream.bin", &cotp);
    let run = decode(&["cotp", "--file", path.to_str().expect("utf-8 path")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("[   22] frame: TPKT, 10 bytes"));
}

#[test]
fn file_from_stdin() {
    let mut bytes = unhex(TCPCL_SESS_TERM);
    bytes.extend(unhex(TCPCL_KEEPALIVE));
    let run = proto(&["decode", "tcpcl", "--json", "--file", "-"], Some(&bytes));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    assert_eq!(v.len(), 2);
    assert_eq!(v[1]["type"], "KEEPALIVE");
    assert_eq!(v[1]["offset"], 3);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["decode"][..],
        &["decode", "tcpcl"],
        &["decode", "udp", "00"],
        &["decode", "tcpcl", "04", "--file", "x"],
        &["decode", "tcpcl", "04", "--bogus"],
    ] {
        let run = proto(args, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty());
    }
}

#[test]
fn bad_hex_exits_1() {
    let run = decode(&["tcpcl", "0g"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not a hex digit"), "{}", run.stderr);
    let run = decode(&["tcpcl", "050"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("odd number"), "{}", run.stderr);
}

#[test]
fn help_works() {
    let run = proto(&["--help"], None);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("decode"));
    let run = proto(&["decode", "--help"], None);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--file"));
    assert!(run.stdout.contains("--json"));
    assert!(run.stdout.contains("tcpcl"));
}

#[test]
fn cotp_rfc1006_expedited_data_and_its_option() {
    // A CC selecting expedited data (C6 = 01), then an RFC 1006 class 0 ED: LI 2, no
    // DST-REF, EOT, 16 octets (tshark 4.0 shows this ED only as data).
    let cc = "030000110cd00001424200c0010ac60101";
    let ed = "03000017021080000102030405060708090a0b0c0d0e0f";
    let run = decode(&["cotp", "--json", cc, ed]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_lines(&run);
    let c6 = &v[0]["cotp"]["params"][1];
    assert_eq!(
        (&c6["code"], &c6["value"]),
        (&"0xc6".into(), &1.into()),
        "{c6}"
    );
    let cc_text = decode(&["cotp", cc]);
    assert!(
        cc_text
            .stdout
            .contains("additional-options (0xc6): 0x01 (expedited data: use)"),
        "{}",
        cc_text.stdout
    );
    let e = &v[1]["cotp"];
    assert_eq!(e["type"], "ED");
    assert_eq!(e["li"], 2);
    assert_eq!(e["eot"], true);
    assert_eq!(e["nr"], 0);
    assert!(e.get("dst_ref").is_none(), "{e}");
    assert_eq!(e["data"], "000102030405060708090a0b0c0d0e0f");
    assert_eq!(e["data_len"], 16);
    let text = decode(&["cotp", "0300000802108041"]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("cotp: ED"), "{}", text.stdout);
    assert!(text.stdout.contains("data: 41"), "{}", text.stdout);
}
