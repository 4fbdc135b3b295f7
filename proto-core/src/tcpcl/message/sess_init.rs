//! SESS_INIT (RFC 9174 §4.6): the session parameters each peer sends after the contact
//! header (and TLS, if negotiated).

use super::MessageType;
use crate::tcpcl::error::{DecodeError, Fail};
use crate::tcpcl::extension::ExtensionItems;
use crate::tcpcl::limits::DecodeLimits;
use crate::wire::{encode_with, EncodeError, Reader};

/// A SESS_INIT message, borrowing its node ID and extension items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessInit<'a> {
    /// Keepalive interval in seconds; 0 disables keepalives.
    pub keepalive: u16,
    /// Largest XFER_SEGMENT data the sender accepts.
    pub segment_mru: u64,
    /// Largest total transfer the sender accepts.
    pub transfer_mru: u64,
    /// The sender's node ID (a URI; UTF-8 validated on decode).
    pub node_id: &'a str,
    /// Session extension items.
    pub extensions: ExtensionItems<'a>,
}

impl<'a> SessInit<'a> {
    /// Bytes of a SESS_INIT besides the node ID and extension items.
    pub const FIXED_LEN: usize = 25;

    /// Encoded length, type byte included.
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN
            .saturating_add(self.node_id.len())
            .saturating_add(self.extensions.encoded_len())
    }

    /// Encodes the message into `out`, returning the number of bytes written.
    ///
    /// Fails with [`EncodeError::ValueTooLarge`] if the node ID exceeds 65535 bytes or
    /// the extension block 2^32-1 bytes.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let id_len = u16::try_from(self.node_id.len())
            .map_err(|_| EncodeError::ValueTooLarge { field: "node ID" })?;
        let ext_len = u32::try_from(self.extensions.checked_len()?).map_err(|_| {
            EncodeError::ValueTooLarge {
                field: "session extension items",
            }
        })?;
        encode_with(out, self.encoded_len(), |w| {
            w.put_u8(MessageType::SessInit.code())?;
            w.put_u16(self.keepalive)?;
            w.put_u64(self.segment_mru)?;
            w.put_u64(self.transfer_mru)?;
            w.put_u16(id_len)?;
            w.put_slice(self.node_id.as_bytes())?;
            w.put_u32(ext_len)?;
            self.extensions.write(w)
        })
    }

    /// Decodes the fields after the type byte.
    pub(crate) fn decode_body(r: &mut Reader<'a>, limits: &DecodeLimits) -> Result<Self, Fail> {
        let keepalive = r.u16()?;
        let segment_mru = r.u64()?;
        let transfer_mru = r.u64()?;
        let len_offset = r.position();
        let id_len = r.u16()?;
        // The extension length field follows the node ID and is needed too.
        let n = limits.check("node ID", len_offset, r.position(), id_len.into(), 4)?;
        let id_offset = r.position();
        let id = r.take(n)?;
        let node_id = std::str::from_utf8(id).map_err(|e| DecodeError::InvalidUtf8 {
            field: "node ID",
            offset: id_offset.saturating_add(e.valid_up_to()),
        })?;
        let len_offset = r.position();
        let ext_len = r.u32()?;
        let n = limits.check(
            "session extension items",
            len_offset,
            r.position(),
            ext_len.into(),
            0,
        )?;
        let ext_offset = r.position();
        let extensions = ExtensionItems::parse(r.take(n)?, ext_offset)?;
        Ok(SessInit {
            keepalive,
            segment_mru,
            transfer_mru,
            node_id,
            extensions,
        })
    }
}
