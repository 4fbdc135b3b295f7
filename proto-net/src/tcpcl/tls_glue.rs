//! The runtime's view of a TLS session: what it reports to the application
//! ([`TlsInfo`], with the RFC 9174 §4.4.4 authentication results). The handshake and
//! record I/O live in the session loop's transport.

use super::tls::{Authn, PeerIdentity};

/// TLS details of a session, with the RFC 9174 §4.4.4 authentication results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Negotiated protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// Negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// Identities in the peer's certificate (empty if it presented none).
    pub peer_identity: PeerIdentity,
    /// Whether the peer presented a certificate.
    pub peer_certificate: bool,
    /// Whether this session resumed an earlier TLS session (RFC 9174 §4.4 MAY): the peer
    /// identity is then the certificate of the session resumed.
    pub resumed: bool,
    /// Host authentication (DNS-ID / IPADDR-ID against the connected name and the
    /// peer's address).
    pub host_authn: Authn,
    /// Node authentication (NODE-ID against the peer's SESS_INIT node ID); `None` until
    /// SESS_INIT arrived.
    pub node_authn: Option<Authn>,
}

/// Describes an established connection (authentication of the node ID comes later).
pub(crate) fn describe(
    conn: &rustls::Connection,
    host_authn: impl FnOnce(&PeerIdentity) -> Authn,
) -> TlsInfo {
    let peer_certificate = conn.peer_certificates().is_some_and(|c| !c.is_empty());
    let id = PeerIdentity::from_connection(conn).unwrap_or_default();
    TlsInfo {
        version: conn
            .protocol_version()
            .map_or_else(|| "unknown".into(), |v| format!("{v:?}")),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".into(), |s| format!("{:?}", s.suite())),
        host_authn: host_authn(&id),
        peer_identity: id,
        peer_certificate,
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        node_authn: None,
    }
}
