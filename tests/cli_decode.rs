//! CLI tests for `proto decode`: run the real binary.
