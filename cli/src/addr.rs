//! Addresses on the command line: `HOST[:PORT]`, the port defaulting to the
//! protocol's own (102 for COTP/TPKT, 4556 for TCPCL).

use std::net::SocketAddr;

/// What `--bind` defaults to: every IPv4 interface (the protocol's port is then
/// added by [`with_default_port`]).
pub(crate) const ALL_INTERFACES: &str = "0.0.0.0";

/// `addr` with `port` added when it names none. Accepts `IP:PORT`, `[V6]:PORT`, a
/// bare IPv4 or IPv6 address (with or without brackets), `HOST` and `HOST:PORT`.
pub(crate) fn with_default_port(addr: &str, port: u16) -> String {
    if addr.parse::<SocketAddr>().is_ok() {
        return addr.to_string();
    }
    if let Ok(ip) = addr.trim_start_matches('[').trim_end_matches(']').parse() {
        return SocketAddr::new(ip, port).to_string();
    }
    if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_port_gets_the_default() {
        assert_eq!(with_default_port("127.0.0.1", 102), "127.0.0.1:102");
        assert_eq!(with_default_port("127.0.0.1:1102", 102), "127.0.0.1:1102");
        assert_eq!(with_default_port("::1", 102), "[::1]:102");
        assert_eq!(with_default_port("[::1]", 102), "[::1]:102");
        assert_eq!(with_default_port("[::1]:7", 102), "[::1]:7");
        assert_eq!(with_default_port("plc.example", 102), "plc.example:102");
        assert_eq!(
            with_default_port("plc.example:1102", 102),
            "plc.example:1102"
        );
        assert_eq!(with_default_port("0.0.0.0", 4556), "0.0.0.0:4556");
    }
}
