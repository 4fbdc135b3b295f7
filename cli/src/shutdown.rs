//! SIGINT / SIGTERM handling: a flag that long-running commands check, plus a hook
//! that wakes a blocked `accept`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set once a termination signal arrived (or the command decided to stop).
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown(Arc<AtomicBool>);

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
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown was requested.
    pub(crate) fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
