//! `proto demo`: the main job with zero configuration. Everything runs inside this
//! process on ephemeral loopback ports: listeners for both protocols, clients that
//! send through them, and a byte-for-byte check of what came back.

use anyhow::{ensure, Context, Result};
use proto_core::cotp::TpduSize;
use proto_net::cotp::{ConnectOptions, Connection, ListenOptions, Listener};
use sha2::{Digest, Sha256};
use std::thread;
use std::time::Instant;

/// Runs the demonstration; returns whether every check passed.
pub(crate) fn run() -> Result<bool> {
    println!("proto demo — COTP over TPKT and TCPCLv4 over loopback, every byte verified\n");
    cotp()?;
    println!("\nall checks passed");
    Ok(true)
}

/// Deterministic test data of `len` bytes.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn cotp() -> Result<()> {
    let listen = ListenOptions {
        max_tpdu_size: TpduSize::S8192,
        local_tsap: Some("0102".parse()?),
        max_message_size: 8 << 20,
        ..ListenOptions::default()
    };
    let listener = Listener::bind("127.0.0.1:0", listen)?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> Result<(TpduSize, String, String)> {
        let (mut conn, _) = listener.accept()?;
        let info = (
            conn.tpdu_size(),
            conn.core()
                .calling_tsap()
                .map(ToString::to_string)
                .unwrap_or_default(),
            conn.core()
                .called_tsap()
                .map(ToString::to_string)
                .unwrap_or_default(),
        );
        // Echo until the client disconnects.
        while let Ok(msg) = conn.recv_data() {
            conn.send_data(&msg)?;
        }
        Ok(info)
    });
    let opts = ConnectOptions::default()
        .src_tsap("0100")?
        .dst_tsap("0102")?
        .max_tpdu_size(TpduSize::S1024)
        .max_message_size(8 << 20);
    let mut conn = Connection::connect(addr, opts).context("COTP connect")?;
    println!("COTP  listener {addr}, TSAPs 0100 -> 0102");
    let sizes = [1usize, 1021, 1022, 100 * 1024, 4 << 20];
    let start = Instant::now();
    let mut total = 0usize;
    for (i, &len) in sizes.iter().enumerate() {
        let msg = pattern(len, i as u8);
        conn.send_data(&msg)?;
        let back = conn.recv_data()?;
        ensure!(
            Sha256::digest(&back) == Sha256::digest(&msg),
            "COTP echo of {len} bytes differs"
        );
        total += 2 * len;
    }
    let elapsed = start.elapsed();
    conn.close()?;
    let (size, calling, called) = server
        .join()
        .map_err(|_| anyhow::anyhow!("COTP server panicked"))??;
    println!(
        "      negotiated TPDU size {} ({} data bytes per DT), server saw TSAPs {calling} -> {called}",
        size,
        conn.core().max_dt_payload()
    );
    println!(
        "      echoed {} messages ({:?} bytes), {:.1} MiB both ways in {:.0} ms ({:.0} MiB/s), all verified",
        sizes.len(),
        sizes,
        total as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64() * 1e3,
        total as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
