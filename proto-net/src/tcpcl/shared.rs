//! What a session thread publishes for its handles, and the commands it takes.
//!
//! The session thread is the only writer. Handles read the hot facts (state, counts)
//! from atomics without locking; the rarely changing ones (parameters, TLS details,
//! close reason) sit behind a mutex. Handles that wait for something (establishment,
//! all bundles sent, the close) sleep on a condition variable that the session thread
//! notifies when one of those facts changes — never on a timer.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use proto_core::tcpcl::{SessTermReason, Side, State};

use super::close::CloseReason;
use super::error::Result;
use super::events::{SessionId, SessionParams};
use super::tls_glue::TlsInfo;
use super::wake::Waker;

/// A bundle to send, as the application handed it over.
pub(crate) enum Source {
    /// Bytes in memory: segments are written straight from them.
    Bytes(Vec<u8>),
    /// A regular file of known length, read on the session thread as segments go out.
    File {
        /// The open file.
        file: std::fs::File,
        /// Its length when opened.
        len: u64,
    },
    /// A stream that may block (pipe, socket, generator): read on a helper thread into
    /// a bounded queue, so it never stalls the session thread.
    Reader {
        /// The stream.
        reader: Box<dyn Read + Send>,
        /// Its length, when known up front.
        len: Option<u64>,
    },
}

impl Source {
    /// The bundle's length, when known before sending.
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Source::Bytes(b) => Some(b.len() as u64),
            Source::File { len, .. } => Some(*len),
            Source::Reader { len, .. } => *len,
        }
    }
}

/// A request to send a bundle, answered with its transfer ID once registered.
pub(crate) struct SendRequest {
    pub(crate) source: Source,
    pub(crate) reply: AnswerTx,
}

/// The one answer to a send request: the caller sleeps on a condition variable (a
/// channel's receiver would spin and yield first, competing with the session thread
/// for a CPU on small machines).
#[derive(Debug, Default)]
struct Answer {
    slot: Mutex<Option<Result<u64>>>,
    ready: Condvar,
}

/// The session thread's end of an answer; dropped unanswered, it answers
/// [`Error::SessionClosed`](super::error::Error::SessionClosed).
#[derive(Debug)]
pub(crate) struct AnswerTx(Option<Arc<Answer>>);

/// The caller's end of an answer.
#[derive(Debug)]
pub(crate) struct AnswerRx(Arc<Answer>);

/// A fresh answer pair.
pub(crate) fn answer() -> (AnswerTx, AnswerRx) {
    let a = Arc::new(Answer::default());
    (AnswerTx(Some(a.clone())), AnswerRx(a))
}

impl AnswerTx {
    /// Answers the request.
    pub(crate) fn send(mut self, r: Result<u64>) {
        if let Some(a) = self.0.take() {
            *a.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            a.ready.notify_one();
        }
    }
}

impl Drop for AnswerTx {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            *a.slot.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Err(super::error::Error::SessionClosed));
            a.ready.notify_one();
        }
    }
}

impl AnswerRx {
    /// Waits for the answer.
    pub(crate) fn wait(self) -> Result<u64> {
        let mut g = self.0.slot.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.0.ready.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// What handles ask of their session thread.
pub(crate) enum Command {
    /// Send a bundle.
    Send(SendRequest),
    /// SESS_TERM now with this reason.
    Terminate(SessTermReason),
    /// Finish every submitted bundle, then SESS_TERM with this reason.
    Shutdown(SessTermReason),
    /// Close at once.
    Close,
}

/// The rarely changing facts, behind the mutex.
#[derive(Debug, Default)]
pub(crate) struct Slow {
    pub(crate) params: Option<SessionParams>,
    pub(crate) tls: Option<TlsInfo>,
    pub(crate) close_reason: Option<CloseReason>,
}

/// Shared between a session thread and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: SessionId,
    pub(crate) side: Side,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    pub(crate) waker: Arc<Waker>,
    pub(crate) commands: Sender<Command>,
    state: AtomicU8,
    outgoing_pending: AtomicUsize,
    incoming_active: AtomicUsize,
    /// A graceful shutdown was requested: no new sends.
    pub(crate) draining: AtomicBool,
    /// The session thread finished (the socket is closed).
    done: AtomicBool,
    slow: Mutex<Slow>,
    changed: Condvar,
    /// Handles waiting on `changed`: without any, a change notifies nobody (a
    /// notification costs a system call on every transfer otherwise).
    waiters: AtomicUsize,
}

const STATES: [State; 7] = [
    State::Contact,
    State::TlsHandshake,
    State::SessionInit,
    State::Established,
    State::Ending,
    State::Closing,
    State::Closed,
];

fn state_code(s: State) -> u8 {
    STATES.iter().position(|x| *x == s).unwrap_or(6) as u8
}

impl Shared {
    pub(crate) fn new(
        id: SessionId,
        side: Side,
        addrs: (SocketAddr, SocketAddr),
        waker: Arc<Waker>,
        commands: Sender<Command>,
    ) -> Shared {
        Shared {
            id,
            side,
            peer_addr: addrs.0,
            local_addr: addrs.1,
            waker,
            commands,
            state: AtomicU8::new(state_code(State::Contact)),
            outgoing_pending: AtomicUsize::new(0),
            incoming_active: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            done: AtomicBool::new(false),
            slow: Mutex::new(Slow::default()),
            changed: Condvar::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    pub(crate) fn slow(&self) -> MutexGuard<'_, Slow> {
        self.slow.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state(&self) -> State {
        STATES[usize::from(self.state.load(Ordering::Acquire)).min(6)]
    }

    pub(crate) fn outgoing_pending(&self) -> usize {
        self.outgoing_pending.load(Ordering::Acquire)
    }

    pub(crate) fn incoming_active(&self) -> usize {
        self.incoming_active.load(Ordering::Acquire)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Publishes the hot facts; waiters are woken only when something they wait for
    /// changed.
    pub(crate) fn publish(&self, state: State, outgoing: usize, incoming: usize) {
        let code = state_code(state);
        let old_state = self.state.swap(code, Ordering::AcqRel);
        let old_out = self.outgoing_pending.swap(outgoing, Ordering::AcqRel);
        self.incoming_active.store(incoming, Ordering::Release);
        if old_state != code || (old_out != outgoing && outgoing == 0) {
            self.notify();
        }
    }

    /// Changes the slow facts and wakes waiters.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Slow)) {
        f(&mut self.slow());
        self.notify();
    }

    /// The session thread is gone.
    pub(crate) fn finish(&self, state: State, reason: CloseReason) {
        {
            let mut g = self.slow();
            g.close_reason = Some(reason);
            self.state.store(state_code(state), Ordering::Release);
            self.outgoing_pending.store(0, Ordering::Release);
            self.incoming_active.store(0, Ordering::Release);
            self.done.store(true, Ordering::Release);
        }
        self.changed.notify_all();
    }

    fn notify(&self) {
        // A waiter registers before it checks (under the lock), so either it sees the
        // change or it is counted here; taking the lock orders this notification after
        // its check.
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        drop(self.slow());
        self.changed.notify_all();
    }

    /// Waits until `f` returns `Some`, or the deadline passes.
    pub(crate) fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&Shared, &Slow) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut g = self.slow();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _registered = Registered(&self.waiters);
        loop {
            if let Some(v) = f(self, &g) {
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

/// Counts a waiter for as long as it waits.
struct Registered<'a>(&'a AtomicUsize);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
