//! A 100 MiB bundle from a file to a file through the TCPCL agent, checked by SHA-256,
//! with memory staying flat: neither side holds the bundle. Alone in its test binary so
//! the process's resident set measures only this transfer.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use proto_net::tcpcl::{Agent, Config, Event, ReceivedBundle};
use proto_tests::procfs::proc_status;
use sha2::{Digest, Sha256};

const LEN: usize = 100 << 20;

fn file_digest(path: &std::path::Path) -> Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_vec())
}

#[test]
fn hundred_mib_bundle_streams_file_to_file_with_flat_memory() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("tcpcl-big-{}", std::process::id()));
    let out_dir = dir.join("in");
    std::fs::create_dir_all(&out_dir)?;
    // The source file, written in 1 MiB pieces.
    let src = dir.join("bundle.bin");
    let mut want = Sha256::new();
    {
        let mut w = BufWriter::new(File::create(&src)?);
        let mut block = vec![0u8; 1 << 20];
        let mut x: u32 = 0x1234_5678;
        for _ in 0..LEN / block.len() {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            want.update(&block);
            w.write_all(&block)?;
        }
        w.flush()?;
    }
    let want = want.finalize().to_vec();

    let mut rx_cfg = Config::with_node_id("dtn://big-rx/");
    rx_cfg.tls_enable = false;
    rx_cfg.recv_dir = Some(out_dir.clone());
    let rx = Agent::new(rx_cfg)?;
    let events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let mut tx_cfg = Config::with_node_id("dtn://big-tx/");
    tx_cfg.tls_enable = false;
    let tx = Agent::new(tx_cfg)?;
    let session = tx.connect(addr)?;
    session.wait_established(Duration::from_secs(10))?;

    let rss_before = proc_status("VmRSS")?;
    let hwm_before = proc_status("VmHWM")?;
    let start = Instant::now();
    session.send_file(&src)?;
    session.wait_sent(Duration::from_secs(120))?;
    let path = loop {
        match events.recv_timeout(Duration::from_secs(60))? {
            Event::BundleReceived {
                bundle: ReceivedBundle::File(p),
                len,
                ..
            } => {
                assert_eq!(len, LEN as u64);
                break p;
            }
            Event::BundleReceived { bundle, .. } => bail!("unexpected sink {bundle:?}"),
            _ => {}
        }
    };
    let elapsed = start.elapsed();
    let rss_after = proc_status("VmRSS")?;
    let hwm_after = proc_status("VmHWM")?;
    assert_eq!(file_digest(&path)?, want, "SHA-256 of the received file");
    let growth = hwm_after
        .saturating_sub(hwm_before)
        .max(rss_after.saturating_sub(rss_before));
    eprintln!(
        "100 MiB file→file in {elapsed:?}; RSS {rss_before}→{rss_after} KiB, peak {hwm_before}→{hwm_after} KiB"
    );
    // Far below the bundle size: buffers only (segments, read chunks, file buffers).
    assert!(growth < 24 * 1024, "memory grew by {growth} KiB");
    tx.shutdown();
    assert!(tx.wait_stopped(Duration::from_secs(10)));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
