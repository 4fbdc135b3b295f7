//! The handles' commands and the handler's replies: send requests registered with
//! the core (parked while its transfer table is full, answered after the turn's
//! output), terminate, graceful shutdown, close.

use super::*;

impl Driver {
    /// Applies every queued command; send requests are parked, to be registered by
    /// [`Driver::answer_parked`] later in the turn.
    pub(super) fn take_commands(&mut self, now: Instant) {
        while let Ok(c) = self.commands.try_recv() {
            match c {
                Command::Send(req) => self.parked.push_back(req),
                Command::Terminate(reason) => {
                    let _ = self.core.terminate(now, reason);
                }
                Command::Shutdown(reason) => {
                    if self.core.is_established() {
                        self.drain = Some(reason);
                    } else {
                        let _ = self.core.terminate(now, reason);
                    }
                }
                Command::Close => {
                    self.immediate = true;
                    self.close_override.get_or_insert(CloseReason::LocalClose);
                    self.close_core(now, true);
                }
            }
        }
    }

    /// Registers the bundles a handler sent, so they go out in this turn's output
    /// (with the acknowledgement of what the handler answered, in one write).
    pub(super) fn start_replies(&mut self) {
        for source in std::mem::take(&mut self.report.replies) {
            if let Err(e) = self.start_send(source) {
                log::debug!("{}: a handler's reply was not sent: {e}", self.id);
            }
        }
    }

    /// Registers parked send requests while the core has room (backpressure on
    /// `send_*`), answering each. During a graceful shutdown the ones still parked are
    /// refused (Terminating): they were never given a transfer ID.
    pub(super) fn answer_parked(&mut self) {
        while !self.parked.is_empty() {
            let waiting = match self.core.state() {
                State::Contact | State::TlsHandshake | State::SessionInit => true,
                State::Established if self.drain.is_none() => {
                    self.core.outgoing_count() >= self.core.max_outgoing_transfers()
                }
                _ => false,
            };
            if waiting && self.closed.is_none() {
                return;
            }
            let Some(req) = self.parked.pop_front() else {
                return;
            };
            let r = self.start_send(req.source);
            self.answers.push((req.reply, r));
        }
    }

    /// Answers the send requests registered this turn. Done after `transmit`, so the
    /// woken caller does not compete for a CPU with the write of its own bundle.
    pub(super) fn answer_sends(&mut self) {
        for (reply, r) in self.answers.drain(..) {
            reply.send(r);
        }
    }

    /// Registers one bundle with the core; its transfer ID, or why not.
    pub(super) fn start_send(&mut self, source: Source) -> Result<u64, Error> {
        if self.drain.is_some() {
            return Err(Error::Terminating);
        }
        match self.core.state() {
            State::Established => {}
            State::Ending => return Err(Error::Terminating),
            _ => return Err(Error::SessionClosed),
        }
        let tid = match self.core.start_transfer(source.len()) {
            Ok(t) => t,
            Err(UsageError::TransferTooLarge { len, mru }) => {
                return Err(Error::TooLarge { len, mru })
            }
            Err(UsageError::SessionTerminating) => return Err(Error::Terminating),
            Err(e) => return Err(e.into()),
        };
        self.pending_out += 1;
        self.outgoing.push(tid, source);
        Ok(tid)
    }

    /// Graceful shutdown: SESS_TERM once every submitted bundle is done.
    pub(super) fn check_drain(&mut self, now: Instant) {
        if let Some(reason) = self.drain {
            if self.core.is_established()
                && self.parked.is_empty()
                && self.outgoing.is_empty()
                && self.core.outgoing_count() == 0
            {
                self.drain = None;
                let _ = self.core.terminate(now, reason);
            }
        }
    }
}
