//! Ending a session: the SESS_TERM exchange and what happens to transfers meanwhile.

use std::time::Instant;

use super::{CloseReason, Control, Event, Phase, Session, Side, Term, UsageError};
use crate::tcpcl::{SessTerm, SessTermFlags, SessTermReason};

impl Session {
    /// Ends the session gracefully: sends SESS_TERM with `reason`; transfers in
    /// progress complete, new ones are refused, then the session closes. Before the
    /// session is established this sends SESS_TERM (when the peer can parse it) and
    /// closes. A second call while ending does nothing.
    pub fn terminate(&mut self, now: Instant, reason: SessTermReason) -> Result<(), UsageError> {
        self.now = now;
        match self.phase {
            Phase::Closed(_) | Phase::Closing(_) => Err(UsageError::Closed),
            Phase::Ending => Ok(()),
            Phase::Contact | Phase::Tls => {
                self.close_now(CloseReason::LocalClose);
                Ok(())
            }
            Phase::SessInit => {
                self.fail_close(CloseReason::LocalClose, Some(reason));
                Ok(())
            }
            Phase::Established => {
                self.start_term(reason);
                Ok(())
            }
        }
    }

    pub(super) fn on_sess_term(&mut self, t: SessTerm) {
        match self.phase {
            Phase::Established => {
                self.emit(Event::Terminating {
                    reason: t.reason,
                    by_peer: true,
                });
                self.queue(Control::Term(SessTerm {
                    flags: SessTermFlags::REPLY,
                    reason: t.reason,
                }));
                self.term = Some(Term {
                    reason: t.reason,
                    by_peer: true,
                    sent: true,
                    received: true,
                    reply_deadline: None,
                    done_deadline: None,
                });
                self.phase = Phase::Ending;
                self.cancel_unstarted();
                self.check_ending();
            }
            Phase::Ending => {
                if let Some(term) = &mut self.term {
                    term.received = true;
                    term.reply_deadline = None;
                }
                self.check_ending();
            }
            _ => {
                // Before establishment: answer (the contact headers are out) and close.
                self.emit(Event::Terminating {
                    reason: t.reason,
                    by_peer: true,
                });
                let reply = (!t.flags.is_reply()).then_some(t.reason);
                self.fail_close(
                    CloseReason::Terminated {
                        reason: t.reason,
                        by_peer: true,
                    },
                    None,
                );
                if let (Some(r), Phase::Closing(_)) = (reply, self.phase) {
                    self.queue(Control::Term(SessTerm {
                        flags: SessTermFlags::REPLY,
                        reason: r,
                    }));
                }
            }
        }
    }

    pub(super) fn start_term(&mut self, reason: SessTermReason) {
        self.emit(Event::Terminating {
            reason,
            by_peer: false,
        });
        self.queue(Control::Term(SessTerm {
            flags: SessTermFlags::EMPTY,
            reason,
        }));
        self.term = Some(Term {
            reason,
            by_peer: false,
            sent: true,
            received: false,
            reply_deadline: Some(self.now + self.config.sess_term_timeout),
            done_deadline: None,
        });
        self.phase = Phase::Ending;
        self.cancel_unstarted();
        self.check_ending();
    }

    /// [`Session::close`]: RFC 9174 §6.1 says received segments SHOULD be acknowledged
    /// before an unclean close, so the queued XFER_ACKs stay (in order) and everything
    /// else queued is dropped; no SESS_TERM, no new segment. The session is closed
    /// once they are out (or by the close timer if the owner never drains them).
    pub(super) fn close_unclean(&mut self) {
        self.ctrl.retain(|c| matches!(c, Control::Ack(_)));
        if self.ctrl.is_empty() {
            self.close_now(CloseReason::LocalClose);
        } else {
            self.fail_close(CloseReason::LocalClose, None);
        }
    }

    /// RFC 9174 §6.1: no new outgoing transfer begins once SESS_TERM is out.
    pub(super) fn cancel_unstarted(&mut self) {
        let mut i = 0;
        while i < self.outgoing.len() {
            if self.outgoing[i].started {
                i += 1;
            } else {
                let t = self.outgoing.swap_remove(i);
                self.emit(Event::OutgoingCancelled { transfer_id: t.id });
            }
        }
    }

    /// After both SESS_TERMs, once nothing is in progress: the active side closes, the
    /// passive side waits (bounded) for that close.
    pub(super) fn check_ending(&mut self) {
        let Some(t) = self.term else { return };
        if self.phase != Phase::Ending || !(t.sent && t.received) || self.transfers_in_progress() {
            return;
        }
        let reason = CloseReason::Terminated {
            reason: t.reason,
            by_peer: t.by_peer,
        };
        match self.side {
            Side::Active => self.fail_close(reason, None),
            Side::Passive => {
                if t.done_deadline.is_none() {
                    let d = self.now + self.config.sess_term_timeout;
                    if let Some(term) = &mut self.term {
                        term.done_deadline = Some(d);
                    }
                }
            }
        }
    }
}
