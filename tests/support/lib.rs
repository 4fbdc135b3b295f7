//! Shared helpers for the integration tests.
//!
//! - [`pcap`]: synthesise a libpcap capture of one TCP conversation from payloads.
//! - [`tshark`]: run tshark over such a capture and query the decoded fields, expert
//!   items and malformed frames.
//! - [`peers`]: independent implementations (Python peers in a venv, dtn7's `dtnd`) run
//!   as bounded subprocesses, and live captures on `lo` checked with tshark, split by
//!   sender.
//! - [`skip`]: the policy for tests that need an outside peer: marked
//!   `#[ignore = "needs <peer>"]`, skipped with a printed reason when the peer is
//!   missing, fatal when `PROTO_REQUIRE_PEERS=1`.
//! - [`dtnd`]: dtn7-rs's `dtnd` on loopback, with `dtnsend` and `dtnrecv`.
//! - [`child`]: child processes killed on every exit path, output captured.
//! - [`cli`]: the `proto` binary's listeners started under a [`child::ChildGuard`].
//! - [`cotp_wire`]: COTP/TPKT TPDUs as raw bytes for hand-played peers.
//! - [`tcpcl`]: TCPCL agents over loopback: plaintext configurations, a connected
//!   pair, bounded waits for events and bundles, deterministic payloads, readers that
//!   block or fail, and a hashing sink.
//! - [`tcpcl_wire`]: a hand-played TCPCLv4 peer on a raw socket with its own decoder.
//! - [`tcpcl_policy`]: the core's send policy as the pair harness runs it.
//! - [`procfs`]: this process's threads, memory and open-file limit.
//! - [`soak`]: the fault-injection soak's seeded random source, size distribution,
//!   a proxy that resets, closes or hangs a connection at a chosen byte, and
//!   `/proc` readings of another process.
//! - [`bpv7`]: a minimal BPv7 bundle encoder/decoder (CBOR, CRC-16/CRC-32C) for the
//!   TCPCL interop tests.

pub mod bpv7;
pub mod child;
pub mod cli;
pub mod cotp_wire;
pub mod dtnd;
pub mod pcap;
pub mod peers;
pub mod procfs;
pub mod skip;
pub mod soak;
pub mod tcpcl;
pub mod tcpcl3_wire;
pub mod tcpcl_policy;
pub mod tcpcl_wire;
pub mod tshark;
