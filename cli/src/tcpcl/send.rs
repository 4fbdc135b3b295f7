//! `proto tcpcl send`: connect, send each file (or stdin) as one bundle, and succeed
//! only when every byte was acknowledged.

use super::args::SendArgs;
use super::bundle::Wrapper;
use super::explain::{describe_session, describe_tls, explain_close, explain_connect, refuse_text};
use super::inputs::{expand, HashingReader, Input};
use super::report::SendReport;
use super::{lock, new_agent, usage_error};
use crate::addr::with_default_port;
use crate::config_file::{host_port, Command as ConfigFor};
use crate::decode::hex;
use crate::progress;
use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::Receiver;
use proto_net::tcpcl::{
    Agent, CloseReason, ConnectOptions, Direction, Error as AgentError, Event, SessTermReason,
    SessionHandle, SessionId, SessionParams, DEFAULT_PORT,
};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(super) fn send(a: &SendArgs) -> Result<()> {
    let mut cfg = a.agent.config(ConfigFor::Send)?;
    // --to replaces init_connect; without it, init_connect must name exactly one peer.
    let to_addr = match (&a.to, cfg.init_connect.as_slice()) {
        (Some(to), _) => with_default_port(to, DEFAULT_PORT),
        (None, [one]) => host_port(&one.address, one.port),
        (None, []) => usage_error("--to ADDR is required: the configuration file has no init_connect"),
        (None, many) => usage_error(&format!(
            "--to ADDR is required: init_connect in the configuration file lists {} peers, and send connects to one",
            many.len()
        )),
    };
    if let Some(t) = a.connect_timeout {
        cfg.connect_timeout = t;
    }
    if a.local_address.is_some() {
        cfg.connect_local_address.clone_from(&a.local_address);
    }
    if let Some(v) = a.tcpcl_version {
        cfg.tcpcl_version = v;
    }
    cfg.validate().context("invalid agent configuration")?;
    if a.files.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            "`-` (stdin) can be given only once\n",
        )
        .exit();
    }
    // Every file must be readable, and the bundle EIDs valid, before we connect.
    let inputs = expand(&a.files)?;
    let wrapper = Wrapper::new(&a.bundle, &cfg.node_id)?;
    let connect_timeout = cfg.connect_timeout()?;
    let contact_timeout = Duration::try_from_secs_f64(cfg.contact_timeout).unwrap_or_default();
    let term_timeout = Duration::try_from_secs_f64(cfg.sess_term_timeout).unwrap_or_default();
    let server_name = a.server_name.clone().or_else(|| host_of(&to_addr));
    let agent = new_agent(cfg)?;
    let events = agent.events();
    let to = to_addr.as_str();
    let session = agent
        .connect_with(
            to,
            ConnectOptions {
                timeout: Some(connect_timeout),
                local_addr: None,
                server_name: server_name.clone(),
            },
        )
        .map_err(|e| explain_connect(e, to, connect_timeout))?;
    let mut s = Sender {
        agent: &agent,
        events: &events,
        id: session.id(),
        to,
        closed: None,
        terminating: None,
        server_name,
    };
    let params = s.wait_established(contact_timeout + Duration::from_secs(5))?;
    log::info!("{}", describe_session(&params));
    let ack_timeout = (a.ack_timeout > 0).then(|| Duration::from_secs(a.ack_timeout));
    // Bundles written in full that the peer never acknowledges (TCPCLv3 without acks).
    let mut unconfirmed = 0usize;
    let result = (|| -> Result<()> {
        for input in inputs {
            let shown = input.display();
            let sent = send_one(
                &mut s,
                &session,
                input,
                wrapper.as_ref(),
                &params,
                ack_timeout,
            );
            match sent {
                Ok(r) => {
                    if r.acknowledged {
                        log::info!("{shown}: {} bytes acknowledged by {to}", r.wire_len);
                    } else {
                        unconfirmed += 1;
                        log::info!(
                            "{shown}: {} bytes sent to {to} (not acknowledged)",
                            r.wire_len
                        );
                    }
                    r.print(to, a.bundle.json);
                }
                Err(e) => {
                    if a.bundle.json {
                        SendReport::print_failure(&shown, &e);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    })();
    // Graceful end either way: SESS_TERM exchange, bounded.
    let close = s.finish(term_timeout * 2 + Duration::from_secs(2));
    result?;
    if unconfirmed > 0 {
        // TCPCLv3 without acknowledgments: success is everything written and the
        // session ended with SHUTDOWN cleanly; the peer never confirms delivery.
        return match close {
            Some(r) if r.is_graceful() => {
                eprintln!(
                    "note: {unconfirmed} bundle(s) were sent in full, but {to} did not ask for acknowledgments (TCPCLv3): delivery was not confirmed by the peer"
                );
                Ok(())
            }
            Some(r) => bail!(
                "{unconfirmed} bundle(s) were sent without acknowledgment, and the session did not end cleanly: {}",
                explain_close(&r, to)
            ),
            None => bail!(
                "{unconfirmed} bundle(s) were sent without acknowledgment, and {to} did not end the session in time"
            ),
        };
    }
    match close {
        Some(r) if r.is_graceful() => {}
        Some(r) => eprintln!(
            "warning: every bundle was acknowledged, but the session did not end cleanly: {}",
            explain_close(&r, to)
        ),
        None => eprintln!(
            "warning: every bundle was acknowledged, but {to} did not end the session in time"
        ),
    }
    Ok(())
}

/// Sends one input (wrapped in a bundle if `wrapper` is set) and waits until it is
/// acknowledged in full.
fn send_one(
    s: &mut Sender<'_>,
    session: &SessionHandle,
    input: Input,
    wrapper: Option<&Wrapper>,
    params: &SessionParams,
    ack_timeout: Option<Duration>,
) -> Result<SendReport> {
    let shown = input.display();
    let mru = params.peer_transfer_mru;
    let to = s.to;
    let too_big = |len: u64| {
        anyhow!("{shown} is {len} bytes, more than {to} accepts (its transfer MRU is {mru} bytes)")
    };
    let (file, name) = match &input {
        Input::File { path, name, .. } => (path.display().to_string(), Some(name.clone())),
        Input::Stdin => ("-".to_string(), None),
    };
    let Some(w) = wrapper else {
        // Raw transfer, streamed and hashed on the way out.
        let (tid, len, hash) = match input {
            Input::File { file, len, .. } => {
                if len > mru {
                    return Err(too_big(len));
                }
                let (reader, hash) = HashingReader::new(file);
                let tid = session
                    .send_reader(reader, Some(len))
                    .map_err(|e| s.explain_send(e, &shown))?;
                (tid, Some(len), hash)
            }
            Input::Stdin => {
                let (reader, hash) = HashingReader::new(std::io::stdin());
                let tid = session
                    .send_reader(reader, None)
                    .map_err(|e| s.explain_send(e, &shown))?;
                (tid, None, hash)
            }
        };
        let (wire_len, acknowledged) = s.wait_transfer(tid, len, &shown, ack_timeout)?;
        let sha256 = hex(lock(&hash).clone().finalize().as_slice());
        return Ok(SendReport {
            file,
            name,
            size: wire_len,
            sha256,
            transfer_id: tid,
            wire_len,
            acknowledged,
            bundle: None,
        });
    };
    let payload = match input {
        Input::File { file, len, .. } => {
            if len > mru {
                return Err(too_big(len));
            }
            read_limited(file, mru, &shown)?
        }
        Input::Stdin => read_limited(std::io::stdin(), mru, &shown)?,
    };
    let bundle = w.wrap(&payload, name.as_deref())?;
    let bundle_len = bundle.len() as u64;
    if bundle_len > mru {
        return Err(too_big(bundle_len));
    }
    let tid = session
        .send_bytes(bundle)
        .map_err(|e| s.explain_send(e, &shown))?;
    let (wire_len, acknowledged) = s.wait_transfer(tid, Some(bundle_len), &shown, ack_timeout)?;
    Ok(SendReport {
        file,
        name,
        size: payload.len() as u64,
        sha256: hex(Sha256::digest(&payload).as_slice()),
        transfer_id: tid,
        wire_len,
        acknowledged,
        bundle: Some((w.source().to_string(), w.destination().to_string())),
    })
}

/// Reads `r` whole, refusing more than `limit` bytes (what the peer accepts).
fn read_limited(r: impl std::io::Read, limit: u64, name: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut v = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut v)
        .with_context(|| format!("cannot read {name}"))?;
    if v.len() as u64 > limit {
        bail!("{name} is more than {limit} bytes, the peer's transfer MRU");
    }
    Ok(v)
}

/// The host part of `HOST:PORT` / `[V6]:PORT` (the default TLS server name).
fn host_of(to: &str) -> Option<String> {
    if let Ok(sa) = to.parse::<SocketAddr>() {
        return Some(sa.ip().to_string());
    }
    let (host, _) = to.rsplit_once(':')?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// The active side's view of its one session.
struct Sender<'a> {
    agent: &'a Agent,
    events: &'a Receiver<Event>,
    id: SessionId,
    to: &'a str,
    closed: Option<CloseReason>,
    terminating: Option<(SessTermReason, bool)>,
    server_name: Option<String>,
}

impl Sender<'_> {
    /// Next event of our session; `None` on timeout.
    fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        loop {
            let ev = match timeout {
                Some(t) => match self.events.recv_timeout(t) {
                    Ok(ev) => ev,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Ok(None),
                    Err(_) => bail!("the agent stopped unexpectedly"),
                },
                None => self
                    .events
                    .recv()
                    .map_err(|_| anyhow!("the agent stopped unexpectedly"))?,
            };
            if ev.session() != Some(self.id) {
                continue;
            }
            match &ev {
                Event::SessionClosed { reason, .. } => self.closed = Some(reason.clone()),
                Event::SessionTerminating {
                    reason, by_peer, ..
                } => self.terminating = Some((*reason, *by_peer)),
                Event::TlsEstablished { info, .. } => log::info!("{}", describe_tls(info)),
                _ => {}
            }
            return Ok(Some(ev));
        }
    }

    fn wait_established(&mut self, limit: Duration) -> Result<SessionParams> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(Some(left))? {
                Some(Event::SessionEstablished { params, .. }) => return Ok(params),
                Some(Event::SessionClosed { reason, .. }) => {
                    bail!("{}", self.explain(&reason))
                }
                Some(_) => {}
                None => bail!(
                    "timed out: {} did not complete the session setup within {} s",
                    self.to,
                    limit.as_secs()
                ),
            }
        }
    }

    /// Waits until transfer `tid` is acknowledged in full; returns its length and
    /// `true`, or `false` when it was sent in full to a peer that does not acknowledge
    /// (TCPCLv3 without acks).
    fn wait_transfer(
        &mut self,
        tid: u64,
        len: Option<u64>,
        name: &str,
        ack_timeout: Option<Duration>,
    ) -> Result<(u64, bool)> {
        let bar = progress::bar(len, name);
        let mut acked = 0;
        loop {
            let ev = match self.next(ack_timeout)? {
                Some(ev) => ev,
                None => {
                    bar.abandon();
                    bail!(
                        "timed out: {} acknowledged nothing of {name} for {} s ({acked} bytes acknowledged)",
                        self.to,
                        ack_timeout.unwrap_or_default().as_secs()
                    );
                }
            };
            match ev {
                Event::TransferProgress {
                    direction: Direction::Outgoing,
                    transfer_id,
                    bytes,
                    ..
                } if transfer_id == tid => {
                    acked = bytes;
                    bar.set_position(bytes);
                }
                Event::TransferFinished {
                    direction: Direction::Outgoing,
                    transfer_id,
                    len: total,
                    ..
                } if transfer_id == tid => {
                    bar.set_position(total);
                    bar.finish();
                    if let Some(l) = len {
                        if l != total {
                            bail!("{name}: {total} bytes were acknowledged, but the file has {l}");
                        }
                    }
                    return Ok((total, true));
                }
                Event::TransferSent {
                    transfer_id,
                    len: total,
                    ..
                } if transfer_id == tid => {
                    bar.set_position(total);
                    bar.finish();
                    return Ok((total, false));
                }
                Event::TransferRefused {
                    direction: Direction::Outgoing,
                    transfer_id,
                    reason,
                    ..
                } if transfer_id == tid => {
                    bar.abandon();
                    bail!(
                        "{} refused {name} after {acked} bytes (XFER_REFUSE reason: {})",
                        self.to,
                        refuse_text(reason)
                    );
                }
                Event::TransferCancelled {
                    direction: Direction::Outgoing,
                    transfer_id,
                    ..
                } if transfer_id == tid => {
                    bar.abandon();
                    let why = self.why_over();
                    bail!("{name} was not delivered ({acked} bytes acknowledged): {why}");
                }
                Event::SessionClosed { reason, .. } => {
                    bar.abandon();
                    let why = self.explain(&reason);
                    bail!("{name} was not delivered ({acked} bytes acknowledged): {why}");
                }
                _ => {}
            }
        }
    }

    /// Why the session is over (or ending): waits briefly for the close reason.
    fn why_over(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.closed.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !matches!(self.next(Some(left)), Ok(Some(_))) {
                break;
            }
        }
        match (&self.closed, self.terminating) {
            (Some(r), _) => self.explain(&r.clone()),
            (None, Some((reason, true))) => {
                format!(
                    "{} ended the session (SESS_TERM reason: {reason:#})",
                    self.to
                )
            }
            _ => format!("the session with {} is ending", self.to),
        }
    }

    fn explain_send(&mut self, e: AgentError, name: &str) -> anyhow::Error {
        match e {
            AgentError::TooLarge { len, mru } => anyhow!(
                "{name} is {len} bytes, more than {} accepts (its transfer MRU is {mru} bytes)",
                self.to
            ),
            AgentError::SessionClosed | AgentError::Terminating => {
                anyhow!("{name} was not sent: {}", self.why_over())
            }
            e => anyhow!("{name} was not sent: {e}"),
        }
    }

    /// Graceful shutdown; returns how the session closed, if it did in time.
    fn finish(&mut self, limit: Duration) -> Option<CloseReason> {
        if self.closed.is_none() {
            self.agent.shutdown();
            let deadline = Instant::now() + limit;
            while self.closed.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !matches!(self.next(Some(left)), Ok(Some(_))) {
                    break;
                }
            }
        }
        self.closed.clone()
    }

    fn explain(&self, r: &CloseReason) -> String {
        match r {
            CloseReason::HostNotAuthenticated => format!(
                "TLS host authentication failed: the certificate of {} does not name {} (DNS-ID/IPADDR-ID): it names other hosts, or none and --require-host-authn is set (--ignore-host-authn leaves it to node authentication)",
                self.to,
                self.server_name.as_deref().unwrap_or("the host")
            ),
            _ => explain_close(r, self.to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_defaults_to_the_host() {
        assert_eq!(host_of("127.0.0.1:4556").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("[::1]:4556").as_deref(), Some("::1"));
        assert_eq!(
            host_of("peer.example:4556").as_deref(),
            Some("peer.example")
        );
        assert_eq!(
            with_default_port("peer.example", DEFAULT_PORT),
            "peer.example:4556"
        );
    }
}
