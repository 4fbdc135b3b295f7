//! Blocking writes of whole buffers, a send timeout reported as
//! [`Error::Timeout`] instead of an I/O error.

use crate::cotp::error::{Error, Result};
use std::io::{self, Write};

pub(super) fn write_all_vectored<S: Write>(
    s: &mut S,
    mut bufs: &mut [io::IoSlice<'_>],
) -> Result<()> {
    let timeout = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout("send"),
        _ => Error::Io(e),
    };
    while !bufs.is_empty() {
        match s.write_vectored(bufs) {
            Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => io::IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(timeout(e)),
        }
    }
    Ok(())
}

pub(super) fn write_all<S: Write>(s: &mut S, buf: &[u8]) -> Result<()> {
    s.write_all(buf).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout("send"),
        _ => Error::Io(e),
    })
}
