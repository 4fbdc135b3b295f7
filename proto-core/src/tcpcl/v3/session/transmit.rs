//! Outgoing side: starting our bundles, what goes on the wire next
//! ([`Session::poll_transmit`]), and what the peer's ACK_SEGMENT and REFUSE_BUNDLE do
//! to our bundles (RFC 7242 §5.2–§5.5).
//!
//! The send policy is the v4 one: every pending control message first (contact
//! header, ACK_SEGMENT, REFUSE_BUNDLE, KEEPALIVE, SHUTDOWN), then the next segment of
//! our current bundle — preceded by LENGTH when the peer asked for it and the length
//! is known — while fewer than `max_pending_acks` segments await acknowledgment.
//! Bundles go out whole, in start order (§5.2: segments of different bundles are not
//! interleaved).

use std::time::Instant;

use super::{Control, OutBundle, PendingAck, Phase, Session};
use crate::tcpcl::v3::{DataFlags, Message, MessageType, RefuseReason};
use crate::tcpcl::{
    ContactHeaderV3, Event, ProtocolError, Ready, Transmit, TransmitError, UsageError,
};
use crate::EncodeError;

/// The largest DATA_SEGMENT head [`Session::poll_transmit`] writes: the header octet
/// and a ten-octet SDNV length.
pub const MAX_SEGMENT_HEAD: usize = 1 + crate::tcpcl::sdnv::MAX_LEN;

impl Session {
    /// Starts an outgoing bundle and returns its local transfer ID (sequential from
    /// 0; v3 has no IDs on the wire). `total_len`, if known, is announced with LENGTH
    /// when the peer asked for it (§5.5) and checked against what the source yields.
    pub fn start_transfer(&mut self, total_len: Option<u64>) -> Result<u64, UsageError> {
        match self.phase {
            Phase::Established => {}
            Phase::Ending => return Err(UsageError::SessionTerminating),
            Phase::Closing(_) | Phase::Closed(_) => return Err(UsageError::Closed),
            Phase::Contact => return Err(UsageError::NotEstablished),
        }
        if self.outgoing.len() >= self.config.max_outgoing_transfers {
            return Err(UsageError::TooManyTransfers);
        }
        let id = self.next_tx_id;
        self.next_tx_id = self.next_tx_id.wrapping_add(1);
        self.outgoing.push(OutBundle {
            id,
            total_len,
            sent: 0,
            acked: 0,
            started: false,
            end_sent: false,
            length_sent: false,
        });
        self.last_xfer = self.now;
        Ok(id)
    }

    /// Drops an outgoing bundle none of which was sent yet and reports
    /// [`Event::OutgoingCancelled`]; a started one cannot be abandoned
    /// ([`UsageError::TransferStarted`]).
    pub fn abandon_transfer(&mut self, transfer_id: u64) -> Result<(), UsageError> {
        if self.is_closed() {
            return Err(UsageError::Closed);
        }
        let i = self
            .outgoing
            .iter()
            .position(|t| t.id == transfer_id)
            .ok_or(UsageError::UnknownTransfer(transfer_id))?;
        if self.outgoing[i].started {
            return Err(UsageError::TransferStarted(transfer_id));
        }
        self.outgoing.remove(i);
        self.emit(Event::OutgoingCancelled { transfer_id });
        self.check_ending();
        Ok(())
    }

    /// The bundle the next segment would belong to, if any.
    pub fn current_outgoing(&self) -> Option<u64> {
        self.next_outgoing().map(|i| self.outgoing[i].id)
    }

    fn next_outgoing(&self) -> Option<usize> {
        match self.phase {
            Phase::Established => {}
            // Ending: only the bundle already under way finishes, and not after the
            // peer's SHUTDOWN (it takes no more data, §6.1).
            Phase::Ending if self.peer_shutdown.is_none() => {}
            _ => return None,
        }
        if let Some(i) = self.outgoing.iter().position(|t| t.started && !t.end_sent) {
            return Some(i);
        }
        if self.phase != Phase::Established {
            return None;
        }
        // `outgoing` is in start order (only `remove` is used on it).
        self.outgoing.iter().position(|t| !t.started)
    }

    /// Writes what goes on the wire next into `out`; the v4
    /// [`poll_transmit`](crate::tcpcl::Session::poll_transmit) contract. After
    /// [`Transmit::Segment`] the caller writes exactly `data_len` bytes of the bundle
    /// from `offset`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        ready: impl FnMut(u64) -> Ready,
    ) -> Result<Option<Transmit>, TransmitError> {
        self.now = now;
        if self.is_closed() {
            return Ok(None);
        }
        if let Some(&c) = self.ctrl.front() {
            let n = self.encode_control(c, out)?;
            self.ctrl.pop_front();
            self.last_tx = now;
            if matches!(c, Control::Message(Message::Keepalive)) {
                self.keepalive_queued = false;
            }
            self.finish_closing();
            return Ok(Some(Transmit::Control(n)));
        }
        self.finish_closing();
        self.poll_segment(out, ready)
    }

    fn encode_control(&self, c: Control, out: &mut [u8]) -> Result<usize, EncodeError> {
        match c {
            Control::Contact => ContactHeaderV3 {
                flags: self.config.contact_flags(),
                keepalive: self.config.keepalive_interval,
                eid: self.config.local_eid.as_bytes(),
            }
            .encode(out),
            Control::Message(m) => m.encode(out),
        }
    }

    fn poll_segment(
        &mut self,
        out: &mut [u8],
        mut ready: impl FnMut(u64) -> Ready,
    ) -> Result<Option<Transmit>, TransmitError> {
        let (Some(i), Some(n)) = (self.next_outgoing(), self.negotiated) else {
            return Ok(None);
        };
        if n.acks && self.pending_acks.len() >= self.config.max_pending_acks {
            return Ok(None);
        }
        let t = self.outgoing[i];
        if !t.started && n.send_length && !t.length_sent {
            if let Some(len) = t.total_len {
                // §5.5: LENGTH right before the bundle's first (S) segment.
                let used = Message::Length { len }.encode(out)?;
                self.outgoing[i].length_sent = true;
                self.last_tx = self.now;
                return Ok(Some(Transmit::Control(used)));
            }
        }
        let src = ready(t.id);
        let remaining = t.total_len.map(|total| total.saturating_sub(t.sent));
        if let (Some(rem), Some(announced)) = (remaining, t.total_len) {
            if src.available > rem || (src.complete && src.available < rem) {
                return Err(TransmitError::Source {
                    transfer_id: t.id,
                    error: UsageError::LengthMismatch {
                        announced,
                        yielded: t.sent.saturating_add(src.available),
                    },
                });
            }
        }
        let limit = self
            .config
            .tx_segment_size
            .min(remaining.unwrap_or(u64::MAX))
            .min(u64::try_from(usize::MAX).unwrap_or(u64::MAX));
        let data_len = src.available.min(limit);
        let end = src.complete && data_len == src.available;
        if data_len == 0 && !end {
            return Ok(None);
        }
        let mut flags = DataFlags::EMPTY;
        if !t.started {
            flags = flags | DataFlags::START;
        }
        if end {
            flags = flags | DataFlags::END;
        }
        let header_len = Message::DataSegment {
            flags,
            len: data_len,
        }
        .encode(out)?;
        let offset = t.sent;
        let sent = offset.saturating_add(data_len);
        let t = &mut self.outgoing[i];
        t.started = true;
        t.sent = sent;
        t.end_sent = end;
        let id = t.id;
        if n.acks {
            self.pending_acks.push_back(PendingAck { id, end: sent });
        } else if end {
            // Nobody will acknowledge it: done once its last byte is handed out.
            self.outgoing.remove(i);
            self.emit(Event::OutgoingSent {
                transfer_id: id,
                len: sent,
            });
        }
        self.last_tx = self.now;
        self.last_xfer = self.now;
        if end {
            self.check_ending();
        }
        Ok(Some(Transmit::Segment {
            transfer_id: id,
            offset,
            header_len,
            data_len: usize::try_from(data_len).unwrap_or(usize::MAX),
            end,
        }))
    }

    /// §5.3: an ACK_SEGMENT acknowledges, cumulatively, the oldest bundle of ours not
    /// yet fully acknowledged.
    pub(super) fn on_ack(&mut self, len: u64) {
        let Some(i) = self.outgoing.iter().position(|t| t.started) else {
            // Nothing of ours awaits an ack (late, or acks not negotiated): ignored.
            return;
        };
        let t = self.outgoing[i];
        if len > t.sent {
            // Acknowledging bytes we never sent would report false deliveries.
            self.protocol_error(ProtocolError::Malformed {
                message_type: MessageType::AckSegment.code(),
            });
            return;
        }
        let before = self.pending_acks.len();
        self.pending_acks
            .retain(|p| !(p.id == t.id && p.end <= len));
        if self.pending_acks.len() == before && len <= t.acked {
            return; // a duplicate
        }
        let finished =
            t.end_sent && len == t.sent && !self.pending_acks.iter().any(|p| p.id == t.id);
        self.outgoing[i].acked = len.max(t.acked);
        if finished {
            self.outgoing.remove(i);
        }
        self.last_xfer = self.now;
        self.emit(Event::OutgoingAcked {
            transfer_id: t.id,
            acked_len: len,
            finished,
        });
        self.check_ending();
    }

    /// §5.4: a REFUSE_BUNDLE refuses the oldest bundle of ours in progress; we stop
    /// sending it and go on with the next one. §5.5: a receiver may refuse right after
    /// LENGTH, before the first segment: a bundle whose LENGTH went out counts as in
    /// progress.
    pub(super) fn on_refuse(&mut self, reason: RefuseReason) {
        let Some(i) = self
            .outgoing
            .iter()
            .position(|t| t.started || t.length_sent)
        else {
            return;
        };
        let t = self.outgoing.remove(i);
        self.pending_acks.retain(|p| p.id != t.id);
        self.last_xfer = self.now;
        self.emit(Event::OutgoingRefused {
            transfer_id: t.id,
            reason: reason.to_v4(),
        });
        self.check_ending();
    }
}
