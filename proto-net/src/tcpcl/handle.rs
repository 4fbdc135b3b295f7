//! [`SessionHandle`]: the application's handle on one running session (the seed's
//! `ContactHandler`) — a command sender, the session thread's waker, and reads of what
//! the session thread publishes.

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proto_core::tcpcl::{SessTermReason, Side, State};

use super::close::CloseReason;
use super::error::{Error, Result};
use super::events::{SessionId, SessionParams};
use super::shared::{answer, Command, SendRequest, Shared, Source};
use super::tls_glue::TlsInfo;

/// A handle on one session (cheap to clone). The session runs on its own thread; the
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
        self.shared.state()
    }

    /// Negotiated parameters, once established (the seed's `get_session_parameters`).
    pub fn parameters(&self) -> Option<SessionParams> {
        self.shared.slow().params.clone()
    }

    /// TLS details and authentication results, once TLS is up.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.shared.slow().tls.clone()
    }

    /// Whether TLS is in use (the seed's `is_secure`).
    pub fn is_secure(&self) -> bool {
        self.shared.slow().tls.is_some()
    }

    /// Whether no transfer is queued or in progress in either direction (the seed's
    /// `is_sess_idle`).
    pub fn is_idle(&self) -> bool {
        self.shared.outgoing_pending() == 0 && self.shared.incoming_active() == 0
    }

    /// Why the session closed, once closed.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.slow().close_reason.clone()
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.shared.is_done()
    }

    /// Waits until the session is established and returns its parameters.
    pub fn wait_established(&self, timeout: Duration) -> Result<SessionParams> {
        let r = self.shared.wait_for(timeout, |sh, slow| {
            if let Some(p) = &slow.params {
                Some(Ok(p.clone()))
            } else if sh.is_done() || slow.close_reason.is_some() {
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
            .wait_for(timeout, |sh, slow| {
                sh.is_done()
                    .then(|| slow.close_reason.clone().unwrap_or(CloseReason::LocalClose))
            })
            .ok_or(Error::Timeout("session close"))
    }

    /// Waits until every bundle submitted so far has finished (acknowledged in full,
    /// refused or cancelled). Fails if the session closes first with bundles pending.
    pub fn wait_sent(&self, timeout: Duration) -> Result<()> {
        self.shared
            .wait_for(timeout, |sh, _| {
                if sh.outgoing_pending() == 0 {
                    Some(Ok(()))
                } else if sh.is_done() {
                    Some(Err(Error::SessionClosed))
                } else {
                    None
                }
            })
            .unwrap_or(Err(Error::Timeout("outgoing transfers")))
    }

    fn submit(&self, source: Source) -> Result<u64> {
        if self
            .shared
            .draining
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(Error::Terminating);
        }
        let (reply, answer) = answer();
        self.command(Command::Send(SendRequest { source, reply }))?;
        // The session thread answers every request it takes, and drops the ones still
        // queued when it ends (which disconnects the reply channel): this never hangs.
        answer.wait()
    }

    /// Sends a bundle held in memory (the seed's `send_bundle_data`); returns its
    /// transfer ID. Segments are written straight from it.
    pub fn send_bytes(&self, data: impl Into<Vec<u8>>) -> Result<u64> {
        self.submit(Source::Bytes(data.into()))
    }

    /// Sends a file's contents, streamed (the seed's `send_bundle_file`): the session
    /// thread reads each segment from the file as it goes out.
    pub fn send_file(&self, path: impl AsRef<Path>) -> Result<u64> {
        let path = path.as_ref();
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        self.submit(Source::File { file, len })
    }

    /// Sends everything `reader` yields, streamed (the seed's `send_bundle_fileobj`).
    /// The reader is read on a helper thread into a small bounded queue, so a reader
    /// that blocks (a pipe, a socket) never delays the session's acknowledgements or
    /// timers. With `len`, the Transfer Length extension announces it and the reader
    /// must yield that many bytes; without, the transfer ends with an empty END segment
    /// once the reader reports end of file.
    ///
    /// TCPCL cannot abandon a transfer it has started, so if the reader fails, ends
    /// before `len`, or (without `len`) grows past the peer's Transfer MRU, the session
    /// is closed ([`CloseReason::SourceFailed`]).
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
        self.shared
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
        self.command(Command::Shutdown(reason))
    }

    /// Closes the connection immediately (the seed's `close`), without SESS_TERM. The
    /// XFER_ACKs of segments already received still go out when they can be written at
    /// once, between messages (RFC 9174 §6.1); nothing else is sent.
    pub fn close(&self) {
        let _ = self.command(Command::Close);
    }

    fn command(&self, c: Command) -> Result<()> {
        self.shared
            .commands
            .send(c)
            .map_err(|_| Error::SessionClosed)?;
        self.shared.waker.wake();
        Ok(())
    }
}
