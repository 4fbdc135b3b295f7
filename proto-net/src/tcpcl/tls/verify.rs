//! Certificate verifiers implementing RFC 9174 §4.4.4.1 (certification path and purpose
//! validation) without RFC 6125 name checking inside the handshake.
//!
//! * [`TcpclServerVerifier`] (used by the active entity / TLS client) wraps rustls'
//!   [`WebPkiServerVerifier`]: the chain must validate against the configured CA and be
//!   within its validity period, but a name mismatch is accepted, because a TCPCL
//!   certificate may carry only a NODE-ID. Host and Node ID authentication happen later in
//!   the TCPCL layer through [`authenticate_host`](super::authenticate_host) and
//!   [`authenticate_node`](super::authenticate_node).
//! * [`TcpclClientVerifier`] (used by the passive entity / TLS server) always requests a
//!   client certificate (RFC 9174 §4.4.3 "the passive entity SHALL request a client-side
//!   certificate"), validates it when presented, and, unless configured as mandatory,
//!   lets clients without a certificate through (their NODE-ID result is then `Absent`).
//!
//! Both accept an end-entity certificate whose Extended Key Usage contains
//! `id-kp-bundleSecurity` (1.3.6.1.5.5.7.3.35, RFC 9174 §4.4.2) instead of
//! `id-kp-serverAuth` / `id-kp-clientAuth`, as produced by some TCPCL implementations.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, RootCertStore,
    SignatureScheme,
};

use super::TlsError;

/// DER content octets of `id-kp-bundleSecurity`, 1.3.6.1.5.5.7.3.35 (RFC 9174 §4.4.2.2).
const EKU_BUNDLE_SECURITY: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x23];
/// DER content octets of `id-kp-serverAuth`, 1.3.6.1.5.5.7.3.1.
const EKU_SERVER_AUTH: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// DER content octets of `id-kp-clientAuth`, 1.3.6.1.5.5.7.3.2.
const EKU_CLIENT_AUTH: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// Server-certificate verifier for the TCPCL active entity (TLS client).
///
/// Validates the certification path to the configured trust anchors (unknown CA, expiry,
/// bad signature, wrong key purpose all fail the handshake) but does not require the
/// certificate to name the host that was dialled.
#[derive(Debug)]
pub struct TcpclServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl TcpclServerVerifier {
    /// Builds a verifier trusting `roots`, with algorithms from `provider`.
    pub fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        Ok(Self {
            inner,
            roots,
            provider,
        })
    }
}

impl ServerCertVerifier for TcpclServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(ok) => Ok(ok),
            // WebPkiServerVerifier checks the name only after the path validated, so a name
            // error means the chain is good. The TCPCL layer authenticates identities itself.
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {
                log::debug!(
                    "TLS: peer certificate does not name {server_name:?}; \
                     deferring to TCPCL host/node authentication"
                );
                Ok(ServerCertVerified::assertion())
            }
            Err(Error::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. },
            )) => {
                verify_bundle_security_chain(
                    &self.roots,
                    &self.provider,
                    end_entity,
                    intermediates,
                    now,
                    EKU_SERVER_AUTH,
                )?;
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Client-certificate verifier for the TCPCL passive entity (TLS server).
///
/// Always sends a CertificateRequest. A presented certificate must validate against the
/// configured trust anchors; an absent one is accepted unless the verifier is mandatory.
#[derive(Debug)]
pub struct TcpclClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl TcpclClientVerifier {
    /// Builds a verifier trusting `roots`; `mandatory` makes clients without a certificate
    /// fail the handshake.
    pub fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        mandatory: bool,
    ) -> Result<Self, TlsError> {
        let inner = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        Ok(Self {
            inner,
            roots,
            provider,
            mandatory,
        })
    }
}

impl ClientCertVerifier for TcpclClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. },
            )) => {
                verify_bundle_security_chain(
                    &self.roots,
                    &self.provider,
                    end_entity,
                    intermediates,
                    now,
                    EKU_CLIENT_AUTH,
                )?;
                Ok(ClientCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// EKU policy of RFC 9174 §4.4.2/§4.4.5: no EKU extension, or one containing the TLS role's
/// purpose or `id-kp-bundleSecurity`.
struct TcpclEku {
    role: &'static [u8],
}

impl webpki::ExtendedKeyUsageValidator for TcpclEku {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let role = webpki::KeyPurposeId::new(self.role);
        let bundle = webpki::KeyPurposeId::new(EKU_BUNDLE_SECURITY);
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if id == role || id == bundle {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        if present.is_empty() {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFoundContext(
                webpki::RequiredEkuNotFoundContext {
                    required: webpki::KeyUsage::required(EKU_BUNDLE_SECURITY),
                    present,
                },
            ))
        }
    }
}

/// Re-validates the path with the TCPCL EKU policy after rustls rejected the certificate's
/// key purpose.
fn verify_bundle_security_chain(
    roots: &RootCertStore,
    provider: &CryptoProvider,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    role: &'static [u8],
) -> Result<(), Error> {
    let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
    cert.verify_for_usage(
        provider.signature_verification_algorithms.all,
        &roots.roots,
        intermediates,
        now,
        TcpclEku { role },
        None,
        None,
    )
    .map_err(pki_error)?;
    log::debug!("TLS: peer certificate accepted through id-kp-bundleSecurity EKU");
    Ok(())
}

/// Maps the webpki errors reachable from [`verify_bundle_security_chain`] onto rustls errors.
fn pki_error(e: webpki::Error) -> Error {
    use webpki::Error as W;
    let ce = match e {
        W::BadDer | W::BadDerTime | W::TrailingData(_) => CertificateError::BadEncoding,
        W::CertNotValidYet { time, not_before } => {
            CertificateError::NotValidYetContext { time, not_before }
        }
        W::CertExpired { time, not_after } => CertificateError::ExpiredContext { time, not_after },
        W::InvalidCertValidity => CertificateError::Expired,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::CertRevoked => CertificateError::Revoked,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        W::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    Error::InvalidCertificate(ce)
}
