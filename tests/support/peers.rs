//! Independent implementations to test against, and a live wire check of the exchange.
//!
//! - [`peer_python`] finds the Python that has the peer packages (`icspacket`,
//!   `python-snap7`): `PROTO_PEERS_PYTHON`, else `~/.cache/proto-peers/venv/bin/python`
//!   (what `.ci/run` creates). Every peer here follows [`crate::skip`]: the calling test
//!   is marked `#[ignore = "needs <peer>"]`, and a missing interpreter or module means
//!   a printed `skipping: ...` line, or a panic when `PROTO_REQUIRE_PEERS=1`.
//! - [`Bounded`] runs any child process (a Python peer, the `proto` binary, tshark) with
//!   its output collected line by line and a hard time limit: a child that overruns is
//!   killed, and a dropped [`Bounded`] kills its child, so no test can hang on a peer.
//! - [`dtn7`] finds dtn7-rs (`dtnd`, `dtnsend`, `dtnrecv`): `PROTO_DTND_BIN_DIR`, else
//!   `~/.cache/proto-peers/dtn7/bin` (where `.ci/run` installs it), same skip policy.
//! - [`LiveCapture`] records one TCP port on `lo` with tshark while a test runs;
//!   [`WireReport`] dissects the capture with [`DissectOptions::cotp`] (or
//!   [`DissectOptions::tcpcl`] via [`LiveCapture::finish_tcpcl`], with TLS decryption
//!   via [`LiveCapture::finish_tcpcl_tls`]) and splits the findings into frames *we* sent
//!   (which must be clean) and frames the peer sent (whose quirks are reported, not
//!   failed on).
//! - [`scripts`] holds the Python peer programs; each prints one JSON line on success.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

use crate::skip::{assert_marked_ignored, skip_peer};
use crate::tshark::{
    tshark, DissectOptions, Layer, Packet, Severity, Tshark, TsharkReport, BENIGN_EXPERT_FIELDS,
    KEEP_PCAPS_ENV,
};

/// Environment variable naming the Python interpreter that has the peer packages.
pub const PEERS_PYTHON_ENV: &str = "PROTO_PEERS_PYTHON";

/// Where `.ci/run` puts the peers' virtualenv, relative to `$HOME`.
pub const PEERS_VENV: &str = ".cache/proto-peers/venv";

/// The Python to use: `PROTO_PEERS_PYTHON`, else `$HOME/.cache/proto-peers/venv/bin/python`.
pub fn peers_python_path() -> PathBuf {
    if let Some(p) = std::env::var_os(PEERS_PYTHON_ENV) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(PEERS_VENV).join("bin").join("python")
}

/// A Python interpreter known to import the requested peer modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPython {
    path: PathBuf,
}

/// Finds the peers' Python and checks that it imports `module` (`icspacket`, `snap7`).
///
/// Returns `None` after printing `skipping: ...` when it does not (see
/// [`skip_peer`]); the result of each check is cached for the test binary.
///
/// # Panics
///
/// Deliberately, when the peer is unusable and `PROTO_REQUIRE_PEERS=1` is set, or when
/// the calling test is not marked `#[ignore = "needs <module>"]` (see
/// [`assert_marked_ignored`]).
pub fn peer_python(module: &str) -> Option<PeerPython> {
    assert_marked_ignored(module);
    static CHECKED: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let path = peers_python_path();
    let key = format!("{}|{module}", path.display());
    let result = {
        let mut cache = CHECKED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(key)
            .or_insert_with(|| check_import(&path, module))
            .clone()
    };
    match result {
        Ok(path) => Some(PeerPython { path }),
        Err(why) => {
            skip_peer(&format!("python peer `{module}`"), &why);
            None
        }
    }
}

fn check_import(python: &Path, module: &str) -> Result<PathBuf, String> {
    if !python.is_file() {
        return Err(format!(
            "unavailable: no python at {} (set {PEERS_PYTHON_ENV} or run .ci/run)",
            python.display()
        ));
    }
    let mut cmd = Command::new(python);
    cmd.args(["-c", &format!("import {module}")]);
    match Bounded::spawn(&mut cmd).and_then(|c| c.finish(Duration::from_secs(60))) {
        Ok(out) if out.status.success() => Ok(python.to_path_buf()),
        Ok(out) => Err(format!(
            "unavailable: `{} -c 'import {module}'` failed: {}",
            python.display(),
            out.stderr.lines().last().unwrap_or_default()
        )),
        Err(e) => Err(format!("unavailable: {e:#}")),
    }
}

impl PeerPython {
    /// Path of the interpreter.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command running `script` (Python source) with `args`, unbuffered.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, script: &str, args: &[S]) -> Command {
        let mut c = Command::new(&self.path);
        c.env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg("-c")
            .arg(script)
            .args(args);
        c
    }

    /// Runs `script` to completion within `limit` and parses the JSON object on the last
    /// line of its stdout. A non-zero exit, overrun or unparsable output is an error
    /// carrying the script's stderr (its traceback).
    pub fn run_json<S: AsRef<std::ffi::OsStr>>(
        &self,
        script: &str,
        args: &[S],
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let out = Bounded::spawn(&mut self.command(script, args))?.finish(limit)?;
        out.json()
    }

    /// `name==version` of each installed distribution (`icspacket`, `python-snap7`).
    pub fn versions(&self, dists: &[&str]) -> anyhow::Result<String> {
        let script = "import sys, importlib.metadata as m\n\
                      print(' '.join(f'{d}=={m.version(d)}' for d in sys.argv[1:]))";
        let out =
            Bounded::spawn(&mut self.command(script, dists))?.finish(Duration::from_secs(30))?;
        if !out.status.success() {
            bail!("python failed: {}", out.stderr);
        }
        Ok(out.stdout.trim().to_owned())
    }
}

/// Environment variable naming the directory with dtn7's binaries (`dtnd`, `dtnsend`,
/// `dtnrecv`).
pub const DTND_BIN_DIR_ENV: &str = "PROTO_DTND_BIN_DIR";

/// Where `.ci/run` installs dtn7 (`cargo install dtn7 --root ~/.cache/proto-peers/dtn7`),
/// relative to `$HOME`.
pub const DTN7_BIN_DIR: &str = ".cache/proto-peers/dtn7/bin";

/// dtn7-rs binaries, found and checked (`dtnd --version` runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dtn7 {
    dir: PathBuf,
    version: String,
}

impl Dtn7 {
    /// Path of one of the binaries (`dtnd`, `dtnsend`, `dtnrecv`).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// What `dtnd --version` printed, e.g. `dtn7-rs 0.21.0`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// The directory to look for dtn7 in: `PROTO_DTND_BIN_DIR`, else
/// `$HOME/.cache/proto-peers/dtn7/bin`.
pub fn dtn7_bin_dir() -> PathBuf {
    if let Some(p) = std::env::var_os(DTND_BIN_DIR_ENV) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(DTN7_BIN_DIR)
}

/// Finds dtn7 (`dtnd`, `dtnsend`, `dtnrecv` in [`dtn7_bin_dir`]) and checks that
/// `dtnd --version` runs; `None` after the skip policy of [`skip_peer`] otherwise.
/// The check runs once per test binary.
///
/// # Panics
///
/// Deliberately, when dtn7 is unusable and `PROTO_REQUIRE_PEERS=1` is set, or when the
/// calling test is not marked `#[ignore = "needs dtnd"]` (see [`assert_marked_ignored`]).
pub fn dtn7() -> Option<Dtn7> {
    assert_marked_ignored("dtnd");
    static CHECKED: OnceLock<Result<Dtn7, String>> = OnceLock::new();
    match CHECKED.get_or_init(check_dtn7) {
        Ok(d) => Some(d.clone()),
        Err(why) => {
            skip_peer("dtn7 (dtnd)", why);
            None
        }
    }
}

fn check_dtn7() -> Result<Dtn7, String> {
    let dir = dtn7_bin_dir();
    for name in ["dtnd", "dtnsend", "dtnrecv"] {
        if !dir.join(name).is_file() {
            return Err(format!(
                "unavailable: no {name} in {} (set {DTND_BIN_DIR_ENV} or run .ci/run)",
                dir.display()
            ));
        }
    }
    let mut cmd = Command::new(dir.join("dtnd"));
    cmd.arg("--version");
    match Bounded::spawn(&mut cmd).and_then(|c| c.finish(Duration::from_secs(30))) {
        Ok(out) if out.status.success() => Ok(Dtn7 {
            dir,
            version: out.stdout.trim().to_owned(),
        }),
        Ok(out) => Err(format!(
            "unavailable: dtnd --version failed: {}",
            out.stderr
        )),
        Err(e) => Err(format!("unavailable: {e:#}")),
    }
}

/// What a [`Bounded`] child left behind.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout (lossy UTF-8; see `stdout_bytes`).
    pub stdout: String,
    /// Everything it printed on stdout, as bytes.
    pub stdout_bytes: Vec<u8>,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Time from spawn to exit.
    pub elapsed: Duration,
}

impl Finished {
    /// The JSON object on the last non-empty stdout line; an error (with stderr) when the
    /// child failed or printed none.
    pub fn json(&self) -> anyhow::Result<Value> {
        if !self.status.success() {
            bail!(
                "exited with {}; stdout:\n{}\nstderr:\n{}",
                self.status,
                self.stdout,
                self.stderr
            );
        }
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| anyhow!("printed nothing; stderr:\n{}", self.stderr))?;
        serde_json::from_str(line)
            .with_context(|| format!("parsing {line:?}; stderr:\n{}", self.stderr))
    }
}

/// Which output stream of a [`Bounded`] child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A child process with a hard time limit: output is collected line by line on
/// background threads, [`finish`](Bounded::finish) kills it on overrun, and dropping it
/// kills it too.
#[derive(Debug)]
pub struct Bounded {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Stream, Vec<u8>)>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    started: Instant,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Bounded {
    /// Spawns `cmd` with all three standard streams piped.
    pub fn spawn(cmd: &mut Command) -> anyhow::Result<Bounded> {
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
        let (tx, lines) = mpsc::channel();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            readers.push(thread::spawn(move || forward(out, Stream::Stdout, &tx)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(thread::spawn(move || forward(err, Stream::Stderr, &tx)));
        }
        Ok(Bounded {
            stdin: child.stdin.take(),
            child,
            lines,
            stdout: Vec::new(),
            stderr: Vec::new(),
            started,
            readers,
        })
    }

    /// Process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdin, while not closed.
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.stdin.as_mut()
    }

    /// Closes the child's stdin (for children that run until end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Appends a raw line (with its newline) and returns it as text without the newline.
    fn absorb(&mut self, stream: Stream, line: &[u8]) -> String {
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(line),
            Stream::Stderr => self.stderr.extend_from_slice(line),
        }
        let text = String::from_utf8_lossy(line);
        text.strip_suffix('\n').unwrap_or(&text).to_owned()
    }

    fn collected(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// Waits up to `limit` for a line on `stream` for which `pred` holds, and returns it
    /// (all lines stay in the collected output). An error if the child exits or the time
    /// runs out first.
    pub fn wait_line(
        &mut self,
        stream: Stream,
        limit: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((s, line)) => {
                    let line = self.absorb(s, &line);
                    if s == stream && pred(&line) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!("no matching line within {limit:?}; {}", self.collected())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    bail!(
                        "exited ({status:?}) before the expected line; {}",
                        self.collected()
                    )
                }
            }
        }
    }

    /// Sends a signal (`INT`, `TERM`, ...) with `kill(1)`.
    pub fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.id().to_string())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{sig} {} failed", self.id());
        }
        Ok(())
    }

    /// Closes stdin and waits up to `limit` for the child to exit; on overrun it is
    /// killed and the result is an error with what it printed.
    pub fn finish(mut self, limit: Duration) -> anyhow::Result<Finished> {
        self.close_stdin();
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain();
                bail!(
                    "pid {} still running after {limit:?}: killed; {}",
                    self.child.id(),
                    self.collected()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let elapsed = self.started.elapsed();
        self.drain();
        let stdout_bytes = std::mem::take(&mut self.stdout);
        Ok(Finished {
            status,
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stdout_bytes,
            stderr: String::from_utf8_lossy(&self.stderr).into_owned(),
            elapsed,
        })
    }

    /// Collects the remaining output once the child has exited.
    fn drain(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        while let Ok((s, line)) = self.lines.try_recv() {
            self.absorb(s, &line);
        }
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends each line of `r` (raw bytes, newline kept) until end of file.
fn forward(r: impl std::io::Read, s: Stream, tx: &mpsc::Sender<(Stream, Vec<u8>)>) {
    let mut r = BufReader::new(r);
    loop {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if tx.send((s, line)).is_err() {
                    break;
                }
            }
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for peers that cannot bind
/// port 0 and report it).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A tshark capture of `tcp port N` on `lo`, running while the test exchanges data.
#[derive(Debug)]
pub struct LiveCapture {
    tshark: Tshark,
    proc: Option<Bounded>,
    path: PathBuf,
    port: u16,
}

/// Upper bound on any capture (`-a duration:`), in case a test never stops it.
pub const CAPTURE_LIMIT_SECS: u32 = 300;

impl LiveCapture {
    /// Starts tshark on `lo` for `tcp port <port>` and returns once it captures.
    ///
    /// `Ok(None)` when tshark is missing (see [`tshark()`]) or cannot capture (no
    /// permission), after the skip policy of [`skip_peer`].
    pub fn start(port: u16) -> anyhow::Result<Option<LiveCapture>> {
        let Some(tshark) = tshark() else {
            return Ok(None);
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "proto-live-{}-{}-{port}.pcapng",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let mut cmd = tshark.command();
        cmd.args(["-i", "lo", "-f", &format!("tcp port {port}"), "-q", "-w"])
            .arg(&path)
            .args(["-a", &format!("duration:{CAPTURE_LIMIT_SECS}")]);
        let mut proc = Bounded::spawn(&mut cmd)?;
        // tshark prints "Capture started." once dumpcap has opened the interface, set the
        // filter and created the file; the file check covers builds that log less.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match proc.wait_line(Stream::Stderr, Duration::from_millis(50), |l| {
                l.contains("Capture started")
            }) {
                Ok(_) => break,
                Err(e) if proc.child.try_wait()?.is_some() => {
                    // Typically no capture permission (needs root or CAP_NET_RAW): a
                    // missing peer, not a failure of ours.
                    let why = format!("cannot capture on lo: {e:#}");
                    skip_peer("tshark live capture", why.trim_end());
                    return Ok(None);
                }
                Err(_) if file_started(&path) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context("tshark capture did not start"))
                }
                Err(_) => {}
            }
        }
        Ok(Some(LiveCapture {
            tshark,
            proc: Some(proc),
            path,
            port,
        }))
    }

    /// The captured port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the capture (SIGINT after a short grace period for the last ACKs and FINs)
    /// and dissects it with [`DissectOptions::cotp`]; `ours` names proto's side.
    pub fn finish(self, ours: Side) -> anyhow::Result<WireReport> {
        let opts = DissectOptions::cotp(self.port);
        self.finish_with(ours, opts)
    }

    /// Like [`finish`](LiveCapture::finish) with other dissection options (e.g. with
    /// S7comm left on). TCP checksum checks are turned off: loopback frames carry
    /// unfinished checksums (offload).
    pub fn finish_with(
        mut self,
        ours: Side,
        mut opts: DissectOptions,
    ) -> anyhow::Result<WireReport> {
        thread::sleep(Duration::from_millis(300));
        let proc = self
            .proc
            .take()
            .ok_or_else(|| anyhow!("capture already stopped"))?;
        proc.signal("INT")?;
        let out = proc.finish(Duration::from_secs(20))?;
        if !file_started(&self.path) {
            bail!("tshark wrote no capture: {}", out.stderr);
        }
        for p in &mut opts.prefs {
            if p.starts_with("tcp.check_checksum") {
                *p = "tcp.check_checksum:FALSE".into();
            }
        }
        let report = self.tshark.dissect(&self.path, &opts)?;
        Ok(WireReport {
            report,
            port: self.port,
            ours,
            pcap: self.path.clone(),
            tolerated: &[],
        })
    }

    /// Stops the capture and dissects it as TCPCL on the captured port
    /// ([`DissectOptions::tcpcl`]: decode-as, two-pass, sequence analysis), tolerating
    /// [`TCPCL_TOLERATED`].
    pub fn finish_tcpcl(self, ours: Side) -> anyhow::Result<WireReport> {
        let opts = DissectOptions::tcpcl(self.port);
        let mut wire = self.finish_with(ours, opts)?;
        wire.tolerated = TCPCL_TOLERATED;
        Ok(wire)
    }

    /// Like [`finish_tcpcl`](LiveCapture::finish_tcpcl) for a session that upgraded to
    /// TLS: tshark decrypts with the key log at `keylog` (`-o tls.keylog_file:`, what
    /// `SSLKEYLOGFILE` made rustls write) and dissects the TCPCL inside, tolerating
    /// [`TCPCL_TLS_TOLERATED`].
    pub fn finish_tcpcl_tls(self, ours: Side, keylog: &Path) -> anyhow::Result<WireReport> {
        let mut opts = DissectOptions::tcpcl(self.port);
        opts.prefs
            .push(format!("tls.keylog_file:{}", keylog.display()));
        let mut wire = self.finish_with(ours, opts)?;
        wire.tolerated = TCPCL_TLS_TOLERATED;
        Ok(wire)
    }
}

fn file_started(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        drop(self.proc.take());
        if std::env::var_os(KEEP_PCAPS_ENV).is_some() {
            eprintln!("kept live capture {}", self.path.display());
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Which TCP endpoint of the captured port is proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// proto listens on the port; the peer connects to it.
    Server,
    /// proto connects to the port; the peer listens on it.
    Client,
}

/// A dissected live capture, split by sender.
#[derive(Debug, Clone)]
pub struct WireReport {
    /// tshark's report of the whole capture.
    pub report: TsharkReport,
    /// The captured (server) port.
    pub port: u16,
    /// Which side is ours.
    pub ours: Side,
    /// The capture file (deleted when the [`LiveCapture`] drops unless `PROTO_KEEP_PCAPS`).
    pub pcap: PathBuf,
    /// Expert fields that carry no verdict on our frames in this capture, with why
    /// (e.g. [`TCPCL_TOLERATED`]); counted and printed, never failed on.
    pub tolerated: &'static [(&'static str, &'static str)],
}

/// Expert items tshark raises on valid TCPCL captures of bulk bundle transfers:
///
/// - `bpv7.sub_type_unknown` (warning): tshark has no dissector for the payload of the
///   bundle's destination service — a limit of tshark, not a defect of the bundle.
/// - `tcp.analysis.window_full`, `tcp.analysis.zero_window` (warnings): TCP flow
///   control — the sender filled the receiver's window, the receiver's buffer was full
///   for a moment. Backpressure working on loopback, not a protocol error.
/// - `tcp.options.sack.dsack` (warning): on a loaded machine the kernel's tail loss
///   probe retransmits a segment whose ACK was merely late (tshark: a note-level
///   retransmission ~7 ms after the original), and the receiver reports the duplicate
///   with a D-SACK. TCP's own loss recovery, not proto's bytes.
pub const TCPCL_TOLERATED: &[(&str, &str)] = &[
    (
        "bpv7.sub_type_unknown",
        "tshark has no dissector for the test payload's destination service",
    ),
    (
        "tcp.analysis.window_full",
        "TCP flow control: the sender filled the receiver's window",
    ),
    (
        "tcp.analysis.zero_window",
        "TCP flow control: the receiver's buffer was full for a moment",
    ),
    (
        "tcp.options.sack.dsack",
        "kernel loss recovery: a tail-loss-probe retransmission on busy loopback, D-SACKed",
    ),
];

/// [`TCPCL_TOLERATED`] plus tshark 4.0's transfer accounting over TLS, which miscounts
/// when two XFER_SEGMENTs of one transfer are decrypted from one frame: it gives the
/// second the same base length as the first (`seen_len` of the END segment = total −
/// one segment), then reports the END as missing and the total as not matching the
/// Transfer Length extension, although the decrypted segments' flags and lengths are
/// right. Tests tolerating these must check the transfers from the decoded fields
/// themselves.
pub const TCPCL_TLS_TOLERATED: &[(&str, &str)] = &[
    (
        "bpv7.sub_type_unknown",
        "tshark has no dissector for the test payload's destination service",
    ),
    (
        "tcp.analysis.window_full",
        "TCP flow control: the sender filled the receiver's window",
    ),
    (
        "tcp.analysis.zero_window",
        "TCP flow control: the receiver's buffer was full for a moment",
    ),
    (
        "tcp.options.sack.dsack",
        "kernel loss recovery: a tail-loss-probe retransmission on busy loopback, D-SACKed",
    ),
    (
        "tcpcl.v4.xfer_seg_missing_end",
        "tshark miscounts two segments decrypted from one frame; transfers checked from the decoded fields",
    ),
    (
        "tcpcl.xfer_mismatch_total_len",
        "tshark miscounts two segments decrypted from one frame; transfers checked from the decoded fields",
    ),
];

impl WireReport {
    /// Whether proto sent `p`.
    pub fn ours(&self, p: &Packet) -> bool {
        let from_server = p.uint("tcp.srcport") == Some(u64::from(self.port));
        from_server == (self.ours == Side::Server)
    }

    /// Frames proto sent.
    pub fn our_packets(&self) -> impl Iterator<Item = &Packet> + '_ {
        self.report.packets.iter().filter(|p| self.ours(p))
    }

    /// Frames the peer sent.
    pub fn peer_packets(&self) -> impl Iterator<Item = &Packet> + '_ {
        self.report.packets.iter().filter(|p| !self.ours(p))
    }

    fn problems_of(
        &self,
        ours: bool,
        keep: impl Fn(Severity) -> bool,
        allowed: &[&str],
    ) -> Vec<String> {
        let mut out = Vec::new();
        let tolerated = |field: &str| self.tolerated.iter().any(|(f, _)| *f == field);
        for p in self.report.packets.iter().filter(|p| self.ours(p) == ours) {
            if p.is_malformed() {
                out.push(format!("frame {} is malformed", p.number));
            }
            out.extend(
                p.expert
                    .iter()
                    .filter(|e| keep(e.severity))
                    .filter(|e| !BENIGN_EXPERT_FIELDS.contains(&e.field.as_str()))
                    .filter(|e| !allowed.contains(&e.field.as_str()))
                    .filter(|e| !tolerated(&e.field))
                    .map(ToString::to_string),
            );
        }
        out
    }

    /// RFC 9174 §4.4 / RFC 8446 §6.1: the frame numbers of the first TLS close_notify
    /// alert (`tls.alert_message.desc == 0`, decrypted) and of the first FIN sent by one
    /// side (`ours`), failing unless both exist and the alert comes first (or rides on the
    /// FIN's frame).
    pub fn close_notify_before_fin(&self, ours: bool) -> anyhow::Result<(u32, u32)> {
        let mine = || {
            self.report
                .packets
                .iter()
                .filter(move |p| self.ours(p) == ours)
        };
        let notify = mine()
            .find(|p| p.values("tls.alert_message.desc").contains(&"0"))
            .map(|p| p.number);
        let fin = mine()
            .find(|p| matches!(p.first("tcp.flags.fin"), Some("1" | "True" | "true")))
            .map(|p| p.number);
        match (notify, fin) {
            (Some(n), Some(f)) if n <= f => Ok((n, f)),
            other => anyhow::bail!(
                "close_notify (frame {:?}) not before FIN (frame {:?}) from {}",
                other.0,
                other.1,
                if ours { "proto" } else { "the peer" }
            ),
        }
    }

    /// Malformed frames and warning/error expert items in *every* frame, whoever sent
    /// it (for captures where both ends are proto).
    pub fn all_problems(&self) -> Vec<String> {
        let mut all = self.problems_of(true, |s| s >= Severity::Warning, &[]);
        all.extend(self.problems_of(false, |s| s >= Severity::Warning, &[]));
        all
    }

    /// How many expert items of the [`tolerated`](WireReport::tolerated) fields the
    /// capture has, per field (printed by the assertions).
    fn tolerated_counts(&self) -> Vec<(&'static str, &'static str, usize)> {
        self.tolerated
            .iter()
            .map(|(f, why)| {
                let n = self.report.expert_items().filter(|e| e.field == *f).count();
                (*f, *why, n)
            })
            .filter(|(_, _, n)| *n > 0)
            .collect()
    }

    /// The TCPCL PDUs one side sent, one [`Layer`] each, in order (contact headers
    /// included; over TLS, those tshark decrypted). tshark puts several messages of one
    /// frame into one `tcpcl` tree (an array of `tcpcl.v4.mhdr`); they are split here at
    /// each message type / contact header magic.
    pub fn tcpcl_pdus(&self, ours: bool) -> Vec<Layer> {
        let mut out = Vec::new();
        for p in self.report.packets.iter().filter(|p| self.ours(p) == ours) {
            for l in p.pdus("tcpcl") {
                let mut cur: Option<Layer> = None;
                for (k, v) in &l.fields {
                    if k == "tcpcl.v4.mhdr.type" || k == "tcpcl.contact_hdr.magic" {
                        out.extend(cur.take());
                        cur = Some(Layer {
                            name: "tcpcl".to_owned(),
                            fields: Vec::new(),
                        });
                    }
                    if let Some(c) = cur.as_mut() {
                        c.fields.push((k.clone(), v.clone()));
                    }
                }
                out.extend(cur);
            }
        }
        out
    }

    /// The TCPCLv4 message types (`tcpcl.v4.mhdr.type`) one side sent, in order.
    pub fn tcpcl_types(&self, ours: bool) -> Vec<u64> {
        self.tcpcl_pdus(ours)
            .iter()
            .filter_map(|l| l.uint("tcpcl.v4.mhdr.type"))
            .collect()
    }

    /// The TCPCL messages of type `ty` one side sent, in order.
    pub fn tcpcl_messages(&self, ours: bool, ty: u64) -> Vec<Layer> {
        self.tcpcl_pdus(ours)
            .into_iter()
            .filter(|l| l.uint("tcpcl.v4.mhdr.type") == Some(ty))
            .collect()
    }

    /// Fails unless no frame at all (ours or the peer's — both are proto) is malformed
    /// or carries a warning/error expert item, except the expert fields of `known` —
    /// `(field, why)` pairs for a known issue of ours, each printed as `KNOWN ISSUE`
    /// when it shows up; prints the summary under `label`.
    pub fn assert_all_clean_except(
        &self,
        label: &str,
        known: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        eprintln!(
            "[{label}] wire: {} frames, {} malformed",
            self.report.packets.len(),
            self.report.malformed().len()
        );
        for (f, why, n) in self.tolerated_counts() {
            eprintln!("[{label}] tolerated {n}x {f} ({why})");
        }
        let fields: Vec<&str> = known.iter().map(|(f, _)| *f).collect();
        let mut problems = self.problems_of(true, |s| s >= Severity::Warning, &fields);
        problems.extend(self.problems_of(false, |s| s >= Severity::Warning, &fields));
        for p in self.all_problems().iter().filter(|p| !problems.contains(p)) {
            let why = known
                .iter()
                .find(|(f, _)| p.contains(f))
                .map_or("", |(_, why)| why);
            eprintln!("[{label}] KNOWN ISSUE on our frame: {p} ({why})");
        }
        if !problems.is_empty() {
            bail!(
                "[{label}] tshark {:?}:\n  {}\n(set {KEEP_PCAPS_ENV}=1 to keep {})",
                self.report.args,
                problems.join("\n  "),
                self.pcap.display()
            );
        }
        Ok(())
    }

    /// Malformed frames and warning/error expert items among the frames proto sent.
    pub fn our_problems(&self) -> Vec<String> {
        self.problems_of(true, |s| s >= Severity::Warning, &[])
    }

    /// Malformed frames and expert items of note level and above among the peer's
    /// frames: its quirks, reported rather than failed on.
    pub fn peer_findings(&self) -> Vec<String> {
        self.problems_of(false, |s| s >= Severity::Note, &[])
    }

    /// Note-level items among our frames (reported, not failed on).
    pub fn our_notes(&self) -> Vec<String> {
        self.problems_of(true, |s| s == Severity::Note, &[])
            .into_iter()
            .filter(|s| !s.ends_with("is malformed"))
            .collect()
    }

    /// The COTP TPDU codes (tshark's `cotp.type`, code >> 4) of one side, in order.
    pub fn cotp_types(&self, ours: bool) -> Vec<u64> {
        self.report
            .packets
            .iter()
            .filter(|p| self.ours(p) == ours)
            .flat_map(|p| p.pdus("cotp").filter_map(|l| l.uint("cotp.type")))
            .collect()
    }

    /// The first COTP PDU of type `ty` (e.g. `0x0d` for CC) sent by one side.
    pub fn first_cotp(&self, ours: bool, ty: u64) -> Option<&Layer> {
        self.report
            .packets
            .iter()
            .filter(|p| self.ours(p) == ours)
            .flat_map(|p| p.pdus("cotp"))
            .find(|l| l.uint("cotp.type") == Some(ty))
    }

    /// All `tpkt.length` values of one side.
    pub fn tpkt_lengths(&self, ours: bool) -> Vec<u64> {
        self.report
            .packets
            .iter()
            .filter(|p| self.ours(p) == ours)
            .flat_map(|p| p.pdus("tpkt").filter_map(|l| l.uint("tpkt.length")))
            .collect()
    }

    /// Fails with the listed problems if proto's frames are not clean, after printing a
    /// summary (frame counts, peer findings) to stderr under `label`.
    pub fn assert_ours_clean(&self, label: &str) -> anyhow::Result<()> {
        self.assert_ours_clean_except(label, &[])
    }

    /// Like [`assert_ours_clean`](WireReport::assert_ours_clean), tolerating the expert
    /// fields of `known` — `(field, why)` pairs for a known issue of ours, each printed
    /// as `KNOWN ISSUE` when it shows up so it stays visible.
    pub fn assert_ours_clean_except(
        &self,
        label: &str,
        known: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let ours = self.our_packets().count();
        let peer = self.peer_packets().count();
        eprintln!(
            "[{label}] wire: {} frames ({ours} ours, {peer} peer's), {} malformed",
            self.report.packets.len(),
            self.report.malformed().len()
        );
        for f in self.peer_findings() {
            eprintln!("[{label}] peer quirk on the wire: {f}");
        }
        for f in self.our_notes() {
            eprintln!("[{label}] note on our frame: {f}");
        }
        for (f, why, n) in self.tolerated_counts() {
            eprintln!("[{label}] tolerated {n}x {f} ({why})");
        }
        if ours == 0 {
            bail!(
                "[{label}] no frame from proto in the capture {}",
                self.pcap.display()
            );
        }
        let all = self.our_problems();
        let fields: Vec<&str> = known.iter().map(|(f, _)| *f).collect();
        let problems = self.problems_of(true, |s| s >= Severity::Warning, &fields);
        for p in all.iter().filter(|p| !problems.contains(p)) {
            let why = known
                .iter()
                .find(|(f, _)| p.contains(f))
                .map_or("", |(_, why)| why);
            eprintln!("[{label}] KNOWN ISSUE on our frame: {p} ({why})");
        }
        if !problems.is_empty() {
            bail!(
                "[{label}] tshark {:?} on our frames:\n  {}\n(set {KEEP_PCAPS_ENV}=1 to keep {})",
                self.report.args,
                problems.join("\n  "),
                self.pcap.display()
            );
        }
        Ok(())
    }
}

/// Writes `data` to the stdin of `child` (helper for peers fed over stdin).
pub fn feed(child: &mut Bounded, data: &[u8]) -> anyhow::Result<()> {
    let stdin = child
        .stdin()
        .ok_or_else(|| anyhow!("stdin already closed"))?;
    stdin.write_all(data)?;
    stdin.flush()?;
    Ok(())
}

/// The Python peer programs. Each takes `host port ...` arguments and prints one JSON
/// line on success; failures exit non-zero with a traceback.
pub mod scripts {
    /// icspacket client: connect 0100→0102 proposing TPDU 1024, echo each message of
    /// the lengths in `argv[3]` (comma-separated), close. Prints
    /// `{"tpdu_size": n, "echo": [{"len", "got", "equal", "ms"}...]}`.
    pub const ICSPACKET_ECHO: &str = r#"
import json, sys, time
from icspacket.proto.cotp.connection import COTP_Connection
from icspacket.proto.cotp.structs import TPDU_Size
from icspacket.proto.tpkt import tpktsock

host, port, sizes = sys.argv[1], int(sys.argv[2]), [int(n) for n in sys.argv[3].split(",")]
c = COTP_Connection(sock_cls=tpktsock, src_tsap="0100", dst_tsap="0102",
                    max_tpdu_size=TPDU_Size.SIZE_1024, timeout=10)
c.connect((host, port))
out = {"tpdu_size": getattr(c, "_COTP_Connection__tpdu_size", None), "echo": []}
for n in sizes:
    msg = bytes((i * 13 + n) & 0xFF for i in range(n))
    t = time.monotonic()
    c.send_data(msg)
    back = c.recv_data()
    out["echo"].append({"len": n, "got": len(back), "equal": back == msg,
                        "ms": round((time.monotonic() - t) * 1000, 2)})
c.close()
print(json.dumps(out))
"#;

    /// icspacket client calling TSAP `argv[3]`; prints `{"refused": bool, "error": str,
    /// "reason": int|null}`.
    pub const ICSPACKET_CONNECT: &str = r#"
import json, re, sys
from icspacket.proto.cotp.connection import COTP_Connection
from icspacket.proto.cotp.structs import TPDU_Size
from icspacket.proto.tpkt import tpktsock

host, port, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = COTP_Connection(sock_cls=tpktsock, src_tsap="0100", dst_tsap=dst,
                    max_tpdu_size=TPDU_Size.SIZE_1024, timeout=10)
try:
    c.connect((host, port))
except ConnectionRefusedError as e:
    m = re.search(r": (\d+)>", str(e))
    print(json.dumps({"refused": True, "error": str(e),
                      "reason": int(m.group(1)) if m else None}))
    sys.exit(0)
c.close()
print(json.dumps({"refused": False, "error": "", "reason": None}))
"#;

    /// python-snap7 ISO-on-TCP client: connect 0100→0102 proposing TPDU 1024, echo each
    /// message of the lengths in `argv[3]` (one DT each: snap7 does not segment), send
    /// its DR. Prints `{"pdu_size": n, "dst_ref": n, "echo": [...], "ms": f}`.
    pub const SNAP7_CLIENT: &str = r#"
import json, sys, time
from snap7.connection import ISOTCPConnection, TPDUSize

host, port = sys.argv[1], int(sys.argv[2])
sizes = [int(n) for n in sys.argv[3].split(",") if n]
t = time.monotonic()
c = ISOTCPConnection(host, port, local_tsap=0x0100, remote_tsap=0x0102,
                     tpdu_size=TPDUSize.S_1024)
c.connect(timeout=5)
out = {"pdu_size": c.pdu_size, "dst_ref": c.dst_ref, "echo": []}
for n in sizes:
    msg = bytes((i * 7 + n) & 0xFF for i in range(n))
    c.send_data(msg)
    back = c.receive_data()
    out["echo"].append({"len": n, "got": len(back), "equal": back == msg})
c.disconnect()
out["ms"] = round((time.monotonic() - t) * 1000, 2)
print(json.dumps(out))
"#;

    /// python-snap7 S7 server on 127.0.0.1:`argv[1]`; prints `ready` once listening and
    /// stops when stdin closes.
    pub const SNAP7_SERVER: &str = r#"
import sys
import snap7
s = snap7.server.Server()
s.start_to("127.0.0.1", int(sys.argv[1]))
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    s.stop()
"#;
}
