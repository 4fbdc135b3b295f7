//! Certificate generation, identity extraction and loopback handshake tests (certificate
//! profiles and policies: `tests_pki.rs`).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, Error as RustlsError, StreamOwned};

use super::certgen::{CertFactory, LeafSpec};
use super::verify::{EkuPolicy, TcpclServerVerifier};
use super::*;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A connected loopback pair with timeouts so that no test can hang.
pub(super) fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind((LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    (client, server)
}

pub(super) fn ctx(ca: &CertFactory, leaf: Option<(String, String)>, v: TlsVersion) -> TlsContext {
    match leaf {
        Some((cert, key)) => TlsContext::from_pem(
            ca.ca_pem().as_bytes(),
            Some(cert.as_bytes()),
            Some(key.as_bytes()),
            v,
        )
        .unwrap(),
        None => TlsContext::from_pem(ca.ca_pem().as_bytes(), None, None, v).unwrap(),
    }
}

pub(super) struct Outcome {
    /// Client: handshake plus reading the server's first application bytes.
    pub(super) client: Result<Option<PeerIdentity>, TlsError>,
    /// Server: handshake.
    pub(super) server: Result<Option<PeerIdentity>, TlsError>,
}

/// Runs one session: the server handshakes and writes "ok"; the client handshakes and
/// reads it (in TLS 1.3 a rejected client certificate only surfaces on that read).
pub(super) fn run(
    client_cfg: Arc<rustls::ClientConfig>,
    server_name: &str,
    server_ctx: &TlsContext,
) -> Outcome {
    let (csock, ssock) = tcp_pair();
    let server_ctx = server_ctx.clone();
    let server = thread::spawn(move || {
        let mut sock = ssock;
        let mut conn = server_ctx.server()?;
        complete_handshake(&mut conn, &mut sock)?;
        let id = PeerIdentity::from_connection(&conn);
        let mut stream = StreamOwned::new(conn, sock);
        stream.write_all(b"ok").map_err(TlsError::from_io)?;
        stream.flush().map_err(TlsError::from_io)?;
        // Wait for the client to close so our data is not cut off by a reset.
        let mut buf = [0u8; 1];
        let _ = stream.read(&mut buf);
        Ok(id)
    });
    let client = (|| {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::InvalidServerName(server_name.to_owned()))?;
        let mut conn = rustls::ClientConnection::new(client_cfg, name)?;
        let mut sock = csock;
        complete_handshake(&mut conn, &mut sock)?;
        let id = PeerIdentity::from_connection(&conn);
        let mut stream = StreamOwned::new(conn, sock);
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).map_err(TlsError::from_io)?;
        assert_eq!(&buf, b"ok");
        stream.conn.send_close_notify();
        let _ = stream.flush();
        Ok(id)
    })();
    let server = server.join().expect("server thread panicked");
    Outcome { client, server }
}

pub(super) fn cert_error(r: &Result<Option<PeerIdentity>, TlsError>) -> Option<CertificateError> {
    match r {
        Err(TlsError::Rustls(RustlsError::InvalidCertificate(e))) => Some(e.clone()),
        _ => None,
    }
}

/// The alert a side received, if that is how it failed.
pub(super) fn peer_alert(r: &Result<Option<PeerIdentity>, TlsError>) -> Option<AlertDescription> {
    match r {
        Err(TlsError::Rustls(RustlsError::AlertReceived(a))) => Some(*a),
        _ => None,
    }
}

pub(super) fn is_expired(e: &Option<CertificateError>) -> bool {
    matches!(
        e,
        Some(CertificateError::Expired | CertificateError::ExpiredContext { .. })
    )
}

fn cert_der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn identity_extraction_all_types() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let spec = LeafSpec {
        node_ids_othername: vec!["ipn:7.0".into(), "dtn://node7/".into(), "dtn:none".into()],
        node_ids_uri: vec!["dtn://legacy/".into(), "https://example.com/".into()],
        dns_names: vec!["node7.example".into()],
        ip_addrs: vec![LOCALHOST, "2001:db8::7".parse().unwrap()],
        ..LeafSpec::default()
    };
    let (cert, _key) = ca.issue(&spec).unwrap();
    let id = PeerIdentity::from_der(&cert_der(&cert)).unwrap();
    // dtn:none is not a Node ID and the https URI is not a NODE-ID; both are ignored.
    assert_eq!(
        id.node_ids,
        vec!["ipn:7.0", "dtn://node7/", "dtn://legacy/"]
    );
    assert_eq!(id.dns_names, vec!["node7.example"]);
    assert_eq!(
        id.ip_addrs,
        vec![LOCALHOST, "2001:db8::7".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(authenticate_node(&id, "ipn:7.0"), Authn::Success);
    assert_eq!(authenticate_node(&id, "dtn://legacy/"), Authn::Success);
    assert_eq!(authenticate_node(&id, "ipn:8.0"), Authn::Failure);
    assert_eq!(
        authenticate_host(&id, Some("NODE7.example"), None),
        Authn::Success
    );

    let (bare, _) = ca.issue(&LeafSpec::default()).unwrap();
    let id = PeerIdentity::from_der(&cert_der(&bare)).unwrap();
    assert!(id.is_empty());
    assert_eq!(authenticate_node(&id, "ipn:7.0"), Authn::Absent);
    assert_eq!(
        authenticate_host(&id, Some("x"), Some(LOCALHOST)),
        Authn::Absent
    );

    assert!(PeerIdentity::from_der(b"not a certificate").is_err());
    assert!(PeerIdentity::from_der(&[]).is_err());
}

#[test]
fn handshake_success_node_id_othername() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let server_leaf = LeafSpec {
        dns_names: vec!["localhost".into()],
        ip_addrs: vec![LOCALHOST],
        ..LeafSpec::node("ipn:2.0")
    };
    let server = ctx(
        &ca,
        Some(ca.issue(&server_leaf).unwrap()),
        TlsVersion::Tls13,
    );
    let client = ctx(
        &ca,
        Some(ca.issue(&LeafSpec::node("ipn:1.0")).unwrap()),
        TlsVersion::Tls13,
    );
    let out = run(client.client_config(), "localhost", &server);
    let seen_by_client = out.client.unwrap().unwrap();
    let seen_by_server = out.server.unwrap().unwrap();
    assert_eq!(seen_by_client.node_ids, vec!["ipn:2.0"]);
    assert_eq!(
        authenticate_node(&seen_by_client, "ipn:2.0"),
        Authn::Success
    );
    assert_eq!(
        authenticate_host(&seen_by_client, Some("localhost"), Some(LOCALHOST)),
        Authn::Success
    );
    assert_eq!(seen_by_server.node_ids, vec!["ipn:1.0"]);
    assert_eq!(
        authenticate_node(&seen_by_server, "ipn:1.0"),
        Authn::Success
    );
    assert_eq!(
        authenticate_node(&seen_by_server, "ipn:3.0"),
        Authn::Failure
    );
    // The client certificate has no network identifiers.
    assert_eq!(
        authenticate_host(&seen_by_server, None, Some(LOCALHOST)),
        Authn::Absent
    );
}

#[test]
fn handshake_success_node_id_uri_and_name_mismatch() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let uri_leaf = |n: &str| LeafSpec {
        node_ids_uri: vec![n.into()],
        ..LeafSpec::default()
    };
    let server = ctx(
        &ca,
        Some(ca.issue(&uri_leaf("dtn://server/")).unwrap()),
        TlsVersion::Tls13,
    );
    let client = ctx(
        &ca,
        Some(ca.issue(&uri_leaf("dtn://client/")).unwrap()),
        TlsVersion::Tls13,
    );
    // Dialled by IP and by a DNS name the certificate does not carry: both accepted by TLS.
    for name in ["127.0.0.1", "some.other.name"] {
        let out = run(client.client_config(), name, &server);
        let id = out.client.unwrap().unwrap();
        assert_eq!(authenticate_node(&id, "dtn://SERVER/"), Authn::Success);
        assert_eq!(
            authenticate_host(&id, Some(name), Some(LOCALHOST)),
            Authn::Absent
        );
        let sid = out.server.unwrap().unwrap();
        assert_eq!(authenticate_node(&sid, "dtn://client/"), Authn::Success);
    }
}

#[test]
fn handshake_fails_unknown_ca() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let rogue = CertFactory::new_ca("Rogue CA").unwrap();
    // Rogue certificate that also does not name the host: the name leniency must not mask
    // the chain failure.
    let server = ctx(
        &ca,
        Some(rogue.issue(&LeafSpec::node("ipn:2.0")).unwrap()),
        TlsVersion::Tls13,
    );
    let client = ctx(&ca, None, TlsVersion::Tls13);
    let out = run(client.client_config(), "localhost", &server);
    assert_eq!(
        cert_error(&out.client),
        Some(CertificateError::UnknownIssuer),
        "{:?}",
        out.client.err()
    );
    // RFC 9174 §4.4.4.1: the peer hears bad_certificate, not unknown_ca.
    assert_eq!(
        peer_alert(&out.server),
        Some(AlertDescription::BadCertificate)
    );
    let msg = out.client.err().unwrap().to_string();
    assert!(msg.contains("UnknownIssuer"), "{msg}");
}

#[test]
fn handshake_fails_expired_server_cert() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let expired = LeafSpec::node("ipn:2.0").expired();
    let server = ctx(&ca, Some(ca.issue(&expired).unwrap()), TlsVersion::Tls13);
    let client = ctx(&ca, None, TlsVersion::Tls13);
    let out = run(client.client_config(), "localhost", &server);
    assert!(
        is_expired(&cert_error(&out.client)),
        "{:?}",
        out.client.err()
    );
    assert_eq!(
        peer_alert(&out.server),
        Some(AlertDescription::BadCertificate)
    );
}

#[test]
fn handshake_fails_tls12_peer_against_tls13_only() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let server13 = ctx(
        &ca,
        Some(ca.issue(&LeafSpec::node("ipn:2.0")).unwrap()),
        TlsVersion::Tls13,
    );
    let server12 = ctx(
        &ca,
        Some(ca.issue(&LeafSpec::node("ipn:2.0")).unwrap()),
        TlsVersion::Tls12,
    );

    // A TLS 1.2-only client built directly with rustls.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let verifier = Arc::new(TcpclServerVerifier::new(
        Arc::new(roots),
        provider.clone(),
        EkuPolicy::default(),
    ));
    let tls12_client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    );

    let out = run(tls12_client.clone(), "localhost", &server13);
    assert!(out.client.is_err());
    assert!(
        matches!(
            out.server,
            Err(TlsError::Rustls(RustlsError::PeerIncompatible(_)))
        ),
        "{:?}",
        out.server.err()
    );

    // The same peer is accepted when TLS 1.2 is configured.
    let out = run(tls12_client, "localhost", &server12);
    assert_eq!(out.client.unwrap().unwrap().node_ids, vec!["ipn:2.0"]);
    assert!(out.server.is_ok());
}

#[test]
fn server_validates_client_certificates() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let rogue = CertFactory::new_ca("Rogue CA").unwrap();
    let server = ctx(
        &ca,
        Some(ca.issue(&LeafSpec::node("ipn:2.0")).unwrap()),
        TlsVersion::Tls13,
    );

    // Client certificate from an unrelated CA.
    let bad = ctx(
        &ca,
        Some(rogue.issue(&LeafSpec::node("ipn:1.0")).unwrap()),
        TlsVersion::Tls13,
    );
    let out = run(bad.client_config(), "localhost", &server);
    assert_eq!(
        cert_error(&out.server),
        Some(CertificateError::UnknownIssuer),
        "{:?}",
        out.server.err()
    );
    assert_eq!(
        peer_alert(&out.client),
        Some(AlertDescription::BadCertificate)
    );

    // Expired client certificate.
    let old = ctx(
        &ca,
        Some(ca.issue(&LeafSpec::node("ipn:1.0").expired()).unwrap()),
        TlsVersion::Tls13,
    );
    let out = run(old.client_config(), "localhost", &server);
    assert!(
        is_expired(&cert_error(&out.server)),
        "{:?}",
        out.server.err()
    );
    assert_eq!(
        peer_alert(&out.client),
        Some(AlertDescription::BadCertificate)
    );

    // No client certificate: allowed by default, no identity.
    let anon = ctx(&ca, None, TlsVersion::Tls13);
    let out = run(anon.client_config(), "localhost", &server);
    assert!(out.client.is_ok());
    assert_eq!(out.server.unwrap(), None);

    // ... refused when client certificates are mandatory.
    let strict = server.require_client_certificate(true).unwrap();
    assert!(strict.requires_client_certificate() && !server.requires_client_certificate());
    let out = run(anon.client_config(), "localhost", &strict);
    assert!(
        matches!(
            out.server,
            Err(TlsError::Rustls(RustlsError::NoCertificatesPresented))
        ),
        "{:?}",
        out.server.err()
    );
    assert!(out.client.is_err());
}

#[test]
fn cipher_filter_is_applied() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let (cert, key) = ca.issue(&LeafSpec::node("ipn:2.0")).unwrap();
    let dir = std::env::temp_dir().join(format!("proto-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_path, ca.ca_pem()).unwrap();
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let crl_path = dir.join("crl.pem");
    let crl = ca.crl_pem(&[], Duration::from_secs(86_400)).unwrap();
    std::fs::write(&crl_path, crl).unwrap();
    let settings = TlsSettings {
        ca_file: Some(ca_path.clone()),
        cert_file: Some(cert_path.clone()),
        key_file: Some(key_path.clone()),
        min_version: TlsVersion::Tls13,
        ciphers: Some(vec!["TLS_CHACHA20_POLY1305_SHA256".into()]),
        eku: EkuPolicy::RequireBundleSecurity,
        crl_file: Some(crl_path),
    };
    let server = TlsContext::new(&settings).unwrap();
    // The file settings carry the EKU policy (the certgen default profile passes it) and
    // the CRL (which revokes nothing here).
    assert_eq!(server.eku_policy(), EkuPolicy::RequireBundleSecurity);
    assert_eq!(server.crl_count(), 1);
    let client = TlsContext::new(&TlsSettings {
        ciphers: None,
        ..settings.clone()
    })
    .unwrap();

    let (csock, ssock) = tcp_pair();
    let sctx = server.clone();
    let t = thread::spawn(move || {
        let mut sock = ssock;
        let mut conn = sctx.server().unwrap();
        complete_handshake(&mut conn, &mut sock).unwrap();
        conn.negotiated_cipher_suite().map(|s| s.suite())
    });
    let mut conn = client.client("localhost").unwrap();
    let mut sock = csock;
    complete_handshake(&mut conn, &mut sock).unwrap();
    assert_eq!(
        t.join().unwrap(),
        Some(rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256)
    );

    // Only TLS 1.2 suites with a TLS 1.3 minimum: nothing usable.
    let only12 = TlsSettings {
        ciphers: Some(vec!["ECDHE-ECDSA-AES128-GCM-SHA256".into()]),
        ..settings.clone()
    };
    assert!(matches!(
        TlsContext::new(&only12),
        Err(TlsError::NoUsableCiphers(_))
    ));
    assert!(TlsContext::new(&TlsSettings {
        min_version: TlsVersion::Tls12,
        ..only12
    })
    .is_ok());

    // File errors.
    let missing = TlsSettings {
        ca_file: Some(dir.join("nope.pem")),
        ..settings.clone()
    };
    assert!(matches!(
        TlsContext::new(&missing),
        Err(TlsError::Io { what: "CA", .. })
    ));
    assert!(matches!(
        TlsContext::new(&TlsSettings {
            ca_file: None,
            ..settings.clone()
        }),
        Err(TlsError::MissingCa)
    ));
    assert!(matches!(
        TlsContext::new(&TlsSettings {
            key_file: None,
            ..settings.clone()
        }),
        Err(TlsError::CertKeyMismatch)
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn context_errors_and_traits() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<TlsContext>();
    assert_traits::<PeerIdentity>();

    let ca = CertFactory::new_ca("Test CA").unwrap();
    let (cert, key) = ca.issue(&LeafSpec::node("ipn:1.0")).unwrap();
    let client_only = ctx(&ca, None, TlsVersion::Tls13);
    assert!(!client_only.has_certificate());
    assert!(matches!(
        client_only.server(),
        Err(TlsError::NoServerCertificate)
    ));
    assert!(client_only.client("localhost").is_ok());
    assert!(client_only.client("127.0.0.1").is_ok());
    assert!(client_only.client("::1").is_ok());
    assert!(matches!(
        client_only.client("bad name!"),
        Err(TlsError::InvalidServerName(_))
    ));
    assert!(matches!(
        TlsContext::from_pem(b"garbage", None, None, TlsVersion::Tls13),
        Err(TlsError::NoCertificates("CA"))
    ));
    assert!(matches!(
        TlsContext::from_pem(
            ca.ca_pem().as_bytes(),
            Some(cert.as_bytes()),
            None,
            TlsVersion::Tls13
        ),
        Err(TlsError::CertKeyMismatch)
    ));
    assert!(TlsContext::from_pem(
        ca.ca_pem().as_bytes(),
        Some(cert.as_bytes()),
        Some(b"no key here"),
        TlsVersion::Tls13
    )
    .is_err());
    // Key that does not match the certificate.
    let (_, other_key) = ca.issue(&LeafSpec::node("ipn:9.0")).unwrap();
    assert!(TlsContext::from_pem(
        ca.ca_pem().as_bytes(),
        Some(cert.as_bytes()),
        Some(other_key.as_bytes()),
        TlsVersion::Tls13
    )
    .is_err());
    let full = ctx(&ca, Some((cert, key)), TlsVersion::Tls12);
    assert!(full.has_certificate() && full.server().is_ok());
    assert_eq!(full.min_version(), TlsVersion::Tls12);
    assert!(format!("{full:?}").contains("TlsContext"));
}

#[test]
fn handshake_fails_cleanly_when_peer_is_silent_or_closes() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let client = ctx(&ca, None, TlsVersion::Tls13);

    // Peer closes immediately.
    let (mut csock, ssock) = tcp_pair();
    drop(ssock);
    let mut conn = client.client("localhost").unwrap();
    assert!(matches!(
        complete_handshake(&mut conn, &mut csock),
        Err(TlsError::HandshakeIo(_))
    ));

    // Peer never answers: the socket timeout ends the handshake.
    let (mut csock, _ssock) = tcp_pair();
    csock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut conn = client.client("localhost").unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(
        complete_handshake(&mut conn, &mut csock),
        Err(TlsError::HandshakeIo(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
}
