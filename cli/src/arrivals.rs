//! What `listen` does with each message or bundle that arrives: an atomic file in
//! `--out-dir`, one line on stdout (time, peer, size, SHA-256) or with `--json` one JSON
//! object, and the `--count` limit.

use crate::decode::hex;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// Records arrivals for one listener.
#[derive(Debug)]
pub(crate) struct Arrivals {
    out_dir: Option<PathBuf>,
    prefix: &'static str,
    /// The last file number used (continues after what the directory holds).
    seq: AtomicU64,
    /// Arrivals taken in this run (what `--count` limits).
    taken: AtomicU64,
    limit: Option<u64>,
    /// One JSON object per arrival instead of a line of text.
    json: bool,
    stdout: Mutex<()>,
}

impl Arrivals {
    /// Arrivals named `{prefix}-{seq:06}.bin` in `out_dir` (created if missing).
    pub(crate) fn new(
        prefix: &'static str,
        out_dir: Option<PathBuf>,
        limit: Option<u64>,
    ) -> Result<Self> {
        let mut start = 0;
        if let Some(d) = &out_dir {
            prepare_out_dir(d)?;
            // Continue after the highest number already there: a restarted listener
            // never reuses (or overwrites) an earlier file's name.
            start = highest_number(d, prefix)?;
        }
        Ok(Arrivals {
            out_dir,
            prefix,
            seq: AtomicU64::new(start),
            taken: AtomicU64::new(0),
            limit,
            json: false,
            stdout: Mutex::new(()),
        })
    }

    /// With `on`, each arrival prints one JSON object (JSON lines) instead of a line:
    /// `time`, `seq`, `peer`, `size`, `sha256`, `file` (the stored path or null) and
    /// the protocol's own fields.
    pub(crate) fn with_json(mut self, on: bool) -> Self {
        self.json = on;
        self
    }

    /// Reserves the next sequence number; `None` once `--count` arrivals were taken.
    pub(crate) fn next_seq(&self) -> Option<u64> {
        let taken = self.taken.fetch_add(1, Ordering::SeqCst) + 1;
        if self.limit.is_some_and(|l| taken > l) {
            return None;
        }
        Some(self.seq.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// How many arrivals this run recorded.
    pub(crate) fn count(&self) -> u64 {
        let n = self.taken.load(Ordering::SeqCst);
        self.limit.map_or(n, |l| n.min(l))
    }

    /// Whether `--count` is reached.
    pub(crate) fn done(&self) -> bool {
        self.limit
            .is_some_and(|l| self.taken.load(Ordering::SeqCst) >= l)
    }

    /// The final path of arrival `seq`, if an output directory is set.
    pub(crate) fn path_for(&self, seq: u64) -> Option<PathBuf> {
        self.out_dir
            .as_ref()
            .map(|d| d.join(format!("{}-{seq:06}.bin", self.prefix)))
    }

    /// A temporary path next to the final one: a partial file is never visible under
    /// the final name.
    pub(crate) fn temp_path_for(&self, seq: u64) -> Option<PathBuf> {
        self.out_dir
            .as_ref()
            .map(|d| d.join(format!(".{}-{seq:06}.part", self.prefix)))
    }

    /// Stores a whole message and prints its line, with the protocol's details about
    /// the peer.
    pub(crate) fn record_bytes_with(&self, seq: u64, peer: &Peer<'_>, data: &[u8]) -> Result<()> {
        if let (Some(tmp), Some(dst)) = (self.temp_path_for(seq), self.path_for(seq)) {
            write_atomic(&tmp, &dst, data)?;
        }
        self.print_with(seq, peer, data.len() as u64, &sha256_hex(data));
        Ok(())
    }

    /// Prints one line for expedited data (COTP ED): not a message, not counted.
    pub(crate) fn print_expedited(&self, peer: &str, data: &[u8]) {
        let _guard = self.stdout.lock();
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{} expedited from {peer} {} bytes hex={hex}",
            rfc3339(SystemTime::now()),
            data.len()
        );
        let _ = out.flush();
    }

    /// Prints one arrival line.
    pub(crate) fn print(&self, seq: u64, peer: &str, size: u64, sha256: &str) {
        self.print_with(seq, &Peer::plain(peer), size, sha256);
    }

    /// Prints one arrival line (or JSON object).
    pub(crate) fn print_with(&self, seq: u64, peer: &Peer<'_>, size: u64, sha256: &str) {
        let _guard = self.stdout.lock();
        let time = rfc3339(SystemTime::now());
        if self.json {
            let mut v = serde_json::json!({
                "time": time,
                "seq": seq,
                "peer": peer.addr,
                "size": size,
                "sha256": sha256,
                "file": self.path_for(seq).map(|p| p.display().to_string()),
            });
            if let (Some(m), serde_json::Value::Object(extra)) = (v.as_object_mut(), &peer.json) {
                m.extend(extra.clone());
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{v}");
            let _ = out.flush();
            return;
        }
        let peer = match &peer.detail {
            Some(d) => format!("{} ({d})", peer.addr),
            None => peer.addr.to_owned(),
        };
        let file = self
            .path_for(seq)
            .map(|p| format!(" file={}", p.display()))
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{time} #{seq} from {peer} {size} bytes sha256={sha256}{file}"
        );
        let _ = out.flush();
    }
}

/// Who sent an arrival: its address, and what the protocol adds about it (in the line
/// after the address, in parentheses; in JSON as extra fields).
#[derive(Debug)]
pub(crate) struct Peer<'a> {
    /// The sender, as printed after "from".
    pub(crate) addr: &'a str,
    /// Text shown in parentheses after `addr`.
    pub(crate) detail: Option<String>,
    /// Fields added to the JSON object (an object, or null for none).
    pub(crate) json: serde_json::Value,
}

impl<'a> Peer<'a> {
    /// Just an address.
    pub(crate) fn plain(addr: &'a str) -> Self {
        Peer {
            addr,
            detail: None,
            json: serde_json::Value::Null,
        }
    }
}

/// Makes sure `--out-dir` is a directory, creating it if it does not exist; an error
/// names the path and what is wrong with it.
fn prepare_out_dir(d: &Path) -> Result<()> {
    match fs::metadata(d) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => anyhow::bail!(
            "--out-dir {}: a file of that name exists; give a directory (or a path to create one at)",
            d.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir_all(d)
            .with_context(|| format!("--out-dir {}: cannot create the directory", d.display())),
        Err(e) => {
            Err(e).with_context(|| format!("--out-dir {}: cannot use the path", d.display()))
        }
    }
}

fn write_atomic(tmp: &Path, dst: &Path, data: &[u8]) -> Result<()> {
    let mut f = fs::File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all().ok();
    // A hard link never replaces an existing file (rename would): an earlier message
    // can never be overwritten, even by another listener writing to the same place.
    let linked = fs::hard_link(tmp, dst);
    let _ = fs::remove_file(tmp);
    linked.with_context(|| format!("storing {} (it must not exist yet)", dst.display()))
}

/// The highest `N` among files named `{prefix}-N.bin` in `dir` (0 if none).
fn highest_number(dir: &Path, prefix: &str) -> Result<u64> {
    let mut max = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name();
        let n = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.strip_suffix(".bin"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            max = max.max(n);
        }
    }
    Ok(max)
}

/// Lower-case hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(Sha256::digest(data).as_slice())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for `t`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn numbering_continues_after_existing_files_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("arrivals-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cotp-000007.bin"), b"old").unwrap();
        fs::write(dir.join("cotp-junk.bin"), b"x").unwrap();
        let a = Arrivals::new("cotp", Some(dir.clone()), Some(1)).unwrap();
        let seq = a.next_seq().unwrap();
        assert_eq!(seq, 8);
        a.record_bytes_with(seq, &Peer::plain("peer"), b"new")
            .unwrap();
        assert_eq!(fs::read(dir.join("cotp-000007.bin")).unwrap(), b"old");
        assert_eq!(fs::read(dir.join("cotp-000008.bin")).unwrap(), b"new");
        assert!(a.done());
        assert_eq!(a.count(), 1);
        // Storing under a name that exists fails instead of replacing the file.
        assert!(a
            .record_bytes_with(7, &Peer::plain("peer"), b"clobber")
            .is_err());
        assert_eq!(fs::read(dir.join("cotp-000007.bin")).unwrap(), b"old");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn count_limit() {
        let a = Arrivals::new("x", None, Some(2)).unwrap();
        assert_eq!(a.next_seq(), Some(1));
        assert!(!a.done());
        assert_eq!(a.next_seq(), Some(2));
        assert!(a.done());
        assert_eq!(a.next_seq(), None);
        assert_eq!(a.count(), 2);
    }
}
