//! Shared helpers for the integration tests.
//!
//! - [`pcap`]: synthesise a libpcap capture of one TCP conversation from payloads.
//! - [`tshark`]: run tshark over such a capture and query the decoded fields, expert
//!   items and malformed frames (with the skip policy for missing peers).

pub mod pcap;
pub mod tshark;
