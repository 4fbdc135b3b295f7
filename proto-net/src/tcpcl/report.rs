//! How sessions report: an optional [`Handler`] called on the session thread, then the
//! agent's bounded event channel — without ever blocking the session thread.
//!
//! When the channel is full, a session keeps its events in a small backlog of its own
//! and stops *reading* from its socket until the application has made room (TCP
//! backpressure reaches the peer). It keeps writing acknowledgements (but a bundle's
//! last one waits until its BundleReceived is on the channel), keepalives and
//! SESS_TERM, and it tells its core that unread input is waiting, so a slow or stalled
//! consumer never makes a session die of its own idle timeout. Progress events are
//! dropped instead of queued when there is no room.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::events::{Event, SessionId};
use super::shared::Source;

/// Application code run on a session's own thread for each of its events, before the
/// event goes to the channel: the lowest-latency way to react (for example, to answer a
/// bundle on the same session without a thread hand-off).
///
/// Contract: it runs on the thread that drives the session's socket and timers, so it
/// must return quickly and never block (no blocking I/O, no waiting on channels or
/// locks held elsewhere); queue slow work to another thread.
pub trait Handler: Send + Sync + 'static {
    /// Called for every event of the session, in order. Bundles sent through `reply`
    /// go out on the same session right after the handler returns.
    fn on_event(&self, event: &Event, reply: &mut Reply<'_>);
}

impl<F: Fn(&Event, &mut Reply<'_>) + Send + Sync + 'static> Handler for F {
    fn on_event(&self, event: &Event, reply: &mut Reply<'_>) {
        self(event, reply)
    }
}

/// What a [`Handler`] may do on the session it is called for.
pub struct Reply<'a> {
    session: SessionId,
    sends: &'a mut Vec<Source>,
}

impl Reply<'_> {
    /// The session the event belongs to.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Sends a bundle on this session, right after the handler returns (its transfer
    /// events follow as for any other bundle).
    pub fn send_bytes(&mut self, data: impl Into<Vec<u8>>) {
        self.sends.push(Source::Bytes(data.into()));
    }
}

/// The agent's side of reporting, shared with every session.
pub(crate) struct EventHub {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    subscribed: AtomicBool,
    handler: RwLock<Option<Arc<dyn Handler>>>,
}

impl EventHub {
    pub(crate) fn new(capacity: usize) -> Arc<EventHub> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        Arc::new(EventHub {
            tx,
            rx,
            subscribed: AtomicBool::new(false),
            handler: RwLock::new(None),
        })
    }

    /// The channel's receiving end; events flow only once someone asked for it.
    pub(crate) fn subscribe(&self) -> Receiver<Event> {
        self.subscribed.store(true, Ordering::Release);
        self.rx.clone()
    }

    pub(crate) fn set_handler(&self, h: Arc<dyn Handler>) {
        *self.handler.write().unwrap_or_else(|p| p.into_inner()) = Some(h);
    }

    fn handler(&self) -> Option<Arc<dyn Handler>> {
        self.handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// An event not tied to a session (the agent stopped); dropped when there is no
    /// room.
    pub(crate) fn emit_agent(&self, e: Event) {
        if self.subscribed.load(Ordering::Acquire) {
            let _ = self.tx.try_send(e);
        }
    }
}

/// One session's reporter. Events go to the handler at once; to the channel at the
/// end of the loop turn that produced them ([`Reporter::flush`]), after the turn's
/// output (an acknowledgement, a reply) was written, so the woken application does
/// not compete with that write for a CPU.
pub(crate) struct Reporter {
    hub: Arc<EventHub>,
    session: SessionId,
    /// Events not yet on the channel, oldest first, each marked when it is only
    /// progress (droppable).
    pending: VecDeque<(Event, bool)>,
    /// The channel was full at the last flush: input pauses until it has room.
    full: bool,
    /// Bundles the handler asked to send.
    pub(crate) replies: Vec<Source>,
}

impl Reporter {
    pub(crate) fn new(hub: Arc<EventHub>, session: SessionId) -> Reporter {
        Reporter {
            hub,
            session,
            pending: VecDeque::new(),
            full: false,
            replies: Vec::new(),
        }
    }

    fn handle(&mut self, e: &Event) {
        if let Some(h) = self.hub.handler() {
            let mut reply = Reply {
                session: self.session,
                sends: &mut self.replies,
            };
            h.on_event(e, &mut reply);
        }
    }

    /// Reports an event: to the handler now, to the channel at the next flush.
    pub(crate) fn emit(&mut self, e: Event) {
        self.handle(&e);
        if self.hub.subscribed.load(Ordering::Acquire) {
            self.pending.push_back((e, false));
        }
    }

    /// Reports progress: dropped when the channel had no room at the last flush.
    pub(crate) fn progress(&mut self, e: Event) {
        self.handle(&e);
        if !self.full && self.hub.subscribed.load(Ordering::Acquire) {
            self.pending.push_back((e, true));
        }
    }

    /// Moves what it can to the channel; whether nothing is left.
    /// Progress that finds no room is dropped; only other events wait (and pause
    /// input), so an application that never reads progress loses only progress.
    pub(crate) fn flush(&mut self) -> bool {
        while let Some((e, progress)) = self.pending.pop_front() {
            match self.hub.tx.try_send(e) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(e)) => {
                    if !progress {
                        self.pending.push_front((e, false));
                    }
                    self.pending.retain(|(_, p)| !p);
                    self.full = !self.pending.is_empty();
                    return !self.full;
                }
            }
        }
        self.full = false;
        true
    }

    /// Whether events wait for room in the channel (the session does not read input
    /// meanwhile).
    pub(crate) fn is_backlogged(&self) -> bool {
        self.full
    }

    /// The last events of a closing session: waits (bounded) for room rather than
    /// dropping them, since nothing else holds the session up any more. A bundle whose
    /// event is dropped was never acknowledged (its last XFER_ACK waits for the event);
    /// its file is removed, as for any transfer that did not complete.
    pub(crate) fn flush_final(&mut self, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        while let Some((e, _)) = self.pending.pop_front() {
            if let Err(e) = self.hub.tx.send_deadline(e, deadline) {
                let dropped =
                    std::iter::once(e.into_inner()).chain(self.pending.drain(..).map(|(e, _)| e));
                for e in dropped {
                    if let Event::BundleReceived {
                        transfer_id,
                        bundle: super::events::ReceivedBundle::File(path),
                        ..
                    } = e
                    {
                        log::warn!(
                            "{}: the application did not take bundle {transfer_id} in time; \
                             it was not acknowledged, and {} is removed",
                            self.session,
                            path.display()
                        );
                        let _ = std::fs::remove_file(path);
                    }
                }
                return;
            }
        }
    }
}
