//! RFC 1006 expedited data on a blocking connection: [`Connection::send_expedited`]
//! and [`Connection::recv`], which returns whichever comes first, a message or an ED.

use super::{Connection, Got, Want};
use crate::cotp::error::{Error, Result};
use crate::cotp::stream::Stream;
use std::time::Instant;

/// Expedited data units `recv_data` keeps for [`Connection::recv`] before it stops
/// reading with [`Error::ExpeditedBacklog`] (16 octets each at most).
pub(super) const MAX_QUEUED: usize = 64;

/// What [`Connection::recv`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A whole message (DTs up to EOT).
    Message(Vec<u8>),
    /// The user data of one ED (1 to 16 octets).
    Expedited(Vec<u8>),
}

impl<S: Stream> Connection<S> {
    /// Whether RFC 1006 expedited data was negotiated (proposed in the CR and
    /// selected in the CC).
    pub fn expedited_selected(&self) -> bool {
        self.core.expedited_selected()
    }

    /// Sends `data` (1 to 16 octets) as one ED. It is written at once, ahead of any
    /// message sent later; the peer reads it with `recv`. Fails with
    /// [`UsageError::ExpeditedNotSelected`](proto_core::cotp::connection::UsageError)
    /// when the option was not negotiated.
    pub fn send_expedited(&mut self, data: &[u8]) -> Result<()> {
        self.core.send_expedited(data)?;
        self.flush_control_or_verdict()
    }

    /// Receives the next message or expedited data unit, whichever completes first
    /// (expedited data queued while [`recv_data`](Self::recv_data) waited comes
    /// first).
    pub fn recv(&mut self) -> Result<Received> {
        if let Some(e) = self.expedited.pop_front() {
            return Ok(Received::Expedited(e));
        }
        let deadline = self.timeout.map(|t| Instant::now() + t);
        match self.drive(Want::Any, deadline)? {
            Got::Message(m) => Ok(Received::Message(m)),
            Got::Expedited(e) => Ok(Received::Expedited(e)),
            _ => Err(Error::Closed),
        }
    }
}
