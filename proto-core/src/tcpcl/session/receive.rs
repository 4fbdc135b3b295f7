//! Incoming side: bytes from the peer are decoded into messages and segment data,
//! and the peer's transfers are tracked, confirmed and refused.

use std::time::Instant;

use super::{
    CloseReason, ContactFailure, Control, Event, InTransfer, Input, Phase, ProtocolError, Rx,
    RxData, Session, Step, Unconfirmed, UsageError,
};
use crate::tcpcl::{
    DecodeError, Message, MessageHead, MessageType, MsgReject, MsgRejectReason, SegmentFlags,
    SessTermReason, Status, TransferLength, XferAck, XferRefuse, XferRefuseReason, XferSegmentHead,
};

impl Session {
    /// Consumes bytes received from the peer.
    ///
    /// Returns how many bytes were consumed and at most one piece of transfer data,
    /// borrowed from `input`. Call again with the unconsumed rest. While the runtime
    /// runs the TLS handshake (after [`Event::StartTls`]) nothing is consumed. It also
    /// returns right after accepting a new incoming transfer's START segment head
    /// ([`Event::IncomingTransferStarted`]), before any of its data, so the caller can
    /// [`refuse`](Session::refuse_transfer) the transfer before reading it.
    ///
    /// After a piece with [`RxData::end_of_segment`], nothing more is consumed until
    /// [`Session::confirm_segment`] or [`Session::refuse_transfer`] was called for it.
    pub fn handle_input<'a>(&mut self, now: Instant, input: &'a [u8]) -> Input<'a> {
        self.now = now;
        let mut pos = 0usize;
        loop {
            match self.phase {
                Phase::Closed(_) | Phase::Closing(_) => {
                    // Nothing more is read from a session on its way out; what the peer
                    // still sends is discarded as a closed socket would.
                    pos = input.len();
                    break;
                }
                Phase::Tls => break,
                _ => {}
            }
            if self.unconfirmed.is_some() {
                // The application has not confirmed the last segment yet.
                break;
            }
            if let Rx::Data {
                id,
                flags,
                remaining,
                offset,
                deliver,
                ack,
                ..
            } = self.rx
            {
                let avail = input.len().saturating_sub(pos);
                let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                if n == 0 && remaining > 0 {
                    break;
                }
                let bytes = input.get(pos..pos + n).unwrap_or_default();
                pos += n;
                let left = remaining - n as u64;
                if let Rx::Data {
                    remaining, offset, ..
                } = &mut self.rx
                {
                    *remaining = left;
                    *offset += n as u64;
                }
                if n > 0 {
                    self.last_rx = now;
                }
                let done = left == 0;
                let end = done && flags.is_end();
                if done {
                    self.finish_segment();
                }
                if deliver && (n > 0 || done) {
                    return Input {
                        consumed: pos,
                        data: Some(RxData {
                            transfer_id: id,
                            bytes,
                            offset,
                            end_of_segment: done && ack,
                            end_of_transfer: end && ack,
                        }),
                    };
                }
                continue;
            }
            if pos >= input.len() || !self.has_room() {
                break;
            }
            let rest = input.get(pos..).unwrap_or_default();
            let used = self.step_head(rest);
            if used == 0 {
                break;
            }
            pos += used;
            self.last_rx = now;
            if std::mem::take(&mut self.yield_at_start)
                && !matches!(self.rx, Rx::Data { remaining: 0, .. })
            {
                // A new incoming transfer: return before its data, so the caller can
                // refuse it (`refuse_transfer`) before any of it is acknowledged.
                // A START segment without data is handed out as its empty piece in
                // this same call instead: the caller sees the start event first and
                // can still refuse rather than confirm, and a runtime that calls again
                // only when more bytes arrive never strands it (an empty bundle that
                // was the last thing the peer sent would otherwise never be
                // acknowledged).
                break;
            }
        }
        Input {
            consumed: pos,
            data: None,
        }
    }

    /// Decodes and handles one unit (contact header, control message or segment head)
    /// from the front of `input`, buffering it if incomplete. Returns bytes consumed.
    pub(super) fn step_head(&mut self, input: &[u8]) -> usize {
        if self.buf.is_empty() {
            match self.decode_unit(input) {
                Step::Complete(n) => return n,
                Step::Partial => {}
            }
        }
        // Buffered path: the unit continues past what we have, so every byte we have
        // belongs to it (a segment head may complete early, in which case the bytes
        // after it are handed back by consuming less).
        let old = self.buf.len();
        let room = self.buf_limit.saturating_sub(old);
        let take = input.len().min(room);
        if take == 0 {
            // Cannot happen: the decode limit equals the buffer capacity, so a unit
            // that would not fit fails to decode first. Treat it as too large.
            self.fail_close(
                CloseReason::ProtocolError(ProtocolError::TooLarge {
                    message_type: self.buf.first().copied().unwrap_or(0),
                }),
                Some(SessTermReason::RESOURCE_EXHAUSTION),
            );
            self.buf.clear();
            return input.len();
        }
        self.buf
            .extend_from_slice(input.get(..take).unwrap_or_default());
        let buf = std::mem::take(&mut self.buf);
        let step = self.decode_unit(&buf);
        self.buf = buf;
        match step {
            Step::Complete(n) => {
                self.buf.clear();
                n.saturating_sub(old).min(take)
            }
            Step::Partial => take,
        }
    }

    pub(super) fn decode_unit(&mut self, bytes: &[u8]) -> Step {
        if self.phase == Phase::Contact {
            return self.decode_contact(bytes);
        }
        match MessageHead::decode(bytes, &self.limits) {
            Ok(Status::Partial { .. }) => Step::Partial,
            Ok(Status::Complete((head, n))) => {
                self.on_message(head);
                Step::Complete(n)
            }
            Err(e) => {
                self.on_decode_error(e, bytes.first().copied().unwrap_or(0));
                Step::Complete(bytes.len())
            }
        }
    }

    pub(super) fn on_decode_error(&mut self, e: DecodeError, message_type: u8) {
        let in_init = self.phase == Phase::SessInit && message_type == MessageType::SessInit.code();
        match e {
            DecodeError::UnknownMessageType { message_type, .. } => {
                // RFC 9174 §5.1.2: MSG_REJECT "message type unknown", then close: the
                // message's length is unknown.
                self.queue(Control::Reject(MsgReject {
                    reason: MsgRejectReason::UNKNOWN_TYPE,
                    rejected_header: message_type,
                }));
                self.fail_close(
                    CloseReason::ProtocolError(ProtocolError::UnknownMessageType { message_type }),
                    None,
                );
            }
            DecodeError::TooLarge { .. } if in_init => self.fail_close(
                CloseReason::ContactFailure(ContactFailure::SessInitTooLarge),
                Some(SessTermReason::CONTACT_FAILURE),
            ),
            DecodeError::TooLarge { .. } => self.fail_close(
                CloseReason::ProtocolError(ProtocolError::TooLarge { message_type }),
                Some(SessTermReason::RESOURCE_EXHAUSTION),
            ),
            _ if in_init => self.fail_close(
                CloseReason::ContactFailure(ContactFailure::MalformedSessInit),
                Some(SessTermReason::CONTACT_FAILURE),
            ),
            _ => self.fail_close(
                CloseReason::ProtocolError(ProtocolError::Malformed { message_type }),
                Some(SessTermReason::UNKNOWN),
            ),
        }
    }

    pub(super) fn on_message(&mut self, head: MessageHead<'_>) {
        let live = matches!(self.phase, Phase::Established | Phase::Ending);
        let msg = match head {
            MessageHead::Segment(h) => return self.on_segment(h),
            MessageHead::Message(m) => m,
        };
        match msg {
            Message::SessInit(si) if self.phase == Phase::SessInit => self.on_sess_init(si),
            Message::SessTerm(t) => self.on_sess_term(t),
            Message::MsgReject(r) => self.emit(Event::MessageRejected {
                message_type: r.rejected_header,
                reason: r.reason,
            }),
            Message::Keepalive if live => self.emit(Event::KeepaliveReceived),
            Message::XferAck(a) if live => self.on_ack(a),
            Message::XferRefuse(r) if live => self.on_refuse(r),
            // A SESS_INIT after establishment, or transfer traffic before it.
            m => self.reject(MsgRejectReason::UNEXPECTED, m.message_type()),
        }
    }

    pub(super) fn on_segment(&mut self, h: XferSegmentHead<'_>) {
        let id = h.transfer_id;
        let flags = h.flags;
        // By default the segment's data is skipped unacknowledged.
        self.rx = Rx::Data {
            id,
            flags,
            remaining: h.data_len,
            offset: 0,
            deliver: false,
            ack: false,
            ack_len: 0,
        };
        if !matches!(self.phase, Phase::Established | Phase::Ending) {
            self.reject(MsgRejectReason::UNEXPECTED, MessageType::XferSegment);
            return;
        }
        if let Some((refused, reason)) = self.refused_rx {
            if refused == id {
                // RFC 9174 §5.2.4: a segment of a refused transfer (it crossed our
                // XFER_REFUSE on the wire) is refused again. A START reusing the ID is
                // no new transfer either: IDs are unique within a session (§5.2.1).
                self.queue(Control::Refuse(XferRefuse {
                    reason,
                    transfer_id: id,
                }));
                self.skip_refused(id, flags, reason);
                return;
            }
        }
        let i = if flags.is_start() {
            if let Some(i) = self.incoming.iter().position(|t| t.id == id) {
                // START on a transfer in progress: never splice the two.
                self.refuse_incoming(i, XferRefuseReason::NOT_ACCEPTABLE);
                self.skip_refused(id, flags, XferRefuseReason::NOT_ACCEPTABLE);
                return;
            }
            let refuse = if self.term.is_some() {
                Some(XferRefuseReason::SESSION_TERMINATING)
            } else if h
                .extensions
                .unsupported_critical(|t| t == TransferLength::ITEM_TYPE)
                .is_some()
            {
                Some(XferRefuseReason::EXTENSION_FAILURE)
            } else {
                match h.extensions.transfer_length() {
                    Err(_) => Some(XferRefuseReason::NOT_ACCEPTABLE),
                    Ok(Some(TransferLength(l))) if l > self.config.transfer_mru => {
                        Some(XferRefuseReason::NO_RESOURCES)
                    }
                    Ok(_) if self.incoming.len() >= self.config.max_incoming_transfers => {
                        Some(XferRefuseReason::NO_RESOURCES)
                    }
                    Ok(_) => None,
                }
            };
            if let Some(reason) = refuse {
                self.refuse_new(id, flags, reason);
                return;
            }
            let total_len = h.extensions.transfer_length().ok().flatten().map(|t| t.0);
            self.incoming.push(InTransfer {
                id,
                received: 0,
                total_len,
            });
            self.emit(Event::IncomingTransferStarted {
                transfer_id: id,
                total_len,
            });
            self.yield_at_start = true;
            self.incoming.len() - 1
        } else if let Some(i) = self.incoming.iter().position(|t| t.id == id) {
            i
        } else {
            // Continuation of a transfer we never saw start.
            self.refuse_new(id, flags, XferRefuseReason::NOT_ACCEPTABLE);
            return;
        };
        let received = self.incoming[i].received;
        let total = self.incoming[i].total_len;
        let new_total = received.checked_add(h.data_len);
        // RFC 9174 §5.2.5.1: data disagreeing with the announced Total Length is Not
        // Acceptable, whatever else is wrong with it; checked before the Transfer MRU.
        let refuse = match new_total {
            None => Some(XferRefuseReason::NOT_ACCEPTABLE),
            _ if h.data_len > self.config.segment_mru => Some(XferRefuseReason::NOT_ACCEPTABLE),
            Some(n) if total.is_some_and(|t| n > t || (flags.is_end() && n != t)) => {
                Some(XferRefuseReason::NOT_ACCEPTABLE)
            }
            Some(n) if n > self.config.transfer_mru => Some(XferRefuseReason::NO_RESOURCES),
            _ => None,
        };
        if let Some(reason) = refuse {
            self.refuse_incoming(i, reason);
            self.skip_refused(id, flags, reason);
            return;
        }
        self.rx = Rx::Data {
            id,
            flags,
            remaining: h.data_len,
            offset: received,
            deliver: true,
            ack: true,
            ack_len: new_total.unwrap_or(received),
        };
        self.last_xfer = self.now;
    }

    /// The rest of a refused transfer is discarded (and refused again, segment by
    /// segment) until its END segment.
    pub(super) fn skip_refused(&mut self, id: u64, flags: SegmentFlags, reason: XferRefuseReason) {
        self.refused_rx = (!flags.is_end()).then_some((id, reason));
    }

    pub(super) fn refuse_new(&mut self, id: u64, flags: SegmentFlags, reason: XferRefuseReason) {
        self.queue(Control::Refuse(XferRefuse {
            reason,
            transfer_id: id,
        }));
        self.emit(Event::IncomingTransferRefused {
            transfer_id: id,
            reason,
        });
        self.skip_refused(id, flags, reason);
    }

    pub(super) fn refuse_incoming(&mut self, i: usize, reason: XferRefuseReason) {
        let t = self.incoming.swap_remove(i);
        self.queue(Control::Refuse(XferRefuse {
            reason,
            transfer_id: t.id,
        }));
        self.emit(Event::IncomingTransferRefused {
            transfer_id: t.id,
            reason,
        });
        self.refused_rx = Some((t.id, reason));
        if let Some(u) = self.unconfirmed.filter(|u| u.id == t.id) {
            self.unconfirmed = None;
            if u.flags.is_end() {
                // Its last segment was received already: nothing follows.
                self.refused_rx = None;
            }
        }
        if let Rx::Data {
            id,
            flags,
            deliver,
            ack,
            ..
        } = &mut self.rx
        {
            if *id == t.id {
                *deliver = false;
                *ack = false;
                if flags.is_end() {
                    // Its last segment is the one being received: nothing follows.
                    self.refused_rx = None;
                }
            }
        }
        self.check_ending();
    }

    /// The current segment's data has all been consumed.
    pub(super) fn finish_segment(&mut self) {
        let Rx::Data {
            id,
            flags,
            ack,
            ack_len,
            ..
        } = self.rx
        else {
            return;
        };
        self.rx = Rx::Head;
        if ack {
            // The XFER_ACK waits for `confirm_segment`.
            self.unconfirmed = Some(Unconfirmed { id, flags, ack_len });
            self.last_xfer = self.now;
        } else if flags.is_end() && self.refused_rx.is_some_and(|(r, _)| r == id) {
            self.refused_rx = None;
        }
        self.check_ending();
    }

    /// Confirms that the segment of `transfer_id` just delivered (the piece with
    /// [`RxData::end_of_segment`]) was processed: its data is stored, and for the END
    /// segment the whole bundle is complete. Queues the segment's XFER_ACK (and
    /// [`Event::IncomingTransferFinished`] after the END segment) and lets input
    /// continue.
    pub fn confirm_segment(&mut self, transfer_id: u64) -> Result<(), UsageError> {
        let u = match self.unconfirmed {
            Some(u) if u.id == transfer_id => u,
            _ => return Err(UsageError::NothingToConfirm(transfer_id)),
        };
        self.unconfirmed = None;
        self.queue(Control::Ack(XferAck {
            flags: u.flags,
            transfer_id: u.id,
            acked_len: u.ack_len,
        }));
        if let Some(i) = self.incoming.iter().position(|t| t.id == u.id) {
            self.incoming[i].received = u.ack_len;
            if u.flags.is_end() {
                self.incoming.swap_remove(i);
                self.emit(Event::IncomingTransferFinished {
                    transfer_id: u.id,
                    len: u.ack_len,
                });
            }
        }
        self.last_xfer = self.now;
        self.check_ending();
        Ok(())
    }

    /// Refuses an incoming transfer (XFER_REFUSE with `reason`); its remaining
    /// segments are discarded unacknowledged. A segment delivered and not yet
    /// [confirmed](Session::confirm_segment) is never acknowledged. A session that is
    /// closing or closed refuses nothing ([`UsageError::Closed`]): its transfers are
    /// over, and nothing may follow [`Event::Closed`].
    pub fn refuse_transfer(
        &mut self,
        transfer_id: u64,
        reason: XferRefuseReason,
    ) -> Result<(), UsageError> {
        if matches!(self.phase, Phase::Closing(_) | Phase::Closed(_)) {
            return Err(UsageError::Closed);
        }
        let i = self
            .incoming
            .iter()
            .position(|t| t.id == transfer_id)
            .ok_or(UsageError::UnknownTransfer(transfer_id))?;
        self.refuse_incoming(i, reason);
        Ok(())
    }
}
