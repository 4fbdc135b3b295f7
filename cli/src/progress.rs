//! Progress bars on a terminal, nothing elsewhere, and only for transfers long enough
//! to matter.
//!
//! A bar stays hidden until the transfer has run for [`SHOW_AFTER`] and still has at
//! least [`SHOW_AFTER`] to go by its own estimate: a file that takes a blink to send
//! leaves no bar flashing in the terminal (or in a script's captured stderr). The ETA
//! is computed here from the average rate since the start (bytes left × elapsed /
//! bytes done) rather than indicatif's estimator, which weighs recent steps and swings
//! wildly when progress arrives in large jumps (TCPCL acknowledges whole segments).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a transfer runs (and has left) before its bar appears.
pub(crate) const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Set by `-q`: no bar at all.
static HIDDEN: AtomicBool = AtomicBool::new(false);

/// Hides every bar from now on (`-q`).
pub(crate) fn hide_all() {
    HIDDEN.store(true, Ordering::Relaxed);
}

/// Time left at the average rate so far; `None` before any byte moved or when the
/// length is unknown. A transfer past its announced length has nothing left.
pub(crate) fn eta(elapsed: Duration, done: u64, len: Option<u64>) -> Option<Duration> {
    let len = len?;
    if done == 0 {
        return None;
    }
    let left = len.saturating_sub(done);
    // In u128 nanoseconds; what still overflows is centuries away and shown as such.
    let nanos = elapsed
        .as_nanos()
        .checked_mul(u128::from(left))
        .map_or(u128::MAX, |n| n / u128::from(done));
    Some(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// Whether a bar should be on screen: the transfer has run [`SHOW_AFTER`], and (when
/// its length is known) is not about to finish.
pub(crate) fn worth_showing(elapsed: Duration, done: u64, len: Option<u64>) -> bool {
    if elapsed < SHOW_AFTER {
        return false;
    }
    match (len, eta(elapsed, done, len)) {
        (Some(_), Some(left)) => left >= SHOW_AFTER,
        // Nothing moved for a second: worth showing that, too.
        (Some(_), None) => true,
        (None, _) => true,
    }
}

/// `1h02m`, `4m05s`, `12s`.
pub(crate) fn format_eta(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A transfer's progress: an indicatif bar that shows itself once
/// [`worth_showing`] says so.
pub(crate) struct Progress {
    bar: ProgressBar,
    len: Option<u64>,
    start: Instant,
    /// A terminal is there to draw on, and `-q` was not given.
    drawable: bool,
    shown: AtomicBool,
}

/// A bar for `len` bytes (a spinner when unknown), drawn on stderr only when stderr is
/// a terminal, and there only for transfers long enough to matter.
pub(crate) fn bar(len: Option<u64>, name: &str) -> Progress {
    let style = match len {
        Some(_) => ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {left}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let text = eta(s.elapsed(), s.pos(), s.len()).map_or("?".into(), format_eta);
            let _ = w.write_str(&text);
        })
        .progress_chars("=> "),
        None => ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    };
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::hidden())
        .with_style(style)
        .with_message(name.to_string());
    Progress {
        bar,
        len,
        start: Instant::now(),
        drawable: std::io::stderr().is_terminal() && !HIDDEN.load(Ordering::Relaxed),
        shown: AtomicBool::new(false),
    }
}

impl Progress {
    /// Bytes done so far.
    pub(crate) fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        self.maybe_show();
    }

    /// `n` more bytes done.
    pub(crate) fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.maybe_show();
    }

    /// The transfer completed: a shown bar stays, complete.
    pub(crate) fn finish(&self) {
        self.bar.finish();
    }

    /// The transfer failed: a shown bar stays where it stopped.
    pub(crate) fn abandon(&self) {
        self.bar.abandon();
    }

    /// `reader`, counting what is read from it.
    pub(crate) fn wrap_read<R: Read>(&self, reader: R) -> CountingRead<'_, R> {
        CountingRead {
            progress: self,
            inner: reader,
        }
    }

    fn maybe_show(&self) {
        if !self.drawable || self.shown.load(Ordering::Relaxed) {
            return;
        }
        if worth_showing(self.start.elapsed(), self.bar.position(), self.len) {
            self.shown.store(true, Ordering::Relaxed);
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

/// A reader that reports what passes through it to a [`Progress`].
pub(crate) struct CountingRead<'a, R> {
    progress: &'a Progress,
    inner: R,
}

impl<R: Read> Read for CountingRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn eta_is_bytes_left_at_the_average_rate() {
        // (elapsed, done, len, ETA)
        let table: &[(Duration, u64, Option<u64>, Option<Duration>)] = &[
            (S(10), 100, Some(400), Some(S(30))),
            (S(10), 400, Some(400), Some(S(0))),
            (S(10), 500, Some(400), Some(S(0))), // past the announced length
            (S(1), 1 << 20, Some(1 << 30), Some(S(1023))),
            (S(1), 1, Some(1 << 40), Some(Duration::from_nanos(u64::MAX))),
            (S(3), 0, Some(400), None), // nothing moved yet
            (S(3), 100, None, None),    // length unknown
            (Duration::ZERO, 100, Some(400), Some(Duration::ZERO)),
            (Duration::from_millis(500), 1, Some(3), Some(S(1))),
            (
                S(u64::MAX / 4),
                1,
                Some(u64::MAX),
                Some(Duration::from_nanos(u64::MAX)),
            ),
        ];
        for &(elapsed, done, len, want) in table {
            assert_eq!(eta(elapsed, done, len), want, "{elapsed:?} {done} {len:?}");
        }
    }

    #[test]
    fn a_bar_appears_only_for_transfers_that_last() {
        let len = Some(1000);
        assert!(!worth_showing(Duration::from_millis(999), 1, len));
        assert!(!worth_showing(S(5), 1000, len)); // done
        assert!(!worth_showing(S(5), 900, len)); // 0.55 s left
        assert!(worth_showing(S(5), 800, len)); // 1.25 s left
        assert!(worth_showing(SHOW_AFTER, 500, len)); // exactly 1 s left
        assert!(worth_showing(S(2), 0, len)); // stalled from the start
        assert!(worth_showing(S(2), 10, None));
        assert!(!worth_showing(Duration::ZERO, 0, None));
    }

    #[test]
    fn eta_text() {
        assert_eq!(format_eta(Duration::ZERO), "0s");
        assert_eq!(format_eta(Duration::from_millis(100)), "1s");
        assert_eq!(format_eta(S(59)), "59s");
        assert_eq!(format_eta(S(60)), "1m00s");
        assert_eq!(format_eta(S(245)), "4m05s");
        assert_eq!(format_eta(S(3600 + 120 + 5)), "1h02m");
    }
}
