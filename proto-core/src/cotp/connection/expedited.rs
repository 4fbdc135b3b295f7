//! Expedited data on a connection (RFC 1006 §5's extension to class 0): sending an
//! ED, and what a received one becomes. Negotiation is in the CR/CC handling of the
//! state machine; the TPDU rules are in [`crate::cotp::expedited`].

use super::{Connection, Event, Pending, ProtocolError, State, UsageError, PENDING_SLOTS};
use crate::cotp::codes::RejectCause;
use crate::cotp::expedited::{self as ed, MAX_ED_DATA};
use crate::cotp::tpdu::ExpeditedData;

use super::event::ExpeditedBytes;

impl Connection {
    /// Whether RFC 1006 expedited data is in use: our CR proposed it and the CC
    /// selected it (active side), or the CR proposed it and our configuration let the
    /// CC select it (passive side).
    pub fn expedited_selected(&self) -> bool {
        self.expedited
    }

    /// Queues an ED carrying `data` (1 to 16 octets) on an open connection that
    /// negotiated expedited data. It goes out with the control TPDUs
    /// ([`poll_transmit`](Self::poll_transmit)), so ahead of data framed after it.
    pub fn send_expedited(&mut self, data: &[u8]) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::NotOpen(self.state));
        }
        if !self.expedited {
            return Err(UsageError::ExpeditedNotSelected);
        }
        ed::check_len(data.len()).map_err(UsageError::Expedited)?;
        // Two slots stay free for the TPDUs the machine queues itself (a CC, the final
        // DR or ER), so queued EDs can never crowd out the end of the connection.
        if self.pending.len() + 2 >= PENDING_SLOTS {
            return Err(UsageError::QueueFull);
        }
        let mut bytes = [0u8; MAX_ED_DATA];
        bytes[..data.len()].copy_from_slice(data);
        self.pending
            .push(Pending::Ed(bytes, data.len() as u8))
            .map_err(|_| UsageError::QueueFull)
    }

    /// A received ED on a connection that negotiated it: reported as
    /// [`Event::Expedited`], or, when it breaks the RFC 1006 form or the 16-octet
    /// limit, answered with an ER (X.224 §6.22: an invalid TPDU in class 0) carrying
    /// its header, and the connection ends.
    pub(super) fn on_expedited(&mut self, buf: &[u8], e: &ExpeditedData<'_>) {
        let checked = ed::check_received(e).and_then(|()| {
            ExpeditedBytes::new(e.data).ok_or(ed::EdError::Length { len: e.data.len() })
        });
        match checked {
            Ok(bytes) => self.emit(Event::Expedited(bytes)),
            Err(err) => {
                self.echo_tpdu_header(buf);
                self.violation(
                    ProtocolError::InvalidExpedited(err),
                    Some(RejectCause::NOT_SPECIFIED),
                );
            }
        }
    }
}
