//! Outgoing side: control messages and segments leave through
//! [`Session::poll_transmit`]; transfers are started, framed and acknowledged here.

use std::time::{Duration, Instant};

use super::*;

impl Session {
    /// Writes the next pending control message into `out`; `Ok(None)` when none is
    /// pending. On `BufferTooSmall { needed }` nothing is consumed.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Option<usize>, EncodeError> {
        self.now = now;
        if matches!(self.phase, Phase::Closed(_)) {
            return Ok(None);
        }
        let Some(&c) = self.ctrl.front() else {
            self.finish_closing();
            return Ok(None);
        };
        let n = self.encode_control(c, out)?;
        self.ctrl.pop_front();
        self.last_tx = now;
        if matches!(c, Control::Keepalive) {
            self.keepalive_queued = false;
        }
        self.finish_closing();
        Ok(Some(n))
    }

    /// Starts an outgoing transfer and returns its transfer ID (sequential from 0,
    /// RFC 9174 §5.2.1). `total_len`, if known, is announced with the Transfer Length
    /// extension on the first segment and checked against what is sent.
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

    /// The most data bytes the next segment of `transfer_id` may carry: the smaller of
    /// the peer's Segment MRU and our (possibly adaptive) send segment size, and of what
    /// is left of the announced total length. 0 for an unknown transfer, or when the
    /// announced length has all been sent (only an empty END segment remains).
    pub fn segment_limit(&self, transfer_id: u64) -> usize {
        let Some(t) = self.outgoing.iter().find(|t| t.id == transfer_id) else {
            return 0;
        };
        let mru = self.negotiated.map_or(0, |n| n.peer_segment_mru);
        let mut limit = mru.min(self.tx_size.max(1));
        if let Some(total) = t.total_len {
            limit = limit.min(total.saturating_sub(t.sent));
        }
        usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// Length of the next non-final segment header of `transfer_id` (larger for the
    /// first segment, which carries the START flag and extension items). It is an upper
    /// bound for a final segment: a transfer sent in one segment (START and END) omits
    /// the Transfer Length item. [`Session::encode_segment_header`] returns the exact
    /// length written.
    pub fn segment_header_len(&self, transfer_id: u64) -> Result<usize, UsageError> {
        let t = self
            .outgoing
            .iter()
            .find(|t| t.id == transfer_id)
            .ok_or(UsageError::UnknownTransfer(transfer_id))?;
        let mut tl = [0u8; 8];
        let items = [TransferLength(t.total_len.unwrap_or(0)).item(false, &mut tl)];
        let (flags, ext) = segment_shape(t, &items, false);
        Ok(XferSegmentHead::new(flags, transfer_id, ext, 0).encoded_len())
    }

    /// Writes the header of the next XFER_SEGMENT of `transfer_id` into `out`; the
    /// caller writes `data_len` data bytes right after it.
    ///
    /// The first segment gets START (and the Transfer Length extension when the total
    /// was given), the one with `end` gets END. The segment is registered for ack
    /// accounting. On error nothing is registered.
    pub fn encode_segment_header(
        &mut self,
        transfer_id: u64,
        data_len: u64,
        end: bool,
        out: &mut [u8],
    ) -> Result<usize, SegmentError> {
        self.check_can_send()?;
        let n = self.negotiated.ok_or(UsageError::NotEstablished)?;
        let i = self
            .outgoing
            .iter()
            .position(|t| t.id == transfer_id)
            .ok_or(UsageError::UnknownTransfer(transfer_id))?;
        let t = self.outgoing[i];
        if t.end_sent {
            return Err(UsageError::AlreadyEnded(transfer_id).into());
        }
        if !t.started && self.phase == Phase::Ending {
            return Err(UsageError::SessionTerminating.into());
        }
        if let Some(other) = self
            .outgoing
            .iter()
            .find(|o| o.id != transfer_id && o.started && !o.end_sent)
        {
            return Err(UsageError::Interleaved(other.id).into());
        }
        if data_len == 0 && !end {
            return Err(UsageError::EmptySegment.into());
        }
        if data_len > n.peer_segment_mru {
            return Err(UsageError::SegmentTooLarge {
                len: data_len,
                mru: n.peer_segment_mru,
            }
            .into());
        }
        let new_sent = t
            .sent
            .checked_add(data_len)
            .ok_or(UsageError::LengthMismatch)?;
        if let Some(total) = t.total_len {
            if new_sent > total || (end && new_sent != total) {
                return Err(UsageError::LengthMismatch.into());
            }
        }
        if new_sent > n.peer_transfer_mru {
            return Err(UsageError::TransferTooLarge {
                len: new_sent,
                mru: n.peer_transfer_mru,
            }
            .into());
        }
        if self.pending_acks.len() >= self.config.max_pending_acks {
            return Err(UsageError::AckBacklogFull.into());
        }
        let mut tl = [0u8; 8];
        let items = [TransferLength(t.total_len.unwrap_or(0)).item(false, &mut tl)];
        let (flags, ext) = segment_shape(&t, &items, end);
        let written = XferSegmentHead::new(flags, transfer_id, ext, data_len).encode(out)?;
        let t = &mut self.outgoing[i];
        t.started = true;
        t.sent = new_sent;
        t.end_sent = end;
        self.pending_acks.push_back(PendingAck {
            id: transfer_id,
            end: new_sent,
            sent_at: self.now,
        });
        self.last_tx = self.now;
        self.last_xfer = self.now;
        Ok(written)
    }

    /// Frames the next segment of `transfer_id` from `data` into `out`: header plus a
    /// copy of as much of `data` as the segment limit and `out` allow. `end` says
    /// `data` is the rest of the transfer; END is set only if all of it fits.
    ///
    /// Returns `(consumed, written)`: data bytes framed and total bytes written.
    pub fn frame_segment(
        &mut self,
        transfer_id: u64,
        data: &[u8],
        end: bool,
        out: &mut [u8],
    ) -> Result<(usize, usize), SegmentError> {
        let header = self.segment_header_len(transfer_id)?;
        let limit = self.segment_limit(transfer_id);
        if limit == 0 && !data.is_empty() {
            return Err(UsageError::LengthMismatch.into());
        }
        let want = data.len().min(limit);
        let n = want.min(out.len().saturating_sub(header));
        if n < want && n == 0 {
            return Err(EncodeError::BufferTooSmall {
                needed: header.saturating_add(want),
            }
            .into());
        }
        let is_end = end && n == data.len();
        let h = self.encode_segment_header(transfer_id, n as u64, is_end, out)?;
        let (Some(dst), Some(src)) = (out.get_mut(h..h + n), data.get(..n)) else {
            return Err(EncodeError::BufferTooSmall { needed: h + n }.into());
        };
        dst.copy_from_slice(src);
        Ok((n, h + n))
    }

    pub(super) fn encode_control(&self, c: Control, out: &mut [u8]) -> Result<usize, EncodeError> {
        match c {
            Control::Contact => {
                let flags = if self.config.can_tls {
                    ContactFlags::CAN_TLS
                } else {
                    ContactFlags::EMPTY
                };
                ContactHeader::new(flags).encode(out)
            }
            Control::SessInit => SessInit {
                keepalive: self.config.keepalive_interval,
                segment_mru: self.config.segment_mru,
                transfer_mru: self.config.transfer_mru,
                node_id: &self.config.node_id,
                extensions: ExtensionItems::parse(&self.config.session_extensions, 0)
                    .unwrap_or(ExtensionItems::EMPTY),
            }
            .encode(out),
            Control::Ack(m) => m.encode(out),
            Control::Refuse(m) => m.encode(out),
            Control::Keepalive => Message::Keepalive.encode(out),
            Control::Term(m) => m.encode(out),
            Control::Reject(m) => m.encode(out),
        }
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

    pub(super) fn issued(&self, id: u64) -> bool {
        self.tx_ids_exhausted || id < self.next_tx_id
    }

    pub(super) fn adapt(&mut self, rtt: Duration) {
        let Some(target) = self.config.modulate_target_ack_time else {
            return;
        };
        let mru = self.negotiated.map_or(0, |n| n.peer_segment_mru).max(1);
        let floor = MIN_ADAPTIVE_SEGMENT.min(mru);
        if rtt * 2 < target {
            self.tx_size = self.tx_size.saturating_mul(2).min(mru).max(floor);
        } else if rtt > target {
            self.tx_size = (self.tx_size / 2).max(floor);
        }
    }
}

/// Flags and extension block of the next segment of `t`.
fn segment_shape<'a>(
    t: &OutTransfer,
    items: &'a [crate::tcpcl::ExtensionItem<'a>],
    end: bool,
) -> (SegmentFlags, ExtensionItems<'a>) {
    let mut flags = SegmentFlags::EMPTY;
    let mut ext = ExtensionItems::EMPTY;
    if !t.started {
        flags = flags | SegmentFlags::START;
        // RFC 9174 §5.2.5.1: a single-segment transfer carries no Transfer Length.
        if t.total_len.is_some() && !end {
            ext = ExtensionItems::from_slice(items);
        }
    }
    if end {
        flags = flags | SegmentFlags::END;
    }
    (flags, ext)
}
