//! What goes on the wire next: [`Session::poll_transmit`] and the send policy.
//!
//! One call yields either a whole control message or the header of the next
//! XFER_SEGMENT; the caller appends that segment's payload from its own source, so the
//! core never copies transfer data. The policy is the drain order documented on the
//! [module](super); runtimes, the pair harness and the fuzz targets all run this one.

use std::time::Instant;

use super::{Control, OutTransfer, PendingAck, Session, UsageError};
use crate::tcpcl::{
    ContactFlags, ContactHeader, ExtensionItems, Message, SegmentFlags, SessInit, TransferLength,
    XferSegmentHead, ITEM_HEADER_LEN,
};
use crate::EncodeError;

/// The largest XFER_SEGMENT header [`Session::poll_transmit`] ever writes: a START
/// segment carrying the Transfer Length extension item. Runtimes size the headroom
/// in front of their payload with it.
pub const MAX_SEGMENT_HEAD: usize = XferSegmentHead::MIN_LEN // type, flags, ID, data length
    + 4 // extension block length (START segments only)
    + ITEM_HEADER_LEN
    + 8; // the Transfer Length value

/// What [`Session::poll_transmit`] put at the front of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transmit {
    /// A whole control message of this many bytes (contact header, SESS_INIT,
    /// XFER_ACK, XFER_REFUSE, KEEPALIVE, SESS_TERM, MSG_REJECT).
    Control(usize),
    /// The header (`header_len` bytes) of the next XFER_SEGMENT of `transfer_id`. The
    /// caller must write exactly `data_len` payload bytes of that transfer, taken from
    /// its source at `offset` (bytes of the transfer already framed), right after the
    /// header, before anything else.
    Segment {
        /// Our transfer ID.
        transfer_id: u64,
        /// Offset within the transfer of the segment's first payload byte.
        offset: u64,
        /// Bytes of header written at the front of the buffer.
        header_len: usize,
        /// Payload bytes the caller appends after the header.
        data_len: usize,
        /// Whether this is the transfer's last segment (END flag).
        end: bool,
    },
}

/// How much data of an outgoing transfer the caller can append right now (answered
/// per [`Session::poll_transmit`] call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// Bytes available now, starting at the transfer's next unsent byte.
    pub available: u64,
    /// Whether the source ends after these bytes (the transfer's end is known).
    pub complete: bool,
}

/// A [`Session::poll_transmit`] call failed; nothing was consumed or registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransmitError {
    /// `out` is too small; nothing was consumed. A buffer of [`MAX_SEGMENT_HEAD`]
    /// bytes always holds a segment header; for control messages `needed` says how
    /// much the message waiting needs (the largest is our SESS_INIT).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The caller's source for this transfer is inconsistent with what was announced
    /// or what the peer accepts: more or fewer bytes than the total length given to
    /// [`Session::start_transfer`] ([`UsageError::LengthMismatch`]), or growing past
    /// the peer's Transfer MRU ([`UsageError::TransferTooLarge`]). A transfer that has
    /// sent a segment cannot be abandoned in TCPCL: the caller should close the
    /// session (one that has not can be dropped with [`Session::abandon_transfer`]).
    #[error("source of transfer {transfer_id}: {error}")]
    Source {
        /// Our transfer ID.
        transfer_id: u64,
        /// What is wrong with the source.
        error: UsageError,
    },
}

impl Session {
    /// Writes what goes on the wire next into `out`: a pending control message, or
    /// the header of the next segment of our current transfer; `Ok(None)` when there
    /// is nothing to send now. See the [module documentation](super) for the order.
    ///
    /// `ready(transfer_id)` tells how much of that transfer's data the caller could
    /// append now; it is called at most once per call, only for the transfer whose
    /// segment would be sent, and only when a segment may be sent. After
    /// [`Transmit::Segment`] the caller writes exactly `data_len` bytes of the
    /// transfer, from `offset`, right after the header (a vectored write needs no
    /// copy). On error nothing was consumed.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        ready: impl FnMut(u64) -> Ready,
    ) -> Result<Option<Transmit>, TransmitError> {
        self.now = now;
        if self.is_closed() {
            return Ok(None);
        }
        if let Some(&c) = self.ctrl.front() {
            let n = self.encode_control(c, out)?;
            self.ctrl.pop_front();
            self.last_tx = now;
            if matches!(c, Control::Keepalive) {
                self.keepalive_queued = false;
            }
            // A closing session is closed once its last control message is out.
            self.finish_closing();
            return Ok(Some(Transmit::Control(n)));
        }
        self.finish_closing();
        self.poll_segment(out, ready)
    }

    /// The segment half of the policy: the current transfer's next segment, if the
    /// ack backlog has room and its source has something to send.
    fn poll_segment(
        &mut self,
        out: &mut [u8],
        mut ready: impl FnMut(u64) -> Ready,
    ) -> Result<Option<Transmit>, TransmitError> {
        if self.pending_acks.len() >= self.config.max_pending_acks {
            return Ok(None);
        }
        let (Some(i), Some(n)) = (self.next_outgoing(), self.negotiated) else {
            return Ok(None);
        };
        let t = self.outgoing[i];
        let src = ready(t.id);
        let source_error = |error| TransmitError::Source {
            transfer_id: t.id,
            error,
        };
        // What is left of the announced total; `sent` never passes it.
        let remaining = t.total_len.map(|total| total.saturating_sub(t.sent));
        match (remaining, t.total_len) {
            (Some(rem), Some(announced))
                if src.available > rem || (src.complete && src.available < rem) =>
            {
                return Err(source_error(UsageError::LengthMismatch {
                    announced,
                    yielded: t.sent.saturating_add(src.available),
                }));
            }
            (None, _) if t.sent.saturating_add(src.available) > n.peer_transfer_mru => {
                return Err(source_error(UsageError::TransferTooLarge {
                    len: t.sent.saturating_add(src.available),
                    mru: n.peer_transfer_mru,
                }));
            }
            _ => {}
        }
        let limit = n
            .peer_segment_mru
            .min(self.tx_size)
            .min(self.config.tx_segment_max)
            .min(remaining.unwrap_or(u64::MAX))
            .min(u64::try_from(usize::MAX).unwrap_or(u64::MAX));
        let data_len = src.available.min(limit);
        // With a known total, the checks above make `complete && all of it` mean
        // exactly the announced length.
        let end = src.complete && data_len == src.available;
        if data_len == 0 && !end {
            // Nothing to send yet; never an empty segment that is not the last.
            return Ok(None);
        }
        let header_len = encode_segment_header(&t, data_len, end, out)?;
        let offset = t.sent;
        let t = &mut self.outgoing[i];
        t.started = true;
        t.sent = offset.saturating_add(data_len);
        t.end_sent = end;
        self.pending_acks.push_back(PendingAck {
            id: t.id,
            end: t.sent,
            sent_at: self.now,
        });
        self.last_tx = self.now;
        self.last_xfer = self.now;
        Ok(Some(Transmit::Segment {
            transfer_id: t.id,
            offset,
            header_len,
            data_len: usize::try_from(data_len).unwrap_or(usize::MAX),
            end,
        }))
    }

    fn encode_control(&self, c: Control, out: &mut [u8]) -> Result<usize, EncodeError> {
        match c {
            Control::Contact => {
                let flags = if self.config.can_tls {
                    ContactFlags::CAN_TLS
                } else {
                    ContactFlags::EMPTY
                };
                ContactHeader::new(flags).encode(out)
            }
            Control::SessInit => SessInit {
                keepalive: self.config.keepalive_interval,
                segment_mru: self.config.segment_mru,
                transfer_mru: self.config.transfer_mru,
                node_id: &self.config.node_id,
                extensions: ExtensionItems::parse(&self.config.session_extensions, 0)
                    .unwrap_or(ExtensionItems::EMPTY),
            }
            .encode(out),
            Control::Ack(m) => m.encode(out),
            Control::Refuse(m) => m.encode(out),
            Control::Keepalive => Message::Keepalive.encode(out),
            Control::Term(m) => m.encode(out),
            Control::Reject(m) => m.encode(out),
        }
    }
}

/// Writes the header of `t`'s next segment: START (with the Transfer Length item when
/// the total is known and the transfer takes more than this one segment) on the
/// first, END on the last.
fn encode_segment_header(
    t: &OutTransfer,
    data_len: u64,
    end: bool,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut flags = SegmentFlags::EMPTY;
    let mut tl = [0u8; 8];
    let items = [TransferLength(t.total_len.unwrap_or(0)).item(false, &mut tl)];
    let mut ext = ExtensionItems::EMPTY;
    if !t.started {
        flags = flags | SegmentFlags::START;
        // RFC 9174 §5.2.5.1: a single-segment transfer carries no Transfer Length.
        if t.total_len.is_some() && !end {
            ext = ExtensionItems::from_slice(&items);
        }
    }
    if end {
        flags = flags | SegmentFlags::END;
    }
    XferSegmentHead::new(flags, t.id, ext, data_len).encode(out)
}
