//! On-the-fly test PKI for TCPCL (feature `certgen`): a CA and end-entity certificates
//! carrying RFC 9174 §4.4.1 identities.
//!
//! The subjectAltName extension is encoded here rather than by rcgen, because rcgen can only
//! put a `UTF8String` in an `otherName` while RFC 9174 Appendix B defines
//! `BundleEID ::= IA5String`:
//!
//! ```text
//! GeneralName ::= [0] IMPLICIT SEQUENCE { type-id OBJECT IDENTIFIER (id-on-bundleEID),
//!                                         value [0] EXPLICIT IA5String }
//! ```

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use super::identity::OID_ON_BUNDLE_EID;
use super::TlsError;

/// OID arcs of the subjectAltName extension, 2.5.29.17.
const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
/// OID arcs of `id-kp-bundleSecurity`, 1.3.6.1.5.5.7.3.35.
const OID_KP_BUNDLE_SECURITY: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 35];

/// What an end-entity certificate should claim and when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Node IDs encoded as `otherName` `id-on-bundleEID` (the RFC 9174 NODE-ID form).
    pub node_ids_othername: Vec<String>,
    /// Node IDs encoded as `uniformResourceIdentifier` (the legacy draft form).
    pub node_ids_uri: Vec<String>,
    /// `dNSName` entries (DNS-ID).
    pub dns_names: Vec<String>,
    /// `iPAddress` entries (IPADDR-ID).
    pub ip_addrs: Vec<IpAddr>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// An empty subject (no CN), with the subjectAltName marked critical as RFC 5280
    /// §4.2.1.6 asks; otherwise the subject is CN `TCPCL entity`.
    pub empty_subject: bool,
    /// Subject and Authority Key Identifier extensions (RFC 9174 §4.4.2 SHOULD); `false`
    /// issues a certificate without either.
    pub key_identifiers: bool,
    /// The serial number (for [`CertFactory::crl_pem`]); `None`: a random one.
    pub serial: Option<u64>,
}

impl Default for LeafSpec {
    /// No identities; valid from one hour ago for 30 days; CN `TCPCL entity`; SKI and AKI.
    fn default() -> Self {
        let now = SystemTime::now();
        Self {
            node_ids_othername: Vec::new(),
            node_ids_uri: Vec::new(),
            dns_names: Vec::new(),
            ip_addrs: Vec::new(),
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(30 * 86_400),
            empty_subject: false,
            key_identifiers: true,
            serial: None,
        }
    }
}

impl LeafSpec {
    /// A currently valid certificate with `node_id` as an `id-on-bundleEID` otherName.
    pub fn node(node_id: &str) -> Self {
        Self {
            node_ids_othername: vec![node_id.to_owned()],
            ..Self::default()
        }
    }

    /// The same claims, but valid from two days ago until yesterday.
    pub fn expired(self) -> Self {
        let now = SystemTime::now();
        Self {
            not_before: now - Duration::from_secs(2 * 86_400),
            not_after: now - Duration::from_secs(86_400),
            ..self
        }
    }
}

/// Extended Key Usage profile of an issued end-entity certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EkuProfile {
    /// `id-kp-bundleSecurity`, `id-kp-serverAuth` and `id-kp-clientAuth`: the RFC 9174
    /// §4.4.2 profile (bundleSecurity SHOULD, the TLS purposes MAY), which passes both EKU
    /// policies and peers that only know the TLS purposes.
    #[default]
    BundleSecurityAndTls,
    /// `id-kp-serverAuth` and `id-kp-clientAuth` only (refused under
    /// `tls_require_bundle_eku`).
    TlsClientServer,
    /// Only `id-kp-bundleSecurity`.
    BundleSecurityOnly,
    /// Only `id-kp-emailProtection`: no purpose TCPCL accepts.
    EmailProtectionOnly,
    /// No Extended Key Usage extension.
    None,
}

/// A certificate authority that issues TCPCL end-entity certificates.
pub struct CertFactory {
    /// The certificate that signs what this factory issues (the root, or an intermediate).
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    /// The trust anchor: the root CA's certificate.
    ca_pem: String,
    /// Intermediate CA certificates from the issuer up to (not including) the root.
    chain_pem: String,
}

impl std::fmt::Debug for CertFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertFactory").finish_non_exhaustive()
    }
}

impl CertFactory {
    /// Creates a self-signed ECDSA P-256 root CA named `common_name`, valid for a year.
    /// Two factories are unrelated CAs: certificates from one fail validation against the
    /// other's [`ca_pem`](Self::ca_pem).
    pub fn new_ca(common_name: &str) -> Result<Self, TlsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(86_400)).into();
        params.not_after = (now + Duration::from_secs(365 * 86_400)).into();
        let ca_key = KeyPair::generate().map_err(gen_err)?;
        let ca_cert = params.self_signed(&ca_key).map_err(gen_err)?;
        let ca_pem = ca_cert.pem();
        Ok(Self {
            ca_cert,
            ca_key,
            ca_pem,
            chain_pem: String::new(),
        })
    }

    /// An intermediate CA named `common_name`, issued by this factory's CA, without an
    /// Authority Key Identifier (paths are built by name and signature, not by key IDs).
    /// Its certificates chain to the same root: [`ca_pem`](Self::ca_pem) stays the root's,
    /// and [`chain_pem`](Self::chain_pem) holds the intermediates a peer must send.
    pub fn new_intermediate(&self, common_name: &str) -> Result<Self, TlsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(86_400)).into();
        params.not_after = (now + Duration::from_secs(180 * 86_400)).into();
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .map_err(gen_err)?;
        let chain_pem = format!("{}{}", cert.pem(), self.chain_pem);
        Ok(Self {
            ca_cert: cert,
            ca_key: key,
            ca_pem: self.ca_pem.clone(),
            chain_pem,
        })
    }

    /// The root CA certificate in PEM form (use as `tls_ca_file` content).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The intermediate CA certificates (PEM, issuer first) to append to an issued
    /// certificate in `tls_cert_file`; empty for a root factory.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// Issues an end-entity certificate with the default EKU profile; returns
    /// `(certificate PEM, PKCS#8 private key PEM)`.
    pub fn issue(&self, spec: &LeafSpec) -> Result<(String, String), TlsError> {
        self.issue_with(spec, EkuProfile::default())
    }

    /// Issues an end-entity certificate with the given EKU profile; returns
    /// `(certificate PEM, PKCS#8 private key PEM)`.
    pub fn issue_with(
        &self,
        spec: &LeafSpec,
        eku: EkuProfile,
    ) -> Result<(String, String), TlsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if !spec.empty_subject {
            dn.push(DnType::CommonName, "TCPCL entity");
        }
        params.distinguished_name = dn;
        // rcgen writes a Subject Key Identifier with `ExplicitNoCa` and none with `NoCa`.
        params.is_ca = if spec.key_identifiers {
            IsCa::ExplicitNoCa
        } else {
            IsCa::NoCa
        };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let bundle = || ExtendedKeyUsagePurpose::Other(OID_KP_BUNDLE_SECURITY.to_vec());
        params.extended_key_usages = match eku {
            EkuProfile::BundleSecurityAndTls => vec![
                bundle(),
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            EkuProfile::EmailProtectionOnly => vec![ExtendedKeyUsagePurpose::EmailProtection],
            EkuProfile::TlsClientServer => {
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ]
            }
            EkuProfile::BundleSecurityOnly => vec![bundle()],
            EkuProfile::None => Vec::new(),
        };
        params.use_authority_key_identifier_extension = spec.key_identifiers;
        params.serial_number = spec.serial.map(rcgen::SerialNumber::from);
        params.not_before = spec.not_before.into();
        params.not_after = spec.not_after.into();
        let san = encode_subject_alt_name(spec)?;
        if !san.is_empty() {
            let mut ext = CustomExtension::from_oid_content(OID_SUBJECT_ALT_NAME, san);
            ext.set_criticality(spec.empty_subject);
            params.custom_extensions.push(ext);
        }
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .map_err(gen_err)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

impl CertFactory {
    /// A certificate revocation list from this factory's issuing CA (PEM, for
    /// `tls_crl_file`) revoking the certificates with these serial numbers, valid from an
    /// hour ago for `valid_for`.
    pub fn crl_pem(&self, revoked: &[u64], valid_for: Duration) -> Result<String, TlsError> {
        let now = SystemTime::now();
        self.crl_pem_between(revoked, now - Duration::from_secs(3600), now + valid_for)
    }

    /// Like [`crl_pem`](Self::crl_pem) with explicit thisUpdate / nextUpdate times (a
    /// `next_update` in the past makes an expired list).
    pub fn crl_pem_between(
        &self,
        revoked: &[u64],
        this_update: SystemTime,
        next_update: SystemTime,
    ) -> Result<String, TlsError> {
        let params = rcgen::CertificateRevocationListParams {
            this_update: this_update.into(),
            next_update: next_update.into(),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|&serial| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(serial),
                    revocation_time: this_update.into(),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.ca_cert, &self.ca_key)
            .map_err(gen_err)?;
        crl.pem().map_err(gen_err)
    }
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::CertGen(e.to_string())
}

/// DER of `GeneralNames` for the spec, or empty if it claims nothing.
fn encode_subject_alt_name(spec: &LeafSpec) -> Result<Vec<u8>, TlsError> {
    let mut names = Vec::new();
    for eid in &spec.node_ids_othername {
        let text = ia5(eid)?;
        let mut other = der(0x06, OID_ON_BUNDLE_EID);
        other.extend(der(0xA0, &der(0x16, text)));
        names.extend(der(0xA0, &other)); // [0] otherName (constructed)
    }
    for uri in &spec.node_ids_uri {
        names.extend(der(0x86, ia5(uri)?)); // [6] uniformResourceIdentifier
    }
    for dns in &spec.dns_names {
        names.extend(der(0x82, ia5(dns)?)); // [2] dNSName
    }
    for ip in &spec.ip_addrs {
        let octets = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        names.extend(der(0x87, &octets)); // [7] iPAddress
    }
    if names.is_empty() {
        return Ok(names);
    }
    Ok(der(0x30, &names))
}

fn ia5(s: &str) -> Result<&[u8], TlsError> {
    if s.is_ascii() {
        Ok(s.as_bytes())
    } else {
        Err(TlsError::CertGen(format!("{s:?} is not an IA5String")))
    }
}

/// One DER TLV with definite length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let sig = &bytes[skip..];
        out.push(0x80 | sig.len() as u8);
        out.extend_from_slice(sig);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = der(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn othername_encoding_matches_rfc_example() {
        // RFC 9174 Appendix C shows [0] EXPLICIT IA5String "ipn:1.0" as A0 09 16 07 ...
        let spec = LeafSpec {
            node_ids_othername: vec!["ipn:1.0".into()],
            ..LeafSpec::default()
        };
        let san = encode_subject_alt_name(&spec).unwrap();
        let mut expect = vec![0x30, 0x17, 0xA0, 0x15, 0x06, 0x08];
        expect.extend_from_slice(OID_ON_BUNDLE_EID);
        expect.extend_from_slice(&[0xA0, 0x09, 0x16, 0x07]);
        expect.extend_from_slice(b"ipn:1.0");
        assert_eq!(san, expect);
        assert!(encode_subject_alt_name(&LeafSpec::default())
            .unwrap()
            .is_empty());
        let bad = LeafSpec {
            dns_names: vec!["é.example".into()],
            ..LeafSpec::default()
        };
        assert!(encode_subject_alt_name(&bad).is_err());
    }
}
