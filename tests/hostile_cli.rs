//! Hostile peers against the real `proto cotp listen --echo` binary: malformed input
//! gets the prescribed TPDU, and silent, stalled or abusive peers never keep the
//! listener from serving others.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_core::cotp::TpduSize;
use proto_net::cotp::{ConnectOptions, Connection};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READ: Duration = Duration::from_secs(3);

/// `proto cotp listen --echo` on an ephemeral port, killed on drop.
struct Listen {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen(extra: &[&str]) -> Listen {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proto"))
        .args(["cotp", "listen", "--bind", "127.0.0.1:0", "--echo"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening for COTP on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    Listen { child, addr }
}

impl Listen {
    /// A well-behaved client connects and echoes within `within`.
    fn assert_serves_within(&mut self, within: Duration) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the listener exited"
        );
        let start = Instant::now();
        let opts = ConnectOptions::default()
            .max_tpdu_size(TpduSize::S1024)
            .connect_timeout(within)
            .timeout(Some(within));
        let mut c = Connection::connect(self.addr, opts).expect("connect");
        let msg: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        c.send_data(&msg).expect("send");
        assert_eq!(c.recv_data().expect("echo"), msg);
        c.close().expect("close");
        assert!(
            start.elapsed() < within,
            "served only after {:?}",
            start.elapsed()
        );
    }
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, READ).unwrap();
    s.set_read_timeout(Some(READ)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn tpkt(tpdu: &[u8]) -> Vec<u8> {
    let mut f = vec![3, 0];
    f.extend_from_slice(&u16::try_from(tpdu.len() + 4).unwrap().to_be_bytes());
    f.extend_from_slice(tpdu);
    f
}

const CR: [u8; 22] = [
    3, 0, 0, 22, 0x11, 0xe0, 0, 0, 0, 2, 0, 0xc0, 1, 0x0a, 0xc1, 2, 1, 0, 0xc2, 2, 1, 2,
];

fn read_to_close(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "connection kept open; read {got:02x?}");
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn malformed_input_gets_the_prescribed_reply_and_the_listener_keeps_serving() {
    let mut l = listen(&[]);
    // (bytes sent, exact reply before the close)
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        // TPKT version 4: DR protocol error.
        (
            vec![4, 0, 0, 7, 2, 0xf0, 0x80],
            tpkt(&[6, 0x80, 0, 0, 0, 1, 133]),
        ),
        // TPKT length 6: DR protocol error.
        (
            vec![3, 0, 0, 6, 2, 0xf0, 0x80],
            tpkt(&[6, 0x80, 0, 0, 0, 1, 133]),
        ),
        // Unknown TPDU code: ER invalid TPDU type with the header.
        (
            tpkt(&[2, 0x90, 0]),
            tpkt(&[9, 0x70, 0, 0, 2, 0xc1, 3, 2, 0x90, 0]),
        ),
        // DT before CR: ER invalid TPDU type.
        (
            tpkt(&[2, 0xf0, 0x80, b'x']),
            tpkt(&[9, 0x70, 0, 0, 2, 0xc1, 3, 2, 0xf0, 0x80]),
        ),
        // CR preferring class 2 without alternatives: DR negotiation failed.
        (
            {
                let mut cr = CR.to_vec();
                cr[10] = 0x20;
                cr
            },
            tpkt(&[6, 0x80, 0, 2, 0, 0, 130]),
        ),
    ];
    for (bytes, reply) in cases {
        let mut s = raw(l.addr);
        s.write_all(&bytes).unwrap();
        assert_eq!(read_to_close(&mut s, READ), reply, "reply to {bytes:02x?}");
        l.assert_serves_within(READ);
    }
    // ED in the data phase: ER invalid TPDU type echoing its header.
    let mut s = raw(l.addr);
    s.write_all(&CR).unwrap();
    let mut cc = [0u8; 22];
    s.read_exact(&mut cc).unwrap();
    assert_eq!(cc[5], 0xd0);
    s.write_all(&tpkt(&[4, 0x10, 0, 1, 0x80, b'!'])).unwrap();
    assert_eq!(
        read_to_close(&mut s, READ),
        tpkt(&[11, 0x70, 0, 2, 2, 0xc1, 5, 4, 0x10, 0, 1, 0x80])
    );
    l.assert_serves_within(READ);
}

#[test]
fn a_silent_peer_does_not_block_other_clients() {
    let mut l = listen(&[]);
    let _silent = raw(l.addr);
    let mut half = raw(l.addr);
    half.write_all(&CR[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    l.assert_serves_within(Duration::from_secs(2));
}

#[test]
fn many_connections_at_once_then_dropped() {
    let mut l = listen(&[]);
    let mut conns = Vec::new();
    for _ in 0..100 {
        let mut s = raw(l.addr);
        s.write_all(&CR).unwrap();
        conns.push(s);
    }
    // All were answered (silent peers are the ignored case above).
    for s in &mut conns {
        let mut cc = [0u8; 22];
        s.read_exact(&mut cc).unwrap();
        assert_eq!(cc[5], 0xd0);
    }
    drop(conns);
    l.assert_serves_within(READ);
}
