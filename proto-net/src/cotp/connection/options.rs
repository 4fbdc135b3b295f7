//! How an active connection is opened: [`ConnectOptions`], the seed API's
//! constructor arguments as a builder.

use crate::cotp::error::{Error, Result};
use proto_core::cotp::connection::Config;
use proto_core::cotp::{Param, TpduSize, Tsap};
use std::time::Duration;

/// How to open a connection: the seed API's constructor arguments.
///
/// ```
/// use proto_net::cotp::ConnectOptions;
/// use proto_core::cotp::TpduSize;
/// let opts = ConnectOptions::default()
///     .src_tsap("0100")?
///     .dst_tsap("0102")?
///     .max_tpdu_size(TpduSize::S1024);
/// # Ok::<(), proto_net::cotp::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    config: Config,
    /// Bound on TCP connect plus the CR/CC exchange.
    pub connect_timeout: Duration,
    /// Bound on each later receive and send; `None` blocks.
    pub timeout: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            config: Config {
                // The seed's defaults: source reference 0, TSAPs 0000 -> 0001, 1024 octets.
                src_ref: 0,
                calling_tsap: Tsap::new(&[0, 0]).ok(),
                called_tsap: Tsap::new(&[0, 1]).ok(),
                tpdu_size: TpduSize::S1024,
                ..Config::default()
            },
            connect_timeout: Duration::from_secs(10),
            timeout: None,
        }
    }
}

impl ConnectOptions {
    /// Source reference of the CR.
    pub fn src_ref(mut self, r: u16) -> Self {
        self.config.src_ref = r;
        self
    }

    /// Calling TSAP as hex (`"0100"`).
    pub fn src_tsap(mut self, hex: &str) -> Result<Self> {
        self.config.calling_tsap = Some(hex.parse()?);
        Ok(self)
    }

    /// Called TSAP as hex (`"0102"`).
    pub fn dst_tsap(mut self, hex: &str) -> Result<Self> {
        self.config.called_tsap = Some(hex.parse()?);
        Ok(self)
    }

    /// Calling TSAP as bytes.
    pub fn src_tsap_bytes(mut self, tsap: &[u8]) -> Result<Self> {
        self.config.calling_tsap = Some(Tsap::new(tsap)?);
        Ok(self)
    }

    /// Called TSAP as bytes.
    pub fn dst_tsap_bytes(mut self, tsap: &[u8]) -> Result<Self> {
        self.config.called_tsap = Some(Tsap::new(tsap)?);
        Ok(self)
    }

    /// TPDU size proposed in C0.
    pub fn max_tpdu_size(mut self, size: TpduSize) -> Self {
        self.config.tpdu_size = size;
        self
    }

    /// Preferred maximum TPDU size in bytes, proposed in F0.
    pub fn preferred_max_tpdu_size(mut self, bytes: u32) -> Self {
        self.config.preferred_max_tpdu_size = Some(bytes);
        self
    }

    /// The protocol class; only class 0 is implemented.
    pub fn protocol_class(self, class: u8) -> Result<Self> {
        if class != 0 {
            return Err(Error::Config(format!(
                "protocol class {class} is not supported (class 0 only)"
            )));
        }
        Ok(self)
    }

    /// An additional parameter for the CR.
    pub fn parameter(mut self, p: Param<'_>) -> Result<Self> {
        self.config = self.config.with_param(p)?;
        Ok(self)
    }

    /// Propose RFC 1006 expedited data in the CR (additional option selection C6,
    /// bit 1). [`Connection::expedited_selected`](super::Connection::expedited_selected)
    /// says whether the peer's CC selected it.
    pub fn expedited(mut self, on: bool) -> Self {
        self.config.expedited = on;
        self
    }

    /// Largest message `recv_data` accepts (default 1 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// Bound on each receive and send after the connection is up.
    pub fn timeout(mut self, t: Option<Duration>) -> Self {
        self.timeout = t;
        self
    }

    /// Bound on connection establishment.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// The full core configuration, for settings without a builder method.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    pub(crate) fn core_config(&self) -> Config {
        Config {
            connect_timeout: Some(self.connect_timeout),
            ..self.config.clone()
        }
    }
}
