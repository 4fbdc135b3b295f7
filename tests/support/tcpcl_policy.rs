//! The core's send policy as the pair harness (`proto_core::testing`) runs it: what a
//! session sends for a list of bundles, to compare with what the runtime puts on a
//! real socket.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use proto_core::tcpcl::{Session, SessionConfig, Side};
use proto_core::testing::tcpcl::TcpclEndpoint;
use proto_core::testing::{Endpoint, Pair};

use crate::tcpcl_wire::{parse_all, Msg};

/// An endpoint of the pair harness that records every byte it transmits.
pub struct Recording {
    /// The harness's TCPCL endpoint.
    pub inner: TcpclEndpoint,
    /// Everything it transmitted, from its contact header on.
    pub wire: Vec<u8>,
}

impl Endpoint for Recording {
    type Event = <TcpclEndpoint as Endpoint>::Event;

    fn input(
        &mut self,
        now: Instant,
        input: &[u8],
        on_data: &mut dyn FnMut(u64, &[u8], bool),
    ) -> usize {
        self.inner.input(now, input, on_data)
    }
    fn eof(&mut self, now: Instant) {
        self.inner.eof(now)
    }
    fn timeout(&mut self, now: Instant) {
        self.inner.timeout(now)
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.inner.next_timeout()
    }
    fn transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        let n = self.inner.transmit(now, out)?;
        self.wire.extend_from_slice(&out[..n]);
        Some(n)
    }
    fn event(&mut self) -> Option<Self::Event> {
        self.inner.event()
    }
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// (transfer ID, flags, extension items, data length) of one XFER_SEGMENT.
pub type SegmentRecord = (u64, u8, Vec<u8>, usize);

/// What the core's policy, run by the pair harness, sends for `bundles` from a
/// passive session configured as `agent_cfg` to an active peer with Segment MRU `mru`.
pub fn harness_segments(
    agent_cfg: SessionConfig,
    mru: u64,
    bundles: &[Vec<u8>],
) -> Result<Vec<SegmentRecord>> {
    let now = Instant::now();
    let peer_cfg = SessionConfig {
        node_id: "dtn://raw/".into(),
        segment_mru: mru,
        transfer_mru: 1 << 30,
        ..SessionConfig::default()
    };
    let mut a = TcpclEndpoint::new(Session::new(agent_cfg, Side::Passive, now)?);
    for b in bundles {
        a.send(b.clone());
    }
    let b = TcpclEndpoint::new(Session::new(peer_cfg, Side::Active, now)?);
    let mut pair = Pair::new(
        Recording {
            inner: a,
            wire: Vec::new(),
        },
        b,
        now,
        10,
    );
    pair.run_until(Duration::from_secs(60), |p| p.a.inner.all_sent_and_acked());
    ensure!(pair.a.inner.errors.is_empty(), "{:?}", pair.a.inner.errors);
    // After our contact header: SESS_INIT, then the transfers.
    let msgs = parse_all(&pair.a.wire[6..])?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            Msg::Segment {
                flags,
                tid,
                ext,
                data,
            } => Some((tid, flags, ext, data.len())),
            _ => None,
        })
        .collect())
}
