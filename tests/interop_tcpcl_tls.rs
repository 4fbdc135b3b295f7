//! TCPCLv4 over TLS on the wire (RFC 9174 §4.4.3, §4.4.4.1), captured live on `lo` and
//! decrypted with the key log rustls writes to `SSLKEYLOGFILE`: the ClientHello carries
//! the DNS name given to `Agent::connect` as SNI and none for an IP address, and a
//! certificate that fails validation is answered with a bad_certificate alert.
//! `#[ignore = "needs tshark live capture"]`, like the other capture tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{ensure, Result};
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use proto_net::tcpcl::tls::AlertDescription;
use proto_net::tcpcl::{Agent, CloseReason, Config, Event, TlsFailure};
use proto_tests::peers::{LiveCapture, Side};
use proto_tests::tcpcl::wait_event;

const T: Duration = Duration::from_secs(30);

/// The key log every TLS context of this process appends to; set before any exists.
fn keylog() -> &'static Path {
    static KEYLOG: OnceLock<PathBuf> = OnceLock::new();
    KEYLOG.get_or_init(|| {
        let p = std::env::temp_dir().join(format!(
            "proto-interop-tcpcl-tls-{}.keys",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&p);
        std::env::set_var("SSLKEYLOGFILE", &p);
        p
    })
}

struct Files(PathBuf);

impl Files {
    fn new(name: &str) -> Files {
        let p = std::env::temp_dir().join(format!("proto-itls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Files(p)
    }

    fn config(&self, name: &str, node: &str, ca: &CertFactory, issuer: &CertFactory) -> Config {
        let (cert, key) = issuer.issue(&LeafSpec::node(node)).unwrap();
        let write = |f: &str, t: &str| {
            let p = self.0.join(f);
            std::fs::write(&p, t).unwrap();
            p
        };
        let mut c = Config::with_node_id(node);
        c.contact_timeout = 5.0;
        c.sess_term_timeout = 2.0;
        c.tls_ca_file = Some(write(&format!("{name}-ca.pem"), ca.ca_pem()));
        c.tls_cert_file = Some(write(&format!("{name}.pem"), &cert));
        c.tls_key_file = Some(write(&format!("{name}.key"), &key));
        c
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs tshark live capture"]
fn sni_and_bad_certificate_on_the_wire() -> Result<()> {
    keylog();
    let files = Files::new("wire");
    let ca = CertFactory::new_ca("proto wire CA")?;
    let rogue = CertFactory::new_ca("rogue CA")?;
    let rx = Agent::new(files.config("rx", "dtn://rx/", &ca, &ca))?;
    let rx_events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let Some(capture) = LiveCapture::start(addr.port())? else {
        return Ok(());
    };
    // 1. By host name, then by IP address.
    let tx = Agent::new(files.config("tx", "dtn://tx/", &ca, &ca))?;
    for target in [format!("localhost:{}", addr.port()), addr.to_string()] {
        let s = tx.connect(target.as_str())?;
        s.wait_established(T)?;
        s.shutdown(proto_net::tcpcl::SessTermReason::UNKNOWN)?;
        assert!(s.wait_closed(T)?.is_graceful());
    }
    // 2. A client certificate from an unknown CA: the passive side (proto) rejects it.
    let bad = Agent::new(files.config("bad", "dtn://bad/", &ca, &rogue))?;
    let s = bad.connect(addr)?;
    let r = s.wait_closed(T)?;
    assert_eq!(
        r,
        CloseReason::TlsFailed(TlsFailure::AlertReceived(AlertDescription::BadCertificate))
    );
    let ev = wait_event(&rx_events, T, |e| {
        matches!(
            e,
            Event::SessionClosed {
                reason: CloseReason::TlsFailed(_),
                ..
            }
        )
    })?;
    assert!(
        matches!(
            ev,
            Event::SessionClosed {
                reason: CloseReason::TlsFailed(TlsFailure::UntrustedCertificate(_)),
                ..
            }
        ),
        "the rejecting side keeps the reason: {ev:?}"
    );
    let wire = capture.finish_tcpcl_tls(Side::Server, keylog())?;

    // SNI: exactly one ClientHello named localhost (RFC 9174 §4.4.3), the others none.
    let hellos: Vec<Option<&str>> = wire
        .peer_packets()
        .filter(|p| p.uint("tls.handshake.type") == Some(1))
        .map(|p| p.first("tls.handshake.extensions_server_name"))
        .collect();
    eprintln!("ClientHello server names: {hellos:?}");
    ensure!(hellos.len() == 3, "three ClientHellos: {hellos:?}");
    ensure!(
        hellos.iter().filter(|h| **h == Some("localhost")).count() == 1
            && hellos.iter().filter(|h| h.is_none()).count() == 2,
        "SNI only for the host name: {hellos:?}"
    );
    // The alert RFC 9174 §4.4.4.1 prescribes, from proto (decrypted: TLS 1.3 alerts after
    // the ServerHello are encrypted).
    let alerts: Vec<&str> = wire
        .our_packets()
        .flat_map(|p| p.values("tls.alert_message.desc"))
        .collect();
    eprintln!("alerts from proto: {alerts:?}");
    ensure!(
        alerts.contains(&"42"),
        "no bad_certificate (42): {alerts:?}"
    );
    ensure!(
        !alerts.contains(&"48") && !alerts.contains(&"45"),
        "unknown_ca / certificate_expired sent: {alerts:?}"
    );
    // close_notify before FIN from both sides of the graceful sessions.
    wire.close_notify_before_fin(true)?;
    wire.close_notify_before_fin(false)?;
    Ok(())
}
