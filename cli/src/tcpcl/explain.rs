//! Sentences for the user: how a session went, and why it failed, chosen by matching
//! the error variants ([`CloseReason`], [`TlsFailure`], [`SourceFailure`],
//! [`AgentError`]), never by searching their message text.

use anyhow::anyhow;
use proto_core::tcpcl::{CloseReason as CoreClose, ContactFailure};
use proto_net::tcpcl::{
    CloseReason, Error as AgentError, SessTermReason, SessionParams, SourceFailure, TlsFailure,
    TlsInfo, XferRefuseReason,
};
use std::io::ErrorKind;
use std::time::Duration;

pub(super) fn describe_session(p: &SessionParams) -> String {
    format!(
        "session with {} at {} established ({}, keepalive {} s, peer segment MRU {}, peer transfer MRU {})",
        p.peer_node_id,
        p.peer_addr,
        if p.tls { "TLS" } else { "no TLS" },
        p.keepalive,
        p.peer_segment_mru,
        p.peer_transfer_mru
    )
}

pub(super) fn describe_tls(i: &TlsInfo) -> String {
    fn list<T: std::fmt::Display>(items: &[T]) -> String {
        if items.is_empty() {
            return "none".into();
        }
        items
            .iter()
            .map(T::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
    format!(
        "TLS up: {} {}; peer node IDs: {}; DNS names: {}; IPs: {}; host authentication: {}",
        i.version,
        i.cipher_suite,
        list(&i.peer_identity.node_ids),
        list(&i.peer_identity.dns_names),
        list(&i.peer_identity.ip_addrs),
        i.host_authn
    )
}

pub(super) fn refuse_text(r: XferRefuseReason) -> String {
    let hint = match r {
        XferRefuseReason::NO_RESOURCES => " - the receiver lacks resources (disk, memory)",
        XferRefuseReason::NOT_ACCEPTABLE => " - the receiver does not accept this bundle",
        XferRefuseReason::COMPLETED => " - the receiver already has it",
        XferRefuseReason::RETRANSMIT => " - the receiver asks for it to be sent again",
        XferRefuseReason::SESSION_TERMINATING => " - the session is ending",
        _ => "",
    };
    format!("{r:#}{hint}")
}

/// A sentence for a failed connect.
pub(super) fn explain_connect(e: AgentError, to: &str, timeout: Duration) -> anyhow::Error {
    match e {
        AgentError::Resolve(io) => anyhow!("cannot resolve {to}: {io}"),
        AgentError::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => {
                anyhow!("{to} refused the connection: nothing is listening there")
            }
            ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                anyhow!(
                    "timed out: no answer from {to} within {} s",
                    timeout.as_secs_f64()
                )
            }
            _ => anyhow!("cannot connect to {to}: {io}"),
        },
        e => anyhow!("cannot connect to {to}: {e}"),
    }
}

/// A sentence for why a session closed.
pub(super) fn explain_close(r: &CloseReason, peer: &str) -> String {
    match r {
        CloseReason::Session(c) => explain_session_close(c, peer),
        CloseReason::TlsFailed(f) => explain_tls(f, peer),
        CloseReason::HostNotAuthenticated => format!(
            "TLS host authentication failed: the certificate of {peer} does not name its host (DNS-ID/IPADDR-ID): it names other hosts, or none and --require-host-authn is set (--ignore-host-authn leaves it to node authentication)"
        ),
        CloseReason::Io { kind, message, .. } => match kind {
            ErrorKind::ConnectionReset => format!("{peer} reset the connection ({message})"),
            ErrorKind::BrokenPipe => format!("{peer} closed the connection while we were sending ({message})"),
            _ => format!("the connection to {peer} failed: {r}"),
        },
        CloseReason::SourceFailed(f) => match f {
            SourceFailure::TooLarge { len, mru } => format!(
                "the bundle is larger than {peer} accepts (it reached {len} bytes; the transfer MRU is {mru} bytes)"
            ),
            SourceFailure::LengthMismatch { announced, yielded } => format!(
                "the bundle changed while being sent: {yielded} bytes where {announced} were announced"
            ),
            SourceFailure::Read { kind: ErrorKind::UnexpectedEof, message } => {
                format!("the bundle ended early: {message}")
            }
            SourceFailure::Read { message, .. } => format!("reading the bundle failed: {message}"),
            _ => format!("the bundle could not be sent: {f}"),
        },
        CloseReason::LocalClose => "the session was closed locally".into(),
    }
}

/// A sentence for a close decided by the protocol state machine.
fn explain_session_close(c: &CoreClose, peer: &str) -> String {
    match c {
        CoreClose::Terminated { reason, by_peer } => {
            let who = if *by_peer { peer.to_string() } else { "we".to_string() };
            let mut s = format!("{who} ended the session (SESS_TERM reason: {reason:#})");
            if *reason == SessTermReason::CONTACT_FAILURE && *by_peer {
                s.push_str(
                    "; the peer did not accept our contact: it may require TLS \
                     (--tls-ca/--tls-cert/--tls-key) or authentication of our node ID",
                );
            } else if *reason == SessTermReason::VERSION_MISMATCH && *by_peer {
                s.push_str("; the peer does not speak TCPCL version 4");
            }
            s
        }
        CoreClose::PeerClosed => {
            format!("{peer} closed the connection without ending the session (no SESS_TERM)")
        }
        CoreClose::BadMagic => {
            format!("{peer} is not a TCPCL node (its contact header does not start with \"dtn!\")")
        }
        // Version 4 is refused only by a v3 session (`--tcpcl-version 3`).
        CoreClose::VersionMismatch { version: 4 } => {
            format!("contact failure: {peer} speaks TCPCL version 4 (RFC 9174), this session speaks version 3 (RFC 7242)")
        }
        CoreClose::VersionMismatch { version } => {
            let rfc = if *version == 3 { " (RFC 7242)" } else { "" };
            format!("contact failure: {peer} speaks TCPCL version {version}{rfc}, we speak version 4 (RFC 9174)")
        }
        CoreClose::ContactFailure(f) => match f {
            ContactFailure::NodeNotAuthenticated => format!(
                "node authentication failed: the TLS certificate of {peer} does not authenticate the node ID it sent (NODE-ID), or TLS is not in use, and --require-node-authn is set"
            ),
            ContactFailure::InvalidNodeId => {
                format!("contact failure: {peer} sent a node ID that is not a URI")
            }
            ContactFailure::CriticalExtension { item_type } => format!(
                "contact failure: {peer} requires session extension {item_type:#06x}, which we do not support"
            ),
            ContactFailure::SessInitTooLarge => {
                format!("contact failure: the SESS_INIT of {peer} is too large")
            }
            ContactFailure::MalformedSessInit => {
                format!("contact failure: the SESS_INIT of {peer} is malformed")
            }
        },
        CoreClose::TlsRequired => {
            format!("{peer} does not offer TLS and --require-tls is set")
        }
        CoreClose::ContactTimeout => format!(
            "timed out: {peer} did not complete the session setup (contact header, TLS, SESS_INIT) in time"
        ),
        CoreClose::SessTermTimeout => {
            format!("timed out: {peer} did not answer our SESS_TERM")
        }
        CoreClose::ProtocolError(e) => format!("{peer} violated the protocol: {e}"),
        CoreClose::LocalClose => "the session was closed locally".into(),
    }
}

/// A sentence naming which TLS check failed, and on which side.
fn explain_tls(f: &TlsFailure, peer: &str) -> String {
    use proto_net::tcpcl::tls::{AlertDescription as A, CertificateError as C};
    let what = match f {
        TlsFailure::UntrustedCertificate(_) => {
            format!("the certificate of {peer} was not issued by a CA in --tls-ca (unknown CA)")
        }
        TlsFailure::CertificateExpired(_) => format!("the certificate of {peer} has expired"),
        TlsFailure::CertificateNotYetValid(_) => {
            format!("the certificate of {peer} is not valid yet")
        }
        TlsFailure::CertificateInvalid(C::Revoked) => {
            format!("the certificate of {peer} is revoked")
        }
        TlsFailure::CertificateInvalid(C::InvalidPurpose | C::InvalidPurposeContext { .. }) => {
            format!(
                "the certificate of {peer} is not for TCPCL: its Extended Key Usage lacks \
                 id-kp-bundleSecurity (and, unless --tls-require-bundle-eku, the TLS role's purpose)"
            )
        }
        TlsFailure::CertificateInvalid(_) => {
            format!("the certificate of {peer} is not acceptable")
        }
        TlsFailure::AlertReceived(a) => match a {
            A::DecryptError => {
                format!("{peer} could not verify our certificate (not issued by a CA it trusts)")
            }
            A::UnknownCA => format!("{peer} does not trust our certificate (unknown CA)"),
            // What RFC 9174 §4.4.4.1 has a TCPCL entity send for any failed validation.
            A::BadCertificate => format!(
                "{peer} rejected our certificate (bad_certificate: not issued by a CA it \
                 trusts, expired, or refused by its policy)"
            ),
            A::CertificateExpired => format!("{peer} rejected our certificate as expired"),
            A::CertificateRevoked => format!("{peer} rejected our certificate as revoked"),
            A::CertificateRequired => {
                format!("{peer} requires a client certificate: give --tls-cert and --tls-key")
            }
            A::ProtocolVersion => no_common_version(peer),
            A::HandshakeFailure | A::InsufficientSecurity => no_common_cipher(peer),
            _ => format!("{peer} ended the handshake with an alert"),
        },
        TlsFailure::NoCommonVersion(_) => no_common_version(peer),
        TlsFailure::NoCommonCipher(_) => no_common_cipher(peer),
        TlsFailure::HandshakeIo {
            kind: ErrorKind::UnexpectedEof,
            ..
        } => format!("{peer} closed the connection during the handshake"),
        TlsFailure::HandshakeIo { .. } => {
            format!("the connection to {peer} failed during the handshake")
        }
        TlsFailure::NoServerCertificate => {
            "we have no certificate to present: give --tls-cert and --tls-key".into()
        }
        TlsFailure::InvalidServerName(name) => {
            format!("{name:?} is not a DNS name or IP address: give --server-name NAME")
        }
        _ => format!("TLS with {peer} failed"),
    };
    format!("TLS handshake failed: {what} ({f})")
}

fn no_common_version(peer: &str) -> String {
    format!("{peer} and we share no TLS version (TLS 1.2 only with --tls-version 1.2)")
}

fn no_common_cipher(peer: &str) -> String {
    format!("{peer} and we share no TLS cipher suite or version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_sentences_name_the_check() {
        use proto_net::tcpcl::tls::{AlertDescription as A, CertificateError as C};
        let cases = [
            (
                TlsFailure::UntrustedCertificate(C::UnknownIssuer),
                "unknown CA",
            ),
            (
                TlsFailure::AlertReceived(A::UnknownCA),
                "does not trust our certificate",
            ),
            (
                TlsFailure::AlertReceived(A::BadCertificate),
                "rejected our certificate",
            ),
            (
                TlsFailure::CertificateInvalid(C::InvalidPurpose),
                "id-kp-bundleSecurity",
            ),
            (
                TlsFailure::AlertReceived(A::DecryptError),
                "could not verify our certificate",
            ),
            (
                TlsFailure::AlertReceived(A::CertificateRequired),
                "--tls-cert",
            ),
            (TlsFailure::CertificateExpired(C::Expired), "has expired"),
            (
                TlsFailure::CertificateNotYetValid(C::NotValidYet),
                "not valid yet",
            ),
            (TlsFailure::CertificateInvalid(C::Revoked), "revoked"),
            (
                TlsFailure::AlertReceived(A::ProtocolVersion),
                "no TLS version",
            ),
            (
                TlsFailure::AlertReceived(A::HandshakeFailure),
                "no TLS cipher suite",
            ),
        ];
        for (failure, want) in cases {
            let m = explain_tls(&failure, "p");
            assert!(m.contains(want), "{failure:?}: {m}");
            // Words, not Rust names.
            assert!(
                !m.contains("UnknownIssuer") && !m.contains("UnknownCA"),
                "{m}"
            );
        }
    }

    #[test]
    fn source_failures_say_what_went_wrong() {
        let r = CloseReason::SourceFailed(SourceFailure::TooLarge {
            len: 2048,
            mru: 1024,
        });
        let m = explain_close(&r, "p");
        assert!(
            m.contains("larger than p accepts") && m.contains("1024 bytes"),
            "{m}"
        );
        let r = CloseReason::SourceFailed(SourceFailure::LengthMismatch {
            announced: 10,
            yielded: 8,
        });
        let m = explain_close(&r, "p");
        assert!(m.contains("8 bytes where 10 were announced"), "{m}");
    }
}
