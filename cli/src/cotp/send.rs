//! `proto cotp send`: each file (or stdin) as one message over one connection;
//! exit 0 only when the peer took every message and released the connection
//! normally. Each message sent gets a summary (size and SHA-256, to compare with the
//! listener's line) or with `--json` one JSON object; the TSAPs come from the flags or
//! from an S7 rack/slot address.

use super::report::Report;
use super::{hexdump, parse_tpdu_size, parse_tsap};
use crate::addr::with_default_port;
use crate::decode::hex;
use crate::progress;
use crate::units::{human, parse_limit};
use anyhow::{Context, Result};
use proto_core::cotp::connection::ProtocolError;
use proto_core::cotp::{DisconnectReason, TpduSize, Tsap};
use proto_core::s7::{ConnectionType, S7Address};
use proto_net::cotp::{ConnectOptions, Connection, Error as CotpError, Received, DEFAULT_PORT};
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// `proto cotp send`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto cotp send --to 127.0.0.1:1102 message.bin\n  \
    echo -n 'ping' | proto cotp send --to plc --src-tsap 0100 --dst-tsap 0102 --expect-reply - > reply.bin\n  \
    proto cotp send -t 192.0.2.10 --rack 0 --slot 2 --connection-type op --expect-reply setup.bin\n  \
    proto cotp send -t 127.0.0.1:1102 --json a.bin b.bin\n\n\
    Each message sent prints one line (on stderr when stdout carries --expect-reply's\n\
    raw reply bytes):\n  \
    sent NAME SIZE bytes sha256=HEX")]
pub(crate) struct SendArgs {
    /// Peer address (`HOST[:PORT]`; the port defaults to 102, the RFC 1006 port).
    #[arg(short, long, value_name = "ADDR")]
    to: String,
    /// Calling TSAP (hex) [default: 0100].
    #[arg(long, value_name = "HEX")]
    src_tsap: Option<String>,
    /// Called TSAP (hex) [default: 0102].
    #[arg(long, value_name = "HEX")]
    dst_tsap: Option<String>,
    /// S7 addressing: the PLC's rack (0-7). With --slot, sets the TSAPs as S7 tools
    /// do: calling 0100, called = connection type, then rack × 32 + slot.
    #[arg(long, value_name = "R", value_parser = parse_rack, requires = "slot",
          conflicts_with_all = ["src_tsap", "dst_tsap"])]
    rack: Option<u32>,
    /// S7 addressing: the CPU's slot (0-31); needs --rack.
    #[arg(long, value_name = "S", value_parser = parse_slot, requires = "rack")]
    slot: Option<u32>,
    /// S7 addressing: the connection type in the called TSAP's high byte (PG 1, OP 2,
    /// basic 3).
    #[arg(long, value_name = "TYPE", value_enum, default_value_t = ConnType::Pg, requires = "rack")]
    connection_type: ConnType,
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
    /// Print one JSON object per message (JSON lines): file, size, sha256, result,
    /// src_tsap, dst_tsap (and the reply, hex, with --expect-reply) instead of the
    /// summary line.
    #[arg(long)]
    json: bool,
    /// Files to send, one message each; `-` reads stdin.
    #[arg(value_name = "FILE|-", required_unless_present = "expedited")]
    files: Vec<PathBuf>,
}

/// `--connection-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ConnType {
    /// Programming device (1).
    Pg,
    /// Operator panel / HMI (2).
    Op,
    /// S7 basic communication (3).
    Basic,
}

impl From<ConnType> for ConnectionType {
    fn from(c: ConnType) -> Self {
        match c {
            ConnType::Pg => ConnectionType::Pg,
            ConnType::Op => ConnectionType::Op,
            ConnType::Basic => ConnectionType::Basic,
        }
    }
}

fn parse_number(text: &str) -> Result<u32, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

/// `--rack`, range-checked by the S7 address rules.
fn parse_rack(text: &str) -> Result<u32, String> {
    let n = parse_number(text)?;
    S7Address::new(n, 0, ConnectionType::Pg)
        .map(|_| n)
        .map_err(|e| e.to_string())
}

/// `--slot`, range-checked by the S7 address rules.
fn parse_slot(text: &str) -> Result<u32, String> {
    let n = parse_number(text)?;
    S7Address::new(0, n, ConnectionType::Pg)
        .map(|_| n)
        .map_err(|e| e.to_string())
}

/// The calling and called TSAPs: from --rack/--slot, else the TSAP flags or their
/// defaults.
fn tsaps(a: &SendArgs) -> Result<(Tsap, Tsap)> {
    if let (Some(rack), Some(slot)) = (a.rack, a.slot) {
        let addr = S7Address::new(rack, slot, a.connection_type.into())?;
        log::info!(
            "rack {rack}, slot {slot}, {} connection: calling TSAP {}, called TSAP {}",
            addr.connection_type().name().to_uppercase(),
            addr.local_tsap(),
            addr.remote_tsap()
        );
        return Ok((addr.local_tsap(), addr.remote_tsap()));
    }
    Ok((
        parse_tsap("--src-tsap", a.src_tsap.as_deref().unwrap_or("0100"))?,
        parse_tsap("--dst-tsap", a.dst_tsap.as_deref().unwrap_or("0102"))?,
    ))
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    len: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
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
    let (src_tsap, dst_tsap) = tsaps(a)?;
    let opts = ConnectOptions::default()
        .src_ref(a.src_ref)
        .src_tsap_bytes(src_tsap.as_bytes())?
        .dst_tsap_bytes(dst_tsap.as_bytes())?
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
    let common = serde_json::json!({
        "protocol": "cotp",
        "src_tsap": src_tsap.to_string(),
        "dst_tsap": dst_tsap.to_string(),
    });
    let mut report = Report::new(a.json, a.expect_reply && !a.json, common);
    let outcome = send_all(a, &mut conn, &to, &mut report)
        .and_then(|()| conn.close().map_err(|e| explain(e, &to)));
    let printed = report.finish(outcome.as_ref().err());
    // The transfer's own error matters more than one printing its records.
    outcome?;
    printed
}

/// Sends every file (and reads the replies), recording each message in `report`.
fn send_all(a: &SendArgs, conn: &mut Connection, to: &str, report: &mut Report) -> Result<()> {
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
        let mut hashing = Hashing {
            inner: bar.wrap_read(reader),
            hash: Sha256::new(),
            len: 0,
        };
        let sent = match conn.send_from(&mut hashing) {
            Ok(n) => n,
            Err(e) => {
                bar.abandon();
                report.unsent(&name, hashing.len);
                return Err(match e {
                    CotpError::Usage(_) => {
                        anyhow::anyhow!("{name}: an empty message cannot be sent over COTP class 0")
                    }
                    e => explain(e, to),
                });
            }
        };
        bar.finish();
        log::info!("sent {name}: {sent} bytes");
        report.sent(&name, sent, &hex(hashing.hash.finalize().as_slice()));
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
                    e => explain(e, to),
                })? {
                    Received::Message(m) => break m,
                    Received::Expedited(e) => {
                        let hex: String = e.iter().map(|b| format!("{b:02x}")).collect();
                        log::info!("expedited data from {to}: {hex}");
                    }
                }
            };
            if a.json {
                report.reply(&reply);
            } else if stdout.is_terminal() {
                stdout.write_all(hexdump(&reply).as_bytes())?;
            } else {
                stdout.write_all(&reply)?;
            }
            stdout.flush()?;
        }
    }
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
