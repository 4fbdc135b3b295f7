//! `proto demo`: the main job with zero configuration. Everything runs inside this
//! process on ephemeral loopback ports: listeners for both protocols, clients that
//! send through them, and a byte-for-byte check of what came back.

use anyhow::{ensure, Context, Result};
use proto_core::cotp::TpduSize;
use proto_net::cotp::{ConnectOptions, Connection, ListenOptions, Listener};
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use proto_net::tcpcl::tls::{TlsContext, TlsVersion};
use proto_net::tcpcl::{self, Agent, Event, ReceivedBundle, SessTermReason};
use sha2::{Digest, Sha256};
use std::thread;
use std::time::Duration;
use std::time::Instant;

/// Runs the demonstration; returns whether every check passed.
pub(crate) fn run() -> Result<bool> {
    println!("proto demo — COTP over TPKT and TCPCLv4 over loopback, every byte verified\n");
    cotp()?;
    println!();
    tcpcl()?;
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
        "      echoed {} messages ({} bytes), {:.1} MiB both ways in {:.0} ms ({:.0} MiB/s), all verified",
        sizes.len(),
        list(&sizes),
        total as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64() * 1e3,
        total as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// A TLS context for `node_id`, with a certificate from `ca` carrying the node ID as a
/// SAN otherName (id-on-bundleEID).
fn tls_for(ca: &CertFactory, node_id: &str) -> Result<TlsContext> {
    let (cert, key) = ca.issue(&LeafSpec::node(node_id))?;
    Ok(TlsContext::from_pem(
        ca.ca_pem().as_bytes(),
        Some(cert.as_bytes()),
        Some(key.as_bytes()),
        TlsVersion::Tls13,
    )?)
}

fn tcpcl() -> Result<()> {
    const WAIT: Duration = Duration::from_secs(30);
    let ca = CertFactory::new_ca("proto demo CA")?;
    let config = |node: &str| {
        let mut c = tcpcl::Config::with_node_id(node);
        c.require_tls = Some(true);
        c.require_node_authn = true;
        c.keepalive_time = 30;
        c
    };
    let listener = Agent::with_tls(
        config("dtn://demo-listener/"),
        Some(tls_for(&ca, "dtn://demo-listener/")?),
    )?;
    let events = listener.events();
    let addr = listener.listen("127.0.0.1:0")?;
    let sender = Agent::with_tls(
        config("dtn://demo-sender/"),
        Some(tls_for(&ca, "dtn://demo-sender/")?),
    )?;
    let session = sender.connect(addr).context("TCPCL connect")?;
    let params = session
        .wait_established(WAIT)
        .context("TCPCL session establishment")?;
    let tls = session
        .tls_info()
        .context("the session has no TLS information")?;
    println!("TCPCL listener {addr} (dtn://demo-listener/), sender dtn://demo-sender/");
    println!(
        "      {} {}, node authentication of the peer: {}, keepalive {} s, peer segment MRU {} B",
        tls.version,
        tls.cipher_suite,
        tls.node_authn
            .map_or_else(|| "none".to_string(), |a| a.to_string()),
        params.keepalive,
        params.peer_segment_mru
    );
    let sizes = [1usize, 64 * 1024, 16 << 20];
    let bundles: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(n, 0x40 + i as u8))
        .collect();
    let start = Instant::now();
    for b in &bundles {
        session.send_bytes(b.clone())?;
    }
    session
        .wait_sent(WAIT)
        .context("waiting for every bundle to be acknowledged")?;
    let mut received: Vec<Vec<u8>> = Vec::new();
    while received.len() < bundles.len() {
        match events
            .recv_timeout(WAIT)
            .context("waiting for the listener's bundles")?
        {
            Event::BundleReceived {
                bundle: ReceivedBundle::Bytes(b),
                ..
            } => received.push(b),
            Event::SessionClosed { reason, .. } => {
                anyhow::bail!("the listener's session closed early: {reason}")
            }
            _ => {}
        }
    }
    let elapsed = start.elapsed();
    for (sent, got) in bundles.iter().zip(&received) {
        ensure!(
            Sha256::digest(sent) == Sha256::digest(got),
            "TCPCL bundle of {} bytes differs",
            sent.len()
        );
    }
    session.shutdown(SessTermReason::UNKNOWN)?;
    let reason = session.wait_closed(WAIT)?;
    let total: usize = sizes.iter().sum();
    println!(
        "      sent {} bundles ({} bytes) over TLS, {:.1} MiB in {:.0} ms ({:.0} MiB/s), every byte acknowledged and verified",
        sizes.len(),
        list(&sizes),
        total as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64() * 1e3,
        total as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    );
    println!("      session ended: {reason}");
    sender.stop();
    listener.stop();
    Ok(())
}

/// `1, 1021, 1022`: sizes for a sentence.
fn list(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
