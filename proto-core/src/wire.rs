//! Bounds-checked big-endian reading and writing over borrowed byte slices.
//!
//! Every codec in this crate reads through [`Reader`] and writes through [`Writer`], so
//! no decoder indexes a slice directly and no encoder can write past the caller's
//! buffer. Running out of input is reported as [`Short`] (how many more bytes would
//! have been needed at which offset); running out of output space as
//! [`EncodeError::BufferTooSmall`].

use byteorder::{BigEndian, ByteOrder};

/// The input ended before a field could be read.
///
/// `offset` is where the field starts, relative to the start of the reader's buffer,
/// and `needed` how many more bytes the field needs beyond what is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    /// Offset of the field that could not be read.
    pub offset: usize,
    /// Bytes missing to complete that field.
    pub needed: usize,
}

/// Errors an encoder reports when the caller's buffer cannot hold the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is smaller than the encoded frame.
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Total bytes the encoded frame needs.
        needed: usize,
    },
    /// A value does not fit its wire field (for example a node ID over 65535 bytes).
    #[error("{field} does not fit its wire field")]
    ValueTooLarge {
        /// Name of the field.
        field: &'static str,
    },
}

/// A cursor over borrowed input that reads big-endian integers and sub-slices.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Takes the next `n` bytes as a borrowed slice.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        if self.remaining() < n {
            return Err(Short {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes every remaining byte.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let out = self.rest();
        self.pos = self.buf.len();
        out
    }

    /// Reads the next byte without consuming it.
    pub fn peek_u8(&self) -> Result<u8, Short> {
        self.buf.get(self.pos).copied().ok_or(Short {
            offset: self.pos,
            needed: 1,
        })
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, Short> {
        Ok(BigEndian::read_u16(self.take(2)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, Short> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, Short> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }
}

/// A cursor over a caller-provided output buffer that writes big-endian integers.
///
/// Writes past the end fail with [`Overflow`] and leave the buffer position unchanged;
/// encoders turn that into [`EncodeError::BufferTooSmall`] with the frame's full size.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

/// A write did not fit the output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl<'a> Writer<'a> {
    /// A writer positioned at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Space left in the buffer.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn slot(&mut self, n: usize) -> Result<&mut [u8], Overflow> {
        if self.remaining() < n {
            return Err(Overflow);
        }
        let start = self.pos;
        self.pos += n;
        Ok(&mut self.buf[start..start + n])
    }

    /// Writes one byte.
    pub fn put_u8(&mut self, v: u8) -> Result<(), Overflow> {
        self.slot(1)?[0] = v;
        Ok(())
    }

    /// Writes a big-endian `u16`.
    pub fn put_u16(&mut self, v: u16) -> Result<(), Overflow> {
        BigEndian::write_u16(self.slot(2)?, v);
        Ok(())
    }

    /// Writes a big-endian `u32`.
    pub fn put_u32(&mut self, v: u32) -> Result<(), Overflow> {
        BigEndian::write_u32(self.slot(4)?, v);
        Ok(())
    }

    /// Writes a big-endian `u64`.
    pub fn put_u64(&mut self, v: u64) -> Result<(), Overflow> {
        BigEndian::write_u64(self.slot(8)?, v);
        Ok(())
    }

    /// Copies `data` into the buffer.
    pub fn put_slice(&mut self, data: &[u8]) -> Result<(), Overflow> {
        self.slot(data.len())?.copy_from_slice(data);
        Ok(())
    }

    /// The bytes written so far, for checksums computed over the encoded frame.
    pub fn written_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.pos]
    }
}

/// Runs `f` against a writer over `out` after checking that `needed` bytes fit.
///
/// Returns the number of bytes written. Encoders call this with their exact encoded
/// length, so a too-small buffer is reported before anything is written.
pub fn encode_with(
    out: &mut [u8],
    needed: usize,
    f: impl FnOnce(&mut Writer<'_>) -> Result<(), Overflow>,
) -> Result<usize, EncodeError> {
    if out.len() < needed {
        return Err(EncodeError::BufferTooSmall { needed });
    }
    let mut w = Writer::new(out);
    f(&mut w).map_err(|Overflow| EncodeError::BufferTooSmall { needed })?;
    Ok(w.position())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reads_big_endian_and_reports_shortfall() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(
            r.u64(),
            Err(Short {
                offset: 3,
                needed: 4
            })
        );
        // A failed read consumes nothing.
        assert_eq!(r.position(), 3);
        assert_eq!(r.take(4), Ok(&[4u8, 5, 6, 7][..]));
        assert!(r.is_empty());
        assert_eq!(
            r.u64(),
            Err(Short {
                offset: 7,
                needed: 8
            })
        );
    }

    #[test]
    fn writer_refuses_to_overflow() {
        let mut buf = [0u8; 5];
        let mut w = Writer::new(&mut buf);
        w.put_u32(0xdead_beef).unwrap();
        assert_eq!(w.put_u16(1), Err(Overflow));
        w.put_u8(9).unwrap();
        assert_eq!(buf, [0xde, 0xad, 0xbe, 0xef, 9]);
    }

    #[test]
    fn encode_with_checks_size_first() {
        let mut buf = [0u8; 2];
        assert_eq!(
            encode_with(&mut buf, 3, |w| w.put_slice(&[1, 2, 3])),
            Err(EncodeError::BufferTooSmall { needed: 3 })
        );
        assert_eq!(buf, [0, 0]);
        assert_eq!(encode_with(&mut buf, 2, |w| w.put_u16(0x0102)), Ok(2));
    }
}
