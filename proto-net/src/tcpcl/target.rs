//! What [`Agent::connect`](super::Agent::connect) accepts as the peer's address, and the
//! DNS name such an address carries.
//!
//! RFC 9174 §4.4.3: when the active entity resolved a DNS name to reach the peer, the
//! ClientHello SHOULD carry it as SNI, and §4.4.4.2 makes it the DNS-ID reference
//! identifier. `std`'s `ToSocketAddrs` forgets the name once resolved, so `connect`
//! takes a [`ConnectTarget`], which also says which name (if any) was given. An IP
//! literal is never a DNS name (no SNI for it, RFC 6066 §3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};

use rustls::pki_types::DnsName;

/// A peer address for [`Agent::connect`](super::Agent::connect): anything `std` resolves
/// (`"host:port"`, `("host", port)`, a `SocketAddr`, ...), plus the DNS host name it names.
pub trait ConnectTarget: ToSocketAddrs {
    /// The DNS name this target resolves, if it names one; `None` for IP addresses and
    /// IP literals.
    fn host_name(&self) -> Option<String> {
        None
    }
}

/// `host` as a DNS name: not an IP literal and a syntactically valid name.
fn dns_name(host: &str) -> Option<String> {
    let host = host.trim();
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    DnsName::try_from(host).ok().map(|_| host.to_owned())
}

impl ConnectTarget for str {
    /// The host of `"host:port"` (IPv6 literals are bracketed and so never a name).
    fn host_name(&self) -> Option<String> {
        let (host, _port) = self.rsplit_once(':')?;
        if host.starts_with('[') {
            return None;
        }
        dns_name(host)
    }
}

impl ConnectTarget for String {
    fn host_name(&self) -> Option<String> {
        self.as_str().host_name()
    }
}

impl ConnectTarget for (&str, u16) {
    fn host_name(&self) -> Option<String> {
        dns_name(self.0)
    }
}

impl ConnectTarget for (String, u16) {
    fn host_name(&self) -> Option<String> {
        dns_name(&self.0)
    }
}

impl ConnectTarget for SocketAddr {}
impl ConnectTarget for SocketAddrV4 {}
impl ConnectTarget for SocketAddrV6 {}
impl ConnectTarget for (IpAddr, u16) {}
impl ConnectTarget for (Ipv4Addr, u16) {}
impl ConnectTarget for (Ipv6Addr, u16) {}
impl ConnectTarget for &[SocketAddr] {}

impl<T: ConnectTarget + ?Sized> ConnectTarget for &T {
    fn host_name(&self) -> Option<String> {
        (**self).host_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_but_never_ip_literals() {
        let table = [
            ("localhost:4556".host_name(), Some("localhost")),
            ("node.example.:4556".host_name(), Some("node.example.")),
            (String::from("a.example:1").host_name(), Some("a.example")),
            (("b.example", 1).host_name(), Some("b.example")),
            (
                (String::from("c.example"), 1).host_name(),
                Some("c.example"),
            ),
            ("127.0.0.1:4556".host_name(), None),
            ("[::1]:4556".host_name(), None),
            (("::1", 4556).host_name(), None),
            ("no-port".host_name(), None),
            ("bad_name!:1".host_name(), None),
        ];
        for (i, (got, want)) in table.iter().enumerate() {
            assert_eq!(got.as_deref(), *want, "case {i}");
        }
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(a.host_name(), None);
        let by_ref: &SocketAddr = &a;
        assert_eq!(ConnectTarget::host_name(&by_ref), None);
        assert_eq!(
            ("127.0.0.1".parse::<IpAddr>().unwrap(), 1).host_name(),
            None
        );
    }

    /// The server name of the ClientHello an agent sends when it connects to `target`
    /// (a raw peer that answers the contact header with CAN_TLS, then reads the hello).
    fn sni_of(target: impl Fn(u16) -> String) -> Option<String> {
        use crate::tcpcl::tls::certgen::CertFactory;
        use crate::tcpcl::tls::{TlsContext, TlsVersion};
        use crate::tcpcl::{Agent, Config};
        use std::io::{Read, Write};
        use std::time::Duration;

        let ca = CertFactory::new_ca("SNI test CA").unwrap();
        let ctx =
            TlsContext::from_pem(ca.ca_pem().as_bytes(), None, None, TlsVersion::Tls13).unwrap();
        let mut config = Config::with_node_id("dtn://sni/");
        config.contact_timeout = 5.0;
        let agent = Agent::with_tls(config, Some(ctx)).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _session = agent.connect(target(port).as_str()).unwrap();
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut contact = [0u8; 6];
        sock.read_exact(&mut contact).unwrap();
        assert_eq!(&contact, b"dtn!\x04\x01", "contact header with CAN_TLS");
        sock.write_all(b"dtn!\x04\x01").unwrap();
        let mut acceptor = rustls::server::Acceptor::default();
        loop {
            acceptor.read_tls(&mut sock).unwrap();
            if let Some(accepted) = acceptor.accept().map_err(|(e, _)| e).unwrap() {
                return accepted.client_hello().server_name().map(str::to_owned);
            }
        }
    }

    #[test]
    fn connect_sends_the_dns_name_as_sni_and_no_sni_for_an_ip() {
        assert_eq!(
            sni_of(|port| format!("localhost:{port}")).as_deref(),
            Some("localhost")
        );
        assert_eq!(sni_of(|port| format!("127.0.0.1:{port}")), None);
    }
}
