//! The send policy of `poll_transmit` (RFC 9174 §5.2): what goes on the wire next,
//! and the caller's sources.
