//! `proto cotp listen` and `proto cotp send`.

use crate::arrivals::Arrivals;
use crate::progress;
use crate::shutdown::Shutdown;
use anyhow::{Context, Result};
use proto_core::cotp::{DisconnectReason, TpduSize, Tsap};
use proto_net::cotp::{ConnectOptions, Connection, Error as CotpError, ListenOptions, Listener};
use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// COTP over TPKT (RFC 1006 / X.224 class 0).
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CotpCommand {
    /// Accept COTP connections; print, store or echo every message.
    Listen(ListenArgs),
    /// Connect and send files (or stdin) as messages.
    Send(SendArgs),
}

/// `proto cotp listen`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto cotp listen --bind 127.0.0.1:1102 --echo\n  \
    proto cotp listen --bind 0.0.0.0:102 --tsap 0102 --out-dir received/ --count 10")]
pub(crate) struct ListenArgs {
    /// Address to listen on (port 102 is the RFC 1006 port).
    #[arg(long, value_name = "ADDR")]
    bind: String,
    /// Send every message back to its sender.
    #[arg(long, conflicts_with = "out_dir")]
    echo: bool,
    /// Write each message to DIR/cotp-NNNNNN.bin (atomically).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Answer only connection requests for this called TSAP (hex); others get DR
    /// "address unknown".
    #[arg(long, value_name = "HEX")]
    tsap: Option<String>,
    /// Largest TPDU size accepted, in bytes (128..8192, a power of two).
    #[arg(long, value_name = "N", default_value = "8192", value_parser = parse_tpdu_size)]
    tpdu_size: TpduSize,
    /// Exit after N messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Largest message accepted, in bytes.
    #[arg(long, value_name = "N", default_value_t = 16 << 20)]
    max_message_size: usize,
    /// Close connections that receive nothing for this many seconds.
    #[arg(long, value_name = "SECS")]
    inactivity_timeout: Option<u64>,
    /// Most connections served at once; more are closed on arrival.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections: usize,
}

/// `proto cotp send`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto cotp send --to 127.0.0.1:1102 message.bin\n  \
    echo -n 'ping' | proto cotp send --to plc:102 --src-tsap 0100 --dst-tsap 0102 --expect-reply - > reply.bin")]
pub(crate) struct SendArgs {
    /// Peer address.
    #[arg(long, value_name = "ADDR")]
    to: String,
    /// Calling TSAP (hex).
    #[arg(long, value_name = "HEX", default_value = "0100")]
    src_tsap: String,
    /// Called TSAP (hex).
    #[arg(long, value_name = "HEX", default_value = "0102")]
    dst_tsap: String,
    /// TPDU size to propose, in bytes (128..8192, a power of two).
    #[arg(long, value_name = "N", default_value = "1024", value_parser = parse_tpdu_size)]
    tpdu_size: TpduSize,
    /// Source reference of the CR.
    #[arg(long, value_name = "N", default_value_t = 1)]
    src_ref: u16,
    /// After each message, wait for one reply and write it to stdout (raw bytes when
    /// stdout is not a terminal, a hex dump when it is).
    #[arg(long)]
    expect_reply: bool,
    /// Seconds to wait for the connection and for each reply.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Files to send, one message each; `-` reads stdin.
    #[arg(value_name = "FILE|-", required = true)]
    files: Vec<PathBuf>,
}

pub(crate) fn run(cmd: &CotpCommand) -> Result<()> {
    match cmd {
        CotpCommand::Listen(a) => listen(a),
        CotpCommand::Send(a) => send(a),
    }
}

fn parse_tpdu_size(text: &str) -> Result<TpduSize, String> {
    let bytes: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    TpduSize::ALL
        .into_iter()
        .find(|s| s.bytes() == bytes)
        .ok_or_else(|| format!("{bytes} is not one of 128, 256, 512, 1024, 2048, 4096, 8192"))
}

fn parse_tsap(flag: &str, hex: &str) -> Result<Tsap> {
    hex.parse()
        .with_context(|| format!("{flag} {hex:?}: not a TSAP in hex"))
}

fn listen(a: &ListenArgs) -> Result<()> {
    let opts = ListenOptions {
        max_tpdu_size: a.tpdu_size,
        local_tsap: a
            .tsap
            .as_deref()
            .map(|t| parse_tsap("--tsap", t))
            .transpose()?,
        max_message_size: a.max_message_size,
        inactivity_timeout: a.inactivity_timeout.map(Duration::from_secs),
        // Handlers wake up this often to notice a shutdown between messages.
        timeout: Some(Duration::from_millis(250)),
        ..ListenOptions::default()
    };
    let listener = Listener::bind(&a.bind, opts).with_context(|| format!("binding {}", a.bind))?;
    let local = listener.local_addr()?;
    eprintln!("listening for COTP on {local}");
    let arrivals = Arc::new(Arrivals::new("cotp", a.out_dir.clone(), a.count)?);
    let shutdown = Shutdown::install(move || wake(local))?;
    let listener = Arc::new(listener);
    let mut handlers: Vec<std::thread::JoinHandle<()>> = Vec::new();
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
        handlers.retain(|h| !h.is_finished());
        if handlers.len() >= a.max_connections {
            // Closing at once keeps the thread count bounded; the peer sees the TCP
            // close, which class 0 treats as release.
            log::warn!(
                "{peer}: refused, {} connections already open",
                handlers.len()
            );
            continue;
        }
        log::info!("COTP connection from {peer}");
        let (listener, arrivals, shutdown, echo) = (
            Arc::clone(&listener),
            Arc::clone(&arrivals),
            shutdown.clone(),
            a.echo,
        );
        handlers.push(std::thread::spawn(move || {
            // The handshake runs here, not on the accept loop, so a silent peer only
            // holds its own thread (until the handshake timeout).
            let result = listener
                .handshake(stream)
                .map_err(anyhow::Error::from)
                .and_then(|conn| serve(conn, peer, &arrivals, &shutdown, echo));
            if let Err(e) = result {
                log::warn!("{peer}: {e:#}");
            }
            if arrivals.done() {
                shutdown.trigger();
                wake(local);
            }
        }));
    }
    // Graceful: connections finish the message in progress, then close.
    for h in handlers {
        let _ = h.join();
    }
    eprintln!("received {} message(s)", arrivals.count());
    Ok(())
}

/// How long a stopping listener lets a message that is already arriving finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Unblocks `accept` by connecting to ourselves.
fn wake(local: SocketAddr) {
    let target = if local.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    };
    let _ = TcpStream::connect_timeout(&target, Duration::from_secs(1));
}

fn serve(
    mut conn: Connection,
    peer: SocketAddr,
    arrivals: &Arrivals,
    shutdown: &Shutdown,
    echo: bool,
) -> Result<()> {
    let peer_s = peer.to_string();
    loop {
        match conn.recv_data() {
            Ok(msg) => {
                let Some(seq) = arrivals.next_seq() else {
                    // --count reached elsewhere: this message is not ours to keep.
                    let _ = conn.close_with_reason(DisconnectReason::NORMAL);
                    return Ok(());
                };
                arrivals.record_bytes(seq, &peer_s, &msg)?;
                if echo {
                    conn.send_data(&msg)?;
                }
                if arrivals.done() {
                    conn.close()?;
                    return Ok(());
                }
            }
            Err(CotpError::Timeout(_)) => {
                let Some(since) = shutdown.requested_at() else {
                    continue;
                };
                // Graceful: a message already arriving may finish (bounded, so a peer
                // that stalls mid-message cannot hold the listener forever).
                if conn.is_receiving() && since.elapsed() < SHUTDOWN_GRACE {
                    continue;
                }
                conn.close()?;
                return Ok(());
            }
            Err(CotpError::Closed | CotpError::Disconnected { .. }) => return Ok(()),
            Err(e) => {
                log::warn!("{peer}: {e}");
                return Err(e.into());
            }
        }
    }
}

fn send(a: &SendArgs) -> Result<()> {
    // Every input is checked before connecting, so a typo in the third file does not
    // leave the first two delivered and the command failed.
    if a.files.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        anyhow::bail!("`-` (stdin) can be given only once");
    }
    let mut inputs = Vec::with_capacity(a.files.len());
    for path in &a.files {
        if path.as_os_str() == "-" {
            inputs.push(None);
            continue;
        }
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let meta = f
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(!meta.is_dir(), "{} is a directory", path.display());
        inputs.push(Some((f, meta.len())));
    }
    let opts = ConnectOptions::default()
        .src_ref(a.src_ref)
        .src_tsap_bytes(parse_tsap("--src-tsap", &a.src_tsap)?.as_bytes())?
        .dst_tsap_bytes(parse_tsap("--dst-tsap", &a.dst_tsap)?.as_bytes())?
        .max_tpdu_size(a.tpdu_size)
        .connect_timeout(Duration::from_secs(a.timeout))
        .timeout(Some(Duration::from_secs(a.timeout)))
        .max_message_size(64 << 20);
    let mut conn = Connection::connect(&a.to, opts).map_err(|e| explain(e, &a.to))?;
    log::info!(
        "connected to {} (TPDU size {}, {} bytes per DT)",
        a.to,
        conn.tpdu_size(),
        conn.core().max_dt_payload()
    );
    let mut stdout = std::io::stdout().lock();
    for path in &a.files {
        let (reader, len, name): (Box<dyn Read>, Option<u64>, String) = if path.as_os_str() == "-" {
            (Box::new(std::io::stdin().lock()), None, "stdin".into())
        } else {
            let f =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len, path.display().to_string())
        };
        let bar = progress::bar(len, &name);
        let sent = conn.send_from(bar.wrap_read(reader)).map_err(|e| match e {
            CotpError::Usage(_) => {
                anyhow::anyhow!("{name}: an empty message cannot be sent over COTP class 0")
            }
            e => explain(e, &a.to),
        })?;
        bar.finish();
        log::info!("sent {name}: {sent} bytes");
        if a.expect_reply {
            let reply = conn.recv_data().map_err(|e| explain(e, &a.to))?;
            if stdout.is_terminal() {
                stdout.write_all(hexdump(&reply).as_bytes())?;
            } else {
                stdout.write_all(&reply)?;
            }
            stdout.flush()?;
        }
    }
    conn.close().map_err(|e| explain(e, &a.to))?;
    Ok(())
}

/// Turns a COTP error into a sentence for a user.
fn explain(e: CotpError, to: &str) -> anyhow::Error {
    match e {
        CotpError::Refused { reason } => {
            anyhow::anyhow!("{to} refused the connection (DR reason: {reason})")
        }
        CotpError::Disconnected { reason } => {
            anyhow::anyhow!("{to} disconnected (DR reason: {reason})")
        }
        CotpError::PeerError { cause } => {
            anyhow::anyhow!("{to} rejected a TPDU (ER cause: {cause})")
        }
        CotpError::Timeout(what) => anyhow::anyhow!("timed out talking to {to} ({what})"),
        CotpError::Protocol(e) => anyhow::anyhow!("{to} violated the protocol: {e}"),
        CotpError::Io(io) => anyhow::Error::new(io).context(format!("talking to {to}")),
        e => anyhow::anyhow!("{to}: {e}"),
    }
}

/// A classic hex dump: offset, 16 bytes in hex, printable ASCII.
pub(crate) fn hexdump(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, row) in data.chunks(16).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = row
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(
            "{:08x}  {:<47}  |{ascii}|\n",
            i * 16,
            hex.join(" ")
        ));
    }
    if data.is_empty() {
        out.push_str("(empty)\n");
    }
    out
}
