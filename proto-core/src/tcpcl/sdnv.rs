//! Self-Delimiting Numeric Values (RFC 6256), used only by the TCPCLv3 contact header.
//!
//! Each byte carries 7 value bits, most significant group first; the high bit is set on
//! every byte but the last. Decoding is bounded: a value that does not fit in a `u64`,
//! or an encoding longer than [`MAX_LEN`] bytes (even one padded with leading zero
//! groups), is rejected, so a peer cannot make the decoder wait forever or overflow.

use super::error::{DecodeError, Fail};
use crate::tpkt::Status;
use crate::wire::{encode_with, EncodeError, Overflow, Reader, Writer};

/// Longest SDNV accepted: enough 7-bit groups for 64 bits.
pub const MAX_LEN: usize = 10;

/// Decodes an SDNV at the start of `buf`, returning the value and its encoded length.
///
/// Input that ends before the final byte is `Partial`; errors report `field` "SDNV"
/// at offset 0.
///
/// ```
/// use proto_core::tcpcl::{sdnv, Status};
/// assert_eq!(sdnv::decode(&[0x81, 0x00]), Ok(Status::Complete((128, 2))));
/// assert_eq!(sdnv::decode(&[0x81]), Ok(Status::Partial { needed: 1 }));
/// ```
pub fn decode(buf: &[u8]) -> Result<Status<(u64, usize)>, DecodeError> {
    let mut r = Reader::new(buf);
    super::error::finish(read(&mut r, "SDNV").map(|v| (v, r.position())))
}

/// Reads an SDNV for `field` from `r`, reporting overflow at the SDNV's start.
pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<u64, Fail> {
    let start = r.position();
    let mut value: u64 = 0;
    // The loop bound rejects over-long encodings (e.g. endless zero padding).
    for _ in 0..MAX_LEN {
        let byte = r.u8()?;
        if value > u64::MAX >> 7 {
            return Err(DecodeError::SdnvOverflow {
                field,
                offset: start,
            }
            .into());
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::SdnvOverflow {
        field,
        offset: start,
    }
    .into())
}

/// Bytes needed to encode `value`.
pub const fn encoded_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    if bits == 0 {
        1
    } else {
        bits.div_ceil(7)
    }
}

/// Encodes `value` into `out`, returning the number of bytes written.
pub fn encode(value: u64, out: &mut [u8]) -> Result<usize, EncodeError> {
    let n = encoded_len(value);
    encode_with(out, n, |w| write(value, w))
}

/// Writes `value` as an SDNV.
pub(crate) fn write(value: u64, w: &mut Writer<'_>) -> Result<(), Overflow> {
    let n = encoded_len(value);
    for i in (0..n).rev() {
        // n <= 10, so the shift is at most 63.
        let group = ((value >> (7 * i)) & 0x7f) as u8;
        w.put_u8(if i == 0 { group } else { group | 0x80 })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpcl_sdnv_vectors() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (0x7f, &[0x7f]),
            (0x80, &[0x81, 0x00]),
            (0xabc, &[0x95, 0x3c]),
            (0x1234, &[0xa4, 0x34]),
            (0x4234, &[0x81, 0x84, 0x34]),
            (
                u64::MAX,
                &[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            ),
        ];
        for &(v, bytes) in cases {
            assert_eq!(encoded_len(v), bytes.len(), "{v:#x}");
            let mut out = [0u8; MAX_LEN];
            assert_eq!(encode(v, &mut out), Ok(bytes.len()));
            assert_eq!(&out[..bytes.len()], bytes);
            assert_eq!(decode(bytes), Ok(Status::Complete((v, bytes.len()))));
            for cut in 0..bytes.len() {
                assert_eq!(decode(&bytes[..cut]), Ok(Status::Partial { needed: 1 }));
            }
        }
    }

    #[test]
    fn tcpcl_sdnv_overflow_and_length_bound() {
        let overflow = Err(DecodeError::SdnvOverflow {
            field: "SDNV",
            offset: 0,
        });
        // 2^64 needs 65 bits.
        assert_eq!(
            decode(&[0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            overflow
        );
        // Eleven bytes, even of zero padding, are too long.
        assert_eq!(decode(&[0x80; 11]), overflow);
        assert_eq!(decode(&[0xff; 64]), overflow);
        // Ten bytes of padding are still only Partial if the terminator may follow...
        assert_eq!(decode(&[0x80; 9]), Ok(Status::Partial { needed: 1 }));
        // ...and a padded small value is accepted.
        let mut padded = [0x80u8; 10];
        padded[9] = 0x05;
        assert_eq!(decode(&padded), Ok(Status::Complete((5, 10))));
        let mut small = [0u8; 1];
        assert_eq!(
            encode(300, &mut small),
            Err(EncodeError::BufferTooSmall { needed: 2 })
        );
    }
}
