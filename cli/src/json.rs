//! Machine-readable output for `--json`: one compact JSON object per line on stdout
//! (JSON Lines), flushed at once so a script reading a pipe sees each as it happens.

use std::io::Write;

/// Prints `v` as one line on stdout. A closed stdout is not an error of the command:
/// the transfer it reports already happened.
pub(crate) fn print_line(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}
