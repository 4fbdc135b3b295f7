//! Configuration of a COTP connection, for either side.

use crate::cotp::params::Param;
use crate::cotp::{TpduSize, Tsap};
use crate::wire::Writer;
use core::time::Duration;

/// Settings for a [`Connection`](super::Connection). Everything is sized from these
/// when the connection is constructed.
///
/// ```
/// use proto_core::cotp::{connection::Config, TpduSize};
/// let cfg = Config {
///     calling_tsap: Some("0100".parse()?),
///     called_tsap: Some("0102".parse()?),
///     tpdu_size: TpduSize::S1024,
///     ..Config::default()
/// };
/// assert_eq!(cfg.max_dt_payload(), 1021);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Our reference (source reference in the CR, or in the CC we send).
    pub src_ref: u16,
    /// Active side: calling TSAP sent as C1.
    pub calling_tsap: Option<Tsap>,
    /// Active side: called TSAP sent as C2.
    pub called_tsap: Option<Tsap>,
    /// Passive side: the called TSAP this responder answers to; a CR naming another is
    /// refused with DR "address unknown". `None` accepts any.
    pub local_tsap: Option<Tsap>,
    /// Active side: the TPDU size proposed in C0. Passive side: the largest size
    /// accepted (larger proposals are negotiated down).
    pub tpdu_size: TpduSize,
    /// Active side: a preferred maximum TPDU size in bytes, sent as F0 (rounded down to
    /// a multiple of 128).
    pub preferred_max_tpdu_size: Option<u32>,
    /// Additional parameters appended to the CR's variable part, already encoded
    /// (build it with [`Config::with_param`]).
    pub extra_params: Vec<u8>,
    /// Largest reassembled message accepted; a bigger one is refused with a DR and a
    /// [`ProtocolError::MessageTooLarge`](super::ProtocolError::MessageTooLarge).
    pub max_message_size: usize,
    /// Largest TPKT frame accepted (header included), at most 65535.
    pub max_frame_len: usize,
    /// Largest non-DT TPDU (CR, CC, DR, ER, …) buffered whole.
    pub max_control_tpdu: usize,
    /// Bound on connection establishment (CR to CC, or waiting for the CR).
    pub connect_timeout: Option<Duration>,
    /// Close with a DR when nothing is received for this long while connected.
    pub inactivity_timeout: Option<Duration>,
    /// RFC 1006 expedited data. Active side: propose it in the CR (C6 bit 1). Passive
    /// side: select it in the CC when the CR proposes it. It is in use when both did
    /// ([`Connection::expedited_selected`](super::Connection::expedited_selected));
    /// otherwise a received ED is an invalid TPDU (ER).
    pub expedited: bool,
    /// Passive side: report [`Event::ConnectRequested`](super::Event::ConnectRequested)
    /// and wait for [`accept`](super::Connection::accept) or
    /// [`refuse`](super::Connection::refuse) instead of deciding by policy at once.
    pub manual_accept: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            src_ref: 1,
            calling_tsap: None,
            called_tsap: None,
            local_tsap: None,
            tpdu_size: TpduSize::S1024,
            preferred_max_tpdu_size: None,
            extra_params: Vec::new(),
            max_message_size: 1 << 20,
            max_frame_len: crate::tpkt::DEFAULT_MAX_FRAME_LEN,
            max_control_tpdu: 8192 + 256,
            connect_timeout: Some(Duration::from_secs(10)),
            inactivity_timeout: None,
            expedited: false,
            manual_accept: false,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A parameter would not fit the CR header (254 octets).
    #[error("the CR header would exceed 254 octets")]
    HeaderTooLong,
    /// `max_frame_len` is outside 7..=65535 or `max_control_tpdu` is below 128.
    #[error("{0}")]
    Limits(&'static str),
    /// A raw CR given to [`Connection::new_raw`](super::Connection::new_raw) is
    /// not a CR.
    #[error("the raw TPDU is not a connection request: {0}")]
    NotAConnectionRequest(&'static str),
}

impl Config {
    /// Appends one encoded parameter to [`extra_params`](Config::extra_params).
    pub fn with_param(mut self, param: Param<'_>) -> Result<Self, ConfigError> {
        let mut buf = [0u8; 257];
        let mut w = Writer::new(&mut buf);
        let list = [param];
        crate::cotp::Params::list(&list)
            .encode(&mut w)
            .map_err(|_| ConfigError::HeaderTooLong)?;
        let n = w.position();
        self.extra_params.extend_from_slice(&buf[..n]);
        if self.extra_params.len() > 200 {
            return Err(ConfigError::HeaderTooLong);
        }
        Ok(self)
    }

    /// Data bytes per DT at the configured TPDU size (size minus the 3-byte header).
    pub fn max_dt_payload(&self) -> usize {
        self.tpdu_size.bytes() - crate::cotp::tpdu::DT_CLASS0_HEADER_LEN
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(crate::tpkt::MIN_FRAME_LEN..=crate::tpkt::DEFAULT_MAX_FRAME_LEN)
            .contains(&self.max_frame_len)
        {
            return Err(ConfigError::Limits(
                "max_frame_len must be within 7..=65535",
            ));
        }
        if self.max_control_tpdu < 128 {
            return Err(ConfigError::Limits("max_control_tpdu must be at least 128"));
        }
        if self.extra_params.len() > 200 {
            return Err(ConfigError::HeaderTooLong);
        }
        Ok(())
    }
}
