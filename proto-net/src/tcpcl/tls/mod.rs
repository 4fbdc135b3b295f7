//! TLS for TCPCLv4 sessions (RFC 9174 §4.4), built on rustls with the ring provider.
//!
//! * [`TlsSettings`] / [`TlsContext`]: PEM-configured client (active entity) and server
//!   (passive entity) configurations; TLS 1.3 unless TLS 1.2 is configured; optional cipher
//!   suite filter; `SSLKEYLOGFILE` honoured.
//! * Certificate validation ([`verify`]): the path must validate against the configured CA,
//!   but the TLS layer does not insist that the certificate names the dialled host, because
//!   a TCPCL certificate may carry only a NODE-ID. The passive entity always requests a
//!   client certificate and validates it when presented.
//! * Identity ([`PeerIdentity`], [`authenticate_host`], [`authenticate_node`]): NODE-ID,
//!   DNS-ID and IPADDR-ID claims and their [`Authn`] results, to which the TCPCL agent
//!   applies `require_host_authn` (right after the handshake) and `require_node_authn`
//!   (after SESS_INIT).
//! * `certgen` (feature `certgen`): a throw-away CA issuing certificates with those
//!   identities, for tests and demos.
//!
//! Typical use by the agent, after the contact header exchange:
//!
//! ```text
//! let mut tls = ctx.client("peer.example")?;          // or ctx.server()? when passive
//! complete_handshake(&mut tls, &mut tcp)?;
//! let id = PeerIdentity::from_connection(&tls).unwrap_or_default();
//! let host = authenticate_host(&id, Some("peer.example"), Some(peer_addr.ip()));
//! let stream = rustls::StreamOwned::new(tls, tcp);
//! ```

use std::io::{self, Read, Write};
use std::path::PathBuf;

mod context;
mod identity;
pub mod verify;

#[cfg(any(test, feature = "certgen"))]
pub mod certgen;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pki;

pub use context::{TlsContext, TlsSettings, TlsVersion};
pub use identity::{authenticate_host, authenticate_node, Authn, PeerIdentity};
/// The rustls types [`TlsFailure`](super::TlsFailure) carries, so callers can match
/// them without depending on rustls themselves.
pub use rustls::{AlertDescription, CertificateError, PeerIncompatible};
pub use verify::EkuPolicy;

/// Errors from TLS configuration, certificate handling and handshakes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A configured PEM file could not be read.
    #[error("cannot read TLS {what} file {}: {source}", path.display())]
    Io {
        /// Which file (`CA`, `certificate`, `key`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// PEM data could not be decoded.
    #[error("invalid TLS {what} PEM: {detail}")]
    Pem {
        /// Which input (`CA`, `certificate`, `key`).
        what: &'static str,
        /// Decoder message.
        detail: String,
    },
    /// A PEM input held no certificate.
    #[error("no certificate found in TLS {0} PEM")]
    NoCertificates(&'static str),
    /// No CA file configured.
    #[error("TLS needs a CA certificate file (tls_ca_file) to validate peers")]
    MissingCa,
    /// A CA certificate is not usable as a trust anchor.
    #[error("invalid TLS CA certificate: {0}")]
    BadCa(String),
    /// A certificate revocation list (`tls_crl_file`) cannot be used.
    #[error("invalid certificate revocation list: {0}")]
    BadCrl(String),
    /// Only one of certificate and key was configured.
    #[error("TLS certificate and private key must be configured together")]
    CertKeyMismatch,
    /// Acting as TLS server without a certificate.
    #[error("no TLS certificate/key configured: the passive entity must present one")]
    NoServerCertificate,
    /// `tls_version` not understood.
    #[error("invalid TLS version {0:?} (expected 1.2 or 1.3)")]
    InvalidVersion(String),
    /// A `tls_ciphers` name not implemented here.
    #[error("unknown or unsupported TLS cipher suite {0:?}")]
    UnknownCipher(String),
    /// The cipher filter leaves nothing usable with the allowed versions.
    #[error("no configured cipher suite is usable with minimum version {0}")]
    NoUsableCiphers(TlsVersion),
    /// The name given to [`TlsContext::client`] is neither a DNS name nor an IP literal.
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
    /// A certificate could not be parsed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A certificate verifier could not be built.
    #[error("cannot build certificate verifier: {0}")]
    Verifier(String),
    /// rustls configuration or protocol error, including handshake failures such as
    /// `invalid peer certificate: UnknownIssuer`, `... Expired`, or a received alert.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// Socket error (including a read/write timeout) during the handshake.
    #[error("TLS handshake I/O: {0}")]
    HandshakeIo(io::Error),
    /// Certificate generation failed.
    #[cfg(any(test, feature = "certgen"))]
    #[error("certificate generation: {0}")]
    CertGen(String),
}

impl TlsError {
    /// Classifies an I/O error returned by rustls' `complete_io` / stream wrappers: TLS
    /// protocol failures become [`TlsError::Rustls`] (a certificate our verifier rejected
    /// on this thread with its specific reason, see [`verify`]), the rest stay I/O errors.
    pub fn from_io(err: io::Error) -> Self {
        if let Some(inner) = err.get_ref() {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return TlsError::Rustls(verify::restore_rejection(tls.clone()));
            }
        }
        TlsError::HandshakeIo(err)
    }
}

/// Drives the TLS handshake on a blocking socket until it completes or fails.
///
/// Set read/write timeouts on the socket beforehand: a silent peer then ends the handshake
/// with [`TlsError::HandshakeIo`] instead of blocking forever. A peer that closes the connection
/// mid-handshake yields an `UnexpectedEof` I/O error; a rejected certificate or a received
/// alert yields [`TlsError::Rustls`]. On failure any pending alert is flushed to the peer
/// (best effort) so it fails promptly too.
pub fn complete_handshake<D, S>(
    conn: &mut rustls::ConnectionCommon<D>,
    sock: &mut S,
) -> Result<(), TlsError>
where
    S: Read + Write,
{
    verify::clear_rejection();
    while conn.is_handshaking() {
        match conn.complete_io(sock) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(TlsError::HandshakeIo(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the connection during the TLS handshake",
                )));
            }
            Ok(_) => {}
            Err(e) => {
                // Send our alert (if any) so the peer does not wait for us.
                while conn.wants_write() {
                    if conn.write_tls(sock).is_err() {
                        break;
                    }
                }
                let _ = sock.flush();
                return Err(TlsError::from_io(e));
            }
        }
    }
    // Flush anything still queued (e.g. the client Finished, TLS 1.3 tickets).
    while conn.wants_write() {
        conn.write_tls(sock).map_err(TlsError::from_io)?;
    }
    sock.flush().map_err(TlsError::from_io)?;
    Ok(())
}
