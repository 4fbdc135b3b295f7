//! The end of a session: the orderly close of the connection, then what cannot
//! complete is cancelled and reported, and the owner is told.

use super::*;

impl Driver {
    /// The orderly end of the connection: the last control messages (SESS_TERM and
    /// its reply) and close_notify are written, then our FIN, then what the peer still
    /// sends is read and discarded until its FIN (bounded), so the kernel never
    /// answers late bytes with a RST. An immediate close skips all of it.
    pub(super) fn close_down(&mut self, sleeper: &Sleeper) {
        if !self.immediate {
            self.io.close_notify();
            let deadline = Instant::now() + FLUSH_LIMIT;
            loop {
                match self.io.flush(&mut self.out) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(_) => break,
                }
                if !self.closing_wait(sleeper, false, true, deadline) {
                    break;
                }
            }
            self.io.shutdown_write();
            let deadline = Instant::now() + CLOSE_LINGER;
            while !self.eof {
                match self.io.discard_input() {
                    Ok(false) => {}
                    Ok(true) | Err(_) => break,
                }
                if !self.closing_wait(sleeper, true, false, deadline) {
                    break;
                }
            }
        }
        self.io.shutdown_both();
    }

    /// Closes the core without SESS_TERM. RFC 9174 §6.1: segments received SHOULD be
    /// acknowledged before an unclean close, so the XFER_ACKs the core kept are staged
    /// when the stream is between messages (nothing staged: after a half-written
    /// segment no message may follow), and with `write_now` (an immediate close, which
    /// skips the orderly flush) written with one write that does not wait. What cannot
    /// go out that way is dropped with the connection.
    pub(super) fn close_core(&mut self, now: Instant, write_now: bool) {
        self.core.close();
        if !self.core.is_closed() && self.out.is_empty() && !self.io.is_handshaking() {
            self.stage(now);
            if write_now && !self.out.is_empty() {
                let _ = self.io.flush(&mut self.out);
            }
        }
        if !self.core.is_closed() {
            // Acks that could not be staged: a second close drops them.
            self.core.close();
        }
        self.drain_events(&mut None);
    }

    /// One wait while closing; false when the deadline passed or a close command came.
    pub(super) fn closing_wait(
        &mut self,
        s: &Sleeper,
        read: bool,
        write: bool,
        deadline: Instant,
    ) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = s.wait(&self.io.sock, read, write, Some(left));
        while let Ok(c) = self.commands.try_recv() {
            match c {
                Command::Close => self.immediate = true,
                Command::Send(req) => {
                    req.reply.send(Err(Error::SessionClosed));
                }
                Command::Terminate(_) | Command::Shutdown(_) => {}
            }
        }
        !self.immediate
    }

    pub(super) fn finish(mut self: Box<Self>) {
        self.answer_sends();
        let reason = self.closed.take().unwrap_or(CloseReason::LocalClose);
        let id = self.id;
        self.incoming.abandon_all(&mut self.report, id);
        for tid in self.outgoing.ids() {
            self.report.emit(Event::TransferCancelled {
                session: id,
                direction: Direction::Outgoing,
                transfer_id: tid,
            });
        }
        for req in self.parked.drain(..) {
            req.reply.send(Err(Error::SessionClosed));
        }
        while let Ok(c) = self.commands.try_recv() {
            if let Command::Send(req) = c {
                req.reply.send(Err(Error::SessionClosed));
            }
        }
        self.check_state();
        self.report.emit(Event::SessionClosed {
            session: id,
            reason: reason.clone(),
        });
        self.report.flush_final(Duration::from_secs(1));
        let none_left = self.owner.unregister(id);
        self.shared.finish(self.core.state(), reason);
        if none_left {
            self.owner.last_closed();
        }
    }
}
