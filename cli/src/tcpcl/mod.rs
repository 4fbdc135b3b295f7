//! `proto tcpcl listen`, `proto tcpcl send` and `proto tcpcl gen-certs`: the TCPCLv4
//! agent (RFC 9174) from the command line.
//!
//! Both commands build one [`Agent`] from `--config FILE` (YAML, the seed agent's option
//! names, see `docs/config-tcpcl.md`) with the flags applied on top, then follow the
//! agent's event channel. `listen` streams every bundle through a hashing writer into a
//! hidden `.part` file with a name of its own, which gets its final name (never
//! replacing a file) once the bundle is complete and before the last segment is
//! acknowledged; `send` submits each file as one bundle and succeeds only when every
//! byte was acknowledged.
//!
//! One file per part: `args` (the command line), `listen` (the listener's loop),
//! `store` (streaming bundles into `--out-dir`), `send` (the sender's loop),
//! `explain` (sentences for failures, by error variant), `certs` (`gen-certs`),
//! `inputs` (FILE/DIR/`-` arguments of `send`), `bundle` (the BPv7 flags and the
//! wrapping of files), `bundle_sink` (`listen --bundles`), `names` (`--keep-names`),
//! `report` (summary and arrival lines, text or `--json`),
//! `version` (`--tcpcl-version`: TCPCLv3, RFC 7242, beside v4).

mod args;
mod bundle;
mod bundle_sink;
mod certs;
mod explain;
mod inputs;
mod listen;
mod names;
mod report;
mod send;
mod store;
mod version;

use anyhow::{anyhow, Result};
use proto_net::tcpcl::{Agent, Config, Error as AgentError};
use std::sync::{Mutex, MutexGuard};

pub(crate) use args::TcpclCommand;

pub(crate) fn run(cmd: &TcpclCommand) -> Result<()> {
    match cmd {
        TcpclCommand::Listen(a) => listen::listen(a),
        TcpclCommand::Send(a) => send::send(a),
        TcpclCommand::GenCerts(a) => certs::gen_certs(a),
    }
}

/// The agent for `c`; a configuration error is said as itself (the caller's context
/// already says it is one).
fn new_agent(c: Config) -> Result<Agent> {
    Agent::new(c).map_err(|e| match e {
        AgentError::Config(m) => anyhow!("{m}"),
        e => anyhow!(e),
    })
}

/// A usage error (exit 2), as clap reports them.
fn usage_error(msg: &str) -> ! {
    clap::Error::raw(
        clap::error::ErrorKind::MissingRequiredArgument,
        format!("{msg}\n"),
    )
    .exit()
}

/// Locks `m`; a lock poisoned by a panicking thread still yields its data, so one
/// failed sink does not stop the listener.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
