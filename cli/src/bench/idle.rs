//! Idle sessions: what each one costs (`tcpcl-idle`, both ends in this process), and
//! how many a `proto tcpcl listen` process holds while still serving a good client
//! quickly (`tcpcl-idle-listener`, the listener a child process).

use super::report::{Kind, Outcome};
use super::tcpcl::{stop, Setup, NODE_RX, NODE_TX, T};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A `/proc/<pid>/status` field: `kB` figures in bytes, counts as they are.
fn status_of(pid: Option<u32>, field: &str) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let mut parts = line.split_whitespace().skip(1);
    let v: f64 = parts.next()?.parse().ok()?;
    Some(if parts.next() == Some("kB") {
        v * 1024.0
    } else {
        v
    })
}

/// A `/proc/self/status` field in bytes (`VmHWM`, `VmRSS`).
pub(crate) fn status_bytes(field: &str) -> Option<f64> {
    status_of(None, field)
}

/// Threads of this process (`/proc/self/status`).
fn threads_of_self() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("Threads:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `tcpcl-idle`: `n` established sessions that do nothing, both ends in this process
/// (2n sessions). Reports the resident memory and threads each session adds; "ours"
/// is RSS per session in bytes, the baseline the 32 KiB target.
pub(crate) fn idle(setup: &Setup, n: usize) -> Result<Outcome> {
    let rss0 = status_bytes("VmRSS:").unwrap_or(0.0);
    let threads0 = threads_of_self().unwrap_or(0.0);
    let rx = setup.agent(NODE_RX)?;
    let addr = rx.listen("127.0.0.1:0")?;
    let tx = setup.agent(NODE_TX)?;
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(tx.connect(addr)?);
    }
    for h in &handles {
        h.wait_established(T)?;
    }
    // Let every passive side finish its own establishment.
    let deadline = Instant::now() + T;
    while rx
        .session_states()
        .iter()
        .filter(|(_, s)| *s == proto_net::tcpcl::State::Established)
        .count()
        < n
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "passive sessions not established"
        );
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200));
    let rss = status_bytes("VmRSS:").unwrap_or(0.0);
    let threads1 = threads_of_self().unwrap_or(0.0);
    let sessions = (2 * n) as f64;
    let per_session = (rss - rss0) / sessions;
    let threads_per = (threads1 - threads0) / sessions;
    if std::env::var_os("PROTO_BENCH_PAUSE").is_some() {
        eprintln!("PAUSE {}", std::process::id());
        thread::sleep(Duration::from_secs(20));
    }
    drop(handles);
    stop(&[&tx, &rx]);
    Ok(Outcome {
        scenario: setup.name("tcpcl-idle"),
        kind: Kind::Memory,
        ours: per_session,
        baseline: 32.0 * 1024.0,
        extra: vec![
            ("sessions", sessions),
            ("threads_per_session", threads_per),
            ("rss_mib", rss / f64::from(1 << 20)),
        ],
        target: Some((1.0, false)),
        trials: vec![],
    })
}

/// `tcpcl-idle-listener`: a `proto tcpcl listen` child process holds `n` idle
/// sessions opened from this process; then a new client connects and sends a 64 KiB
/// bundle, which must be acknowledged within a second. "Ours" is that time, the
/// baseline the one-second budget; the listener's threads and memory per session are
/// reported beside it.
pub(crate) fn listener(n: usize) -> Result<Outcome> {
    let exe = std::env::current_exe().context("own executable")?;
    let dir = std::env::temp_dir().join(format!("proto-bench-idle-{}", std::process::id()));
    let mut child = Command::new(exe)
        .args([
            "tcpcl",
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--no-tls",
            "--node-id",
        ])
        .arg(NODE_RX)
        .arg("--out-dir")
        .arg(&dir)
        .args(["--max-sessions", &(n + 16).to_string()])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting proto tcpcl listen")?;
    let pid = child.id();
    let result = (|| -> Result<Outcome> {
        let mut err = BufReader::new(child.stderr.take().context("listener stderr")?);
        let mut line = String::new();
        err.read_line(&mut line)?;
        let addr: std::net::SocketAddr = line
            .trim()
            .strip_prefix("listening for TCPCL on ")
            .with_context(|| format!("unexpected listener output {line:?}"))?
            .parse()?;
        thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        let rss0 = status_of(Some(pid), "VmRSS:").unwrap_or(0.0);
        let mut cfg = proto_net::tcpcl::Config::with_node_id(NODE_TX);
        cfg.tls_enable = false;
        cfg.max_sessions = n + 16;
        cfg.contact_timeout = 60.0;
        let tx = proto_net::tcpcl::Agent::new(cfg)?;
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            handles.push(tx.connect(addr)?);
        }
        for h in &handles {
            h.wait_established(T)?;
        }
        thread::sleep(Duration::from_millis(500));
        let threads = status_of(Some(pid), "Threads:").unwrap_or(0.0);
        let rss = status_of(Some(pid), "VmRSS:").unwrap_or(0.0);
        // A good client among the idle crowd.
        let good = Setup::new(false)?.agent("dtn://bench-good/")?;
        let start = Instant::now();
        let s = good.connect(addr)?;
        s.wait_established(T)?;
        s.send_bytes(vec![0x5a; 64 << 10])?;
        s.wait_sent(T)?;
        let took = start.elapsed().as_secs_f64();
        stop(&[&good, &tx]);
        Ok(Outcome {
            scenario: "tcpcl-idle-listener".into(),
            kind: Kind::Latency,
            ours: took,
            baseline: 1.0,
            extra: vec![
                ("sessions", n as f64),
                ("listener_threads", threads),
                ("listener_rss_mib", rss / f64::from(1 << 20)),
                ("listener_kib_per_session", (rss - rss0) / 1024.0 / n as f64),
            ],
            target: Some((1.0, false)),
            trials: vec![],
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
