//! What `proto tcpcl listen` and `send` make of a `--config FILE` (docs/config-tcpcl.md).
//!
//! The agent acts on most keys itself. The rest are the CLI's business, and none may
//! pass silently:
//!
//! - `log_level` sets the log level (unless `RUST_LOG` is set, which wins);
//! - `init_listen` is where `listen` listens when `--bind` is not given, and
//!   `init_connect` the peer `send` connects to when `--to` is not given (exactly one);
//! - `recv_dir` is `listen`'s `--out-dir` when that flag is not given;
//! - keys the command cannot honour get a warning naming the key: the seed's D-Bus,
//!   test-hook and DH-parameter keys always, `init_connect` and `max_memory_bundle` in
//!   `listen`, `init_listen` in `send`.

use std::path::Path;

use anyhow::{anyhow, Result};
use proto_net::tcpcl::{Config, ConfigError, Error as AgentError};

use crate::logging;

/// The command that loads the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// `proto tcpcl listen`.
    Listen,
    /// `proto tcpcl send`.
    Send,
}

/// Loads `path`, applies its `log_level` and prints a warning for every key the
/// command ignores. Errors name the file (and the key, for a bad value).
pub(crate) fn load(path: &Path, cmd: Command) -> Result<Config> {
    let c = Config::from_file(path).map_err(|e| match e {
        // The I/O error is the whole story: not wrapped, so its cause is said once.
        AgentError::Io(io) => anyhow!(
            "cannot read the configuration file {}: {io}",
            path.display()
        ),
        AgentError::Config(ConfigError::File { error, .. }) => {
            anyhow!("invalid configuration file {}: {error}", path.display())
        }
        e => anyhow!("invalid configuration file {}: {e}", path.display()),
    })?;
    if let Some(level) = &c.log_level {
        let filter = logging::filter_from_config(level).map_err(|e| {
            anyhow!(
                "invalid configuration file {}: log_level: {e}",
                path.display()
            )
        })?;
        logging::set_default_level(&filter);
    }
    for w in ignored_keys(&c, cmd) {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok(c)
}

/// One sentence per key that `c` sets and `cmd` does not act on, each starting with
/// the key's name.
pub(crate) fn ignored_keys(c: &Config, cmd: Command) -> Vec<String> {
    let mut w = Vec::new();
    if !c.enable_test.is_empty() {
        w.push("enable_test is ignored: proto has none of the seed agent's test hooks".into());
    }
    if c.bus_addr.is_some() {
        w.push("bus_addr is ignored: proto has no D-Bus interface".into());
    }
    if c.bus_service.is_some() {
        w.push("bus_service is ignored: proto has no D-Bus interface".into());
    }
    if c.tls_dhparam.is_some() {
        w.push(
            "tls_dhparam is ignored: TLS uses only ECDHE key exchange, which needs no \
             Diffie-Hellman parameters"
                .into(),
        );
    }
    match cmd {
        Command::Listen => {
            if !c.init_connect.is_empty() {
                w.push(
                    "init_connect is ignored by `proto tcpcl listen`, which only accepts \
                     sessions (`proto tcpcl send` connects to it)"
                        .into(),
                );
            }
            if c.max_memory_bundle != Config::default().max_memory_bundle {
                w.push(
                    "max_memory_bundle has no effect in `proto tcpcl listen`: bundles are \
                     streamed to --out-dir / recv_dir (or only hashed), never collected in \
                     memory; transfer_mru limits their size"
                        .into(),
                );
            }
        }
        Command::Send => {
            if !c.init_listen.is_empty() {
                w.push(
                    "init_listen is ignored by `proto tcpcl send`, which accepts no sessions \
                     (`proto tcpcl listen` uses it)"
                        .into(),
                );
            }
        }
    }
    w
}

/// `HOST:PORT`, with an IPv6 address in brackets.
pub(crate) fn host_port(address: &str, port: u16) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_net::tcpcl::{ConnectConfig, ListenConfig};

    #[test]
    fn every_ignored_key_is_named() {
        let mut c = Config::with_node_id("dtn://a/");
        assert!(ignored_keys(&c, Command::Listen).is_empty());
        assert!(ignored_keys(&c, Command::Send).is_empty());
        c.enable_test = vec!["private_extensions".into()];
        c.bus_addr = Some("session".into());
        c.bus_service = Some("org.example".into());
        c.tls_dhparam = Some("dh.pem".into());
        c.max_memory_bundle = 1;
        c.init_listen = vec![ListenConfig {
            address: "::1".into(),
            port: 4556,
        }];
        c.init_connect = vec![ConnectConfig {
            address: "127.0.0.1".into(),
            port: 4556,
        }];
        let starts = |cmd| -> Vec<String> {
            ignored_keys(&c, cmd)
                .iter()
                .map(|w| w.split(' ').next().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(
            starts(Command::Listen),
            [
                "enable_test",
                "bus_addr",
                "bus_service",
                "tls_dhparam",
                "init_connect",
                "max_memory_bundle"
            ]
        );
        assert_eq!(
            starts(Command::Send),
            [
                "enable_test",
                "bus_addr",
                "bus_service",
                "tls_dhparam",
                "init_listen"
            ]
        );
    }

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("::1", 4556), "[::1]:4556");
        assert_eq!(host_port("[::1]", 1), "[::1]:1");
        assert_eq!(host_port("127.0.0.1", 4557), "127.0.0.1:4557");
        assert_eq!(host_port("peer.example", 4556), "peer.example:4556");
    }
}
