//! The policy for tests that need an outside peer (tshark, a live capture, the Python
//! peers, dtn7's `dtnd`).
//!
//! - Such a test is marked `#[ignore = "needs <peer>"]`, so a plain `cargo test` lists
//!   it as *ignored* in its summary instead of reporting a pass it never earned; `cargo
//!   test -- --include-ignored` runs it. [`assert_marked_ignored`], called by every peer
//!   lookup, enforces the mark: a test that reaches a peer without it fails, whether or
//!   not the peer is installed, so a new peer test cannot slip in unmarked.
//! - When a run includes the ignored tests and the peer is missing, [`skip_peer`] prints
//!   `skipping: <peer> <why>` to stderr and the test returns early, unless
//!   `PROTO_REQUIRE_PEERS=1` (as in CI), which turns the skip into a failure.

use std::collections::HashSet;
use std::process::Command;
use std::sync::OnceLock;

/// Environment variable that turns a missing peer from a skip into a panic.
pub const REQUIRE_PEERS_ENV: &str = "PROTO_REQUIRE_PEERS";

/// Whether `PROTO_REQUIRE_PEERS=1` is set.
pub fn peers_required() -> bool {
    std::env::var(REQUIRE_PEERS_ENV).is_ok_and(|v| v == "1")
}

/// The skip policy for a peer that is unusable (`why`, e.g. `not found on PATH` or
/// `cannot import snap7`): prints `skipping: <name> <why>` to stderr, so the caller can
/// return early.
///
/// # Panics
///
/// Deliberately, when `PROTO_REQUIRE_PEERS=1` is set: CI must not skip silently.
#[allow(clippy::panic)] // A deliberate test failure.
pub fn skip_peer(name: &str, why: &str) {
    if peers_required() {
        panic!("{name} {why} and {REQUIRE_PEERS_ENV}=1 is set");
    }
    eprintln!("skipping: {name} {why} (set {REQUIRE_PEERS_ENV}=1 to make this fatal)");
}

/// Fails the running test unless it is marked `#[ignore = "needs ..."]`; `peer` names
/// what it was about to use.
///
/// The running test is the current thread's name (libtest names each test's thread
/// after the test); the ignored tests are what this test binary lists with `--list
/// --ignored`, asked once per binary. Outside a libtest thread (no name, or `main`)
/// there is nothing to check.
///
/// # Panics
///
/// Deliberately, when the running test is not marked ignored, or when the test binary
/// cannot list its ignored tests.
#[allow(clippy::panic)] // A deliberate test failure.
pub fn assert_marked_ignored(peer: &str) {
    let thread = std::thread::current();
    let Some(test) = thread.name().filter(|n| *n != "main") else {
        return;
    };
    static IGNORED: OnceLock<Result<HashSet<String>, String>> = OnceLock::new();
    let ignored = match IGNORED.get_or_init(list_ignored_tests) {
        Ok(set) => set,
        Err(why) => panic!("cannot tell whether `{test}` is marked #[ignore]: {why}"),
    };
    if !ignored.contains(test) {
        panic!(
            "test `{test}` uses {peer} but is not marked #[ignore = \"needs {peer}\"]: \
             without the mark a plain `cargo test` reports it as passed when {peer} is \
             missing"
        );
    }
}

/// Runs this test binary with `--list --ignored` and collects the test names.
fn list_ignored_tests() -> Result<HashSet<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = Command::new(&exe)
        .args(["--list", "--ignored", "--format", "terse"])
        .output()
        .map_err(|e| format!("{} --list --ignored: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --list --ignored exited with {}",
            exe.display(),
            out.status
        ));
    }
    Ok(parse_test_list(&String::from_utf8_lossy(&out.stdout)))
}

/// Test names from libtest's `--list --format terse` output (`name: test` lines).
fn parse_test_list(listing: &str) -> HashSet<String> {
    listing
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_list_keeps_tests_and_drops_benches() {
        let listing = "a: test\nmodule::b: test\nc: bench\n";
        let names = parse_test_list(listing);
        assert_eq!(
            names,
            HashSet::from(["a".to_owned(), "module::b".to_owned()])
        );
    }

    #[test]
    #[should_panic(expected = "is not marked #[ignore")]
    fn an_unmarked_test_that_reaches_a_peer_fails() {
        assert_marked_ignored("tshark");
    }
}
