//! Shared helpers for the integration tests.
//!
//! - [`pcap`]: synthesise a libpcap capture of one TCP conversation from payloads.
//! - [`tshark`]: run tshark over such a capture and query the decoded fields, expert
//!   items and malformed frames (with the skip policy for missing peers).
//! - [`peers`]: independent implementations (Python peers in a venv) run as bounded
//!   subprocesses, and live captures on `lo` checked with tshark, split by sender.

pub mod pcap;
pub mod peers;
pub mod tshark;
