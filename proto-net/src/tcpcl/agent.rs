//! The [`Agent`]: listeners, outgoing connections, the session registry, the event
//! channel, and the agent's lifecycle (graceful `shutdown`, immediate `stop`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};
use proto_core::tcpcl::{SessTermReason, Side, State};

use super::busy::{oldest_in_contact, refuse_busy};
use super::config::Config;
use super::driver::rxbuf::{ReadBudget, BUDGET};
use super::driver::{Accept, Core, Driver, Owner, Parts};
use super::error::{ConfigError, Error, Result};
use super::events::{Event, SessionId};
use super::handle::SessionHandle;
use super::report::{EventHub, Handler, Reporter};
use super::shared::Shared;
use super::sink::{IncomingTransfer, Sink, SinkPolicy};
use super::sockets::{self, Listener};
use super::target::ConnectTarget;
use super::tls::{EkuPolicy, TlsContext, TlsSettings, TlsVersion};
use super::wake::Waker;

/// Stack of a session thread: what the core, rustls and a handler need, with room to
/// spare; an idle session touches only a few pages of it.
const SESSION_STACK: usize = 256 << 10;

/// Options for one outgoing connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Bound on the TCP connect (default: the config's `connect_timeout`).
    pub timeout: Option<Duration>,
    /// Local address to bind before connecting (default: the config's
    /// `connect_local_address`, else any).
    pub local_addr: Option<SocketAddr>,
    /// The DNS name used to reach the peer: sent as TLS SNI and used as the DNS-ID
    /// reference for host authentication. Default: the DNS name given to
    /// [`Agent::connect_with`] if any, else the peer's IP address (no SNI).
    pub server_name: Option<String>,
}

#[derive(Default)]
struct Life {
    stopped: bool,
    finished: bool,
    shutting_down: bool,
    had_session: bool,
}

type OnStop = Box<dyn FnOnce() + Send>;

/// State shared by the agent's handles, listeners and session threads.
pub(crate) struct Inner {
    pub(crate) config: Config,
    /// The core's configuration without and with TLS, validated up front.
    session_configs: [Option<proto_core::tcpcl::SessionConfig>; 2],
    pub(crate) tls: Option<TlsContext>,
    hub: Arc<EventHub>,
    sinks: Arc<SinkPolicy>,
    sessions: Mutex<BTreeMap<SessionId, SessionHandle>>,
    listeners: Mutex<HashMap<SocketAddr, Listener>>,
    next_id: AtomicU64,
    life: Mutex<Life>,
    life_cv: Condvar,
    on_stop: Mutex<Option<OnStop>>,
    /// Input-buffer growth shared by all sessions (bounds memory under many busy
    /// sessions).
    read_budget: Arc<ReadBudget>,
    /// Connections over `max_sessions` being refused with SESS_TERM Busy.
    refusing: Arc<AtomicUsize>,
    /// Sessions closed to make room for a newcomer while still in their contact
    /// phase (a subset of `sessions`, locked after it); they no longer count against
    /// `max_sessions`.
    evicted: Mutex<HashSet<SessionId>>,
    /// Peers whose TCPCLv3 SHUTDOWN asked for a reconnection delay: no `connect`
    /// to them before the instant.
    hold_offs: Mutex<HashMap<SocketAddr, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Owner for Inner {
    fn unregister(&self, id: SessionId) -> bool {
        let mut s = lock(&self.sessions);
        s.remove(&id);
        lock(&self.evicted).remove(&id);
        s.is_empty()
    }

    fn hold_off(&self, peer: SocketAddr, delay: Duration) {
        // A delay beyond what an Instant holds is as good as forever.
        let now = Instant::now();
        let until = now
            .checked_add(delay)
            .unwrap_or_else(|| now + Duration::from_secs(u64::from(u32::MAX)));
        lock(&self.hold_offs).insert(peer, until);
    }

    /// After the last session closed: stop if shutting down or `stop_on_close`.
    fn last_closed(&self) {
        let stop = {
            let l = lock(&self.life);
            l.shutting_down || (self.config.stop_on_close && l.had_session)
        };
        if stop {
            self.mark_stopped();
        }
    }
}

impl Inner {
    /// Time left of a TCPCLv3 reconnection delay `peer` asked for, if any.
    fn held_off(&self, peer: SocketAddr) -> Option<Duration> {
        let mut h = lock(&self.hold_offs);
        let until = *h.get(&peer)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            h.remove(&peer);
            return None;
        }
        Some(left)
    }

    fn mark_stopped(&self) {
        {
            let mut l = lock(&self.life);
            if l.stopped {
                return;
            }
            l.stopped = true;
        }
        self.hub.emit_agent(Event::AgentStopped);
        let cb = lock(&self.on_stop).take();
        if let Some(cb) = cb {
            cb();
        }
        // `run` returns only after the on-stop callback ran.
        lock(&self.life).finished = true;
        self.life_cv.notify_all();
    }

    fn is_stopped(&self) -> bool {
        lock(&self.life).stopped
    }

    fn stop_listeners(&self) {
        let all: Vec<Listener> = lock(&self.listeners).drain().map(|(_, l)| l).collect();
        for l in all {
            l.halt();
        }
    }

    fn stop(&self) {
        self.stop_listeners();
        let sessions: Vec<SessionHandle> = lock(&self.sessions).values().cloned().collect();
        for s in sessions {
            s.close();
        }
        self.mark_stopped();
    }

    /// Registers and starts a session on a connected socket.
    fn start_session(
        self: &Arc<Self>,
        stream: TcpStream,
        side: Side,
        server_name: Option<String>,
    ) -> Result<SessionHandle> {
        stream.set_nodelay(true)?;
        let peer_addr = stream.peer_addr()?;
        let local_addr = stream.local_addr()?;
        let can_tls = self.config.tls_enable
            && self
                .tls
                .as_ref()
                .is_some_and(|c| side == Side::Active || c.has_certificate());
        // Validated once when the agent was built (validating builds a session).
        let cfg = match &self.session_configs[usize::from(can_tls)] {
            Some(c) => c.clone(),
            None => self.config.session_config(can_tls)?,
        };
        let accept = match self.config.accept_tcpcl_version {
            Some(v) => Accept::Only(v),
            None => Accept::Any,
        };
        let core = Core::new(cfg, side, self.config.tcpcl_version, accept, Instant::now())?;
        let id = SessionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (commands_tx, commands) = unbounded();
        let waker = Waker::new();
        let shared = Arc::new(Shared::new(
            id,
            side,
            (peer_addr, local_addr),
            waker,
            commands_tx,
        ));
        let handle = SessionHandle {
            shared: shared.clone(),
        };
        {
            let mut sessions = lock(&self.sessions);
            let mut life = lock(&self.life);
            if life.stopped || life.shutting_down {
                return Err(Error::Stopped);
            }
            let mut evicted = lock(&self.evicted);
            if sessions.len().saturating_sub(evicted.len()) >= self.config.max_sessions {
                // Connections that never finish their contact phase (slow-loris) must
                // not lock out everyone else: the oldest of them gives way.
                let victim = if side == Side::Passive {
                    oldest_in_contact(&sessions, &evicted)
                } else {
                    None
                };
                let Some(victim) = victim else {
                    drop(evicted);
                    drop(life);
                    drop(sessions);
                    if side == Side::Passive {
                        refuse_busy(stream, &self.refusing, self.config.contact_timeout);
                    }
                    return Err(Error::TooManySessions);
                };
                log::info!(
                    "{}: closed in its contact phase to make room for {peer_addr} (max_sessions)",
                    victim.id()
                );
                evicted.insert(victim.id());
                victim.close();
            }
            drop(evicted);
            life.had_session = true;
            sessions.insert(id, handle.clone());
        }
        // SessionOpened is the session thread's first report (so a handler sees it on
        // that thread, like every other event of the session).
        let report = Reporter::new(self.hub.clone(), id);
        let owner: Arc<dyn Owner> = self.clone();
        let parts = Parts {
            core,
            sock: stream,
            shared,
            commands,
            report,
            sinks: self.sinks.clone(),
            tls: self.tls.clone(),
            server_name: server_name.unwrap_or_else(|| peer_addr.ip().to_string()),
            require_host_authn: self.config.require_host_authn,
            ignore_host_authn: self.config.ignore_host_authn,
            budget: self.read_budget.clone(),
            owner,
        };
        let spawned = Driver::new(parts).and_then(|driver| {
            // `driver` is boxed: the thread's stack holds only the pointer.
            std::thread::Builder::new()
                .name(format!("tcpcl-{}", id.0))
                .stack_size(SESSION_STACK)
                .spawn(move || driver.run())
        });
        if let Err(e) = spawned {
            lock(&self.sessions).remove(&id);
            return Err(e.into());
        }
        log::debug!("{id}: opened ({side:?}) with {peer_addr}");
        Ok(handle)
    }
}

/// Stops the agent when the last user handle is dropped.
struct Guard(Arc<Inner>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// A TCPCLv4 agent (the seed's `tcpcl.agent.Agent`): listens, connects, runs one
/// session per connection and reports what happens on an event channel.
///
/// Cheap to clone; the agent stops (as with [`Agent::stop`]) when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("node_id", &self.inner.config.node_id)
            .field("listening", &self.listen_addrs())
            .field("sessions", &self.sessions())
            .finish()
    }
}

impl Agent {
    /// An agent with this configuration. TLS is set up from the `tls_*` options when
    /// `tls_enable` is set and a CA file is given.
    pub fn new(config: Config) -> Result<Agent> {
        let tls = if config.tls_enable && config.tls_ca_file.is_some() {
            let min_version = match &config.tls_version {
                Some(v) => v.parse::<TlsVersion>().map_err(ConfigError::Tls)?,
                None => TlsVersion::default(),
            };
            let settings = TlsSettings {
                ca_file: config.tls_ca_file.clone(),
                cert_file: config.tls_cert_file.clone(),
                key_file: config.tls_key_file.clone(),
                min_version,
                ciphers: config.tls_ciphers.clone().filter(|c| !c.is_empty()),
                eku: if config.tls_require_bundle_eku {
                    EkuPolicy::RequireBundleSecurity
                } else {
                    EkuPolicy::RoleOrBundleSecurity
                },
                crl_file: config.tls_crl_file.clone(),
            };
            Some(TlsContext::new(&settings).map_err(ConfigError::Tls)?)
        } else {
            None
        };
        Agent::with_tls(config, tls)
    }

    /// An agent with an explicit TLS context (or none), ignoring the `tls_*` file
    /// options.
    pub fn with_tls(config: Config, tls: Option<TlsContext>) -> Result<Agent> {
        config.validate()?;
        let can_tls = config.tls_enable && tls.is_some();
        config.session_config(can_tls)?;
        let session_configs = [
            config.session_config(false).ok(),
            config.session_config(true).ok(),
        ];
        let hub = EventHub::new(config.event_capacity);
        let sinks = Arc::new(SinkPolicy::new(
            config.recv_dir.clone(),
            config.max_memory_bundle,
        ));
        let inner = Arc::new(Inner {
            session_configs,
            config,
            tls,
            hub,
            sinks,
            sessions: Mutex::new(BTreeMap::new()),
            listeners: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            life: Mutex::new(Life::default()),
            life_cv: Condvar::new(),
            on_stop: Mutex::new(None),
            read_budget: ReadBudget::new(BUDGET),
            refusing: Arc::new(AtomicUsize::new(0)),
            evicted: Mutex::new(HashSet::new()),
            hold_offs: Mutex::default(),
        });
        Ok(Agent {
            _guard: Arc::new(Guard(inner.clone())),
            inner,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Starts the configured `init_listen` listeners and `init_connect` connections.
    pub fn start(&self) -> Result<()> {
        for l in &self.inner.config.init_listen {
            self.listen((l.address.as_str(), l.port))?;
        }
        for c in &self.inner.config.init_connect {
            self.connect_with(
                (c.address.as_str(), c.port),
                ConnectOptions {
                    server_name: Some(c.address.clone()),
                    ..ConnectOptions::default()
                },
            )?;
        }
        Ok(())
    }

    /// The event channel. Events are produced only once this was called; the channel
    /// is bounded (`event_capacity`): when it is full, a session stops reading its
    /// socket until the application has made room (progress events are dropped
    /// instead), while it goes on acknowledging, keeping alive and terminating. All
    /// clones share one stream: each event goes to one receiver.
    pub fn events(&self) -> Receiver<Event> {
        self.inner.hub.subscribe()
    }

    /// Sets a [`Handler`] run on each session's own thread for every event of that
    /// session, before the event goes to the channel. It must not block; it may answer
    /// on the same session ([`Reply::send_bytes`](super::Reply::send_bytes)) without a
    /// thread hand-off.
    pub fn set_handler(&self, handler: impl Handler) {
        self.inner.hub.set_handler(Arc::new(handler));
    }

    /// Sets the function that picks a [`Sink`] for each incoming transfer (replacing
    /// the default: a file in `recv_dir`, else memory).
    pub fn set_sink_chooser(&self, f: impl Fn(&IncomingTransfer) -> Sink + Send + Sync + 'static) {
        self.inner.sinks.set(Arc::new(f));
    }

    /// Sets a callback run once when the agent stops (the seed's `set_on_stop`).
    pub fn set_on_stop(&self, f: impl FnOnce() + Send + 'static) {
        *lock(&self.inner.on_stop) = Some(Box::new(f));
    }

    /// Listens for incoming sessions on `addr` (the seed's `listen`); returns the bound
    /// address (useful with port 0).
    pub fn listen(&self, addr: impl ToSocketAddrs) -> Result<SocketAddr> {
        if self.inner.is_stopped() {
            return Err(Error::Stopped);
        }
        let inner = Arc::downgrade(&self.inner);
        let listener = Listener::spawn(addr, move |local, s| {
            let Some(inner) = inner.upgrade() else {
                return false;
            };
            if let Err(e) = inner.start_session(s, Side::Passive, None) {
                log::warn!("{local}: incoming session dropped: {e}");
            }
            true
        })?;
        let local = listener.local_addr();
        lock(&self.inner.listeners).insert(local, listener);
        log::info!("listening on {local}");
        Ok(local)
    }

    /// Stops listening on `addr` (the seed's `listen_stop`); sessions already accepted
    /// continue.
    pub fn listen_stop(&self, addr: SocketAddr) -> Result<()> {
        lock(&self.inner.listeners)
            .remove(&addr)
            .ok_or(Error::NotListening(addr))?
            .halt();
        Ok(())
    }

    /// Addresses currently listened on.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.inner.listeners).keys().copied().collect()
    }

    /// Connects to a peer (the seed's `connect`). Returns once TCP is connected; the
    /// session then negotiates on its own thread (see
    /// [`SessionHandle::wait_established`]).
    ///
    /// When `addr` names a DNS host (`"host:port"`, `("host", port)`), that name is sent
    /// as TLS SNI and is the DNS-ID reference of host authentication (RFC 9174 §4.4.3,
    /// §4.4.4.2); for an IP address neither.
    pub fn connect(&self, addr: impl ConnectTarget) -> Result<SessionHandle> {
        self.connect_with(addr, ConnectOptions::default())
    }

    /// Connects with explicit options (connect timeout, local bind address, TLS
    /// server name; without one, the DNS name in `addr` if any).
    pub fn connect_with(
        &self,
        addr: impl ConnectTarget,
        opts: ConnectOptions,
    ) -> Result<SessionHandle> {
        if self.inner.is_stopped() {
            return Err(Error::Stopped);
        }
        let timeout = match opts.timeout {
            Some(t) => t,
            None => self.inner.config.connect_timeout()?,
        };
        let local = match opts.local_addr {
            Some(a) => Some(a),
            None => self.inner.config.local_bind()?,
        };
        let server_name = opts.server_name.or_else(|| addr.host_name());
        let mut last = None;
        for a in addr.to_socket_addrs().map_err(Error::Resolve)? {
            if let Some(remaining) = self.inner.held_off(a) {
                last = Some(Error::ReconnectDelay { peer: a, remaining });
                continue;
            }
            match sockets::connect(a, local, timeout) {
                Ok(s) => return self.inner.start_session(s, Side::Active, server_name),
                Err(e) => last = Some(Error::Io(e)),
            }
        }
        let none = || Error::Resolve(io::Error::new(io::ErrorKind::NotFound, "no address"));
        Err(last.unwrap_or_else(none))
    }

    /// IDs of all open sessions (the seed's `get_connections`).
    pub fn sessions(&self) -> Vec<SessionId> {
        lock(&self.inner.sessions).keys().copied().collect()
    }

    /// Looks a session up by ID (the seed's `handler_for_path`).
    pub fn session(&self, id: SessionId) -> Option<SessionHandle> {
        lock(&self.inner.sessions).get(&id).cloned()
    }

    /// Handles of all open sessions.
    pub fn session_handles(&self) -> Vec<SessionHandle> {
        lock(&self.inner.sessions).values().cloned().collect()
    }

    /// Gracefully terminates all sessions (the seed's `shutdown`): listeners close,
    /// every bundle already submitted is delivered, then each session exchanges
    /// SESS_TERM and closes; the agent stops when the last one has. Returns `true` if
    /// the agent stopped at once (no sessions), `false` if that takes a while.
    pub fn shutdown(&self) -> bool {
        lock(&self.inner.life).shutting_down = true;
        self.inner.stop_listeners();
        let sessions = self.session_handles();
        if sessions.is_empty() {
            self.inner.mark_stopped();
            return true;
        }
        for s in &sessions {
            let _ = s.shutdown(SessTermReason::UNKNOWN);
        }
        // Sessions may have ended meanwhile.
        if lock(&self.inner.sessions).is_empty() {
            self.inner.mark_stopped();
            return true;
        }
        false
    }

    /// Stops at once (the seed's `stop`): listeners close and every session is closed
    /// without SESS_TERM.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Whether the agent has stopped.
    pub fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }

    /// Blocks until the agent stops (the seed's `exec_loop`): by [`Agent::stop`],
    /// after [`Agent::shutdown`], or with `stop_on_close` when the last session closes.
    pub fn run(&self) {
        let mut l = lock(&self.inner.life);
        while !l.finished {
            l = self
                .inner
                .life_cv
                .wait(l)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Like [`Agent::run`] with a bound; returns whether the agent stopped.
    pub fn wait_stopped(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut l = lock(&self.inner.life);
        while !l.finished {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            l = self
                .inner
                .life_cv
                .wait_timeout(l, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Waits until every session is closed (after [`Agent::stop`] the session threads
    /// finish shortly after). Returns whether that happened within `timeout`.
    pub fn wait_sessions_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        for s in self.session_handles() {
            let left = deadline.saturating_duration_since(Instant::now());
            if s.wait_closed(left).is_err() {
                return false;
            }
        }
        true
    }

    /// Count of sessions in each state (diagnostics).
    pub fn session_states(&self) -> Vec<(SessionId, State)> {
        lock(&self.inner.sessions)
            .iter()
            .map(|(id, h)| (*id, h.state()))
            .collect()
    }
}
