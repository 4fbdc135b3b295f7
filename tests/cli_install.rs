//! `proto` installed like any other tool, with the real binary: `--version` names the
//! git revision it was built from, `proto completions SHELL` and `proto manpage` are
//! generated from the same clap definitions as the commands (so they know every flag).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_tests::child::{ChildGuard, Finished};
use proto_tests::cli;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

fn run(args: &[&str]) -> Finished {
    ChildGuard::spawn(cli::proto(bin()).args(args)).finish(Duration::from_secs(20))
}

#[test]
fn version_names_the_git_revision() {
    let r = run(&["--version"]);
    assert!(r.status.success(), "{}", r.stderr);
    let line = r.stdout.trim();
    assert!(
        line.starts_with(&format!("proto {}", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    // The binary was built from this checkout; without git (a tarball), no revision.
    let rev = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match rev {
        Some(rev) => assert!(line.ends_with(&format!("(git {rev})")), "{line} vs {rev}"),
        None => assert!(!line.contains("(git"), "{line}"),
    }
    // Subcommands say the same.
    let r = run(&["cotp", "send", "--version"]);
    assert!(
        r.stdout.contains(line.trim_start_matches("proto ")),
        "{}",
        r.stdout
    );
}

#[test]
fn completions_know_the_commands_and_flags() {
    for (shell, marker) in [
        ("bash", "_proto()"),
        ("zsh", "#compdef proto"),
        ("fish", "complete -c proto"),
        ("elvish", "edit:completion:arg-completer[proto]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let r = run(&["completions", shell]);
        assert!(r.status.success(), "{shell}: {}", r.stderr);
        assert!(r.stdout.contains(marker), "{shell}: no {marker:?}");
        // Without the dashes: fish writes `-l connection-type`.
        for flag in [
            "connection-type",
            "max-message-size",
            "expect-reply",
            "node-id",
        ] {
            assert!(r.stdout.contains(flag), "{shell}: no {flag}");
        }
    }
    let r = run(&["completions", "tcsh"]);
    assert_eq!(r.code(), Some(2), "{}", r.stderr);
}

#[test]
fn manpages_print_or_go_into_a_directory() {
    let r = run(&["manpage"]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.contains(".TH proto 1"), "{}", r.stdout);
    assert!(r.stdout.contains("cotp"), "subcommands listed");

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_install_man_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = run(&["manpage", "--out-dir", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", r.stderr);
    for page in [
        "proto.1",
        "proto-cotp.1",
        "proto-cotp-send.1",
        "proto-tcpcl-listen.1",
        "proto-decode.1",
    ] {
        assert!(dir.join(page).is_file(), "{page} missing; {}", r.stderr);
    }
    let send = std::fs::read_to_string(dir.join("proto-cotp-send.1")).unwrap();
    assert!(send.contains(".TH proto-cotp-send 1"), "{send}");
    assert!(send.contains("rack"), "flags documented");
    let _ = std::fs::remove_dir_all(&dir);
}
