//! How a session thread sleeps and how it is woken: one `ppoll` on its socket with the
//! next deadline as timeout, interrupted by a thread-directed signal when a handle,
//! a source helper or the agent has something for it.
//!
//! # Why a signal and not an eventfd
//!
//! The obvious waker is an eventfd (or a poller crate's notifier) per session, polled
//! beside the socket. That costs one or two file descriptors per session on top of
//! the socket, and a listener must hold 10,000 idle sessions within a per-process
//! descriptor limit of 20,000. A signal costs no descriptor: the session thread keeps
//! [`WAKE_SIGNAL`] blocked except inside `ppoll`, which unblocks it atomically for the
//! duration of the wait. A signal sent while the thread is busy stays pending and makes
//! the next `ppoll` return at once, so no wake-up is ever lost; a signal is sent only
//! when the thread announced that it is going to sleep, so a busy session costs its
//! wakers one atomic operation. `SIGURG` is used because nothing else in a process
//! normally uses it (it is ignored by default and only sent for TCP urgent data to a
//! socket owner that asked for it with `F_SETOWN`, which this runtime never does);
//! signal-hook installs the handler once, chaining any handler installed before.
//! Measured: `docs/architecture.md` ("Waking a session").

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{ppoll, PollFd, PollFlags};
#[cfg(not(target_os = "linux"))]
use nix::sys::pthread::{pthread_kill, pthread_self, Pthread};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::time::TimeSpec;

/// The signal that interrupts a sleeping session thread.
pub(crate) const WAKE_SIGNAL: Signal = Signal::SIGURG;

const RUNNING: u8 = 0;
const SLEEPING: u8 = 1;
const EXITED: u8 = 2;

/// The waking half, shared with everyone who may have work for the session thread.
#[derive(Debug)]
pub(crate) struct Waker {
    state: AtomicU8,
    /// Set by [`Waker::wake`]; taken by the sleeper before it sleeps and after it woke.
    notified: AtomicBool,
    thread: OnceLock<Target>,
    /// Held for reading while signalling, for writing when the thread exits: a signal is
    /// never sent to a thread that is gone (its id could belong to another by then).
    alive: RwLock<()>,
}

impl Waker {
    /// A waker for a session thread that has not started yet.
    pub(crate) fn new() -> Arc<Waker> {
        Arc::new(Waker {
            state: AtomicU8::new(RUNNING),
            notified: AtomicBool::new(false),
            thread: OnceLock::new(),
            alive: RwLock::new(()),
        })
    }

    /// Makes the session thread look at its queues soon: at once if it sleeps, else
    /// before it next sleeps.
    pub(crate) fn wake(&self) {
        if self.notified.swap(true, Ordering::SeqCst) {
            // Already notified and not yet seen: that notification covers this one.
            return;
        }
        if self.state.load(Ordering::SeqCst) != SLEEPING {
            return;
        }
        let _alive = self.alive.read().unwrap_or_else(|p| p.into_inner());
        if self.state.load(Ordering::SeqCst) == EXITED {
            return;
        }
        if let Some(t) = self.thread.get() {
            t.signal();
        }
    }
}

/// What woke the sleeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// The socket can be read (or has an error or hang-up to report).
    pub(crate) readable: bool,
    /// The socket can be written.
    pub(crate) writable: bool,
}

/// The sleeping half, owned by the session thread.
#[derive(Debug)]
pub(crate) struct Sleeper {
    waker: Arc<Waker>,
    /// The thread's signal mask without [`WAKE_SIGNAL`]: what `ppoll` waits with.
    wait_mask: SigSet,
}

impl Sleeper {
    /// Binds `waker` to the calling thread: installs the (process-wide, once) handler
    /// for [`WAKE_SIGNAL`] and blocks it in this thread outside of [`Sleeper::wait`].
    pub(crate) fn bind(waker: Arc<Waker>) -> io::Result<Sleeper> {
        install_handler()?;
        let mut blocked = SigSet::empty();
        blocked.add(WAKE_SIGNAL);
        blocked.thread_block().map_err(io::Error::from)?;
        let mut wait_mask = SigSet::thread_get_mask().map_err(io::Error::from)?;
        wait_mask.remove(WAKE_SIGNAL);
        let _ = waker.thread.set(Target::current());
        Ok(Sleeper { waker, wait_mask })
    }

    /// Waits until the socket is ready for `read`/`write` interest, the waker is
    /// called, or `timeout` passes (`None`: no deadline). Returns what the socket is
    /// ready for (both false: woken or timed out).
    pub(crate) fn wait(
        &self,
        sock: &impl AsFd,
        read: bool,
        write: bool,
        timeout: Option<Duration>,
    ) -> io::Result<Readiness> {
        let w = &self.waker;
        w.state.store(SLEEPING, Ordering::SeqCst);
        if w.notified.swap(false, Ordering::SeqCst) {
            w.state.store(RUNNING, Ordering::SeqCst);
            return Ok(Readiness {
                readable: false,
                writable: false,
            });
        }
        let mut flags = PollFlags::empty();
        if read {
            flags |= PollFlags::POLLIN;
        }
        if write {
            flags |= PollFlags::POLLOUT;
        }
        let mut fds = [PollFd::new(sock.as_fd(), flags)];
        let ts = timeout.map(|t| TimeSpec::from_duration(t.min(Duration::from_secs(3600))));
        let r = ppoll(&mut fds, ts, Some(self.wait_mask));
        w.notified.store(false, Ordering::SeqCst);
        w.state.store(RUNNING, Ordering::SeqCst);
        match r {
            Ok(_) => {
                let ev = fds[0].revents().unwrap_or(PollFlags::empty());
                let trouble = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
                Ok(Readiness {
                    readable: ev.intersects(PollFlags::POLLIN | trouble),
                    writable: ev.intersects(PollFlags::POLLOUT | trouble),
                })
            }
            Err(Errno::EINTR) => Ok(Readiness {
                readable: false,
                writable: false,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _gone = self.waker.alive.write().unwrap_or_else(|p| p.into_inner());
        self.waker.state.store(EXITED, Ordering::SeqCst);
    }
}

/// The thread a waker signals.
#[derive(Debug, Clone, Copy)]
struct Target {
    #[cfg(target_os = "linux")]
    pid: libc::pid_t,
    #[cfg(target_os = "linux")]
    tid: libc::pid_t,
    #[cfg(not(target_os = "linux"))]
    thread: Pthread,
}

impl Target {
    fn current() -> Target {
        Target {
            #[cfg(target_os = "linux")]
            pid: std::process::id() as libc::pid_t,
            #[cfg(target_os = "linux")]
            // SAFETY: gettid has no preconditions and cannot fail.
            tid: unsafe { libc::gettid() },
            #[cfg(not(target_os = "linux"))]
            thread: pthread_self(),
        }
    }

    /// Sends [`WAKE_SIGNAL`]. On Linux a direct `tgkill`: glibc's `pthread_kill` adds
    /// three system calls (masking all signals around it, `getpid`), which a wake-up
    /// per command pays.
    fn signal(&self) {
        #[cfg(target_os = "linux")]
        // SAFETY: tgkill takes plain integers; the caller holds `Waker::alive` for
        // reading, so the thread has not exited and its id is not reused.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                self.pid,
                self.tid,
                WAKE_SIGNAL as libc::c_int,
            );
        }
        #[cfg(not(target_os = "linux"))]
        let _ = pthread_kill(self.thread, WAKE_SIGNAL);
    }
}

fn install_handler() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), io::ErrorKind>> = OnceLock::new();
    let r = INSTALLED.get_or_init(|| {
        // The flag itself is not used: the handler exists so that the signal
        // interrupts `ppoll` instead of being discarded (its default action is to be
        // ignored).
        signal_hook::flag::register(WAKE_SIGNAL as i32, Arc::new(AtomicBool::new(false)))
            .map(drop)
            .map_err(|e| e.kind())
    });
    r.map_err(|k| io::Error::new(k, "cannot install the session wake-up signal handler"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    fn socket_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn a_wake_interrupts_a_long_wait_and_one_before_the_wait_is_not_lost() {
        let (a, _b) = socket_pair();
        let waker = Waker::new();
        let w = waker.clone();
        let t = std::thread::spawn(move || {
            let s = Sleeper::bind(w).unwrap();
            let mut waits = Vec::new();
            for _ in 0..2 {
                let t0 = Instant::now();
                s.wait(&a, true, false, Some(Duration::from_secs(20)))
                    .unwrap();
                waits.push(t0.elapsed());
            }
            waits
        });
        // The first wake may land before or during the first wait; the second is sent
        // while the thread is surely asleep.
        waker.wake();
        std::thread::sleep(Duration::from_millis(300));
        waker.wake();
        let waits = t.join().unwrap();
        assert!(
            waits.iter().all(|w| *w < Duration::from_secs(5)),
            "{waits:?}"
        );
    }

    #[test]
    fn readiness_and_timeout_are_reported() {
        use std::io::Write;
        let (a, mut b) = socket_pair();
        let s = Sleeper::bind(Waker::new()).unwrap();
        let r = s
            .wait(&a, true, false, Some(Duration::from_millis(20)))
            .unwrap();
        assert!(!r.readable && !r.writable);
        b.write_all(b"x").unwrap();
        let r = s
            .wait(&a, true, true, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(r.readable && r.writable);
    }

    #[test]
    fn waking_an_exited_thread_is_harmless() {
        let waker = Waker::new();
        let w = waker.clone();
        std::thread::spawn(move || drop(Sleeper::bind(w).unwrap()))
            .join()
            .unwrap();
        waker.wake();
        waker.wake();
    }
}
