//! Why a session closed ([`CloseReason`]), with typed causes for the failures outside
//! the protocol: the socket ([`IoOp`] and an [`io::ErrorKind`]), TLS ([`TlsFailure`])
//! and an outgoing bundle's source ([`SourceFailure`]). Callers explain a failure by
//! matching these, never by searching the message text.

use std::fmt;
use std::io;

use proto_core::tcpcl::UsageError;
use rustls::{AlertDescription, CertificateError, PeerIncompatible};

/// Why a session closed (the runtime's view; the protocol's view is
/// [`proto_core::tcpcl::CloseReason`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CloseReason {
    /// The session state machine closed it: a completed SESS_TERM exchange, the peer
    /// closing, a timeout, a contact failure or a protocol error.
    Session(proto_core::tcpcl::CloseReason),
    /// TLS failed: the handshake (certificate not trusted, expired, no common version
    /// or cipher suite, an alert from the peer, ...) or a record after it.
    TlsFailed(TlsFailure),
    /// `require_host_authn` is set and the certificate does not authenticate the
    /// peer host (SESS_TERM Contact Failure was sent).
    HostNotAuthenticated,
    /// A socket operation failed.
    Io {
        /// What the session was doing.
        op: IoOp,
        /// The error's kind (`ConnectionReset`, `BrokenPipe`, ...).
        kind: io::ErrorKind,
        /// The error's own text (the OS message).
        message: String,
    },
    /// An outgoing bundle's source failed mid-transfer; the session had to be closed
    /// because TCPCL cannot abandon a started transfer.
    SourceFailed(SourceFailure),
    /// The agent was stopped ([`Agent::stop`](super::Agent::stop)) or the session
    /// closed with [`SessionHandle::close`](super::SessionHandle::close).
    LocalClose,
}

impl CloseReason {
    /// Whether the session ended with a completed SESS_TERM exchange.
    pub fn is_graceful(&self) -> bool {
        matches!(
            self,
            CloseReason::Session(proto_core::tcpcl::CloseReason::Terminated { .. })
        )
    }

    /// A socket failure during `op`.
    pub(crate) fn io(op: IoOp, e: &io::Error) -> CloseReason {
        CloseReason::Io {
            op,
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Session(r) => write!(f, "{r}"),
            CloseReason::TlsFailed(e) => write!(f, "TLS handshake failed: {e}"),
            CloseReason::HostNotAuthenticated => f.write_str("peer host not authenticated"),
            CloseReason::Io { op, message, .. } => write!(f, "I/O error {op}: {message}"),
            CloseReason::SourceFailed(e) => write!(f, "bundle source failed: {e}"),
            CloseReason::LocalClose => f.write_str("closed locally"),
        }
    }
}

/// What a session was doing when its socket failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOp {
    /// Reading from the socket.
    Read,
    /// Writing to the socket.
    Write,
    /// Waiting for the socket or a wake-up (`ppoll`), or preparing that wait.
    Wait,
    /// Encoding a message for the wire (an internal failure, not the peer's).
    Encode,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::Read => "reading from the socket",
            IoOp::Write => "writing to the socket",
            IoOp::Wait => "waiting for the socket",
            IoOp::Encode => "encoding a message",
        })
    }
}

/// How TLS failed on a session.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The peer's certificate was not issued by a CA we trust (unknown issuer, or a
    /// signature that does not verify against our CAs).
    UntrustedCertificate(CertificateError),
    /// The peer's certificate has expired.
    CertificateExpired(CertificateError),
    /// The peer's certificate is not valid yet.
    CertificateNotYetValid(CertificateError),
    /// The peer's certificate is unacceptable for another reason (revoked, badly
    /// encoded, an unsupported algorithm or critical extension, ...).
    CertificateInvalid(CertificateError),
    /// The peer sent a fatal alert: it rejected our certificate
    /// ([`AlertDescription::UnknownCA`], `BadCertificate`, `DecryptError`,
    /// `CertificateExpired`, `CertificateRequired`), or found no common version
    /// (`ProtocolVersion`) or cipher suite (`HandshakeFailure`).
    AlertReceived(AlertDescription),
    /// The peer and we share no TLS version.
    NoCommonVersion(PeerIncompatible),
    /// The peer and we share no cipher suite, key exchange group or signature scheme.
    NoCommonCipher(PeerIncompatible),
    /// The connection failed during the handshake: the peer closed it
    /// (`UnexpectedEof`), reset it, or the socket failed.
    HandshakeIo {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's own text.
        message: String,
    },
    /// The session negotiated TLS, but this agent has no TLS context.
    NotConfigured,
    /// As the passive entity we must present a certificate, and none is configured.
    NoServerCertificate,
    /// The name to verify the peer by (SNI) is neither a DNS name nor an IP address.
    InvalidServerName(String),
    /// Any other TLS error (a malformed or unexpected message, a record that does
    /// not decrypt, ...).
    Other(rustls::Error),
}

impl TlsFailure {
    /// A socket failure during the handshake.
    pub(crate) fn handshake_io(e: &io::Error) -> TlsFailure {
        TlsFailure::HandshakeIo {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl From<rustls::Error> for TlsFailure {
    fn from(e: rustls::Error) -> Self {
        use rustls::Error as E;
        use CertificateError as C;
        use PeerIncompatible as P;
        match e {
            E::InvalidCertificate(c) => match c {
                C::UnknownIssuer | C::BadSignature => TlsFailure::UntrustedCertificate(c),
                C::Expired | C::ExpiredContext { .. } => TlsFailure::CertificateExpired(c),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    TlsFailure::CertificateNotYetValid(c)
                }
                c => TlsFailure::CertificateInvalid(c),
            },
            E::AlertReceived(a) => TlsFailure::AlertReceived(a),
            E::PeerIncompatible(
                p @ (P::NoCipherSuitesInCommon
                | P::NoKxGroupsInCommon
                | P::NoSignatureSchemesInCommon
                | P::NoCertificateRequestSignatureSchemesInCommon),
            ) => TlsFailure::NoCommonCipher(p),
            E::PeerIncompatible(
                p @ (P::ServerDoesNotSupportTls12Or13
                | P::ServerTlsVersionIsDisabledByOurConfig
                | P::SupportedVersionsExtensionRequired
                | P::Tls12NotOffered
                | P::Tls12NotOfferedOrEnabled),
            ) => TlsFailure::NoCommonVersion(p),
            e => TlsFailure::Other(e),
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::UntrustedCertificate(c) => {
                write!(f, "untrusted peer certificate: {}", certificate_text(c))
            }
            TlsFailure::CertificateExpired(c)
            | TlsFailure::CertificateNotYetValid(c)
            | TlsFailure::CertificateInvalid(c) => {
                write!(f, "invalid peer certificate: {}", certificate_text(c))
            }
            TlsFailure::AlertReceived(a) => {
                write!(f, "the peer sent the fatal alert {}", alert_name(*a))
            }
            TlsFailure::NoCommonVersion(_) => f.write_str("no TLS version in common with the peer"),
            TlsFailure::NoCommonCipher(p) => write!(
                f,
                "no {} in common with the peer",
                match p {
                    PeerIncompatible::NoKxGroupsInCommon => "key exchange group",
                    PeerIncompatible::NoSignatureSchemesInCommon
                    | PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon => {
                        "signature scheme"
                    }
                    _ => "TLS cipher suite",
                }
            ),
            TlsFailure::HandshakeIo { kind, message } => match kind {
                io::ErrorKind::UnexpectedEof => {
                    f.write_str("the peer closed the connection during the handshake")
                }
                _ => write!(f, "the connection failed during the handshake: {message}"),
            },
            TlsFailure::NotConfigured => f.write_str("TLS is not configured"),
            TlsFailure::NoServerCertificate => {
                f.write_str("no certificate to present (the passive entity must have one)")
            }
            TlsFailure::InvalidServerName(n) => write!(f, "invalid TLS server name {n:?}"),
            TlsFailure::Other(e) => write!(f, "{e}"),
        }
    }
}

/// A certificate error in words (rustls prints the simple ones as their Rust name).
fn certificate_text(c: &CertificateError) -> String {
    use CertificateError as C;
    match c {
        C::UnknownIssuer => "issued by an unknown CA".into(),
        C::BadSignature => "its signature does not verify against a trusted CA".into(),
        C::Expired => "certificate expired".into(),
        C::NotValidYet => "certificate not valid yet".into(),
        C::Revoked => "certificate revoked".into(),
        C::BadEncoding => "certificate badly encoded".into(),
        C::UnhandledCriticalExtension => "certificate has an unsupported critical extension".into(),
        C::UnknownRevocationStatus => "certificate revocation status unknown".into(),
        C::NotValidForName => "certificate not valid for the name".into(),
        C::InvalidPurpose => "certificate not valid for this purpose".into(),
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "certificate signed with an unsupported algorithm".into()
        }
        C::ApplicationVerificationFailure => "certificate rejected by the application".into(),
        // The variants with context (times, names) have good texts of their own.
        c => c.to_string(),
    }
}

/// An alert's RFC 8446 name (`unknown_ca`, `certificate_expired`) and code.
pub(crate) fn alert_name(a: AlertDescription) -> String {
    let code = u8::from(a);
    let Some(name) = a.as_str() else {
        return format!("{code}");
    };
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_ascii_lowercase();
            let acronym_ends = chars[i - 1].is_ascii_uppercase()
                && chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev_lower || acronym_ends {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    format!("{out} ({code})")
}

/// How an outgoing bundle's source failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceFailure {
    /// Reading the bundle failed (a file that shrank reads as `UnexpectedEof`).
    Read {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's own text.
        message: String,
    },
    /// The source yielded a different number of bytes than the length given when
    /// the bundle was submitted.
    LengthMismatch {
        /// The announced length.
        announced: u64,
        /// Bytes the source yielded (when more than announced: at least this many).
        yielded: u64,
    },
    /// A bundle of unknown length grew past the peer's Transfer MRU.
    TooLarge {
        /// Bytes the bundle had reached.
        len: u64,
        /// The peer's Transfer MRU.
        mru: u64,
    },
}

impl SourceFailure {
    /// A read failure.
    pub(crate) fn read(e: &io::Error) -> SourceFailure {
        SourceFailure::Read {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl From<UsageError> for SourceFailure {
    /// What the core found wrong with a source ([`TransmitError::Source`]).
    ///
    /// [`TransmitError::Source`]: proto_core::tcpcl::TransmitError::Source
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::LengthMismatch { announced, yielded } => {
                SourceFailure::LengthMismatch { announced, yielded }
            }
            UsageError::TransferTooLarge { len, mru } => SourceFailure::TooLarge { len, mru },
            // The core names no other error of a source.
            e => SourceFailure::Read {
                kind: io::ErrorKind::InvalidInput,
                message: e.to_string(),
            },
        }
    }
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceFailure::Read { message, .. } => write!(f, "reading failed: {message}"),
            SourceFailure::LengthMismatch { announced, yielded } => write!(
                f,
                "it yielded {yielded} bytes, but {announced} were announced"
            ),
            SourceFailure::TooLarge { len, mru } => write!(
                f,
                "the bundle reached {len} bytes, more than the peer's transfer MRU of {mru}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_are_classified() {
        use rustls::Error as E;
        let f = |e| TlsFailure::from(e);
        assert!(matches!(
            f(E::InvalidCertificate(CertificateError::UnknownIssuer)),
            TlsFailure::UntrustedCertificate(_)
        ));
        assert!(matches!(
            f(E::InvalidCertificate(CertificateError::Expired)),
            TlsFailure::CertificateExpired(_)
        ));
        assert!(matches!(
            f(E::InvalidCertificate(CertificateError::NotValidYet)),
            TlsFailure::CertificateNotYetValid(_)
        ));
        assert!(matches!(
            f(E::InvalidCertificate(CertificateError::Revoked)),
            TlsFailure::CertificateInvalid(CertificateError::Revoked)
        ));
        assert_eq!(
            f(E::AlertReceived(AlertDescription::UnknownCA)),
            TlsFailure::AlertReceived(AlertDescription::UnknownCA)
        );
        assert!(matches!(
            f(PeerIncompatible::NoCipherSuitesInCommon.into()),
            TlsFailure::NoCommonCipher(_)
        ));
        assert!(matches!(
            f(PeerIncompatible::SupportedVersionsExtensionRequired.into()),
            TlsFailure::NoCommonVersion(_)
        ));
        assert!(matches!(f(E::DecryptError), TlsFailure::Other(_)));
    }

    #[test]
    fn texts_are_words_not_rust_names() {
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca (48)");
        assert_eq!(
            alert_name(AlertDescription::UnknownPSKIdentity),
            "unknown_psk_identity (115)"
        );
        assert_eq!(alert_name(AlertDescription::Unknown(200)), "200");
        let t = TlsFailure::UntrustedCertificate(CertificateError::UnknownIssuer).to_string();
        assert!(
            t.contains("unknown CA") && !t.contains("UnknownIssuer"),
            "{t}"
        );
        let t = CloseReason::Io {
            op: IoOp::Read,
            kind: io::ErrorKind::ConnectionReset,
            message: "Connection reset by peer (os error 104)".into(),
        }
        .to_string();
        assert_eq!(
            t,
            "I/O error reading from the socket: Connection reset by peer (os error 104)"
        );
    }
}
