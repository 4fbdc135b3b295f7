//! TCPCL agent sessions over TLS (RFC 9174 §4.4) on loopback, with certificates from
//! the `certgen` test PKI: node authentication through both NODE-ID forms, host
//! authentication under each policy setting, and the failures (unknown CA, expired certificate, node ID
//! mismatch, plaintext peer under `require_tls`, TLS 1.2-only peer when 1.3 is
//! required).

use std::path::PathBuf;

use crossbeam_channel::Receiver;
use std::time::Duration;

use anyhow::{Context, Result};
use proto_core::tcpcl::{CloseReason as CoreClose, ContactFailure};
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use proto_net::tcpcl::tls::{AlertDescription, Authn};
use proto_net::tcpcl::{
    Agent, CloseReason, Config, ConfigError, ConnectOptions, Error, Event, ReceivedBundle,
    SessTermReason, TlsFailure,
};

const T: Duration = Duration::from_secs(20);

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Result<Dir> {
        let p = std::env::temp_dir().join(format!("tcpcl-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(Dir(p))
    }

    fn write(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.0.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config trusting `ca` and presenting a certificate issued by `issuer` for `spec`.
fn tls_config(
    dir: &Dir,
    name: &str,
    node: &str,
    ca: &CertFactory,
    issuer: &CertFactory,
    spec: &LeafSpec,
) -> Result<Config> {
    let (cert, key) = issuer.issue(spec)?;
    let mut c = Config::with_node_id(node);
    c.contact_timeout = 5.0;
    c.sess_term_timeout = 2.0;
    c.tls_ca_file = Some(dir.write(&format!("{name}-ca.pem"), ca.ca_pem())?);
    c.tls_cert_file = Some(dir.write(&format!("{name}.pem"), &cert)?);
    c.tls_key_file = Some(dir.write(&format!("{name}.key"), &key)?);
    Ok(c)
}

/// The common case of [`tls_config`]: node ID `dtn://NAME/` and a certificate from `ca`
/// whose NODE-ID names it.
fn node_config(dir: &Dir, name: &str, ca: &CertFactory) -> Result<Config> {
    let node = format!("dtn://{name}/");
    tls_config(dir, name, &node, ca, ca, &LeafSpec::node(&node))
}

/// Starts a listening agent and connects to it; returns both ends' close reasons, or
/// the established sessions' agents.
fn connect(rx_cfg: Config, tx_cfg: Config, server_name: Option<&str>) -> Result<Conn> {
    let rx = Agent::new(rx_cfg)?;
    let events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let tx = Agent::new(tx_cfg)?;
    let s = tx.connect_with(
        addr,
        ConnectOptions {
            server_name: server_name.map(str::to_owned),
            ..ConnectOptions::default()
        },
    )?;
    Ok(Conn {
        _rx: rx,
        events,
        _tx: tx,
        s,
    })
}

struct Conn {
    _rx: Agent,
    events: Receiver<Event>,
    _tx: Agent,
    s: proto_net::tcpcl::SessionHandle,
}

/// The passive session's close reason, from the listening agent's events.
fn passive_close(events: &Receiver<Event>) -> Result<CloseReason> {
    loop {
        if let Event::SessionClosed { reason, .. } = events.recv_timeout(T)? {
            return Ok(reason);
        }
    }
}

#[test]
fn tls_session_with_node_authentication_both_forms() -> Result<()> {
    let dir = Dir::new("ok")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    let mut rx_cfg = node_config(&dir, "rx", &ca)?;
    rx_cfg.require_tls = Some(true);
    rx_cfg.require_node_authn = true;
    // The active side's certificate uses the legacy URI SAN form, plus a DNS name.
    let spec = LeafSpec {
        node_ids_uri: vec!["dtn://tx/".into()],
        dns_names: vec!["localhost".into()],
        ..LeafSpec::default()
    };
    let mut tx_cfg = tls_config(&dir, "tx", "dtn://tx/", &ca, &ca, &spec)?;
    tx_cfg.require_tls = Some(true);
    tx_cfg.require_node_authn = true;
    let rx = Agent::new(rx_cfg)?;
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let tx = Agent::new(tx_cfg)?;
    let s = tx.connect(addr)?;
    let params = s.wait_established(T)?;
    assert!(params.tls && s.is_secure());
    let info = s.tls_info().context("tls info")?;
    assert_eq!(info.version, "TLSv1_3");
    assert_eq!(info.peer_identity.node_ids, vec!["dtn://rx/".to_owned()]);
    assert_eq!(info.node_authn, Some(Authn::Success));
    assert_eq!(info.host_authn, Authn::Absent);

    // Bundles both ways over TLS, large enough to interleave reads and writes.
    let passive = rx.session_handles().pop().context("passive")?;
    passive.wait_established(T).context("passive established")?;
    let pinfo = passive.tls_info().context("passive tls info")?;
    assert_eq!(pinfo.node_authn, Some(Authn::Success), "URI SAN form");
    let tx_events = tx.events();
    let a: Vec<u8> = (0..(6 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let b: Vec<u8> = (0..(5 << 20)).map(|i: u32| (i % 241) as u8).collect();
    s.send_bytes(a.clone()).context("send a")?;
    passive.send_bytes(b.clone()).context("send b")?;
    for (events, want) in [(&rx_events, &a), (&tx_events, &b)] {
        loop {
            if let Event::BundleReceived { bundle, .. } = events.recv_timeout(T)? {
                assert_eq!(bundle, ReceivedBundle::Bytes(want.clone()));
                break;
            }
        }
    }
    s.terminate(SessTermReason::UNKNOWN)?;
    assert!(s.wait_closed(T)?.is_graceful());
    Ok(())
}

#[test]
fn host_authentication_by_dns_name() -> Result<()> {
    let dir = Dir::new("host")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    let spec = LeafSpec {
        dns_names: vec!["localhost".into()],
        ..LeafSpec::node("dtn://rx/")
    };
    let rx_cfg = tls_config(&dir, "rx", "dtn://rx/", &ca, &ca, &spec)?;
    let mut tx_cfg = node_config(&dir, "tx", &ca)?;
    tx_cfg.require_host_authn = true;
    let c = connect(rx_cfg.clone(), tx_cfg.clone(), Some("localhost"))?;
    let s = &c.s;
    s.wait_established(T)?;
    assert_eq!(s.tls_info().context("info")?.host_authn, Authn::Success);

    // The certificate names another host: SESS_TERM Contact Failure.
    let c = connect(rx_cfg, tx_cfg, Some("elsewhere.example"))?;
    let (rx, s) = (&c.events, &c.s);
    assert_eq!(s.wait_closed(T)?, CloseReason::HostNotAuthenticated);
    let r = passive_close(rx)?;
    assert!(
        matches!(
            r,
            CloseReason::Session(CoreClose::Terminated {
                reason: SessTermReason::CONTACT_FAILURE,
                by_peer: true
            })
        ),
        "{r:?}"
    );
    Ok(())
}

/// RFC 9174 §4.4.4.2 / §4.4.5: what a host authentication result does under each
/// setting. The passive entity's certificate names `localhost` only; the active entity
/// dials `elsewhere.example` (Failure) or an IP literal with no IPADDR-ID (Absent).
#[test]
fn host_authentication_under_each_setting() -> Result<()> {
    let dir = Dir::new("hostpol")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    let spec = LeafSpec {
        dns_names: vec!["localhost".into()],
        ..LeafSpec::node("dtn://rx/")
    };
    let rx_cfg = tls_config(&dir, "rx", "dtn://rx/", &ca, &ca, &spec)?;
    let tx_base = node_config(&dir, "tx", &ca)?;
    // Default: a Failure ends the session although nothing requires host authentication.
    let c = connect(rx_cfg.clone(), tx_base.clone(), Some("elsewhere.example"))?;
    assert_eq!(c.s.wait_closed(T)?, CloseReason::HostNotAuthenticated);
    // An Absent result (no IPADDR-ID for 127.0.0.1) passes by default...
    let c = connect(rx_cfg.clone(), tx_base.clone(), None)?;
    c.s.wait_established(T)?;
    assert_eq!(c.s.tls_info().context("info")?.host_authn, Authn::Absent);
    // ... and ends the session under require_host_authn.
    let mut tx_cfg = tx_base.clone();
    tx_cfg.require_host_authn = true;
    let c = connect(rx_cfg.clone(), tx_cfg, None)?;
    assert_eq!(c.s.wait_closed(T)?, CloseReason::HostNotAuthenticated);
    // ignore_host_authn (with require_node_authn, the §4.4.5 policy): the Failure is
    // reported and the session goes on, authenticated by its Node ID.
    let mut tx_cfg = tx_base.clone();
    tx_cfg.ignore_host_authn = true;
    tx_cfg.require_node_authn = true;
    let c = connect(rx_cfg, tx_cfg, Some("elsewhere.example"))?;
    c.s.wait_established(T)?;
    let info = c.s.tls_info().context("info")?;
    assert_eq!(info.host_authn, Authn::Failure);
    assert_eq!(info.node_authn, Some(Authn::Success));
    c.s.terminate(SessTermReason::UNKNOWN)?;
    assert!(c.s.wait_closed(T)?.is_graceful());
    // Ignoring and requiring at once is refused up front.
    let mut both = tx_base;
    both.ignore_host_authn = true;
    both.require_host_authn = true;
    let err = Agent::new(both).err().context("contradiction accepted")?;
    assert!(
        matches!(
            err,
            Error::Config(ConfigError::InvalidValue {
                key: "ignore_host_authn",
                ..
            })
        ),
        "{err:?}"
    );
    Ok(())
}

/// RFC 9174 §4.4: a later session between the same agents may resume TLS; node
/// authentication on the resumed session still sees the peer's certificate.
#[test]
fn a_resumed_session_still_authenticates_the_node() -> Result<()> {
    let dir = Dir::new("resume")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    let mut rx_cfg = node_config(&dir, "rx", &ca)?;
    rx_cfg.require_node_authn = true;
    let mut tx_cfg = node_config(&dir, "tx", &ca)?;
    tx_cfg.require_node_authn = true;
    let rx = Agent::new(rx_cfg)?;
    let addr = rx.listen("127.0.0.1:0")?;
    let tx = Agent::new(tx_cfg)?;
    for resumed in [false, true] {
        let s = tx.connect(addr)?;
        s.wait_established(T)?;
        let info = s.tls_info().context("info")?;
        assert_eq!(info.resumed, resumed);
        assert_eq!(info.peer_identity.node_ids, vec!["dtn://rx/".to_owned()]);
        assert_eq!(info.node_authn, Some(Authn::Success));
        let passive = rx
            .session_handles()
            .into_iter()
            .find(|p| p.tls_info().is_some_and(|i| i.resumed == resumed))
            .context("passive session")?;
        let pinfo = passive.tls_info().context("passive info")?;
        assert_eq!(pinfo.peer_identity.node_ids, vec!["dtn://tx/".to_owned()]);
        passive.wait_established(T)?;
        assert_eq!(
            passive.tls_info().context("passive info")?.node_authn,
            Some(Authn::Success)
        );
        s.terminate(SessTermReason::UNKNOWN)?;
        assert!(s.wait_closed(T)?.is_graceful());
        passive.wait_closed(T)?;
    }
    Ok(())
}

#[test]
fn unknown_ca_fails_the_handshake() -> Result<()> {
    let dir = Dir::new("ca")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    let rogue = CertFactory::new_ca("rogue CA")?;
    let rx_cfg = tls_config(
        &dir,
        "rx",
        "dtn://rx/",
        &ca,
        &rogue,
        &LeafSpec::node("dtn://rx/"),
    )?;
    let tx_cfg = node_config(&dir, "tx", &ca)?;
    let c = connect(rx_cfg, tx_cfg, None)?;
    let s = &c.s;
    let r = s.wait_closed(T)?;
    assert!(
        matches!(
            &r,
            CloseReason::TlsFailed(TlsFailure::UntrustedCertificate(_))
        ),
        "{r:?}"
    );
    // The passive side hears the alert RFC 9174 §4.4.4.1 prescribes, bad_certificate
    // (rustls on its own would send unknown_ca).
    let r = passive_close(&c.events)?;
    assert_eq!(
        r,
        CloseReason::TlsFailed(TlsFailure::AlertReceived(AlertDescription::BadCertificate))
    );
    Ok(())
}

#[test]
fn expired_certificate_fails_the_handshake() -> Result<()> {
    let dir = Dir::new("exp")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    let rx_cfg = tls_config(
        &dir,
        "rx",
        "dtn://rx/",
        &ca,
        &ca,
        &LeafSpec::node("dtn://rx/").expired(),
    )?;
    let tx_cfg = node_config(&dir, "tx", &ca)?;
    let c = connect(rx_cfg, tx_cfg, None)?;
    let (rx, s) = (&c.events, &c.s);
    let r = s.wait_closed(T)?;
    assert!(
        matches!(
            &r,
            CloseReason::TlsFailed(TlsFailure::CertificateExpired(_))
        ),
        "{r:?}"
    );
    let r = passive_close(rx)?;
    assert_eq!(
        r,
        CloseReason::TlsFailed(TlsFailure::AlertReceived(AlertDescription::BadCertificate))
    );
    Ok(())
}

#[test]
fn node_id_mismatch_under_require_node_authn() -> Result<()> {
    let dir = Dir::new("node")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    // The passive entity's certificate names another node.
    let rx_cfg = tls_config(
        &dir,
        "rx",
        "dtn://rx/",
        &ca,
        &ca,
        &LeafSpec::node("dtn://impostor/"),
    )?;
    let mut tx_cfg = node_config(&dir, "tx", &ca)?;
    tx_cfg.require_node_authn = true;
    let c = connect(rx_cfg, tx_cfg, None)?;
    let (rx, s) = (&c.events, &c.s);
    let r = s.wait_closed(T)?;
    assert_eq!(
        r,
        CloseReason::Session(CoreClose::ContactFailure(
            ContactFailure::NodeNotAuthenticated
        ))
    );
    let p = passive_close(rx)?;
    assert!(
        matches!(
            p,
            CloseReason::Session(CoreClose::Terminated {
                reason: SessTermReason::CONTACT_FAILURE,
                by_peer: true
            })
        ),
        "{p:?}"
    );
    Ok(())
}

#[test]
fn plaintext_peer_is_refused_under_require_tls() -> Result<()> {
    let dir = Dir::new("plain")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    let mut rx_cfg = node_config(&dir, "rx", &ca)?;
    rx_cfg.require_tls = Some(true);
    let mut tx_cfg = Config::with_node_id("dtn://tx/");
    tx_cfg.tls_enable = false;
    let c = connect(rx_cfg, tx_cfg, None)?;
    let (rx, s) = (&c.events, &c.s);
    assert!(s.wait_established(T).is_err());
    assert_eq!(
        passive_close(rx)?,
        CloseReason::Session(CoreClose::TlsRequired)
    );
    Ok(())
}

#[test]
fn tls12_only_peer_is_refused_when_tls13_is_required() -> Result<()> {
    let dir = Dir::new("v12")?;
    let ca = CertFactory::new_ca("TCPCL test CA")?;
    let rx_cfg = node_config(&dir, "rx", &ca)?;
    let mut tx_cfg = node_config(&dir, "tx", &ca)?;
    tx_cfg.tls_version = Some("1.2".into());
    tx_cfg.tls_ciphers = Some(vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()]);
    let c = connect(rx_cfg, tx_cfg, None)?;
    let (rx, s) = (&c.events, &c.s);
    let r = s.wait_closed(T)?;
    // The passive side finds no common version and says so with an alert.
    assert_eq!(
        r,
        CloseReason::TlsFailed(TlsFailure::AlertReceived(AlertDescription::ProtocolVersion))
    );
    let r = passive_close(rx)?;
    assert!(
        matches!(r, CloseReason::TlsFailed(TlsFailure::NoCommonVersion(_))),
        "{r:?}"
    );
    Ok(())
}
