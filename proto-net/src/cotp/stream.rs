//! The byte streams a COTP connection runs over.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A bidirectional byte stream a [`Connection`](super::Connection) can run over.
///
/// Implemented for [`TcpStream`]; wrap any other `Read + Write` (a TLS stream, a test
/// pipe) in [`Unbounded`], which has no timeouts of its own.
pub trait Stream: Read + Write {
    /// Bounds the next reads; `None` blocks indefinitely.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Bounds the next writes; `None` blocks indefinitely.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Closes both directions, if the stream can.
    fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Closes the sending direction only (a TCP FIN), so the peer's last TPDUs can
    /// still be read; streams that cannot half-close do nothing.
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Whether `write_vectored` sends all its buffers in one call (a socket's writev).
    /// When true, DT headers and payload go out with one gather write instead of being
    /// copied into a frame buffer first.
    fn gathers_writes(&self) -> bool {
        false
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Both)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Write)
    }

    fn gathers_writes(&self) -> bool {
        true
    }
}

/// Any `Read + Write` as a [`Stream`] without timeouts: reads block as the inner
/// stream blocks. Configure timeouts on the inner stream (for example on the socket
/// under a TLS stream) before wrapping it.
#[derive(Debug)]
pub struct Unbounded<S>(pub S);

impl<S: Read> Read for Unbounded<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for Unbounded<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: Read + Write> Stream for Unbounded<S> {
    fn set_read_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn set_write_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}
