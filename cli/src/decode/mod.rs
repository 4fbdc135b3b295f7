//! `proto decode`: turns captured bytes into a readable tree or JSON, one frame after
//! another, with byte offsets. Decoding stops at the first bad frame; the frames
//! before it are still printed and the error names the offset and the field.

mod bpv7;
mod cotp;
mod s7;
mod tcpcl;
mod tcpcl3;
mod tree;

pub(crate) use bpv7::dtn_time_text;
pub(crate) use tree::hex;

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::PathBuf;
use tree::Node;

/// Which protocol the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Protocol {
    /// TPKT frames carrying COTP TPDUs (RFC 1006 / X.224).
    Cotp,
    /// A TCPCL byte stream: contact header and/or TCPCLv4 messages (RFC 9174).
    Tcpcl,
    /// One BPv7 bundle (RFC 9171): primary block, canonical blocks, payload.
    Bpv7,
}

/// Arguments of `proto decode`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto decode cotp 0300001611e00000000100c0010ac1020000c2020001\n  \
    proto decode tcpcl '64746e21 0400' --json\n  \
    proto decode tcpcl --file capture.bin\n  \
    proto decode bpv7 --file bundle.bin --json\n  \
    xxd -p capture.bin | proto decode cotp -\n  \
    tshark -r cap.pcapng -Y 'tcp.srcport==102 && tcp.len>0' -T fields -e tcp.payload | proto decode cotp -")]
pub(crate) struct DecodeArgs {
    /// Protocol of the input.
    #[arg(value_enum)]
    protocol: Protocol,
    /// The bytes as hex; several arguments are joined (spaces, colons, dashes and 0x
    /// prefixes are ignored). `-` reads the hex from standard input.
    #[arg(
        required_unless_present = "file",
        conflicts_with = "file",
        value_name = "HEX"
    )]
    hex: Vec<String>,
    /// Read raw bytes from this file instead (`-` for standard input). A pcap or
    /// pcapng capture is recognised and refused, with the tshark command that
    /// extracts the bytes.
    #[arg(short, long, value_name = "F")]
    file: Option<PathBuf>,
    /// Print one JSON object per frame (JSON lines) instead of a tree.
    #[arg(long)]
    json: bool,
}

/// One decoded frame.
pub(crate) struct Frame {
    /// Offset of the frame in the input.
    pub(crate) offset: usize,
    /// Length of the frame.
    pub(crate) len: usize,
    /// Description of the frame.
    pub(crate) tree: Node,
}

/// Where and why decoding stopped.
pub(crate) struct DecodeFailure {
    /// Offset in the input of the offending field.
    pub(crate) offset: usize,
    /// What is wrong.
    pub(crate) message: String,
}

/// Runs `proto decode`; returns whether the whole input decoded.
pub(crate) fn run(args: &DecodeArgs) -> Result<bool> {
    let input = match (args.hex.is_empty(), &args.file) {
        (false, _) if args.hex.iter().any(|h| h == "-") => {
            if args.hex.len() > 1 {
                bail!("`-` (hex from standard input) cannot be combined with HEX arguments");
            }
            let text = read_stdin()?;
            let text = String::from_utf8(text)
                .context("standard input is not hex text (for raw bytes, use --file -)")?;
            parse_hex(&text)?
        }
        (false, _) => parse_hex(&args.hex.join(" "))?,
        (true, Some(p)) => {
            let (bytes, name) = if p.as_os_str() == "-" {
                (read_stdin()?, "standard input".to_owned())
            } else {
                let b = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                (b, p.display().to_string())
            };
            if let Some(kind) = capture_kind(&bytes) {
                bail!("{}", capture_hint(&name, kind, args.protocol));
            }
            bytes
        }
        (true, None) => bail!("give the bytes as HEX or with --file"),
    };
    if input.is_empty() {
        bail!("no input bytes");
    }
    let (frames, failure) = match args.protocol {
        Protocol::Cotp => cotp::decode_stream(&input),
        Protocol::Tcpcl => tcpcl::decode_stream(&input),
        Protocol::Bpv7 => bpv7::decode_stream(&input),
    };
    let mut out = String::new();
    for (i, f) in frames.iter().enumerate() {
        if args.json {
            let mut v = f.tree.to_json();
            if let Some(m) = v.as_object_mut() {
                m.insert("index".into(), i.into());
                m.insert("offset".into(), f.offset.into());
                m.insert("length".into(), f.len.into());
                m.insert(
                    "protocol".into(),
                    match args.protocol {
                        Protocol::Cotp => "cotp",
                        Protocol::Tcpcl => "tcpcl",
                        Protocol::Bpv7 => "bpv7",
                    }
                    .into(),
                );
            }
            out.push_str(&v.to_string());
            out.push('\n');
        } else {
            f.tree.render_text(&mut out, 0);
        }
    }
    print!("{out}");
    match failure {
        None => Ok(true),
        Some(f) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"error": f.message, "offset": f.offset})
                );
            }
            eprintln!("error: at offset {}: {}", f.offset, f.message);
            Ok(false)
        }
    }
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut v = vec![];
    std::io::stdin()
        .read_to_end(&mut v)
        .context("reading standard input")?;
    Ok(v)
}

/// A packet capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    Pcap,
    PcapNg,
}

/// Recognises a capture file by its magic number: pcap's in either byte order, with
/// micro- or nanosecond timestamps, and pcapng's section header block.
fn capture_kind(bytes: &[u8]) -> Option<Capture> {
    match bytes.get(..4)? {
        [0xa1, 0xb2, 0xc3, 0xd4]
        | [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x4d, 0x3c, 0xb2, 0xa1] => Some(Capture::Pcap),
        [0x0a, 0x0d, 0x0d, 0x0a] => Some(Capture::PcapNg),
        _ => None,
    }
}

/// Why a capture is refused and how to get at its bytes with tshark.
fn capture_hint(name: &str, kind: Capture, protocol: Protocol) -> String {
    let format = match kind {
        Capture::Pcap => "pcap",
        Capture::PcapNg => "pcapng",
    };
    let (cmd, dissector, port) = match protocol {
        Protocol::Cotp => ("cotp", "tpkt", 102),
        Protocol::Tcpcl => ("tcpcl", "tcpcl", 4556),
        Protocol::Bpv7 => {
            // Bundles travel inside TCPCL transfers: the TCP payload is not a bundle.
            return format!(
                "{name} is a {format} capture, not a raw bundle; proto decode does not read \
                 captures. Let tshark dissect the bundles inside TCPCL (decode-as names the \
                 port if it is not 4556): `tshark -r FILE -d tcp.port==4556,tcpcl -V`, or \
                 store received bundles with `proto tcpcl listen --out-dir DIR` and give one \
                 to `--file`"
            );
        }
    };
    format!(
        "{name} is a {format} capture, not raw {cmd} bytes; proto decode does not read \
         captures. Let tshark dissect it (decode-as names the port if it is not {port}): \
         `tshark -r FILE -d tcp.port=={port},{dissector} -V`, or feed one direction's TCP \
         payload here as hex: `tshark -r FILE -Y 'tcp.srcport=={port} && tcp.len>0' -T \
         fields -e tcp.payload | proto decode {cmd} -`"
    )
}

/// Parses hex digits, ignoring white space, colons, dashes and `0x` prefixes.
fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let cleaned: String = text
        .split(|c: char| c.is_whitespace() || c == ':' || c == '-')
        .map(|w| {
            w.strip_prefix("0x")
                .or_else(|| w.strip_prefix("0X"))
                .unwrap_or(w)
        })
        .collect();
    if let Some((i, c)) = cleaned.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        bail!("not a hex digit: {c:?} at position {i} of the hex input");
    }
    if !cleaned.len().is_multiple_of(2) {
        bail!("odd number of hex digits ({})", cleaned.len());
    }
    Ok((0..cleaned.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&cleaned[i..i + 2], 16).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_are_recognised_by_magic() {
        let table: &[(&[u8], Option<Capture>)] = &[
            (&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0], Some(Capture::Pcap)),
            (&[0xa1, 0xb2, 0xc3, 0xd4], Some(Capture::Pcap)),
            (&[0x4d, 0x3c, 0xb2, 0xa1], Some(Capture::Pcap)),
            (&[0xa1, 0xb2, 0x3c, 0x4d], Some(Capture::Pcap)),
            (&[0x0a, 0x0d, 0x0d, 0x0a, 0x1c], Some(Capture::PcapNg)),
            (&[0x03, 0x00, 0x00, 0x07], None), // TPKT
            (b"dtn!", None),
            (&[0x0a, 0x0d, 0x0d], None), // one byte short
            (&[], None),
        ];
        for (bytes, want) in table {
            assert_eq!(capture_kind(bytes), *want, "{bytes:02x?}");
        }
        let hint = capture_hint("x.pcapng", Capture::PcapNg, Protocol::Cotp);
        assert!(hint.contains("-d tcp.port==102,tpkt"), "{hint}");
        let hint = capture_hint("x.pcap", Capture::Pcap, Protocol::Tcpcl);
        assert!(hint.contains("tcp.port==4556,tcpcl"), "{hint}");
    }

    #[test]
    fn hex_input_forms() {
        assert_eq!(parse_hex("0x0300 00:07").unwrap(), vec![3, 0, 0, 7]);
        assert_eq!(parse_hex("64-74").unwrap(), vec![0x64, 0x74]);
        assert!(parse_hex("030").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
