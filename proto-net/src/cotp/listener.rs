//! Accepting COTP connections: TSAP policy and size negotiation on the passive side.

use super::connection::Connection;
use super::error::{Error, Result};
use proto_core::cotp::{DisconnectReason, TpduSize, Tsap};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Decides on an incoming CR from its calling and called TSAPs: `Ok(())` accepts,
/// `Err(reason)` refuses with a DR.
pub type TsapPolicy =
    dyn Fn(Option<&Tsap>, Option<&Tsap>) -> Result<(), DisconnectReason> + Send + Sync;

/// How a listener answers connection requests.
#[derive(Clone)]
pub struct ListenOptions {
    /// Largest TPDU size accepted; larger proposals are negotiated down.
    pub max_tpdu_size: TpduSize,
    /// Answer only CRs calling this TSAP (DR "address unknown" otherwise); `None`
    /// answers any.
    pub local_tsap: Option<Tsap>,
    /// A policy applied after `local_tsap`, for anything more involved.
    pub policy: Option<Arc<TsapPolicy>>,
    /// Our reference in the CCs we send.
    pub src_ref: u16,
    /// Largest message accepted.
    pub max_message_size: usize,
    /// Bound on the wait for the CR after the TCP accept.
    pub handshake_timeout: Duration,
    /// Bound on each receive of accepted connections (`recv_data` returns
    /// [`Error::Timeout`](super::Error::Timeout) and keeps any partial message).
    pub timeout: Option<Duration>,
    /// Bound on each send of accepted connections. Separate from `timeout` so a short
    /// receive bound (used to poll for shutdown) never cuts a large write short.
    pub write_timeout: Option<Duration>,
    /// Close a connection that receives nothing for this long.
    pub inactivity_timeout: Option<Duration>,
    /// Select RFC 1006 expedited data in the CC when a CR proposes it (otherwise the
    /// CC leaves it out and a received ED is answered with an ER).
    pub expedited: bool,
}

impl core::fmt::Debug for ListenOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ListenOptions")
            .field("max_tpdu_size", &self.max_tpdu_size)
            .field("local_tsap", &self.local_tsap)
            .field("policy", &self.policy.is_some())
            .field("src_ref", &self.src_ref)
            .field("max_message_size", &self.max_message_size)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("timeout", &self.timeout)
            .field("write_timeout", &self.write_timeout)
            .field("inactivity_timeout", &self.inactivity_timeout)
            .field("expedited", &self.expedited)
            .finish()
    }
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            max_tpdu_size: TpduSize::S8192,
            local_tsap: None,
            policy: None,
            src_ref: 1,
            max_message_size: 1 << 20,
            handshake_timeout: Duration::from_secs(10),
            timeout: None,
            write_timeout: None,
            inactivity_timeout: None,
            expedited: false,
        }
    }
}

/// A TCP listener that accepts COTP connections.
///
/// ```no_run
/// use proto_net::cotp::{Listener, ListenOptions};
/// let listener = Listener::bind("127.0.0.1:1102", ListenOptions::default())?;
/// listener.serve(|mut conn| {
///     while let Ok(msg) = conn.recv_data() {
///         conn.send_data(&msg)?;
///     }
///     Ok(())
/// })?;
/// # Ok::<(), proto_net::cotp::Error>(())
/// ```
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    opts: ListenOptions,
}

impl Listener {
    /// Binds to `addr`, with a listen backlog of 1024: a burst of connections (or a
    /// flood of idle ones) must not make a client's SYN wait a second for its
    /// retransmission, as std's backlog of 128 would.
    pub fn bind(addr: impl ToSocketAddrs, opts: ListenOptions) -> Result<Self> {
        Ok(Listener {
            tcp: crate::tcpcl::sockets::bind(addr)?,
            opts,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.tcp.local_addr()?)
    }

    /// Accepts the next TCP connection and runs the passive handshake on it. A peer
    /// that is refused or fails the handshake gives an error; the listener stays
    /// usable.
    pub fn accept(&self) -> Result<(Connection, SocketAddr)> {
        let (stream, peer) = self.tcp.accept()?;
        Ok((self.handshake(stream)?, peer))
    }

    /// Accepts the next TCP connection without running the handshake, so a server can
    /// run [`handshake`](Self::handshake) on the connection's own thread: a peer that
    /// connects and stays silent then delays nobody else.
    pub fn accept_tcp(&self) -> Result<(TcpStream, SocketAddr)> {
        Ok(self.tcp.accept()?)
    }

    /// Runs the passive handshake on an accepted stream.
    pub fn handshake(&self, stream: TcpStream) -> Result<Connection> {
        stream.set_nodelay(true)?;
        Connection::accept_over(stream, &self.opts)
    }

    /// Serves every connection on its own thread with `handler`, until accepting fails.
    /// Handshake failures are logged and skipped.
    pub fn serve<F>(&self, handler: F) -> Result<()>
    where
        F: Fn(Connection) -> Result<()> + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        loop {
            let (stream, peer) = self.tcp.accept()?;
            let opts = self.opts.clone();
            let handler = Arc::clone(&handler);
            std::thread::Builder::new()
                .name(format!("cotp {peer}"))
                .spawn(move || {
                    let conn = stream
                        .set_nodelay(true)
                        .map_err(Error::Io)
                        .and_then(|()| Connection::accept_over(stream, &opts));
                    match conn {
                        Ok(conn) => {
                            if let Err(e) = handler(conn) {
                                log::info!("COTP connection from {peer} ended: {e}");
                            }
                        }
                        Err(e) => log::info!("COTP handshake with {peer} failed: {e}"),
                    }
                })
                .map_err(Error::Io)?;
        }
    }
}
