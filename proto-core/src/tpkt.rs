//! RFC 1006 TPKT framing: a 4-byte header (version 3, reserved, 16-bit length that
//! includes the header) in front of each COTP TPDU.
//!
//! Two ways in:
//! - [`parse_frame`] looks at a buffer that may hold zero, one or many frames and
//!   borrows the first complete one (httparse style: too little input is
//!   [`Status::Partial`], not an error).
//! - [`Deframer`] is the streaming form: it keeps only the 4 header bytes between
//!   calls and hands out payload as slices of the caller's input, so a frame split
//!   over many reads is never copied or buffered whole.
//!
//! Both check the version and the length bounds from the header alone, before any
//! payload is sliced.

use crate::wire::{encode_with, EncodeError};

/// Length of the TPKT header.
pub const HEADER_LEN: usize = 4;
/// The only TPKT version RFC 1006 defines.
pub const VERSION: u8 = 3;
/// The smallest legal TPKT: header plus the shortest TPDU (a 3-byte DT).
pub const MIN_FRAME_LEN: usize = 7;
/// The default and largest possible frame length (the length field is 16 bits).
pub const DEFAULT_MAX_FRAME_LEN: usize = 65_535;

/// A malformed TPKT header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TpktError {
    /// The version octet is not 3.
    #[error("TPKT version {version} at offset {offset} (expected 3)")]
    BadVersion {
        /// Offset of the version octet in the input.
        offset: usize,
        /// The version seen.
        version: u8,
    },
    /// The length field is below 7 (header plus the smallest TPDU).
    #[error("TPKT length {length} at offset {offset} is below the minimum of 7")]
    TooShort {
        /// Offset of the length field.
        offset: usize,
        /// The length seen.
        length: u16,
    },
    /// The length field exceeds the configured maximum.
    #[error("TPKT length {length} at offset {offset} exceeds the maximum of {max}")]
    TooLong {
        /// Offset of the length field.
        offset: usize,
        /// The length seen.
        length: u16,
        /// The configured maximum.
        max: usize,
    },
}

/// Outcome of looking for a frame in a buffer that may be incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole item was found.
    Complete(T),
    /// More input is needed; `needed` is how many more bytes at least.
    Partial {
        /// Minimum number of additional bytes before progress is possible.
        needed: usize,
    },
}

/// A complete TPKT frame borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The TPDU carried by the frame (everything after the 4-byte header).
    pub payload: &'a [u8],
    /// Bytes of input the frame occupies, header included.
    pub len: usize,
}

/// Checks a TPKT header and returns the total frame length it announces.
///
/// `offset` is only used to name the position in errors.
pub fn check_header(
    header: [u8; HEADER_LEN],
    max: usize,
    offset: usize,
) -> Result<usize, TpktError> {
    if header[0] != VERSION {
        return Err(TpktError::BadVersion {
            offset,
            version: header[0],
        });
    }
    let length = u16::from_be_bytes([header[2], header[3]]);
    if usize::from(length) < MIN_FRAME_LEN {
        return Err(TpktError::TooShort {
            offset: offset + 2,
            length,
        });
    }
    if usize::from(length) > max {
        return Err(TpktError::TooLong {
            offset: offset + 2,
            length,
            max,
        });
    }
    Ok(usize::from(length))
}

/// Finds the first complete frame at the start of `buf`.
///
/// `max` bounds the accepted frame length (use [`DEFAULT_MAX_FRAME_LEN`] for no bound
/// beyond the 16-bit field).
///
/// ```
/// use proto_core::tpkt::{parse_frame, Status, DEFAULT_MAX_FRAME_LEN};
/// let bytes = [3, 0, 0, 7, 0x02, 0xf0, 0x80, 3, 0];
/// let Status::Complete(frame) = parse_frame(&bytes, DEFAULT_MAX_FRAME_LEN)? else { panic!() };
/// assert_eq!(frame.payload, &[0x02, 0xf0, 0x80]);
/// assert_eq!(frame.len, 7);
/// // The next frame has only begun: more input is needed, which is not an error.
/// assert_eq!(parse_frame(&bytes[7..], DEFAULT_MAX_FRAME_LEN)?, Status::Partial { needed: 2 });
/// # Ok::<(), proto_core::tpkt::TpktError>(())
/// ```
pub fn parse_frame(buf: &[u8], max: usize) -> Result<Status<Frame<'_>>, TpktError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        // Check what we have of the header early, so garbage is rejected at once.
        if let Some(&v) = buf.first() {
            if v != VERSION {
                return Err(TpktError::BadVersion {
                    offset: 0,
                    version: v,
                });
            }
        }
        return Ok(Status::Partial {
            needed: HEADER_LEN - buf.len(),
        });
    };
    let len = check_header([header[0], header[1], header[2], header[3]], max, 0)?;
    match buf.get(HEADER_LEN..len) {
        Some(payload) => Ok(Status::Complete(Frame { payload, len })),
        None => Ok(Status::Partial {
            needed: len - buf.len(),
        }),
    }
}

/// Writes a TPKT header for a payload of `payload_len` bytes into `out`.
///
/// Fails with [`EncodeError::ValueTooLarge`] if the frame would exceed 65535 bytes.
pub fn encode_header(payload_len: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
    let total = payload_len
        .checked_add(HEADER_LEN)
        .and_then(|t| u16::try_from(t).ok())
        .ok_or(EncodeError::ValueTooLarge {
            field: "TPKT length",
        })?;
    encode_with(out, HEADER_LEN, |w| {
        w.put_u8(VERSION)?;
        w.put_u8(0)?;
        w.put_u16(total)
    })
}

/// A piece of a frame's payload handed out by [`Deframer::next_chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Payload bytes, borrowed from the input passed to `next_chunk`.
    pub data: &'a [u8],
    /// Offset of `data` within the frame's payload.
    pub offset_in_frame: usize,
    /// Total payload length of the frame this chunk belongs to.
    pub frame_payload_len: usize,
}

impl Chunk<'_> {
    /// Whether this chunk begins a frame.
    pub fn is_first(&self) -> bool {
        self.offset_in_frame == 0
    }

    /// Whether this chunk completes its frame.
    pub fn is_last(&self) -> bool {
        self.offset_in_frame + self.data.len() == self.frame_payload_len
    }
}

/// Streaming TPKT deframer that never copies payload.
///
/// Feed it input with [`next_chunk`](Deframer::next_chunk) until the input is consumed;
/// each call consumes some bytes and may return a piece of payload.
///
/// ```
/// use proto_core::tpkt::Deframer;
/// let stream = [3, 0, 0, 9, 1, 2, 3, 4, 5, 3, 0, 0, 7, 6, 7, 8];
/// let mut d = Deframer::new(65535);
/// let mut frames: Vec<Vec<u8>> = vec![];
/// // Deliver the stream in 3-byte reads.
/// for read in stream.chunks(3) {
///     let mut input = read;
///     while !input.is_empty() {
///         let (used, chunk) = d.next_chunk(input)?;
///         input = &input[used..];
///         if let Some(c) = chunk {
///             if c.is_first() { frames.push(vec![]); }
///             frames.last_mut().unwrap().extend_from_slice(c.data);
///         }
///     }
/// }
/// assert_eq!(frames, vec![vec![1, 2, 3, 4, 5], vec![6, 7, 8]]);
/// # Ok::<(), proto_core::tpkt::TpktError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Deframer {
    max: usize,
    header: [u8; HEADER_LEN],
    header_len: usize,
    payload_len: usize,
    payload_seen: usize,
    in_payload: bool,
    stream_offset: usize,
}

impl Deframer {
    /// A deframer accepting frames up to `max` bytes (header included).
    pub fn new(max: usize) -> Self {
        Deframer {
            max,
            header: [0; HEADER_LEN],
            header_len: 0,
            payload_len: 0,
            payload_seen: 0,
            in_payload: false,
            stream_offset: 0,
        }
    }

    /// Whether the deframer sits exactly between two frames.
    pub fn at_frame_boundary(&self) -> bool {
        !self.in_payload && self.header_len == 0
    }

    /// Consumes bytes from `input`; returns how many were used and, when payload was
    /// reached, a chunk of it borrowed from `input`.
    ///
    /// An error is final: the stream cannot be resynchronised.
    pub fn next_chunk<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<Chunk<'a>>), TpktError> {
        if !self.in_payload {
            let take = (HEADER_LEN - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            if self.header_len > 0 && self.header[0] != VERSION {
                return Err(TpktError::BadVersion {
                    offset: self.stream_offset,
                    version: self.header[0],
                });
            }
            if self.header_len < HEADER_LEN {
                return Ok((take, None));
            }
            let len = check_header(self.header, self.max, self.stream_offset)?;
            self.header_len = 0;
            self.in_payload = true;
            self.payload_len = len - HEADER_LEN;
            self.payload_seen = 0;
            self.stream_offset += HEADER_LEN;
            return Ok((take, None));
        }
        let take = (self.payload_len - self.payload_seen).min(input.len());
        let chunk = Chunk {
            data: &input[..take],
            offset_in_frame: self.payload_seen,
            frame_payload_len: self.payload_len,
        };
        self.payload_seen += take;
        self.stream_offset += take;
        if self.payload_seen == self.payload_len {
            self.in_payload = false;
        }
        Ok((take, Some(chunk)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        encode_header(payload.len(), &mut out).unwrap();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn header_errors_are_checked_before_slicing() {
        let cases: &[(&[u8], TpktError)] = &[
            (
                &[2, 0, 0, 7],
                TpktError::BadVersion {
                    offset: 0,
                    version: 2,
                },
            ),
            (
                &[4],
                TpktError::BadVersion {
                    offset: 0,
                    version: 4,
                },
            ),
            (
                &[3, 0, 0, 6],
                TpktError::TooShort {
                    offset: 2,
                    length: 6,
                },
            ),
            (
                &[3, 0, 0, 0],
                TpktError::TooShort {
                    offset: 2,
                    length: 0,
                },
            ),
            (
                &[3, 0, 0x10, 0x01],
                TpktError::TooLong {
                    offset: 2,
                    length: 0x1001,
                    max: 4096,
                },
            ),
        ];
        for (input, err) in cases {
            assert_eq!(parse_frame(input, 4096), Err(*err), "input {input:02x?}");
            let mut d = Deframer::new(4096);
            assert_eq!(
                d.next_chunk(input).map(|_| ()),
                Err(*err),
                "deframer {input:02x?}"
            );
        }
    }

    #[test]
    fn parse_frame_handles_partial_and_many() {
        let mut stream = frame(&[1, 2, 3]);
        stream.extend(frame(&[4; 10]));
        let Status::Complete(f) = parse_frame(&stream, 65535).unwrap() else {
            panic!("first frame incomplete")
        };
        assert_eq!(f.payload, &[1, 2, 3]);
        let Status::Complete(g) = parse_frame(&stream[f.len..], 65535).unwrap() else {
            panic!("second frame incomplete")
        };
        assert_eq!(g.payload, &[4; 10]);
        for cut in 0..f.len {
            assert!(matches!(
                parse_frame(&stream[..cut], 65535),
                Ok(Status::Partial { .. })
            ));
        }
    }

    #[test]
    fn encode_header_bounds() {
        let mut b = [0u8; 4];
        assert_eq!(encode_header(3, &mut b), Ok(4));
        assert_eq!(b, [3, 0, 0, 7]);
        assert_eq!(
            encode_header(65_532, &mut b),
            Err(EncodeError::ValueTooLarge {
                field: "TPKT length"
            })
        );
        assert_eq!(encode_header(65_531, &mut b), Ok(4));
        assert_eq!(
            encode_header(1, &mut b[..3]),
            Err(EncodeError::BufferTooSmall { needed: 4 })
        );
    }

    #[test]
    fn deframer_reassembles_at_every_chunking() {
        let payloads: Vec<Vec<u8>> = vec![vec![9; 3], (0..200u8).collect(), vec![7; 4]];
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        for step in 1..=stream.len() {
            let mut d = Deframer::new(65535);
            let mut got: Vec<Vec<u8>> = vec![];
            for read in stream.chunks(step) {
                let mut input = read;
                while !input.is_empty() {
                    let (used, chunk) = d.next_chunk(input).unwrap();
                    assert!(used > 0);
                    input = &input[used..];
                    if let Some(c) = chunk {
                        if c.is_first() {
                            got.push(vec![]);
                        }
                        got.last_mut().unwrap().extend_from_slice(c.data);
                    }
                }
            }
            assert_eq!(got, payloads, "step {step}");
            assert!(d.at_frame_boundary());
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), max in 0usize..70000) {
            let _ = parse_frame(&bytes, max);
            let mut d = Deframer::new(max);
            let mut input = &bytes[..];
            while !input.is_empty() {
                match d.next_chunk(input) {
                    Ok((used, _)) => input = &input[used..],
                    Err(_) => break,
                }
            }
        }
    }
}
