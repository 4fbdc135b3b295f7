//! XFER_SEGMENT (RFC 9174 §5.2.2): one segment of a bundle transfer.
//!
//! The header ([`XferSegmentHead`]: flags, transfer ID, transfer extension items on the
//! START segment, data length) is decoded and encoded separately from the data, so a
//! segment of any size streams through: the receiver decodes the head as soon as it is
//! present and then takes `data_len` bytes as they arrive; the sender encodes the head
//! and writes the caller's payload slice after it, with no copy.

use super::MessageType;
use crate::tcpcl::error::{finish, DecodeError, Fail};
use crate::tcpcl::extension::ExtensionItems;
use crate::tcpcl::flags::SegmentFlags;
use crate::tcpcl::limits::DecodeLimits;
use crate::tpkt::Status;
use crate::wire::{encode_with, EncodeError, Overflow, Reader, Short, Writer};

/// Everything of an XFER_SEGMENT up to and including the data length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XferSegmentHead<'a> {
    /// Segment flags (START, END; reserved bits kept).
    pub flags: SegmentFlags,
    /// The transfer this segment belongs to.
    pub transfer_id: u64,
    /// Transfer extension items; present on the wire only when START is set.
    pub extensions: ExtensionItems<'a>,
    /// Length of the data that follows the head.
    pub data_len: u64,
}

impl<'a> XferSegmentHead<'a> {
    /// Length of a head without START: type, flags, transfer ID, data length.
    pub const MIN_LEN: usize = 18;

    /// A head for `data_len` bytes of data.
    pub const fn new(
        flags: SegmentFlags,
        transfer_id: u64,
        extensions: ExtensionItems<'a>,
        data_len: u64,
    ) -> Self {
        XferSegmentHead {
            flags,
            transfer_id,
            extensions,
            data_len,
        }
    }

    /// Decodes the head of an XFER_SEGMENT at the start of `buf` (type byte first),
    /// returning it and the header length; the data need not be present.
    ///
    /// ```
    /// use proto_core::tcpcl::{DecodeLimits, Status, XferSegmentHead};
    /// // A 1 MiB middle segment: the head decodes from its 18 bytes alone.
    /// let head = [1, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0x10, 0, 0];
    /// let Status::Complete((h, len)) = XferSegmentHead::decode(&head, &DecodeLimits::UNLIMITED)? else {
    ///     panic!("incomplete")
    /// };
    /// assert_eq!((h.transfer_id, h.data_len, len), (9, 1 << 20, 18));
    /// # Ok::<(), proto_core::tcpcl::DecodeError>(())
    /// ```
    pub fn decode(
        buf: &'a [u8],
        limits: &DecodeLimits,
    ) -> Result<Status<(Self, usize)>, DecodeError> {
        let mut r = Reader::new(buf);
        let head = (|| {
            let offset = r.position();
            let t = r.u8()?;
            if t != MessageType::XferSegment.code() {
                return Err(DecodeError::UnknownMessageType {
                    offset,
                    message_type: t,
                }
                .into());
            }
            Self::decode_body(&mut r, limits)
        })();
        finish(head.map(|h| (h, r.position())))
    }

    /// Encoded length of the head, type byte included.
    pub fn encoded_len(&self) -> usize {
        if self.flags.is_start() {
            Self::MIN_LEN
                .saturating_add(4)
                .saturating_add(self.extensions.encoded_len())
        } else {
            Self::MIN_LEN
        }
    }

    /// Encodes only the head into `out`; the caller sends `data_len` bytes of data
    /// after it.
    ///
    /// Fails with [`EncodeError::ValueTooLarge`] if extension items are given without
    /// the START flag (they could not be sent) or do not fit the 32-bit length field.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let ext_len = self.checked_ext_len()?;
        encode_with(out, self.encoded_len(), |w| self.write(ext_len, w))
    }

    /// Checks the extension items can be sent; their length if START is set.
    fn checked_ext_len(&self) -> Result<Option<u32>, EncodeError> {
        if self.flags.is_start() {
            let len = u32::try_from(self.extensions.checked_len()?).map_err(|_| {
                EncodeError::ValueTooLarge {
                    field: "transfer extension items",
                }
            })?;
            Ok(Some(len))
        } else if !self.extensions.is_empty() {
            Err(EncodeError::ValueTooLarge {
                field: "transfer extension items without the START flag",
            })
        } else {
            Ok(None)
        }
    }

    fn write(&self, ext_len: Option<u32>, w: &mut Writer<'_>) -> Result<(), Overflow> {
        w.put_u8(MessageType::XferSegment.code())?;
        w.put_u8(self.flags.0)?;
        w.put_u64(self.transfer_id)?;
        if let Some(len) = ext_len {
            w.put_u32(len)?;
            self.extensions.write(w)?;
        }
        w.put_u64(self.data_len)
    }

    /// The whole segment, with `data` (whose length replaces `data_len`).
    pub const fn with_data(self, data: &'a [u8]) -> XferSegment<'a> {
        XferSegment {
            flags: self.flags,
            transfer_id: self.transfer_id,
            extensions: self.extensions,
            data,
        }
    }

    /// Decodes the fields after the type byte.
    pub(crate) fn decode_body(r: &mut Reader<'a>, limits: &DecodeLimits) -> Result<Self, Fail> {
        let flags = SegmentFlags(r.u8()?);
        let transfer_id = r.u64()?;
        let extensions = if flags.is_start() {
            let len_offset = r.position();
            let ext_len = r.u32()?;
            // The data length field follows the items and is part of the head.
            let n = limits.check(
                "transfer extension items",
                len_offset,
                r.position(),
                ext_len.into(),
                8,
            )?;
            let ext_offset = r.position();
            ExtensionItems::parse(r.take(n)?, ext_offset)?
        } else {
            ExtensionItems::EMPTY
        };
        let data_len = r.u64()?;
        Ok(XferSegmentHead {
            flags,
            transfer_id,
            extensions,
            data_len,
        })
    }

    /// Takes the data following a decoded head from `r`.
    ///
    /// A length beyond what fits in memory is simply never complete (`Partial`), unless
    /// `limits` bounds it.
    pub(crate) fn take_data(
        &self,
        r: &mut Reader<'a>,
        limits: &DecodeLimits,
    ) -> Result<&'a [u8], Fail> {
        let start = r.position();
        if limits.max_len != usize::MAX {
            limits.check(
                "segment data",
                start.saturating_sub(8),
                start,
                self.data_len,
                0,
            )?;
        }
        let available = r.remaining();
        match usize::try_from(self.data_len) {
            Ok(n) if n <= available => Ok(r.take(n)?),
            _ => Err(Short {
                offset: start,
                needed: usize::try_from(self.data_len.saturating_sub(available as u64))
                    .unwrap_or(usize::MAX),
            }
            .into()),
        }
    }
}

/// A whole XFER_SEGMENT, borrowing its extension items and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XferSegment<'a> {
    /// Segment flags (START, END; reserved bits kept).
    pub flags: SegmentFlags,
    /// The transfer this segment belongs to.
    pub transfer_id: u64,
    /// Transfer extension items; present on the wire only when START is set.
    pub extensions: ExtensionItems<'a>,
    /// The segment's data.
    pub data: &'a [u8],
}

impl<'a> XferSegment<'a> {
    /// The head describing this segment.
    pub const fn head(&self) -> XferSegmentHead<'a> {
        XferSegmentHead {
            flags: self.flags,
            transfer_id: self.transfer_id,
            extensions: self.extensions,
            data_len: self.data.len() as u64,
        }
    }

    /// Encoded length, type byte and data included.
    pub fn encoded_len(&self) -> usize {
        self.head().encoded_len().saturating_add(self.data.len())
    }

    /// Encodes the whole segment into `out` (head, then a copy of the data).
    ///
    /// To avoid the copy, encode [`head`](Self::head) and send the data slice after it.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let head = self.head();
        let ext_len = head.checked_ext_len()?;
        encode_with(out, self.encoded_len(), |w| {
            head.write(ext_len, w)?;
            w.put_slice(self.data)
        })
    }
}
