//! Fault-injection soak of the `proto` binary (issue 11): concurrent `proto tcpcl send`
//! / `proto cotp send` processes into one `listen --out-dir`, some through a proxy that
//! resets, closes or hangs the connection at a random byte, some SIGKILLed at a random
//! moment, and (TCPCL) the listener SIGTERMed mid-run and restarted on the same port
//! and out-dir.
//!
//! Invariants: every file a sender reported acknowledged is in the out-dir exactly
//! once, byte-exact; every file under a final name is a whole sent file (never a part,
//! also after SIGKILL and the restart), at most once; no `.part` file is left; a
//! surviving sender that did not get everything acknowledged exits non-zero with an
//! `error:` line (never Rust debug text); the listener keeps serving and exits 0; its
//! threads and descriptors return to their level (`/proc/PID`). Seeded:
//! `PROTO_SOAK_SEED` replays the plan (the seed is printed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use proto_tests::child::{ChildGuard, Finished};
use proto_tests::cli::{cotp_listen, proto, tcpcl_listen, tcpcl_listen_on};
use proto_tests::soak::{self, fd_count, status_of, Fault, FaultProxy, Rng};
use proto_tests::tcpcl::Gen;
use sha2::{Digest, Sha256};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_proto"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("soak_cli_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("src")).unwrap();
    d
}

fn sha(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// One source file: its path, length and digest.
struct Source {
    path: PathBuf,
    len: u64,
    digest: Vec<u8>,
}

/// `n` files of the soak's sizes (up to `max`) in `dir/src`.
fn sources(dir: &Path, n: usize, max: u64, rng: &mut Rng) -> (Vec<Source>, u64) {
    let mut total = 0;
    let v = (0..n)
        .map(|i| {
            let len = soak::size(rng, max, 64 << 10);
            let mut data = Vec::with_capacity(len as usize);
            std::io::copy(&mut Gen::new(len, rng.next_u64()), &mut data).unwrap();
            // Distinct even when tiny: the index leads.
            if data.len() >= 4 {
                data[..4].copy_from_slice(&(i as u32).to_be_bytes());
            }
            total += len;
            let path = dir.join("src").join(format!("f{i:04}.bin"));
            std::fs::write(&path, &data).unwrap();
            Source {
                path,
                len,
                digest: sha(&data),
            }
        })
        .collect();
    (v, total)
}

/// A sender run: which files, through which fault, killed or not.
#[derive(Clone)]
struct Batch {
    files: Vec<usize>,
    fault: Fault,
    kill_after: Option<Duration>,
}

/// What a sender run left.
struct Run {
    batch: Batch,
    killed: bool,
    out: Finished,
}

/// Splits the first `n` files into batches of 1–4, a quarter with a proxy fault at a
/// random byte of the batch's traffic and a tenth SIGKILLed after a random delay.
fn plan(src: &[Source], n: usize, rng: &mut Rng) -> VecDeque<Batch> {
    let mut files: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        files.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut batches = VecDeque::new();
    while !files.is_empty() {
        let take = (1 + rng.below(4) as usize).min(files.len());
        let f: Vec<usize> = files.drain(..take).collect();
        // The files plus a few hundred bytes of headers and handshake.
        let traffic: u64 = f.iter().map(|&i| src[i].len + 64).sum::<u64>() + 200;
        let at = rng.below(traffic);
        let fault = match rng.below(20) {
            0 => Fault::Hang(at),
            1 => Fault::Close(at),
            2..=4 => Fault::Reset(at),
            _ => Fault::None,
        };
        let kill_after = rng
            .chance(0.1)
            .then(|| Duration::from_millis(20 + rng.below(400)));
        batches.push_back(Batch {
            files: f,
            fault,
            kill_after,
        });
    }
    batches
}

/// Runs the batches on `slots` concurrent senders; `cmd` builds one sender's command
/// (address, files); `between` runs after each sender, with the count so far. No
/// sender starts while `gate` is held for writing (a listener restarting).
fn run_all(
    batches: VecDeque<Batch>,
    slots: usize,
    proxy: &Arc<FaultProxy>,
    direct: &str,
    cmd: &(dyn Fn(&str, &[usize]) -> Command + Sync),
    between: &(dyn Fn(usize) + Sync),
    gate: &RwLock<()>,
) -> Vec<Run> {
    let queue = Mutex::new(batches);
    let runs = Mutex::new(Vec::new());
    let done = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..slots {
            s.spawn(|| loop {
                let Some(batch) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                let to = if batch.fault == Fault::None {
                    direct.to_string()
                } else {
                    // The proxy hands out faults in accept order, so two proxied
                    // senders starting together may swap theirs: the mix holds, not
                    // which run got which (the checks do not depend on it).
                    proxy.push(batch.fault);
                    proxy.addr().to_string()
                };
                drop(
                    gate.read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                let child = ChildGuard::spawn(&mut cmd(&to, &batch.files));
                let mut killed = false;
                if let Some(after) = batch.kill_after {
                    std::thread::sleep(after);
                    let mut c = child;
                    if c.wait_timeout(Duration::ZERO).is_none() {
                        c.signal("KILL");
                        killed = true;
                    }
                    let out = c.finish(Duration::from_secs(60));
                    runs.lock().unwrap().push(Run { batch, killed, out });
                } else {
                    let out = child.finish(Duration::from_secs(60));
                    runs.lock().unwrap().push(Run { batch, killed, out });
                }
                let n = {
                    let mut d = done.lock().unwrap();
                    *d += 1;
                    *d
                };
                between(n);
            });
        }
    });
    runs.into_inner().unwrap()
}

/// Checks the out-dir against the sources and the senders' reports; returns how many
/// files it holds.
fn check_out_dir(
    out: &Path,
    src: &[Source],
    runs: &[Run],
    acked: &dyn Fn(&Run, usize) -> bool,
) -> usize {
    // Files of 0-3 bytes may share contents: such files form one group.
    let mut group: HashMap<&[u8], usize> = HashMap::new();
    for s in src {
        *group.entry(s.digest.as_slice()).or_default() += 1;
    }
    let mut stored: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut bad = Vec::new();
    let mut n = 0;
    for e in std::fs::read_dir(out).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            bad.push(format!("left behind: {name}"));
            continue;
        }
        n += 1;
        let data = std::fs::read(e.path()).unwrap();
        let d = sha(&data);
        if group.contains_key(d.as_slice()) {
            *stored.entry(d).or_default() += 1;
        } else {
            bad.push(format!(
                "{name} ({} B) is not a whole sent file",
                data.len()
            ));
        }
    }
    for (d, c) in &stored {
        if *c > group[d.as_slice()] {
            bad.push(format!(
                "{c} copies of a file sent {} time(s)",
                group[d.as_slice()]
            ));
        }
    }
    let mut delivered: HashMap<&[u8], usize> = HashMap::new();
    for r in runs {
        let ok = r.out.code() == Some(0);
        if !ok && !r.killed {
            let text = &r.out.stderr;
            if !text.lines().any(|l| l.starts_with("error: ")) || text.contains(" { ") {
                bad.push(format!("a failed sender did not say why clearly: {text}"));
            }
        }
        for &f in &r.batch.files {
            if acked(r, f) {
                *delivered.entry(src[f].digest.as_slice()).or_default() += 1;
            }
        }
    }
    for (d, want) in delivered {
        let got = stored.get(d).copied().unwrap_or(0);
        if got < want {
            let names: Vec<_> = src
                .iter()
                .filter(|s| s.digest == d)
                .map(|s| s.path.display().to_string())
                .collect();
            bad.push(format!(
                "{names:?}: {want} reported delivered, {got} stored"
            ));
        }
    }
    assert!(bad.is_empty(), "{} violations: {bad:#?}", bad.len());
    n
}

/// Threads and descriptors of a listener once they settle to `base` (bounded).
fn settle(pid: u32, base: (u64, usize)) -> (u64, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = (status_of(pid, "Threads"), fd_count(pid));
        if (now.0 <= base.0 && now.1 <= base.1) || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tcpcl_cli_soak_with_kills_resets_and_a_listener_restart() {
    let started = Instant::now();
    let seed = soak::seed("soak_cli tcpcl");
    let mut rng = Rng::new(seed);
    let dir = tmpdir("tcpcl");
    let out = dir.join("out");
    // The last file is the probe sent after the faults.
    let (src, bytes) = sources(&dir, 161, 8 << 20, &mut rng);
    let listen_args = ["--node-id", "dtn://rx/", "--out-dir", out.to_str().unwrap()];
    let (first, addr) = tcpcl_listen(bin(), &listen_args);
    let listener = Mutex::new(Some(first));
    let proxy = Arc::new(FaultProxy::start(addr.parse().unwrap()));
    let probe = src.len() - 1;
    let batches = plan(&src, probe, &mut rng);
    let restart_at = batches.len() / 3;
    let paths: Vec<String> = src.iter().map(|s| s.path.display().to_string()).collect();
    let cmd = |to: &str, files: &[usize]| {
        let mut c = proto(bin());
        c.env("RUST_LOG", "info")
            .args(["tcpcl", "send", "--to", to, "--node-id", "dtn://tx/"])
            .args(files.iter().map(|&f| paths[f].as_str()));
        c
    };
    let restarted = Mutex::new(None);
    let gate = RwLock::new(());
    // SIGTERM to the listener once a third of the senders ran, then a restart on the
    // same port and out-dir; senders meanwhile fail to connect and must say so.
    let between = |n: usize| {
        if n != restart_at {
            return;
        }
        // Senders already running meet the shutdown; new ones wait for the restart.
        let _restarting = gate.write().unwrap();
        let old = listener.lock().unwrap().take().unwrap();
        old.signal("TERM");
        let end = old.finish(Duration::from_secs(30));
        assert_eq!(
            end.code(),
            Some(0),
            "listener after SIGTERM: {}",
            end.stderr
        );
        let (l, _) = tcpcl_listen_on(bin(), &addr, &listen_args);
        let base = (status_of(l.id(), "Threads"), fd_count(l.id()));
        *restarted.lock().unwrap() = Some(base);
        *listener.lock().unwrap() = Some(l);
    };
    let runs = run_all(batches, 8, &proxy, &addr, &cmd, &between, &gate);

    // The listener keeps serving: a clean send after everything.
    let last = cmd(&addr, &[probe]).output().unwrap();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    let l = listener.lock().unwrap().take().unwrap();
    let base = restarted
        .lock()
        .unwrap()
        .expect("the listener was restarted");
    let now = settle(l.id(), base);
    let rss = status_of(l.id(), "VmRSS");
    l.signal("TERM");
    let end = l.finish(Duration::from_secs(30));
    assert_eq!(end.code(), Some(0), "listener at the end: {}", end.stderr);
    assert!(rss < 256 << 10, "listener RSS {rss} KiB at the end");
    assert!(
        now.0 <= base.0 && now.1 <= base.1,
        "listener threads/fds {base:?} after the restart, {now:?} at the end"
    );

    // A file counts as acknowledged when its sender said so (info log), or exited 0.
    let acked = |r: &Run, f: usize| {
        let len = std::fs::metadata(&paths[f]).unwrap().len();
        r.out.code() == Some(0)
            || r.out
                .stderr
                .contains(&format!("{}: {len} bytes acknowledged", paths[f]))
    };
    let stored = check_out_dir(&out, &src, &runs, &acked);
    let tally = |f: &dyn Fn(&Run) -> bool| runs.iter().filter(|r| f(r)).count();
    eprintln!(
        "soak_cli tcpcl: seed {seed:#x}: {} files ({bytes} B) in {} sender runs: {} exited 0, \
         {} failed, {} SIGKILLed, {} through a proxy fault; {stored} files stored; listener \
         restarted once; {:.1} s",
        src.len(),
        runs.len(),
        tally(&|r| r.out.code() == Some(0)),
        tally(&|r| r.out.code() != Some(0) && !r.killed),
        tally(&|r| r.killed),
        tally(&|r| r.batch.fault != Fault::None),
        started.elapsed().as_secs_f64()
    );
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cotp_cli_soak_never_publishes_a_partial_message() {
    let started = Instant::now();
    let seed = soak::seed("soak_cli cotp");
    let mut rng = Rng::new(seed);
    let dir = tmpdir("cotp");
    let out = dir.join("out");
    // The last message is the probe sent after the faults.
    let (src, bytes) = sources(&dir, 121, 4 << 20, &mut rng);
    let (l, addr) = cotp_listen(bin(), &["--out-dir", out.to_str().unwrap()]);
    let base = (status_of(l.id(), "Threads"), fd_count(l.id()));
    let proxy = Arc::new(FaultProxy::start(addr.parse().unwrap()));
    let probe = src.len() - 1;
    let batches = plan(&src, probe, &mut rng);
    let paths: Vec<String> = src.iter().map(|s| s.path.display().to_string()).collect();
    let cmd = |to: &str, files: &[usize]| {
        let mut c = proto(bin());
        c.args([
            "cotp",
            "send",
            "--to",
            to,
            "--tpdu-size",
            "8192",
            "--timeout",
            "5",
        ])
        .args(files.iter().map(|&f| paths[f].as_str()));
        c
    };
    let runs = run_all(batches, 6, &proxy, &addr, &cmd, &|_| {}, &RwLock::new(()));
    let last = cmd(&addr, &[probe]).output().unwrap();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    // COTP has no acknowledgement: only a sender that exited 0 on a clean path has
    // delivered for sure (the listener stores each message before it reads on).
    std::thread::sleep(Duration::from_millis(500));
    let acked =
        |r: &Run, _f: usize| r.out.code() == Some(0) && r.batch.fault == Fault::None && !r.killed;
    let now = settle(l.id(), base);
    let rss = status_of(l.id(), "VmRSS");
    l.signal("TERM");
    let end = l.finish(Duration::from_secs(30));
    assert_eq!(end.code(), Some(0), "listener at the end: {}", end.stderr);
    assert!(rss < 256 << 10, "listener RSS {rss} KiB at the end");
    let stored = check_out_dir(&out, &src, &runs, &acked);
    assert!(
        now.0 <= base.0 && now.1 <= base.1,
        "listener threads/fds {base:?} at the start, {now:?} at the end"
    );
    let tally = |f: &dyn Fn(&Run) -> bool| runs.iter().filter(|r| f(r)).count();
    eprintln!(
        "soak_cli cotp: seed {seed:#x}: {} messages ({bytes} B) in {} sender runs: {} exited 0, \
         {} failed, {} SIGKILLed, {} through a proxy fault; {stored} messages stored; {:.1} s",
        src.len(),
        runs.len(),
        tally(&|r| r.out.code() == Some(0)),
        tally(&|r| r.out.code() != Some(0) && !r.killed),
        tally(&|r| r.killed),
        tally(&|r| r.batch.fault != Fault::None),
        started.elapsed().as_secs_f64()
    );
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}
