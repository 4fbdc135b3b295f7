//! `proto tcpcl send --bundle-to` / `listen --bundles` and friends, the real binary
//! against itself: files wrapped as BPv7 bundles (checked by the independent decoder
//! in tests/support/bpv7.rs), `--payload-only` restoring the original bytes, edge
//! sizes, a folder with its names kept, hostile names that must not escape
//! `--out-dir`, transfers that are not bundles, `--json` on both sides, the sender's
//! summary line matching the listener's, `proto decode bpv7`, and usage errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::bpv7::{Block, Bundle, CRC_32C};
use proto_tests::child::{ChildGuard, Finished};
use proto_tests::cli::{proto, tcpcl_listen};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_tcpcl_bundles_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(args: &[&str]) -> Finished {
    ChildGuard::spawn(proto(bin()).args(args)).finish(LIMIT)
}

fn send(addr: &str, args: &[&str]) -> Finished {
    let mut all = vec!["tcpcl", "send", "--to", addr, "--node-id", "dtn://tx/"];
    all.extend_from_slice(args);
    run(&all)
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn wrapped_files_arrive_as_valid_bundles_and_payload_only_restores_them() {
    let dir = tmpdir("wrap");
    let (whole, payload) = (dir.join("whole"), dir.join("payload"));
    // Edge sizes: empty, one byte, and a many-segment file (64 KiB segments).
    let files: Vec<(PathBuf, Vec<u8>)> = [0usize, 1, 200_000]
        .iter()
        .map(|&n| {
            let p = dir.join(format!("f{n}.bin"));
            let data: Vec<u8> = (0..n).map(|i| (i * 13 % 251) as u8).collect();
            std::fs::write(&p, &data).unwrap();
            (p, data)
        })
        .collect();
    let paths: Vec<&str> = files.iter().map(|(p, _)| s(p)).collect();
    let (rx_whole, addr_whole) = tcpcl_listen(
        bin(),
        &[
            "--node-id",
            "dtn://rx/",
            "--bundles",
            "--out-dir",
            s(&whole),
            "--count",
            "3",
        ],
    );
    let (rx_payload, addr_payload) = tcpcl_listen(
        bin(),
        &[
            "--node-id",
            "dtn://rx/",
            "--bundles",
            "--payload-only",
            "--out-dir",
            s(&payload),
            "--count",
            "3",
            "--segment-mru",
            "64K",
        ],
    );
    let bundle_args = ["--bundle-to", "dtn://rx/incoming", "--lifetime", "600"];
    let mut args = bundle_args.to_vec();
    args.extend_from_slice(&paths);
    let tx1 = send(&addr_whole, &args);
    assert!(tx1.status.success(), "{}", tx1.stderr);
    let mut args = bundle_args.to_vec();
    args.extend(["--bundle-from", "ipn:7.1"]);
    args.extend_from_slice(&paths);
    let tx2 = send(&addr_payload, &args);
    assert!(tx2.status.success(), "{}", tx2.stderr);
    let rx_whole = rx_whole.finish(LIMIT);
    let rx_payload = rx_payload.finish(LIMIT);
    assert!(rx_whole.status.success(), "{}", rx_whole.stderr);
    assert!(rx_payload.status.success(), "{}", rx_payload.stderr);

    // The sender says one line per file with the file's SHA-256.
    let sent: Vec<&str> = tx2.stdout.lines().collect();
    assert_eq!(sent.len(), 3, "{}", tx2.stdout);
    for (i, (p, data)) in files.iter().enumerate() {
        // Whole bundles: the independent decoder accepts them (CRCs, structure).
        let stored = std::fs::read(whole.join(format!("tcpcl-{:06}.bin", i + 1))).unwrap();
        let b = Bundle::decode(&stored).unwrap();
        assert_eq!(b.payload(), Some(&data[..]));
        assert_eq!(
            (b.source.as_str(), b.destination.as_str()),
            ("dtn://tx/", "dtn://rx/incoming")
        );
        assert_eq!(b.lifetime_ms, 600_000);
        assert_eq!(b.crc_type, CRC_32C);
        // Payload only: the original bytes, and the listener's hash is the sender's.
        let got = std::fs::read(payload.join(format!("tcpcl-{:06}.bin", i + 1))).unwrap();
        assert_eq!(&got, data);
        let line = rx_payload.stdout.lines().nth(i).unwrap();
        let hash = format!("{} bytes sha256={}", data.len(), sha_hex(data));
        assert!(line.contains(&hash), "{line}");
        assert!(
            line.contains(" bpv7 src=ipn:7.1 dst=dtn://rx/incoming created=20"),
            "{line}"
        );
        assert!(
            line.contains(&format!("payload={} bytes", data.len())),
            "{line}"
        );
        assert!(
            sent[i].starts_with(&format!("sent {} {hash} transfer=", s(p))),
            "{}",
            sent[i]
        );
        assert!(sent[i].ends_with(" bytes)"), "{}", sent[i]);
    }
    // Without --payload-only the line hashes the whole bundle.
    let first = std::fs::read(whole.join("tcpcl-000001.bin")).unwrap();
    assert!(rx_whole
        .stdout
        .lines()
        .next()
        .unwrap()
        .contains(&sha_hex(&first)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_transfer_that_is_not_a_bundle_is_refused_and_not_stored() {
    let dir = tmpdir("notbundle");
    let out = dir.join("out");
    let (rx, addr) = tcpcl_listen(
        bin(),
        &["--node-id", "dtn://rx/", "--bundles", "--out-dir", s(&out)],
    );
    std::fs::write(dir.join("plain.txt"), b"just bytes").unwrap();
    // A bundle with a corrupted payload CRC is no better.
    let mut bad = Bundle::new("dtn://x/", "dtn://rx/", 1, b"payload");
    bad.blocks[0].crc_type = CRC_32C;
    let mut bytes = bad.encode().unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(dir.join("bad.bundle"), &bytes).unwrap();
    for f in ["plain.txt", "bad.bundle"] {
        let tx = send(&addr, &[s(&dir.join(f))]);
        assert_eq!(tx.code(), Some(1), "{f}: {}", tx.stderr);
        assert!(tx.stderr.contains("refused"), "{}", tx.stderr);
    }
    rx.signal("TERM");
    let rx = rx.finish(LIMIT);
    assert!(rx.stdout.is_empty(), "{}", rx.stdout);
    assert!(
        rx.stderr.contains("not a valid BPv7 bundle"),
        "{}",
        rx.stderr
    );
    assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_folder_keeps_its_names_and_json_reports_both_sides() {
    let dir = tmpdir("folder");
    let (src, out) = (dir.join("src"), dir.join("out"));
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    std::fs::write(src.join("sub/b.bin"), [0u8, 1, 2]).unwrap();
    std::fs::write(src.join("sub/deeper/c d.txt"), b"").unwrap();
    // A link inside the folder is not followed (and not sent).
    std::os::unix::fs::symlink("/etc/hostname", src.join("link")).unwrap();
    // A name already taken in --out-dir is never replaced.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.txt"), b"older").unwrap();
    let (rx, addr) = tcpcl_listen(
        bin(),
        &[
            "--node-id",
            "dtn://rx/",
            "--bundles",
            "--payload-only",
            "--keep-names",
            "--json",
            "--out-dir",
            s(&out),
            "--count",
            "3",
        ],
    );
    let tx = send(&addr, &["--bundle-to", "dtn://rx/files", "--json", s(&src)]);
    assert!(tx.status.success(), "{}", tx.stderr);
    let rx = rx.finish(LIMIT);
    assert!(rx.status.success(), "{}", rx.stderr);
    assert_eq!(
        files_under(&out),
        ["a.txt", "a.txt.1", "sub/b.bin", "sub/deeper/c d.txt"]
    );
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"older");
    assert_eq!(std::fs::read(out.join("a.txt.1")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(out.join("sub/b.bin")).unwrap(), [0, 1, 2]);

    let sent = json_lines(&tx.stdout);
    let names: Vec<&str> = sent.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a.txt", "sub/b.bin", "sub/deeper/c d.txt"]);
    let got = json_lines(&rx.stdout);
    assert_eq!(got.len(), 3);
    for (t, r) in sent.iter().zip(&got) {
        assert_eq!(t["result"], "acknowledged");
        assert_eq!(t["sha256"], r["sha256"]);
        assert_eq!(t["size"], r["size"]);
        assert_eq!(t["transfer_id"], r["transfer_id"]);
        assert_eq!(t["bundle"]["destination"], "dtn://rx/files");
        assert_eq!(r["bundle"]["name"], t["name"]);
        assert_eq!(r["bundle"]["source"], "dtn://tx/");
        assert_eq!(r["node_id"], "dtn://tx/");
        assert!(r["bundle"]["created_ms"].as_u64().unwrap() > 0);
        assert!(r["bundle"]["size"].as_u64() > r["size"].as_u64());
    }
    assert_eq!(got[0]["file"], s(&out.join("a.txt.1")));
    assert_eq!(sent[0]["sha256"], sha_hex(b"alpha"));
    assert_eq!(sent[2]["size"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_names_never_leave_the_out_dir() {
    let dir = tmpdir("hostile");
    let (out, outside) = (dir.join("out"), dir.join("outside"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
    let hostile = [
        "../escaped.txt",
        "a/../../escaped.txt",
        "/tmp/proto-cli-bundles-absolute.txt",
        "link/through.txt",
        "a//b",
        "back\\slash",
    ];
    let mut paths = vec![];
    for (i, name) in hostile.iter().enumerate() {
        // Bundles made by the independent encoder, carrying the name in block 192.
        let mut b = Bundle::new("dtn://evil/", "dtn://rx/", i as u64, b"pwned");
        b.blocks.insert(
            0,
            Block {
                block_type: 192,
                number: 2,
                flags: 0,
                crc_type: 0,
                data: name.as_bytes().to_vec(),
            },
        );
        let p = dir.join(format!("h{i}.bundle"));
        std::fs::write(&p, b.encode().unwrap()).unwrap();
        paths.push(p);
    }
    let count = hostile.len().to_string();
    let (rx, addr) = tcpcl_listen(
        bin(),
        &[
            "--node-id",
            "dtn://rx/",
            "--bundles",
            "--payload-only",
            "--keep-names",
            "--json",
            "--out-dir",
            s(&out),
            "--count",
            &count,
        ],
    );
    // Sent as they are (raw transfers): they already are bundles.
    let args: Vec<&str> = paths.iter().map(|p| s(p)).collect();
    let tx = send(&addr, &args);
    assert!(tx.status.success(), "{}", tx.stderr);
    let rx = rx.finish(LIMIT);
    assert!(rx.status.success(), "{}", rx.stderr);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!dir.join("escaped.txt").exists());
    assert!(!Path::new("/tmp/proto-cli-bundles-absolute.txt").exists());
    let arrivals = json_lines(&rx.stdout);
    assert_eq!(arrivals.len(), hostile.len());
    for (a, name) in arrivals.iter().zip(hostile) {
        assert_eq!(a["bundle"]["name"], name);
        assert!(a["bundle"]["name_refused"].is_string(), "{a}");
        let file = PathBuf::from(a["file"].as_str().unwrap());
        assert_eq!(file.parent(), Some(out.as_path()), "{a}");
        assert!(file
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("tcpcl-"));
        assert_eq!(std::fs::read(&file).unwrap(), b"pwned");
    }
    assert!(rx.stderr.contains("is refused"), "{}", rx.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_raw_send_prints_the_hash_the_listener_prints() {
    let dir = tmpdir("raw");
    let (rx, addr) = tcpcl_listen(bin(), &["--node-id", "dtn://rx/", "--count", "1"]);
    std::fs::write(dir.join("x.bin"), b"raw bytes").unwrap();
    let tx = send(&addr, &[s(&dir.join("x.bin"))]);
    assert!(tx.status.success(), "{}", tx.stderr);
    let rx = rx.finish(LIMIT);
    let hash = format!("9 bytes sha256={}", sha_hex(b"raw bytes"));
    assert!(
        tx.stdout.starts_with(&format!(
            "sent {} {hash} transfer=0 to {addr}",
            s(&dir.join("x.bin"))
        )),
        "{}",
        tx.stdout
    );
    // The listener's line is unchanged without --bundles/--json.
    assert!(rx.stdout.contains(&format!(") {hash}\n")), "{}", rx.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn listen_json_without_bundles_reports_raw_transfers() {
    let dir = tmpdir("rawjson");
    let out = dir.join("out");
    let (rx, addr) = tcpcl_listen(
        bin(),
        &[
            "--node-id",
            "dtn://rx/",
            "--json",
            "--out-dir",
            s(&out),
            "--count",
            "2",
        ],
    );
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::fs::write(dir.join("one"), b"1").unwrap();
    let tx = send(&addr, &[s(&dir.join("empty")), s(&dir.join("one"))]);
    assert!(tx.status.success(), "{}", tx.stderr);
    let rx = rx.finish(LIMIT);
    let v = json_lines(&rx.stdout);
    assert_eq!(v.len(), 2, "{}", rx.stdout);
    for (i, (a, data)) in v.iter().zip([&b""[..], b"1"]).enumerate() {
        assert_eq!(a["seq"], i + 1);
        assert_eq!(a["size"], data.len());
        assert_eq!(a["sha256"], sha_hex(data));
        assert_eq!(a["transfer_id"], i);
        assert_eq!(a["node_id"], "dtn://tx/");
        assert_eq!(a["file"], s(&out.join(format!("tcpcl-{:06}.bin", i + 1))));
        assert!(a.get("bundle").is_none(), "{a}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_send_reports_json_and_exits_1() {
    let dir = tmpdir("fail");
    let (rx, addr) = tcpcl_listen(
        bin(),
        &["--node-id", "dtn://rx/", "--refuse", "no-resources"],
    );
    std::fs::write(dir.join("x.bin"), b"x").unwrap();
    let tx = send(&addr, &["--json", s(&dir.join("x.bin"))]);
    assert_eq!(tx.code(), Some(1));
    let v = json_lines(&tx.stdout);
    assert_eq!(v.len(), 1, "{}", tx.stdout);
    assert_eq!(v[0]["result"], "failed");
    assert_eq!(v[0]["file"], s(&dir.join("x.bin")));
    assert!(
        v[0]["error"].as_str().unwrap().contains("no resources"),
        "{}",
        v[0]
    );
    drop(rx);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn decode_bpv7_shows_blocks_as_a_tree_and_json() {
    let mut b = Bundle::new("dtn://a/", "ipn:9.2", 5, b"hello");
    b.blocks.insert(
        0,
        Block {
            block_type: 192,
            number: 2,
            flags: 0,
            crc_type: 1,
            data: b"dir/name.txt".to_vec(),
        },
    );
    let bytes = b.encode().unwrap();
    let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
    let tree = run(&["decode", "bpv7", &hex]);
    assert!(tree.status.success(), "{}", tree.stderr);
    for want in [
        "bundle: BPv7 dtn://a/ -> ipn:9.2, 3 blocks, payload 5 bytes",
        "crc_type: 2 (CRC-32C)",
        "crc_type: 1 (CRC-16/X-25)",
        "file_name: dir/name.txt",
        "sequence: 5",
        "lifetime_ms: 3600000",
        "data: 68656c6c6f",
    ] {
        assert!(tree.stdout.contains(want), "{want:?} in\n{}", tree.stdout);
    }
    let json = run(&["decode", "bpv7", &hex, "--json"]);
    let v = json_lines(&json.stdout);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["protocol"], "bpv7");
    assert_eq!(v[0]["length"], bytes.len());
    let blocks = v[0]["blocks"].as_array().unwrap();
    let types: Vec<u64> = blocks.iter().map(|b| b["type"].as_u64().unwrap()).collect();
    assert_eq!(types, [0, 192, 1]);
    assert_eq!(blocks[0]["destination"], "ipn:9.2");
    assert_eq!(blocks[2]["data_length"], 5);
    // One byte short, or a flipped payload byte under a CRC: an error, exit 1.
    let short = run(&["decode", "bpv7", &hex[..hex.len() - 2]]);
    assert_eq!(short.code(), Some(1));
    assert!(
        short.stderr.contains("not a valid BPv7 bundle"),
        "{}",
        short.stderr
    );
}

#[test]
fn usage_errors() {
    let dir = tmpdir("usage");
    std::fs::write(dir.join("x"), b"x").unwrap();
    for (args, want) in [
        (
            vec![
                "tcpcl",
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--node-id",
                "dtn://rx/",
                "--payload-only",
            ],
            "--bundles",
        ),
        (
            vec![
                "tcpcl",
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--node-id",
                "dtn://rx/",
                "--bundles",
                "--keep-names",
            ],
            "--out-dir",
        ),
        (
            vec![
                "tcpcl",
                "send",
                "--to",
                "127.0.0.1:1",
                "--node-id",
                "dtn://tx/",
                "--bundle-from",
                "dtn://a/",
                s(&dir.join("x")),
            ],
            "--bundle-to",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.code(), Some(2), "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
    }
    // A bad EID is said before any connection is tried (nothing listens on port 1).
    let o = run(&[
        "tcpcl",
        "send",
        "--to",
        "127.0.0.1:1",
        "--node-id",
        "dtn://tx/",
        "--bundle-to",
        "http://x/",
        s(&dir.join("x")),
    ]);
    assert_eq!(o.code(), Some(1));
    assert!(
        o.stderr
            .contains("--bundle-to \"http://x/\" is not a valid endpoint ID"),
        "{}",
        o.stderr
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = run(&[
        "tcpcl",
        "send",
        "--to",
        "127.0.0.1:1",
        "--node-id",
        "dtn://tx/",
        s(&empty),
    ]);
    assert_eq!(o.code(), Some(1));
    assert!(o.stderr.contains("holds no regular files"), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
