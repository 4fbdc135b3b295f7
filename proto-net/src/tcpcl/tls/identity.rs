//! Peer identities carried by a TCPCL end-entity certificate and the RFC 9174 §4.4.4
//! authentication of those identities.
//!
//! RFC 9174 §4.4.1 defines three certificate identifier types:
//!
//! * **NODE-ID** — a subjectAltName `otherName` whose type-id is `id-on-bundleEID`
//!   (1.3.6.1.5.5.7.8.11) and whose value is `BundleEID ::= IA5String` holding a Node ID
//!   URI. Entries whose value is not a Node ID are ignored. Drafts up to -26 used a
//!   subjectAltName `uniformResourceIdentifier` instead; that legacy form is also read here
//!   when the URI is a `dtn` or `ipn` Node ID.
//! * **DNS-ID** — a subjectAltName `dNSName`.
//! * **IPADDR-ID** — a subjectAltName `iPAddress`.
//!
//! Each authentication yields an [`Authn`] result (RFC 9174 §4.4.4): `Absent` when the
//! certificate carries no claim of the type, `Success` when at least one claim matches the
//! reference identifier, `Failure` when claims are present and none matches. Applying
//! `require_host_authn` / `require_node_authn` policy to these results is the caller's job.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use super::TlsError;

/// DER content octets of the `id-on-bundleEID` OID, 1.3.6.1.5.5.7.8.11 (RFC 9174 §4.4.2.1).
pub(crate) const OID_ON_BUNDLE_EID: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x0B];

/// Identities claimed by a peer's end-entity certificate (its subjectAltName entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// NODE-ID claims: Node ID URIs from `otherName` `id-on-bundleEID` entries, then from
    /// legacy `uniformResourceIdentifier` entries, as written in the certificate.
    pub node_ids: Vec<String>,
    /// DNS-ID claims: `dNSName` entries, as written in the certificate.
    pub dns_names: Vec<String>,
    /// IPADDR-ID claims: `iPAddress` entries.
    pub ip_addrs: Vec<IpAddr>,
}

impl PeerIdentity {
    /// Extracts the identities from a DER-encoded X.509 certificate.
    ///
    /// Only the subjectAltName extension is consulted (RFC 9174 §4.4.2: identity
    /// information is contained entirely in that extension). A certificate without the
    /// extension yields an empty identity.
    pub fn from_der(cert_der: &[u8]) -> Result<Self, TlsError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der)
            .map_err(|e| TlsError::Certificate(format!("cannot parse certificate: {e}")))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| TlsError::Certificate(format!("bad subjectAltName extension: {e}")))?;
        let mut id = PeerIdentity::default();
        let Some(san) = san else {
            return Ok(id);
        };
        let mut legacy_uris = Vec::new();
        for name in &san.value.general_names {
            match name {
                GeneralName::OtherName(oid, value) => {
                    if oid.as_bytes() != OID_ON_BUNDLE_EID {
                        continue;
                    }
                    match decode_bundle_eid(value) {
                        Some(eid) if is_node_id(&eid) => id.node_ids.push(eid),
                        Some(eid) => {
                            log::debug!("ignoring id-on-bundleEID {eid:?}: not a Node ID");
                        }
                        None => log::debug!("ignoring malformed id-on-bundleEID value"),
                    }
                }
                GeneralName::URI(uri) if is_node_id(uri) => legacy_uris.push((*uri).to_owned()),
                GeneralName::DNSName(dns) => id.dns_names.push((*dns).to_owned()),
                GeneralName::IPAddress(octets) => {
                    if let Some(ip) = ip_from_octets(octets) {
                        id.ip_addrs.push(ip);
                    }
                }
                _ => {}
            }
        }
        id.node_ids.extend(legacy_uris);
        Ok(id)
    }

    /// The identities of the peer's end-entity certificate on an established (or
    /// handshaking, after the certificate was received) TLS connection.
    ///
    /// Returns `None` if the peer presented no certificate or it cannot be parsed.
    pub fn from_connection(conn: &rustls::CommonState) -> Option<Self> {
        let certs: &[CertificateDer<'static>] = conn.peer_certificates()?;
        let end_entity = certs.first()?;
        match Self::from_der(end_entity.as_ref()) {
            Ok(id) => Some(id),
            Err(e) => {
                log::warn!("peer certificate identity unreadable: {e}");
                None
            }
        }
    }

    /// True if the certificate carries no NODE-ID, DNS-ID or IPADDR-ID claim at all.
    pub fn is_empty(&self) -> bool {
        self.node_ids.is_empty() && self.dns_names.is_empty() && self.ip_addrs.is_empty()
    }
}

/// The result of authenticating one identity type against a certificate
/// (RFC 9174 §4.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authn {
    /// The certificate carries no claim of this type; the identity cannot be authenticated.
    Absent,
    /// At least one claim of this type matches the reference identity.
    Success,
    /// Claims of this type are present and none matches the reference identity.
    Failure,
}

impl Authn {
    /// True for [`Authn::Success`].
    pub fn is_success(self) -> bool {
        self == Authn::Success
    }

    /// Applies a `require_*_authn` policy (RFC 9174 §4.4.4.2, §4.4.4.3): `Failure` is always
    /// rejected, `Absent` is rejected only when authentication is required. Returns true when
    /// the session may proceed.
    pub fn acceptable(self, required: bool) -> bool {
        match self {
            Authn::Success => true,
            Authn::Absent => !required,
            Authn::Failure => false,
        }
    }
}

impl std::fmt::Display for Authn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Authn::Absent => "absent",
            Authn::Success => "success",
            Authn::Failure => "failure",
        })
    }
}

/// Network-level authentication (RFC 9174 §4.4.4.2): the DNS name the active entity resolved
/// (if any) as a DNS-ID reference identifier and the peer's IP address as an IPADDR-ID
/// reference identifier, validated together.
///
/// Only claim types for which a reference identifier is given are considered: `Absent` when
/// the certificate has none of those claims, `Success` when any of them matches, `Failure`
/// otherwise. DNS-ID matching follows RFC 6125 §6.4 (ASCII case-insensitive, trailing dot
/// ignored, a complete left-most `*` label matches exactly one label); IPADDR-ID matching
/// compares addresses, treating IPv4-mapped IPv6 addresses as IPv4.
pub fn authenticate_host(
    id: &PeerIdentity,
    expected_dns: Option<&str>,
    peer_ip: Option<IpAddr>,
) -> Authn {
    let mut present = false;
    if let Some(reference) = expected_dns {
        // A DNS reference identifier that is really an IP literal is matched as an IPADDR-ID.
        if let Ok(ip) = reference.parse::<IpAddr>() {
            if !id.ip_addrs.is_empty() {
                present = true;
                if id.ip_addrs.iter().any(|a| ip_eq(*a, ip)) {
                    return Authn::Success;
                }
            }
        } else if !id.dns_names.is_empty() {
            present = true;
            if id.dns_names.iter().any(|d| dns_id_matches(d, reference)) {
                return Authn::Success;
            }
        }
    }
    if let Some(ip) = peer_ip {
        if !id.ip_addrs.is_empty() {
            present = true;
            if id.ip_addrs.iter().any(|a| ip_eq(*a, ip)) {
                return Authn::Success;
            }
        }
    }
    if present {
        Authn::Failure
    } else {
        Authn::Absent
    }
}

/// Node ID authentication (RFC 9174 §4.4.4.3): the Node ID from the peer's SESS_INIT is the
/// NODE-ID reference identifier.
///
/// Comparison follows RFC 9174 §4.4.1: RFC 3986 URI comparison (case-insensitive scheme,
/// percent-encoding normalisation, case-insensitive `dtn` node-name authority) with the
/// scheme-based normalisation of RFC 9171 (`ipn` numbers compared numerically, so
/// `ipn:007.0` equals `ipn:7.0`). An empty reference (the peer withheld its Node ID) never
/// matches.
pub fn authenticate_node(id: &PeerIdentity, node_id: &str) -> Authn {
    if id.node_ids.is_empty() {
        return Authn::Absent;
    }
    if node_id.is_empty() {
        return Authn::Failure;
    }
    let reference = normalize_uri(node_id);
    if id.node_ids.iter().any(|n| normalize_uri(n) == reference) {
        Authn::Success
    } else {
        Authn::Failure
    }
}

/// Decodes the value of an `id-on-bundleEID` otherName: `[0] EXPLICIT BundleEID` where
/// `BundleEID ::= IA5String`. `value` starts at the `[0]` tag.
fn decode_bundle_eid(value: &[u8]) -> Option<String> {
    let (tag, inner, _) = read_tlv(value)?;
    if tag != 0xA0 {
        return None;
    }
    let (tag, text, rest) = read_tlv(inner)?;
    // IA5String (tag 22) per RFC 9174 Appendix B; anything else is not a BundleEID.
    if tag != 0x16 || !rest.is_empty() || !text.is_ascii() {
        return None;
    }
    String::from_utf8(text.to_vec()).ok()
}

/// Reads one DER tag-length-value with a single-octet tag. Returns (tag, content, rest).
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > std::mem::size_of::<usize>() || rest.len() < n {
            return None;
        }
        let (bytes, tail) = rest.split_at(n);
        rest = tail;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (content, tail) = rest.split_at(len);
    Some((tag, content, tail))
}

fn ip_from_octets(octets: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(octets) {
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        None
    }
}

fn ip_eq(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// RFC 6125 §6.4 DNS-ID matching of a presented identifier against a reference identifier.
fn dns_id_matches(presented: &str, reference: &str) -> bool {
    let presented = presented.strip_suffix('.').unwrap_or(presented);
    let reference = reference.strip_suffix('.').unwrap_or(reference);
    if presented.is_empty() || reference.is_empty() {
        return false;
    }
    if let Some(suffix) = presented.strip_prefix("*.") {
        // Wildcard only as the complete left-most label, and not directly under a TLD.
        if !suffix.contains('.') || suffix.contains('*') {
            return false;
        }
        return match reference.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
            None => false,
        };
    }
    !presented.contains('*') && presented.eq_ignore_ascii_case(reference)
}

/// True if `uri` is a `dtn` or `ipn` Node ID (RFC 9171 §4.2.5): `ipn:N.S` / `ipn:A.N.S`
/// with decimal components, or `dtn://node-name/...` with a non-empty node-name
/// (`dtn:none` is not a Node ID).
pub(crate) fn is_node_id(uri: &str) -> bool {
    let Some((scheme, ssp)) = uri.split_once(':') else {
        return false;
    };
    if scheme.eq_ignore_ascii_case("ipn") {
        parse_ipn(ssp).is_some()
    } else if scheme.eq_ignore_ascii_case("dtn") {
        match ssp.strip_prefix("//") {
            Some(rest) => {
                let node = rest.split('/').next().unwrap_or("");
                !node.is_empty() && rest.contains('/')
            }
            None => false,
        }
    } else {
        false
    }
}

fn parse_ipn(ssp: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = ssp
        .split('.')
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse::<u64>().ok()
            }
        })
        .collect();
    parts.filter(|v| v.len() == 2 || v.len() == 3)
}

/// Normalises a URI for comparison: RFC 3986 §6.2.2 syntax-based normalisation (scheme and
/// authority host lower-cased, percent-encodings upper-cased and decoded when they encode an
/// unreserved character) plus RFC 9171 scheme-based normalisation of `ipn` numbers.
pub(crate) fn normalize_uri(uri: &str) -> String {
    let Some((scheme, ssp)) = uri.split_once(':') else {
        return normalize_percent(uri);
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "ipn" {
        if let Some(parts) = parse_ipn(ssp) {
            let nums: Vec<String> = parts.iter().map(u64::to_string).collect();
            return format!("ipn:{}", nums.join("."));
        }
    }
    let ssp = normalize_percent(ssp);
    if let Some(rest) = ssp.strip_prefix("//") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        // Lower-case the host part only; userinfo (before '@') is case-sensitive.
        let authority = match authority.rsplit_once('@') {
            Some((user, host)) => format!("{user}@{}", host.to_ascii_lowercase()),
            None => authority.to_ascii_lowercase(),
        };
        return format!("{scheme}://{authority}{tail}");
    }
    format!("{scheme}:{ssp}")
}

fn normalize_percent(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let v = (h * 16 + l) as u8;
                if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push(bytes[i + 1].to_ascii_uppercase() as char);
                    out.push(bytes[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        // Non-'%' bytes are copied through unchanged (multi-byte UTF-8 included).
        let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(nodes: &[&str], dns: &[&str], ips: &[&str]) -> PeerIdentity {
        PeerIdentity {
            node_ids: nodes.iter().map(|s| s.to_string()).collect(),
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ip_addrs: ips.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn node_authn_truth_table() {
        let none = ident(&[], &["host.example"], &[]);
        assert_eq!(authenticate_node(&none, "ipn:1.0"), Authn::Absent);
        assert_eq!(authenticate_node(&none, ""), Authn::Absent);

        let one = ident(&["ipn:1.0"], &[], &[]);
        assert_eq!(authenticate_node(&one, "ipn:1.0"), Authn::Success);
        assert_eq!(authenticate_node(&one, "IPN:01.00"), Authn::Success);
        assert_eq!(authenticate_node(&one, "ipn:2.0"), Authn::Failure);
        assert_eq!(authenticate_node(&one, ""), Authn::Failure);

        let dtn = ident(&["dtn://Node-A/", "ipn:5.0"], &[], &[]);
        assert_eq!(authenticate_node(&dtn, "dtn://node-a/"), Authn::Success);
        assert_eq!(authenticate_node(&dtn, "DTN://node-a/"), Authn::Success);
        assert_eq!(authenticate_node(&dtn, "dtn://node%2Da/"), Authn::Success);
        assert_eq!(authenticate_node(&dtn, "dtn://node-b/"), Authn::Failure);
        assert_eq!(authenticate_node(&dtn, "ipn:5.0"), Authn::Success);
        // Path (demux) stays case-sensitive.
        let svc = ident(&["dtn://a/Svc"], &[], &[]);
        assert_eq!(authenticate_node(&svc, "dtn://a/svc"), Authn::Failure);
    }

    #[test]
    fn host_authn_truth_table() {
        let ip4: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let empty = ident(&["ipn:1.0"], &[], &[]);
        assert_eq!(
            authenticate_host(&empty, Some("a.example"), Some(ip4)),
            Authn::Absent
        );
        assert_eq!(authenticate_host(&empty, None, None), Authn::Absent);

        let dns = ident(&[], &["a.example"], &[]);
        assert_eq!(
            authenticate_host(&dns, Some("A.Example."), Some(ip4)),
            Authn::Success
        );
        assert_eq!(
            authenticate_host(&dns, Some("b.example"), Some(ip4)),
            Authn::Failure
        );
        // Passive side has no DNS reference: DNS-IDs are not considered.
        assert_eq!(authenticate_host(&dns, None, Some(ip4)), Authn::Absent);

        let ip = ident(&[], &[], &["192.0.2.1"]);
        assert_eq!(authenticate_host(&ip, None, Some(ip4)), Authn::Success);
        assert_eq!(authenticate_host(&ip, None, Some(other)), Authn::Failure);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(authenticate_host(&ip, None, Some(mapped)), Authn::Success);
        assert_eq!(
            authenticate_host(&ip, Some("192.0.2.1"), None),
            Authn::Success
        );

        let both = ident(&[], &["a.example"], &["192.0.2.1"]);
        // Any match of either reference identifier is a success.
        assert_eq!(
            authenticate_host(&both, Some("x.example"), Some(ip4)),
            Authn::Success
        );
        assert_eq!(
            authenticate_host(&both, Some("a.example"), Some(other)),
            Authn::Success
        );
        assert_eq!(
            authenticate_host(&both, Some("x.example"), Some(other)),
            Authn::Failure
        );

        let v6 = ident(&[], &[], &["2001:db8::1"]);
        assert_eq!(
            authenticate_host(&v6, None, Some("2001:DB8:0::1".parse().unwrap())),
            Authn::Success
        );
    }

    #[test]
    fn dns_wildcards() {
        assert!(dns_id_matches("*.example.com", "a.example.com"));
        assert!(!dns_id_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_id_matches("*.example.com", "example.com"));
        assert!(!dns_id_matches("*.com", "example.com"));
        assert!(!dns_id_matches("a*.example.com", "ab.example.com"));
        assert!(!dns_id_matches("", ""));
    }

    #[test]
    fn policy() {
        assert!(Authn::Success.acceptable(true));
        assert!(Authn::Absent.acceptable(false));
        assert!(!Authn::Absent.acceptable(true));
        assert!(!Authn::Failure.acceptable(false));
    }

    #[test]
    fn node_id_syntax() {
        assert!(is_node_id("ipn:1.0"));
        assert!(is_node_id("ipn:0.1.0"));
        assert!(is_node_id("dtn://node/"));
        assert!(!is_node_id("dtn:none"));
        assert!(!is_node_id("dtn://"));
        assert!(!is_node_id("dtn://node"));
        assert!(!is_node_id("https://example.com/"));
        assert!(!is_node_id("ipn:1"));
        assert!(!is_node_id("ipn:a.b"));
        assert!(!is_node_id("ipn:+1.0"));
    }

    #[test]
    fn bundle_eid_decoding() {
        let good = [
            0xA0, 0x09, 0x16, 0x07, b'i', b'p', b'n', b':', b'1', b'.', b'0',
        ];
        assert_eq!(decode_bundle_eid(&good).as_deref(), Some("ipn:1.0"));
        // UTF8String is not a BundleEID.
        let utf8 = [
            0xA0, 0x09, 0x0C, 0x07, b'i', b'p', b'n', b':', b'1', b'.', b'0',
        ];
        assert_eq!(decode_bundle_eid(&utf8), None);
        // Missing [0] wrapper, truncated lengths.
        assert_eq!(decode_bundle_eid(&good[2..]), None);
        assert_eq!(decode_bundle_eid(&good[..5]), None);
        assert_eq!(
            decode_bundle_eid(&[0xA0, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]),
            None
        );
        assert_eq!(decode_bundle_eid(&[]), None);
    }

    #[test]
    fn percent_normalisation() {
        assert_eq!(normalize_percent("a%2fb%7e%41"), "a%2Fb~A");
        assert_eq!(normalize_percent("%"), "%");
        assert_eq!(normalize_percent("%4"), "%4");
        assert_eq!(normalize_percent("x%zz"), "x%zz");
        assert_eq!(normalize_percent("é%41"), "éA");
    }
}
