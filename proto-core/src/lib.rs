//! Sans-IO protocol cores for **COTP over TPKT** (ISO 8073 / X.224 class 0 in RFC 1006
//! framing) and **TCPCLv4** (RFC 9174).
//!
//! Nothing in this crate opens a socket, spawns a thread or reads the clock. Codecs
//! decode by borrowing from the caller's input and encode into the caller's buffer;
//! state machines take input bytes, timer ticks and commands, and hand back events and
//! output bytes, allocating nothing after construction and handshake.
//!
//! - [`wire`]: bounds-checked big-endian reader and writer every codec uses.
//! - [`tpkt`]: RFC 1006 framing.
//! - [`cotp`]: X.224 TPDUs and their parameters, and the class 0 connection state
//!   machine ([`cotp::connection`]).
//! - [`tcpcl`]: RFC 9174 contact header, messages and extension items, and the session
//!   state machine ([`tcpcl::session`]).
//! - `bpv7` (feature `bpv7`): BPv7 bundles (RFC 9171) built and verified with
//!   `hardy-bpv7`.
//! - [`s7`]: rack/slot addressing of S7 PLCs and the S7comm header inside COTP data.
//! - `testing` (feature `testing`): the deterministic pair harness for state-machine tests.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

#[cfg(feature = "bpv7")]
pub mod bpv7;
pub mod cotp;
mod ring;
pub mod s7;
pub mod tcpcl;
pub mod tpkt;
pub mod wire;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use wire::EncodeError;
