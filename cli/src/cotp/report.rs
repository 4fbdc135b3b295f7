//! What `proto cotp send` tells about each message: a summary line (`sent NAME SIZE
//! bytes sha256=HEX`) or with `--json` one object (`file`, `size`, `sha256`, `result`,
//! `protocol`, `src_tsap`, `dst_tsap`, and with `--expect-reply` the reply).
//!
//! COTP class 0 acknowledges nothing: a receiver that refuses a message (DR
//! "congestion at TSAP") may say so only after the whole message was written, at the
//! release. So the results are printed once the connection was released normally;
//! when it ended in an error, every message of it is reported `failed` with that
//! error, and no summary line claims a delivery.

use crate::decode::hex;
use anyhow::Result;
use serde_json::{json, Value};
use std::io::Write;

/// The records of one connection, printed by [`Report::finish`].
pub(super) struct Report {
    json: bool,
    /// Raw reply bytes own stdout: the summary lines go to stderr.
    lines_to_stderr: bool,
    /// Fields every record carries (protocol and TSAPs).
    common: Value,
    records: Vec<Value>,
}

impl Report {
    pub(super) fn new(json: bool, lines_to_stderr: bool, common: Value) -> Self {
        Report {
            json,
            lines_to_stderr,
            common,
            records: Vec::new(),
        }
    }

    /// A message written whole.
    pub(super) fn sent(&mut self, name: &str, size: u64, sha256: &str) {
        self.push(json!({"file": name, "size": size, "sha256": sha256}));
    }

    /// A message that failed while being written, after `read` bytes of it.
    pub(super) fn unsent(&mut self, name: &str, read: u64) {
        self.push(json!({"file": name, "size": read, "sha256": null}));
    }

    /// The reply to the last message.
    pub(super) fn reply(&mut self, reply: &[u8]) {
        if let Some(m) = self.records.last_mut().and_then(Value::as_object_mut) {
            m.insert("reply_size".into(), reply.len().into());
            m.insert(
                "reply_sha256".into(),
                crate::arrivals::sha256_hex(reply).into(),
            );
            m.insert("reply".into(), hex(reply).into());
        }
    }

    fn push(&mut self, mut v: Value) {
        if let (Some(m), Some(c)) = (v.as_object_mut(), self.common.as_object()) {
            m.extend(c.clone());
        }
        self.records.push(v);
    }

    /// Prints every record: `ok` when the connection ended well (`error` is `None`),
    /// else `failed` with the error.
    pub(super) fn finish(self, error: Option<&anyhow::Error>) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        for mut v in self.records {
            if self.json {
                if let Some(m) = v.as_object_mut() {
                    let result = if error.is_none() { "ok" } else { "failed" };
                    m.insert("result".into(), result.into());
                    if let Some(e) = error {
                        m.insert("error".into(), crate::error_line(e).into());
                    }
                }
                writeln!(stdout, "{v}")?;
            } else if error.is_none() {
                let line = format!(
                    "sent {} {} bytes sha256={}",
                    v["file"].as_str().unwrap_or_default(),
                    v["size"],
                    v["sha256"].as_str().unwrap_or_default()
                );
                if self.lines_to_stderr {
                    eprintln!("{line}");
                } else {
                    writeln!(stdout, "{line}")?;
                }
            }
        }
        stdout.flush()?;
        Ok(())
    }
}
