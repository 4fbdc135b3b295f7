//! `proto cotp listen` and `proto cotp send`: COTP class 0 over TPKT (RFC 1006 /
//! X.224) from the command line.
//!
//! Both sides take their limits as flags with K/M/G suffixes (`listen
//! --max-message-size`, `send --max-reply-size`); a message over the receiver's
//! limit is refused with a DR ("congestion at TSAP") whose reason reaches the sender.
//! Addresses default to port 102.

mod listen;
mod report;
mod send;

use anyhow::{Context, Result};
use proto_core::cotp::{TpduSize, Tsap};

pub(crate) use listen::ListenArgs;
pub(crate) use send::SendArgs;

/// COTP over TPKT (RFC 1006 / X.224 class 0).
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CotpCommand {
    /// Accept COTP connections; print, store or echo every message.
    Listen(ListenArgs),
    /// Connect and send files (or stdin) as messages.
    Send(SendArgs),
}

pub(crate) fn run(cmd: &CotpCommand) -> Result<()> {
    match cmd {
        CotpCommand::Listen(a) => listen::run(a),
        CotpCommand::Send(a) => send::run(a),
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
