//! TCPCLv3 (RFC 7242) against pyd3tn, the µD3TN project's Python protocol library
//! (see docs/interop.md): its `TCPCLConnection` client sends BPv7 bundles it builds
//! itself (`serialize_bundle7`) to proto's dual-version listener, and proto's v3 client
//! sends to its `TCPCLServer`, which logs every message it reads.
//!
//! Every case is `#[ignore = "needs pyd3tn"]`; CI runs them with `--include-ignored`
//! and `PROTO_REQUIRE_PEERS=1`, so a missing peer fails there instead of passing.

use std::time::Duration;

use proto_net::tcpcl::{Agent, CloseReason, Config, Event, ReceivedBundle, SessTermReason};
use proto_tests::peers::{peer_python, Bounded, Stream};
use proto_tests::tcpcl::{config, wait_event, T};
use sha2::{Digest, Sha256};

const PEER_LIMIT: Duration = Duration::from_secs(60);

/// pyd3tn's client: contact header (flags 0, keepalive 0), one single-segment
/// DATA_SEGMENT per bundle, then a bare SHUTDOWN and close. Prints the peer header it
/// read and each bundle's length and SHA-256.
const PYD3TN_SEND: &str = r#"
import hashlib, json, sys
from pyd3tn.tcpcl import TCPCLConnection
from pyd3tn.bundle7 import serialize_bundle7
host, port, sizes = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
sent = []
conn = TCPCLConnection("dtn://py/", host, port, timeout=30)
header = conn.connect()
for i, n in enumerate(sizes):
    payload = bytes((j * 7 + i) % 256 for j in range(n))
    b = serialize_bundle7("dtn://py/", "dtn://rx/", payload)
    conn.send_bundle(b)
    sent.append({"len": len(b), "sha256": hashlib.sha256(b).hexdigest()})
conn.disconnect()
print(json.dumps({"header": header, "sent": sent}))
"#;

#[test]
#[ignore = "needs pyd3tn"]
fn pyd3tn_client_sends_bpv7_bundles_to_our_listener() {
    let Some(py) = peer_python("pyd3tn") else {
        return;
    };
    let rx = Agent::new(config("dtn://rx/")).unwrap();
    let events = rx.events();
    let addr = rx.listen("127.0.0.1:0").unwrap();
    // Up to a few MiB, and an empty payload.
    let sizes = [0usize, 1000, 100_000, 3 << 20];
    let list = sizes.map(|n| n.to_string()).join(",");
    let out = py
        .run_json(
            PYD3TN_SEND,
            &["127.0.0.1", &addr.port().to_string(), &list],
            PEER_LIMIT,
        )
        .unwrap();
    eprintln!("[pyd3tn→listener] {}", out["header"]);
    // pyd3tn read our whole v3 contact header in its one recv.
    assert_eq!(out["header"]["version"], 3);
    assert_eq!(out["header"]["eid"], "dtn://rx/");
    assert_eq!(out["header"]["flags"], 0x0d);
    let sent = out["sent"].as_array().cloned().unwrap_or_default();
    assert_eq!(sent.len(), sizes.len());
    // Everything the listener reported, up to the session's close.
    let (mut got, mut params, mut closed) = (Vec::new(), None, None);
    while closed.is_none() {
        match events.recv_timeout(T).expect("events until the close") {
            Event::BundleReceived {
                bundle: ReceivedBundle::Bytes(b),
                ..
            } => got.push(b),
            Event::SessionEstablished { params: p, .. } => params = Some(p),
            Event::SessionClosed { reason, .. } => closed = Some(reason),
            _ => {}
        }
    }
    assert_eq!(got.len(), sent.len());
    for (b, want) in got.iter().zip(&sent) {
        assert_eq!(serde_json::json!(b.len()), want["len"]);
        let hex: String = Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        assert_eq!(serde_json::json!(hex), want["sha256"]);
    }
    let p = params.expect("established");
    assert_eq!((p.version, p.peer_node_id.as_str()), (3, "dtn://py/"));
    let n = p.v3.expect("v3 parameters");
    assert!(!n.acks && !n.refusal && !n.send_length, "{n:?}");
    // Its SHUTDOWN and close end the session cleanly.
    let r = closed.expect("closed");
    assert!(r.is_graceful(), "{r:?}");
}

/// pyd3tn's server: sends its contact header, reads ours, then logs the hex of
/// every read at INFO on stderr. It takes our contact header from one `read(1024)` and
/// refuses anything longer, so a DATA_SEGMENT that arrives before that read (a loaded
/// machine) would be read with the header: the script says `contact header read` once
/// pyd3tn has decoded ours, and the test sends only after that line.
const PYD3TN_SERVE: &str = r#"
import asyncio, logging, sys
import pyd3tn.tcpcl as tcpcl
from pyd3tn.tcpcl import TCPCLServer
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(message)s")
_decode = tcpcl.decode_tcpcl_contact_header
def _announced(raw):
    header = _decode(raw)
    print("contact header read", file=sys.stderr, flush=True)
    return header
tcpcl.decode_tcpcl_contact_header = _announced
async def main():
    async with TCPCLServer("dtn://pysrv/", "127.0.0.1", int(sys.argv[1])) as s:
        print("ready", flush=True)
        await asyncio.sleep(float(sys.argv[2]))
asyncio.run(main())
"#;

#[test]
#[ignore = "needs pyd3tn"]
fn our_v3_client_sends_to_pyd3tn_server() {
    let Some(py) = peer_python("pyd3tn") else {
        return;
    };
    let port = proto_tests::peers::free_port().unwrap();
    let mut server =
        Bounded::spawn(&mut py.command(PYD3TN_SERVE, &[port.to_string(), "20".into()])).unwrap();
    server
        .wait_line(Stream::Stdout, Duration::from_secs(20), |l| {
            l.contains("ready")
        })
        .unwrap();
    let mut c: Config = config("dtn://tx/");
    c.tcpcl_version = 3;
    let tx = Agent::new(c).unwrap();
    let events = tx.events();
    let s = tx.connect(("127.0.0.1", port)).unwrap();
    let p = s.wait_established(T).unwrap();
    assert_eq!((p.version, p.peer_node_id.as_str()), (3, "dtn://pysrv/"));
    server
        .wait_line(Stream::Stderr, T, |l| l == "contact header read")
        .unwrap();
    // pyd3tn's server asks for nothing: no acks, so bundles are sent unconfirmed.
    let tid = s.send_bytes(b"hello v3".to_vec()).unwrap();
    wait_event(
        &events,
        T,
        |e| matches!(e, Event::TransferSent { transfer_id, len: 8, .. } if *transfer_id == tid),
    )
    .unwrap();
    s.terminate(SessTermReason::UNKNOWN).unwrap();
    let r = s.wait_closed(T).unwrap();
    assert!(
        matches!(
            r,
            CloseReason::Session(proto_core::tcpcl::CloseReason::Terminated { .. })
        ),
        "{r:?}"
    );
    server.signal("TERM").ok();
    let out = server.finish(Duration::from_secs(20)).unwrap();
    // DATA_SEGMENT S|E, length 8, the payload; then SHUTDOWN.
    let want = format!("13{}", hex(b"\x08hello v3"));
    let logged: String = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("TCPCLServer: Received: "))
        .collect();
    assert!(
        logged.starts_with(&want),
        "logged {logged:?}, stderr:\n{}",
        out.stderr
    );
    assert!(logged.ends_with("50"), "SHUTDOWN last: {logged:?}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
