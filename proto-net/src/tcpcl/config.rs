//! Agent configuration, loadable from a YAML file with the seed agent's option names.
//!
//! See `docs/config-tcpcl.md` for the file format. Every key is optional; unknown keys
//! are rejected so typos do not pass silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto_core::tcpcl::SessionConfig;
use serde::Deserialize;

use super::error::{ConfigError, Error, Result};

/// The TCPCL default port (RFC 9174 §8.1).
pub const DEFAULT_PORT: u16 = 4556;

/// An address to listen on at start-up (the seed's `ListenConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Host name or IP address.
    pub address: String,
    /// TCP port (default 4556).
    #[serde(default = "default_port")]
    pub port: u16,
}

/// A peer to connect to at start-up (the seed's `ConnectConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectConfig {
    /// Host name or IP address.
    pub address: String,
    /// TCP port (default 4556).
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

/// Agent configuration (the seed's `tcpcl.config.Config`, plus runtime limits).
///
/// Field names are the YAML keys. Times given as plain numbers are in seconds unless
/// stated otherwise.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Log level name (used by the CLI; the library logs through `log`).
    pub log_level: Option<String>,
    /// Test hooks of the seed agent; accepted and ignored.
    pub enable_test: Vec<String>,
    /// D-Bus address of the seed agent; accepted and ignored (no bus here).
    pub bus_addr: Option<String>,
    /// D-Bus service name of the seed agent; accepted and ignored.
    pub bus_service: Option<String>,
    /// Addresses [`Agent::start`](super::Agent::start) listens on.
    pub init_listen: Vec<ListenConfig>,
    /// Peers [`Agent::start`](super::Agent::start) connects to.
    pub init_connect: Vec<ConnectConfig>,
    /// Stop the agent once its last session closes (after at least one was opened).
    pub stop_on_close: bool,
    /// Offer TLS (CAN_TLS) when TLS credentials are configured.
    pub tls_enable: bool,
    /// Minimum TLS version: `"1.3"` (default) or `"1.2"`.
    pub tls_version: Option<String>,
    /// Allowed cipher suite names (rustls names, e.g. `TLS13_AES_128_GCM_SHA256`);
    /// empty or absent: the rustls defaults.
    pub tls_ciphers: Option<Vec<String>>,
    /// PEM file of CA certificates that authenticate peers.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM file with our certificate chain.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM file with our private key.
    pub tls_key_file: Option<PathBuf>,
    /// PEM file of certificate revocation lists: a peer certificate (or one of its CAs)
    /// they revoke fails the handshake; certificates no list covers pass.
    pub tls_crl_file: Option<PathBuf>,
    /// Diffie-Hellman parameters of the seed agent; accepted and ignored (rustls uses
    /// only ECDHE / X25519 key exchange).
    pub tls_dhparam: Option<PathBuf>,
    /// Refuse sessions without TLS (SESS_TERM Contact Failure). Absent means `false`.
    pub require_tls: Option<bool>,
    /// Require the peer certificate to authenticate the peer host (DNS-ID or
    /// IPADDR-ID) when one is present; failure ends the session with Contact Failure.
    pub require_host_authn: bool,
    /// Require the peer certificate to authenticate the peer's node ID (NODE-ID);
    /// failure ends the session with Contact Failure.
    pub require_node_authn: bool,
    /// Ignore network-level identifiers (RFC 9174 §4.4.5 RECOMMENDED, with
    /// `require_node_authn`): the host authentication result (DNS-ID / IPADDR-ID) is
    /// still reported, but a Failure no longer ends the session. Cannot be combined with
    /// `require_host_authn`. Absent means `false`: a certificate whose DNS-IDs and
    /// IPADDR-IDs all name someone else ends the session with Contact Failure.
    pub ignore_host_authn: bool,
    /// Require a present Extended Key Usage in the peer's certificate to contain
    /// `id-kp-bundleSecurity` (RFC 9174 §4.4.5 RECOMMENDED); absent means `false`, where
    /// the TLS role's `serverAuth` / `clientAuth` also passes.
    pub tls_require_bundle_eku: bool,
    /// Our node ID, a URI such as `dtn://node/` or `ipn:1.0`.
    pub node_id: String,
    /// Keepalive interval offered in SESS_INIT, seconds (0: none).
    pub keepalive_time: u16,
    /// Terminate an established session after this many seconds without transfers
    /// (0: never).
    pub idle_time: f64,
    /// Our Segment MRU (largest segment accepted), bytes.
    pub segment_size_mru: u64,
    /// Initial send segment size, bytes.
    pub segment_size_tx_initial: u64,
    /// Adapt the send segment size so each segment is acknowledged in about this many
    /// **milliseconds**; absent: fixed segment size.
    pub modulate_target_ack_time: Option<u64>,
    /// Our Transfer MRU (largest bundle accepted), bytes.
    pub transfer_mru: u64,
    /// Largest segment the runtime frames in one buffer, bytes: caps the send segment
    /// size (and so the memory one outgoing transfer holds) below the peer's MRU.
    pub segment_size_tx_max: u64,
    /// Most sessions at once: `connect` fails beyond it, and a further incoming
    /// connection gets our contact header and SESS_TERM Busy (RFC 9174 §6.1; at most
    /// 16 such refusals at once, beyond that it is closed without a word).
    pub max_sessions: usize,
    /// Bound on establishing a TCP connection, seconds.
    pub connect_timeout: f64,
    /// Bound on session establishment (contact headers, TLS, SESS_INIT), seconds.
    pub contact_timeout: f64,
    /// Wait for a SESS_TERM reply and for the final close, seconds.
    pub sess_term_timeout: f64,
    /// Local address to bind outgoing connections to (`IP` or `IP:port`).
    pub connect_local_address: Option<String>,
    /// Directory incoming bundles are streamed into (as `<session>-<transfer>.bundle`);
    /// absent: bundles are collected in memory and delivered as bytes, unless a sink
    /// chooser is set with [`Agent::set_sink_chooser`](super::Agent::set_sink_chooser).
    pub recv_dir: Option<PathBuf>,
    /// Largest bundle collected in memory ([`Sink::Memory`](super::Sink::Memory), the
    /// default without `recv_dir`), bytes: a transfer announced or growing larger is
    /// refused with XFER_REFUSE No Resources, so a peer cannot make the application
    /// buffer up to the Transfer MRU. File and writer sinks are not limited by it.
    pub max_memory_bundle: u64,
    /// Segments awaiting XFER_ACK per session (the core's ack ring; also how many
    /// acknowledgements may be queued before input processing pauses).
    pub max_pending_acks: usize,
    /// Bundles submitted and not yet finished per session before `send_*` blocks.
    pub max_queued_transfers: usize,
    /// Capacity of the event channel (see [`Agent::events`](super::Agent::events)).
    pub event_capacity: usize,
    /// TCPCL version outgoing sessions speak: 4 (RFC 9174, the default) or 3
    /// (RFC 7242, for ION, µD3TN, DTNME and HDTN nodes).
    pub tcpcl_version: u8,
    /// TCPCL versions listeners accept: absent accepts both (the peer's contact
    /// header decides), 3 or 4 only that one (a peer of the other version gets the
    /// version-mismatch answer). A v3 peer is refused when `require_tls` is set.
    pub accept_tcpcl_version: Option<u8>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log_level: None,
            enable_test: Vec::new(),
            bus_addr: None,
            bus_service: None,
            init_listen: Vec::new(),
            init_connect: Vec::new(),
            stop_on_close: false,
            tls_enable: true,
            tls_version: None,
            tls_ciphers: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_crl_file: None,
            tls_dhparam: None,
            require_tls: None,
            require_host_authn: false,
            require_node_authn: false,
            ignore_host_authn: false,
            tls_require_bundle_eku: false,
            node_id: String::new(),
            keepalive_time: 0,
            idle_time: 0.0,
            segment_size_mru: 10_485_760,
            segment_size_tx_initial: 104_857,
            modulate_target_ack_time: None,
            transfer_mru: 1 << 32,
            segment_size_tx_max: 4 << 20,
            max_sessions: 1024,
            connect_timeout: 10.0,
            contact_timeout: 30.0,
            sess_term_timeout: 10.0,
            connect_local_address: None,
            recv_dir: None,
            max_memory_bundle: 64 << 20,
            max_pending_acks: 64,
            max_queued_transfers: 16,
            event_capacity: 4096,
            tcpcl_version: 4,
            accept_tcpcl_version: None,
        }
    }
}

/// A [`ConfigError::InvalidValue`].
fn invalid(key: &'static str, reason: impl Into<String>) -> Error {
    Error::Config(ConfigError::InvalidValue {
        key,
        reason: reason.into(),
    })
}

fn secs(name: &'static str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| invalid(name, format!("invalid duration {v}")))
}

impl Config {
    /// A default configuration with this node ID.
    pub fn with_node_id(node_id: impl Into<String>) -> Config {
        Config {
            node_id: node_id.into(),
            ..Config::default()
        }
    }

    /// Loads a configuration from a YAML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)?;
        Config::from_yaml(&text).map_err(|e| match e {
            Error::Config(error) => Error::Config(ConfigError::File {
                path: path.to_owned(),
                error: Box::new(error),
            }),
            e => e,
        })
    }

    /// Parses a configuration from YAML text. An empty document is the default
    /// configuration.
    pub fn from_yaml(text: &str) -> Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| {
            let at = e.location();
            Error::Config(ConfigError::Yaml {
                message: e.to_string(),
                line: at.as_ref().map(|l| l.line()),
                column: at.as_ref().map(|l| l.column()),
            })
        })
    }

    /// `require_tls`, with absent meaning `false`.
    pub fn tls_required(&self) -> bool {
        self.require_tls.unwrap_or(false)
    }

    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Result<Option<Duration>> {
        if self.idle_time <= 0.0 {
            return Ok(None);
        }
        secs("idle_time", self.idle_time).map(Some)
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Result<Duration> {
        secs("connect_timeout", self.connect_timeout)
    }

    /// The local bind address for outgoing connections, if configured.
    pub fn local_bind(&self) -> Result<Option<SocketAddr>> {
        let Some(a) = &self.connect_local_address else {
            return Ok(None);
        };
        if let Ok(sa) = a.parse::<SocketAddr>() {
            return Ok(Some(sa));
        }
        a.parse::<std::net::IpAddr>()
            .map(|ip| Some(SocketAddr::new(ip, 0)))
            .map_err(|_| invalid("connect_local_address", format!("bad address {a:?}")))
    }

    /// Checks the configuration (node ID, timers, sizes). Whether TLS is available is
    /// checked when the agent is built, because a TLS context may be given directly
    /// ([`Agent::with_tls`](super::Agent::with_tls)) instead of through the `tls_*` files.
    pub fn validate(&self) -> Result<()> {
        self.session_config(true)?;
        self.connect_timeout()?;
        self.local_bind()?;
        if self.max_sessions == 0 {
            return Err(invalid("max_sessions", "must be at least 1"));
        }
        if self.event_capacity == 0 {
            return Err(invalid("event_capacity", "must be at least 1"));
        }
        if self.ignore_host_authn && self.require_host_authn {
            return Err(invalid(
                "ignore_host_authn",
                "cannot be combined with require_host_authn",
            ));
        }
        for (key, v) in [
            ("tcpcl_version", Some(self.tcpcl_version)),
            ("accept_tcpcl_version", self.accept_tcpcl_version),
        ] {
            if v.is_some_and(|v| v != 3 && v != 4) {
                return Err(invalid(key, "must be 3 or 4"));
            }
        }
        let v3_only = self.tcpcl_version == 3 || self.accept_tcpcl_version == Some(3);
        if v3_only {
            for (setting, on) in [
                ("require_tls", self.tls_required()),
                ("require_node_authn", self.require_node_authn),
            ] {
                if on {
                    return Err(Error::Config(ConfigError::NotInTcpclV3 { setting }));
                }
            }
        }
        Ok(())
    }

    /// The sans-IO session configuration this agent configuration implies; `can_tls`
    /// says whether TLS credentials are available.
    pub fn session_config(&self, can_tls: bool) -> Result<SessionConfig> {
        if self.tls_required() && !can_tls {
            return Err(Error::Config(ConfigError::TlsRequiredButUnavailable));
        }
        let cfg = SessionConfig {
            node_id: self.node_id.clone(),
            keepalive_interval: self.keepalive_time,
            segment_mru: self.segment_size_mru,
            transfer_mru: self.transfer_mru,
            tx_segment_max: self.segment_size_tx_max.max(1),
            tx_segment_size: self
                .segment_size_tx_initial
                .min(self.segment_size_tx_max)
                .max(1),
            modulate_target_ack_time: self.modulate_target_ack_time.map(Duration::from_millis),
            can_tls,
            require_tls: self.tls_required(),
            require_node_authn: self.require_node_authn,
            contact_timeout: secs("contact_timeout", self.contact_timeout)?,
            sess_term_timeout: secs("sess_term_timeout", self.sess_term_timeout)?,
            idle_timeout: self.idle_timeout()?,
            max_incoming_transfers: 4,
            max_outgoing_transfers: self.max_queued_transfers.max(1),
            max_pending_acks: self.max_pending_acks.max(1),
            session_extensions: Vec::new(),
            max_sess_init_len: 4096 + self.node_id.len(),
        };
        // Validate through the core (node ID syntax, sizes).
        proto_core::tcpcl::Session::new(
            cfg.clone(),
            proto_core::tcpcl::Side::Active,
            std::time::Instant::now(),
        )?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_keys_parse() {
        let c = Config::from_yaml(
            "node_id: dtn://a/\nkeepalive_time: 5\nidle_time: 2\nsegment_size_mru: 1000\n\
             init_listen:\n  - address: 127.0.0.1\n    port: 4557\n  - address: '::1'\n\
             stop_on_close: true\nrequire_tls: false\nmodulate_target_ack_time: 100\n\
             tls_enable: false\nenable_test: [private_extensions]\n",
        )
        .expect("parse");
        assert_eq!(c.node_id, "dtn://a/");
        assert_eq!(c.keepalive_time, 5);
        assert_eq!(c.init_listen.len(), 2);
        assert_eq!(c.init_listen[1].port, DEFAULT_PORT);
        assert!(c.stop_on_close);
        assert_eq!(
            c.idle_timeout().ok().flatten(),
            Some(Duration::from_secs(2))
        );
        assert!(c.validate().is_ok());
        assert!(Config::from_yaml("nope: 1").is_err());
        assert!(Config::from_yaml("").is_ok());
        assert!(Config::with_node_id("bad").validate().is_err());
    }
}
