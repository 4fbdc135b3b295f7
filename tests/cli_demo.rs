//! `proto demo` runs end to end on a fresh checkout and verifies itself.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn demo_succeeds_and_reports_what_it_verified() {
    let out = Command::new(env!("CARGO_BIN_EXE_proto"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("negotiated TPDU size 1024"), "{stdout}");
    assert!(stdout.contains("all verified"), "{stdout}");
    assert!(stdout.contains("TLSv1_3"), "{stdout}");
    assert!(
        stdout.contains("node authentication of the peer: success"),
        "{stdout}"
    );
    assert!(
        stdout.contains("every byte acknowledged and verified"),
        "{stdout}"
    );
    // How the TCPCL session ended, in words; no Rust Debug text (`Terminated { .. }`,
    // `[1, 2]`) anywhere.
    assert!(
        stdout.contains("session ended: terminated by us: unknown (0)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(['{', '}', '[', ']']),
        "Debug text in\n{stdout}"
    );
    assert!(stdout.trim_end().ends_with("all checks passed"), "{stdout}");
}
