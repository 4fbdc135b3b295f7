//! `proto cotp send`: each file (or stdin) as one message over one connection;
//! exit 0 only when the peer took every message and released the connection
//! normally.

use super::{hexdump, parse_tpdu_size, parse_tsap};
use crate::addr::with_default_port;
use crate::progress;
use crate::units::{human, parse_limit};
use anyhow::{Context, Result};
use proto_core::cotp::connection::ProtocolError;
use proto_core::cotp::{DisconnectReason, TpduSize};
use proto_net::cotp::{ConnectOptions, Connection, Error as CotpError, Received, DEFAULT_PORT};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// `proto cotp send`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto cotp send --to 127.0.0.1:1102 message.bin\n  \
    echo -n 'ping' | proto cotp send --to plc --src-tsap 0100 --dst-tsap 0102 --expect-reply - > reply.bin")]
pub(crate) struct SendArgs {
    /// Peer address (`HOST[:PORT]`; the port defaults to 102, the RFC 1006 port).
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
    /// With --expect-reply: largest reply accepted (bytes, or with a K/M/G suffix). A
    /// bigger one is refused with DR "congestion at TSAP".
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_limit)]
    max_reply_size: usize,
    /// Seconds to wait for the connection and for each reply.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Expedited data (hex, 1 to 16 bytes) to send as one RFC 1006 ED, before the
    /// files; repeatable. The CR proposes the option; if the peer's CC does not select
    /// it, nothing is sent and the command fails.
    #[arg(long, value_name = "HEX", value_parser = parse_expedited)]
    expedited: Vec<Vec<u8>>,
    /// Files to send, one message each; `-` reads stdin.
    #[arg(value_name = "FILE|-", required_unless_present = "expedited")]
    files: Vec<PathBuf>,
}

pub(super) fn run(a: &SendArgs) -> Result<()> {
    // Every input is checked before connecting, so a typo in the third file does not
    // leave the first two delivered and the command failed.
    if a.files.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        anyhow::bail!("`-` (stdin) can be given only once");
    }
    for path in a.files.iter().filter(|p| p.as_os_str() != "-") {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let meta = f
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(!meta.is_dir(), "{} is a directory", path.display());
    }
    let to = with_default_port(&a.to, DEFAULT_PORT);
    let opts = ConnectOptions::default()
        .src_ref(a.src_ref)
        .src_tsap_bytes(parse_tsap("--src-tsap", &a.src_tsap)?.as_bytes())?
        .dst_tsap_bytes(parse_tsap("--dst-tsap", &a.dst_tsap)?.as_bytes())?
        .max_tpdu_size(a.tpdu_size)
        .connect_timeout(Duration::from_secs(a.timeout))
        .timeout(Some(Duration::from_secs(a.timeout)))
        .max_message_size(a.max_reply_size)
        .expedited(!a.expedited.is_empty());
    let mut conn = Connection::connect(to.as_str(), opts).map_err(|e| explain(e, &to))?;
    if !a.expedited.is_empty() {
        if !conn.expedited_selected() {
            let _ = conn.close();
            anyhow::bail!(
                "{to} did not select expedited data in its CC (the RFC 1006 option);                  nothing was sent"
            );
        }
        for data in &a.expedited {
            conn.send_expedited(data).map_err(|e| explain(e, &to))?;
            log::info!("sent expedited data: {} bytes", data.len());
        }
    }
    log::info!(
        "connected to {to} (TPDU size {}, {} bytes per DT)",
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
            e => explain(e, &to),
        })?;
        bar.finish();
        log::info!("sent {name}: {sent} bytes");
        if a.expect_reply {
            // Expedited data the peer sends meanwhile (an echoing listener returns ours)
            // is logged, not taken for the reply.
            let reply = loop {
                match conn.recv().map_err(|e| match e {
                    CotpError::Protocol(ProtocolError::MessageTooLarge { limit }) => {
                        anyhow::anyhow!(
                            "the reply from {to} to {name} is larger than the {} limit for \
                             replies (--max-reply-size raises it)",
                            human(limit as u64)
                        )
                    }
                    e => explain(e, &to),
                })? {
                    Received::Message(m) => break m,
                    Received::Expedited(e) => {
                        let hex: String = e.iter().map(|b| format!("{b:02x}")).collect();
                        log::info!("expedited data from {to}: {hex}");
                    }
                }
            };
            if stdout.is_terminal() {
                stdout.write_all(hexdump(&reply).as_bytes())?;
            } else {
                stdout.write_all(&reply)?;
            }
            stdout.flush()?;
        }
    }
    conn.close().map_err(|e| explain(e, &to))?;
    Ok(())
}

/// Turns a COTP error into a sentence for a user.
/// `--expedited`: hex, 1 to 16 bytes (X.224's limit for an ED, kept by RFC 1006).
fn parse_expedited(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{s:?} is not hex (two digits per byte)"));
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect();
    match bytes.len() {
        1..=16 => Ok(bytes),
        n => Err(format!("expedited data is 1 to 16 bytes, not {n}")),
    }
}

fn explain(e: CotpError, to: &str) -> anyhow::Error {
    match e {
        CotpError::Refused { reason } => {
            anyhow::anyhow!("{to} refused the connection (DR reason: {reason})")
        }
        CotpError::Disconnected {
            reason: reason @ DisconnectReason::CONGESTION_AT_TSAP,
        } => anyhow::anyhow!(
            "{to} disconnected (DR reason: {reason}): a receiver answers this way a message \
             larger than its limit (`proto cotp listen --max-message-size` raises it)"
        ),
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
