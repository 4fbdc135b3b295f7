//! `proto tcpcl listen`: accept sessions, store every bundle (see [`super::store`]),
//! print a line for each, and stop gracefully on a signal or after `--count` bundles.

use super::args::ListenArgs;
use super::bundle::BUNDLE_MEMORY_LIMIT;
use super::bundle_sink::BundleMode;
use super::explain::{describe_session, explain_close};
use super::report::Arrival;
use super::store::{choose_sink, Pending, PendingMap, Store, Stored};
use super::{lock, new_agent, usage_error};
use crate::addr::with_default_port;
use crate::arrivals::Arrivals;
use crate::config_file::{host_port, Command as ConfigFor};
use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{bounded, select, Receiver};
use proto_net::tcpcl::{
    Direction, Error as AgentError, Event, IncomingTransfer, SessionId, DEFAULT_PORT,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn listen(a: &ListenArgs) -> Result<()> {
    let mut cfg = a.agent.config(ConfigFor::Listen)?;
    super::version::apply_accept(&mut cfg, a.tcpcl_version);
    // --bind replaces init_listen; without it, every init_listen entry is used, and
    // without those, the TCPCL port on all interfaces.
    let binds: Vec<String> = match &a.bind {
        Some(b) => vec![with_default_port(b, DEFAULT_PORT)],
        None => cfg
            .init_listen
            .iter()
            .map(|l| host_port(&l.address, l.port))
            .collect(),
    };
    let binds = if binds.is_empty() {
        vec![with_default_port(crate::addr::ALL_INTERFACES, DEFAULT_PORT)]
    } else {
        binds
    };
    let out_dir = a.out_dir.clone().or_else(|| cfg.recv_dir.clone());
    if a.bundle.keep_names && out_dir.is_none() {
        usage_error("--keep-names needs --out-dir DIR (or recv_dir in --config)");
    }
    // --bundles holds each bundle in memory: bound it unless the user chose a bound.
    if a.bundle.bundles && a.agent.transfer_mru.is_none() {
        cfg.transfer_mru = cfg.transfer_mru.min(BUNDLE_MEMORY_LIMIT);
    }
    let bundles = a.bundle.bundles.then_some(BundleMode {
        payload_only: a.bundle.payload_only,
        keep_names: a.bundle.keep_names,
        limit: cfg.transfer_mru,
    });
    if let Some(n) = a.max_sessions {
        cfg.max_sessions = n;
    }
    cfg.validate().context("invalid agent configuration")?;
    let tls_on = cfg.tls_enable && cfg.tls_ca_file.is_some();
    if tls_on && cfg.tls_cert_file.is_none() {
        if cfg.tls_required() {
            bail!("a listener needs --tls-cert and --tls-key to offer TLS (--require-tls is set)");
        }
        log::warn!("TLS is not offered: a listener needs --tls-cert and --tls-key");
    }
    let agent = new_agent(cfg)?;
    let events = agent.events();
    let (stop_tx, stop_rx) = bounded::<()>(1);
    agent.set_on_stop(move || {
        let _ = stop_tx.try_send(());
    });
    let store = Arc::new(Store {
        arrivals: Arrivals::new("tcpcl", out_dir.clone(), None)?,
        out_dir,
        refuse: a.refuse,
        pending: PendingMap::default(),
        next_token: AtomicU64::new(1),
        failed: AtomicU64::new(0),
        bundles,
    });
    {
        let store = store.clone();
        agent.set_sink_chooser(move |t: &IncomingTransfer| choose_sink(t, &store));
    }
    let sig = signals()?;
    for bind in &binds {
        let local = agent.listen(bind.as_str()).map_err(|e| match e {
            // The I/O error alone, so its cause is said once.
            AgentError::Io(io) => anyhow!("cannot listen on {bind}: {io}"),
            e => anyhow!("cannot listen on {bind}: {e}"),
        })?;
        eprintln!("listening for TCPCL on {local}");
    }

    let mut l = Listening {
        json: a.bundle.json,
        store: &store,
        peers: HashMap::new(),
        received: 0,
        lost: Vec::new(),
    };
    let mut shutting_down = false;
    let mut stopped = false;
    while !stopped {
        select! {
            recv(events) -> ev => match ev {
                Ok(ev) => l.on_event(ev),
                Err(_) => stopped = true,
            },
            recv(sig) -> _ => {
                if shutting_down {
                    eprintln!("stopping now");
                    agent.stop();
                } else {
                    eprintln!("shutting down: finishing transfers in progress (signal again to stop at once)");
                    shutting_down = true;
                    agent.shutdown();
                }
            },
            recv(stop_rx) -> _ => stopped = true,
        }
        if !shutting_down && a.count.is_some_and(|n| l.received >= n) {
            shutting_down = true;
            agent.shutdown();
        }
    }
    // Only once the sessions are closed is every bundle they completed on the channel.
    if !agent.wait_sessions_closed(Duration::from_secs(2)) {
        agent.stop();
        agent.wait_sessions_closed(Duration::from_secs(1));
    }
    while let Ok(ev) = events.try_recv() {
        l.on_event(ev);
    }
    l.finish();
    eprintln!("received {} bundle(s)", l.received);
    let failed = store.failed.load(Ordering::SeqCst);
    if failed > 0 {
        eprintln!(
            "{failed} bundle(s) could not be stored and were refused (not acknowledged); see the warnings above"
        );
    }
    if !l.lost.is_empty() {
        bail!(
            "{} acknowledged bundle(s) could not be stored: {}",
            l.lost.len(),
            l.lost.join("; ")
        );
    }
    Ok(())
}

/// Signals arrive on a channel: the first asks for a graceful stop, a second for an
/// immediate one.
fn signals() -> Result<Receiver<i32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let (tx, rx) = bounded(4);
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// The listener's main thread: prints a line for every stored bundle and keeps
/// account of what could not be stored. Nothing here ends the listener.
struct Listening<'a> {
    /// `--json`: arrivals as JSON objects.
    json: bool,
    store: &'a Store,
    peers: HashMap<SessionId, SocketAddr>,
    received: u64,
    /// Acknowledged bundles that are not stored.
    lost: Vec<String>,
}

impl Listening<'_> {
    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::SessionOpened { session, peer, .. } => {
                log::info!("{session}: connection from {peer}");
                self.peers.insert(session, peer);
            }
            Event::SessionEstablished { session, params } => {
                log::info!("{session}: {}", describe_session(&params));
            }
            Event::SessionClosed { session, reason } => {
                let peer = self.peer(session);
                if reason.is_graceful() {
                    log::info!("{session}: session with {peer} ended ({reason})");
                } else {
                    log::warn!(
                        "session with {peer} ended: {}",
                        explain_close(&reason, &peer)
                    );
                }
                // Every BundleReceived of the session came before this event: a bundle
                // still here was stored, but the session ended before it was
                // acknowledged. It is kept all the same.
                let done: Vec<Pending> = {
                    let mut pending = lock(&self.store.pending);
                    let keys: Vec<u64> = pending
                        .iter()
                        .filter(|(_, p)| p.session == session && p.is_done())
                        .map(|(k, _)| *k)
                        .collect();
                    keys.iter().filter_map(|k| pending.remove(k)).collect()
                };
                for p in done {
                    log::warn!(
                        "{session}: bundle {} is stored, but the session ended before it was acknowledged",
                        p.transfer_id
                    );
                    self.print(&p, None);
                }
                self.prune();
                self.peers.remove(&session);
            }
            Event::TransferRefused {
                session,
                direction: Direction::Incoming,
                transfer_id,
                reason,
            } => {
                log::info!("{session}: refused transfer {transfer_id} ({reason:#})");
                self.prune();
            }
            Event::TransferCancelled {
                session,
                direction: Direction::Incoming,
                transfer_id,
            } => {
                log::warn!("{session}: transfer {transfer_id} was abandoned before it completed");
                self.prune();
            }
            Event::BundleReceived {
                session,
                transfer_id,
                len,
                ..
            } => self.on_bundle(session, transfer_id, len),
            _ => {}
        }
    }

    fn on_bundle(&mut self, session: SessionId, transfer_id: u64, len: u64) {
        // The oldest completed sink of this transfer ID: a peer reusing the ID may
        // already have started the next one.
        let p = {
            let mut pending = lock(&self.store.pending);
            let key = pending
                .iter()
                .find(|(_, p)| p.session == session && p.transfer_id == transfer_id && p.is_done())
                .map(|(k, _)| *k);
            key.and_then(|k| pending.remove(&k))
        };
        match p {
            Some(p) => self.print(&p, Some(len)),
            None => {
                let what = format!(
                    "bundle {transfer_id} ({len} bytes) from {} on {session}",
                    self.peer(session)
                );
                log::error!("{what} was acknowledged, but its sink did not store it");
                self.lost.push(what);
            }
        }
    }

    /// Prints the line of a stored bundle.
    fn print(&mut self, p: &Pending, reported: Option<u64>) {
        let Stored::Done {
            seq,
            sha256,
            len,
            extra,
        } = lock(&p.state).clone()
        else {
            return;
        };
        // What the transfer carried: the whole bundle, even if only its payload is stored.
        let carried = extra.as_ref().map_or(len, |x| x.0.bundle_size);
        if reported.is_some_and(|r| r != carried) {
            log::warn!(
                "{}: bundle {}: {} bytes reported, {carried} hashed",
                p.session,
                p.transfer_id,
                reported.unwrap_or_default()
            );
        }
        let addr = self
            .peers
            .get(&p.session)
            .map_or_else(|| "?".to_string(), |a| a.to_string());
        if extra.is_none() && !self.json {
            self.store
                .arrivals
                .print(seq, &format!("{} ({addr})", p.node_id), len, &sha256);
        } else {
            let numbered = self.store.arrivals.path_for(seq);
            let (bundle, file) = match &extra {
                Some(x) => (Some(&x.0), x.1.as_ref()),
                None => (None, numbered.as_ref()),
            };
            Arrival {
                seq,
                node_id: &p.node_id,
                addr: &addr,
                transfer_id: p.transfer_id,
                size: len,
                sha256: &sha256,
                file,
                bundle,
            }
            .print(self.json);
        }
        self.received += 1;
    }

    /// Forgets sinks that ended without a bundle (their sinks removed their files).
    fn prune(&self) {
        lock(&self.store.pending)
            .retain(|_, p| !matches!(*lock(&p.state), Stored::Failed | Stored::Abandoned));
    }

    /// After the sessions closed: prints every stored bundle not printed yet and removes
    /// the files of transfers that did not complete.
    fn finish(&mut self) {
        let left = std::mem::take(&mut *lock(&self.store.pending));
        for p in left.into_values() {
            if p.is_done() {
                self.print(&p, None);
            } else if let Some(t) = &p.temp {
                let _ = std::fs::remove_file(t);
            }
        }
    }

    fn peer(&self, session: SessionId) -> String {
        self.peers
            .get(&session)
            .map_or_else(|| session.to_string(), |a| a.to_string())
    }
}
