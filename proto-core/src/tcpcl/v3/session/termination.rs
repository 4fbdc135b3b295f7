//! Ending a v3 session: SHUTDOWN sent and received, with and without reason and
//! reconnection delay (RFC 7242 §6.1), and what happens to bundles meanwhile. The
//! policy is in the [module documentation](super).

use std::time::Instant;

use super::{Control, Phase, Session, Shutdown, Term};
use crate::tcpcl::v3::{Message, ShutdownReason};
use crate::tcpcl::{CloseReason, Event, SessTermReason, UsageError};

impl Session {
    /// Ends the session gracefully with a v4 reason code, as the v4
    /// [`terminate`](crate::tcpcl::Session::terminate): bundles in progress finish, no
    /// new ones start, then SHUTDOWN goes out — with the v3 reason code when there is
    /// one ([`ShutdownReason::from_v4`]), else without — and the session closes.
    pub fn terminate(&mut self, now: Instant, reason: SessTermReason) -> Result<(), UsageError> {
        let s = Shutdown {
            reason: ShutdownReason::from_v4(reason),
            delay: None,
        };
        self.end(now, s, reason)
    }

    /// [`Session::terminate`] with an explicit SHUTDOWN: an optional v3 reason code
    /// (unassigned ones included) and an optional reconnection delay in seconds for
    /// the peer.
    pub fn shutdown(&mut self, now: Instant, shutdown: Shutdown) -> Result<(), UsageError> {
        let reason = shutdown
            .reason
            .map_or(SessTermReason::UNKNOWN, ShutdownReason::to_v4);
        self.end(now, shutdown, reason)
    }

    fn end(&mut self, now: Instant, s: Shutdown, reason: SessTermReason) -> Result<(), UsageError> {
        self.now = now;
        match self.phase {
            Phase::Closed(_) | Phase::Closing(_) => Err(UsageError::Closed),
            Phase::Ending => Ok(()),
            Phase::Contact => {
                // §6.1: SHUTDOWN may refuse a connection right after the contact
                // header (ours is first in the queue).
                self.fail_close(CloseReason::LocalClose, Some(s));
                Ok(())
            }
            Phase::Established => {
                self.emit(Event::Terminating {
                    reason,
                    by_peer: false,
                });
                self.start_ending(s, reason, false);
                self.check_ending();
                Ok(())
            }
        }
    }

    fn start_ending(&mut self, ours: Shutdown, reason: SessTermReason, by_peer: bool) {
        self.term = Some(Term {
            ours,
            reason,
            by_peer,
            sent: false,
            deadline: self.now + self.config.sess_term_timeout,
        });
        self.phase = Phase::Ending;
        // No new bundle starts once the session is ending.
        let mut i = 0;
        while i < self.outgoing.len() {
            if self.outgoing[i].started {
                i += 1;
            } else {
                let t = self.outgoing.remove(i);
                self.emit(Event::OutgoingCancelled { transfer_id: t.id });
            }
        }
    }

    pub(super) fn on_shutdown(&mut self, s: Shutdown) {
        self.peer_shutdown = Some(s);
        // The peer sends no more data (§6.1): its unfinished bundle never completes.
        self.incoming = None;
        self.discarding = false;
        match self.phase {
            Phase::Established => {
                let reason = s
                    .reason
                    .map_or(SessTermReason::UNKNOWN, ShutdownReason::to_v4);
                self.emit(Event::Terminating {
                    reason,
                    by_peer: true,
                });
                self.start_ending(Shutdown::default(), reason, true);
            }
            Phase::Ending => {}
            _ => return,
        }
        self.send_shutdown();
        self.check_ending();
    }

    /// Queues our SHUTDOWN once.
    fn send_shutdown(&mut self) {
        if let Some(t) = &mut self.term {
            if !t.sent {
                t.sent = true;
                let m = Message::Shutdown(t.ours);
                self.queue(Control::Message(m));
            }
        }
    }

    /// Moves an ending session on once what it waits for is done.
    pub(super) fn check_ending(&mut self) {
        let Some(t) = self.term else { return };
        if self.phase != Phase::Ending {
            return;
        }
        let done = if self.peer_shutdown.is_some() {
            // Only acknowledgments the peer still owes, and our own for a segment the
            // application is still confirming.
            self.pending_acks.is_empty() && self.unconfirmed.is_none()
        } else {
            !self.transfers_in_progress()
        };
        if done {
            self.send_shutdown();
            self.fail_close(
                CloseReason::Terminated {
                    reason: t.reason,
                    by_peer: t.by_peer,
                },
                None,
            );
        }
    }

    /// The ending deadline passed.
    pub(super) fn ending_timed_out(&mut self) {
        let Some(t) = self.term else { return };
        if self.peer_shutdown.is_some() {
            // The SHUTDOWN exchange happened; only acknowledgments did not come.
            self.send_shutdown();
            self.fail_close(
                CloseReason::Terminated {
                    reason: t.reason,
                    by_peer: t.by_peer,
                },
                None,
            );
        } else {
            self.send_shutdown();
            self.fail_close(CloseReason::SessTermTimeout, None);
        }
    }

    /// §5.6 / §6.2: SHUTDOWN (Idle timeout) and close.
    pub(super) fn idle_shutdown(&mut self, receive_idle: bool) {
        let reason = SessTermReason::IDLE_TIMEOUT;
        let s = Shutdown {
            reason: Some(ShutdownReason::IDLE_TIMEOUT),
            delay: None,
        };
        if receive_idle {
            // Nothing heard for twice the keepalive interval: the peer is presumed
            // gone, so nothing is waited for.
            self.emit(Event::Terminating {
                reason,
                by_peer: false,
            });
            self.start_ending(s, reason, false);
            self.send_shutdown();
            self.fail_close(
                CloseReason::Terminated {
                    reason,
                    by_peer: false,
                },
                None,
            );
        } else {
            let _ = self.end(self.now, s, reason);
        }
    }
}
