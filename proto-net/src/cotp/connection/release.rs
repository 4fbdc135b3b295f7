//! Ending a connection without losing the last word: the DR or ER one side sends as
//! it stops must reach the other side, and the other side must read it.
//!
//! Class 0 releases by closing TCP, which invites two races:
//!
//! - A side that queues a DR and closes its socket while the peer's data is still
//!   unread (or still arriving) makes the kernel answer with a RST. The RST can reach
//!   the peer before the peer read the DR, and a peer that reacts to the RST (a failed
//!   write, a failed `shutdown`) without reading never sees the DR. So after queuing
//!   a DR or ER we half-close and drain the peer's input, bounded in time and bytes,
//!   before closing ([`Connection::release_after_refusal`]).
//! - A side whose write fails (reset, broken pipe) or whose half-close fails may still
//!   have the peer's DR in its receive buffer: the kernel keeps data that arrived
//!   before a RST readable. We read it before reporting the failure
//!   ([`Connection::write_failed`], [`Connection::finish_close`]).

use super::{Connection, Error, Result};
use crate::cotp::stream::Stream;
use proto_core::cotp::connection::{CloseReason, Timer};
use proto_core::cotp::{DisconnectReason, Tpdu};
use std::io;
use std::time::{Duration, Instant};

/// How long `close` waits for the peer's answer to the DR (and its FIN).
pub(super) const CLOSE_LINGER: Duration = Duration::from_millis(500);
/// How long a side that refused something (DR or ER) keeps reading the peer's input
/// before it closes: long enough for a peer to read the DR and close (a round trip
/// and its reaction), short enough that a peer ignoring it holds nothing for long.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);
/// Most bytes read (and dropped) while lingering. A peer still streaming a large
/// message when it is refused is cut off after this much; it then gets a RST, but
/// the DR is already in its receive buffer, where `write_failed` finds it.
const LINGER_MAX_BYTES: usize = 1 << 20;
/// How long a failed write looks for the peer's DR among what is already received.
const WRITE_FAILED_WAIT: Duration = Duration::from_millis(250);
/// How much of what arrives while closing is kept to look for a DR or ER in.
const TAIL_KEEP: usize = 4096;

/// Whether a close was ours and sent the peer a DR or ER that it must be able to
/// read (a refusal, a protocol error, an inactivity timeout, a local close).
fn we_sent_the_last_word(reason: &CloseReason) -> bool {
    matches!(
        reason,
        CloseReason::ProtocolError(_)
            | CloseReason::LocalRefused { .. }
            | CloseReason::LocalDisconnect { .. }
            | CloseReason::TimedOut(Timer::Inactivity)
    )
}

impl<S: Stream> Connection<S> {
    /// Closes with the DR already queued in the core: writes it, half-closes, and
    /// reports a rejection the peer sent before its FIN (a DR other than "normal", an
    /// ER) in preference to any write error.
    pub(super) fn finish_close(&mut self) -> Result<()> {
        let flushed = self.flush_control();
        let _ = self.stream.flush();
        let mut tail: Vec<u8> = self.rbuf[self.rstart..self.rend].to_vec();
        self.rstart = self.rend;
        // Read even when the half-close fails: it fails when a RST already ended the
        // connection, and what arrived before the RST (the peer's DR) is still there.
        self.linger(CLOSE_LINGER, Some(&mut tail));
        match rejection_in(&tail) {
            Some(e) => Err(e),
            None => flushed,
        }
    }

    /// The core closed for `reason`: sends what it queued, ends the transport the
    /// way `reason` calls for, and returns the error the caller sees.
    pub(super) fn end_closed(&mut self, reason: CloseReason) -> Error {
        if we_sent_the_last_word(&reason) {
            // Our DR/ER must reach the peer before our close can reset it.
            self.release_after_refusal();
        } else {
            let _ = self.flush_control();
            let _ = self.stream.shutdown();
        }
        Error::from_close(reason)
    }

    /// After the core queued a DR or ER and closed: writes it, half-closes, and
    /// drains the peer's input until its FIN (bounded), so our close does not reset
    /// the connection under the DR.
    pub(super) fn release_after_refusal(&mut self) {
        let _ = self.flush_control();
        self.rstart = self.rend;
        self.linger(REFUSAL_LINGER, None);
    }

    /// Half-closes, then reads until the peer's FIN, an error, `wait` or
    /// [`LINGER_MAX_BYTES`]; keeps the first bytes in `tail`. Closes both directions
    /// at the end. Over an [`Unbounded`](crate::cotp::Unbounded) stream each read is
    /// bounded only by the timeouts the caller set on the inner stream.
    fn linger(&mut self, wait: Duration, mut tail: Option<&mut Vec<u8>>) {
        let _ = self.stream.shutdown_write();
        if !self.eof {
            let deadline = Instant::now() + wait;
            let mut drained = 0;
            while drained < LINGER_MAX_BYTES {
                let now = Instant::now();
                if now >= deadline || self.stream.set_read_timeout(Some(deadline - now)).is_err() {
                    break;
                }
                match self.stream.read(&mut self.rbuf) {
                    Ok(0) => break,
                    Ok(n) => {
                        drained += n;
                        if let Some(t) = tail.as_deref_mut() {
                            let keep = n.min(TAIL_KEEP.saturating_sub(t.len()));
                            t.extend_from_slice(&self.rbuf[..keep]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            self.eof = true;
            // The cached bound no longer matches the socket.
            self.read_timeout = None;
        }
        let _ = self.stream.shutdown();
    }

    /// A write to the peer failed with `e`. If the peer refused what we were sending
    /// (a DR or ER that arrived before the failure), that is the error to report:
    /// "connection reset" says nothing about why.
    pub(super) fn write_failed(&mut self, e: Error) -> Error {
        if !matches!(e, Error::Io(_) | Error::Timeout(_)) {
            return e;
        }
        match self.read_peer_verdict(WRITE_FAILED_WAIT) {
            Some(verdict) => verdict,
            None => e,
        }
    }

    /// Feeds what the peer already sent through the core until it closes the
    /// connection, for at most `wait`; returns the peer's DR or ER as an error.
    /// Payload that arrives meanwhile is dropped: this runs only when the connection
    /// already failed.
    fn read_peer_verdict(&mut self, wait: Duration) -> Option<Error> {
        let deadline = Instant::now() + wait;
        let mut budget = LINGER_MAX_BYTES;
        loop {
            while self.rstart < self.rend {
                let r = self
                    .core
                    .handle_input(Instant::now(), &self.rbuf[self.rstart..self.rend]);
                self.rstart += r.consumed;
                while self.core.poll_event().is_some() {}
                // Set as soon as the core decides to end the connection, before the DC
                // it answers a DR with is sent (it cannot be, the socket failed).
                if let Some(reason) = self.core.close_reason() {
                    return peer_verdict(reason);
                }
                if r.consumed == 0 {
                    break;
                }
            }
            if let Some(reason) = self.core.close_reason() {
                return peer_verdict(reason);
            }
            let now = Instant::now();
            if self.eof || budget == 0 || now >= deadline {
                return None;
            }
            if self.stream.set_read_timeout(Some(deadline - now)).is_err() {
                return None;
            }
            self.read_timeout = None;
            self.rstart = 0;
            self.rend = 0;
            match self.stream.read(&mut self.rbuf) {
                Ok(0) => {
                    self.eof = true;
                    return None;
                }
                Ok(n) => {
                    self.rend = n;
                    budget = budget.saturating_sub(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }
}

/// The error a close caused by the peer's DR or ER stands for.
fn peer_verdict(reason: CloseReason) -> Option<Error> {
    match reason {
        CloseReason::PeerDisconnect { .. }
        | CloseReason::PeerError { .. }
        | CloseReason::PeerRefused { .. } => Some(Error::from_close(reason)),
        _ => None,
    }
}

/// The first DR (other than a normal release) or ER among the TPKT frames in `bytes`.
fn rejection_in(bytes: &[u8]) -> Option<Error> {
    use proto_core::cotp::decode_frame;
    use proto_core::tpkt::{Status, DEFAULT_MAX_FRAME_LEN};
    let mut at = 0;
    while let Ok(Status::Complete((tpdu, len))) = decode_frame(&bytes[at..], DEFAULT_MAX_FRAME_LEN)
    {
        match tpdu {
            Tpdu::DisconnectRequest(dr) if dr.reason != DisconnectReason::NORMAL => {
                return Some(Error::Disconnected { reason: dr.reason });
            }
            Tpdu::Error(er) => return Some(Error::PeerError { cause: er.cause }),
            _ => {}
        }
        at += len;
    }
    None
}
