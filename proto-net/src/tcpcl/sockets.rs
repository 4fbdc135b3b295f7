//! The agent's TCP plumbing: listeners with their accept threads, and outgoing
//! connections with a bound on the connect and an optional local address.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Connections the kernel queues for the accept thread: a burst of connects (a node
/// reconnecting all its sessions) must not lose SYNs to std's default backlog of 128,
/// which costs each lost one a second-long retransmission.
const LISTEN_BACKLOG: i32 = 1024;

/// A listening socket and the thread accepting on it.
pub(crate) struct Listener {
    stop: Arc<AtomicBool>,
    listener: TcpListener,
    local: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Binds `addr` (the first of its addresses that works) and accepts on a thread of
    /// its own, handing each connection (with the bound address) to `accept`;
    /// `accept` returning false (its owner is gone) ends the thread.
    pub(crate) fn spawn(
        addr: impl ToSocketAddrs,
        accept: impl Fn(SocketAddr, TcpStream) -> bool + Send + 'static,
    ) -> io::Result<Listener> {
        let listener = bind(addr)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept_on = listener.try_clone()?;
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tcpcl-listen-{}", local.port()))
            .spawn(move || {
                for conn in accept_on.incoming() {
                    if flag.load(Ordering::Acquire) {
                        break;
                    }
                    match conn {
                        Ok(s) => {
                            if !accept(local, s) {
                                break;
                            }
                        }
                        Err(e) => {
                            log::warn!("{local}: accept failed: {e}");
                            if matches!(e.kind(), io::ErrorKind::InvalidInput) {
                                break;
                            }
                        }
                    }
                }
            })?;
        Ok(Listener {
            stop,
            listener,
            local,
            thread: Some(thread),
        })
    }

    /// The bound address (useful with port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting and waits for the accept thread to end.
    pub(crate) fn halt(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the blocked accept (Linux returns EINVAL from accept on a shut-down
        // listener); elsewhere a connection to ourselves does it.
        if socket2::SockRef::from(&self.listener)
            .shutdown(std::net::Shutdown::Read)
            .is_err()
        {
            let _ = TcpStream::connect_timeout(&wake_addr(self.local), Duration::from_secs(1));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds a listener on the first address that works, with [`LISTEN_BACKLOG`] (also
/// the COTP listener's).
pub(crate) fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        let attempt = (|| {
            let s = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
            s.set_reuse_address(true)?;
            s.bind(&a.into())?;
            s.listen(LISTEN_BACKLOG)?;
            Ok::<TcpListener, io::Error>(s.into())
        })();
        match attempt {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

/// The address a connection to ourselves uses to wake a listener bound to `a`.
fn wake_addr(a: SocketAddr) -> SocketAddr {
    let mut w = a;
    if a.ip().is_unspecified() {
        w.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    w
}

/// Connects to `a` within `timeout`, from `local` when given.
pub(crate) fn connect(
    a: SocketAddr,
    local: Option<SocketAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(l) = local {
        s.bind(&l.into())?;
    }
    s.connect_timeout(&a.into(), timeout)?;
    Ok(s.into())
}
