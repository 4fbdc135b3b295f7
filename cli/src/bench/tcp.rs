//! Plain-TCP baselines measured in the same run: bulk transfer with the same write
//! sizes, ping-pong with TCP_NODELAY, and connect + one round trip + close — each also
//! available through a plain rustls stream pair (the TLS baselines), plus many
//! concurrent bulk connections.

use anyhow::{Context, Result};
use proto_net::tcpcl::tls::{complete_handshake, TlsContext};
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// TLS contexts for the rustls baselines: the server presents a certificate, the
/// client trusts its CA (the same contexts the TCPCL agents use).
#[derive(Clone)]
pub(crate) struct TlsPair {
    pub(crate) server: TlsContext,
    pub(crate) client: TlsContext,
}

/// A loopback connection, plain or through rustls.
enum Stream {
    Plain(TcpStream),
    Client(Box<StreamOwned<ClientConnection, TcpStream>>),
    Server(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Client(s) => s.read(buf),
            Stream::Server(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Client(s) => s.write(buf),
            Stream::Server(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Client(s) => s.flush(),
            Stream::Server(s) => s.flush(),
        }
    }
}

/// The server end of an accepted connection, handshake completed.
fn server_stream(mut s: TcpStream, tls: Option<&TlsPair>) -> io::Result<Stream> {
    s.set_nodelay(true)?;
    let Some(t) = tls else {
        return Ok(Stream::Plain(s));
    };
    let mut conn = t.server.server().map_err(io::Error::other)?;
    complete_handshake(&mut conn, &mut s).map_err(io::Error::other)?;
    Ok(Stream::Server(Box::new(StreamOwned::new(conn, s))))
}

/// Connects, completing the TLS handshake when `tls` is given.
fn client_stream(addr: std::net::SocketAddr, tls: Option<&TlsPair>) -> Result<Stream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    client_over(s, tls)
}

/// The client end over a connected socket, TLS handshake completed when `tls` is
/// given.
fn client_over(mut s: TcpStream, tls: Option<&TlsPair>) -> Result<Stream> {
    let Some(t) = tls else {
        return Ok(Stream::Plain(s));
    };
    let addr = s.peer_addr()?;
    let mut conn = t.client.client(&addr.ip().to_string())?;
    complete_handshake(&mut conn, &mut s).context("TLS handshake")?;
    Ok(Stream::Client(Box::new(StreamOwned::new(conn, s))))
}

/// Seconds to move `total` bytes in writes of `chunk` bytes over loopback TCP.
pub(crate) fn bulk(total: u64, chunk: usize) -> Result<Duration> {
    bulk_over(total, chunk, None)
}

/// Like [`bulk`], optionally through a rustls stream pair (timed after the handshake).
pub(crate) fn bulk_over(total: u64, chunk: usize, tls: Option<&TlsPair>) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server_tls = tls.cloned();
    let server = thread::spawn(move || -> io::Result<u64> {
        let (s, _) = listener.accept()?;
        let mut s = server_stream(s, server_tls.as_ref())?;
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
        s.flush()?;
        Ok(got)
    });
    let mut c = client_stream(addr, tls)?;
    let data = vec![0xa5u8; chunk];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let n = chunk.min((total - sent) as usize);
        c.write_all(&data[..n])?;
        sent += n as u64;
    }
    c.flush()?;
    let mut done = [0u8; 1];
    c.read_exact(&mut done)?;
    let elapsed = start.elapsed();
    let _ = server.join();
    Ok(elapsed)
}

/// Round-trip times of `rounds` ping-pongs of `size` bytes.
pub(crate) fn ping_pong(rounds: usize, size: usize) -> Result<Vec<f64>> {
    ping_pong_over(rounds, size, None)
}

/// Like [`ping_pong`], optionally through a rustls stream pair.
pub(crate) fn ping_pong_over(
    rounds: usize,
    size: usize,
    tls: Option<&TlsPair>,
) -> Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server_tls = tls.cloned();
    let server = thread::spawn(move || -> io::Result<()> {
        let (s, _) = listener.accept()?;
        let mut s = server_stream(s, server_tls.as_ref())?;
        let mut buf = vec![0u8; size];
        for _ in 0..rounds {
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
            s.flush()?;
        }
        Ok(())
    });
    let mut c = client_stream(addr, tls)?;
    let mut buf = vec![7u8; size];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        c.write_all(&buf)?;
        c.flush()?;
        c.read_exact(&mut buf)?;
        samples.push(t.elapsed().as_secs_f64());
    }
    let _ = server.join();
    Ok(samples)
}

/// Connections per second: TCP connect, one 1-byte round trip, close; `count` times.
pub(crate) fn connects(count: usize) -> Result<f64> {
    connects_over(count, None)
}

/// Like [`connects`]; with `tls`, each connection also completes a TLS handshake
/// before its round trip.
pub(crate) fn connects_over(count: usize, tls: Option<&TlsPair>) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server_tls = tls.cloned();
    let server = thread::spawn(move || -> io::Result<()> {
        for _ in 0..count {
            let (s, _) = listener.accept()?;
            let mut s = server_stream(s, server_tls.as_ref())?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b)?;
            s.write_all(&b)?;
            s.flush()?;
        }
        Ok(())
    });
    let start = Instant::now();
    for _ in 0..count {
        let mut c = client_stream(addr, tls)?;
        c.write_all(&[1])?;
        c.flush()?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b)?;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    let _ = server.join();
    Ok(rate)
}

/// Connections per second shaped like a TCPCL session, as a blocking server would run
/// it: TCP connect, a thread spawned for the accepted connection, three 8-byte round
/// trips (contact headers, SESS_INIT, SESS_TERM), then close; `count` times, one
/// after another. With `tls`, a TLS handshake follows the first round trip, as in
/// TCPCL.
pub(crate) fn tcpcl_shaped_connects(count: usize, tls: Option<&TlsPair>) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server_tls = tls.cloned();
    let server = thread::spawn(move || -> io::Result<()> {
        for _ in 0..count {
            let (s, _) = listener.accept()?;
            let tls = server_tls.clone();
            thread::spawn(move || -> io::Result<()> {
                let mut raw = s;
                raw.set_nodelay(true)?;
                let mut b = [0u8; 8];
                raw.read_exact(&mut b)?;
                raw.write_all(&b)?;
                let mut s = server_stream(raw, tls.as_ref())?;
                for _ in 0..2 {
                    s.read_exact(&mut b)?;
                    s.write_all(&b)?;
                    s.flush()?;
                }
                Ok(())
            });
        }
        Ok(())
    });
    let start = Instant::now();
    for _ in 0..count {
        let mut raw = TcpStream::connect(addr)?;
        raw.set_nodelay(true)?;
        let mut b = [1u8; 8];
        raw.write_all(&b)?;
        raw.read_exact(&mut b)?;
        let mut c = client_over(raw, tls)?;
        for _ in 0..2 {
            c.write_all(&b)?;
            c.flush()?;
            c.read_exact(&mut b)?;
        }
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    server
        .join()
        .map_err(|_| anyhow::anyhow!("accept thread panicked"))??;
    Ok(rate)
}

/// Aggregate bytes per second of `conns` concurrent connections, each sending
/// `per_conn` bytes in writes of `chunk` bytes (one sender and one receiver thread per
/// connection, like the agent's per-socket threads).
pub(crate) fn many(
    conns: usize,
    per_conn: u64,
    chunk: usize,
    tls: Option<&TlsPair>,
) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server_tls = tls.cloned();
    let server = thread::spawn(
        move || -> io::Result<Vec<thread::JoinHandle<io::Result<u64>>>> {
            let mut readers = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (s, _) = listener.accept()?;
                let tls = server_tls.clone();
                readers.push(thread::spawn(move || -> io::Result<u64> {
                    let mut s = server_stream(s, tls.as_ref())?;
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut got = 0u64;
                    while got < per_conn {
                        let n = s.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        got += n as u64;
                    }
                    s.write_all(&[1])?;
                    s.flush()?;
                    Ok(got)
                }));
            }
            Ok(readers)
        },
    );
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        streams.push(client_stream(addr, tls)?);
    }
    let readers = server
        .join()
        .map_err(|_| anyhow::anyhow!("accept thread panicked"))??;
    let data: Arc<[u8]> = vec![0xa5u8; chunk].into();
    let barrier = Arc::new(std::sync::Barrier::new(conns + 1));
    let senders: Vec<_> = streams
        .into_iter()
        .map(|mut c| {
            let data = data.clone();
            let barrier = barrier.clone();
            thread::spawn(move || -> io::Result<()> {
                barrier.wait();
                let mut sent = 0u64;
                while sent < per_conn {
                    let n = data.len().min((per_conn - sent) as usize);
                    c.write_all(&data[..n])?;
                    sent += n as u64;
                }
                c.flush()?;
                let mut done = [0u8; 1];
                c.read_exact(&mut done)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for s in senders {
        s.join()
            .map_err(|_| anyhow::anyhow!("sender thread panicked"))??;
    }
    let elapsed = start.elapsed();
    let mut got = 0u64;
    for r in readers {
        got += r
            .join()
            .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    }
    anyhow::ensure!(
        got == per_conn * conns as u64,
        "baseline received {got} bytes"
    );
    Ok(got as f64 / elapsed.as_secs_f64())
}
