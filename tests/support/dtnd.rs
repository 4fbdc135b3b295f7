//! dtn7-rs's `dtnd` on loopback for interop tests: started on just-freed ports (again
//! on fresh ones when it loses a port race), fed with `dtnsend`, read with `dtnrecv`,
//! stopped with its log reported. Every dtn7 process runs under a hard time limit.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};

use crate::peers::{free_port, Bounded, Dtn7, Finished, Stream};

/// Hard limit on any dtn7 helper process (`dtnsend`, `dtnrecv`).
const TOOL_LIMIT: Duration = Duration::from_secs(30);

/// dtnd's working directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<TempDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "proto-dtnd-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> Result<PathBuf> {
        let p = self.0.join(name);
        std::fs::write(&p, data)?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `dtnd` on loopback: TCPCLv4 on `tcp_port`, web API on `web_port`, node
/// `dtn://<node>/` with the endpoint `incoming`, no neighbour discovery.
pub struct Dtnd {
    proc: Option<Bounded>,
    dtn7: Dtn7,
    /// dtnd's TCPCLv4 port on 127.0.0.1.
    pub tcp_port: u16,
    /// dtnd's web API port (what `dtnsend`/`dtnrecv` talk to).
    pub web_port: u16,
    dir: TempDir,
    label: String,
}

impl Dtnd {
    /// Starts dtnd; `static_peer` is a peer URL such as `tcp://127.0.0.1:4556/proto`
    /// (dtnd's default epidemic routing then forwards every bundle to it).
    ///
    /// dtnd cannot bind port 0, so its ports are just-freed ones; when another test
    /// grabs one in between (dtnd exits with "Address already in use"), it starts
    /// again on fresh ports.
    pub fn start(dtn7: &Dtn7, node: &str, static_peer: Option<&str>, label: &str) -> Result<Dtnd> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Dtnd::try_start(dtn7, node, static_peer, label) {
                Err(e) if attempt < 5 && format!("{e:#}").contains("Address already in use") => {
                    eprintln!("[{label}] dtnd lost a port race (attempt {attempt}); retrying");
                }
                r => return r,
            }
        }
    }

    fn try_start(dtn7: &Dtn7, node: &str, static_peer: Option<&str>, label: &str) -> Result<Dtnd> {
        let dir = TempDir::new("dtnd")?;
        let tcp_port = free_port()?;
        let web_port = loop {
            let p = free_port()?;
            if p != tcp_port {
                break p;
            }
        };
        let mut cmd = Command::new(dtn7.bin("dtnd"));
        cmd.current_dir(dir.path())
            .args(["-n", node, "-e", "incoming", "--disable_nd", "-d"])
            .arg("-W")
            .arg(dir.path())
            .args(["-w", &web_port.to_string()])
            .args(["-C", &format!("tcp:port={tcp_port}:bind=127.0.0.1")]);
        if let Some(peer) = static_peer {
            cmd.args(["-s", peer]);
        }
        let mut proc = Bounded::spawn(&mut cmd)?;
        // The web API comes up after the convergence layers are set up.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", web_port)).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                bail!("dtnd did not start its web API on {web_port} within 20 s");
            }
            // Collects output and notices an early exit.
            match proc.wait_line(Stream::Stderr, Duration::from_millis(50), |_| false) {
                Err(e) if e.to_string().contains("exited") => return Err(e.context("dtnd")),
                _ => {}
            }
        }
        Ok(Dtnd {
            proc: Some(proc),
            dtn7: dtn7.clone(),
            tcp_port,
            web_port,
            dir,
            label: label.to_owned(),
        })
    }

    /// Runs one of dtn7's client tools against this dtnd's web API.
    pub fn tool(&self, name: &str, args: &[&str]) -> Result<Finished> {
        let mut cmd = Command::new(self.dtn7.bin(name));
        cmd.args(["-p", &self.web_port.to_string()]).args(args);
        let out = Bounded::spawn(&mut cmd)?.finish(TOOL_LIMIT)?;
        ensure!(
            out.status.success(),
            "{name} {args:?} failed ({}): {}",
            out.status,
            out.stderr
        );
        Ok(out)
    }

    /// `dtnsend -r <dest> FILE`: dtnd builds a bundle with `payload` and routes it.
    pub fn send(&self, dest: &str, payload: &[u8]) -> Result<String> {
        let file = self.dir.write("payload.bin", payload)?;
        let out = self.tool("dtnsend", &["-r", dest, &file.to_string_lossy()])?;
        Ok(out.stdout.trim().to_owned())
    }

    /// Polls `dtnrecv -e <endpoint> -r` until dtnd hands out a bundle, and returns its
    /// raw bytes (the whole bundle as dtnd stored it).
    pub fn recv(&self, endpoint: &str, within: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + within;
        loop {
            let out = self.tool("dtnrecv", &["-e", endpoint, "-r"])?;
            if !out.stdout_bytes.is_empty() {
                return Ok(out.stdout_bytes);
            }
            if Instant::now() >= deadline {
                bail!("no bundle for endpoint {endpoint} within {within:?}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops dtnd and returns its log (stderr).
    pub fn stop(mut self) -> String {
        let Some(proc) = self.proc.take() else {
            return String::new();
        };
        let _ = proc.signal("TERM");
        match proc.finish(Duration::from_secs(10)) {
            Ok(out) => out.stderr,
            Err(e) => format!("{e:#}"),
        }
    }

    /// Stops dtnd and prints the error-level lines of its log (its view of the session).
    pub fn stop_and_report(self) -> String {
        let label = self.label.clone();
        let log = self.stop();
        for line in log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        {
            eprintln!("[{label}] dtnd log: {}", line.trim());
        }
        log
    }
}
