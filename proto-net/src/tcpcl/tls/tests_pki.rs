//! Certificate-profile and policy tests: EKU profiles and policy, intermediate CAs, certificates
//! without key identifiers or subject, a version 1 certificate, the alert a rejection
//! sends (RFC 9174 §4.4.4.1 bad_certificate), and session resumption.

use std::io::{Read, Write};
use std::sync::Arc;
use std::thread;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, Error as RustlsError, HandshakeKind, StreamOwned};

use super::certgen::{CertFactory, EkuProfile, LeafSpec};
use super::tests::{cert_error, ctx, is_expired, peer_alert, run, tcp_pair};
use super::verify::{restore_rejection, EkuPolicy, TcpclServerVerifier};
use super::*;

/// A leaf issued by `ca` with `eku`, as `(cert PEM with chain, key PEM)`.
fn leaf(ca: &CertFactory, spec: &LeafSpec, eku: EkuProfile) -> (String, String) {
    let (cert, key) = ca.issue_with(spec, eku).unwrap();
    (format!("{cert}{}", ca.chain_pem()), key)
}

fn with_eku(c: TlsContext, eku: EkuPolicy) -> TlsContext {
    c.with_eku_policy(eku).unwrap()
}

/// Both directions with the given certificates: the client verifies the server's, the
/// server the client's. Returns (client outcome, server outcome) of each direction.
fn both_ways(
    ca: &CertFactory,
    bad: (String, String),
    good: (String, String),
    policy: EkuPolicy,
) -> [super::tests::Outcome; 2] {
    let v = TlsVersion::Tls13;
    // The server presents `bad`; the client has no certificate.
    let server = with_eku(ctx(ca, Some(bad.clone()), v), policy);
    let client = with_eku(ctx(ca, None, v), policy);
    let a = run(client.client_config(), "localhost", &server);
    // The client presents `bad` to a server presenting `good`.
    let server = with_eku(ctx(ca, Some(good), v), policy);
    let client = with_eku(ctx(ca, Some(bad), v), policy);
    let b = run(client.client_config(), "localhost", &server);
    [a, b]
}

fn assert_refused(out: &[super::tests::Outcome; 2], why: CertificateError) {
    let [a, b] = out;
    assert_eq!(cert_error(&a.client), Some(why.clone()), "{:?}", a.client);
    assert_eq!(
        peer_alert(&a.server),
        Some(AlertDescription::BadCertificate)
    );
    assert_eq!(cert_error(&b.server), Some(why), "{:?}", b.server);
    assert_eq!(
        peer_alert(&b.client),
        Some(AlertDescription::BadCertificate)
    );
}

fn assert_accepted(out: &[super::tests::Outcome; 2], node: &str) {
    let [a, b] = out;
    let got = a.client.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(got.node_ids, vec![node]);
    assert!(a.server.is_ok(), "{:?}", a.server);
    let got = b.server.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(got.node_ids, vec![node]);
    assert!(b.client.is_ok(), "{:?}", b.client);
}

#[test]
fn bundle_security_eku_accepted_both_ways() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    for eku in [
        EkuProfile::BundleSecurityAndTls,
        EkuProfile::TlsClientServer,
        EkuProfile::BundleSecurityOnly,
        EkuProfile::None,
    ] {
        let s = ca.issue_with(&LeafSpec::node("ipn:2.0"), eku).unwrap();
        let c = ca.issue_with(&LeafSpec::node("ipn:1.0"), eku).unwrap();
        let server = ctx(&ca, Some(s), TlsVersion::Tls13);
        let client = ctx(&ca, Some(c), TlsVersion::Tls13);
        let out = run(client.client_config(), "localhost", &server);
        assert_eq!(
            out.client.unwrap().unwrap().node_ids,
            vec!["ipn:2.0"],
            "{eku:?}"
        );
        assert_eq!(
            out.server.unwrap().unwrap().node_ids,
            vec!["ipn:1.0"],
            "{eku:?}"
        );
    }
    // The EKU fallback still validates the chain and validity period.
    let rogue = CertFactory::new_ca("Rogue CA").unwrap();
    let s = rogue
        .issue_with(&LeafSpec::node("ipn:2.0"), EkuProfile::BundleSecurityOnly)
        .unwrap();
    let server = ctx(&rogue, Some(s), TlsVersion::Tls13);
    let out = run(
        ctx(&ca, None, TlsVersion::Tls13).client_config(),
        "localhost",
        &server,
    );
    assert_eq!(
        cert_error(&out.client),
        Some(CertificateError::UnknownIssuer)
    );
    let s = ca
        .issue_with(
            &LeafSpec::node("ipn:2.0").expired(),
            EkuProfile::BundleSecurityOnly,
        )
        .unwrap();
    let server = ctx(&ca, Some(s), TlsVersion::Tls13);
    let out = run(
        ctx(&ca, None, TlsVersion::Tls13).client_config(),
        "localhost",
        &server,
    );
    assert!(
        is_expired(&cert_error(&out.client)),
        "{:?}",
        out.client.err()
    );
}

#[test]
fn an_eku_with_no_tcpcl_purpose_is_refused_both_ways() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let good = leaf(&ca, &LeafSpec::node("ipn:9.0"), EkuProfile::default());
    for policy in [
        EkuPolicy::RoleOrBundleSecurity,
        EkuPolicy::RequireBundleSecurity,
    ] {
        let bad = leaf(
            &ca,
            &LeafSpec::node("ipn:1.0"),
            EkuProfile::EmailProtectionOnly,
        );
        let out = both_ways(&ca, bad, good.clone(), policy);
        assert_refused(&out, CertificateError::InvalidPurpose);
    }
}

#[test]
fn bundle_security_eku_policy_both_ways() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let good = leaf(&ca, &LeafSpec::node("ipn:9.0"), EkuProfile::default());
    let tls_only = || leaf(&ca, &LeafSpec::node("ipn:1.0"), EkuProfile::TlsClientServer);
    // Default policy: serverAuth / clientAuth without id-kp-bundleSecurity pass.
    let out = both_ways(&ca, tls_only(), good.clone(), EkuPolicy::default());
    assert_accepted(&out, "ipn:1.0");
    // RFC 9174 §4.4.5 policy: they are refused.
    let out = both_ways(
        &ca,
        tls_only(),
        good.clone(),
        EkuPolicy::RequireBundleSecurity,
    );
    assert_refused(&out, CertificateError::InvalidPurpose);
    // ... while id-kp-bundleSecurity (alone or with the TLS purposes, the certgen default)
    // and an absent EKU pass it.
    for eku in [
        EkuProfile::BundleSecurityAndTls,
        EkuProfile::BundleSecurityOnly,
        EkuProfile::None,
    ] {
        let c = leaf(&ca, &LeafSpec::node("ipn:1.0"), eku);
        let out = both_ways(&ca, c, good.clone(), EkuPolicy::RequireBundleSecurity);
        assert_accepted(&out, "ipn:1.0");
    }
}

#[test]
fn intermediate_ca_chain_accepted_and_missing_intermediate_refused() {
    let root = CertFactory::new_ca("Test root").unwrap();
    let sub = root.new_intermediate("Test intermediate").unwrap();
    let good = leaf(&root, &LeafSpec::node("ipn:9.0"), EkuProfile::default());
    // RFC 9174 §4.4.2: the full chain is sent (leaf, then the intermediate).
    let chained = leaf(&sub, &LeafSpec::node("ipn:1.0"), EkuProfile::default());
    assert_eq!(chained.0.matches("BEGIN CERTIFICATE").count(), 2);
    let out = both_ways(&root, chained.clone(), good.clone(), EkuPolicy::default());
    assert_accepted(&out, "ipn:1.0");
    // Without the intermediate the path cannot be built.
    let (cert, key) = sub.issue(&LeafSpec::node("ipn:1.0")).unwrap();
    let out = both_ways(&root, (cert, key), good, EkuPolicy::default());
    assert_refused(&out, CertificateError::UnknownIssuer);
}

#[test]
fn certificates_without_key_identifiers_or_subject_are_accepted() {
    let root = CertFactory::new_ca("Test root").unwrap();
    // The intermediate has no AKI; the leaves neither SKI nor AKI: paths are built by
    // name and signature alone (RFC 9174 §4.4.2 SHOULD NOT rely on them).
    let sub = root.new_intermediate("Test intermediate").unwrap();
    let good = leaf(&root, &LeafSpec::node("ipn:9.0"), EkuProfile::default());
    let bare = LeafSpec {
        key_identifiers: false,
        ..LeafSpec::node("ipn:1.0")
    };
    let c = leaf(&sub, &bare, EkuProfile::default());
    let der = CertificateDer::from_pem_slice(c.0.as_bytes()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let oids: Vec<String> = parsed
        .extensions()
        .iter()
        .map(|e| e.oid.to_id_string())
        .collect();
    assert!(
        !oids.contains(&"2.5.29.14".to_string()),
        "SKI present: {oids:?}"
    );
    assert!(
        !oids.contains(&"2.5.29.35".to_string()),
        "AKI present: {oids:?}"
    );
    let out = both_ways(&root, c, good.clone(), EkuPolicy::default());
    assert_accepted(&out, "ipn:1.0");

    // RFC 9174 §4.4.2: an empty subject (no CN) is accepted; identity is in the SAN.
    let anonymous = LeafSpec {
        empty_subject: true,
        ..LeafSpec::node("ipn:1.0")
    };
    let c = leaf(&root, &anonymous, EkuProfile::default());
    let der = CertificateDer::from_pem_slice(c.0.as_bytes()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    assert_eq!(parsed.subject().iter_attributes().count(), 0);
    let out = both_ways(&root, c, good, EkuPolicy::default());
    assert_accepted(&out, "ipn:1.0");
}

#[test]
fn a_version_1_certificate_is_refused() {
    // See fixtures/README.md for how these were made.
    let ca = CertificateDer::from(include_bytes!("fixtures/v1-ca.der").to_vec());
    let v1 = CertificateDer::from(include_bytes!("fixtures/v1-leaf.der").to_vec());
    let (_, parsed) = x509_parser::parse_x509_certificate(v1.as_ref()).unwrap();
    assert_eq!(parsed.version().0, 0, "fixture is not a v1 certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = TcpclServerVerifier::new(Arc::new(roots), provider, EkuPolicy::default());
    let err = verifier
        .verify_server_cert(
            &v1,
            &[],
            &ServerName::try_from("localhost").unwrap(),
            &[],
            UnixTime::now(),
        )
        .unwrap_err();
    // Sent as bad_certificate; the reason kept for the caller names the version.
    let RustlsError::InvalidCertificate(sent) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        AlertDescription::from(sent.clone()),
        AlertDescription::BadCertificate
    );
    let kept = restore_rejection(err);
    assert!(
        matches!(
            &kept,
            RustlsError::InvalidCertificate(CertificateError::Other(_))
        ),
        "{kept:?}"
    );
    assert!(
        kept.to_string().contains("UnsupportedCertVersion"),
        "{kept}"
    );
}

#[test]
fn crls_refuse_revoked_certificates_and_pass_the_others() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let day = std::time::Duration::from_secs(86_400);
    let with_serial = |serial| LeafSpec {
        serial: Some(serial),
        ..LeafSpec::node("ipn:1.0")
    };
    let revoked = leaf(&ca, &with_serial(7), EkuProfile::default());
    let fine = leaf(&ca, &with_serial(8), EkuProfile::default());
    let good = leaf(&ca, &LeafSpec::node("ipn:9.0"), EkuProfile::default());
    let crl = ca.crl_pem(&[7], day).unwrap();
    let v = TlsVersion::Tls13;
    let with_crl = |c: TlsContext| c.with_crls_pem(crl.as_bytes()).unwrap();
    // Both TLS roles refuse the revoked certificate and send bad_certificate...
    let server = with_crl(ctx(&ca, Some(good.clone()), v));
    let client = with_crl(ctx(&ca, Some(revoked.clone()), v));
    let out = run(client.client_config(), "localhost", &server);
    assert_eq!(cert_error(&out.server), Some(CertificateError::Revoked));
    assert_eq!(
        peer_alert(&out.client),
        Some(AlertDescription::BadCertificate)
    );
    let server = ctx(&ca, Some(revoked.clone()), v);
    let out = run(
        with_crl(ctx(&ca, None, v)).client_config(),
        "localhost",
        &server,
    );
    assert_eq!(cert_error(&out.client), Some(CertificateError::Revoked));
    assert_eq!(
        peer_alert(&out.server),
        Some(AlertDescription::BadCertificate)
    );
    // ... and accept one the list does not name.
    let client = with_crl(ctx(&ca, Some(fine), v));
    let out = run(
        client.client_config(),
        "localhost",
        &server_ok(&ca, &good, &crl),
    );
    assert!(out.client.is_ok() && out.server.is_ok(), "{:?}", out.server);
    // Without the CRL the revoked certificate passes: nothing else checks revocation.
    let out = run(
        ctx(&ca, Some(revoked), v).client_config(),
        "localhost",
        &ctx(&ca, Some(good.clone()), v),
    );
    assert!(out.client.is_ok() && out.server.is_ok(), "{:?}", out.server);
    // An expired list of the issuer fails validation of its certificates.
    let now = std::time::SystemTime::now();
    let stale = ca.crl_pem_between(&[], now - 2 * day, now - day).unwrap();
    let client = ctx(&ca, None, v).with_crls_pem(stale.as_bytes()).unwrap();
    let out = run(
        client.client_config(),
        "localhost",
        &ctx(&ca, Some(good), v),
    );
    assert!(
        matches!(
            cert_error(&out.client),
            Some(CertificateError::ExpiredRevocationListContext { .. })
        ),
        "{:?}",
        out.client
    );
    // A list that is not a CRL is a configuration error.
    assert!(matches!(
        ctx(&ca, None, v).with_crls_pem(ca.ca_pem().as_bytes()),
        Err(TlsError::BadCrl(_))
    ));
}

fn server_ok(ca: &CertFactory, cert: &(String, String), crl: &str) -> TlsContext {
    ctx(ca, Some(cert.clone()), TlsVersion::Tls13)
        .with_crls_pem(crl.as_bytes())
        .unwrap()
}

/// One TLS 1.3 session that also exchanges application data (so the client receives the
/// server's session tickets); returns how the handshake went on each side and the peer
/// identity each saw.
fn session(
    client: &TlsContext,
    server: &TlsContext,
) -> ((HandshakeKind, PeerIdentity), (HandshakeKind, PeerIdentity)) {
    let (mut csock, mut ssock) = tcp_pair();
    let server = server.clone();
    let srv = thread::spawn(move || {
        let mut conn = server.server().unwrap();
        complete_handshake(&mut conn, &mut ssock).unwrap();
        let kind = conn.handshake_kind().unwrap();
        let id = PeerIdentity::from_connection(&conn).unwrap();
        let mut s = StreamOwned::new(conn, ssock);
        s.write_all(b"ok").unwrap();
        s.flush().unwrap();
        let mut buf = [0u8; 1];
        let _ = s.read(&mut buf);
        (kind, id)
    });
    let mut conn = client.client("localhost").unwrap();
    complete_handshake(&mut conn, &mut csock).unwrap();
    let kind = conn.handshake_kind().unwrap();
    let id = PeerIdentity::from_connection(&conn).unwrap();
    let mut s = StreamOwned::new(conn, csock);
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).unwrap();
    s.conn.send_close_notify();
    let _ = s.flush();
    drop(s);
    ((kind, id), srv.join().unwrap())
}

#[test]
fn a_later_session_resumes_and_still_sees_the_peer_certificate() {
    let ca = CertFactory::new_ca("Test CA").unwrap();
    let v = TlsVersion::Tls13;
    let server = ctx(&ca, Some(ca.issue(&LeafSpec::node("ipn:2.0")).unwrap()), v);
    let client = ctx(&ca, Some(ca.issue(&LeafSpec::node("ipn:1.0")).unwrap()), v);
    let (c1, s1) = session(&client, &server);
    assert_eq!((c1.0, s1.0), (HandshakeKind::Full, HandshakeKind::Full));
    let (c2, s2) = session(&client, &server);
    assert_eq!(
        (c2.0, s2.0),
        (HandshakeKind::Resumed, HandshakeKind::Resumed)
    );
    // Node authentication on the resumed session has the same certificates to go by.
    assert_eq!(c2.1.node_ids, vec!["ipn:2.0"]);
    assert_eq!(s2.1.node_ids, vec!["ipn:1.0"]);
    assert_eq!(authenticate_node(&s2.1, "ipn:1.0"), Authn::Success);
}
