//! What the core reports, turned into the runtime's events, sinks and counts; the
//! node authentication after SESS_INIT.

use super::*;

impl Driver {
    pub(super) fn drain_events(&mut self, data: &mut Option<RxData<'_>>) {
        while let Some(ev) = self.core.poll_event() {
            let session = self.id;
            match ev {
                CoreEvent::StartTls { role } => self.tls_start = Some(role),
                CoreEvent::SessionEstablished => self.on_established(),
                CoreEvent::IncomingTransferStarted {
                    transfer_id,
                    total_len,
                } => {
                    let info = IncomingTransfer {
                        session,
                        transfer_id,
                        total_len,
                        peer_node_id: self.core.peer_node_id().unwrap_or_default().to_owned(),
                    };
                    self.incoming
                        .start(&mut self.core, &self.sinks, &mut self.report, info);
                }
                CoreEvent::IncomingTransferFinished { transfer_id, len } => {
                    log::trace!("{session}: incoming transfer {transfer_id} done ({len})");
                }
                CoreEvent::IncomingTransferRefused {
                    transfer_id,
                    reason,
                } => {
                    if data.is_some_and(|d| d.transfer_id == transfer_id) {
                        *data = None;
                    }
                    self.incoming.refused(transfer_id);
                    self.report.emit(Event::TransferRefused {
                        session,
                        direction: Direction::Incoming,
                        transfer_id,
                        reason,
                    });
                }
                CoreEvent::OutgoingAcked {
                    transfer_id,
                    acked_len,
                    finished,
                } => {
                    if !finished {
                        self.report.progress(Event::TransferProgress {
                            session,
                            direction: Direction::Outgoing,
                            transfer_id,
                            bytes: acked_len,
                        });
                    }
                    if finished {
                        self.outgoing_done(transfer_id);
                        self.report.emit(Event::TransferFinished {
                            session,
                            direction: Direction::Outgoing,
                            transfer_id,
                            len: acked_len,
                        });
                    }
                }
                CoreEvent::OutgoingSent { transfer_id, len } => {
                    // Only TCPCLv3 sessions without acknowledgments report this.
                    self.outgoing_done(transfer_id);
                    self.report.emit(Event::TransferSent {
                        session,
                        transfer_id,
                        len,
                    });
                }
                CoreEvent::OutgoingRefused {
                    transfer_id,
                    reason,
                } => {
                    self.outgoing_done(transfer_id);
                    self.report.emit(Event::TransferRefused {
                        session,
                        direction: Direction::Outgoing,
                        transfer_id,
                        reason,
                    });
                }
                CoreEvent::OutgoingCancelled { transfer_id } => {
                    self.outgoing_done(transfer_id);
                    self.report.emit(Event::TransferCancelled {
                        session,
                        direction: Direction::Outgoing,
                        transfer_id,
                    });
                }
                CoreEvent::MessageRejected {
                    message_type,
                    reason,
                } => log::warn!(
                    "{session}: the peer rejected message type {message_type:#04x}: {reason:#}"
                ),
                CoreEvent::KeepaliveReceived => log::trace!("{session}: keepalive"),
                CoreEvent::Terminating { reason, by_peer } => {
                    log::debug!(
                        "{session}: terminating (SESS_TERM {reason:#}, by peer: {by_peer})"
                    );
                    self.report.emit(Event::SessionTerminating {
                        session,
                        reason,
                        by_peer,
                    });
                }
                CoreEvent::Closed { reason } => {
                    let delay = self.core.v3().and_then(|s| s.peer_shutdown()?.delay);
                    if let Some(d) = delay {
                        self.owner
                            .hold_off(self.shared.peer_addr, Duration::from_secs(d));
                    }
                    let r = self
                        .close_override
                        .take()
                        .unwrap_or(CloseReason::Session(reason));
                    log::debug!("{session}: closed: {r}");
                    self.closed = Some(r);
                }
            }
        }
        self.check_state();
    }

    pub(super) fn outgoing_done(&mut self, tid: u64) {
        self.outgoing.remove(tid);
        self.pending_out = self.pending_out.saturating_sub(1);
    }

    pub(super) fn check_state(&mut self) {
        let s = self.core.state();
        if s != self.last_state {
            self.last_state = s;
            self.report.emit(Event::SessionStateChanged {
                session: self.id,
                state: s,
            });
        }
    }

    pub(super) fn publish(&mut self) {
        self.shared
            .publish(self.last_state, self.pending_out, self.incoming.len());
    }

    pub(super) fn on_established(&mut self) {
        let peer_node_id = self.core.peer_node_id().unwrap_or_default().to_owned();
        let (peer_addr, local_addr) = (self.shared.peer_addr, self.shared.local_addr);
        let params = if let Some(s) = self.core.v4() {
            let Some(n) = s.negotiated() else { return };
            let cfg = s.config();
            SessionParams {
                side: s.side(),
                version: 4,
                peer_node_id: peer_node_id.clone(),
                v3: None,
                keepalive: n.keepalive,
                peer_segment_mru: n.peer_segment_mru,
                peer_transfer_mru: n.peer_transfer_mru,
                local_segment_mru: cfg.segment_mru,
                local_transfer_mru: cfg.transfer_mru,
                tls: n.tls,
                peer_addr,
                local_addr,
            }
        } else if let Some(s) = self.core.v3() {
            let Some(n) = s.negotiated() else { return };
            SessionParams {
                side: s.side(),
                version: 3,
                peer_node_id: peer_node_id.clone(),
                v3: Some(n),
                keepalive: n.keepalive,
                peer_segment_mru: u64::MAX,
                peer_transfer_mru: u64::MAX,
                local_segment_mru: u64::MAX,
                local_transfer_mru: s.config().transfer_mru,
                tls: false,
                peer_addr,
                local_addr,
            }
        } else {
            return;
        };
        let mut node_failed = false;
        self.shared.update(|s| {
            s.params = Some(params.clone());
            if let Some(t) = &mut s.tls {
                let r = authenticate_node(&t.peer_identity, &peer_node_id);
                node_failed = !r.acceptable(false);
                t.node_authn = Some(r);
            }
        });
        self.report.emit(Event::SessionEstablished {
            session: self.id,
            params,
        });
        if node_failed {
            // RFC 9174 §4.4.4: a NODE-ID that does not match → Contact Failure.
            log::info!(
                "{}: the certificate does not authenticate node ID {peer_node_id:?}",
                self.id
            );
            let _ = self
                .core
                .terminate(Instant::now(), SessTermReason::CONTACT_FAILURE);
        }
    }
}
