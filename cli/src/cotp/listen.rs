//! `proto cotp listen`: one thread per connection, each message printed, stored or
//! echoed; SIGINT/SIGTERM stop gracefully (a message already arriving may finish,
//! within [`SHUTDOWN_GRACE`]), a second signal stops at once. At
//! `--max-connections`, the oldest connection still waiting for its CR is closed to
//! make room (so slow-loris connections cannot lock out real clients); with none,
//! the newcomer is closed.

use super::{parse_tpdu_size, parse_tsap};
use crate::addr::with_default_port;
use crate::arrivals::{Arrivals, Peer};
use crate::shutdown::Shutdown;
use crate::units::{human, parse_limit};
use anyhow::{Context, Result};
use proto_core::cotp::connection::ProtocolError;
use proto_core::cotp::{DisconnectReason, TpduSize};
use proto_net::cotp::{
    Connection, Error as CotpError, ListenOptions, Listener, Received, DEFAULT_PORT,
};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a stopping listener lets a message that is already arriving finish.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long after [`SHUTDOWN_GRACE`] the listener still waits for connections to
/// close (the DR exchange, a write to a slow reader) before it exits anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `proto cotp listen`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto cotp listen --bind 127.0.0.1:1102 --echo\n  \
    proto cotp listen --tsap 0102 -o received/ -n 10 --max-message-size 300M\n  \
    proto cotp listen -b 127.0.0.1:1102 --json\n\n\
    Each message prints one line on stdout:\n  \
    TIME #SEQ from ADDR (TSAP CALLING -> CALLED) SIZE bytes sha256=HEX [file=PATH]")]
pub(crate) struct ListenArgs {
    /// Address to listen on (`HOST[:PORT]`; the port defaults to 102, the RFC 1006
    /// port).
    #[arg(short, long, value_name = "ADDR", default_value = crate::addr::ALL_INTERFACES)]
    bind: String,
    /// Send every message back to its sender.
    #[arg(long, conflicts_with = "out_dir")]
    echo: bool,
    /// Write each message to DIR/cotp-NNNNNN.bin (atomically).
    #[arg(short, long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Answer only connection requests for this called TSAP (hex); others get DR
    /// "address unknown".
    #[arg(long, value_name = "HEX")]
    tsap: Option<String>,
    /// Largest TPDU size accepted, in bytes (128..8192, a power of two).
    #[arg(long, value_name = "N", default_value = "8192", value_parser = parse_tpdu_size)]
    tpdu_size: TpduSize,
    /// Exit after N messages.
    #[arg(short = 'n', long, value_name = "N")]
    count: Option<u64>,
    /// Print one JSON object per message (JSON lines): time, seq, peer, size, sha256,
    /// file, calling_tsap, called_tsap.
    #[arg(long)]
    json: bool,
    /// Largest message accepted (bytes, or with a K/M/G suffix). A bigger one is
    /// refused with DR "congestion at TSAP", which the sender reports.
    #[arg(long, value_name = "BYTES", default_value = "16M", value_parser = parse_limit)]
    max_message_size: usize,
    /// Accept RFC 1006 expedited data when a client proposes it (the CC selects the
    /// option); each ED prints a line `... expedited from PEER N bytes hex=...` and,
    /// with --echo, goes back as an ED. Without it a client's ED gets an ER.
    #[arg(long)]
    expedited: bool,
    /// Close connections that receive nothing for this many seconds.
    #[arg(long, value_name = "SECS")]
    inactivity_timeout: Option<u64>,
    /// Most connections served at once. A newcomer beyond it closes the oldest
    /// connection still waiting for its CR; with none, the newcomer is closed.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections: usize,
}

/// One connection's thread, and what closing it for a newcomer needs.
struct Served {
    thread: JoinHandle<()>,
    /// A second handle on the connection's socket while its handshake is waiting
    /// (the thread drops it once the handshake ended, so it never keeps a closed
    /// connection open).
    waiting: Arc<Mutex<Option<TcpStream>>>,
    /// Set when the listener closed it for a newcomer.
    evicted: Arc<AtomicBool>,
}

impl Served {
    /// Closes the connection if it is still in its handshake (the thread's read ends
    /// at once); whether it was.
    fn evict(&self) -> bool {
        let Some(s) = lock(&self.waiting).take() else {
            return false;
        };
        self.evicted.store(true, Ordering::Release);
        let _ = s.shutdown(std::net::Shutdown::Both);
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn run(a: &ListenArgs) -> Result<()> {
    // The output directory is checked before anything listens: a listener that
    // announced itself and then failed would mislead whoever waits for that line.
    let arrivals = Arc::new(Arrivals::new("cotp", a.out_dir.clone(), a.count)?.with_json(a.json));
    let opts = ListenOptions {
        max_tpdu_size: a.tpdu_size,
        local_tsap: a
            .tsap
            .as_deref()
            .map(|t| parse_tsap("--tsap", t))
            .transpose()?,
        max_message_size: a.max_message_size,
        inactivity_timeout: a.inactivity_timeout.map(Duration::from_secs),
        expedited: a.expedited,
        // Handlers wake up this often to notice a shutdown between messages.
        timeout: Some(Duration::from_millis(250)),
        ..ListenOptions::default()
    };
    let bind = with_default_port(&a.bind, DEFAULT_PORT);
    let listener =
        Listener::bind(bind.as_str(), opts).with_context(|| format!("binding {bind}"))?;
    let local = listener.local_addr()?;
    let shutdown = Shutdown::install("finishing messages in progress", move || wake(local))?;
    eprintln!("listening for COTP on {local}");
    let listener = Arc::new(listener);
    let mut handlers: Vec<Served> = Vec::new();
    loop {
        let accepted = listener.accept_tcp();
        if shutdown.requested() || arrivals.done() {
            break;
        }
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(CotpError::Io(e)) => return Err(e).context("accepting"),
            Err(e) => {
                log::warn!("connection attempt failed: {e}");
                continue;
            }
        };
        handlers.retain(|h| !h.thread.is_finished());
        let open = handlers
            .iter()
            .filter(|h| !h.evicted.load(Ordering::Acquire))
            .count();
        if open >= a.max_connections {
            // Connections that trickle their CR (slow-loris) hold a slot only until a
            // newcomer needs it; the oldest of them goes first.
            if handlers.iter().any(Served::evict) {
                log::info!("closed a connection still waiting for its CR to make room for {peer}");
            } else {
                // Closing at once keeps the thread count bounded; the peer sees the TCP
                // close, which class 0 treats as release.
                log::warn!("{peer}: refused, {open} connections already open");
                continue;
            }
        }
        log::info!("COTP connection from {peer}");
        let (listener, arrivals, shutdown, echo) = (
            Arc::clone(&listener),
            Arc::clone(&arrivals),
            shutdown.clone(),
            a.echo,
        );
        let waiting = Arc::new(Mutex::new(stream.try_clone().ok()));
        let evicted = Arc::new(AtomicBool::new(false));
        let (wait, ev) = (Arc::clone(&waiting), Arc::clone(&evicted));
        let thread = std::thread::spawn(move || {
            // The handshake runs here, not on the accept loop, so a silent peer only
            // holds its own thread (until the handshake timeout).
            let result = listener.handshake(stream);
            // Established or failed: no longer a candidate for eviction.
            drop(lock(&wait).take());
            let result = result
                .map_err(anyhow::Error::from)
                .and_then(|conn| serve(conn, peer, &arrivals, &shutdown, echo));
            if let Err(e) = result {
                if ev.load(Ordering::Acquire) {
                    log::info!("{peer}: closed before its CR to make room for a newcomer");
                } else {
                    // The one place a connection's failure is reported.
                    warn_ended(peer, &e);
                }
            }
            if arrivals.done() {
                shutdown.trigger();
                wake(local);
            }
        });
        handlers.push(Served {
            thread,
            waiting,
            evicted,
        });
    }
    wait_for(&mut handlers, &shutdown);
    eprintln!("received {} message(s)", arrivals.count());
    Ok(())
}

/// Waits until every connection closed (each finishes the message in progress
/// within [`SHUTDOWN_GRACE`]), a second signal arrives, or the grace ran out.
fn wait_for(handlers: &mut Vec<Served>, shutdown: &Shutdown) {
    let give_up = Instant::now() + SHUTDOWN_GRACE + CLOSE_GRACE;
    loop {
        handlers.retain(|h| !h.thread.is_finished());
        if handlers.is_empty() || shutdown.immediate() {
            return;
        }
        if Instant::now() >= give_up {
            log::warn!(
                "{} connection(s) still busy after the shutdown grace; exiting anyway",
                handlers.len()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reports why a connection ended, once, in words that say what to do about it.
fn warn_ended(peer: SocketAddr, e: &anyhow::Error) {
    match e.downcast_ref::<CotpError>() {
        Some(CotpError::Protocol(ProtocolError::MessageTooLarge { limit })) => log::warn!(
            "{peer}: refused a message larger than the {} limit with DR \"{}\" \
             (--max-message-size raises the limit)",
            human(*limit as u64),
            DisconnectReason::CONGESTION_AT_TSAP
        ),
        _ => log::warn!("{peer}: {e:#}"),
    }
}

/// Unblocks `accept` by connecting to ourselves.
fn wake(local: SocketAddr) {
    let target = if local.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    };
    let _ = TcpStream::connect_timeout(&target, Duration::from_secs(1));
}

/// Serves one connection until the peer releases it, `--count` is reached or the
/// listener stops. Errors are returned, not logged: the caller reports them once.
fn serve(
    mut conn: Connection,
    peer: SocketAddr,
    arrivals: &Arrivals,
    shutdown: &Shutdown,
    echo: bool,
) -> Result<()> {
    let peer_s = peer.to_string();
    // The TSAPs the CR named: which PLC / service the sender asked for.
    let tsap = |t: Option<&proto_core::cotp::Tsap>| t.map(|t| t.to_string());
    let (calling, called) = (
        tsap(conn.core().calling_tsap()),
        tsap(conn.core().called_tsap()),
    );
    let who = Peer {
        addr: &peer_s,
        detail: Some(format!(
            "TSAP {} -> {}",
            calling.as_deref().unwrap_or("none"),
            called.as_deref().unwrap_or("none")
        )),
        json: serde_json::json!({
            "protocol": "cotp",
            "calling_tsap": calling,
            "called_tsap": called,
        }),
    };
    loop {
        match conn.recv() {
            Ok(Received::Expedited(data)) => {
                arrivals.print_expedited(&peer_s, &data);
                if echo {
                    conn.send_expedited(&data)?;
                }
            }
            Ok(Received::Message(msg)) => {
                let Some(seq) = arrivals.next_seq() else {
                    // --count reached elsewhere: this message is not ours to keep.
                    let _ = conn.close_with_reason(DisconnectReason::NORMAL);
                    return Ok(());
                };
                arrivals.record_bytes_with(seq, &who, &msg)?;
                if echo {
                    conn.send_data(&msg)?;
                }
                if arrivals.done() {
                    conn.close()?;
                    return Ok(());
                }
            }
            Err(CotpError::Timeout(_)) => {
                if shutdown.immediate() {
                    return Ok(());
                }
                let Some(since) = shutdown.requested_at() else {
                    continue;
                };
                // Graceful: a message already arriving may finish (bounded, so a peer
                // that stalls mid-message cannot hold the listener).
                if conn.is_receiving() {
                    if since.elapsed() < SHUTDOWN_GRACE {
                        continue;
                    }
                    log::warn!(
                        "{peer}: dropped a message still arriving {} s after shutdown began",
                        SHUTDOWN_GRACE.as_secs()
                    );
                }
                // The peer's answer to our DR changes nothing now.
                let _ = conn.close();
                return Ok(());
            }
            Err(CotpError::Closed | CotpError::Disconnected { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
