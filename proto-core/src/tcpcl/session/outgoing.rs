//! Our transfers: starting and abandoning them, which one the next segment belongs
//! to, and what the peer's XFER_ACK and XFER_REFUSE do to them (RFC 9174 §5.2).
//!
//! The segments themselves are produced by [`Session::poll_transmit`]
//! (`transmit.rs`).

use std::time::Duration;

use super::{OutTransfer, Phase, Session, UsageError, MIN_ADAPTIVE_SEGMENT};
use crate::tcpcl::{Event, MessageType, MsgRejectReason, SessTermReason, XferAck, XferRefuse};

impl Session {
    /// Starts an outgoing transfer and returns its transfer ID (sequential from 0,
    /// RFC 9174 §5.2.1). `total_len`, if known, is announced with the Transfer Length
    /// extension on the first segment and checked against what the caller's source
    /// provides.
    ///
    /// Transfers are sent whole, one after another, in the order they were started;
    /// [`Session::poll_transmit`] asks for each one's data when its turn comes.
    pub fn start_transfer(&mut self, total_len: Option<u64>) -> Result<u64, UsageError> {
        self.check_can_send()?;
        if self.phase == Phase::Ending {
            return Err(UsageError::SessionTerminating);
        }
        let n = self.negotiated.ok_or(UsageError::NotEstablished)?;
        if n.peer_segment_mru == 0 {
            return Err(UsageError::PeerAcceptsNoData);
        }
        if let Some(len) = total_len {
            if len > n.peer_transfer_mru {
                return Err(UsageError::TransferTooLarge {
                    len,
                    mru: n.peer_transfer_mru,
                });
            }
        }
        if self.outgoing.len() >= self.config.max_outgoing_transfers {
            return Err(UsageError::TooManyTransfers);
        }
        if self.tx_ids_exhausted {
            // RFC 9174 §5.2.1: the whole 64-bit Transfer ID space is used up.
            self.start_term(SessTermReason::RESOURCE_EXHAUSTION);
            return Err(UsageError::TransferIdsExhausted);
        }
        let id = self.next_tx_id;
        match self.next_tx_id.checked_add(1) {
            Some(next) => self.next_tx_id = next,
            None => self.tx_ids_exhausted = true,
        }
        self.outgoing.push(OutTransfer {
            id,
            total_len,
            sent: 0,
            acked: 0,
            started: false,
            end_sent: false,
        });
        self.last_xfer = self.now;
        Ok(id)
    }

    /// Drops an outgoing transfer none of whose segments was sent yet (for instance
    /// because its source failed before providing any data) and reports
    /// [`Event::OutgoingCancelled`]. A transfer that has sent a segment cannot be
    /// abandoned ([`UsageError::TransferStarted`]): TCPCL has no way to cancel it
    /// from the sending side, so the caller ends the session instead.
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
        // Order in the table does not matter: the next transfer is chosen by ID.
        self.outgoing.swap_remove(i);
        self.emit(Event::OutgoingCancelled { transfer_id });
        Ok(())
    }

    /// The transfer the next segment [`Session::poll_transmit`] produces would belong
    /// to: the one that has started and not sent its END segment, else the unstarted
    /// one started first (lowest ID). `None` when no transfer is waiting to be sent,
    /// or the session is not established or ending.
    pub fn current_outgoing(&self) -> Option<u64> {
        self.next_outgoing().map(|i| self.outgoing[i].id)
    }

    /// Index in `outgoing` of [`Session::current_outgoing`].
    pub(super) fn next_outgoing(&self) -> Option<usize> {
        if !matches!(self.phase, Phase::Established | Phase::Ending) {
            return None;
        }
        // RFC 9174 §5.2.2 forbids interleaving transfers, so at most one is mid-way
        // and it goes on until its END.
        if let Some(i) = self.outgoing.iter().position(|t| t.started && !t.end_sent) {
            return Some(i);
        }
        // RFC 9174 §6.1: no new transfer begins once the session is ending.
        if self.phase != Phase::Established {
            return None;
        }
        self.outgoing
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.started)
            .min_by_key(|(_, t)| t.id)
            .map(|(i, _)| i)
    }

    pub(super) fn on_ack(&mut self, a: XferAck) {
        let id = a.transfer_id;
        let Some(i) = self.outgoing.iter().position(|t| t.id == id) else {
            if !self.issued(id) {
                self.reject(MsgRejectReason::UNEXPECTED, MessageType::XferAck);
            }
            // Otherwise a late ack for a transfer refused or cancelled: ignore it.
            return;
        };
        let t = self.outgoing[i];
        if a.acked_len > t.sent || a.acked_len < t.acked {
            self.reject(MsgRejectReason::UNEXPECTED, MessageType::XferAck);
            return;
        }
        let sent_at = self
            .pending_acks
            .iter()
            .find(|p| p.id == id && p.end == a.acked_len)
            .map(|p| p.sent_at);
        self.pending_acks
            .retain(|p| !(p.id == id && p.end <= a.acked_len));
        if let Some(at) = sent_at {
            self.adapt(self.now.saturating_duration_since(at));
        }
        let finished = t.end_sent && a.acked_len == t.sent;
        self.outgoing[i].acked = a.acked_len;
        if finished {
            self.outgoing.swap_remove(i);
        }
        self.last_xfer = self.now;
        self.emit(Event::OutgoingAcked {
            transfer_id: id,
            acked_len: a.acked_len,
            finished,
        });
        self.check_ending();
    }

    pub(super) fn on_refuse(&mut self, r: XferRefuse) {
        let id = r.transfer_id;
        let Some(i) = self.outgoing.iter().position(|t| t.id == id) else {
            if !self.issued(id) {
                self.reject(MsgRejectReason::UNEXPECTED, MessageType::XferRefuse);
            }
            return;
        };
        self.outgoing.swap_remove(i);
        // A refused transfer's outstanding acks will never come.
        self.pending_acks.retain(|p| p.id != id);
        self.last_xfer = self.now;
        self.emit(Event::OutgoingRefused {
            transfer_id: id,
            reason: r.reason,
        });
        self.check_ending();
    }

    fn issued(&self, id: u64) -> bool {
        self.tx_ids_exhausted || id < self.next_tx_id
    }

    /// Adaptive segment sizing: grows toward the peer's Segment MRU (and our
    /// `tx_segment_max`) while acks come back fast, shrinks toward the floor when slow.
    fn adapt(&mut self, rtt: Duration) {
        let Some(target) = self.config.modulate_target_ack_time else {
            return;
        };
        let cap = self
            .negotiated
            .map_or(0, |n| n.peer_segment_mru)
            .min(self.config.tx_segment_max)
            .max(1);
        let floor = MIN_ADAPTIVE_SEGMENT.min(cap);
        if rtt * 2 < target {
            self.tx_size = self.tx_size.saturating_mul(2).min(cap).max(floor);
        } else if rtt > target {
            self.tx_size = (self.tx_size / 2).max(floor);
        }
    }
}
