//! `proto tcpcl listen` / `send` with a `--config` file (docs/config-tcpcl.md), and the
//! messages around it: the real binary, every child under a time limit and killed on
//! every exit path (`proto_tests::peers::Bounded`).
//!
//! The central test loads a file with every documented key (the list is read from the
//! documentation, so a newly documented key fails it until covered) and checks that
//! each key either shows its effect in the exchange or draws a warning naming it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use proto_net::tcpcl::tls::certgen::CertFactory;
use proto_tests::peers::{free_port, Bounded, Finished, Stream};
use sha2::{Digest, Sha256};

const LIMIT: Duration = Duration::from_secs(30);

fn proto() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_proto"));
    // The tests decide the log level through the files; SSLKEYLOGFILE stays off.
    c.env_remove("RUST_LOG").env_remove("SSLKEYLOGFILE");
    c
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_tcpcl_config_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `proto ARGS` to completion within [`LIMIT`].
fn run(cmd: &mut Command) -> Finished {
    Bounded::spawn(cmd).unwrap().finish(LIMIT).unwrap()
}

/// Starts `proto tcpcl listen ARGS` and waits until it listens.
fn listen(cmd: &mut Command) -> Bounded {
    let mut child = Bounded::spawn(cmd).unwrap();
    child
        .wait_line(Stream::Stderr, LIMIT, |l| {
            l.starts_with("listening for TCPCL on ")
        })
        .unwrap();
    child
}

/// Every key the tables of docs/config-tcpcl.md document (first column, in backticks).
fn documented_keys() -> Vec<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config-tcpcl.md"),
    )
    .unwrap();
    let mut keys = Vec::new();
    for line in doc.lines() {
        let Some(first) = line.strip_prefix("| `") else {
            continue;
        };
        let cell = first.split(" |").next().unwrap_or_default();
        keys.extend(
            cell.split('`')
                .map(str::trim)
                .filter(|k| !k.is_empty() && *k != ",")
                .map(str::to_owned),
        );
    }
    keys
}

/// The top-level keys of a flat YAML file as written here.
fn yaml_keys(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_owned()))
        .collect()
}

/// The agent file of one side: every documented key, with `extra` appended.
#[allow(clippy::too_many_arguments)]
fn config_text(
    node: &str,
    certs: &Path,
    listen_port: u16,
    connect_port: u16,
    local: &str,
    segment_mru: u64,
    transfer_mru: u64,
    recv_dir: &Path,
    require_host_authn: bool,
) -> String {
    let name = node.trim_start_matches("dtn://").trim_end_matches('/');
    format!(
        "log_level: info
enable_test: [private_extensions]
bus_addr: unix:path=/run/dbus/system_bus_socket
bus_service: org.example.tcpcl
init_listen:
  - address: 127.0.0.1
    port: {listen_port}
init_connect:
  - address: 127.0.0.1
    port: {connect_port}
stop_on_close: true
tls_enable: true
tls_version: \"1.3\"
tls_ciphers: [TLS13_CHACHA20_POLY1305_SHA256]
tls_ca_file: {ca}
tls_cert_file: {cert}
tls_key_file: {key}
tls_crl_file: {crl}
tls_dhparam: /nonexistent/dhparam.pem
require_tls: true
require_host_authn: {require_host_authn}
require_node_authn: true
ignore_host_authn: false
tls_require_bundle_eku: true
node_id: {node}
keepalive_time: 7
idle_time: 60
segment_size_mru: {segment_mru}
segment_size_tx_initial: 4096
modulate_target_ack_time: 500
transfer_mru: {transfer_mru}
segment_size_tx_max: 8192
max_sessions: 4
connect_timeout: 5
contact_timeout: 9
sess_term_timeout: 4
connect_local_address: {local}
recv_dir: {recv}
max_memory_bundle: 1000
max_pending_acks: 64
max_queued_transfers: 4
event_capacity: 128
tcpcl_version: 4
accept_tcpcl_version: 4
",
        ca = s(&certs.join("ca.pem")),
        cert = s(&certs.join(format!("{name}.pem"))),
        key = s(&certs.join(format!("{name}.key"))),
        crl = s(&certs.join("crl.pem")),
        recv = s(recv_dir),
    )
}

fn gen_certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    let g = run(proto()
        .args(["tcpcl", "gen-certs", "--out", s(&certs)])
        .args(["--node-id", "dtn://rx/", "--node-id", "dtn://tx/"])
        .args(["--dns", "localhost", "--ip", "127.0.0.1"]));
    assert!(g.status.success(), "{}", g.stderr);
    // gen-certs keeps no CA key, so the CRL comes from another CA: it covers none of
    // these certificates, which therefore pass (a list applies only to its issuer's).
    let other = CertFactory::new_ca("unrelated CRL issuer").unwrap();
    let crl = other
        .crl_pem(&[1, 2, 3], Duration::from_secs(86_400))
        .unwrap();
    std::fs::write(certs.join("crl.pem"), crl).unwrap();
    certs
}

#[track_caller]
fn assert_warns(stderr: &str, file: &Path, keys: &[&str]) {
    for key in keys {
        let want = format!("warning: {}: {key} ", file.display());
        assert!(stderr.contains(&want), "no warning {want:?} in\n{stderr}");
    }
}

#[test]
fn a_config_file_with_every_documented_key_takes_effect_or_warns() {
    let dir = tmpdir("every_key");
    let certs = gen_certs(&dir);
    let (rx_port, tx_port) = (free_port().unwrap(), free_port().unwrap());
    let (rx_in, tx_in) = (dir.join("rx-in"), dir.join("tx-in"));
    let rx_yaml = dir.join("rx.yaml");
    let rx = config_text(
        "dtn://rx/",
        &certs,
        rx_port,
        9,
        "127.0.0.1",
        12_345,
        1_000_000,
        &rx_in,
        false,
    );
    std::fs::write(&rx_yaml, &rx).unwrap();
    let tx_yaml = dir.join("tx.yaml");
    let tx = config_text(
        "dtn://tx/",
        &certs,
        9,
        rx_port,
        &format!("127.0.0.1:{tx_port}"),
        23_456,
        2_000_000,
        &tx_in,
        true,
    );
    std::fs::write(&tx_yaml, &tx).unwrap();
    let in_file = yaml_keys(&rx);
    for key in documented_keys() {
        assert!(
            in_file.contains(&key),
            "documented key {key} is not in the test's file"
        );
    }

    // No --bind, --node-id, --out-dir or --count: all from the file.
    let listener = listen(proto().args(["tcpcl", "listen", "--config", s(&rx_yaml)]));
    let bundle: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let file = dir.join("bundle.bin");
    std::fs::write(&file, &bundle).unwrap();
    // No --to or --node-id: from the file.
    let sent = run(proto().args(["tcpcl", "send", "--config", s(&tx_yaml), s(&file)]));
    // stop_on_close: the listener ends by itself once the session is over.
    let rx_out = listener.finish(LIMIT).unwrap();
    assert!(sent.status.success(), "send:\n{}", sent.stderr);
    assert!(rx_out.status.success(), "listen:\n{}", rx_out.stderr);

    // Warned about, by name.
    assert_warns(
        &rx_out.stderr,
        &rx_yaml,
        &[
            "enable_test",
            "bus_addr",
            "bus_service",
            "tls_dhparam",
            "init_connect",
            "max_memory_bundle",
        ],
    );
    assert_warns(
        &sent.stderr,
        &tx_yaml,
        &[
            "enable_test",
            "bus_addr",
            "bus_service",
            "tls_dhparam",
            "init_listen",
        ],
    );
    // node_id (tx), init_connect (tx), init_listen (rx), connect_local_address (tx)
    // and recv_dir (rx).
    let digest: String = Sha256::digest(&bundle)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let line = rx_out.stdout.lines().next().unwrap_or_default();
    assert!(
        line.contains(&format!(
            " #1 from dtn://tx/ (127.0.0.1:{tx_port}) 20000 bytes sha256={digest}"
        )),
        "{}",
        rx_out.stdout
    );
    let stored = rx_in.join("tcpcl-000001.bin");
    assert!(line.ends_with(s(&stored)), "{line}");
    assert_eq!(std::fs::read(&stored).unwrap(), bundle);
    // log_level: info lines on both sides. Each side's SESS_INIT values as the other
    // saw them (keepalive_time, segment_size_mru, transfer_mru), over TLS.
    assert!(
        rx_out.stderr.contains(&format!(
            "session with dtn://tx/ at 127.0.0.1:{tx_port} established (TLS, keepalive 7 s, \
             peer segment MRU 23456, peer transfer MRU 2000000)"
        )),
        "{}",
        rx_out.stderr
    );
    assert!(
        sent.stderr.contains(
            "established (TLS, keepalive 7 s, peer segment MRU 12345, peer transfer MRU 1000000)"
        ),
        "{}",
        sent.stderr
    );
    // tls_version, tls_ciphers, the tls_*_file keys and require_host_authn (the
    // certificate names 127.0.0.1).
    assert!(
        sent.stderr.contains(
            "TLS up: TLSv1_3 TLS13_CHACHA20_POLY1305_SHA256; peer node IDs: dtn://rx/; \
             DNS names: localhost; IPs: 127.0.0.1; host authentication: success"
        ),
        "{}",
        sent.stderr
    );
    assert!(sent.stderr.contains(": 20000 bytes acknowledged by "));
    // How the session ended, in words (not Rust Debug text).
    assert!(
        rx_out
            .stderr
            .contains("ended (terminated by the peer: unknown (0))"),
        "{}",
        rx_out.stderr
    );
    for text in [&rx_out.stderr, &sent.stderr] {
        assert!(!text.contains("Terminated {"), "{text}");
        assert!(!text.contains("SessTermReason("), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The policies and limits of the same file, each against a peer that violates it.
#[test]
fn config_file_policies_and_timeouts_are_enforced() {
    let dir = tmpdir("policies");
    let certs = gen_certs(&dir);
    let rx_port = free_port().unwrap();
    let rx_yaml = dir.join("rx.yaml");
    let rx = config_text(
        "dtn://rx/",
        &certs,
        rx_port,
        9,
        "127.0.0.1",
        12_345,
        1_000,
        &dir.join("in"),
        false,
    )
    .replace("contact_timeout: 9", "contact_timeout: 1")
    .replace("stop_on_close: true", "stop_on_close: false");
    std::fs::write(&rx_yaml, rx).unwrap();
    // RUST_LOG wins over log_level.
    let listener =
        listen(
            proto()
                .env("RUST_LOG", "error")
                .args(["tcpcl", "listen", "--config", s(&rx_yaml)]),
        );
    let to = format!("127.0.0.1:{rx_port}");
    let small = dir.join("small.bin");
    std::fs::write(&small, b"hello").unwrap();
    let send = |args: &[&str]| {
        run(proto()
            .args(["tcpcl", "send", "--to", &to])
            .args(args)
            .arg(s(&small)))
    };
    // require_tls.
    let o = send(&["--node-id", "dtn://tx/", "--no-tls"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stderr.contains("contact failure (4)"), "{}", o.stderr);
    // require_node_authn: tx's certificate does not name dtn://other/.
    let o = send(&[
        "--node-id",
        "dtn://other/",
        "--tls-ca",
        s(&certs.join("ca.pem")),
        "--tls-cert",
        s(&certs.join("tx.pem")),
        "--tls-key",
        s(&certs.join("tx.key")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stderr.contains("contact failure (4)"), "{}", o.stderr);
    // transfer_mru: 1000 bytes.
    let big = dir.join("big.bin");
    std::fs::write(&big, vec![7u8; 5000]).unwrap();
    let o = run(proto()
        .args(["tcpcl", "send", "--to", &to, "--node-id", "dtn://tx/"])
        .args(["--tls-ca", s(&certs.join("ca.pem"))])
        .args(["--tls-cert", s(&certs.join("tx.pem"))])
        .args(["--tls-key", s(&certs.join("tx.key")), s(&big)]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stderr.contains("transfer MRU is 1000 bytes"),
        "{}",
        o.stderr
    );
    // contact_timeout: 1 s for a connection that never sends its contact header.
    let mut idle = TcpStream::connect(&to).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match idle.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(6),
        "closed after {waited:?}"
    );
    listener.signal("TERM").unwrap();
    let out = listener.finish(LIMIT).unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    // RUST_LOG=error hid the info lines log_level asked for; warnings still show.
    assert!(!out.stderr.contains(" INFO "), "{}", out.stderr);
    assert!(out.stderr.contains("warning: "), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_config_values_are_errors_naming_the_key() {
    let dir = tmpdir("bad_values");
    let file = dir.join("bad.yaml");
    for (yaml, key) in [
        ("node_id: dtn://x/\nlog_level: verbose\n", "log_level"),
        (
            "node_id: dtn://x/\ncontact_timeout: -1\n",
            "contact_timeout",
        ),
        (
            "node_id: dtn://x/\nsess_term_timeout: -1\n",
            "sess_term_timeout",
        ),
        (
            "node_id: dtn://x/\nconnect_timeout: -1\n",
            "connect_timeout",
        ),
        ("node_id: dtn://x/\nmax_sessions: 0\n", "max_sessions"),
        ("node_id: dtn://x/\nevent_capacity: 0\n", "event_capacity"),
        (
            "node_id: dtn://x/\nconnect_local_address: nowhere\n",
            "connect_local_address",
        ),
        ("node_id: dtn://x/\nkeepalive: 5\n", "keepalive"),
    ] {
        std::fs::write(&file, yaml).unwrap();
        let o = run(proto().args([
            "tcpcl",
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--config",
            s(&file),
        ]));
        assert_eq!(o.status.code(), Some(1), "{yaml}: {}", o.stderr);
        assert!(o.stderr.contains(key), "{yaml}: {}", o.stderr);
    }
    // No address at all: a usage error for `send` (a listener without --bind or
    // init_listen binds 0.0.0.0:4556 instead, see cli_habits).
    std::fs::write(&file, "node_id: dtn://x/\n").unwrap();
    let o = run(proto().args(["tcpcl", "send", "--config", s(&file), s(&file)]));
    assert_eq!(o.status.code(), Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("init_connect"), "{}", o.stderr);
    std::fs::write(
        &file,
        "node_id: dtn://x/\ninit_connect:\n  - address: 127.0.0.1\n  - address: ::1\n",
    )
    .unwrap();
    let o = run(proto().args(["tcpcl", "send", "--config", s(&file), s(&file)]));
    assert_eq!(o.status.code(), Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("lists 2 peers"), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_config_file_names_the_cause_once() {
    let dir = tmpdir("missing");
    let missing = dir.join("nope.yaml");
    for cmd in ["listen", "send"] {
        let o = run(proto()
            .args([
                "tcpcl",
                cmd,
                "--config",
                s(&missing),
                "--node-id",
                "dtn://x/",
            ])
            .args(["--bind", "127.0.0.1:0"].iter().filter(|_| cmd == "listen"))
            .args(
                ["--to", "127.0.0.1:9", "x"]
                    .iter()
                    .filter(|_| cmd == "send"),
            ));
        assert_eq!(o.status.code(), Some(1), "{}", o.stderr);
        let err = o.stderr.trim_end();
        assert_eq!(
            err,
            format!(
                "error: cannot read the configuration file {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_port_in_use_names_the_cause_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(proto().args(["tcpcl", "listen", "--node-id", "dtn://x/", "--bind", &addr]));
    assert_eq!(o.status.code(), Some(1), "{}", o.stderr);
    assert_eq!(
        o.stderr.trim_end(),
        format!("error: cannot listen on {addr}: Address already in use (os error 98)")
    );
}

#[test]
fn gen_certs_refuses_validity_of_zero_days() {
    let dir = tmpdir("days");
    for (days, why) in [
        ("0", "already expired"),
        ("36501", "more than the 36500"),
        ("99999999999999999999", "not a number of days"),
    ] {
        let out = dir.join(format!("certs-{days}"));
        let o = run(proto().args([
            "tcpcl",
            "gen-certs",
            "--out",
            s(&out),
            "--node-id",
            "dtn://rx/",
            "--days",
            days,
        ]));
        assert_eq!(o.status.code(), Some(2), "--days {days}: {}", o.stderr);
        assert!(o.stderr.contains(why), "--days {days}: {}", o.stderr);
        assert!(!out.exists(), "--days {days} wrote {}", out.display());
    }
    let out = dir.join("certs-1");
    let o = run(proto().args([
        "tcpcl",
        "gen-certs",
        "--out",
        s(&out),
        "--node-id",
        "dtn://rx/",
        "--days",
        "1",
    ]));
    assert!(o.status.success(), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
