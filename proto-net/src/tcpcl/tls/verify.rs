//! Certificate verifiers implementing RFC 9174 §4.4.4.1 (certification path and purpose
//! validation) without RFC 6125 name checking inside the handshake.
//!
//! * [`TcpclServerVerifier`] (used by the active entity / TLS client): the chain must
//!   validate against the configured CA and be within its validity period, but the
//!   certificate need not name the dialled host, because a TCPCL certificate may carry only
//!   a NODE-ID. Host and Node ID authentication happen later in the TCPCL layer through
//!   [`authenticate_host`](super::authenticate_host) and
//!   [`authenticate_node`](super::authenticate_node).
//! * [`TcpclClientVerifier`] (used by the passive entity / TLS server) always requests a
//!   client certificate (RFC 9174 §4.4.3 "the passive entity SHALL request a client-side
//!   certificate"), validates it when presented, and, unless configured as mandatory,
//!   lets clients without a certificate through (their NODE-ID result is then `Absent`).
//!
//! Extended Key Usage ([`EkuPolicy`]): a certificate without the extension is accepted; a
//! present one must contain the TLS role's purpose (`id-kp-serverAuth` /
//! `id-kp-clientAuth`) or `id-kp-bundleSecurity` (1.3.6.1.5.5.7.3.35, RFC 9174 §4.4.2), or
//! — under the §4.4.5 RECOMMENDED policy [`EkuPolicy::RequireBundleSecurity`] —
//! `id-kp-bundleSecurity` itself.
//!
//! Alerts: RFC 9174 §4.4.4.1 says a failed validation SHALL fail the handshake with a
//! `bad_certificate` alert. rustls derives the alert it sends from the
//! [`CertificateError`] a verifier returns (`From<CertificateError> for AlertDescription`
//! in rustls 0.23: only `BadEncoding`, `UnhandledCriticalExtension` and
//! `NotValidForName[Context]` become `bad_certificate`; `UnknownIssuer` becomes
//! `unknown_ca`, `Expired`/`NotValidYet` `certificate_expired`, `BadSignature`
//! `decrypt_error`, `InvalidPurpose` `unsupported_certificate`, `Revoked`
//! `certificate_revoked`, `Other` `certificate_unknown`). So a rejection is returned to
//! rustls as `BadEncoding`, and the specific reason is kept aside for the thread that
//! drives the handshake, which gets it back through [`restore_rejection`].

use std::cell::RefCell;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, RootCertStore,
    SignatureScheme,
};

/// DER content octets of `id-kp-bundleSecurity`, 1.3.6.1.5.5.7.3.35 (RFC 9174 §4.4.2.2).
const EKU_BUNDLE_SECURITY: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x23];
/// DER content octets of `id-kp-serverAuth`, 1.3.6.1.5.5.7.3.1.
const EKU_SERVER_AUTH: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// DER content octets of `id-kp-clientAuth`, 1.3.6.1.5.5.7.3.2.
const EKU_CLIENT_AUTH: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// Which Extended Key Usage a peer's end-entity certificate must show when it carries the
/// extension (the `tls_require_bundle_eku` option). A certificate without the extension
/// passes either way (RFC 9174 §4.4.2 makes the EKU a SHOULD of issuance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EkuPolicy {
    /// The TLS role's purpose (`id-kp-serverAuth` for the passive entity,
    /// `id-kp-clientAuth` for the active one) or `id-kp-bundleSecurity`: what TCPCL
    /// implementations issue today, and the default.
    #[default]
    RoleOrBundleSecurity,
    /// `id-kp-bundleSecurity` (RFC 9174 §4.4.5 RECOMMENDED policy).
    RequireBundleSecurity,
}

thread_local! {
    /// The specific reason of the last certificate this thread's verifiers rejected; see the
    /// module documentation. Handshakes are driven on the session's own thread, and the
    /// verifier runs inside rustls' `process_new_packets` on that thread.
    static REJECTED: RefCell<Option<CertificateError>> = const { RefCell::new(None) };
}

/// Records `reason` and returns the error that makes rustls send `bad_certificate`.
fn reject(reason: CertificateError) -> Error {
    log::debug!("TLS: peer certificate rejected: {reason}");
    REJECTED.with(|r| *r.borrow_mut() = Some(reason));
    Error::InvalidCertificate(CertificateError::BadEncoding)
}

/// Forgets a reason left by an earlier handshake on this thread; call before starting one.
pub(crate) fn clear_rejection() {
    REJECTED.with(|r| r.borrow_mut().take());
}

/// Turns the `bad_certificate`-carrying error a verifier of this thread returned back into
/// its specific reason (unknown CA, expired, ...); other errors pass through.
pub fn restore_rejection(err: Error) -> Error {
    match err {
        Error::InvalidCertificate(CertificateError::BadEncoding) => {
            match REJECTED.with(|r| r.borrow_mut().take()) {
                Some(reason) => Error::InvalidCertificate(reason),
                None => Error::InvalidCertificate(CertificateError::BadEncoding),
            }
        }
        other => other,
    }
}

/// Certificate revocation lists checked on every certificate of a peer's path (the
/// `tls_crl_file` option; RFC 9174 §1.1 leaves revocation to policy).
pub type Crls = Arc<Vec<webpki::CertRevocationList<'static>>>;

/// Path and purpose validation shared by both verifiers.
#[derive(Debug)]
struct PathValidator {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    eku: EkuPolicy,
    crls: Crls,
}

impl PathValidator {
    fn validate(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        role: &'static [u8],
    ) -> Result<(), Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|e| reject(pki_error(e)))?;
        let crls: Vec<&webpki::CertRevocationList<'_>> = self.crls.iter().collect();
        // A certificate no configured CRL covers passes: the CRLs are an operator's
        // blocklist, not a requirement that every issuer publish one.
        let revocation = webpki::RevocationOptionsBuilder::new(&crls).ok().map(|b| {
            b.with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
                .build()
        });
        cert.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &self.roots.roots,
            intermediates,
            now,
            TcpclEku {
                role,
                policy: self.eku,
            },
            revocation,
            None,
        )
        .map_err(|e| reject(pki_error(e)))?;
        Ok(())
    }
}

/// Server-certificate verifier for the TCPCL active entity (TLS client).
///
/// Validates the certification path to the configured trust anchors (unknown CA, expiry,
/// bad signature, wrong key purpose all fail the handshake with `bad_certificate`) but does
/// not require the certificate to name the host that was dialled.
#[derive(Debug)]
pub struct TcpclServerVerifier {
    path: PathValidator,
}

impl TcpclServerVerifier {
    /// Builds a verifier trusting `roots`, with algorithms from `provider`, applying `eku`.
    pub fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>, eku: EkuPolicy) -> Self {
        Self {
            path: PathValidator {
                roots,
                provider,
                eku,
                crls: Crls::default(),
            },
        }
    }

    /// The same verifier, also refusing certificates these CRLs revoke.
    pub fn with_crls(mut self, crls: Crls) -> Self {
        self.path.crls = crls;
        self
    }
}

impl ServerCertVerifier for TcpclServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // No name check: the TCPCL layer authenticates identities itself (§4.4.4.2/3).
        // Stapled OCSP responses are not evaluated (see docs/conformance-tcpcl.md §4.4.5).
        self.path
            .validate(end_entity, intermediates, now, EKU_SERVER_AUTH)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algs = &self.path.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algs = &self.path.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.path
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Client-certificate verifier for the TCPCL passive entity (TLS server).
///
/// Always sends a CertificateRequest. A presented certificate must validate against the
/// configured trust anchors; an absent one is accepted unless the verifier is mandatory.
#[derive(Debug)]
pub struct TcpclClientVerifier {
    path: PathValidator,
    hints: Vec<DistinguishedName>,
    mandatory: bool,
}

impl TcpclClientVerifier {
    /// Builds a verifier trusting `roots` and applying `eku`; `mandatory` makes clients
    /// without a certificate fail the handshake.
    pub fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        eku: EkuPolicy,
        mandatory: bool,
    ) -> Self {
        Self {
            hints: roots.subjects(),
            path: PathValidator {
                roots,
                provider,
                eku,
                crls: Crls::default(),
            },
            mandatory,
        }
    }

    /// The same verifier, also refusing certificates these CRLs revoke.
    pub fn with_crls(mut self, crls: Crls) -> Self {
        self.path.crls = crls;
        self
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
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.path
            .validate(end_entity, intermediates, now, EKU_CLIENT_AUTH)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algs = &self.path.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algs = &self.path.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.path
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The EKU check of [`EkuPolicy`] for one TLS role.
struct TcpclEku {
    role: &'static [u8],
    policy: EkuPolicy,
}

impl webpki::ExtendedKeyUsageValidator for TcpclEku {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let role = webpki::KeyPurposeId::new(self.role);
        let bundle = webpki::KeyPurposeId::new(EKU_BUNDLE_SECURITY);
        let role_ok = self.policy == EkuPolicy::RoleOrBundleSecurity;
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if id == bundle || (role_ok && id == role) {
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

/// Maps webpki's path-validation errors onto rustls' (the same mapping as rustls' own
/// verifiers for the cases the CLI explains).
fn pki_error(e: webpki::Error) -> CertificateError {
    use webpki::Error as W;
    match e {
        W::BadDer | W::BadDerTime | W::TrailingData(_) => CertificateError::BadEncoding,
        W::CertNotValidYet { time, not_before } => {
            CertificateError::NotValidYetContext { time, not_before }
        }
        W::CertExpired { time, not_after } => CertificateError::ExpiredContext { time, not_after },
        W::InvalidCertValidity => CertificateError::Expired,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::CertRevoked => CertificateError::Revoked,
        W::UnknownRevocationStatus => CertificateError::UnknownRevocationStatus,
        W::CrlExpired { time, next_update } => {
            CertificateError::ExpiredRevocationListContext { time, next_update }
        }
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        W::UnsupportedCriticalExtension => CertificateError::UnhandledCriticalExtension,
        W::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_is_sent_as_bad_certificate_and_restored_on_this_thread() {
        // What rustls turns the returned error into on the wire.
        let Error::InvalidCertificate(sent) = reject(CertificateError::UnknownIssuer) else {
            panic!("not a certificate error");
        };
        assert_eq!(
            rustls::AlertDescription::from(sent.clone()),
            rustls::AlertDescription::BadCertificate
        );
        // The thread that drove the handshake gets the reason back, once.
        assert_eq!(
            restore_rejection(Error::InvalidCertificate(sent.clone())),
            Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        assert_eq!(
            restore_rejection(Error::InvalidCertificate(sent.clone())),
            Error::InvalidCertificate(CertificateError::BadEncoding)
        );
        // Another thread does not see this thread's reason.
        let _ = reject(CertificateError::Revoked);
        let other = std::thread::spawn(move || restore_rejection(Error::InvalidCertificate(sent)))
            .join()
            .unwrap();
        assert_eq!(
            other,
            Error::InvalidCertificate(CertificateError::BadEncoding)
        );
        clear_rejection();
        assert_eq!(
            restore_rejection(Error::InvalidCertificate(CertificateError::BadEncoding)),
            Error::InvalidCertificate(CertificateError::BadEncoding)
        );
    }
}
