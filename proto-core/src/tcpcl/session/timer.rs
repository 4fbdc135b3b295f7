//! Timers: contact bound, keepalives, the receive idle limit, the optional idle
//! timeout and the bounded SESS_TERM waits.

use std::time::Instant;

use super::*;

impl Session {
    /// The next instant at which [`Session::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match self.phase {
            Phase::Contact | Phase::Tls | Phase::SessInit => at(self.contact_deadline),
            Phase::Established | Phase::Ending => {
                if let Some(ka) = self.keepalive() {
                    if !self.keepalive_queued {
                        at(self.last_tx + ka);
                    }
                    at(self.last_rx + ka * 2);
                }
                if let (Phase::Established, Some(idle)) = (self.phase, self.config.idle_timeout) {
                    if self.outgoing.is_empty() && !self.transfers_in_progress() {
                        at(self.last_xfer + idle);
                    }
                }
                if let Some(t) = self.term {
                    if let Some(d) = t.reply_deadline {
                        at(d);
                    }
                    if let Some(d) = t.done_deadline {
                        at(d);
                    }
                }
            }
            Phase::Closing(_) => {
                if let Some(d) = self.close_deadline {
                    at(d);
                }
            }
            Phase::Closed(_) => {}
        }
        next
    }

    /// Fires whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        match self.phase {
            Phase::Contact | Phase::Tls if now >= self.contact_deadline => {
                // No contact header (or no TLS) yet: there is nothing the peer could
                // parse a SESS_TERM against, so just close.
                self.close_now(CloseReason::ContactTimeout);
            }
            Phase::SessInit if now >= self.contact_deadline => {
                self.fail_close(
                    CloseReason::ContactTimeout,
                    Some(SessTermReason::IDLE_TIMEOUT),
                );
            }
            Phase::Established | Phase::Ending => self.upkeep(now),
            Phase::Closing(r) if self.close_deadline.is_some_and(|d| now >= d) => {
                self.close_now(r);
            }
            _ => {}
        }
    }

    pub(super) fn upkeep(&mut self, now: Instant) {
        if let Some(t) = self.term {
            if t.reply_deadline.is_some_and(|d| now >= d) {
                self.close_now(CloseReason::SessTermTimeout);
                return;
            }
            if t.done_deadline.is_some_and(|d| now >= d) {
                self.close_now(CloseReason::Terminated {
                    reason: t.reason,
                    by_peer: t.by_peer,
                });
                return;
            }
        }
        if let Some(ka) = self.keepalive() {
            if now >= self.last_rx + ka * 2 {
                // RFC 9174 §5.1.1: nothing received for twice the keepalive interval.
                if self.phase == Phase::Established {
                    self.start_term(SessTermReason::IDLE_TIMEOUT);
                } else {
                    self.close_now(CloseReason::SessTermTimeout);
                    return;
                }
            }
            // Anything already queued will reset the keepalive clock when written.
            if !self.keepalive_queued && self.ctrl.is_empty() && now >= self.last_tx + ka {
                self.keepalive_queued = true;
                self.queue(Control::Keepalive);
            }
        }
        if let (Phase::Established, Some(idle)) = (self.phase, self.config.idle_timeout) {
            if self.outgoing.is_empty()
                && !self.transfers_in_progress()
                && now >= self.last_xfer + idle
            {
                self.start_term(SessTermReason::IDLE_TIMEOUT);
            }
        }
    }
}
