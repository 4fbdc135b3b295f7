//! COTP scenarios: bulk messages, ping-pong and connection setup, each against its
//! plain-TCP baseline.

use super::report::{median_p99, Kind, Outcome};
use super::tcp;
use anyhow::{Context, Result};
use proto_core::cotp::TpduSize;
use proto_net::cotp::{ConnectOptions, Connection, ListenOptions, Listener};
use std::net::SocketAddr;
use std::thread;
use std::time::Instant;

const MESSAGE: usize = 64 * 1024;

fn server_opts() -> ListenOptions {
    ListenOptions {
        max_tpdu_size: TpduSize::S8192,
        max_message_size: MESSAGE * 2,
        ..ListenOptions::default()
    }
}

fn client_opts() -> ConnectOptions {
    ConnectOptions::default()
        .max_tpdu_size(TpduSize::S8192)
        .max_message_size(MESSAGE * 2)
}

/// `cotp-bulk`: `total` bytes as 64 KiB messages over one connection.
pub(crate) fn bulk(total: u64) -> Result<Outcome> {
    let messages = total.div_ceil(MESSAGE as u64);
    let listener = Listener::bind("127.0.0.1:0", server_opts())?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> Result<u64> {
        let (mut conn, _) = listener.accept()?;
        let mut got = 0u64;
        for _ in 0..messages {
            got += conn.recv_data()?.len() as u64;
        }
        conn.send_data(b"done")?;
        Ok(got)
    });
    let mut conn = Connection::connect(addr, client_opts()).context("connecting")?;
    let data = vec![0xa5u8; MESSAGE];
    let start = Instant::now();
    let mut left = total;
    while left > 0 {
        let n = (MESSAGE as u64).min(left) as usize;
        conn.send_data(&data[..n])?;
        left -= n as u64;
    }
    conn.recv_data()?;
    let ours = total as f64 / start.elapsed().as_secs_f64();
    let got = server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    anyhow::ensure!(got == total, "server received {got} of {total} bytes");
    let _ = conn.close();
    let baseline = total as f64 / tcp::bulk(total, MESSAGE)?.as_secs_f64();
    Ok(Outcome {
        scenario: "cotp-bulk".into(),
        kind: Kind::Throughput,
        ours,
        baseline,
        extra: vec![("bytes", total as f64)],
        target: Some((0.80, true)),
        trials: vec![],
    })
}

/// `cotp-rtt`: `rounds` ping-pongs of a 64-byte message.
pub(crate) fn rtt(rounds: usize) -> Result<Outcome> {
    let listener = Listener::bind("127.0.0.1:0", server_opts())?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> Result<()> {
        let (mut conn, _) = listener.accept()?;
        for _ in 0..rounds {
            let m = conn.recv_data()?;
            conn.send_data(&m)?;
        }
        Ok(())
    });
    let mut conn = Connection::connect(addr, client_opts())?;
    let msg = [7u8; 64];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        conn.send_data(&msg)?;
        conn.recv_data()?;
        samples.push(t.elapsed().as_secs_f64());
    }
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let _ = conn.close();
    let (median, p99) = median_p99(&mut samples);
    let mut base = tcp::ping_pong(rounds, 64)?;
    let (b_median, b_p99) = median_p99(&mut base);
    Ok(Outcome {
        scenario: "cotp-rtt".into(),
        kind: Kind::Latency,
        ours: median,
        baseline: b_median,
        extra: vec![
            ("p99_s", p99),
            ("baseline_p99_s", b_p99),
            ("rounds", rounds as f64),
        ],
        target: Some((1.15, false)),
        trials: vec![],
    })
}

/// `cotp-connects`: connect + CR/CC + DR + close, `count` times.
pub(crate) fn connects(count: usize) -> Result<Outcome> {
    let listener = Listener::bind("127.0.0.1:0", server_opts())?;
    let addr: SocketAddr = listener.local_addr()?;
    let server = thread::spawn(move || -> Result<()> {
        // Like the baseline's server, hand each connection off once it is
        // established: the client's DR and close are the client's part of the work.
        for _ in 0..count {
            drop(listener.accept()?);
        }
        Ok(())
    });
    let start = Instant::now();
    for _ in 0..count {
        let mut conn = Connection::connect(addr, client_opts())?;
        // The server may already be gone; the DR is still sent.
        let _ = conn.close();
    }
    let ours = count as f64 / start.elapsed().as_secs_f64();
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let baseline = tcp::connects(count)?;
    Ok(Outcome {
        scenario: "cotp-connects".into(),
        kind: Kind::Rate,
        ours,
        baseline,
        extra: vec![("connections", count as f64)],
        // Session setup within 1.5x of the baseline's time: rate ratio ≥ 1/1.5.
        target: Some((1.0 / 1.5, true)),
        trials: vec![],
    })
}
