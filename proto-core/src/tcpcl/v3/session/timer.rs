//! Timers of a v3 session: one table feeds [`Session::poll_timeout`] and
//! [`Session::handle_timeout`], as in the v4 session, so after `handle_timeout(now)`
//! the next deadline is never `<= now`.

use std::time::{Duration, Instant};

use super::{Control, Message, Phase, Session};
use crate::tcpcl::CloseReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Waiting for the peer's contact header (`contact_timeout`).
    Contact,
    /// A closing session's bound on writing its last messages.
    Close,
    /// Bound on ending (`sess_term_timeout`).
    Ending,
    /// Nothing received for twice the keepalive interval (RFC 7242 §5.6).
    RxIdle,
    /// Nothing sent for the keepalive interval: KEEPALIVE (§5.6).
    Keepalive,
    /// No bundle data for `idle_timeout` (§6.2).
    Idle,
}

const ALL: [Timer; 6] = [
    Timer::Contact,
    Timer::Close,
    Timer::Ending,
    Timer::RxIdle,
    Timer::Keepalive,
    Timer::Idle,
];

impl Session {
    /// The next instant at which [`Session::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        ALL.iter().filter_map(|&t| self.deadline(t)).min()
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for _ in 0..ALL.len() * 2 {
            let Some(t) = ALL
                .into_iter()
                .find(|&t| self.deadline(t).is_some_and(|d| d <= now))
            else {
                return;
            };
            self.fire(t);
        }
        debug_assert!(self.poll_timeout().is_none_or(|d| d > now));
    }

    /// The runtime holds unread bytes from the peer (its application is slow): the
    /// peer is alive, so the receive idle limit restarts, as in v4.
    pub fn note_unread_input(&mut self, now: Instant) {
        self.now = now;
        self.last_rx = now;
    }

    fn keepalive(&self) -> Option<Duration> {
        match self.negotiated {
            Some(n) if n.keepalive > 0 => Some(Duration::from_secs(n.keepalive.into())),
            _ => None,
        }
    }

    fn deadline(&self, timer: Timer) -> Option<Instant> {
        let live = matches!(self.phase, Phase::Established | Phase::Ending);
        match timer {
            Timer::Contact => (self.phase == Phase::Contact).then_some(self.contact_deadline),
            Timer::Close => match self.phase {
                Phase::Closing(_) => self.close_deadline,
                _ => None,
            },
            Timer::Ending => match (self.phase, self.term) {
                (Phase::Ending, Some(t)) => Some(t.deadline),
                _ => None,
            },
            Timer::RxIdle => match self.keepalive() {
                Some(ka) if self.phase == Phase::Established => Some(self.last_rx + ka * 2),
                _ => None,
            },
            Timer::Keepalive => match self.keepalive() {
                Some(ka) if live && !self.keepalive_queued && self.ctrl.is_empty() => {
                    Some(self.last_tx + ka)
                }
                _ => None,
            },
            Timer::Idle => match (self.phase, self.config.idle_timeout) {
                (Phase::Established, Some(idle))
                    if self.outgoing.is_empty() && !self.transfers_in_progress() =>
                {
                    Some(self.last_xfer + idle)
                }
                _ => None,
            },
        }
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Contact => self.close_now(CloseReason::ContactTimeout),
            Timer::Close => {
                if let Phase::Closing(r) = self.phase {
                    self.close_now(r);
                }
            }
            Timer::Ending => self.ending_timed_out(),
            Timer::RxIdle => self.idle_shutdown(true),
            Timer::Keepalive => {
                self.keepalive_queued = true;
                self.queue(Control::Message(Message::Keepalive));
            }
            Timer::Idle => self.idle_shutdown(false),
        }
    }
}
