//! Incoming side: the peer's contact header and negotiation (RFC 7242 §4), then its
//! messages and bundle data (§5, §6.1); confirming and refusing the peer's bundles.

use std::time::Instant;

use super::{shutdown_with, Control, InBundle, Phase, Rx, Session, Shutdown, Step, Unconfirmed};
use crate::tcpcl::v3::{DataFlags, Message, MessageType, Negotiated, RefuseReason, ShutdownReason};
use crate::tcpcl::{
    CloseReason, Contact, DecodeError, DecodeLimits, Event, Input, ProtocolError, RxData, Status,
    UsageError, XferRefuseReason, VERSION_3,
};

impl Session {
    /// Consumes bytes received from the peer; the same contract as the v4
    /// [`Session::handle_input`](crate::tcpcl::Session::handle_input): at most one
    /// piece of bundle data per call, borrowed from `input`; a return right after a
    /// new bundle's first segment head ([`Event::IncomingTransferStarted`]) so it can
    /// be refused before its data is read; nothing consumed after a piece with
    /// [`RxData::end_of_segment`] until [`Session::confirm_segment`] or
    /// [`Session::refuse_transfer`].
    pub fn handle_input<'a>(&mut self, now: Instant, input: &'a [u8]) -> Input<'a> {
        self.now = now;
        let mut pos = 0usize;
        loop {
            if matches!(self.phase, Phase::Closed(_) | Phase::Closing(_)) {
                pos = input.len();
                break;
            }
            if self.unconfirmed.is_some() {
                break;
            }
            if let Rx::Data {
                id,
                end,
                remaining,
                offset,
                deliver,
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
                if n > 0 {
                    self.last_rx = now;
                    self.last_xfer = now;
                }
                let done = left == 0;
                if done {
                    self.rx = Rx::Head;
                    if deliver {
                        self.unconfirmed = Some(Unconfirmed {
                            id,
                            end,
                            ack_len: offset + n as u64,
                        });
                    }
                } else if let Rx::Data {
                    remaining, offset, ..
                } = &mut self.rx
                {
                    *remaining = left;
                    *offset += n as u64;
                }
                if deliver && (n > 0 || done) {
                    return Input {
                        consumed: pos,
                        data: Some(RxData {
                            transfer_id: id,
                            bytes,
                            offset,
                            end_of_segment: done,
                            end_of_transfer: done && end,
                        }),
                    };
                }
                continue;
            }
            if pos >= input.len() || !self.has_room() {
                break;
            }
            let used = self.step_head(input.get(pos..).unwrap_or_default());
            if used == 0 {
                break;
            }
            pos += used;
            self.last_rx = now;
            if std::mem::take(&mut self.yield_at_start)
                && !matches!(self.rx, Rx::Data { remaining: 0, .. })
            {
                // A new bundle: return before its data so it can still be refused.
                break;
            }
        }
        Input {
            consumed: pos,
            data: None,
        }
    }

    /// Decodes and handles one unit from the front of `input`, buffering it if
    /// incomplete. Returns bytes consumed.
    fn step_head(&mut self, input: &[u8]) -> usize {
        if self.buf.is_empty() {
            if let Step::Complete(n) = self.decode_unit(input) {
                return n;
            }
        }
        let old = self.buf.len();
        let take = input.len().min(self.buf_limit.saturating_sub(old));
        if take == 0 {
            // The decode limits keep every unit within `buf_limit`; not reachable.
            self.protocol_error(ProtocolError::TooLarge { message_type: 0 });
            return input.len();
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(&input[..take]);
        let r = self.decode_unit(&buf);
        match r {
            Step::Complete(n) => {
                buf.clear();
                self.buf = buf;
                n.saturating_sub(old)
            }
            Step::Partial => {
                // Keep what we have; it all belongs to this unit.
                self.buf = buf;
                take
            }
        }
    }

    fn decode_unit(&mut self, bytes: &[u8]) -> Step {
        if self.phase == Phase::Contact {
            return self.decode_contact(bytes);
        }
        match Message::decode(bytes) {
            Ok(Status::Complete((m, n))) => {
                self.on_message(m);
                Step::Complete(n)
            }
            Ok(Status::Partial { .. }) => Step::Partial,
            Err(DecodeError::UnknownMessageType { message_type, .. }) => {
                self.protocol_error(ProtocolError::UnknownMessageType { message_type });
                Step::Complete(bytes.len())
            }
            Err(_) => {
                let t = bytes.first().map_or(0, |b| b >> 4);
                self.protocol_error(ProtocolError::Malformed { message_type: t });
                Step::Complete(bytes.len())
            }
        }
    }

    fn decode_contact(&mut self, bytes: &[u8]) -> Step {
        let limits = DecodeLimits::new(self.buf_limit);
        match Contact::decode_with(bytes, &limits) {
            Err(DecodeError::BadMagic { .. }) => {
                // §4.2: not a TCPCL peer; the connection is terminated.
                self.close_now(CloseReason::BadMagic);
                Step::Complete(bytes.len())
            }
            Err(DecodeError::TooLarge { .. }) if bytes.get(4) == Some(&VERSION_3) => {
                // The peer's EID is longer than `max_eid_len`: not buffered.
                self.fail_close(
                    CloseReason::ProtocolError(ProtocolError::TooLarge { message_type: 0 }),
                    Some(Shutdown::default()),
                );
                Step::Complete(bytes.len())
            }
            Err(_) => {
                self.version_mismatch(bytes.get(4).copied().unwrap_or(0));
                Step::Complete(bytes.len())
            }
            Ok(Status::Partial { .. }) => match bytes.get(4) {
                Some(&v) if v != VERSION_3 => {
                    self.version_mismatch(v);
                    Step::Complete(bytes.len())
                }
                _ => Step::Partial,
            },
            Ok(Status::Complete((Contact::V3(h), n))) => {
                let n_params = Negotiated::new(
                    self.config.contact_flags(),
                    self.config.keepalive_interval,
                    &h,
                );
                // The one allocation after construction: the peer's EID.
                self.peer_eid = String::from_utf8_lossy(h.eid).into_owned();
                self.peer_keepalive = h.keepalive;
                self.negotiated = Some(n_params);
                self.phase = Phase::Established;
                self.last_xfer = self.now;
                self.emit(Event::SessionEstablished);
                Step::Complete(n)
            }
            Ok(Status::Complete((c, _))) => {
                self.version_mismatch(c.version());
                Step::Complete(bytes.len())
            }
        }
    }

    /// §4.2: a header of another version is answered with SHUTDOWN (Version
    /// mismatch), after our own contact header, which is already queued.
    fn version_mismatch(&mut self, version: u8) {
        self.fail_close(
            CloseReason::VersionMismatch { version },
            Some(shutdown_with(ShutdownReason::VERSION_MISMATCH)),
        );
    }

    fn on_message(&mut self, m: Message) {
        match m {
            Message::DataSegment { flags, len } => self.on_segment(flags, len),
            Message::AckSegment { len } => self.on_ack(len),
            Message::RefuseBundle { reason } => self.on_refuse(reason),
            Message::Keepalive => self.emit(Event::KeepaliveReceived),
            Message::Shutdown(s) => self.on_shutdown(s),
            // §5.5: the length of the next bundle; kept for its first segment.
            Message::Length { len } => self.next_length = Some(len),
        }
    }

    fn on_segment(&mut self, flags: DataFlags, len: u64) {
        let malformed = ProtocolError::Malformed {
            message_type: MessageType::DataSegment.code(),
        };
        let (id, offset) = if flags.is_start() {
            if self.incoming.is_some() {
                // A new bundle before the last one ended: framing is lost.
                self.protocol_error(malformed);
                return;
            }
            self.discarding = false;
            let id = self.next_rx_id;
            self.next_rx_id = self.next_rx_id.wrapping_add(1);
            let total_len = self.next_length.take();
            self.incoming = Some(InBundle { id, received: 0 });
            self.yield_at_start = true;
            self.emit(Event::IncomingTransferStarted {
                transfer_id: id,
                total_len,
            });
            if total_len.is_some_and(|t| t > self.config.transfer_mru) {
                self.reject_segment(id, flags, len);
                return;
            }
            (id, 0)
        } else {
            // §5.5: LENGTH announces only a bundle's first segment.
            self.next_length = None;
            match self.incoming {
                Some(b) => (b.id, b.received),
                None if self.discarding => {
                    self.rx = discard(flags, len);
                    return;
                }
                None => {
                    self.protocol_error(malformed);
                    return;
                }
            }
        };
        if offset.saturating_add(len) > self.config.transfer_mru {
            self.reject_segment(id, flags, len);
            return;
        }
        if let Some(b) = &mut self.incoming {
            b.received = offset.saturating_add(len);
        }
        self.rx = Rx::Data {
            id,
            end: flags.is_end(),
            remaining: len,
            offset,
            deliver: true,
        };
    }

    /// The bundle is larger than our `transfer_mru`: refused (No Resources) when
    /// refusal was negotiated, else the session ends; this segment's data is
    /// discarded either way.
    fn reject_segment(&mut self, id: u64, flags: DataFlags, len: u64) {
        // Without negotiated refusal the session ends: the bundle is larger than we
        // take, and v3 has no other way to say so.
        let too_large = CloseReason::ProtocolError(ProtocolError::TooLarge {
            message_type: MessageType::DataSegment.code(),
        });
        self.refuse_incoming(id, XferRefuseReason::NO_RESOURCES, too_large);
        if !self.is_closing() {
            self.rx = discard(flags, len);
        }
    }

    fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing(_) | Phase::Closed(_))
    }

    /// Confirms that the segment of `transfer_id` just delivered was stored (for the
    /// last segment: the whole bundle). With acks negotiated its ACK_SEGMENT
    /// (cumulative length) is queued; after the last segment
    /// [`Event::IncomingTransferFinished`] follows. Input continues.
    pub fn confirm_segment(&mut self, transfer_id: u64) -> Result<(), UsageError> {
        let u = match self.unconfirmed {
            Some(u) if u.id == transfer_id => u,
            _ => return Err(UsageError::NothingToConfirm(transfer_id)),
        };
        self.unconfirmed = None;
        if self.negotiated.is_some_and(|n| n.acks) {
            self.queue(Control::Message(Message::AckSegment { len: u.ack_len }));
        }
        if u.end {
            self.incoming = None;
            self.emit(Event::IncomingTransferFinished {
                transfer_id,
                len: u.ack_len,
            });
        }
        self.last_xfer = self.now;
        self.check_ending();
        Ok(())
    }

    /// Refuses the peer's bundle `transfer_id`. With refusal negotiated (§4.2) this
    /// queues REFUSE_BUNDLE (`reason` in v3 terms, [`RefuseReason::from_v4`]), reports
    /// [`Event::IncomingTransferRefused`] and discards the rest of the bundle.
    /// Without it v3 cannot decline a bundle: the session ends (SHUTDOWN, then
    /// [`CloseReason::LocalClose`]). Either way a delivered, unconfirmed segment is
    /// never acknowledged.
    pub fn refuse_transfer(
        &mut self,
        transfer_id: u64,
        reason: XferRefuseReason,
    ) -> Result<(), UsageError> {
        if self.incoming.is_none_or(|b| b.id != transfer_id) {
            return Err(UsageError::UnknownTransfer(transfer_id));
        }
        self.refuse_incoming(transfer_id, reason, CloseReason::LocalClose);
        Ok(())
    }

    /// Refuses bundle `id`; without negotiated refusal the session closes with
    /// `otherwise` instead.
    fn refuse_incoming(&mut self, id: u64, reason: XferRefuseReason, otherwise: CloseReason) {
        self.unconfirmed = None;
        self.incoming = None;
        if !self.negotiated.is_some_and(|n| n.refusal) {
            self.fail_close(otherwise, Some(Shutdown::default()));
            return;
        }
        let r = RefuseReason::from_v4(reason);
        self.queue(Control::Message(Message::RefuseBundle { reason: r }));
        self.discarding = true;
        if let Rx::Data {
            id: rid, deliver, ..
        } = &mut self.rx
        {
            if *rid == id {
                *deliver = false;
            }
        }
        self.emit(Event::IncomingTransferRefused {
            transfer_id: id,
            reason: r.to_v4(),
        });
        self.check_ending();
    }
}

/// Reads past a segment's data without delivering it.
fn discard(flags: DataFlags, len: u64) -> Rx {
    Rx::Data {
        id: u64::MAX,
        end: flags.is_end(),
        remaining: len,
        offset: 0,
        deliver: false,
    }
}
