//! [`SessionHandle`]: the application's handle on one running session (the seed's
//! `ContactHandler`).

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use proto_core::tcpcl::{SessTermReason, Side, State};

use super::error::{Error, Result};
use super::events::{CloseReason, SessionId, SessionParams};
use super::tls_glue::TlsInfo;

/// A bundle to send.
pub(crate) enum Source {
    /// Bytes already in memory.
    Bytes(Vec<u8>),
    /// A stream, read chunk by chunk on a helper thread; `len` when known up front.
    Reader {
        reader: Box<dyn Read + Send>,
        len: Option<u64>,
    },
}

impl Source {
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Source::Bytes(b) => Some(b.len() as u64),
            Source::Reader { len, .. } => *len,
        }
    }
}

/// A request to send a bundle; answered with the transfer ID once the session thread
/// has registered it.
pub(crate) struct SendRequest {
    pub(crate) source: Source,
    pub(crate) reply: Sender<Result<u64>>,
}

/// Commands to the session thread.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    /// SESS_TERM now with this reason.
    Terminate(SessTermReason),
    /// Finish every submitted bundle, then SESS_TERM with this reason.
    Shutdown(SessTermReason),
    /// Close at once.
    Close,
}

/// What the session thread publishes for handles.
#[derive(Debug, Clone)]
pub(crate) struct Info {
    pub(crate) state: State,
    pub(crate) params: Option<SessionParams>,
    pub(crate) tls: Option<TlsInfo>,
    pub(crate) close_reason: Option<CloseReason>,
    /// Submitted outgoing bundles not yet finished, refused or cancelled.
    pub(crate) outgoing_pending: usize,
    /// Incoming transfers in progress.
    pub(crate) incoming_active: usize,
    /// The thread has exited (the socket is closed).
    pub(crate) done: bool,
    /// A graceful shutdown was requested: no new sends.
    pub(crate) draining: bool,
}

/// State shared between a session thread and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: SessionId,
    pub(crate) side: Side,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    pub(crate) info: Mutex<Info>,
    pub(crate) changed: Condvar,
    pub(crate) cmd_tx: Sender<Command>,
    pub(crate) send_tx: Sender<SendRequest>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Info> {
        self.info.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Info)) {
        let mut g = self.lock();
        f(&mut g);
        drop(g);
        self.changed.notify_all();
    }

    /// Waits until `f` returns `Some`, or the deadline passes.
    fn wait_for<T>(&self, timeout: Duration, mut f: impl FnMut(&Info) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if let Some(v) = f(&g) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = self
                .changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A handle on one session (cheap to clone). The session runs on its own threads; the
/// handle sends it commands and reads what it publishes.
///
/// Sending blocks for backpressure: a `send_*` call returns once the session thread has
/// registered the transfer, which waits while `max_queued_transfers` bundles are
/// already in the session's queue, and until the session is established.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub(crate) shared: Arc<Shared>,
}

impl SessionHandle {
    /// The session's identifier.
    pub fn id(&self) -> SessionId {
        self.shared.id
    }

    /// Our side (active: we connected).
    pub fn side(&self) -> Side {
        self.shared.side
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer_addr
    }

    /// Our socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The current state (the seed's `get_session_state`).
    pub fn state(&self) -> State {
        self.shared.lock().state
    }

    /// Negotiated parameters, once established (the seed's `get_session_parameters`).
    pub fn parameters(&self) -> Option<SessionParams> {
        self.shared.lock().params.clone()
    }

    /// TLS details and authentication results, once TLS is up.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.shared.lock().tls.clone()
    }

    /// Whether TLS is in use (the seed's `is_secure`).
    pub fn is_secure(&self) -> bool {
        self.shared.lock().tls.is_some()
    }

    /// Whether no transfer is queued or in progress in either direction (the seed's
    /// `is_sess_idle`).
    pub fn is_idle(&self) -> bool {
        let g = self.shared.lock();
        g.outgoing_pending == 0 && g.incoming_active == 0
    }

    /// Why the session closed, once closed.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.lock().close_reason.clone()
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().done
    }

    /// Waits until the session is established and returns its parameters.
    pub fn wait_established(&self, timeout: Duration) -> Result<SessionParams> {
        let r = self.shared.wait_for(timeout, |i| {
            if let Some(p) = &i.params {
                Some(Ok(p.clone()))
            } else if i.done || i.close_reason.is_some() {
                Some(Err(Error::SessionClosed))
            } else {
                None
            }
        });
        r.unwrap_or(Err(Error::Timeout("session establishment")))
    }

    /// Waits until the session is over and returns why it closed.
    pub fn wait_closed(&self, timeout: Duration) -> Result<CloseReason> {
        self.shared
            .wait_for(timeout, |i| {
                if i.done {
                    Some(i.close_reason.clone().unwrap_or(CloseReason::LocalClose))
                } else {
                    None
                }
            })
            .ok_or(Error::Timeout("session close"))
    }

    /// Waits until every bundle submitted so far has finished (acknowledged in full,
    /// refused or cancelled). Fails if the session closes first with bundles pending.
    pub fn wait_sent(&self, timeout: Duration) -> Result<()> {
        self.shared
            .wait_for(timeout, |i| {
                if i.outgoing_pending == 0 {
                    Some(Ok(()))
                } else if i.done {
                    Some(Err(Error::SessionClosed))
                } else {
                    None
                }
            })
            .unwrap_or(Err(Error::Timeout("outgoing transfers")))
    }

    fn submit(&self, source: Source) -> Result<u64> {
        if self.shared.lock().draining {
            return Err(Error::Terminating);
        }
        let (reply, rx) = bounded(1);
        self.shared
            .send_tx
            .send(SendRequest { source, reply })
            .map_err(|_| Error::SessionClosed)?;
        // The session thread answers at once while it runs. A session that ends after
        // the request was queued may never take it, so the wait also watches the
        // session's end instead of blocking forever.
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(answer) => return answer,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(Error::SessionClosed)
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if self.shared.lock().done {
                        return Err(Error::SessionClosed);
                    }
                }
            }
        }
    }

    /// Sends a bundle held in memory (the seed's `send_bundle_data`); returns its
    /// transfer ID.
    pub fn send_bytes(&self, data: impl Into<Vec<u8>>) -> Result<u64> {
        self.submit(Source::Bytes(data.into()))
    }

    /// Sends a file's contents, streamed (the seed's `send_bundle_file`).
    pub fn send_file(&self, path: impl AsRef<Path>) -> Result<u64> {
        let f = File::open(path.as_ref())?;
        let len = f.metadata()?.len();
        self.submit(Source::Reader {
            reader: Box::new(f),
            len: Some(len),
        })
    }

    /// Sends everything `reader` yields, streamed (the seed's `send_bundle_fileobj`).
    /// With `len`, the Transfer Length extension announces it and the reader must yield
    /// exactly that many bytes; without, the transfer ends with an empty END segment
    /// once the reader reports end of file.
    ///
    /// TCPCL cannot abandon a transfer it has started, so if the reader fails, yields
    /// a different length than announced, or (without `len`) grows past the peer's
    /// Transfer MRU, the session is closed ([`CloseReason::SourceFailed`]).
    pub fn send_reader(&self, reader: impl Read + Send + 'static, len: Option<u64>) -> Result<u64> {
        self.submit(Source::Reader {
            reader: Box::new(reader),
            len,
        })
    }

    /// Terminates the session now with SESS_TERM `reason` (the seed's `terminate`):
    /// transfers already started complete, bundles queued behind them are cancelled.
    pub fn terminate(&self, reason: SessTermReason) -> Result<()> {
        self.command(Command::Terminate(reason))
    }

    /// Gracefully ends the session: every bundle already submitted is sent, then
    /// SESS_TERM `reason` is exchanged and the session closes. New sends fail.
    pub fn shutdown(&self, reason: SessTermReason) -> Result<()> {
        self.shared.update(|i| i.draining = true);
        self.command(Command::Shutdown(reason))
    }

    /// Closes the connection immediately (the seed's `close`).
    pub fn close(&self) {
        let _ = self.command(Command::Close);
    }

    fn command(&self, c: Command) -> Result<()> {
        self.shared.cmd_tx.send(c).map_err(|_| Error::SessionClosed)
    }
}
