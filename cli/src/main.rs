//! The `proto` command line tool.
fn main() {}
