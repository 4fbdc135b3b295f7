//! SIGINT / SIGTERM handling for long-running commands: the first signal asks for a
//! graceful stop (work in flight may finish, within a bound), a second one for an
//! immediate stop. Both are announced on stderr, as `tcpcl listen` does.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

#[derive(Debug, Default)]
struct State {
    /// When a graceful stop was requested (by a signal or by the command itself).
    requested: OnceLock<Instant>,
    /// A second signal: stop without waiting for anything.
    immediate: AtomicBool,
    /// Signals received so far.
    signals: AtomicU32,
}

/// The stop state shared by a command's threads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown(Arc<State>);

impl Shutdown {
    /// Installs handlers for SIGINT and SIGTERM. The first signal prints
    /// "shutting down: {graceful}" and requests a graceful stop; a second prints
    /// "stopping now" and requests an immediate one. `on_signal` runs on the signal
    /// thread after each (for example to wake a blocked `accept`).
    pub(crate) fn install(
        graceful: &'static str,
        on_signal: impl Fn() + Send + 'static,
    ) -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let flag = Shutdown::default();
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let f = flag.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for _ in signals.forever() {
                    f.on_signal(graceful);
                    on_signal();
                }
            })?;
        Ok(flag)
    }

    /// What one signal does: graceful the first time, immediate after that.
    fn on_signal(&self, graceful: &str) {
        if self.0.signals.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!("shutting down: {graceful} (signal again to stop at once)");
            self.trigger();
        } else {
            eprintln!("stopping now");
            self.trigger();
            self.0.immediate.store(true, Ordering::SeqCst);
        }
    }

    /// Requests a graceful stop.
    pub(crate) fn trigger(&self) {
        let _ = self.0.requested.set(Instant::now());
    }

    /// Whether a stop was requested.
    pub(crate) fn requested(&self) -> bool {
        self.0.requested.get().is_some()
    }

    /// When a stop was requested, if it was.
    pub(crate) fn requested_at(&self) -> Option<Instant> {
        self.0.requested.get().copied()
    }

    /// Whether the stop must not wait for anything any more.
    pub(crate) fn immediate(&self) -> bool {
        self.0.immediate.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_is_graceful_and_the_second_immediate() {
        let s = Shutdown::default();
        assert!(!s.requested() && !s.immediate());
        s.on_signal("test");
        assert!(s.requested() && !s.immediate());
        s.on_signal("test");
        assert!(s.immediate());
    }

    #[test]
    fn a_stop_the_command_asked_for_itself_still_takes_a_signal_to_be_immediate() {
        let s = Shutdown::default();
        s.trigger();
        s.on_signal("test");
        assert!(s.requested() && !s.immediate());
    }
}
