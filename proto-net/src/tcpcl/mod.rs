//! A blocking TCPCLv4 (RFC 9174) agent: the seed API's `tcpcl.agent.Agent` and its
//! `ContactHandler` sessions, on `std::net` sockets and threads, with rustls TLS.
//!
//! - [`Agent`]: `listen` / `listen_stop` / `connect`, the session registry
//!   ([`Agent::sessions`], [`Agent::session`]), graceful [`Agent::shutdown`] and
//!   immediate [`Agent::stop`], and [`Agent::run`] (the seed's `exec_loop`).
//! - [`SessionHandle`]: send a bundle from bytes, a file or any reader (streamed),
//!   session parameters, terminate with a reason.
//! - [`Event`]s on a bounded crossbeam channel ([`Agent::events`]): sessions opened,
//!   changing state and closed; transfers started, progressing, finished, refused;
//!   bundles received. Incoming bundles go to a [`Sink`] chosen per transfer: memory,
//!   a file (a 100 MiB bundle streams to disk), or any writer.
//! - [`Config`]: the seed's option names, loadable from YAML (`docs/config-tcpcl.md`).
//!
//! # Threads
//!
//! One thread per session owns everything of it: the non-blocking socket, the sans-IO
//! [`proto_core::tcpcl::Session`], the rustls connection, the sinks of incoming
//! bundles and the sources of outgoing ones. It sleeps in one `ppoll` on its socket
//! with the core's next deadline as timeout, and handles wake it with a
//! thread-directed signal (no extra file descriptor per session). The core decides
//! what goes on the wire next; the loop appends each segment's payload straight from
//! the bundle's buffer. A [`Handler`] runs on that thread for the lowest latency;
//! events also go to a bounded channel, and a full channel pauses reading — never
//! acknowledging, keeping alive or terminating, except that a bundle's last XFER_ACK
//! waits until its [`Event::BundleReceived`] is on the channel (what the peer sees
//! acknowledged, the application has). A bundle from a reader that may block
//! is read by one helper thread into a small queue. See `docs/architecture.md`.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use proto_net::tcpcl::{Agent, Config, Event, ReceivedBundle};
//!
//! # fn main() -> Result<(), proto_net::tcpcl::Error> {
//! let mut rx_cfg = Config::with_node_id("dtn://receiver/");
//! rx_cfg.tls_enable = false;
//! let receiver = Agent::new(rx_cfg)?;
//! let events = receiver.events();
//! let addr = receiver.listen("127.0.0.1:0")?;
//!
//! let sender = Agent::new(Config::with_node_id("dtn://sender/"))?;
//! let session = sender.connect(addr)?;
//! session.wait_established(Duration::from_secs(5))?;
//! session.send_bytes(b"hello bundle".to_vec())?;
//! session.send_file("/tmp/big.bundle")?; // streamed, never read whole
//! session.wait_sent(Duration::from_secs(60))?;
//!
//! while let Ok(ev) = events.recv_timeout(Duration::from_secs(5)) {
//!     if let Event::BundleReceived { bundle: ReceivedBundle::Bytes(b), .. } = ev {
//!         println!("got {} bytes", b.len());
//!     }
//! }
//! sender.shutdown();
//! sender.run(); // returns once every session has terminated
//! # Ok(())
//! # }
//! ```

mod agent;
mod busy;
mod close;
mod config;
mod driver;
mod error;
mod events;
mod handle;
mod report;
mod shared;
mod sink;
pub(crate) mod sockets;
mod target;
pub mod tls;
mod tls_glue;
mod wake;

pub use agent::{Agent, ConnectOptions};
pub use close::{CloseReason, IoOp, SourceFailure, TlsFailure};
pub use config::{Config, ConnectConfig, ListenConfig, DEFAULT_PORT};
pub use error::{ConfigError, Error, Result};
pub use events::{Direction, Event, ReceivedBundle, SessionId, SessionParams};
pub use handle::SessionHandle;
pub use proto_core::tcpcl::{SessTermReason, Side, State, XferRefuseReason};
pub use report::{Handler, Reply};
pub use sink::{IncomingTransfer, Sink, SinkChooser};
pub use target::ConnectTarget;
pub use tls_glue::TlsInfo;
