//! The lines `proto tcpcl send` and `listen --bundles`/`--json` print on stdout: the
//! sender's summary per file (its SHA-256 is the one the listener prints for the same
//! data) and the listener's arrival line with the bundle's fields, as text or JSON.

use crate::arrivals::rfc3339;
use crate::decode::dtn_time_text;
use crate::json::print_line;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

/// What `send` reports for one acknowledged file.
pub(super) struct SendReport {
    /// The path given (or found under a directory); `-` for stdin.
    pub(super) file: String,
    /// The relative name (what a directory send makes travel with a bundle).
    pub(super) name: Option<String>,
    /// Bytes of the file (the payload, when wrapped in a bundle).
    pub(super) size: u64,
    /// SHA-256 of the file's bytes, hex.
    pub(super) sha256: String,
    /// The TCPCL transfer ID.
    pub(super) transfer_id: u64,
    /// Bytes acknowledged (the bundle's size when wrapped), or sent in full when
    /// `acknowledged` is false.
    pub(super) wire_len: u64,
    /// Whether the peer acknowledged the transfer; false for a TCPCLv3 peer that asked
    /// for no acknowledgments (written in full, delivery not confirmed).
    pub(super) acknowledged: bool,
    /// Source and destination EIDs, when wrapped in a bundle.
    pub(super) bundle: Option<(String, String)>,
}

impl SendReport {
    /// Prints the summary line (or JSON object) of a file acknowledged (or, to a
    /// TCPCLv3 peer without acks, written) in full:
    /// `sent FILE SIZE bytes sha256=HEX transfer=ID to ADDR[ bundle=SRC->DST (N bytes)]`.
    pub(super) fn print(&self, to: &str, as_json: bool) {
        if as_json {
            let mut v = json!({
                "file": self.file,
                "name": self.name,
                "size": self.size,
                "sha256": self.sha256,
                "transfer_id": self.transfer_id,
                "acknowledged": if self.acknowledged { self.wire_len } else { 0 },
                "to": to,
                "result": if self.acknowledged { "acknowledged" } else { "sent" },
            });
            if let (Some((src, dst)), Some(m)) = (&self.bundle, v.as_object_mut()) {
                m.insert(
                    "bundle".into(),
                    json!({"source": src, "destination": dst, "size": self.wire_len}),
                );
            }
            print_line(&v);
            return;
        }
        let bundle = self
            .bundle
            .as_ref()
            .map(|(src, dst)| format!(" bundle={src}->{dst} ({} bytes)", self.wire_len))
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "sent {} {} bytes sha256={} transfer={} to {to}{bundle}",
            self.file, self.size, self.sha256, self.transfer_id
        );
        let _ = out.flush();
    }

    /// The JSON object of a file that was not delivered.
    pub(super) fn print_failure(file: &str, e: &anyhow::Error) {
        print_line(&json!({
            "file": file,
            "result": "failed",
            "error": crate::error_line(e),
        }));
    }
}

/// What `listen --bundles` learnt about a bundle, for its arrival line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BundleSummary {
    pub(super) source: String,
    pub(super) destination: String,
    pub(super) created_ms: Option<u64>,
    pub(super) sequence: u64,
    pub(super) lifetime_ms: u64,
    pub(super) bundle_size: u64,
    pub(super) payload_size: u64,
    /// The file name the bundle carried, if any.
    pub(super) name: Option<String>,
    /// Why that name was not used to store it, if it was refused.
    pub(super) name_refused: Option<String>,
}

/// One arrival, as `listen` reports it.
pub(super) struct Arrival<'a> {
    pub(super) seq: u64,
    pub(super) node_id: &'a str,
    pub(super) addr: &'a str,
    pub(super) transfer_id: u64,
    /// Bytes stored and hashed (the payload with `--payload-only`).
    pub(super) size: u64,
    pub(super) sha256: &'a str,
    pub(super) file: Option<&'a PathBuf>,
    pub(super) bundle: Option<&'a BundleSummary>,
}

impl Arrival<'_> {
    /// Prints the arrival line, `TIME #SEQ from NODE-ID (ADDR) SIZE bytes sha256=HEX`
    /// then ` bpv7 src=EID dst=EID created=TIME payload=N bytes[ name=NAME]` for a
    /// bundle and `[ file=PATH]` last; or one JSON object.
    pub(super) fn print(&self, as_json: bool) {
        let now = rfc3339(SystemTime::now());
        if as_json {
            let mut v = json!({
                "time": now,
                "seq": self.seq,
                "node_id": self.node_id,
                "peer": self.addr,
                "transfer_id": self.transfer_id,
                "size": self.size,
                "sha256": self.sha256,
                "file": self.file.map(|p| p.display().to_string()),
            });
            if let (Some(b), Some(m)) = (self.bundle, v.as_object_mut()) {
                m.insert(
                    "bundle".into(),
                    json!({
                        "source": b.source,
                        "destination": b.destination,
                        "created": b.created_ms.map(|ms| dtn_time_text(Some(ms))),
                        "created_ms": b.created_ms,
                        "sequence": b.sequence,
                        "lifetime_ms": b.lifetime_ms,
                        "size": b.bundle_size,
                        "payload_size": b.payload_size,
                        "name": b.name,
                        "name_refused": b.name_refused,
                    }),
                );
            }
            print_line(&v);
            return;
        }
        let bundle = self
            .bundle
            .map(|b| {
                format!(
                    " bpv7 src={} dst={} created={} payload={} bytes{}",
                    b.source,
                    b.destination,
                    b.created_ms
                        .map_or_else(|| "none".to_string(), |ms| dtn_time_text(Some(ms))),
                    b.payload_size,
                    b.name
                        .as_ref()
                        .map(|n| format!(" name={n:?}"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let file = self
            .file
            .map(|p| format!(" file={}", p.display()))
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{now} #{} from {} ({}) {} bytes sha256={}{bundle}{file}",
            self.seq, self.node_id, self.addr, self.size, self.sha256
        );
        let _ = out.flush();
    }
}
