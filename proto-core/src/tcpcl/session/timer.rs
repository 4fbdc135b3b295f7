//! Timers: one table feeds both [`Session::poll_timeout`] and
//! [`Session::handle_timeout`].
//!
//! Every timer's deadline is a function of the session state ([`Session::deadline`]);
//! `poll_timeout` is the earliest of them and `handle_timeout` fires exactly those
//! that are due. Firing a timer always changes the state so that its own deadline
//! moves past `now` or disappears, so after `handle_timeout(now)` the next deadline is
//! never `<= now`: a runtime that sleeps until `poll_timeout()` cannot spin.

use std::time::Instant;

use super::{CloseReason, Control, Phase, Session};
use crate::tcpcl::SessTermReason;

/// The session's timers, in the order they fire when several are due at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Bound on establishment: contact headers, TLS and SESS_INIT
    /// (`contact_timeout`).
    Contact,
    /// A closing session's bound on writing its last control messages
    /// (`sess_term_timeout`).
    Close,
    /// Our SESS_TERM waits for the peer's reply (`sess_term_timeout`, RFC 9174 §6.1).
    TermReply,
    /// After the SESS_TERM exchange, the passive side waits for the active side to
    /// close the transport (`sess_term_timeout`).
    TermDone,
    /// Nothing received for twice the keepalive interval (RFC 9174 §5.1.1).
    RxIdle,
    /// Nothing sent for the keepalive interval: queue a KEEPALIVE (§5.1.1).
    Keepalive,
    /// No transfer activity for `idle_timeout` (§6.2).
    Idle,
}

impl Timer {
    /// Every timer, in firing order: the ones that close the session first, so a
    /// session that is over does not also queue a KEEPALIVE.
    pub(super) const ALL: [Timer; 7] = [
        Timer::Contact,
        Timer::Close,
        Timer::TermReply,
        Timer::TermDone,
        Timer::RxIdle,
        Timer::Keepalive,
        Timer::Idle,
    ];
}

impl Session {
    /// The next instant at which [`Session::handle_timeout`] has work to do: the
    /// earliest armed timer. After `handle_timeout(now)` returns this is never
    /// `<= now`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Timer::ALL.iter().filter_map(|&t| self.deadline(t)).min()
    }

    /// Fires the timers that are due at `now` (those whose deadline is `<= now`).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        // Each firing moves its own deadline past `now` or disarms it, and may disarm
        // others (a close disarms everything), so due timers are re-evaluated after
        // each one. The bound only guards against a future timer breaking that rule.
        for _ in 0..Timer::ALL.len() * 2 {
            let Some(t) = Timer::ALL
                .into_iter()
                .find(|&t| self.deadline(t).is_some_and(|d| d <= now))
            else {
                return;
            };
            self.fire(t);
        }
        debug_assert!(self.poll_timeout().is_none_or(|d| d > now));
    }

    /// The runtime stopped reading because its application is not taking events fast
    /// enough, and the transport holds bytes from the peer that were not fed to
    /// [`Session::handle_input`] yet. The peer is alive, so this resets the receive
    /// idle limit (twice the keepalive interval, RFC 9174 §5.1.1) exactly as received
    /// input would; nothing else changes. Call it whenever the runtime notices such
    /// unread input (for instance on each wake-up while reading is paused).
    pub fn note_unread_input(&mut self, now: Instant) {
        self.now = now;
        self.last_rx = now;
    }

    /// When `timer` fires, or `None` while it is not armed.
    pub(super) fn deadline(&self, timer: Timer) -> Option<Instant> {
        let live = matches!(self.phase, Phase::Established | Phase::Ending);
        match timer {
            Timer::Contact => matches!(self.phase, Phase::Contact | Phase::Tls | Phase::SessInit)
                .then_some(self.contact_deadline),
            Timer::Close => match self.phase {
                Phase::Closing(_) => self.close_deadline,
                _ => None,
            },
            Timer::TermReply => self.ending_term().and_then(|t| t.reply_deadline),
            Timer::TermDone => self.ending_term().and_then(|t| t.done_deadline),
            Timer::RxIdle => {
                // While our SESS_TERM waits for its reply, that wait (TermReply) is the
                // bound; the receive idle limit resumes once the reply arrived. Without
                // this, the idle limit that just sent SESS_TERM would still be due and
                // close the session before the peer could answer.
                let awaiting_reply = self.awaiting_term_reply();
                match self.keepalive() {
                    Some(ka) if live && !awaiting_reply => Some(self.last_rx + ka * 2),
                    _ => None,
                }
            }
            Timer::Keepalive => match self.keepalive() {
                // A control message already queued resets the keepalive clock when it
                // is written, so none is armed while one waits. Nor while our SESS_TERM
                // waits for its reply: that wait is bounded on its own, and after an
                // idle timeout the peer is presumed gone (SESS_TERM stays our last word).
                Some(ka)
                    if live
                        && !self.keepalive_queued
                        && self.ctrl.is_empty()
                        && !self.awaiting_term_reply() =>
                {
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

    /// Whether our SESS_TERM was sent and its reply has not arrived.
    fn awaiting_term_reply(&self) -> bool {
        self.ending_term()
            .is_some_and(|t| t.reply_deadline.is_some())
    }

    /// The SESS_TERM bookkeeping while the session is ending.
    fn ending_term(&self) -> Option<super::Term> {
        self.term.filter(|_| self.phase == Phase::Ending)
    }

    /// Does what `timer` is for. Called only when it is due.
    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Contact => match self.phase {
                Phase::SessInit => self.fail_close(
                    CloseReason::ContactTimeout,
                    Some(SessTermReason::IDLE_TIMEOUT),
                ),
                // No contact header (or no TLS) yet: there is nothing the peer could
                // parse a SESS_TERM against, so just close.
                _ => self.close_now(CloseReason::ContactTimeout),
            },
            Timer::Close => {
                if let Phase::Closing(r) = self.phase {
                    self.close_now(r);
                }
            }
            Timer::TermReply => self.close_now(CloseReason::SessTermTimeout),
            Timer::TermDone => {
                if let Some(t) = self.term {
                    self.close_now(CloseReason::Terminated {
                        reason: t.reason,
                        by_peer: t.by_peer,
                    });
                }
            }
            Timer::RxIdle => {
                // RFC 9174 §5.1.1: nothing received for twice the keepalive interval.
                if self.phase == Phase::Established {
                    self.start_term(SessTermReason::IDLE_TIMEOUT);
                } else {
                    self.close_now(CloseReason::SessTermTimeout);
                }
            }
            Timer::Keepalive => {
                self.keepalive_queued = true;
                self.queue(Control::Keepalive);
            }
            Timer::Idle => self.start_term(SessTermReason::IDLE_TIMEOUT),
        }
    }
}
