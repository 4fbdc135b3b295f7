//! Blocking `std::net` runtime for proto: drives the `proto-core` state machines over
//! sockets for synchronous programs.
//!
//! - [`cotp`]: COTP class 0 connections and a listener (the seed API's
//!   `COTP_Connection`).
//! - [`tcpcl`]: the TCPCLv4 agent (the seed API's `tcpcl.agent.Agent`), with TLS.

pub mod cotp;
pub mod tcpcl;
