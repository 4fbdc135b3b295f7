//! Runs tshark over synthesised captures and exposes what it decoded.
//!
//! - [`peer_available`] / [`tshark`] find an external program under the policy of
//!   [`crate::skip`]: the calling test must be marked `#[ignore = "needs tshark"]`; a
//!   missing program prints `skipping: <name> not found` to stderr and yields `None`,
//!   unless `PROTO_REQUIRE_PEERS=1`, in which case it panics so CI cannot silently skip.
//! - [`Tshark::dissect`] runs `tshark -T json` on a pcap with [`DissectOptions`]
//!   (decode-as, two-pass, preferences) and parses the result into a [`TsharkReport`]:
//!   one [`Packet`] per frame with every field value flattened, plus the expert items.
//! - [`check_cotp`] / [`check_tcpcl`] are the one-call forms: a list of
//!   `(direction, TCP payload)` goes in, a report comes out (or `None` when skipping).
//! - [`check_conversations`] puts several such lists into one capture, each its own TCP
//!   stream (client ports 49152, 49153, ...), for one tshark run; its
//!   [`ConversationsReport::packet`] finds the frame showing a given payload, also when
//!   the payload spans several TCP segments.
//!
//! Set `PROTO_KEEP_PCAPS=1` to keep the temporary captures for inspection in Wireshark
//! (their paths are printed to stderr); `PROTO_TSHARK=/path/to/tshark` overrides the
//! `PATH` lookup.
//!
//! # Field names (tshark 4.0)
//!
//! Values are as tshark prints them in JSON: integers in the field's display base
//! (`BASE_HEX` fields as `0x..` zero-padded to the field width), booleans as `0`/`1`,
//! byte fields as colon-separated hex.
//!
//! ## TPKT and COTP
//!
//! | Field | Meaning | Example |
//! |---|---|---|
//! | `tpkt.version` | TPKT version | `3` |
//! | `tpkt.length` | TPKT length (header included) | `22` |
//! | `tpkt.continuation_data` | bytes tshark could not frame as TPKT | — |
//! | `cotp.li` | length indicator | `17` |
//! | `cotp.type` | TPDU code **shifted right by 4**: CR `0x0e`, CC `0x0d`, DR `0x08`, DC `0x0c`, DT `0x0f`, ED `0x01`, AK `0x06`, EA `0x02`, RJ `0x05`, ER `0x07` | `0x0e` |
//! | `cotp.destref` | DST-REF | `0x0001` |
//! | `cotp.srcref` | SRC-REF (CR, CC, DR, DC) | `0x0001` |
//! | `cotp.class` | class (CR, CC) | `0` |
//! | `cotp.opts.extended_formats`, `cotp.opts.no_explicit_flow_control` | option bits of the class octet | `0` |
//! | `cotp.parameter_code` / `cotp.parameter_length` | every variable-part parameter, in order | `0xc0` |
//! | `cotp.tpdu_size` | TPDU size parameter (`0xc0`) **decoded to bytes** | `1024` |
//! | `cotp.preferred_maximum_tpdu_size` | parameter `0xf0` | — |
//! | `cotp.src-tsap`, `cotp.dst-tsap` | calling (`0xc1`) / called (`0xc2`) TSAP, as a string if printable else `0x..` | `0x0001`, `"SIMATIC-ROOT-ES"` |
//! | `cotp.src-tsap-bytes`, `cotp.dst-tsap-bytes` | the same as bytes | `00:01` |
//! | `cotp.vp_version_nr` | version number parameter (`0xc4`) | — |
//! | `cotp.checksum` | checksum parameter (`0xc3`); tshark 4.0 flags every non-zero one as `cotp.bad_checksum` (it sums only the first 2 octets of the TPDU) | `0x4f68` |
//! | `cotp.tpdu-number` | DT TPDU-NR (class 0: always `0x00`) | `0x00` |
//! | `cotp.eot` | DT EOT bit | `1` |
//! | `cotp.cause` | DR reason | `0` |
//! | `cotp.reject_cause` | ER reject cause | — |
//! | `cotp.next-tpdu-number`, `cotp.credit` | AK / EA / RJ fields (not class 0); credit decimal in normal format, `0x....` in extended | `0x12`, `7` |
//! | `cotp.parameter_value` | value of a parameter tshark has no field for (E0, unknown codes) | `67:6f:6e:65` |
//! | `cotp.segment_data`, `cotp.reassembled_in` | DT reassembly (EOT = 0 segments) | — |
//! | `data.data` / `data.len` | user data (DT payload, DR user data) when no subdissector claims it | `68:65:6c:6c:6f` |
//!
//! COTP expert items (group Sequence): `cotp.disconnect_request` on DR,
//! `cotp.disconnect_confirm` on DC, `cotp.connection` (chat), `cotp.reject` on RJ
//! (note). Warnings and errors: `cotp.multiple_tpdus`, `cotp.bad_checksum`,
//! `cotp.preferred_maximum_tpdu_size.invalid`.
//!
//! ## TCPCL
//!
//! | Field | Meaning | Example |
//! |---|---|---|
//! | `tcpcl.contact_hdr.magic` | `dtn!` | `64:74:6e:21` |
//! | `tcpcl.contact_hdr.version` | contact header version (3 or 4) | `4` |
//! | `tcpcl.v4.chdr.flags` / `tcpcl.v4.chdr.flags.can_tls` | v4 contact flags | `0x00` / `0` |
//! | `tcpcl.v4.negotiated.use_tls` | both sides set CAN_TLS | `0` |
//! | `tcpcl.contact_hdr.related` | frame of the peer's contact header | `5` |
//! | `tcpcl.v4.mhdr.type` | message type: XFER_SEGMENT `0x01`, XFER_ACK `0x02`, XFER_REFUSE `0x03`, KEEPALIVE `0x04`, SESS_TERM `0x05`, MSG_REJECT `0x06`, SESS_INIT `0x07` | `0x07` |
//! | `tcpcl.v4.sess_init.keepalive` | SESS_INIT keepalive interval | `10` |
//! | `tcpcl.v4.sess_init.seg_mru` | segment MRU | `10485760` |
//! | `tcpcl.v4.sess_init.xfer_mru` | transfer MRU | `18446744073709551615` |
//! | `tcpcl.v4.sess_init.nodeid_len` / `tcpcl.v4.sess_init.nodeid_data` | node ID | `13` / `dtn://client/` |
//! | `tcpcl.v4.sess_init.extlist_len` | session extension items length | `0` |
//! | `tcpcl.v4.negotiated.keepalive` | min of both keepalives (two-pass) | `10` |
//! | `tcpcl.v4.sessext.flags` / `.flags.critical` / `.type` / `.len` | session extension items | — |
//! | `tcpcl.v4.xfer_flags` / `tcpcl.v4.xfer_flags.start` / `tcpcl.v4.xfer_flags.end` | XFER_SEGMENT and XFER_ACK flags | `0x03` / `1` / `1` |
//! | `tcpcl.v4.xfer_id` | transfer ID (SEGMENT, ACK, REFUSE) | `0x0000000000000001` |
//! | `tcpcl.v4.xfer_segment.extlist_len` | transfer extension items length (START only) | `0` |
//! | `tcpcl.v4.xferext.flags` / `.type` / `.len`, `tcpcl.v4.xferext.transfer_length.total_len` | transfer extension items | — |
//! | `tcpcl.v4.xfer_segment.data_len` / `tcpcl.v4.xfer_segment.data` | segment length / data | `5` |
//! | `tcpcl.v4.xfer_segment.seen_len` | bytes of the transfer so far | `5` |
//! | `tcpcl.v4.xfer_ack.ack_len` | XFER_ACK acknowledged length | `5` |
//! | `tcpcl.v4.xfer_refuse.reason` | XFER_REFUSE reason code | — |
//! | `tcpcl.v4.sess_term.flags` / `tcpcl.v4.sess_term.flags.reply` | SESS_TERM flags | `0x01` / `1` |
//! | `tcpcl.v4.ses_term.reason` | SESS_TERM reason (note the `ses_term` spelling) | `0` |
//! | `tcpcl.v4.msg_reject.reason` / `tcpcl.v4.msg_reject.head` | MSG_REJECT reason / rejected message header | — |
//! | `tcpcl.pkt_type`, `tcpcl.contact_hdr.keep_alive`, `tcpcl.contact_hdr.local_eid` | TCPCLv3 fields | — |
//!
//! The `*.related*` and `tcpcl.v4.negotiated.*` fields are only filled in on a
//! two-pass run (`-2`); single-pass runs also raise a spurious note
//! `tcpcl.v4.xfer_seg_no_relation` ("XFER_SEGMENT has no related XFER_ACK") on every
//! segment, because the ACK comes later. [`DissectOptions::tcpcl`] therefore enables
//! two-pass mode.
//!
//! Expert items worth knowing: `tcpcl.v4.sess_init_missing`,
//! `tcpcl.v4.sess_init_duplicate`, `tcpcl.v4.sess_term_duplicate`,
//! `tcpcl.v4.sess_term_reply_flag`, `tcpcl.v4.xfer_seg_over_seg_mru`,
//! `tcpcl.v4.xfer_seg_missing_start`, `tcpcl.v4.xfer_seg_duplicate_start`,
//! `tcpcl.v4.xfer_seg_missing_end`, `tcpcl.v4.xfer_seg_duplicate_end`,
//! `tcpcl.v4.xfer_seg_no_relation`, `tcpcl.v4.xfer_refuse_no_transfer`,
//! `tcpcl.v4.xferload_over_xfer_mru`, `tcpcl.xfer_ack_mismatch_flags`,
//! `tcpcl.xfer_ack_no_relation`, `tcpcl.v4.unknown_message_type`,
//! `tcpcl.v4.extitem_critical`, `tcpcl.invalid_contact_magic`,
//! `tcpcl.invalid_contact_version`, `tcpcl.mismatch_contact_version`.
//!
//! Malformed frames carry a top-level `_ws.malformed` layer (expert field
//! `_ws.malformed.expert`, error level); see [`Packet::is_malformed`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

use crate::pcap::{frame_offsets, Dir, FrameInfo, PcapBuilder};
use crate::skip::{assert_marked_ignored, skip_peer};

/// Environment variable that keeps temporary captures instead of deleting them.
pub const KEEP_PCAPS_ENV: &str = "PROTO_KEEP_PCAPS";
/// Environment variable naming the tshark binary to use instead of the `PATH` lookup.
pub const TSHARK_ENV: &str = "PROTO_TSHARK";

/// Default server port of COTP captures (ISO-TSAP, RFC 1006).
pub const COTP_PORT: u16 = 102;
/// Default server port of TCPCL captures (RFC 9174).
pub const TCPCL_PORT: u16 = 4556;
/// Client port used by [`check_cotp`] and [`check_tcpcl`].
pub const CLIENT_PORT: u16 = 49_152;

/// Dissectors that claim COTP user data heuristically (T.125, ISO session, S7comm,
/// MMS, H1, SMB, ATN, RDP). [`DissectOptions::cotp`] disables them so DT payload shows
/// as plain `data` and arbitrary test bytes are not reported as malformed.
pub const COTP_PAYLOAD_PROTOCOLS: &[&str] = &[
    "t125", "ses", "s7comm", "mms", "h1", "smb", "atn-ulcs", "rdp",
];

/// Expert fields that are expected in any synthesised capture and carry no verdict on
/// the payload: TCP handshake chats and COTP's per-TPDU chat items.
pub const BENIGN_EXPERT_FIELDS: &[&str] = &[
    "tcp.connection.syn",
    "tcp.connection.synack",
    "tcp.connection.fin",
    "tcp.connection.fin_active",
    "tcp.connection.fin_passive",
    "cotp.connection",
    "cotp.disconnect_request",
    "cotp.disconnect_confirm",
];

/// Looks `name` up on `PATH` (no skip policy).
///
/// A `name` containing a path separator is checked as given.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let is_exe = |p: &Path| p.is_file();
    if name.contains(std::path::MAIN_SEPARATOR) {
        let p = PathBuf::from(name);
        return is_exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_exe(p))
}

/// Finds an external peer program, applying the skip policy.
///
/// Returns its path, or `None` after printing `skipping: <name> not found` to stderr.
///
/// # Panics
///
/// Deliberately, when the program is missing and `PROTO_REQUIRE_PEERS=1` is set, or
/// when the calling test is not marked `#[ignore = "needs <name>"]` (see
/// [`assert_marked_ignored`]).
pub fn peer_available(name: &str) -> Option<PathBuf> {
    assert_marked_ignored(name);
    resolve_peer(name, find_program(name))
}

fn resolve_peer(name: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_none() {
        skip_peer(name, "not found on PATH");
    }
    found
}

/// Finds tshark (honouring `PROTO_TSHARK`), applying the [`peer_available`] skip policy.
///
/// # Panics
///
/// As [`peer_available`].
pub fn tshark() -> Option<Tshark> {
    assert_marked_ignored("tshark");
    let found = match std::env::var_os(TSHARK_ENV) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => find_program("tshark"),
    };
    resolve_peer("tshark", found).map(Tshark::at)
}

/// How tshark should dissect a capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DissectOptions {
    /// `-d` arguments, e.g. `tcp.port==102,tpkt`.
    pub decode_as: Vec<String>,
    /// Run with `-2` (two-pass analysis: fills in "related frame" fields).
    pub two_pass: bool,
    /// `-o` preferences, e.g. `tcpcl.analyze_sequence:TRUE`.
    pub prefs: Vec<String>,
    /// Protocols passed to `--disable-protocol`.
    pub disabled_protocols: Vec<String>,
    /// Any further arguments, appended last.
    pub extra_args: Vec<String>,
}

impl DissectOptions {
    /// Options shared by both profiles: IP and TCP checksum validation on, so a broken
    /// capture shows up as an error-level expert item.
    fn base() -> Self {
        DissectOptions {
            prefs: vec![
                "ip.check_checksum:TRUE".into(),
                "tcp.check_checksum:TRUE".into(),
            ],
            ..DissectOptions::default()
        }
    }

    /// TPKT/COTP on `server_port`: `-d tcp.port==N,tpkt`, single pass, with COTP's
    /// heuristic payload dissectors ([`COTP_PAYLOAD_PROTOCOLS`]) disabled.
    pub fn cotp(server_port: u16) -> Self {
        let mut o = DissectOptions::base();
        o.decode_as.push(format!("tcp.port=={server_port},tpkt"));
        o.disabled_protocols = COTP_PAYLOAD_PROTOCOLS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        o
    }

    /// TCPCL on `server_port`: `-d tcp.port==N,tcpcl`, two-pass, sequence analysis on.
    pub fn tcpcl(server_port: u16) -> Self {
        let mut o = DissectOptions::base();
        o.decode_as.push(format!("tcp.port=={server_port},tcpcl"));
        o.two_pass = true;
        o.prefs.push("tcpcl.analyze_sequence:TRUE".into());
        o
    }

    /// The tshark arguments these options stand for (without `-r` and `-T`).
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.two_pass {
            args.push("-2".to_owned());
        }
        for d in &self.decode_as {
            args.extend(["-d".to_owned(), d.clone()]);
        }
        for p in &self.prefs {
            args.extend(["-o".to_owned(), p.clone()]);
        }
        for p in &self.disabled_protocols {
            args.extend(["--disable-protocol".to_owned(), p.clone()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A located tshark binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tshark {
    path: PathBuf,
}

impl Tshark {
    /// Uses the tshark at `path` (no check that it exists).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Tshark { path: path.into() }
    }

    /// Path of the binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command for this tshark with no arguments yet.
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }

    /// The first line of `tshark --version`, e.g. `TShark (Wireshark) 4.0.17 ...`.
    pub fn version(&self) -> anyhow::Result<String> {
        let out = self
            .command()
            .arg("--version")
            .output()
            .with_context(|| format!("running {}", self.path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .next()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("tshark --version printed nothing"))
    }

    /// Dissects the capture file at `pcap` and parses tshark's JSON output.
    pub fn dissect(&self, pcap: &Path, opts: &DissectOptions) -> anyhow::Result<TsharkReport> {
        let args = opts.args();
        let out = self
            .command()
            .arg("-n")
            .arg("-r")
            .arg(pcap)
            .args(["-T", "json", "--no-duplicate-keys"])
            .args(&args)
            .output()
            .with_context(|| format!("running {}", self.path.display()))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // tshark warns on stderr when run as root; anything else there is worth showing.
        let stderr: String = stderr
            .lines()
            .filter(|l| !l.starts_with("Running as user"))
            .collect::<Vec<_>>()
            .join("\n");
        if !out.status.success() {
            bail!(
                "tshark {args:?} on {} failed ({}): {stderr}",
                pcap.display(),
                out.status
            );
        }
        let json: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("parsing tshark JSON for {}", pcap.display()))?;
        let mut report = TsharkReport::from_json(&json)?;
        report.args = args;
        report.stderr = stderr;
        Ok(report)
    }

    /// Writes `capture` to a temporary pcap, dissects it and annotates every packet with
    /// the [`FrameInfo`] it was synthesised from.
    ///
    /// The file is removed afterwards unless `PROTO_KEEP_PCAPS` is set.
    pub fn dissect_capture(
        &self,
        capture: &PcapBuilder,
        opts: &DissectOptions,
    ) -> anyhow::Result<TsharkReport> {
        self.dissect_captures(std::slice::from_ref(capture), opts)
    }

    /// Like [`dissect_capture`](Tshark::dissect_capture) for several conversations
    /// written one after another into one file ([`pcap::concat`](crate::pcap::concat)),
    /// so a single tshark run covers them all. [`Packet::sent`] holds the
    /// [`FrameInfo`] of the conversation the frame belongs to, with `number` rewritten
    /// to the frame's number in the combined capture.
    pub fn dissect_captures(
        &self,
        captures: &[PcapBuilder],
        opts: &DissectOptions,
    ) -> anyhow::Result<TsharkReport> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "proto-tshark-{}-{}.pcap",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, crate::pcap::concat(captures))
            .with_context(|| format!("writing pcap {}", path.display()))?;
        let result = self.dissect(&path, opts);
        let keep = std::env::var_os(KEEP_PCAPS_ENV).is_some();
        if keep {
            eprintln!("kept capture {}", path.display());
        } else {
            // Best effort: a leftover temp file is not worth failing a test for.
            let _ = std::fs::remove_file(&path);
        }
        let mut report = result?;
        let mut frames = Vec::new();
        for (c, first) in captures.iter().zip(frame_offsets(captures)) {
            frames.extend(c.frames().into_iter().map(|mut f| {
                f.number += first;
                f
            }));
        }
        for p in &mut report.packets {
            p.sent = frames.iter().find(|f| f.number == p.number).copied();
        }
        if keep {
            report.pcap = Some(path);
        }
        Ok(report)
    }
}

/// For each conversation of a combined capture and each payload sent in it, the number
/// of the last frame carrying a piece of that payload: where tshark shows a PDU that
/// spans several TCP segments.
pub fn message_frames(captures: &[PcapBuilder]) -> Vec<Vec<u32>> {
    captures
        .iter()
        .zip(frame_offsets(captures))
        .map(|(c, first)| {
            let mut last: Vec<u32> = Vec::new();
            for f in c.frames() {
                if let Some(i) = f.payload_index {
                    if last.len() <= i {
                        last.resize(i + 1, 0);
                    }
                    last[i] = first + f.number;
                }
            }
            last
        })
        .collect()
}

/// The result of [`check_conversations`]: one tshark report for several conversations.
#[derive(Debug, Clone)]
pub struct ConversationsReport {
    /// What tshark reported for the combined capture.
    pub report: TsharkReport,
    /// `frames[k][i]`: the frame showing payload `i` of conversation `k` (see
    /// [`message_frames`]).
    pub frames: Vec<Vec<u32>>,
}

impl ConversationsReport {
    /// The frame showing payload `msg` of conversation `conv`.
    ///
    /// # Panics
    ///
    /// If there is no such payload or tshark reported no such frame (a test bug).
    #[allow(clippy::panic)]
    pub fn packet(&self, conv: usize, msg: usize) -> &Packet {
        let number = self.frames[conv][msg];
        self.report
            .packet(number)
            .unwrap_or_else(|| panic!("tshark reported no frame {number}"))
    }
}

/// Builds one capture holding each of `conversations` (payloads in order, each from one
/// side) as its own TCP stream — client ports [`CLIENT_PORT`], `CLIENT_PORT + 1`, ... —
/// to `server_port`, and dissects it in one tshark run; `Ok(None)` when tshark is
/// missing (see [`peer_available`]).
pub fn check_conversations<B: AsRef<[u8]>>(
    conversations: &[Vec<(Dir, B)>],
    server_port: u16,
    opts: &DissectOptions,
) -> anyhow::Result<Option<ConversationsReport>> {
    let Some(tshark) = tshark() else {
        return Ok(None);
    };
    let mut captures = Vec::new();
    for (k, msgs) in conversations.iter().enumerate() {
        let port = u16::try_from(k)
            .ok()
            .and_then(|k| CLIENT_PORT.checked_add(k))
            .ok_or_else(|| anyhow!("too many conversations"))?;
        let mut capture = PcapBuilder::new(port, server_port);
        for (dir, payload) in msgs {
            capture.send(*dir, payload.as_ref());
        }
        captures.push(capture);
    }
    let report = tshark.dissect_captures(&captures, opts)?;
    Ok(Some(ConversationsReport {
        report,
        frames: message_frames(&captures),
    }))
}

/// Builds a capture of `msgs` (TCP payloads in order, each from one side) on the
/// COTP port and dissects it; `Ok(None)` means tshark is missing and the test should
/// return early (see [`peer_available`]).
///
/// Each payload is one TCP segment, so a `Vec` of whole TPKT frames maps frame for
/// frame onto [`TsharkReport::payload_packets`].
pub fn check_cotp<B: AsRef<[u8]>>(msgs: &[(Dir, B)]) -> anyhow::Result<Option<TsharkReport>> {
    check_with(msgs, COTP_PORT, DissectOptions::cotp(COTP_PORT))
}

/// Like [`check_cotp`], for TCPCL on port 4556 (two-pass).
pub fn check_tcpcl<B: AsRef<[u8]>>(msgs: &[(Dir, B)]) -> anyhow::Result<Option<TsharkReport>> {
    check_with(msgs, TCPCL_PORT, DissectOptions::tcpcl(TCPCL_PORT))
}

fn check_with<B: AsRef<[u8]>>(
    msgs: &[(Dir, B)],
    server_port: u16,
    opts: DissectOptions,
) -> anyhow::Result<Option<TsharkReport>> {
    let Some(tshark) = tshark() else {
        return Ok(None);
    };
    let mut capture = PcapBuilder::new(CLIENT_PORT, server_port);
    for (dir, payload) in msgs {
        capture.send(*dir, payload.as_ref());
    }
    tshark.dissect_capture(&capture, &opts).map(Some)
}

/// Severity of an expert item, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A packet comment (`PI_COMMENT`).
    Comment,
    /// Normal workflow (`PI_CHAT`).
    Chat,
    /// Notable but usual (`PI_NOTE`).
    Note,
    /// Possibly a problem (`PI_WARN`).
    Warning,
    /// A serious problem, e.g. a malformed packet (`PI_ERROR`).
    Error,
}

impl Severity {
    /// Maps tshark's numeric `_ws.expert.severity` value.
    pub fn from_raw(raw: u32) -> Option<Severity> {
        match raw {
            0x0010_0000 => Some(Severity::Comment),
            0x0020_0000 => Some(Severity::Chat),
            0x0040_0000 => Some(Severity::Note),
            0x0060_0000 => Some(Severity::Warning),
            0x0080_0000 => Some(Severity::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Comment => "comment",
            Severity::Chat => "chat",
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One expert-info item tshark attached to a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertItem {
    /// Frame number.
    pub frame: u32,
    /// Top-level layer the item was found in (`tcp`, `cotp`, `tcpcl`, `_ws.malformed`).
    pub layer: String,
    /// The expert field, e.g. `tcpcl.v4.sess_init_missing` (empty if tshark gave none).
    pub field: String,
    /// Human-readable message.
    pub message: String,
    /// Severity (unknown raw values are treated as errors).
    pub severity: Severity,
    /// Raw group value (`0x02000000` sequence, `0x07000000` malformed, ...).
    pub group: u32,
}

impl fmt::Display for ExpertItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame {} [{}] {} {}: {}",
            self.frame, self.layer, self.severity, self.field, self.message
        )
    }
}

/// One top-level layer of a frame: a protocol's tree for one PDU.
///
/// When a frame carries several PDUs of one protocol (two TPKT frames in one TCP
/// segment, several TCPCL messages), each PDU is its own `Layer` with the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    /// Layer name as tshark's JSON names it (`tcp`, `tpkt`, `cotp`, `tcpcl`, `data`, ...).
    pub name: String,
    /// Every field value of the subtree in tree order, `(field name, value)`.
    pub fields: Vec<(String, String)>,
}

impl Layer {
    /// All values of `field` in this layer, in tree order.
    pub fn values(&self, field: &str) -> Vec<&str> {
        values_of(self.fields.iter(), field)
    }

    /// The first value of `field`.
    pub fn first(&self, field: &str) -> Option<&str> {
        first_of(self.fields.iter(), field)
    }

    /// Whether `field` occurs in this layer.
    pub fn has(&self, field: &str) -> bool {
        self.first(field).is_some()
    }

    /// The first value of `field` as an integer (decimal, or `0x` hex).
    pub fn uint(&self, field: &str) -> Option<u64> {
        parse_uint(self.first(field)?)
    }
}

/// One frame as tshark dissected it.
#[derive(Debug, Clone, Default)]
pub struct Packet {
    /// 1-based frame number.
    pub number: u32,
    /// Protocol stack from `frame.protocols`, e.g. `["eth", "ethertype", "ip", "tcp", "tpkt", "cotp"]`.
    pub protocols: Vec<String>,
    /// Top-level layers in order (`frame`, `eth`, `ip`, `tcp`, then the payload's).
    pub layers: Vec<Layer>,
    /// Expert items of this frame.
    pub expert: Vec<ExpertItem>,
    /// What [`Tshark::dissect_capture`] synthesised for this frame, if known.
    pub sent: Option<FrameInfo>,
}

impl Packet {
    fn all_fields(&self) -> impl Iterator<Item = &(String, String)> + '_ {
        self.layers.iter().flat_map(|l| l.fields.iter())
    }

    /// All values of `field` in this frame, in order (several for repeated PDUs or
    /// parameters).
    pub fn values(&self, field: &str) -> Vec<&str> {
        values_of(self.all_fields(), field)
    }

    /// The first value of `field`.
    pub fn first(&self, field: &str) -> Option<&str> {
        first_of(self.all_fields(), field)
    }

    /// Whether `field` occurs at all.
    pub fn has(&self, field: &str) -> bool {
        self.first(field).is_some()
    }

    /// The first value of `field` as an integer (decimal, or `0x` hex).
    pub fn uint(&self, field: &str) -> Option<u64> {
        parse_uint(self.first(field)?)
    }

    /// Whether the frame has a top-level layer `name` (e.g. `cotp`, `tcpcl`, `data`).
    pub fn has_layer(&self, name: &str) -> bool {
        self.layers.iter().any(|l| l.name == name)
    }

    /// The PDUs of protocol `name` in this frame, one [`Layer`] each, in order.
    pub fn pdus<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Layer> + 'a {
        self.layers.iter().filter(move |l| l.name == name)
    }

    /// Whether tshark marked the frame malformed (or short).
    pub fn is_malformed(&self) -> bool {
        self.has_layer("_ws.malformed")
            || self.has_layer("_ws.short")
            || self.has("_ws.malformed")
            || self.has("_ws.short")
    }

    /// The TCP payload length tshark saw (`tcp.len`).
    pub fn tcp_len(&self) -> Option<usize> {
        self.first("tcp.len").and_then(|v| v.parse().ok())
    }

    /// Which side sent the frame, if it was synthesised by [`Tshark::dissect_capture`].
    pub fn dir(&self) -> Option<Dir> {
        self.sent.map(|f| f.dir)
    }
}

fn values_of<'a>(fields: impl Iterator<Item = &'a (String, String)>, field: &str) -> Vec<&'a str> {
    fields
        .filter(|(k, _)| k == field)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn first_of<'a>(
    mut fields: impl Iterator<Item = &'a (String, String)>,
    field: &str,
) -> Option<&'a str> {
    fields.find(|(k, _)| k == field).map(|(_, v)| v.as_str())
}

fn parse_uint(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Everything tshark reported about one capture.
#[derive(Debug, Clone, Default)]
pub struct TsharkReport {
    /// Every frame, in order.
    pub packets: Vec<Packet>,
    /// The tshark arguments used (besides `-r`/`-T json`).
    pub args: Vec<String>,
    /// tshark's stderr, minus the "running as root" warning.
    pub stderr: String,
    /// Where the capture was kept, when `PROTO_KEEP_PCAPS` is set.
    pub pcap: Option<PathBuf>,
}

impl TsharkReport {
    /// Parses the output of `tshark -T json --no-duplicate-keys`.
    pub fn from_json(json: &Value) -> anyhow::Result<TsharkReport> {
        let frames = json
            .as_array()
            .ok_or_else(|| anyhow!("tshark JSON is not an array"))?;
        let mut packets = Vec::with_capacity(frames.len());
        for frame in frames {
            let layers = frame
                .pointer("/_source/layers")
                .and_then(Value::as_object)
                .ok_or_else(|| anyhow!("tshark JSON frame without _source.layers"))?;
            let mut p = Packet::default();
            for (name, value) in layers {
                // A protocol with several PDUs in the frame is an array of subtrees.
                let pdus = match value {
                    Value::Array(items) if items.iter().all(Value::is_object) => {
                        items.iter().collect()
                    }
                    other => vec![other],
                };
                for pdu in pdus {
                    let mut layer = Layer {
                        name: name.clone(),
                        fields: Vec::new(),
                    };
                    walk(name, name, pdu, &mut layer.fields, &mut p.expert);
                    p.layers.push(layer);
                }
            }
            p.number = p
                .first("frame.number")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| anyhow!("tshark JSON frame without frame.number"))?;
            p.protocols = p
                .first("frame.protocols")
                .unwrap_or_default()
                .split(':')
                .map(str::to_owned)
                .collect();
            let number = p.number;
            for e in &mut p.expert {
                e.frame = number;
            }
            packets.push(p);
        }
        Ok(TsharkReport {
            packets,
            ..TsharkReport::default()
        })
    }

    /// The frame numbered `number`.
    pub fn packet(&self, number: u32) -> Option<&Packet> {
        self.packets.iter().find(|p| p.number == number)
    }

    /// Frames that have a top-level layer `name`, e.g. `cotp` or `tcpcl`.
    pub fn with_layer<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Packet> + 'a {
        self.packets.iter().filter(move |p| p.has_layer(name))
    }

    /// Frames that carry (a piece of) one of our payloads: no handshake, pure ACK or FIN
    /// frames. Needs a report from [`Tshark::dissect_capture`].
    pub fn payload_packets(&self) -> impl Iterator<Item = &Packet> + '_ {
        self.packets
            .iter()
            .filter(|p| p.sent.is_some_and(|s| s.payload_index.is_some()))
    }

    /// Every value of `field` across all frames, in frame order.
    pub fn values(&self, field: &str) -> Vec<&str> {
        self.packets.iter().flat_map(|p| p.values(field)).collect()
    }

    /// All expert items, in frame order.
    pub fn expert_items(&self) -> impl Iterator<Item = &ExpertItem> + '_ {
        self.packets.iter().flat_map(|p| p.expert.iter())
    }

    /// Numbers of malformed frames.
    pub fn malformed(&self) -> Vec<u32> {
        self.packets
            .iter()
            .filter(|p| p.is_malformed())
            .map(|p| p.number)
            .collect()
    }

    /// Problems worth failing a test for: malformed frames, and expert items of at least
    /// `min` severity whose field is neither in [`BENIGN_EXPERT_FIELDS`] nor in `allowed`.
    pub fn problems(&self, min: Severity, allowed: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = self
            .malformed()
            .into_iter()
            .map(|n| format!("frame {n} is malformed"))
            .collect();
        out.extend(
            self.expert_items()
                .filter(|e| e.severity >= min)
                .filter(|e| {
                    !BENIGN_EXPERT_FIELDS.contains(&e.field.as_str())
                        && !allowed.contains(&e.field.as_str())
                })
                .map(ToString::to_string),
        );
        out
    }

    /// `Ok` if [`problems`](TsharkReport::problems) at note level and above is empty,
    /// else an error listing them (and the kept capture, if any).
    pub fn check_clean(&self, allowed: &[&str]) -> anyhow::Result<()> {
        let problems = self.problems(Severity::Note, allowed);
        if problems.is_empty() {
            return Ok(());
        }
        let kept = match &self.pcap {
            Some(p) => format!("capture kept at {}", p.display()),
            None => format!("set {KEEP_PCAPS_ENV}=1 to keep the capture"),
        };
        bail!(
            "tshark {:?} reported:\n  {}\n({kept})",
            self.args,
            problems.join("\n  ")
        )
    }
}

/// Flattens one JSON subtree into `fields`, collecting `_ws.expert` objects.
fn walk(
    layer: &str,
    key: &str,
    value: &Value,
    fields: &mut Vec<(String, String)>,
    expert: &mut Vec<ExpertItem>,
) {
    match value {
        Value::String(s) => fields.push((key.to_owned(), s.clone())),
        Value::Number(n) => fields.push((key.to_owned(), n.to_string())),
        Value::Bool(b) => fields.push((key.to_owned(), b.to_string())),
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                walk(layer, key, item, fields, expert);
            }
        }
        Value::Object(map) => {
            if key == "_ws.expert" {
                expert.push(expert_item(layer, map));
            }
            for (k, v) in map {
                walk(layer, k, v, fields, expert);
            }
        }
    }
}

fn expert_item(layer: &str, map: &serde_json::Map<String, Value>) -> ExpertItem {
    let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or_default();
    let raw = |k: &str| text(k).parse::<u32>().unwrap_or(u32::MAX);
    let field = map
        .keys()
        .find(|k| !k.starts_with("_ws.expert"))
        .cloned()
        .unwrap_or_default();
    ExpertItem {
        frame: 0,
        layer: layer.to_owned(),
        field,
        message: text("_ws.expert.message").to_owned(),
        severity: Severity::from_raw(raw("_ws.expert.severity")).unwrap_or(Severity::Error),
        group: raw("_ws.expert.group"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_arrays_and_expert() {
        let json = serde_json::json!([{
            "_source": {"layers": {
                "frame": {"frame.number": "7", "frame.protocols": "eth:ip:tcp:tpkt:cotp"},
                "cotp": [
                    {"cotp.type": "0x08", "_ws.expert": {
                        "cotp.disconnect_request": "",
                        "_ws.expert.message": "Disconnect Request(DR): 0x1 -> 0x1",
                        "_ws.expert.severity": "2097152",
                        "_ws.expert.group": "33554432"}},
                    {"cotp.type": "0x0f", "cotp.parameter_code": ["0xc0", "0xc1"]}
                ]
            }}
        }]);
        let r = TsharkReport::from_json(&json).unwrap();
        let p = r.packet(7).unwrap();
        assert_eq!(p.values("cotp.type"), ["0x08", "0x0f"]);
        let pdus: Vec<_> = p.pdus("cotp").collect();
        assert_eq!(pdus.len(), 2);
        assert_eq!(pdus[1].values("cotp.parameter_code"), ["0xc0", "0xc1"]);
        assert!(!pdus[0].has("cotp.parameter_code"));
        assert_eq!(p.values("cotp.parameter_code"), ["0xc0", "0xc1"]);
        assert_eq!(p.uint("cotp.type"), Some(8));
        assert_eq!(p.protocols.last().map(String::as_str), Some("cotp"));
        let e = &p.expert[0];
        assert_eq!((e.frame, e.severity), (7, Severity::Chat));
        assert_eq!(e.field, "cotp.disconnect_request");
        assert_eq!(e.layer, "cotp");
        assert!(r.problems(Severity::Comment, &[]).is_empty());
        assert!(!p.is_malformed());
    }
}
