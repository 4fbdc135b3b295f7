//! The receive path of a connection: TPKT frames deframed without copying, a class 0
//! DT's payload streamed out of the caller's input, every other TPDU buffered whole and
//! handled by the state machine ([`Connection::handle_input`]); end of stream.

use super::*;

impl Connection {
    /// The transport reached end of stream.
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.state {
            State::Closed => {}
            State::Closing => {
                // The peer is gone; whatever was queued cannot be delivered.
                self.pending.clear();
                self.raw_len = 0;
                self.state = State::Closed;
                if let Some(r) = self.close_reason {
                    self.emit(Event::Closed(r));
                }
            }
            // A message that began but never saw its EOT is lost with the transport:
            // that is not a clean release.
            _ if !self.deframer.at_frame_boundary() || self.msg_len > 0 => {
                self.emit(Event::ProtocolError(ProtocolError::Truncated));
                self.finish(CloseReason::ProtocolError(ProtocolError::Truncated));
            }
            _ => self.finish(CloseReason::TransportClosed),
        }
    }

    /// Processes received bytes. Returns how many were consumed and at most one piece
    /// of user data; call again with the unconsumed rest. Input after the connection
    /// ended is consumed and ignored.
    pub fn handle_input<'a>(&mut self, now: Instant, input: &'a [u8]) -> Input<'a> {
        self.last_tpdu_valid = false;
        if matches!(self.state, State::Closed | State::Closing) {
            return Input {
                consumed: input.len(),
                data: None,
            };
        }
        if !input.is_empty() && self.state == State::Open {
            if let Some(d) = self.cfg.inactivity_timeout {
                self.inactivity_deadline = Some(now + d);
            }
        }
        let mut consumed = 0;
        while consumed < input.len() {
            if self.events.len() >= EVENT_HIGH_WATER
                || matches!(self.state, State::Closed | State::Closing)
            {
                break;
            }
            let (used, chunk) = match self.deframer.next_chunk(&input[consumed..]) {
                Ok(x) => x,
                Err(e) => {
                    self.violation(ProtocolError::Malformed(FrameError::Tpkt(e)), None);
                    self.rx = Rx::Discard;
                    return Input {
                        consumed: input.len(),
                        data: None,
                    };
                }
            };
            consumed += used;
            let Some(chunk) = chunk else { continue };
            if chunk.is_first() {
                self.rx = Rx::Header;
                self.head_len = 0;
                self.ctrl_len = 0;
                self.frame_payload = chunk.frame_payload_len;
                self.dt_started = false;
            }
            let mut bytes = chunk.data;
            if self.rx == Rx::Header {
                let want = self.frame_payload.min(3) - self.head_len;
                let take = want.min(bytes.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&bytes[..take]);
                self.head_len += take;
                bytes = &bytes[take..];
                if self.head_len < self.frame_payload.min(3) {
                    continue;
                }
                let is_class0_dt = self.head_len == 3
                    && self.head[0] == 2
                    && self.head[1] == TpduKind::Data.code();
                if is_class0_dt && self.state == State::Open {
                    self.rx = Rx::Data {
                        eot: self.head[2] & 0x80 != 0,
                    };
                    if bytes.is_empty() && chunk.is_last() {
                        // An empty DT: legal to receive, carries only its EOT.
                        let eot = self.head[2] & 0x80 != 0;
                        if eot {
                            self.msg_len = 0;
                            return Input {
                                consumed,
                                data: Some(RxData {
                                    bytes: &[],
                                    first_in_tpdu: true,
                                    last_in_tpdu: true,
                                    end_of_message: true,
                                }),
                            };
                        }
                        continue;
                    }
                } else {
                    if self.frame_payload > self.ctrl.len() {
                        let e = ProtocolError::ControlTpduTooLarge {
                            len: self.frame_payload,
                        };
                        let head = self.head;
                        self.echo_header(&head[..self.head_len]);
                        self.violation(e, Some(RejectCause::NOT_SPECIFIED));
                        self.rx = Rx::Discard;
                        return Input {
                            consumed: input.len(),
                            data: None,
                        };
                    }
                    self.rx = Rx::Control;
                    self.ctrl[..self.head_len].copy_from_slice(&self.head[..self.head_len]);
                    self.ctrl_len = self.head_len;
                }
            }
            match self.rx {
                Rx::Control => {
                    let end = self.ctrl_len + bytes.len();
                    self.ctrl[self.ctrl_len..end].copy_from_slice(bytes);
                    self.ctrl_len = end;
                    if chunk.is_last() {
                        self.process_control(now);
                        // One control TPDU per call, so `last_tpdu` shows each one.
                        return Input {
                            consumed,
                            data: None,
                        };
                    }
                }
                Rx::Data { eot } => {
                    if bytes.is_empty() {
                        continue;
                    }
                    self.msg_len += bytes.len();
                    if self.msg_len > self.cfg.max_message_size {
                        let limit = self.cfg.max_message_size;
                        self.emit(Event::ProtocolError(ProtocolError::MessageTooLarge {
                            limit,
                        }));
                        // Resource exhaustion at the receiver: X.224 has no closer reason.
                        self.end_with(
                            Pending::Dr(DisconnectReason::CONGESTION_AT_TSAP),
                            CloseReason::ProtocolError(ProtocolError::MessageTooLarge { limit }),
                        );
                        self.rx = Rx::Discard;
                        return Input {
                            consumed: input.len(),
                            data: None,
                        };
                    }
                    let first = !self.dt_started;
                    self.dt_started = true;
                    let end_of_message = eot && chunk.is_last();
                    if end_of_message {
                        self.msg_len = 0;
                    }
                    return Input {
                        consumed,
                        data: Some(RxData {
                            bytes,
                            first_in_tpdu: first,
                            last_in_tpdu: chunk.is_last(),
                            end_of_message,
                        }),
                    };
                }
                Rx::Header | Rx::Discard => {}
            }
        }
        Input {
            consumed,
            data: None,
        }
    }

    /// Keeps the header of the TPDU in `tpdu` (as far as its LI reaches) for the ER.
    pub(super) fn echo_tpdu_header(&mut self, tpdu: &[u8]) {
        let header_len = tpdu
            .first()
            .map_or(0, |&li| usize::from(li) + 1)
            .min(tpdu.len());
        self.echo_header(&tpdu[..header_len]);
    }

    fn echo_header(&mut self, header: &[u8]) {
        let n = header.len().min(ER_ECHO_MAX);
        self.er_echo[..n].copy_from_slice(&header[..n]);
        self.er_echo_len = n;
    }

    /// Handles a whole control TPDU sitting in `self.ctrl`.
    fn process_control(&mut self, now: Instant) {
        // Take the buffer out so the decoded TPDU can borrow it while `self` changes;
        // an empty boxed slice does not allocate.
        let ctrl = core::mem::take(&mut self.ctrl);
        let len = self.ctrl_len;
        self.handle_control(now, &ctrl[..len]);
        self.ctrl = ctrl;
        self.last_tpdu_valid = true;
    }

    fn handle_control(&mut self, now: Instant, buf: &[u8]) {
        let tpdu = match Tpdu::decode(buf) {
            Ok(t) => t,
            Err(e) => {
                self.echo_tpdu_header(buf);
                let cause = match e {
                    TpduError::UnknownType { .. } => RejectCause::INVALID_TPDU_TYPE,
                    TpduError::ParameterLength { .. } | TpduError::InvalidValue { .. } => {
                        RejectCause::INVALID_PARAMETER_VALUE
                    }
                    _ => RejectCause::NOT_SPECIFIED,
                };
                let e = ProtocolError::Malformed(FrameError::Tpdu(e.shifted(tpkt::HEADER_LEN)));
                self.violation(e, Some(cause));
                return;
            }
        };
        let kind = tpdu.kind();
        self.emit(Event::TpduReceived { kind });
        match (self.state, tpdu) {
            (State::AwaitingRequest, Tpdu::ConnectionRequest(cr)) => {
                self.remote_ref = cr.src_ref;
                self.calling_tsap = tsap_of(cr.params.calling_tsap());
                self.called_tsap = tsap_of(cr.params.called_tsap());
                let decision = negotiate::decide(
                    &cr,
                    self.cfg.local_tsap.as_ref(),
                    self.cfg.tpdu_size,
                    self.cfg.tpdu_size.bytes() as u64,
                );
                match decision {
                    Decision::Refuse(reason) => {
                        self.end_with(Pending::Dr(reason), CloseReason::LocalRefused { reason });
                    }
                    Decision::Accept {
                        tpdu_size,
                        preferred_max,
                    } => {
                        self.tpdu_size = tpdu_size;
                        self.preferred_max = preferred_max;
                        self.expedited = self.cfg.expedited && ed::selected(&cr.params);
                        if self.cfg.manual_accept {
                            self.state = State::AwaitingAccept;
                            self.emit(Event::ConnectRequested);
                        } else {
                            self.open_passive(now);
                        }
                    }
                }
            }
            (State::AwaitingConfirm, Tpdu::ConnectionConfirm(cc)) => {
                if cc.class != 0 {
                    self.emit(Event::ProtocolError(ProtocolError::ClassNotSupported {
                        class: cc.class,
                    }));
                    self.remote_ref = cc.src_ref;
                    self.end_with(
                        Pending::Dr(DisconnectReason::NEGOTIATION_FAILED),
                        CloseReason::ProtocolError(ProtocolError::ClassNotSupported {
                            class: cc.class,
                        }),
                    );
                    return;
                }
                self.remote_ref = cc.src_ref;
                // Never send more than we proposed; a CC without C0 means 128.
                self.tpdu_size = cc
                    .params
                    .tpdu_size()
                    .unwrap_or(TpduSize::S128)
                    .min(self.cfg.tpdu_size);
                // What our CR actually proposed: F0 is a whole number of 128-octet units.
                let ours = self
                    .cfg
                    .preferred_max_tpdu_size
                    .map(|p| u64::from((p / 128).max(1)) * 128);
                self.preferred_max = match (ours, cc.params.preferred_max_tpdu_size()) {
                    // F0 counts 128-octet units; a peer's 0 must not shrink DTs
                    // below the smallest TPDU size.
                    (Some(o), Some(t)) => Some(o.min(t).max(128)),
                    _ => None,
                };
                // In use only if we proposed it; a CC selecting what we did not
                // propose is ignored (the option stays off).
                self.expedited = self.cfg.expedited && ed::selected(&cc.params);
                self.open(now);
            }
            (State::AwaitingConfirm, Tpdu::DisconnectRequest(dr)) => {
                self.finish(CloseReason::PeerRefused { reason: dr.reason });
            }
            (State::Open, Tpdu::DisconnectRequest(dr)) => {
                // Answer the DR with a DC, as the peers we meet expect, then release.
                self.end_with(
                    Pending::Dc,
                    CloseReason::PeerDisconnect { reason: dr.reason },
                );
            }
            (State::Open, Tpdu::ExpeditedData(e)) if self.expedited => self.on_expedited(buf, &e),
            (_, Tpdu::DisconnectConfirm(_)) => self.finish(CloseReason::DisconnectConfirmed),
            (_, Tpdu::Error(er)) => self.finish(CloseReason::PeerError { cause: er.cause }),
            (State::AwaitingRequest | State::AwaitingAccept, Tpdu::DisconnectRequest(dr)) => {
                // The peer abandons its own connection request.
                self.finish(CloseReason::PeerDisconnect { reason: dr.reason });
            }
            (_, other) => {
                self.echo_tpdu_header(buf);
                self.violation(
                    ProtocolError::UnexpectedTpdu { kind: other.kind() },
                    Some(RejectCause::INVALID_TPDU_TYPE),
                );
            }
        }
    }
}
