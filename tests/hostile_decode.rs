//! `proto decode` (cotp, tcpcl, bpv7) against hostile input: seeded random blobs (pure noise, and noise
//! behind valid-looking headers, and mutations of real frames) never crash the
//! binary, always finish quickly, and every failure names an offset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CASES: u64 = 500;
const MAX_LEN: usize = 4096;
/// Bound on one `proto decode` run.
const LIMIT: Duration = Duration::from_secs(5);

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const COTP_SEEDS: &[&[u8]] = &[
    // CR, CC, DT, DR, DC, ER.
    &[
        3, 0, 0, 22, 0x11, 0xe0, 0, 0, 0, 1, 0, 0xc0, 1, 0x0a, 0xc1, 2, 0, 0, 0xc2, 2, 0, 1,
    ],
    &[
        3, 0, 0, 22, 0x11, 0xd0, 0, 1, 0, 1, 0, 0xc0, 1, 0x0a, 0xc1, 2, 1, 0, 0xc2, 2, 1, 1,
    ],
    &[3, 0, 0, 12, 2, 0xf0, 0x80, 1, 2, 3, 4, 5],
    &[3, 0, 0, 11, 6, 0x80, 0, 1, 0, 1, 0x80],
    &[3, 0, 0, 10, 5, 0xc0, 0, 1, 0, 1],
    &[3, 0, 0, 14, 9, 0x70, 0, 1, 2, 0xc1, 3, 2, 0x90, 0],
];

const TCPCL_SEEDS: &[&[u8]] = &[
    b"dtn!\x04\x00",
    b"dtn!\x03\x00\x00\x0a\x0adtn://v3/x",
    // SESS_INIT (node dtn://client/, no extensions).
    &[
        7, 0, 10, 0, 0, 0, 0, 0, 0xa0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 13,
        b'd', b't', b'n', b':', b'/', b'/', b'c', b'l', b'i', b'e', b'n', b't', b'/', 0, 0, 0, 0,
    ],
    // XFER_SEGMENT START|END with a Transfer Length item and 3 bytes.
    &[
        1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 13, 1, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0,
        0, 0, 0, 0, 3, b'a', b'b', b'c',
    ],
    &[2, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3],
    &[3, 4, 0, 0, 0, 0, 0, 0, 0, 1],
    &[4],
    &[5, 1, 2],
    &[6, 3, 2],
];

/// One hostile input: noise, noise behind a real frame, or a mutated stream of real
/// frames.
fn blob(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let len = 1 + rng.below(MAX_LEN);
    match rng.below(4) {
        0 => rng.bytes(len),
        1 => {
            let mut b = seeds[rng.below(seeds.len())].to_vec();
            b.extend(rng.bytes(len.saturating_sub(b.len())));
            b
        }
        _ => {
            let mut b = Vec::new();
            while b.len() < len {
                b.extend_from_slice(seeds[rng.below(seeds.len())]);
            }
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let i = rng.below(b.len());
                match rng.below(3) {
                    0 => b[i] ^= 1 << rng.below(8),
                    1 => b[i] = rng.next() as u8,
                    _ => b[i] = [0, 0xff, 0x7f, 0x80][rng.below(4)],
                }
            }
            if rng.below(3) == 0 {
                b.truncate(1 + rng.below(b.len()));
            }
            b
        }
    }
}

fn tmpdir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile_decode_{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `proto decode <protocol> --file <file> [--json]` with a time bound.
fn decode(protocol: &str, file: &Path, json: bool) -> (i32, String, String, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proto"));
    cmd.args(["decode", protocol, "--file"]).arg(file);
    if json {
        cmd.arg("--json");
    }
    let out_path = file.with_extension("out");
    let err_path = file.with_extension("err");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`proto decode {protocol}` ran over {LIMIT:?} on {}",
                file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    let code = status.code().unwrap_or_else(|| {
        panic!(
            "`proto decode {protocol}` died by a signal ({status}) on {}",
            file.display()
        )
    });
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (code, stdout, stderr, took)
}

fn run(protocol: &str, seeds: &[&[u8]], seed: u64) {
    let dir = tmpdir();
    let mut rng = Rng(seed);
    let (mut ok, mut failed) = (0u32, 0u32);
    let mut slowest = Duration::ZERO;
    for case in 0..CASES {
        let input = blob(&mut rng, seeds);
        let file = dir.join(format!("{protocol}-{case}.bin"));
        std::fs::write(&file, &input).unwrap();
        let json = case % 5 == 0;
        let (code, stdout, stderr, took) = decode(protocol, &file, json);
        slowest = slowest.max(took);
        let what = format!("case {case} ({} bytes, {})", input.len(), file.display());
        match code {
            0 => ok += 1,
            1 => {
                failed += 1;
                let line = stderr
                    .lines()
                    .find(|l| l.starts_with("error:"))
                    .unwrap_or_else(|| panic!("{what}: exit 1 without an error line: {stderr}"));
                assert!(
                    line.starts_with("error: at offset "),
                    "{what}: error names no offset: {line}"
                );
                let offset: usize = line["error: at offset ".len()..]
                    .split(':')
                    .next()
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or_else(|| panic!("{what}: unparsable offset in {line}"));
                assert!(
                    offset <= input.len(),
                    "{what}: offset {offset} out of range"
                );
                if json {
                    let last = stdout.lines().last().unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(last)
                        .unwrap_or_else(|e| panic!("{what}: last JSON line {last:?}: {e}"));
                    assert_eq!(v["offset"], offset, "{what}");
                }
            }
            other => panic!("{what}: exit code {other}\nstderr: {stderr}"),
        }
        if json {
            for l in stdout.lines() {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|e| panic!("{what}: bad JSON line {l:?}: {e}"));
            }
        }
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(file.with_extension("out"));
        let _ = std::fs::remove_file(file.with_extension("err"));
    }
    eprintln!("decode {protocol}: {ok} decoded, {failed} rejected, slowest run {slowest:?}");
}

#[test]
fn random_cotp_blobs_never_crash_or_hang() {
    run("cotp", COTP_SEEDS, 0x9e37_79b9_7f4a_7c15);
}

#[test]
fn random_tcpcl_blobs_never_crash_or_hang() {
    run("tcpcl", TCPCL_SEEDS, 0xd1b5_4a32_d192_ed03);
}

/// A bundle `proto tcpcl send --bundle-to ipn:2.1 --bundle-from ipn:1.0` made: primary
/// block, file-name block (type 192), payload block, each with CRC-32C.
const BPV7_SEEDS: &[&[u8]] = &[&[
    0x9f, 0x89, 0x07, 0x00, 0x02, 0x82, 0x02, 0x82, 0x02, 0x01, 0x82, 0x02, 0x82, 0x01, 0x00, 0x82,
    0x02, 0x82, 0x01, 0x00, 0x82, 0x1b, 0x00, 0x00, 0x00, 0xc5, 0xe7, 0x8f, 0x06, 0xa8, 0x00, 0x1a,
    0x00, 0x36, 0xee, 0x80, 0x44, 0x1f, 0x59, 0x1f, 0xc9, 0x86, 0x18, 0xc0, 0x02, 0x00, 0x02, 0x4a,
    0x72, 0x65, 0x70, 0x6f, 0x72, 0x74, 0x2e, 0x74, 0x78, 0x74, 0x44, 0x09, 0xac, 0x38, 0x3f, 0x86,
    0x01, 0x01, 0x04, 0x02, 0x4c, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x6e, 0x6f, 0x64, 0x65, 0x32,
    0x0a, 0x44, 0xa7, 0xae, 0xb8, 0xf1, 0xff,
]];

#[test]
fn random_bpv7_blobs_never_crash_or_hang() {
    run("bpv7", BPV7_SEEDS, 0x94d0_49bb_1331_11eb);
}
