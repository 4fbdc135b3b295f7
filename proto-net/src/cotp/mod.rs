//! Blocking COTP over TCP: [`Connection`] (the seed API's `COTP_Connection`) and
//! [`Listener`].
//!
//! Connections run on the caller's thread over any [`Stream`]: a [`std::net::TcpStream`]
//! (connect by address), or a stream the caller configured, such as a TLS stream for
//! IEC 62351 secured MMS, wrapped in [`Unbounded`]. Each TPDU leaves in one write;
//! bulk data is framed into 64 KiB writes.

mod connection;
mod error;
mod listener;
mod stream;

pub use connection::{ConnectOptions, Connection, Received, ReceivedTpdu};
pub use error::{Error, Result};
pub use listener::{ListenOptions, Listener, TsapPolicy};
pub use stream::{Stream, Unbounded};

/// The TCP port of ISO transport over TCP (RFC 1006 "ISO-on-TCP").
pub const DEFAULT_PORT: u16 = 102;
