//! Session and transfer extension items (RFC 9174 §4.8, §5.2.5), which share one
//! encoding: flags `u8`, item type `u16`, item length `u16`, value.
//!
//! An item block is decoded by validating it once ([`ExtensionItems::parse`], which
//! reports a malformed item with its offset) and then iterating it without copying:
//! every [`ExtensionItem`] borrows its value from the caller's input. For encoding, the
//! same [`ExtensionItems`] type wraps a caller's `&[ExtensionItem]` slice, so a message
//! built from a list and a message decoded from the wire look alike (and compare equal
//! when they hold the same items).

use std::fmt;

use super::error::DecodeError;
use super::flags::ExtensionFlags;
use crate::wire::{encode_with, EncodeError, Overflow, Reader, Writer};

/// Bytes in front of every item value: flags, type and length.
pub const ITEM_HEADER_LEN: usize = 5;

/// One extension item, borrowing its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtensionItem<'a> {
    /// Item flags (CRITICAL; other bits are reserved and kept).
    pub flags: ExtensionFlags,
    /// Item type code.
    pub item_type: u16,
    /// Item value.
    pub value: &'a [u8],
}

impl<'a> ExtensionItem<'a> {
    /// An item of `item_type` with `value`, marked critical or not.
    pub const fn new(critical: bool, item_type: u16, value: &'a [u8]) -> Self {
        ExtensionItem {
            flags: if critical {
                ExtensionFlags::CRITICAL
            } else {
                ExtensionFlags::EMPTY
            },
            item_type,
            value,
        }
    }

    /// Whether the CRITICAL flag is set.
    pub const fn is_critical(&self) -> bool {
        self.flags.is_critical()
    }

    /// Encoded size of the item, header included.
    pub const fn encoded_len(&self) -> usize {
        ITEM_HEADER_LEN.saturating_add(self.value.len())
    }

    /// Encodes the item into `out`, returning the number of bytes written.
    ///
    /// Fails with [`EncodeError::ValueTooLarge`] if the value exceeds 65535 bytes.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.checked_value_len()?;
        encode_with(out, self.encoded_len(), |w| self.write(len, w))
    }

    fn checked_value_len(&self) -> Result<u16, EncodeError> {
        u16::try_from(self.value.len()).map_err(|_| EncodeError::ValueTooLarge {
            field: "extension item value",
        })
    }

    fn write(&self, len: u16, w: &mut Writer<'_>) -> Result<(), Overflow> {
        w.put_u8(self.flags.0)?;
        w.put_u16(self.item_type)?;
        w.put_u16(len)?;
        w.put_slice(self.value)
    }
}

/// A block of extension items: either validated wire bytes or a caller's list.
///
/// Equality compares the items, not the representation.
#[derive(Clone, Copy)]
pub struct ExtensionItems<'a> {
    repr: Repr<'a>,
}

#[derive(Clone, Copy)]
enum Repr<'a> {
    /// A block that [`ExtensionItems::parse`] validated; `offset` is where it starts in
    /// the decoded message.
    Wire { block: &'a [u8], offset: usize },
    /// Items supplied by the caller for encoding.
    List(&'a [ExtensionItem<'a>]),
}

impl<'a> ExtensionItems<'a> {
    /// No items.
    pub const EMPTY: Self = ExtensionItems {
        repr: Repr::List(&[]),
    };

    /// Wraps a list of items to encode.
    pub const fn from_slice(items: &'a [ExtensionItem<'a>]) -> Self {
        ExtensionItems {
            repr: Repr::List(items),
        }
    }

    /// Validates an encoded item block.
    ///
    /// `offset` is where `block` starts within the message, so errors (and
    /// [`ExtensionIter::offset`]) give positions in message coordinates.
    ///
    /// ```
    /// use proto_core::tcpcl::{DecodeError, ExtensionItems};
    /// let block = [0x01, 0x00, 0x01, 0x00, 0x02, 0xaa, 0xbb];
    /// let items = ExtensionItems::parse(&block, 0)?;
    /// let item = items.iter().next().unwrap();
    /// assert!(item.is_critical());
    /// assert_eq!((item.item_type, item.value), (1, &[0xaa, 0xbb][..]));
    /// // An item whose length runs past the block is an error naming the offset.
    /// assert!(matches!(
    ///     ExtensionItems::parse(&block[..6], 0),
    ///     Err(DecodeError::Overrun { offset: 3, len: 2, available: 1, .. })
    /// ));
    /// # Ok::<(), DecodeError>(())
    /// ```
    pub fn parse(block: &'a [u8], offset: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(block);
        while !r.is_empty() {
            let item_offset = offset.saturating_add(r.position());
            let available = r.remaining();
            let Ok(header) = r.take(ITEM_HEADER_LEN) else {
                return Err(DecodeError::Overrun {
                    field: "extension item header",
                    offset: item_offset,
                    len: ITEM_HEADER_LEN as u64,
                    available,
                });
            };
            let len = u16::from_be_bytes([header[3], header[4]]);
            let available = r.remaining();
            if r.take(usize::from(len)).is_err() {
                return Err(DecodeError::Overrun {
                    field: "extension item length",
                    offset: item_offset.saturating_add(3),
                    len: u64::from(len),
                    available,
                });
            }
        }
        Ok(ExtensionItems {
            repr: Repr::Wire { block, offset },
        })
    }

    /// Iterates over the items, borrowing their values.
    pub fn iter(&self) -> ExtensionIter<'a> {
        match self.repr {
            Repr::Wire { block, offset } => ExtensionIter {
                inner: IterRepr::Wire(Reader::new(block)),
                base: offset,
                list_pos: 0,
            },
            Repr::List(items) => ExtensionIter {
                inner: IterRepr::List(items.iter()),
                base: 0,
                list_pos: 0,
            },
        }
    }

    /// Whether the block holds no items.
    pub fn is_empty(&self) -> bool {
        match self.repr {
            Repr::Wire { block, .. } => block.is_empty(),
            Repr::List(items) => items.is_empty(),
        }
    }

    /// The encoded block, if these items were decoded from the wire.
    pub fn wire_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            Repr::Wire { block, .. } => Some(block),
            Repr::List(_) => None,
        }
    }

    /// Encoded size of the whole block (without any enclosing length field).
    pub fn encoded_len(&self) -> usize {
        match self.repr {
            Repr::Wire { block, .. } => block.len(),
            Repr::List(items) => items
                .iter()
                .fold(0usize, |acc, i| acc.saturating_add(i.encoded_len())),
        }
    }

    /// Encodes the block into `out`, returning the number of bytes written.
    ///
    /// Fails with [`EncodeError::ValueTooLarge`] if an item value exceeds 65535 bytes.
    ///
    /// ```
    /// use proto_core::tcpcl::{ExtensionItem, ExtensionItems, TransferLength};
    /// let mut value = [0u8; 8];
    /// let items = [TransferLength(1000).item(false, &mut value)];
    /// let block = ExtensionItems::from_slice(&items);
    /// let mut out = [0u8; 13];
    /// assert_eq!(block.encode(&mut out), Ok(block.encoded_len()));
    /// assert_eq!(out, [0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 3, 0xe8]);
    /// # Ok::<(), proto_core::EncodeError>(())
    /// ```
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.checked_len()?;
        encode_with(out, len, |w| self.write(w))
    }

    /// The encoded size, after checking every item value fits its length field.
    pub(crate) fn checked_len(&self) -> Result<usize, EncodeError> {
        if let Repr::List(items) = self.repr {
            for item in items {
                item.checked_value_len()?;
            }
        }
        Ok(self.encoded_len())
    }

    /// Writes the block; call [`checked_len`](Self::checked_len) first.
    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Overflow> {
        match self.repr {
            Repr::Wire { block, .. } => w.put_slice(block),
            Repr::List(items) => {
                for item in items {
                    let len = u16::try_from(item.value.len()).map_err(|_| Overflow)?;
                    item.write(len, w)?;
                }
                Ok(())
            }
        }
    }

    /// The first item of `item_type`, if any.
    pub fn find(&self, item_type: u16) -> Option<ExtensionItem<'a>> {
        self.iter().find(|i| i.item_type == item_type)
    }

    /// The first critical item whose type `supported` rejects: a session must
    /// terminate (session items) or refuse the transfer (transfer items) over it.
    pub fn unsupported_critical(
        &self,
        mut supported: impl FnMut(u16) -> bool,
    ) -> Option<ExtensionItem<'a>> {
        self.iter()
            .find(|i| i.is_critical() && !supported(i.item_type))
    }

    /// The value of the first Transfer Length item, if there is one.
    ///
    /// An item of that type whose value is not 8 bytes long is an error naming its
    /// offset.
    pub fn transfer_length(&self) -> Result<Option<TransferLength>, DecodeError> {
        let mut it = self.iter();
        loop {
            let offset = it.offset();
            let Some(item) = it.next() else {
                return Ok(None);
            };
            if item.item_type != TransferLength::ITEM_TYPE {
                continue;
            }
            return match TransferLength::from_value(item.value) {
                Some(t) => Ok(Some(t)),
                None => Err(DecodeError::BadLength {
                    field: "Transfer Length extension value",
                    offset: offset.saturating_add(ITEM_HEADER_LEN),
                    len: item.value.len(),
                    expected: TransferLength::VALUE_LEN,
                }),
            };
        }
    }
}

impl PartialEq for ExtensionItems<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for ExtensionItems<'_> {}

impl Default for ExtensionItems<'_> {
    fn default() -> Self {
        ExtensionItems::EMPTY
    }
}

impl fmt::Debug for ExtensionItems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for ExtensionItems<'a> {
    type Item = ExtensionItem<'a>;
    type IntoIter = ExtensionIter<'a>;
    fn into_iter(self) -> ExtensionIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &ExtensionItems<'a> {
    type Item = ExtensionItem<'a>;
    type IntoIter = ExtensionIter<'a>;
    fn into_iter(self) -> ExtensionIter<'a> {
        self.iter()
    }
}

/// Iterator over an [`ExtensionItems`] block; yields items borrowing their values.
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    inner: IterRepr<'a>,
    base: usize,
    list_pos: usize,
}

#[derive(Debug, Clone)]
enum IterRepr<'a> {
    Wire(Reader<'a>),
    List(std::slice::Iter<'a, ExtensionItem<'a>>),
}

impl ExtensionIter<'_> {
    /// Offset of the next item: in message coordinates for a decoded block, from the
    /// start of the block for a caller's list.
    pub fn offset(&self) -> usize {
        match &self.inner {
            IterRepr::Wire(r) => self.base.saturating_add(r.position()),
            IterRepr::List(_) => self.list_pos,
        }
    }
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = ExtensionItem<'a>;

    fn next(&mut self) -> Option<ExtensionItem<'a>> {
        match &mut self.inner {
            IterRepr::Wire(r) => {
                // The block was validated by `parse`, so these reads succeed; a failure
                // would only end the iteration, never panic.
                let flags = ExtensionFlags(r.u8().ok()?);
                let item_type = r.u16().ok()?;
                let len = r.u16().ok()?;
                let value = r.take(usize::from(len)).ok()?;
                Some(ExtensionItem {
                    flags,
                    item_type,
                    value,
                })
            }
            IterRepr::List(items) => {
                let item = *items.next()?;
                self.list_pos = self.list_pos.saturating_add(item.encoded_len());
                Some(item)
            }
        }
    }
}

/// The Transfer Length transfer extension (RFC 9174 §5.2.5.1): the total length of the
/// bundle being transferred, sent on the START segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferLength(pub u64);

impl TransferLength {
    /// Item type code of the Transfer Length extension.
    pub const ITEM_TYPE: u16 = 0x0001;
    /// Length of its value.
    pub const VALUE_LEN: usize = 8;

    /// Decodes the item value; `None` unless it is exactly 8 bytes.
    pub fn from_value(value: &[u8]) -> Option<Self> {
        let bytes: [u8; 8] = value.try_into().ok()?;
        Some(TransferLength(u64::from_be_bytes(bytes)))
    }

    /// Decodes `item` if it is a well-formed Transfer Length item.
    pub fn from_item(item: &ExtensionItem<'_>) -> Option<Self> {
        if item.item_type != Self::ITEM_TYPE {
            return None;
        }
        Self::from_value(item.value)
    }

    /// The encoded item value.
    pub const fn to_value(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Builds the extension item, encoding its value into `buf`.
    pub fn item(self, critical: bool, buf: &mut [u8; 8]) -> ExtensionItem<'_> {
        *buf = self.to_value();
        let value: &[u8; 8] = buf;
        ExtensionItem::new(critical, Self::ITEM_TYPE, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpcl_extension_block_round_trip() {
        let mut tl = [0u8; 8];
        let lists: Vec<Vec<ExtensionItem<'_>>> = vec![
            vec![],
            vec![ExtensionItem::new(false, 0x1234, b"")],
            vec![
                TransferLength(u64::MAX).item(true, &mut tl),
                ExtensionItem::new(false, 0xffff, b"hello"),
                ExtensionItem {
                    flags: ExtensionFlags(0xfe),
                    item_type: 0,
                    value: &[0; 300],
                },
            ],
        ];
        for items in &lists {
            let block = ExtensionItems::from_slice(items);
            let mut out = vec![0u8; block.encoded_len()];
            assert_eq!(block.encode(&mut out), Ok(out.len()));
            let parsed = ExtensionItems::parse(&out, 17).unwrap();
            assert_eq!(parsed, block);
            assert_eq!(parsed.wire_bytes(), Some(&out[..]));
            assert_eq!(parsed.iter().collect::<Vec<_>>(), *items);
            assert_eq!(parsed.encoded_len(), out.len());
            let mut again = vec![0u8; out.len()];
            assert_eq!(parsed.encode(&mut again), Ok(out.len()));
            assert_eq!(again, out);
            if !out.is_empty() {
                assert_eq!(
                    block.encode(&mut again[1..]),
                    Err(EncodeError::BufferTooSmall { needed: out.len() })
                );
            }
        }
        let parsed_tl = {
            let items = &lists[2];
            let block = ExtensionItems::from_slice(items);
            block.transfer_length()
        };
        assert_eq!(parsed_tl, Ok(Some(TransferLength(u64::MAX))));
    }

    #[test]
    fn tcpcl_extension_malformed_blocks() {
        let cases: &[(&[u8], DecodeError)] = &[
            (
                &[0x00, 0x00, 0x01, 0x00],
                DecodeError::Overrun {
                    field: "extension item header",
                    offset: 100,
                    len: 5,
                    available: 4,
                },
            ),
            (
                &[0x00, 0x00, 0x01, 0x00, 0x03, 1, 2],
                DecodeError::Overrun {
                    field: "extension item length",
                    offset: 103,
                    len: 3,
                    available: 2,
                },
            ),
            (
                // Second item overruns.
                &[
                    0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x02, 0xff, 0xff, 9,
                ],
                DecodeError::Overrun {
                    field: "extension item length",
                    offset: 108,
                    len: 0xffff,
                    available: 1,
                },
            ),
        ];
        for (block, err) in cases {
            assert_eq!(ExtensionItems::parse(block, 100), Err(*err), "{block:02x?}");
        }
    }

    #[test]
    fn tcpcl_transfer_length_helpers() {
        let block = [0x00, 0x00, 0x01, 0x00, 0x04, 1, 2, 3, 4];
        let items = ExtensionItems::parse(&block, 20).unwrap();
        assert_eq!(
            items.transfer_length(),
            Err(DecodeError::BadLength {
                field: "Transfer Length extension value",
                offset: 25,
                len: 4,
                expected: 8
            })
        );
        assert_eq!(ExtensionItems::EMPTY.transfer_length(), Ok(None));
        let other = [0x01, 0x00, 0x02, 0x00, 0x00];
        let items = ExtensionItems::parse(&other, 0).unwrap();
        assert_eq!(items.transfer_length(), Ok(None));
        assert_eq!(
            items.unsupported_critical(|t| t == TransferLength::ITEM_TYPE),
            Some(ExtensionItem::new(true, 2, &[]))
        );
        assert_eq!(items.unsupported_critical(|_| true), None);
        assert_eq!(TransferLength::from_value(&[0; 9]), None);
        let mut buf = [0u8; 8];
        let item = TransferLength(42).item(false, &mut buf);
        assert_eq!(TransferLength::from_item(&item), Some(TransferLength(42)));
    }

    #[test]
    fn tcpcl_extension_value_too_large() {
        let big = vec![0u8; 65_536];
        let items = [ExtensionItem::new(false, 1, &big)];
        let block = ExtensionItems::from_slice(&items);
        let mut out = vec![0u8; block.encoded_len()];
        assert_eq!(
            block.encode(&mut out),
            Err(EncodeError::ValueTooLarge {
                field: "extension item value"
            })
        );
    }
}
