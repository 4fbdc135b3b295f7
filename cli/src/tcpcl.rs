//! `proto tcpcl listen`, `proto tcpcl send` and `proto tcpcl gen-certs`: the TCPCLv4
//! agent (RFC 9174) from the command line.
//!
//! Both commands build one [`Agent`] from `--config FILE` (YAML, the seed agent's option
//! names, see `docs/config-tcpcl.md`) with the flags applied on top, then follow the
//! agent's event channel. `listen` streams every bundle through a hashing writer into a
//! hidden `.part` file with a name of its own, which gets its final name (never
//! replacing a file) once the bundle is complete and before the last segment is
//! acknowledged; `send` submits each file as one bundle and succeeds only when every
//! byte was acknowledged.

use crate::arrivals::Arrivals;
use crate::config_file::{self, host_port, Command as ConfigFor};
use crate::decode::hex;
use crate::progress;
use crate::units::parse_size;
use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{bounded, select, Receiver};
use proto_core::tcpcl::{CloseReason as CoreClose, ContactFailure};
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use proto_net::tcpcl::{
    Agent, CloseReason, Config, ConnectOptions, Direction, Error as AgentError, Event,
    IncomingTransfer, SessTermReason, SessionId, SessionParams, Sink, SourceFailure, TlsFailure,
    TlsInfo, XferRefuseReason, DEFAULT_PORT,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// TCPCLv4 (RFC 9174): listen, send, and a throw-away PKI for TLS.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TcpclCommand {
    /// Accept TCPCL sessions; store, hash and count every bundle that arrives.
    Listen(Box<ListenArgs>),
    /// Connect and send files (or stdin) as bundles; exit 0 only when every byte was
    /// acknowledged.
    Send(Box<SendArgs>),
    /// Generate a throw-away CA and certificates with TCPCL node IDs (for TLS tests and
    /// examples).
    GenCerts(GenCertsArgs),
}

/// Agent options shared by `listen` and `send`. Flags override `--config`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AgentArgs {
    /// Our node ID, a URI such as dtn://node-a/ or ipn:1.0 (may come from --config).
    #[arg(long, value_name = "URI", required_unless_present = "config")]
    node_id: Option<String>,
    /// YAML agent configuration with the seed agent's option names
    /// (docs/config-tcpcl.md); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Our certificate chain (PEM); needs --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificate(s) that authenticate peers (PEM); enables TLS.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Refuse sessions without TLS (SESS_TERM Contact Failure).
    #[arg(long)]
    require_tls: bool,
    /// Do not offer TLS (clear CAN_TLS) even if the configuration names certificates.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_ca", "require_tls"])]
    no_tls: bool,
    /// Minimum TLS version: 1.3 (default) or 1.2 (only when asked for).
    #[arg(long, value_name = "VER", value_parser = ["1.2", "1.3"])]
    tls_version: Option<String>,
    /// Allowed cipher suites, comma-separated (IANA, rustls or OpenSSL names).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    tls_ciphers: Vec<String>,
    /// The peer's certificate must authenticate its host (DNS-ID / IPADDR-ID).
    #[arg(long)]
    require_host_authn: bool,
    /// The peer's certificate must authenticate its node ID (NODE-ID).
    #[arg(long)]
    require_node_authn: bool,
    /// Keepalive interval offered in SESS_INIT, seconds (0: none).
    #[arg(long, value_name = "SECS")]
    keepalive: Option<u16>,
    /// End a session after this many seconds without transfers (0: never).
    #[arg(long, value_name = "SECS")]
    idle_time: Option<f64>,
    /// Our Segment MRU: the largest segment we accept (K, M, G suffixes: binary).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    segment_mru: Option<u64>,
    /// Our Transfer MRU: the largest bundle we accept.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    transfer_mru: Option<u64>,
    /// Segment size we send (capped by the peer's Segment MRU).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    tx_segment_size: Option<u64>,
    /// Adapt the send segment size so each segment is acknowledged in about this many
    /// milliseconds.
    #[arg(long, value_name = "MS")]
    target_ack_time: Option<u64>,
    /// Bound on session setup (contact headers, TLS, SESS_INIT), seconds.
    #[arg(long, value_name = "SECS")]
    contact_timeout: Option<f64>,
    /// Wait this long for the peer's SESS_TERM reply, seconds.
    #[arg(long, value_name = "SECS")]
    sess_term_timeout: Option<f64>,
}

/// `proto tcpcl listen`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto tcpcl listen --bind 0.0.0.0:4556 --node-id dtn://rx/ --out-dir received/\n  \
    proto tcpcl listen --bind 127.0.0.1:4556 --node-id dtn://rx/ --count 1 \\\n      \
    --tls-cert certs/rx.pem --tls-key certs/rx.key --tls-ca certs/ca.pem --require-tls\n\n\
    Each bundle prints one line on stdout:\n  \
    TIME #SEQ from NODE-ID (ADDR) SIZE bytes sha256=HEX [file=PATH]")]
pub(crate) struct ListenArgs {
    /// Address to listen on (`HOST[:PORT]`; the port defaults to 4556, the TCPCL port).
    /// Default: the init_listen addresses of --config.
    #[arg(long, value_name = "ADDR", required_unless_present = "config")]
    bind: Option<String>,
    /// Write each bundle to DIR/tcpcl-NNNNNN.bin, streamed into a hidden .part file and
    /// published when complete (numbers already taken are skipped). Default: recv_dir
    /// of --config.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Exit (gracefully) after N bundles.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Most sessions at once.
    #[arg(long, value_name = "N")]
    max_sessions: Option<usize>,
    /// Refuse every transfer with this XFER_REFUSE reason (for testing senders):
    /// unknown, completed, no-resources, retransmit, not-acceptable, extension-failure,
    /// session-terminating or a number.
    #[arg(long, value_name = "REASON", value_parser = parse_refuse_reason)]
    refuse: Option<XferRefuseReason>,
    #[command(flatten)]
    agent: AgentArgs,
}

/// `proto tcpcl send`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto tcpcl send --to 127.0.0.1:4556 --node-id dtn://tx/ bundle1.bin bundle2.bin\n  \
    tar c docs/ | proto tcpcl send --to peer.example:4556 --node-id dtn://tx/ \\\n      \
    --tls-ca certs/ca.pem --tls-cert certs/tx.pem --tls-key certs/tx.key --require-tls -")]
pub(crate) struct SendArgs {
    /// Peer address (`HOST[:PORT]`; the port defaults to 4556, the TCPCL port).
    /// Default: the one init_connect entry of --config.
    #[arg(long, value_name = "ADDR", required_unless_present = "config")]
    to: Option<String>,
    /// DNS name of the peer for TLS (SNI and host authentication); default: the host
    /// part of --to.
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Bound on the TCP connect, seconds.
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<f64>,
    /// Local address to connect from (IP or IP:PORT).
    #[arg(long, value_name = "ADDR")]
    local_address: Option<String>,
    /// Give up when a transfer gets no acknowledgement for this many seconds (0: wait
    /// forever).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    ack_timeout: u64,
    /// Files to send, one bundle each; `-` reads stdin (streamed, length unknown).
    #[arg(value_name = "FILE|-", required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    agent: AgentArgs,
}

/// `proto tcpcl gen-certs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    proto tcpcl gen-certs --out certs --node-id dtn://rx/ --node-id dtn://tx/ --dns localhost\n  \
    # writes certs/ca.pem, certs/rx.pem, certs/rx.key, certs/tx.pem, certs/tx.key")]
pub(crate) struct GenCertsArgs {
    /// Directory to write ca.pem and NAME.pem / NAME.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Issue a certificate for this node ID (NODE-ID, otherName id-on-bundleEID); repeat
    /// for more. NAME is the node ID's host/path (dtn://rx/ -> rx, ipn:2.0 -> ipn-2.0).
    #[arg(long, value_name = "URI", required = true)]
    node_id: Vec<String>,
    /// Also put this DNS name (DNS-ID) in every certificate; repeatable.
    #[arg(long, value_name = "NAME")]
    dns: Vec<String>,
    /// Also put this IP address (IPADDR-ID) in every certificate; repeatable.
    #[arg(long, value_name = "IP")]
    ip: Vec<std::net::IpAddr>,
    /// Validity of the certificates, days, 1 to 36500 (the CA is valid for a year).
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = parse_days)]
    days: u64,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(cmd: &TcpclCommand) -> Result<()> {
    match cmd {
        TcpclCommand::Listen(a) => listen(a),
        TcpclCommand::Send(a) => send(a),
        TcpclCommand::GenCerts(a) => gen_certs(a),
    }
}

// ----- arguments ---------------------------------------------------------------------

/// Longest certificate validity `gen-certs` issues, days (100 years).
const MAX_DAYS: u64 = 36_500;

/// `--days`: 0 would issue certificates that expire as they are made, so it is refused
/// rather than warned about; very large values would overflow the clock.
fn parse_days(text: &str) -> Result<u64, String> {
    let days: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of days"))?;
    match days {
        0 => {
            Err("0 days would issue certificates that have already expired; give 1 or more".into())
        }
        d if d > MAX_DAYS => Err(format!(
            "{d} days is more than the {MAX_DAYS} (100 years) allowed"
        )),
        d => Ok(d),
    }
}

fn parse_refuse_reason(text: &str) -> Result<XferRefuseReason, String> {
    if let Ok(n) = text.parse::<u8>() {
        return Ok(XferRefuseReason(n));
    }
    let want = text.to_ascii_lowercase().replace(['-', '_'], " ");
    (0..=u8::MAX)
        .map(XferRefuseReason)
        .find(|r| r.name() == Some(want.as_str()))
        .ok_or_else(|| format!("{text:?} is not an XFER_REFUSE reason"))
}

impl AgentArgs {
    /// The configuration file (or defaults) with the flags applied; `cmd` is the
    /// command loading it (see [`config_file::load`]).
    fn config(&self, cmd: ConfigFor) -> Result<Config> {
        let mut c = match &self.config {
            Some(p) => config_file::load(p, cmd)?,
            None => Config::default(),
        };
        if let Some(n) = &self.node_id {
            c.node_id.clone_from(n);
        }
        if c.node_id.is_empty() {
            bail!("no node ID: give --node-id URI (or node_id in the configuration file)");
        }
        if self.tls_cert.is_some() {
            c.tls_cert_file.clone_from(&self.tls_cert);
            c.tls_key_file.clone_from(&self.tls_key);
        }
        if self.tls_ca.is_some() {
            c.tls_ca_file.clone_from(&self.tls_ca);
        }
        if self.tls_cert.is_some() || self.tls_ca.is_some() {
            c.tls_enable = true;
        }
        if self.require_tls {
            c.require_tls = Some(true);
        }
        if self.no_tls {
            c.tls_enable = false;
            c.require_tls = Some(false);
        }
        if let Some(v) = &self.tls_version {
            c.tls_version = Some(v.clone());
        }
        if !self.tls_ciphers.is_empty() {
            c.tls_ciphers = Some(self.tls_ciphers.clone());
        }
        c.require_host_authn |= self.require_host_authn;
        c.require_node_authn |= self.require_node_authn;
        if let Some(k) = self.keepalive {
            c.keepalive_time = k;
        }
        if let Some(t) = self.idle_time {
            c.idle_time = t;
        }
        if let Some(n) = self.segment_mru {
            c.segment_size_mru = n;
        }
        if let Some(n) = self.transfer_mru {
            c.transfer_mru = n;
        }
        if let Some(n) = self.tx_segment_size {
            c.segment_size_tx_initial = n;
            c.segment_size_tx_max = c.segment_size_tx_max.max(n);
        }
        if let Some(ms) = self.target_ack_time {
            c.modulate_target_ack_time = Some(ms);
        }
        if let Some(t) = self.contact_timeout {
            c.contact_timeout = t;
        }
        if let Some(t) = self.sess_term_timeout {
            c.sess_term_timeout = t;
        }
        let tls_on = c.tls_enable && c.tls_ca_file.is_some();
        if c.tls_enable && c.tls_ca_file.is_none() && c.tls_cert_file.is_some() {
            bail!("TLS needs --tls-ca FILE (the CA that authenticates peers) besides --tls-cert");
        }
        if c.tls_required() && !tls_on {
            bail!("--require-tls needs TLS: give --tls-ca (and --tls-cert/--tls-key)");
        }
        if (c.require_node_authn || c.require_host_authn) && !tls_on {
            bail!("--require-node-authn/--require-host-authn need TLS: give --tls-ca (and --tls-cert/--tls-key)");
        }
        c.validate().context("invalid agent configuration")?;
        Ok(c)
    }
}

fn new_agent(c: Config) -> Result<Agent> {
    Agent::new(c).map_err(|e| match e {
        AgentError::Config(m) => anyhow!("{m}"),
        e => anyhow!(e),
    })
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ----- listen ------------------------------------------------------------------------

/// What became of an incoming bundle's sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Stored {
    /// Still streaming.
    #[default]
    Streaming,
    /// Complete, and published as arrival `seq` (under its final name in `--out-dir`,
    /// if one is set) before the agent acknowledged the last segment.
    Done { seq: u64, sha256: String, len: u64 },
    /// Could not be stored: the sink failed, so the agent refused the transfer
    /// instead of acknowledging it.
    Failed,
    /// The transfer ended before it completed; its `.part` file is removed.
    Abandoned,
}

type SinkState = Arc<Mutex<Stored>>;

/// An incoming bundle, from its sink's creation until its line is printed.
struct Pending {
    session: SessionId,
    transfer_id: u64,
    node_id: String,
    temp: Option<PathBuf>,
    state: SinkState,
}

/// Keyed by a per-sink token, in creation order: a peer may reuse a transfer ID, so
/// (session, transfer ID) does not identify a sink.
type PendingMap = Mutex<BTreeMap<u64, Pending>>;

/// What the sink chooser, the sinks and the main thread share.
struct Store {
    arrivals: Arrivals,
    out_dir: Option<PathBuf>,
    refuse: Option<XferRefuseReason>,
    pending: PendingMap,
    /// Sink tokens, also the unique part of `.part` file names.
    next_token: AtomicU64,
    /// Bundles that could not be stored (refused, never acknowledged).
    failed: AtomicU64,
}

/// Streams a bundle into a `.part` file (or nowhere) while hashing it. The agent
/// flushes it when the bundle is complete and acknowledges the last segment only if
/// that flush succeeds; the flush publishes the file under its final name, so every
/// acknowledged bundle is already stored. A sink dropped without that flush belonged
/// to an abandoned transfer and removes its file.
struct HashingSink {
    file: Option<(PathBuf, BufWriter<File>)>,
    hasher: Sha256,
    len: u64,
    state: SinkState,
    store: Arc<Store>,
    finished: bool,
}

impl HashingSink {
    /// Syncs and publishes the file; the arrival it became.
    fn finish(&mut self) -> std::io::Result<Stored> {
        let sha256 = hex(self.hasher.clone().finalize().as_slice());
        let seq = match self.file.take() {
            Some((temp, f)) => {
                let stored = f
                    .into_inner()
                    .map_err(std::io::IntoInnerError::into_error)
                    .and_then(|f| f.sync_all())
                    .and_then(|()| publish(&temp, &self.store.arrivals));
                if stored.is_err() {
                    let _ = std::fs::remove_file(&temp);
                }
                stored?
            }
            None => self.store.arrivals.next_seq().unwrap_or_default(),
        };
        Ok(Stored::Done {
            seq,
            sha256,
            len: self.len,
        })
    }
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &mut self.file {
            Some((_, f)) => f.write(buf)?,
            None => buf.len(),
        };
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        match self.finish() {
            Ok(stored) => {
                *lock(&self.state) = stored;
                Ok(())
            }
            Err(e) => {
                log::warn!("cannot store a bundle of {} bytes: {e}", self.len);
                self.store.failed.fetch_add(1, Ordering::SeqCst);
                *lock(&self.state) = Stored::Failed;
                Err(e)
            }
        }
    }
}

impl Drop for HashingSink {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some((path, f)) = self.file.take() {
            drop(f);
            let _ = std::fs::remove_file(path);
        }
        *lock(&self.state) = Stored::Abandoned;
    }
}

/// Gives the complete bundle at `temp` the next free final name; returns its number.
/// An existing file is never replaced (a bundle of an earlier run, or of another
/// listener on the same directory): the name is taken with a hard link, which fails
/// if it exists, and then the next number is tried. Where hard links are not
/// supported, a rename of a name found free.
fn publish(temp: &Path, arrivals: &Arrivals) -> std::io::Result<u64> {
    loop {
        let seq = arrivals.next_seq().unwrap_or_default();
        let Some(dst) = arrivals.path_for(seq) else {
            return Ok(seq);
        };
        match std::fs::hard_link(temp, &dst) {
            Ok(()) => {
                if let Err(e) = std::fs::remove_file(temp) {
                    log::warn!("cannot remove {}: {e}", temp.display());
                }
                return Ok(seq);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                if dst.symlink_metadata().is_err() {
                    log::debug!("linking {} failed ({e}); renaming", dst.display());
                    std::fs::rename(temp, &dst)?;
                    return Ok(seq);
                }
            }
        }
    }
}

/// A new, empty `.part` file in `dir` with a name no other sink (of this or another
/// listener) uses; its token.
fn create_temp(store: &Store, dir: &Path) -> std::io::Result<(u64, PathBuf, File)> {
    let pid = std::process::id();
    let mut taken = 0;
    loop {
        let token = store.next_token.fetch_add(1, Ordering::SeqCst);
        let temp = dir.join(format!(".tcpcl-{pid}-{token}.part"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(f) => return Ok((token, temp, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && taken < 1000 => taken += 1,
            Err(e) => return Err(e),
        }
    }
}

/// A usage error (exit 2), as clap reports them.
fn usage_error(msg: &str) -> ! {
    clap::Error::raw(
        clap::error::ErrorKind::MissingRequiredArgument,
        format!("{msg}\n"),
    )
    .exit()
}

fn listen(a: &ListenArgs) -> Result<()> {
    let mut cfg = a.agent.config(ConfigFor::Listen)?;
    // --bind replaces init_listen; without it, every init_listen entry is used.
    let binds: Vec<String> = match &a.bind {
        Some(b) => vec![with_default_port(b)],
        None => cfg
            .init_listen
            .iter()
            .map(|l| host_port(&l.address, l.port))
            .collect(),
    };
    if binds.is_empty() {
        usage_error("--bind ADDR is required: the configuration file has no init_listen");
    }
    let out_dir = a.out_dir.clone().or_else(|| cfg.recv_dir.clone());
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

fn choose_sink(t: &IncomingTransfer, store: &Arc<Store>) -> Sink {
    if let Some(r) = store.refuse {
        return Sink::Refuse(r);
    }
    let (token, file) = match &store.out_dir {
        Some(dir) => match create_temp(store, dir) {
            Ok((token, temp, f)) => (token, Some((temp, BufWriter::with_capacity(256 << 10, f)))),
            Err(e) => {
                log::error!(
                    "cannot create a .part file in {}: {e}; refusing the transfer",
                    dir.display()
                );
                return Sink::Refuse(XferRefuseReason::NO_RESOURCES);
            }
        },
        None => (store.next_token.fetch_add(1, Ordering::SeqCst), None),
    };
    let state = SinkState::default();
    lock(&store.pending).insert(
        token,
        Pending {
            session: t.session,
            transfer_id: t.transfer_id,
            node_id: t.peer_node_id.clone(),
            temp: file.as_ref().map(|(p, _)| p.clone()),
            state: state.clone(),
        },
    );
    Sink::Writer(Box::new(HashingSink {
        file,
        hasher: Sha256::new(),
        len: 0,
        state,
        store: store.clone(),
        finished: false,
    }))
}

/// The listener's main thread: prints a line for every stored bundle and keeps
/// account of what could not be stored. Nothing here ends the listener.
struct Listening<'a> {
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
        let Stored::Done { seq, sha256, len } = lock(&p.state).clone() else {
            return;
        };
        if reported.is_some_and(|r| r != len) {
            log::warn!(
                "{}: bundle {}: {} bytes reported, {len} hashed",
                p.session,
                p.transfer_id,
                reported.unwrap_or_default()
            );
        }
        let addr = self
            .peers
            .get(&p.session)
            .map_or_else(|| "?".to_string(), |a| a.to_string());
        self.store
            .arrivals
            .print(seq, &format!("{} ({addr})", p.node_id), len, &sha256);
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

impl Pending {
    fn is_done(&self) -> bool {
        matches!(*lock(&self.state), Stored::Done { .. })
    }
}

fn describe_session(p: &SessionParams) -> String {
    format!(
        "session with {} at {} established ({}, keepalive {} s, peer segment MRU {}, peer transfer MRU {})",
        p.peer_node_id,
        p.peer_addr,
        if p.tls { "TLS" } else { "no TLS" },
        p.keepalive,
        p.peer_segment_mru,
        p.peer_transfer_mru
    )
}

// ----- send --------------------------------------------------------------------------

enum Input {
    File(PathBuf, File, u64),
    Stdin,
}

fn send(a: &SendArgs) -> Result<()> {
    let mut cfg = a.agent.config(ConfigFor::Send)?;
    // --to replaces init_connect; without it, init_connect must name exactly one peer.
    let to_addr = match (&a.to, cfg.init_connect.as_slice()) {
        (Some(to), _) => with_default_port(to),
        (None, [one]) => host_port(&one.address, one.port),
        (None, []) => usage_error("--to ADDR is required: the configuration file has no init_connect"),
        (None, many) => usage_error(&format!(
            "--to ADDR is required: init_connect in the configuration file lists {} peers, and send connects to one",
            many.len()
        )),
    };
    if let Some(t) = a.connect_timeout {
        cfg.connect_timeout = t;
    }
    if a.local_address.is_some() {
        cfg.connect_local_address.clone_from(&a.local_address);
    }
    cfg.validate().context("invalid agent configuration")?;
    if a.files.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            "`-` (stdin) can be given only once\n",
        )
        .exit();
    }
    // Every file must be readable before we connect.
    let mut inputs = Vec::new();
    for path in &a.files {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let meta = f
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            bail!("{} is a directory", path.display());
        }
        inputs.push(Input::File(path.clone(), f, meta.len()));
    }
    let connect_timeout = cfg.connect_timeout()?;
    let contact_timeout = Duration::try_from_secs_f64(cfg.contact_timeout).unwrap_or_default();
    let term_timeout = Duration::try_from_secs_f64(cfg.sess_term_timeout).unwrap_or_default();
    let server_name = a.server_name.clone().or_else(|| host_of(&to_addr));
    let agent = new_agent(cfg)?;
    let events = agent.events();
    let to = to_addr.as_str();
    let session = agent
        .connect_with(
            to,
            ConnectOptions {
                timeout: Some(connect_timeout),
                local_addr: None,
                server_name: server_name.clone(),
            },
        )
        .map_err(|e| explain_connect(e, to, connect_timeout))?;
    let mut s = Sender {
        agent: &agent,
        events: &events,
        id: session.id(),
        to,
        closed: None,
        terminating: None,
        server_name,
    };
    let params = s.wait_established(contact_timeout + Duration::from_secs(5))?;
    log::info!("{}", describe_session(&params));
    let ack_timeout = (a.ack_timeout > 0).then(|| Duration::from_secs(a.ack_timeout));
    let result = (|| -> Result<()> {
        for input in inputs {
            let (name, len, tid) = match input {
                Input::File(path, f, len) => {
                    let name = path.display().to_string();
                    if len > params.peer_transfer_mru {
                        bail!(
                            "{name} is {len} bytes, more than {to} accepts (its transfer MRU is {} bytes)",
                            params.peer_transfer_mru
                        );
                    }
                    let tid = session
                        .send_reader(f, Some(len))
                        .map_err(|e| s.explain_send(e, &name))?;
                    (name, Some(len), tid)
                }
                Input::Stdin => {
                    let name = "stdin".to_string();
                    let tid = session
                        .send_reader(std::io::stdin(), None)
                        .map_err(|e| s.explain_send(e, &name))?;
                    (name, None, tid)
                }
            };
            let sent = s.wait_transfer(tid, len, &name, ack_timeout)?;
            log::info!("{name}: {sent} bytes acknowledged by {to}");
        }
        Ok(())
    })();
    // Graceful end either way: SESS_TERM exchange, bounded.
    let close = s.finish(term_timeout * 2 + Duration::from_secs(2));
    result?;
    match close {
        Some(r) if r.is_graceful() => {}
        Some(r) => eprintln!(
            "warning: every bundle was acknowledged, but the session did not end cleanly: {}",
            explain_close(&r, to)
        ),
        None => eprintln!(
            "warning: every bundle was acknowledged, but {to} did not end the session in time"
        ),
    }
    Ok(())
}

/// `ADDR` with the TCPCL port 4556 added when it names none.
fn with_default_port(addr: &str) -> String {
    if addr.parse::<SocketAddr>().is_ok() {
        return addr.to_string();
    }
    if let Ok(ip) = addr.trim_start_matches('[').trim_end_matches(']').parse() {
        return SocketAddr::new(ip, DEFAULT_PORT).to_string();
    }
    if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    }
}

/// The host part of `HOST:PORT` / `[V6]:PORT` (the default TLS server name).
fn host_of(to: &str) -> Option<String> {
    if let Ok(sa) = to.parse::<SocketAddr>() {
        return Some(sa.ip().to_string());
    }
    let (host, _) = to.rsplit_once(':')?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// The active side's view of its one session.
struct Sender<'a> {
    agent: &'a Agent,
    events: &'a Receiver<Event>,
    id: SessionId,
    to: &'a str,
    closed: Option<CloseReason>,
    terminating: Option<(SessTermReason, bool)>,
    server_name: Option<String>,
}

impl Sender<'_> {
    /// Next event of our session; `None` on timeout.
    fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        loop {
            let ev = match timeout {
                Some(t) => match self.events.recv_timeout(t) {
                    Ok(ev) => ev,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Ok(None),
                    Err(_) => bail!("the agent stopped unexpectedly"),
                },
                None => self
                    .events
                    .recv()
                    .map_err(|_| anyhow!("the agent stopped unexpectedly"))?,
            };
            if ev.session() != Some(self.id) {
                continue;
            }
            match &ev {
                Event::SessionClosed { reason, .. } => self.closed = Some(reason.clone()),
                Event::SessionTerminating {
                    reason, by_peer, ..
                } => self.terminating = Some((*reason, *by_peer)),
                Event::TlsEstablished { info, .. } => log::info!("{}", describe_tls(info)),
                _ => {}
            }
            return Ok(Some(ev));
        }
    }

    fn wait_established(&mut self, limit: Duration) -> Result<SessionParams> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(Some(left))? {
                Some(Event::SessionEstablished { params, .. }) => return Ok(params),
                Some(Event::SessionClosed { reason, .. }) => {
                    bail!("{}", self.explain(&reason))
                }
                Some(_) => {}
                None => bail!(
                    "timed out: {} did not complete the session setup within {} s",
                    self.to,
                    limit.as_secs()
                ),
            }
        }
    }

    /// Waits until transfer `tid` is acknowledged in full; returns its length.
    fn wait_transfer(
        &mut self,
        tid: u64,
        len: Option<u64>,
        name: &str,
        ack_timeout: Option<Duration>,
    ) -> Result<u64> {
        let bar = progress::bar(len, name);
        let mut acked = 0;
        loop {
            let ev = match self.next(ack_timeout)? {
                Some(ev) => ev,
                None => {
                    bar.abandon();
                    bail!(
                        "timed out: {} acknowledged nothing of {name} for {} s ({acked} bytes acknowledged)",
                        self.to,
                        ack_timeout.unwrap_or_default().as_secs()
                    );
                }
            };
            match ev {
                Event::TransferProgress {
                    direction: Direction::Outgoing,
                    transfer_id,
                    bytes,
                    ..
                } if transfer_id == tid => {
                    acked = bytes;
                    bar.set_position(bytes);
                }
                Event::TransferFinished {
                    direction: Direction::Outgoing,
                    transfer_id,
                    len: total,
                    ..
                } if transfer_id == tid => {
                    bar.set_position(total);
                    bar.finish();
                    if let Some(l) = len {
                        if l != total {
                            bail!("{name}: {total} bytes were acknowledged, but the file has {l}");
                        }
                    }
                    return Ok(total);
                }
                Event::TransferRefused {
                    direction: Direction::Outgoing,
                    transfer_id,
                    reason,
                    ..
                } if transfer_id == tid => {
                    bar.abandon();
                    bail!(
                        "{} refused {name} after {acked} bytes (XFER_REFUSE reason: {})",
                        self.to,
                        refuse_text(reason)
                    );
                }
                Event::TransferCancelled {
                    direction: Direction::Outgoing,
                    transfer_id,
                    ..
                } if transfer_id == tid => {
                    bar.abandon();
                    let why = self.why_over();
                    bail!("{name} was not delivered ({acked} bytes acknowledged): {why}");
                }
                Event::SessionClosed { reason, .. } => {
                    bar.abandon();
                    let why = self.explain(&reason);
                    bail!("{name} was not delivered ({acked} bytes acknowledged): {why}");
                }
                _ => {}
            }
        }
    }

    /// Why the session is over (or ending): waits briefly for the close reason.
    fn why_over(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.closed.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !matches!(self.next(Some(left)), Ok(Some(_))) {
                break;
            }
        }
        match (&self.closed, self.terminating) {
            (Some(r), _) => self.explain(&r.clone()),
            (None, Some((reason, true))) => {
                format!(
                    "{} ended the session (SESS_TERM reason: {reason:#})",
                    self.to
                )
            }
            _ => format!("the session with {} is ending", self.to),
        }
    }

    fn explain_send(&mut self, e: AgentError, name: &str) -> anyhow::Error {
        match e {
            AgentError::TooLarge { len, mru } => anyhow!(
                "{name} is {len} bytes, more than {} accepts (its transfer MRU is {mru} bytes)",
                self.to
            ),
            AgentError::SessionClosed | AgentError::Terminating => {
                anyhow!("{name} was not sent: {}", self.why_over())
            }
            e => anyhow!("{name} was not sent: {e}"),
        }
    }

    /// Graceful shutdown; returns how the session closed, if it did in time.
    fn finish(&mut self, limit: Duration) -> Option<CloseReason> {
        if self.closed.is_none() {
            self.agent.shutdown();
            let deadline = Instant::now() + limit;
            while self.closed.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !matches!(self.next(Some(left)), Ok(Some(_))) {
                    break;
                }
            }
        }
        self.closed.clone()
    }

    fn explain(&self, r: &CloseReason) -> String {
        match r {
            CloseReason::HostNotAuthenticated => format!(
                "TLS host authentication failed: the certificate of {} does not name {} (DNS-ID/IPADDR-ID) and --require-host-authn is set",
                self.to,
                self.server_name.as_deref().unwrap_or("the host")
            ),
            _ => explain_close(r, self.to),
        }
    }
}

fn describe_tls(i: &TlsInfo) -> String {
    fn list<T: std::fmt::Display>(items: &[T]) -> String {
        if items.is_empty() {
            return "none".into();
        }
        items
            .iter()
            .map(T::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
    format!(
        "TLS up: {} {}; peer node IDs: {}; DNS names: {}; IPs: {}; host authentication: {}",
        i.version,
        i.cipher_suite,
        list(&i.peer_identity.node_ids),
        list(&i.peer_identity.dns_names),
        list(&i.peer_identity.ip_addrs),
        i.host_authn
    )
}

fn refuse_text(r: XferRefuseReason) -> String {
    let hint = match r {
        XferRefuseReason::NO_RESOURCES => " - the receiver lacks resources (disk, memory)",
        XferRefuseReason::NOT_ACCEPTABLE => " - the receiver does not accept this bundle",
        XferRefuseReason::COMPLETED => " - the receiver already has it",
        XferRefuseReason::RETRANSMIT => " - the receiver asks for it to be sent again",
        XferRefuseReason::SESSION_TERMINATING => " - the session is ending",
        _ => "",
    };
    format!("{r:#}{hint}")
}

/// A sentence for a failed connect.
fn explain_connect(e: AgentError, to: &str, timeout: Duration) -> anyhow::Error {
    match e {
        AgentError::Resolve(io) => anyhow!("cannot resolve {to}: {io}"),
        AgentError::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => {
                anyhow!("{to} refused the connection: nothing is listening there")
            }
            ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                anyhow!(
                    "timed out: no answer from {to} within {} s",
                    timeout.as_secs_f64()
                )
            }
            _ => anyhow!("cannot connect to {to}: {io}"),
        },
        e => anyhow!("cannot connect to {to}: {e}"),
    }
}

/// A sentence for why a session closed.
fn explain_close(r: &CloseReason, peer: &str) -> String {
    match r {
        CloseReason::Session(c) => explain_session_close(c, peer),
        CloseReason::TlsFailed(f) => explain_tls(f, peer),
        CloseReason::HostNotAuthenticated => format!(
            "TLS host authentication failed: the certificate of {peer} does not name its host (DNS-ID/IPADDR-ID) and --require-host-authn is set"
        ),
        CloseReason::Io { kind, message, .. } => match kind {
            ErrorKind::ConnectionReset => format!("{peer} reset the connection ({message})"),
            ErrorKind::BrokenPipe => format!("{peer} closed the connection while we were sending ({message})"),
            _ => format!("the connection to {peer} failed: {r}"),
        },
        CloseReason::SourceFailed(f) => match f {
            SourceFailure::TooLarge { len, mru } => format!(
                "the bundle is larger than {peer} accepts (it reached {len} bytes; the transfer MRU is {mru} bytes)"
            ),
            SourceFailure::LengthMismatch { announced, yielded } => format!(
                "the bundle changed while being sent: {yielded} bytes where {announced} were announced"
            ),
            SourceFailure::Read { kind: ErrorKind::UnexpectedEof, message } => {
                format!("the bundle ended early: {message}")
            }
            SourceFailure::Read { message, .. } => format!("reading the bundle failed: {message}"),
            _ => format!("the bundle could not be sent: {f}"),
        },
        CloseReason::LocalClose => "the session was closed locally".into(),
    }
}

/// A sentence for a close decided by the protocol state machine.
fn explain_session_close(c: &CoreClose, peer: &str) -> String {
    match c {
        CoreClose::Terminated { reason, by_peer } => {
            let who = if *by_peer { peer.to_string() } else { "we".to_string() };
            let mut s = format!("{who} ended the session (SESS_TERM reason: {reason:#})");
            if *reason == SessTermReason::CONTACT_FAILURE && *by_peer {
                s.push_str(
                    "; the peer did not accept our contact: it may require TLS \
                     (--tls-ca/--tls-cert/--tls-key) or authentication of our node ID",
                );
            } else if *reason == SessTermReason::VERSION_MISMATCH && *by_peer {
                s.push_str("; the peer does not speak TCPCL version 4");
            }
            s
        }
        CoreClose::PeerClosed => {
            format!("{peer} closed the connection without ending the session (no SESS_TERM)")
        }
        CoreClose::BadMagic => {
            format!("{peer} is not a TCPCL node (its contact header does not start with \"dtn!\")")
        }
        CoreClose::VersionMismatch { version } => {
            let rfc = if *version == 3 { " (RFC 7242)" } else { "" };
            format!("contact failure: {peer} speaks TCPCL version {version}{rfc}, we speak version 4 (RFC 9174)")
        }
        CoreClose::ContactFailure(f) => match f {
            ContactFailure::NodeNotAuthenticated => format!(
                "node authentication failed: the TLS certificate of {peer} does not authenticate the node ID it sent (NODE-ID), or TLS is not in use, and --require-node-authn is set"
            ),
            ContactFailure::InvalidNodeId => {
                format!("contact failure: {peer} sent a node ID that is not a URI")
            }
            ContactFailure::CriticalExtension { item_type } => format!(
                "contact failure: {peer} requires session extension {item_type:#06x}, which we do not support"
            ),
            ContactFailure::SessInitTooLarge => {
                format!("contact failure: the SESS_INIT of {peer} is too large")
            }
            ContactFailure::MalformedSessInit => {
                format!("contact failure: the SESS_INIT of {peer} is malformed")
            }
        },
        CoreClose::TlsRequired => {
            format!("{peer} does not offer TLS and --require-tls is set")
        }
        CoreClose::ContactTimeout => format!(
            "timed out: {peer} did not complete the session setup (contact header, TLS, SESS_INIT) in time"
        ),
        CoreClose::SessTermTimeout => {
            format!("timed out: {peer} did not answer our SESS_TERM")
        }
        CoreClose::ProtocolError(e) => format!("{peer} violated the protocol: {e}"),
        CoreClose::LocalClose => "the session was closed locally".into(),
    }
}

/// A sentence naming which TLS check failed, and on which side.
fn explain_tls(f: &TlsFailure, peer: &str) -> String {
    use proto_net::tcpcl::tls::{AlertDescription as A, CertificateError as C};
    let what = match f {
        TlsFailure::UntrustedCertificate(_) => {
            format!("the certificate of {peer} was not issued by a CA in --tls-ca (unknown CA)")
        }
        TlsFailure::CertificateExpired(_) => format!("the certificate of {peer} has expired"),
        TlsFailure::CertificateNotYetValid(_) => {
            format!("the certificate of {peer} is not valid yet")
        }
        TlsFailure::CertificateInvalid(C::Revoked) => {
            format!("the certificate of {peer} is revoked")
        }
        TlsFailure::CertificateInvalid(_) => {
            format!("the certificate of {peer} is not acceptable")
        }
        TlsFailure::AlertReceived(a) => match a {
            A::DecryptError => {
                format!("{peer} could not verify our certificate (not issued by a CA it trusts)")
            }
            A::UnknownCA | A::BadCertificate => {
                format!("{peer} does not trust our certificate (unknown CA)")
            }
            A::CertificateExpired => format!("{peer} rejected our certificate as expired"),
            A::CertificateRevoked => format!("{peer} rejected our certificate as revoked"),
            A::CertificateRequired => {
                format!("{peer} requires a client certificate: give --tls-cert and --tls-key")
            }
            A::ProtocolVersion => no_common_version(peer),
            A::HandshakeFailure | A::InsufficientSecurity => no_common_cipher(peer),
            _ => format!("{peer} ended the handshake with an alert"),
        },
        TlsFailure::NoCommonVersion(_) => no_common_version(peer),
        TlsFailure::NoCommonCipher(_) => no_common_cipher(peer),
        TlsFailure::HandshakeIo {
            kind: ErrorKind::UnexpectedEof,
            ..
        } => format!("{peer} closed the connection during the handshake"),
        TlsFailure::HandshakeIo { .. } => {
            format!("the connection to {peer} failed during the handshake")
        }
        TlsFailure::NoServerCertificate => {
            "we have no certificate to present: give --tls-cert and --tls-key".into()
        }
        TlsFailure::InvalidServerName(name) => {
            format!("{name:?} is not a DNS name or IP address: give --server-name NAME")
        }
        _ => format!("TLS with {peer} failed"),
    };
    format!("TLS handshake failed: {what} ({f})")
}

fn no_common_version(peer: &str) -> String {
    format!("{peer} and we share no TLS version (TLS 1.2 only with --tls-version 1.2)")
}

fn no_common_cipher(peer: &str) -> String {
    format!("{peer} and we share no TLS cipher suite or version")
}

// ----- gen-certs ---------------------------------------------------------------------

/// `dtn://rx/` -> `rx`, `ipn:2.0` -> `ipn-2.0`.
fn file_stem(node_id: &str) -> String {
    let rest = node_id
        .strip_prefix("dtn://")
        .map_or_else(|| node_id.to_string(), str::to_string);
    let mut s: String = rest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "node".into()
    } else {
        s
    }
}

fn gen_certs(a: &GenCertsArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut stems: Vec<String> = Vec::new();
    for n in &a.node_id {
        if !n.contains(':') {
            bail!("{n:?} is not a node ID URI (e.g. dtn://node/ or ipn:1.0)");
        }
        let stem = file_stem(n);
        if stems.contains(&stem) {
            bail!("two node IDs map to the same file name {stem}.pem");
        }
        stems.push(stem);
    }
    let mut files = vec![a.out.join("ca.pem")];
    for s in &stems {
        files.push(a.out.join(format!("{s}.pem")));
        files.push(a.out.join(format!("{s}.key")));
    }
    if !a.force {
        if let Some(f) = files.iter().find(|f| f.exists()) {
            bail!("{} exists (use --force to overwrite)", f.display());
        }
    }
    // A distinct name per CA, so certificates of another generated CA fail as
    // "unknown issuer" rather than with a signature error.
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let ca = CertFactory::new_ca(&format!("proto tcpcl gen-certs CA {stamp:x}"))?;
    write_file(&a.out.join("ca.pem"), ca.ca_pem(), false)?;
    println!(
        "{}  CA certificate (--tls-ca)",
        a.out.join("ca.pem").display()
    );
    let now = SystemTime::now();
    for (node, stem) in a.node_id.iter().zip(&stems) {
        let spec = LeafSpec {
            dns_names: a.dns.clone(),
            ip_addrs: a.ip.clone(),
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(a.days.saturating_mul(86_400)),
            ..LeafSpec::node(node)
        };
        let (cert, key) = ca.issue(&spec)?;
        let (cp, kp) = (
            a.out.join(format!("{stem}.pem")),
            a.out.join(format!("{stem}.key")),
        );
        write_file(&cp, &cert, false)?;
        write_file(&kp, &key, true)?;
        println!("{}  certificate for {node} (--tls-cert)", cp.display());
        println!("{}  its private key (--tls-key)", kp.display());
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, private: bool) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn refuse_reasons() {
        assert_eq!(
            parse_refuse_reason("no-resources"),
            Ok(XferRefuseReason::NO_RESOURCES)
        );
        assert_eq!(
            parse_refuse_reason("NOT_ACCEPTABLE"),
            Ok(XferRefuseReason::NOT_ACCEPTABLE)
        );
        assert_eq!(parse_refuse_reason("7"), Ok(XferRefuseReason(7)));
        assert!(parse_refuse_reason("nope").is_err());
    }

    #[test]
    fn stems_and_hosts() {
        assert_eq!(file_stem("dtn://rx/"), "rx");
        assert_eq!(file_stem("dtn://node-a/inbox"), "node-a-inbox");
        assert_eq!(file_stem("ipn:2.0"), "ipn-2.0");
        assert_eq!(host_of("127.0.0.1:4556").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("[::1]:4556").as_deref(), Some("::1"));
        assert_eq!(
            host_of("peer.example:4556").as_deref(),
            Some("peer.example")
        );
        assert_eq!(with_default_port("peer.example"), "peer.example:4556");
        assert_eq!(with_default_port("10.0.0.1"), "10.0.0.1:4556");
        assert_eq!(with_default_port("::1"), "[::1]:4556");
        assert_eq!(with_default_port("[::1]:99"), "[::1]:99");
        assert_eq!(with_default_port("h:99"), "h:99");
    }

    #[test]
    fn publishing_never_replaces_a_file() {
        let dir = std::env::temp_dir().join(format!("proto-tcpcl-publish-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let arrivals = Arrivals::new("tcpcl", Some(dir.clone()), None).unwrap();
        std::fs::write(dir.join("tcpcl-000001.bin"), b"earlier").unwrap();
        std::fs::write(dir.join("tcpcl-000002.bin"), b"earlier too").unwrap();
        let temp = dir.join(".x.part");
        std::fs::write(&temp, b"new").unwrap();
        assert_eq!(publish(&temp, &arrivals).unwrap(), 3);
        assert!(!temp.exists());
        assert_eq!(
            std::fs::read(dir.join("tcpcl-000001.bin")).unwrap(),
            b"earlier"
        );
        assert_eq!(std::fs::read(dir.join("tcpcl-000003.bin")).unwrap(), b"new");
        // A temporary file that is gone is an error, not an empty bundle.
        assert!(publish(&temp, &arrivals).is_err());
        assert!(!dir.join("tcpcl-000004.bin").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tls_sentences_name_the_check() {
        use proto_net::tcpcl::tls::{AlertDescription as A, CertificateError as C};
        let m = explain_tls(&TlsFailure::UntrustedCertificate(C::UnknownIssuer), "p");
        assert!(
            m.contains("unknown CA") && !m.contains("UnknownIssuer"),
            "{m}"
        );
        let m = explain_tls(&TlsFailure::AlertReceived(A::UnknownCA), "p");
        assert!(m.contains("does not trust our certificate"), "{m}");
        let m = explain_tls(&TlsFailure::AlertReceived(A::DecryptError), "p");
        assert!(m.contains("could not verify our certificate"), "{m}");
        let m = explain_tls(&TlsFailure::AlertReceived(A::CertificateRequired), "p");
        assert!(m.contains("--tls-cert"), "{m}");
        let m = explain_tls(&TlsFailure::CertificateExpired(C::Expired), "p");
        assert!(m.contains("has expired"), "{m}");
        let m = explain_tls(&TlsFailure::CertificateNotYetValid(C::NotValidYet), "p");
        assert!(m.contains("not valid yet"), "{m}");
        let m = explain_tls(&TlsFailure::CertificateInvalid(C::Revoked), "p");
        assert!(m.contains("revoked"), "{m}");
        let m = explain_tls(&TlsFailure::AlertReceived(A::ProtocolVersion), "p");
        assert!(m.contains("no TLS version"), "{m}");
        let m = explain_tls(&TlsFailure::AlertReceived(A::HandshakeFailure), "p");
        assert!(m.contains("no TLS cipher suite"), "{m}");
    }

    #[test]
    fn source_failures_say_what_went_wrong() {
        let r = CloseReason::SourceFailed(SourceFailure::TooLarge {
            len: 2048,
            mru: 1024,
        });
        let m = explain_close(&r, "p");
        assert!(
            m.contains("larger than p accepts") && m.contains("1024 bytes"),
            "{m}"
        );
        let r = CloseReason::SourceFailed(SourceFailure::LengthMismatch {
            announced: 10,
            yielded: 8,
        });
        let m = explain_close(&r, "p");
        assert!(m.contains("8 bytes where 10 were announced"), "{m}");
    }
}
