//! Incoming bundles: a sink per transfer, chosen when its START segment arrives, fed
//! straight from the input buffer, and the rule that makes acknowledgements safe: a
//! segment is confirmed to the core (which then queues its XFER_ACK) only after its
//! sink took the data, and the END segment only after the whole bundle was flushed and
//! its [`Event::BundleReceived`] is on the application's channel (while the channel is
//! full, the last XFER_ACK waits: a session that ends meanwhile leaves the bundle
//! unacknowledged, so its sender reports it failed, instead of acknowledged and never
//! delivered). A sink that fails refuses the transfer (No Resources) instead, so
//! nothing acknowledged is ever lost.

use proto_core::tcpcl::{RxData, XferRefuseReason};

use super::Core;

use super::super::events::{Direction, Event, SessionId};
use super::super::report::Reporter;
use super::super::sink::{ActiveSink, IncomingTransfer, SinkPolicy};

struct Open {
    tid: u64,
    sink: ActiveSink,
}

/// The incoming transfers of a session.
pub(crate) struct Incoming {
    open: Vec<Open>,
    /// Complete bundles whose END segment is confirmed once their events left the
    /// reporter's backlog.
    unconfirmed: Vec<u64>,
}

impl Incoming {
    pub(crate) fn new() -> Incoming {
        Incoming {
            open: Vec::new(),
            unconfirmed: Vec::new(),
        }
    }

    /// Whether complete bundles wait for their events to reach the channel.
    pub(crate) fn awaiting_delivery(&self) -> bool {
        !self.unconfirmed.is_empty()
    }

    /// Confirms the END segments of bundles whose events are now on the channel.
    pub(crate) fn confirm_delivered(&mut self, core: &mut Core, report: &Reporter) {
        if report.is_backlogged() {
            return;
        }
        for tid in self.unconfirmed.drain(..) {
            let _ = core.confirm_segment(tid);
        }
    }

    /// Transfers being received.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// The peer started transfer `tid`: the application's sink policy picks where it
    /// goes (or refuses it before any of its data is acknowledged).
    pub(crate) fn start(
        &mut self,
        core: &mut Core,
        policy: &SinkPolicy,
        report: &mut Reporter,
        info: IncomingTransfer,
    ) {
        let tid = info.transfer_id;
        let total_len = info.total_len;
        match ActiveSink::open(policy.choose(&info), total_len, policy.max_memory) {
            Ok(Ok(sink)) => {
                self.open.push(Open { tid, sink });
                report.emit(Event::TransferStarted {
                    session: info.session,
                    direction: Direction::Incoming,
                    transfer_id: tid,
                    total_len,
                });
            }
            Ok(Err(reason)) => {
                let _ = core.refuse_transfer(tid, reason);
            }
            Err(e) => {
                log::warn!(
                    "{}: cannot open a sink for transfer {tid}: {e}",
                    info.session
                );
                let _ = core.refuse_transfer(tid, XferRefuseReason::NO_RESOURCES);
            }
        }
    }

    /// The core refused `tid` (or the peer's data for it): its partial bundle goes.
    pub(crate) fn refused(&mut self, tid: u64) {
        if let Some(i) = self.open.iter().position(|o| o.tid == tid) {
            self.open.swap_remove(i).sink.abort();
        }
    }

    /// Hands a piece of data to its sink, and confirms or refuses a completed segment.
    pub(crate) fn deliver(
        &mut self,
        core: &mut Core,
        report: &mut Reporter,
        session: SessionId,
        d: RxData<'_>,
    ) {
        let tid = d.transfer_id;
        let Some(i) = self.open.iter().position(|o| o.tid == tid) else {
            // No sink (it was refused at its start): never acknowledge unstored data.
            if d.end_of_segment {
                let _ = core.refuse_transfer(tid, XferRefuseReason::NOT_ACCEPTABLE);
            }
            return;
        };
        if let Err(e) = self.open[i].sink.write(d.bytes) {
            return self.sink_failed(core, report, session, i, "write", &e);
        }
        let received = d.offset + d.bytes.len() as u64;
        // The piece that ends the transfer is reported by TransferFinished instead.
        if !d.bytes.is_empty() && !d.end_of_transfer {
            report.progress(Event::TransferProgress {
                session,
                direction: Direction::Incoming,
                transfer_id: tid,
                bytes: received,
            });
        }
        if !d.end_of_segment {
            return;
        }
        if !d.end_of_transfer {
            let _ = core.confirm_segment(tid);
            return;
        }
        let open = self.open.swap_remove(i);
        let bundle = match open.sink.finish() {
            Ok(b) => b,
            Err(e) => {
                log::warn!("{session}: finishing the bundle of transfer {tid} failed: {e}");
                let _ = core.refuse_transfer(tid, XferRefuseReason::NO_RESOURCES);
                return;
            }
        };
        report.emit(Event::TransferFinished {
            session,
            direction: Direction::Incoming,
            transfer_id: tid,
            len: received,
        });
        report.emit(Event::BundleReceived {
            session,
            transfer_id: tid,
            len: received,
            bundle,
        });
        // The last XFER_ACK says "delivered": it goes once the application has the
        // bundle. Flushing here (rather than at the end of the turn) keeps that
        // immediate whenever the channel has room.
        if report.flush() {
            let _ = core.confirm_segment(tid);
        } else {
            self.unconfirmed.push(tid);
        }
    }

    fn sink_failed(
        &mut self,
        core: &mut Core,
        report: &mut Reporter,
        session: SessionId,
        i: usize,
        what: &str,
        e: &std::io::Error,
    ) {
        let open = self.open.swap_remove(i);
        let tid = open.tid;
        log::warn!("{session}: the sink of transfer {tid} failed to {what}: {e}");
        open.sink.abort();
        if core
            .refuse_transfer(tid, XferRefuseReason::NO_RESOURCES)
            .is_err()
        {
            report.emit(Event::TransferCancelled {
                session,
                direction: Direction::Incoming,
                transfer_id: tid,
            });
        }
    }

    /// The session ended: every bundle in progress is abandoned.
    pub(crate) fn abandon_all(&mut self, report: &mut Reporter, session: SessionId) {
        for o in self.open.drain(..) {
            o.sink.abort();
            report.emit(Event::TransferCancelled {
                session,
                direction: Direction::Incoming,
                transfer_id: o.tid,
            });
        }
    }
}
