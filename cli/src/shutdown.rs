//! SIGINT / SIGTERM handling: a flag that long-running commands check, plus a hook
//! that wakes a blocked `accept`.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Set once a termination signal arrived (or the command decided to stop), with the
/// time it happened.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown(Arc<OnceLock<Instant>>);

impl Shutdown {
    /// Installs handlers for SIGINT and SIGTERM; `on_signal` runs on the signal thread
    /// after the flag is set (for example to wake an `accept`).
    pub(crate) fn install(on_signal: impl Fn() + Send + 'static) -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let flag = Shutdown::default();
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let f = flag.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    log::info!("signal {sig}: shutting down gracefully");
                    f.trigger();
                    on_signal();
                }
            })?;
        Ok(flag)
    }

    /// Requests shutdown.
    pub(crate) fn trigger(&self) {
        let _ = self.0.set(Instant::now());
    }

    /// Whether shutdown was requested.
    pub(crate) fn requested(&self) -> bool {
        self.0.get().is_some()
    }

    /// When shutdown was requested, if it was.
    pub(crate) fn requested_at(&self) -> Option<Instant> {
        self.0.get().copied()
    }
}
