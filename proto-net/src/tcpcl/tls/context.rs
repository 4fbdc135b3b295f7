//! TLS settings (the `tls_*` agent options) and the reusable client/server TLS context.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, KeyLogFile, RootCertStore, ServerConfig, ServerConnection,
    SupportedCipherSuite, SupportedProtocolVersion,
};

use super::verify::{Crls, EkuPolicy, TcpclClientVerifier, TcpclServerVerifier};
use super::TlsError;

/// Minimum TLS protocol version (the `tls_version` option).
///
/// TLS 1.3 is the default as RFC 9174 §4.4.3 mandates an RFC 8446 handshake; TLS 1.2 is
/// only offered or accepted when configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TlsVersion {
    /// TLS 1.2 or 1.3.
    Tls12,
    /// TLS 1.3 only.
    #[default]
    Tls13,
}

impl TlsVersion {
    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
        static TLS12_UP: &[&SupportedProtocolVersion] =
            &[&rustls::version::TLS13, &rustls::version::TLS12];
        match self {
            TlsVersion::Tls12 => TLS12_UP,
            TlsVersion::Tls13 => TLS13_ONLY,
        }
    }
}

impl FromStr for TlsVersion {
    type Err = TlsError;

    /// Accepts `1.2`, `1.3`, `TLSv1.2`, `tls1.3`, `TLSv1_2`, ... (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace('_', ".");
        let t = t
            .strip_prefix("tlsv")
            .or_else(|| t.strip_prefix("tls"))
            .unwrap_or(&t);
        match t {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            _ => Err(TlsError::InvalidVersion(s.to_owned())),
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        })
    }
}

/// TLS configuration of a TCPCL entity (the `tls_ca_file`, `tls_cert_file`,
/// `tls_key_file`, `tls_version`, `tls_ciphers`, `tls_require_bundle_eku` and
/// `tls_crl_file` options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the trusted CA certificate(s). Required.
    pub ca_file: Option<PathBuf>,
    /// PEM file with this entity's certificate chain (end-entity first).
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key of `cert_file` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// Minimum protocol version.
    pub min_version: TlsVersion,
    /// Optional cipher suite filter, in preference order. Names may be IANA
    /// (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), rustls
    /// (`TLS13_AES_128_GCM_SHA256`) or OpenSSL (`ECDHE-RSA-AES128-GCM-SHA256`) spellings,
    /// case-insensitive. An unknown name is an error.
    pub ciphers: Option<Vec<String>>,
    /// What a present Extended Key Usage of the peer's certificate must contain.
    pub eku: EkuPolicy,
    /// PEM file of certificate revocation lists: a peer certificate (or CA) one of them
    /// revokes fails validation; certificates no list covers pass.
    pub crl_file: Option<PathBuf>,
}

/// Ready-to-use rustls client and server configurations for TCPCL sessions.
///
/// Cheap to clone (shares `Arc`s); `Send + Sync`. The active entity calls
/// [`TlsContext::client`], the passive entity [`TlsContext::server`].
#[derive(Clone)]
pub struct TlsContext {
    client: Arc<ClientConfig>,
    server: Option<Arc<ServerConfig>>,
    parts: Arc<Parts>,
}

struct Parts {
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    min_version: TlsVersion,
    require_client_cert: bool,
    eku: EkuPolicy,
    crls: Crls,
}

impl Parts {
    fn duplicate(&self) -> Parts {
        Parts {
            provider: self.provider.clone(),
            roots: self.roots.clone(),
            identity: self
                .identity
                .as_ref()
                .map(|(chain, key)| (chain.clone(), key.clone_key())),
            min_version: self.min_version,
            require_client_cert: self.require_client_cert,
            eku: self.eku,
            crls: self.crls.clone(),
        }
    }
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsContext")
            .field("min_version", &self.parts.min_version)
            .field("trust_anchors", &self.parts.roots.len())
            .field("has_certificate", &self.parts.identity.is_some())
            .field("require_client_cert", &self.parts.require_client_cert)
            .field("eku", &self.parts.eku)
            .field("crls", &self.parts.crls.len())
            .field(
                "cipher_suites",
                &self
                    .parts
                    .provider
                    .cipher_suites
                    .iter()
                    .map(|s| s.suite())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TlsContext {
    /// Reads the PEM files named by `settings` and builds the context.
    ///
    /// The CA file is required; certificate and key must be given together (without them
    /// the entity can still act as a TLS client, presenting no certificate). The key log
    /// file named by `SSLKEYLOGFILE`, if set, receives the session secrets.
    pub fn new(settings: &TlsSettings) -> Result<Self, TlsError> {
        let ca_path = settings.ca_file.as_deref().ok_or(TlsError::MissingCa)?;
        let ca_pem = read_file("CA", ca_path)?;
        let (cert_pem, key_pem) = match (&settings.cert_file, &settings.key_file) {
            (Some(c), Some(k)) => (
                Some(read_file("certificate", c)?),
                Some(read_file("key", k)?),
            ),
            (None, None) => (None, None),
            _ => return Err(TlsError::CertKeyMismatch),
        };
        let ctx = Self::build(
            &ca_pem,
            cert_pem.as_deref(),
            key_pem.as_deref(),
            settings.min_version,
            settings.ciphers.as_deref(),
        )?
        .with_eku_policy(settings.eku)?;
        match &settings.crl_file {
            Some(path) => ctx.with_crls_pem(&read_file("CRL", path)?),
            None => Ok(ctx),
        }
    }

    /// Builds the context from in-memory PEM data (all cipher suites of the ring provider).
    pub fn from_pem(
        ca_pem: &[u8],
        cert_pem: Option<&[u8]>,
        key_pem: Option<&[u8]>,
        min_version: TlsVersion,
    ) -> Result<Self, TlsError> {
        Self::build(ca_pem, cert_pem, key_pem, min_version, None)
    }

    fn build(
        ca_pem: &[u8],
        cert_pem: Option<&[u8]>,
        key_pem: Option<&[u8]>,
        min_version: TlsVersion,
        ciphers: Option<&[String]>,
    ) -> Result<Self, TlsError> {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(names) = ciphers {
            provider.cipher_suites = select_suites(&provider.cipher_suites, names)?;
        }
        let usable = provider
            .cipher_suites
            .iter()
            .any(|s| min_version.versions().contains(&s.version()));
        if !usable {
            return Err(TlsError::NoUsableCiphers(min_version));
        }

        let mut roots = RootCertStore::empty();
        let mut count = 0usize;
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| TlsError::Pem {
                what: "CA",
                detail: e.to_string(),
            })?;
            roots
                .add(cert)
                .map_err(|e| TlsError::BadCa(e.to_string()))?;
            count += 1;
        }
        if count == 0 {
            return Err(TlsError::NoCertificates("CA"));
        }

        let identity = match (cert_pem, key_pem) {
            (Some(c), Some(k)) => {
                let chain = CertificateDer::pem_slice_iter(c)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| TlsError::Pem {
                        what: "certificate",
                        detail: e.to_string(),
                    })?;
                if chain.is_empty() {
                    return Err(TlsError::NoCertificates("certificate"));
                }
                let key = PrivateKeyDer::from_pem_slice(k).map_err(|e| TlsError::Pem {
                    what: "key",
                    detail: e.to_string(),
                })?;
                Some((chain, key))
            }
            (None, None) => None,
            _ => return Err(TlsError::CertKeyMismatch),
        };

        let parts = Parts {
            provider: Arc::new(provider),
            roots: Arc::new(roots),
            identity,
            min_version,
            require_client_cert: false,
            eku: EkuPolicy::default(),
            crls: Crls::default(),
        };
        Self::from_parts(parts)
    }

    fn from_parts(parts: Parts) -> Result<Self, TlsError> {
        let versions = parts.min_version.versions();
        let key_log: Arc<dyn rustls::KeyLog> = Arc::new(KeyLogFile::new());

        let server_verifier = Arc::new(
            TcpclServerVerifier::new(parts.roots.clone(), parts.provider.clone(), parts.eku)
                .with_crls(parts.crls.clone()),
        );
        let builder = ClientConfig::builder_with_provider(parts.provider.clone())
            .with_protocol_versions(versions)?
            .dangerous()
            .with_custom_certificate_verifier(server_verifier);
        let mut client = match &parts.identity {
            Some((chain, key)) => builder.with_client_auth_cert(chain.clone(), key.clone_key())?,
            None => builder.with_no_client_auth(),
        };
        client.key_log = key_log.clone();

        let server = match &parts.identity {
            Some((chain, key)) => {
                let client_verifier = Arc::new(
                    TcpclClientVerifier::new(
                        parts.roots.clone(),
                        parts.provider.clone(),
                        parts.eku,
                        parts.require_client_cert,
                    )
                    .with_crls(parts.crls.clone()),
                );
                let mut server = ServerConfig::builder_with_provider(parts.provider.clone())
                    .with_protocol_versions(versions)?
                    .with_client_cert_verifier(client_verifier)
                    .with_single_cert(chain.clone(), key.clone_key())?;
                server.key_log = key_log;
                Some(Arc::new(server))
            }
            None => None,
        };

        Ok(Self {
            client: Arc::new(client),
            server,
            parts: Arc::new(parts),
        })
    }

    /// Returns a context whose TLS server (passive entity) rejects clients that present no
    /// certificate (`true`), or accepts them with no peer identity (`false`, the default).
    ///
    /// Either way a client certificate is requested (RFC 9174 §4.4.3) and, when presented,
    /// must validate against the trust anchors.
    pub fn require_client_certificate(&self, required: bool) -> Result<Self, TlsError> {
        let mut parts = self.parts.duplicate();
        parts.require_client_cert = required;
        Self::from_parts(parts)
    }

    /// Returns a context whose verifiers apply `eku` to the peer's end-entity certificate
    /// (RFC 9174 §4.4.5: with [`EkuPolicy::RequireBundleSecurity`] a present EKU must contain
    /// `id-kp-bundleSecurity`).
    pub fn with_eku_policy(&self, eku: EkuPolicy) -> Result<Self, TlsError> {
        if eku == self.parts.eku {
            return Ok(self.clone());
        }
        let mut parts = self.parts.duplicate();
        parts.eku = eku;
        Self::from_parts(parts)
    }

    /// Returns a context whose verifiers also refuse certificates revoked by the CRLs in
    /// `pem` (`X509 CRL` blocks; replacing any CRLs set before). A certificate that no
    /// list covers still passes; an expired list fails validation.
    pub fn with_crls_pem(&self, pem: &[u8]) -> Result<Self, TlsError> {
        let mut crls = Vec::new();
        for der in CertificateRevocationListDer::pem_slice_iter(pem) {
            let der = der.map_err(|e| TlsError::Pem {
                what: "CRL",
                detail: e.to_string(),
            })?;
            let crl = webpki::OwnedCertRevocationList::from_der(der.as_ref())
                .map_err(|e| TlsError::BadCrl(format!("{e:?}")))?;
            crls.push(webpki::CertRevocationList::from(crl));
        }
        if crls.is_empty() {
            return Err(TlsError::BadCrl("no X509 CRL block in the PEM data".into()));
        }
        let mut parts = self.parts.duplicate();
        parts.crls = Arc::new(crls);
        Self::from_parts(parts)
    }

    /// How many CRLs the verifiers check.
    pub fn crl_count(&self) -> usize {
        self.parts.crls.len()
    }

    /// The EKU policy applied to peer certificates.
    pub fn eku_policy(&self) -> EkuPolicy {
        self.parts.eku
    }

    /// Starts a TLS client (active entity) connection. `server_name` is the DNS name that
    /// was resolved to reach the peer (sent as SNI) or an IP literal (no SNI). The name is
    /// not checked against the certificate here; use
    /// [`authenticate_host`](super::authenticate_host) after the handshake.
    pub fn client(&self, server_name: &str) -> Result<ClientConnection, TlsError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::InvalidServerName(server_name.to_owned()))?;
        Ok(ClientConnection::new(self.client.clone(), name)?)
    }

    /// Starts a TLS server (passive entity) connection. Fails with
    /// [`TlsError::NoServerCertificate`] if no certificate/key was configured, since the
    /// passive entity SHALL supply a certificate (RFC 9174 §4.4.3).
    pub fn server(&self) -> Result<ServerConnection, TlsError> {
        let config = self.server.clone().ok_or(TlsError::NoServerCertificate)?;
        Ok(ServerConnection::new(config)?)
    }

    /// The rustls client configuration (shared).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// The rustls server configuration, if a certificate/key was configured.
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.server.clone()
    }

    /// True if a certificate and key are configured (required to act as TLS server).
    pub fn has_certificate(&self) -> bool {
        self.parts.identity.is_some()
    }

    /// The configured minimum protocol version.
    pub fn min_version(&self) -> TlsVersion {
        self.parts.min_version
    }

    /// Whether the TLS server rejects clients without a certificate.
    pub fn requires_client_certificate(&self) -> bool {
        self.parts.require_client_cert
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        what,
        path: path.to_owned(),
        source,
    })
}

/// OpenSSL spellings of the TLS 1.2 suites the ring provider implements, mapped to IANA.
const OPENSSL_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE_ECDSA_AES128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE_ECDSA_AES256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE_ECDSA_CHACHA20_POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE_RSA_AES128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE_RSA_AES256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE_RSA_CHACHA20_POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// IANA name of a suite (rustls spells the TLS 1.3 ones `TLS13_*`).
fn iana_name(suite: &SupportedCipherSuite) -> Option<String> {
    let name = suite.suite().as_str()?;
    Some(match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_owned(),
    })
}

/// Applies the cipher filter, keeping the order of `names`.
fn select_suites(
    available: &[SupportedCipherSuite],
    names: &[String],
) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let mut out: Vec<SupportedCipherSuite> = Vec::new();
    for raw in names {
        let norm = raw.trim().to_ascii_uppercase().replace('-', "_");
        let norm = OPENSSL_NAMES
            .iter()
            .find(|(ossl, _)| *ossl == norm)
            .map_or(norm.clone(), |(_, iana)| (*iana).to_owned());
        let found = available.iter().find(|s| {
            s.suite().as_str() == Some(norm.as_str()) || iana_name(s).as_deref() == Some(&norm)
        });
        match found {
            Some(s) => {
                if !out.iter().any(|o| o.suite() == s.suite()) {
                    out.push(*s);
                }
            }
            None => return Err(TlsError::UnknownCipher(raw.clone())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parsing() {
        for s in ["1.2", "TLSv1.2", "tls1.2", "TLSv1_2"] {
            assert_eq!(s.parse::<TlsVersion>().unwrap(), TlsVersion::Tls12, "{s}");
        }
        for s in ["1.3", "TLSv1.3", " tlsv1.3 "] {
            assert_eq!(s.parse::<TlsVersion>().unwrap(), TlsVersion::Tls13, "{s}");
        }
        assert!("1.1".parse::<TlsVersion>().is_err());
        assert!("".parse::<TlsVersion>().is_err());
        assert_eq!(TlsVersion::default(), TlsVersion::Tls13);
    }

    #[test]
    fn cipher_names() {
        let all = rustls::crypto::ring::default_provider().cipher_suites;
        let names: Vec<String> = [
            "TLS_AES_256_GCM_SHA384",
            "tls13_chacha20_poly1305_sha256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_AES_256_GCM_SHA384",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let sel = select_suites(&all, &names).unwrap();
        let got: Vec<_> = sel.iter().map(|s| s.suite()).collect();
        use rustls::CipherSuite as C;
        assert_eq!(
            got,
            vec![
                C::TLS13_AES_256_GCM_SHA384,
                C::TLS13_CHACHA20_POLY1305_SHA256,
                C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ]
        );
        assert!(matches!(
            select_suites(&all, &["NOPE".to_string()]),
            Err(TlsError::UnknownCipher(n)) if n == "NOPE"
        ));
    }
}
