//! The command line of `proto tcpcl`: its subcommands and their flags, and the agent
//! configuration they make (the `--config` file with the flags applied on top).

use crate::config_file::{self, Command as ConfigFor};
use crate::units::parse_size;
use anyhow::{bail, Context, Result};
use proto_net::tcpcl::{Config, XferRefuseReason};
use std::path::PathBuf;

/// TCPCLv4 (RFC 9174): listen, send, and a throw-away PKI for TLS.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TcpclCommand {
    /// Accept TCPCL sessions; store, hash and count every bundle that arrives.
    Listen(Box<ListenArgs>),
    /// Connect and send files (or stdin) as bundles; exit 0 only when every byte was
    /// acknowledged.
    Send(Box<SendArgs>),
    /// Generate a throw-away CA and certificates with TCPCL node IDs (for TLS tests and
    /// examples).
    GenCerts(GenCertsArgs),
}

/// Agent options shared by `listen` and `send`. Flags override `--config`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AgentArgs {
    /// Our node ID, a URI such as dtn://node-a/ or ipn:1.0 (may come from --config).
    #[arg(long, value_name = "URI", required_unless_present = "config")]
    pub(super) node_id: Option<String>,
    /// YAML agent configuration with the seed agent's option names
    /// (docs/config-tcpcl.md); flags override it.
    #[arg(short, long, value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
    /// Our certificate chain (PEM); needs --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(super) tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(super) tls_key: Option<PathBuf>,
    /// CA certificate(s) that authenticate peers (PEM); enables TLS.
    #[arg(long, value_name = "FILE")]
    pub(super) tls_ca: Option<PathBuf>,
    /// Certificate revocation lists (PEM): a peer certificate they revoke is refused.
    #[arg(long, value_name = "FILE")]
    pub(super) tls_crl: Option<PathBuf>,
    /// Refuse sessions without TLS (SESS_TERM Contact Failure).
    #[arg(long)]
    pub(super) require_tls: bool,
    /// Do not offer TLS (clear CAN_TLS) even if the configuration names certificates.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_ca", "tls_crl", "require_tls"])]
    pub(super) no_tls: bool,
    /// Minimum TLS version: 1.3 (default) or 1.2 (only when asked for).
    #[arg(long, value_name = "VER", value_parser = ["1.2", "1.3"])]
    pub(super) tls_version: Option<String>,
    /// Allowed cipher suites, comma-separated (IANA, rustls or OpenSSL names).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(super) tls_ciphers: Vec<String>,
    /// The peer's certificate must authenticate its host (DNS-ID / IPADDR-ID).
    #[arg(long)]
    pub(super) require_host_authn: bool,
    /// The peer's certificate must authenticate its node ID (NODE-ID).
    #[arg(long)]
    pub(super) require_node_authn: bool,
    /// Ignore network-level identifiers: a certificate whose DNS-IDs / IPADDR-IDs name
    /// another host does not end the session (RFC 9174 §4.4.5, with
    /// --require-node-authn).
    #[arg(long, conflicts_with = "require_host_authn")]
    pub(super) ignore_host_authn: bool,
    /// A present Extended Key Usage in the peer's certificate must contain
    /// id-kp-bundleSecurity (RFC 9174 §4.4.5); serverAuth/clientAuth alone is refused.
    #[arg(long)]
    pub(super) tls_require_bundle_eku: bool,
    /// Keepalive interval offered in SESS_INIT, seconds (0: none).
    #[arg(long, value_name = "SECS")]
    pub(super) keepalive: Option<u16>,
    /// End a session after this many seconds without transfers (0: never).
    #[arg(long, value_name = "SECS")]
    pub(super) idle_time: Option<f64>,
    /// Our Segment MRU: the largest segment we accept (K, M, G suffixes: binary).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(super) segment_mru: Option<u64>,
    /// Our Transfer MRU: the largest bundle we accept.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(super) transfer_mru: Option<u64>,
    /// Segment size we send (capped by the peer's Segment MRU).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(super) tx_segment_size: Option<u64>,
    /// Adapt the send segment size so each segment is acknowledged in about this many
    /// milliseconds.
    #[arg(long, value_name = "MS")]
    pub(super) target_ack_time: Option<u64>,
    /// Bound on session setup (contact headers, TLS, SESS_INIT), seconds.
    #[arg(long, value_name = "SECS")]
    pub(super) contact_timeout: Option<f64>,
    /// Wait this long for the peer's SESS_TERM reply, seconds.
    #[arg(long, value_name = "SECS")]
    pub(super) sess_term_timeout: Option<f64>,
}

/// `proto tcpcl listen`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto tcpcl listen --bind 0.0.0.0:4556 --node-id dtn://rx/ --out-dir received/\n  \
    proto tcpcl listen --bind 127.0.0.1:4556 --node-id dtn://rx/ --count 1 \\\n      \
    --tls-cert certs/rx.pem --tls-key certs/rx.key --tls-ca certs/ca.pem --require-tls\n\n\
    Each bundle prints one line on stdout:\n  \
    TIME #SEQ from NODE-ID (ADDR) SIZE bytes sha256=HEX [file=PATH]")]
pub(crate) struct ListenArgs {
    /// Address to listen on (`HOST[:PORT]`; the port defaults to 4556, the TCPCL port).
    /// Default: the init_listen addresses of --config, else 0.0.0.0:4556 (all
    /// interfaces).
    #[arg(short, long, value_name = "ADDR")]
    pub(super) bind: Option<String>,
    /// Write each bundle to DIR/tcpcl-NNNNNN.bin, streamed into a hidden .part file and
    /// published when complete (numbers already taken are skipped). Default: recv_dir
    /// of --config.
    #[arg(short, long, value_name = "DIR")]
    pub(super) out_dir: Option<PathBuf>,
    /// Exit (gracefully) after N bundles.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) count: Option<u64>,
    /// Most sessions at once. At the limit, a newcomer closes the oldest session still
    /// in its contact phase; with none, it is refused with SESS_TERM Busy.
    #[arg(long, value_name = "N")]
    pub(super) max_sessions: Option<usize>,
    /// Refuse every transfer with this XFER_REFUSE reason (for testing senders):
    /// unknown, completed, no-resources, retransmit, not-acceptable, extension-failure,
    /// session-terminating or a number.
    #[arg(long, value_name = "REASON", value_parser = parse_refuse_reason)]
    pub(super) refuse: Option<XferRefuseReason>,
    /// TCPCL versions to accept: 3 (RFC 7242), 4 (RFC 9174) or any (default: the
    /// peer's contact header decides).
    #[arg(long, value_name = "3|4|any", value_parser = super::version::parse_accept)]
    pub(super) tcpcl_version: Option<super::version::Accept>,
    #[command(flatten)]
    pub(super) bundle: super::bundle::ListenBundleArgs,
    #[command(flatten)]
    pub(super) agent: AgentArgs,
}

/// `proto tcpcl send`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto tcpcl send --to 127.0.0.1:4556 --node-id dtn://tx/ bundle1.bin bundle2.bin\n  \
    tar c docs/ | proto tcpcl send --to peer.example:4556 --node-id dtn://tx/ \\\n      \
    --tls-ca certs/ca.pem --tls-cert certs/tx.pem --tls-key certs/tx.key --require-tls -")]
pub(crate) struct SendArgs {
    /// Peer address (`HOST[:PORT]`; the port defaults to 4556, the TCPCL port).
    /// Default: the one init_connect entry of --config.
    #[arg(short, long, value_name = "ADDR", required_unless_present = "config")]
    pub(super) to: Option<String>,
    /// DNS name of the peer for TLS (SNI and host authentication); default: the host
    /// part of --to.
    #[arg(long, value_name = "NAME")]
    pub(super) server_name: Option<String>,
    /// Bound on the TCP connect, seconds.
    #[arg(long, value_name = "SECS")]
    pub(super) connect_timeout: Option<f64>,
    /// Local address to connect from (IP or IP:PORT).
    #[arg(long, value_name = "ADDR")]
    pub(super) local_address: Option<String>,
    /// Give up when a transfer gets no acknowledgement for this many seconds (0: wait
    /// forever).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub(super) ack_timeout: u64,
    /// Files to send, one bundle each; `-` reads stdin (streamed, length unknown); a
    /// directory sends every regular file under it.
    #[arg(value_name = "FILE|DIR|-", required = true)]
    pub(super) files: Vec<PathBuf>,
    /// TCPCL version to speak: 4 (RFC 9174, default) or 3 (RFC 7242: no TLS; without
    /// acknowledgments from the peer, delivery is not confirmed).
    #[arg(long, value_name = "3|4", value_parser = super::version::parse_version)]
    pub(super) tcpcl_version: Option<u8>,
    #[command(flatten)]
    pub(super) bundle: super::bundle::SendBundleArgs,
    #[command(flatten)]
    pub(super) agent: AgentArgs,
}

/// `proto tcpcl gen-certs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    proto tcpcl gen-certs --out certs --node-id dtn://rx/ --node-id dtn://tx/ --dns localhost\n  \
    # writes certs/ca.pem, certs/rx.pem, certs/rx.key, certs/tx.pem, certs/tx.key")]
pub(crate) struct GenCertsArgs {
    /// Directory to write ca.pem and NAME.pem / NAME.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(super) out: PathBuf,
    /// Issue a certificate for this node ID (NODE-ID, otherName id-on-bundleEID); repeat
    /// for more. NAME is the node ID's host/path (dtn://rx/ -> rx, ipn:2.0 -> ipn-2.0).
    #[arg(long, value_name = "URI", required = true)]
    pub(super) node_id: Vec<String>,
    /// Also put this DNS name (DNS-ID) in every certificate; repeatable.
    #[arg(long, value_name = "NAME")]
    pub(super) dns: Vec<String>,
    /// Also put this IP address (IPADDR-ID) in every certificate; repeatable.
    #[arg(long, value_name = "IP")]
    pub(super) ip: Vec<std::net::IpAddr>,
    /// Validity of the certificates, days, 1 to 36500 (the CA is valid for a year).
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = parse_days)]
    pub(super) days: u64,
    /// Overwrite existing files.
    #[arg(long)]
    pub(super) force: bool,
}

/// Longest certificate validity `gen-certs` issues, days (100 years).
const MAX_DAYS: u64 = 36_500;

/// `--days`: 0 would issue certificates that expire as they are made, so it is refused
/// rather than warned about; very large values would overflow the clock.
fn parse_days(text: &str) -> Result<u64, String> {
    let days: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of days"))?;
    match days {
        0 => {
            Err("0 days would issue certificates that have already expired; give 1 or more".into())
        }
        d if d > MAX_DAYS => Err(format!(
            "{d} days is more than the {MAX_DAYS} (100 years) allowed"
        )),
        d => Ok(d),
    }
}

fn parse_refuse_reason(text: &str) -> Result<XferRefuseReason, String> {
    if let Ok(n) = text.parse::<u8>() {
        return Ok(XferRefuseReason(n));
    }
    let want = text.to_ascii_lowercase().replace(['-', '_'], " ");
    (0..=u8::MAX)
        .map(XferRefuseReason)
        .find(|r| r.name() == Some(want.as_str()))
        .ok_or_else(|| format!("{text:?} is not an XFER_REFUSE reason"))
}

impl AgentArgs {
    /// The configuration file (or defaults) with the flags applied; `cmd` is the
    /// command loading it (see [`config_file::load`]).
    pub(super) fn config(&self, cmd: ConfigFor) -> Result<Config> {
        let mut c = match &self.config {
            Some(p) => config_file::load(p, cmd)?,
            None => Config::default(),
        };
        if let Some(n) = &self.node_id {
            c.node_id.clone_from(n);
        }
        if c.node_id.is_empty() {
            bail!("no node ID: give --node-id URI (or node_id in the configuration file)");
        }
        if self.tls_cert.is_some() {
            c.tls_cert_file.clone_from(&self.tls_cert);
            c.tls_key_file.clone_from(&self.tls_key);
        }
        if self.tls_ca.is_some() {
            c.tls_ca_file.clone_from(&self.tls_ca);
        }
        if self.tls_crl.is_some() {
            c.tls_crl_file.clone_from(&self.tls_crl);
        }
        if self.tls_cert.is_some() || self.tls_ca.is_some() {
            c.tls_enable = true;
        }
        if self.require_tls {
            c.require_tls = Some(true);
        }
        if self.no_tls {
            c.tls_enable = false;
            c.require_tls = Some(false);
        }
        if let Some(v) = &self.tls_version {
            c.tls_version = Some(v.clone());
        }
        if !self.tls_ciphers.is_empty() {
            c.tls_ciphers = Some(self.tls_ciphers.clone());
        }
        c.require_host_authn |= self.require_host_authn;
        c.require_node_authn |= self.require_node_authn;
        c.ignore_host_authn |= self.ignore_host_authn;
        c.tls_require_bundle_eku |= self.tls_require_bundle_eku;
        if let Some(k) = self.keepalive {
            c.keepalive_time = k;
        }
        if let Some(t) = self.idle_time {
            c.idle_time = t;
        }
        if let Some(n) = self.segment_mru {
            c.segment_size_mru = n;
        }
        if let Some(n) = self.transfer_mru {
            c.transfer_mru = n;
        }
        if let Some(n) = self.tx_segment_size {
            c.segment_size_tx_initial = n;
            c.segment_size_tx_max = c.segment_size_tx_max.max(n);
        }
        if let Some(ms) = self.target_ack_time {
            c.modulate_target_ack_time = Some(ms);
        }
        if let Some(t) = self.contact_timeout {
            c.contact_timeout = t;
        }
        if let Some(t) = self.sess_term_timeout {
            c.sess_term_timeout = t;
        }
        let tls_on = c.tls_enable && c.tls_ca_file.is_some();
        if c.tls_enable && c.tls_ca_file.is_none() && c.tls_cert_file.is_some() {
            bail!("TLS needs --tls-ca FILE (the CA that authenticates peers) besides --tls-cert");
        }
        if c.tls_required() && !tls_on {
            bail!("--require-tls needs TLS: give --tls-ca (and --tls-cert/--tls-key)");
        }
        if (c.require_node_authn || c.require_host_authn) && !tls_on {
            bail!("--require-node-authn/--require-host-authn need TLS: give --tls-ca (and --tls-cert/--tls-key)");
        }
        c.validate().context("invalid agent configuration")?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuse_reasons() {
        assert_eq!(
            parse_refuse_reason("no-resources"),
            Ok(XferRefuseReason::NO_RESOURCES)
        );
        assert_eq!(
            parse_refuse_reason("NOT_ACCEPTABLE"),
            Ok(XferRefuseReason::NOT_ACCEPTABLE)
        );
        assert_eq!(parse_refuse_reason("7"), Ok(XferRefuseReason(7)));
        assert!(parse_refuse_reason("nope").is_err());
    }
}
