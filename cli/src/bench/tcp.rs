//! Plain-TCP baselines measured in the same run: bulk transfer with the same write
//! sizes, ping-pong with TCP_NODELAY, and connect + one round trip + close.

use anyhow::Result;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Seconds to move `total` bytes in writes of `chunk` bytes over loopback TCP.
pub(crate) fn bulk(total: u64, chunk: usize) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < total {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        s.write_all(&[1])?;
        Ok(got)
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let data = vec![0xa5u8; chunk];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let n = chunk.min((total - sent) as usize);
        c.write_all(&data[..n])?;
        sent += n as u64;
    }
    let mut done = [0u8; 1];
    c.read_exact(&mut done)?;
    let elapsed = start.elapsed();
    let _ = server.join();
    Ok(elapsed)
}

/// Round-trip times of `rounds` ping-pongs of `size` bytes.
pub(crate) fn ping_pong(rounds: usize, size: usize) -> Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; size];
        for _ in 0..rounds {
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut buf = vec![7u8; size];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        c.write_all(&buf)?;
        c.read_exact(&mut buf)?;
        samples.push(t.elapsed().as_secs_f64());
    }
    let _ = server.join();
    Ok(samples)
}

/// Connections per second: TCP connect, one 1-byte round trip, close; `count` times.
pub(crate) fn connects(count: usize) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> std::io::Result<()> {
        for _ in 0..count {
            let (mut s, _) = listener.accept()?;
            s.set_nodelay(true)?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b)?;
            s.write_all(&b)?;
        }
        Ok(())
    });
    let start = Instant::now();
    for _ in 0..count {
        let mut c = TcpStream::connect(addr)?;
        c.set_nodelay(true)?;
        c.write_all(&[1])?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b)?;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    let _ = server.join();
    Ok(rate)
}
