//! Hostile TLS peers against the runtime (RFC 9174 §4.4.3: a failed handshake closes the
//! TCP connection, no SESS_TERM): garbage after the ClientHello, a truncated handshake
//! and a silent peer, on both sides of the handshake. Each must end with a typed
//! [`CloseReason`] within a bound, the TCP connection closed and the session gone from
//! the agent; none may hang. Certificate-profile failures (EKU, intermediates, v1) are
//! tested at the handshake level in `proto-net/src/tcpcl/tls/tests_pki.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use proto_core::tcpcl::CloseReason as CoreClose;
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use proto_net::tcpcl::tls::{TlsContext, TlsVersion};
use proto_net::tcpcl::{Agent, CloseReason, Config, Event, SessionHandle, TlsFailure};
use proto_tests::tcpcl::wait_event;

/// Contact header, version 4, CAN_TLS.
const CONTACT_TLS: [u8; 6] = *b"dtn!\x04\x01";
/// The agents' contact timeout (it bounds the TLS handshake too).
const CONTACT: Duration = Duration::from_secs(2);
/// Slack on any bound: a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(5);

struct Pki {
    /// A context with a certificate (TLS server capable).
    with_cert: TlsContext,
}

fn pki() -> Result<Pki> {
    let ca = CertFactory::new_ca("hostile TLS CA")?;
    let (cert, key) = ca.issue(&LeafSpec::node("dtn://agent/"))?;
    let with_cert = TlsContext::from_pem(
        ca.ca_pem().as_bytes(),
        Some(cert.as_bytes()),
        Some(key.as_bytes()),
        TlsVersion::Tls13,
    )?;
    Ok(Pki { with_cert })
}

fn agent(pki: &Pki) -> Result<Agent> {
    let mut c = Config::with_node_id("dtn://agent/");
    c.contact_timeout = CONTACT.as_secs_f64();
    c.sess_term_timeout = 1.0;
    Ok(Agent::with_tls(c, Some(pki.with_cert.clone()))?)
}

/// A real ClientHello (the first flight of a TLS client), as bytes.
fn client_hello(pki: &Pki) -> Result<Vec<u8>> {
    let mut c = pki.with_cert.client("localhost")?;
    let mut out = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut out)?;
    }
    Ok(out)
}

/// Reads until the peer closes (EOF or reset) or `within` passes; returns when it closed.
fn closed_within(sock: &mut TcpStream, within: Duration) -> Result<Duration> {
    let start = Instant::now();
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return Ok(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Ok(start.elapsed()),
        }
        anyhow::ensure!(start.elapsed() < within, "still open after {within:?}");
    }
}

/// The close reason of the agent's (single) session, from its events.
fn close_reason(agent: &Agent, events: &crossbeam_channel::Receiver<Event>) -> Result<CloseReason> {
    let ev = wait_event(events, CONTACT + SLACK, |e| {
        matches!(e, Event::SessionClosed { .. })
    })?;
    let Event::SessionClosed { reason, .. } = ev else {
        unreachable!()
    };
    // Nothing left behind in the agent.
    no_sessions_left(agent)?;
    Ok(reason)
}

/// Waits until `agent` no longer lists any session.
fn no_sessions_left(agent: &Agent) -> Result<()> {
    let deadline = Instant::now() + SLACK;
    while !agent.sessions().is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "session still registered");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A raw client of a TLS listener that got past the contact headers.
fn raw_client(addr: std::net::SocketAddr) -> Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(SLACK))?;
    s.write_all(&CONTACT_TLS)?;
    let mut got = [0u8; 6];
    s.read_exact(&mut got).context("listener contact header")?;
    assert_eq!(got, CONTACT_TLS);
    Ok(s)
}

#[test]
fn listener_garbage_after_the_client_hello_fails_the_handshake() -> Result<()> {
    let pki = pki()?;
    let rx = agent(&pki)?;
    let events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let mut s = raw_client(addr)?;
    let mut bytes = client_hello(&pki)?;
    // Not a TLS record: content type 0xff.
    bytes.extend([0xff; 64]);
    s.write_all(&bytes)?;
    let took = closed_within(&mut s, SLACK)?;
    assert!(took < SLACK, "{took:?}");
    let r = close_reason(&rx, &events)?;
    assert!(
        matches!(r, CloseReason::TlsFailed(TlsFailure::Other(_))),
        "{r:?}"
    );
    Ok(())
}

#[test]
fn listener_truncated_client_hello_then_fin_fails_the_handshake() -> Result<()> {
    let pki = pki()?;
    let rx = agent(&pki)?;
    let events = rx.events();
    let addr = rx.listen("127.0.0.1:0")?;
    let mut s = raw_client(addr)?;
    let hello = client_hello(&pki)?;
    s.write_all(&hello[..hello.len() / 2])?;
    s.shutdown(Shutdown::Write)?;
    closed_within(&mut s, SLACK)?;
    let r = close_reason(&rx, &events)?;
    assert!(
        matches!(
            &r,
            CloseReason::TlsFailed(TlsFailure::HandshakeIo {
                kind: ErrorKind::UnexpectedEof,
                ..
            })
        ),
        "{r:?}"
    );
    Ok(())
}

/// An active agent's session to a raw peer that answers the contact header with CAN_TLS
/// and reads the ClientHello; returns the peer's socket and the session.
fn active_to_raw(pki: &Pki) -> Result<(Agent, SessionHandle, TcpStream, Vec<u8>)> {
    let tx = agent(pki)?;
    let l = TcpListener::bind("127.0.0.1:0")?;
    let session = tx.connect(l.local_addr()?)?;
    let (mut s, _) = l.accept()?;
    s.set_read_timeout(Some(SLACK))?;
    let mut got = [0u8; 6];
    s.read_exact(&mut got)?;
    assert_eq!(got, CONTACT_TLS);
    s.write_all(&CONTACT_TLS)?;
    // The ClientHello: one record, header then body.
    let mut head = [0u8; 5];
    s.read_exact(&mut head)?;
    assert_eq!(head[0], 0x16, "a handshake record");
    let mut hello = head.to_vec();
    hello.resize(5 + usize::from(u16::from_be_bytes([head[3], head[4]])), 0);
    s.read_exact(&mut hello[5..])?;
    Ok((tx, session, s, hello))
}

#[test]
fn connector_closes_a_peer_that_never_answers_the_client_hello() -> Result<()> {
    let pki = pki()?;
    let (tx, session, mut s, _) = active_to_raw(&pki)?;
    let start = Instant::now();
    let r = session.wait_closed(CONTACT + SLACK)?;
    let took = start.elapsed();
    assert_eq!(r, CloseReason::Session(CoreClose::ContactTimeout), "{r:?}");
    assert!(took < CONTACT + SLACK, "{took:?}");
    // The agent closed the TCP connection and let go of the session.
    closed_within(&mut s, SLACK)?;
    no_sessions_left(&tx)?;
    Ok(())
}

#[test]
fn connector_garbage_in_answer_to_the_client_hello_fails_the_handshake() -> Result<()> {
    let pki = pki()?;
    let (tx, session, mut s, _) = active_to_raw(&pki)?;
    s.write_all(&[0xff; 64])?;
    let r = session.wait_closed(SLACK)?;
    assert!(
        matches!(r, CloseReason::TlsFailed(TlsFailure::Other(_))),
        "{r:?}"
    );
    closed_within(&mut s, SLACK)?;
    no_sessions_left(&tx)?;
    Ok(())
}

#[test]
fn connector_truncated_server_flight_then_fin_fails_the_handshake() -> Result<()> {
    let pki = pki()?;
    let (tx, session, mut s, hello) = active_to_raw(&pki)?;
    // A real server's answer, cut in half.
    let mut server = pki.with_cert.server()?;
    server.read_tls(&mut hello.as_slice())?;
    server.process_new_packets()?;
    let mut flight = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut flight)?;
    }
    s.write_all(&flight[..flight.len() / 2])?;
    s.shutdown(Shutdown::Write)?;
    let r = session.wait_closed(SLACK)?;
    assert!(
        matches!(
            &r,
            CloseReason::TlsFailed(TlsFailure::HandshakeIo {
                kind: ErrorKind::UnexpectedEof,
                ..
            })
        ),
        "{r:?}"
    );
    closed_within(&mut s, SLACK)?;
    no_sessions_left(&tx)?;
    Ok(())
}
