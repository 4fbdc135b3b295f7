//! `proto tcpcl` TLS policy flags, each both ways, with the real binary:
//! `--tls-require-bundle-eku` (RFC 9174 §4.4.5: a present EKU must contain
//! id-kp-bundleSecurity; `gen-certs` issues certificates that pass it) and
//! `--ignore-host-authn` (§4.4.5: network-level identifiers ignored), plus the sentence
//! the sender prints when the peer rejects its certificate with bad_certificate; and
//! `--tls-crl` (revocation lists, an extra beyond RFC 9174).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use proto_net::tcpcl::tls::certgen::{CertFactory, EkuProfile, LeafSpec};
use proto_tests::child::{ChildGuard, Finished};
use proto_tests::cli::{proto, tcpcl_listen};

const SEND_LIMIT: Duration = Duration::from_secs(30);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_tcpcl_tls_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// `--tls-cert/--tls-key/--tls-ca` for `name` in `dir`.
fn tls_args(dir: &Path, name: &str) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        s(&dir.join(format!("{name}.pem"))),
        "--tls-key".into(),
        s(&dir.join(format!("{name}.key"))),
        "--tls-ca".into(),
        s(&dir.join("ca.pem")),
    ]
}

/// Writes `ca.pem` and a certificate `name.pem`/`name.key` for `spec` with `eku`.
fn issue(dir: &Path, ca: &CertFactory, name: &str, spec: &LeafSpec, eku: EkuProfile) {
    let (cert, key) = ca.issue_with(spec, eku).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.ca_pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key).unwrap();
}

fn listen(dir: &Path, name: &str, extra: &[&str]) -> (ChildGuard, String) {
    let mut args = vec!["--node-id".to_string(), "dtn://rx/".into()];
    args.extend(tls_args(dir, name));
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tcpcl_listen(bin(), &args)
}

fn send(dir: &Path, addr: &str, name: &str, extra: &[&str]) -> Finished {
    let payload = dir.join("payload.bin");
    std::fs::write(&payload, b"policy test bundle").unwrap();
    let mut cmd = proto(bin());
    cmd.env_remove("SSLKEYLOGFILE")
        .args(["tcpcl", "send", "--to", addr, "--node-id", "dtn://tx/"])
        .args(tls_args(dir, name))
        .args(["--contact-timeout", "10"])
        .args(extra)
        .arg(&payload);
    ChildGuard::spawn(&mut cmd).finish(SEND_LIMIT)
}

#[test]
fn require_bundle_eku_flag_both_ways() {
    let dir = tmpdir("eku");
    let ca = CertFactory::new_ca("cli EKU CA").unwrap();
    let node = |n: &str| LeafSpec::node(n);
    issue(&dir, &ca, "rx", &node("dtn://rx/"), EkuProfile::default());
    issue(
        &dir,
        &ca,
        "rx-tls",
        &node("dtn://rx/"),
        EkuProfile::TlsClientServer,
    );
    issue(&dir, &ca, "tx", &node("dtn://tx/"), EkuProfile::default());
    issue(
        &dir,
        &ca,
        "tx-tls",
        &node("dtn://tx/"),
        EkuProfile::TlsClientServer,
    );

    // The listener requires id-kp-bundleSecurity: serverAuth/clientAuth alone is refused,
    // and the sender hears bad_certificate.
    let (_l, addr) = listen(&dir, "rx", &["--tls-require-bundle-eku"]);
    let o = send(&dir, &addr, "tx-tls", &[]);
    assert_eq!(o.code(), Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("rejected our certificate"),
        "{}",
        o.stderr
    );
    let o = send(&dir, &addr, "tx", &[]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    // Without the flag the same certificate passes.
    let (_l, addr) = listen(&dir, "rx", &[]);
    let o = send(&dir, &addr, "tx-tls", &[]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);

    // The sender's flag applies to the listener's certificate.
    let (_l, addr) = listen(&dir, "rx-tls", &[]);
    let o = send(&dir, &addr, "tx", &["--tls-require-bundle-eku"]);
    assert_eq!(o.code(), Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("id-kp-bundleSecurity"), "{}", o.stderr);
    let o = send(&dir, &addr, "tx", &[]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gen_certs_pass_the_bundle_eku_policy() {
    let dir = tmpdir("gen");
    let g = ChildGuard::run(
        bin(),
        &[
            "tcpcl",
            "gen-certs",
            "--out",
            &s(&dir),
            "--node-id",
            "dtn://rx/",
            "--node-id",
            "dtn://tx/",
        ],
        SEND_LIMIT,
    );
    assert_eq!(g.code(), Some(0), "{}", g.stderr);
    let (_l, addr) = listen(&dir, "rx", &["--tls-require-bundle-eku"]);
    let o = send(&dir, &addr, "tx", &["--tls-require-bundle-eku"]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ignore_host_authn_flag_both_ways() {
    let dir = tmpdir("host");
    let ca = CertFactory::new_ca("cli host CA").unwrap();
    let rx = LeafSpec {
        dns_names: vec!["localhost".into()],
        ..LeafSpec::node("dtn://rx/")
    };
    issue(&dir, &ca, "rx", &rx, EkuProfile::default());
    issue(
        &dir,
        &ca,
        "tx",
        &LeafSpec::node("dtn://tx/"),
        EkuProfile::default(),
    );
    let (_l, addr) = listen(&dir, "rx", &[]);
    // By default a certificate naming another host ends the session...
    let other = ["--server-name", "elsewhere.example"];
    let o = send(&dir, &addr, "tx", &other);
    assert_eq!(o.code(), Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("host authentication failed"),
        "{}",
        o.stderr
    );
    // ... not when network-level identifiers are ignored (node authentication decides).
    let o = send(
        &dir,
        &addr,
        "tx",
        &[
            other[0],
            other[1],
            "--ignore-host-authn",
            "--require-node-authn",
        ],
    );
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    // Ignoring and requiring host authentication contradict each other: a usage error.
    let o = send(
        &dir,
        &addr,
        "tx",
        &["--ignore-host-authn", "--require-host-authn"],
    );
    assert_eq!(o.code(), Some(2), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn crl_flag_refuses_a_revoked_peer() {
    let dir = tmpdir("crl");
    let ca = CertFactory::new_ca("cli CRL CA").unwrap();
    let spec = |node: &str, serial| LeafSpec {
        serial: Some(serial),
        ..LeafSpec::node(node)
    };
    issue(
        &dir,
        &ca,
        "rx",
        &spec("dtn://rx/", 1),
        EkuProfile::default(),
    );
    issue(
        &dir,
        &ca,
        "tx",
        &spec("dtn://tx/", 2),
        EkuProfile::default(),
    );
    issue(
        &dir,
        &ca,
        "tx-ok",
        &spec("dtn://tx/", 3),
        EkuProfile::default(),
    );
    let crl = dir.join("crl.pem");
    std::fs::write(&crl, ca.crl_pem(&[2], Duration::from_secs(86_400)).unwrap()).unwrap();
    let (_l, addr) = listen(&dir, "rx", &["--tls-crl", &s(&crl)]);
    let o = send(&dir, &addr, "tx", &[]);
    assert_eq!(o.code(), Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("rejected our certificate"),
        "{}",
        o.stderr
    );
    let o = send(&dir, &addr, "tx-ok", &[]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    // Without the list the revoked certificate is accepted.
    let (_l, addr) = listen(&dir, "rx", &[]);
    let o = send(&dir, &addr, "tx", &[]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
