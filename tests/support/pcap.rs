//! Synthesises classic libpcap captures of one TCP conversation.
//!
//! [`PcapBuilder`] turns a list of TCP payloads, each sent by the client or the server,
//! into Ethernet + IPv4 + TCP frames between `127.0.0.1:client_port` and
//! `127.0.0.2:server_port`, so that dissectors such as tshark's see a proper
//! conversation:
//!
//! - a SYN / SYN-ACK / ACK handshake comes first;
//! - each direction has its own sequence space, so every payload continues its stream;
//! - data segments carry `PSH|ACK` and acknowledge everything the peer has sent;
//! - payloads longer than the maximum segment size are split over several segments;
//! - a pure ACK from the peer is inserted whenever a sender would otherwise fill or overrun the
//!   advertised 65535-byte window (which tshark would flag);
//! - IPv4 header and TCP checksums are correct, timestamps advance by 1 ms per frame.
//!
//! ```
//! use proto_tests::pcap::PcapBuilder;
//! let mut b = PcapBuilder::new(49152, 102);
//! b.client(&[3, 0, 0, 7, 0x02, 0xf0, 0x80]).server(b"reply");
//! let bytes = b.to_bytes();
//! // Global header, 3 handshake frames, 2 data frames.
//! assert_eq!(b.frame_count(), 5);
//! assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
//! ```

use std::path::Path;

use anyhow::Context as _;

/// Which end of the conversation sends a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// The active opener (`127.0.0.1:client_port`).
    Client,
    /// The passive side (`127.0.0.2:server_port`).
    Server,
}

impl Dir {
    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::Client => Dir::Server,
            Dir::Server => Dir::Client,
        }
    }
}

/// Default largest TCP payload per segment.
pub const DEFAULT_MAX_SEGMENT: usize = 60_000;
/// Largest TCP payload an IPv4 packet without options can carry (65535 - 20 - 20).
pub const MAX_SEGMENT_LIMIT: usize = 65_495;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const WINDOW: u32 = 65_535;
const CLIENT_ISN: u32 = 0x1000_0000;
const SERVER_ISN: u32 = 0x2000_0000;
const CLIENT_IP: [u8; 4] = [127, 0, 0, 1];
const SERVER_IP: [u8; 4] = [127, 0, 0, 2];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// One step of the conversation as the caller described it.
#[derive(Debug, Clone)]
enum Step {
    Data(Dir, Vec<u8>),
    Fin(Dir),
}

/// Builds a pcap of one TCP conversation from payloads in either direction.
///
/// The builder only records the steps; frames are synthesised by
/// [`to_bytes`](PcapBuilder::to_bytes) / [`write`](PcapBuilder::write), so it can be
/// rendered several times.
#[derive(Debug, Clone)]
pub struct PcapBuilder {
    client_port: u16,
    server_port: u16,
    max_segment: usize,
    steps: Vec<Step>,
}

/// What was synthesised for one frame, for mapping tshark frame numbers back to payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// 1-based frame number as tshark counts it.
    pub number: u32,
    /// Sender of the frame.
    pub dir: Dir,
    /// Index of the payload (in call order of [`PcapBuilder::client`] /
    /// [`PcapBuilder::server`]) this frame carries a piece of, or `None` for handshake,
    /// pure ACK and FIN frames.
    pub payload_index: Option<usize>,
    /// TCP payload length of the frame.
    pub tcp_len: usize,
}

impl PcapBuilder {
    /// A conversation between `127.0.0.1:client_port` and `127.0.0.2:server_port`.
    pub fn new(client_port: u16, server_port: u16) -> Self {
        PcapBuilder {
            client_port,
            server_port,
            max_segment: DEFAULT_MAX_SEGMENT,
            steps: Vec::new(),
        }
    }

    /// Sets the largest TCP payload per segment (clamped to `1..=65495`).
    ///
    /// Small values are handy to make a PDU span several TCP segments.
    pub fn max_segment(&mut self, max: usize) -> &mut Self {
        self.max_segment = max.clamp(1, MAX_SEGMENT_LIMIT);
        self
    }

    /// Appends a payload sent by the client.
    pub fn client(&mut self, payload: &[u8]) -> &mut Self {
        self.send(Dir::Client, payload)
    }

    /// Appends a payload sent by the server.
    pub fn server(&mut self, payload: &[u8]) -> &mut Self {
        self.send(Dir::Server, payload)
    }

    /// Appends a payload sent by `dir`. Empty payloads are ignored.
    pub fn send(&mut self, dir: Dir, payload: &[u8]) -> &mut Self {
        if !payload.is_empty() {
            self.steps.push(Step::Data(dir, payload.to_vec()));
        }
        self
    }

    /// Appends a FIN from `dir` (acknowledged by the peer with a pure ACK).
    pub fn fin(&mut self, dir: Dir) -> &mut Self {
        self.steps.push(Step::Fin(dir));
        self
    }

    /// The client's TCP port.
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The server's TCP port.
    pub fn server_port(&self) -> u16 {
        self.server_port
    }

    /// Number of frames [`to_bytes`](PcapBuilder::to_bytes) will produce.
    pub fn frame_count(&self) -> usize {
        self.frames().len()
    }

    /// Describes every frame that will be written, in order.
    pub fn frames(&self) -> Vec<FrameInfo> {
        let mut out = Vec::new();
        self.render(|info, _| out.push(info));
        out
    }

    /// The whole capture file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        concat(std::slice::from_ref(self))
    }

    /// Appends this conversation's frame records (no global header) to `out`,
    /// numbering the frames from `first + 1`: their timestamps continue from frame
    /// `first`, so conversations appended one after another stay in time order.
    pub fn append_records(&self, out: &mut Vec<u8>, first: u32) {
        self.render(|info, frame| {
            // 1 ms per frame, starting at 2024-01-01T00:00:00Z.
            let micros = u64::from(first + info.number) * 1000;
            let secs = 1_704_067_200u64 + micros / 1_000_000;
            let usecs = micros % 1_000_000;
            let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&u32::try_from(secs).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(&u32::try_from(usecs).unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(frame);
        });
    }

    /// Writes the capture to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes())
            .with_context(|| format!("writing pcap {}", path.display()))
    }

    /// Synthesises every frame and hands it to `emit`.
    fn render(&self, mut emit: impl FnMut(FrameInfo, &[u8])) {
        let mut conv = Conversation {
            client_port: self.client_port,
            server_port: self.server_port,
            next_seq: [CLIENT_ISN, SERVER_ISN],
            unacked: [0, 0],
            ip_id: [0x1000, 0x2000],
            number: 0,
        };
        let mut frame = Vec::new();
        let mut put = |conv: &mut Conversation,
                       dir: Dir,
                       flags: u8,
                       payload: &[u8],
                       payload_index: Option<usize>| {
            conv.segment(&mut frame, dir, flags, payload);
            let info = FrameInfo {
                number: conv.number,
                dir,
                payload_index,
                tcp_len: payload.len(),
            };
            emit(info, &frame);
        };

        put(&mut conv, Dir::Client, TCP_SYN, &[], None);
        put(&mut conv, Dir::Server, TCP_SYN | TCP_ACK, &[], None);
        put(&mut conv, Dir::Client, TCP_ACK, &[], None);

        let mut payload_index = 0;
        for step in &self.steps {
            match step {
                Step::Data(dir, payload) => {
                    for piece in payload.chunks(self.max_segment) {
                        let len = u32::try_from(piece.len()).unwrap_or(u32::MAX);
                        // Filling the window exactly is flagged too (`tcp.analysis.window_full`).
                        if conv.unacked[idx(*dir)].saturating_add(len) >= WINDOW {
                            put(&mut conv, dir.flip(), TCP_ACK, &[], None);
                        }
                        put(
                            &mut conv,
                            *dir,
                            TCP_PSH | TCP_ACK,
                            piece,
                            Some(payload_index),
                        );
                    }
                    payload_index += 1;
                }
                Step::Fin(dir) => {
                    put(&mut conv, *dir, TCP_FIN | TCP_ACK, &[], None);
                    put(&mut conv, dir.flip(), TCP_ACK, &[], None);
                }
            }
        }
    }
}

/// One capture file holding `conversations` one after another (give each builder its
/// own client port so dissectors see separate TCP streams). Frame numbers continue
/// across conversations: those of `conversations[k]` are offset by the frame counts of
/// the ones before it (see [`frame_offsets`]).
pub fn concat(conversations: &[PcapBuilder]) -> Vec<u8> {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, thiszone, sigfigs, snaplen, LINKTYPE_ETHERNET.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (c, first) in conversations.iter().zip(frame_offsets(conversations)) {
        c.append_records(&mut out, first);
    }
    out
}

/// For each conversation of a capture joined by [`concat()`], the number of frames before it.
pub fn frame_offsets(conversations: &[PcapBuilder]) -> Vec<u32> {
    let mut next = 0u32;
    conversations
        .iter()
        .map(|c| {
            let first = next;
            next += u32::try_from(c.frame_count()).unwrap_or(u32::MAX);
            first
        })
        .collect()
}

fn idx(dir: Dir) -> usize {
    match dir {
        Dir::Client => 0,
        Dir::Server => 1,
    }
}

/// TCP state of the synthesised conversation.
struct Conversation {
    client_port: u16,
    server_port: u16,
    /// Next sequence number each side will send.
    next_seq: [u32; 2],
    /// Bytes each side sent that the peer has not acknowledged yet.
    unacked: [u32; 2],
    ip_id: [u16; 2],
    /// Number of the last frame produced.
    number: u32,
}

impl Conversation {
    /// Builds one Ethernet frame from `dir` into `out` and advances the TCP state.
    fn segment(&mut self, out: &mut Vec<u8>, dir: Dir, flags: u8, payload: &[u8]) {
        let (me, peer) = (idx(dir), idx(dir.flip()));
        let (src_ip, dst_ip, src_mac, dst_mac, src_port, dst_port) = match dir {
            Dir::Client => (
                CLIENT_IP,
                SERVER_IP,
                CLIENT_MAC,
                SERVER_MAC,
                self.client_port,
                self.server_port,
            ),
            Dir::Server => (
                SERVER_IP,
                CLIENT_IP,
                SERVER_MAC,
                CLIENT_MAC,
                self.server_port,
                self.client_port,
            ),
        };
        let seq = self.next_seq[me];
        // Before the peer's SYN has been seen there is nothing to acknowledge.
        let ack = if flags & TCP_ACK != 0 {
            self.next_seq[peer]
        } else {
            0
        };

        out.clear();
        // Ethernet II.
        out.extend_from_slice(&dst_mac);
        out.extend_from_slice(&src_mac);
        out.extend_from_slice(&0x0800u16.to_be_bytes());

        // IPv4, 20-byte header, DF, TTL 64, protocol TCP.
        let ip_start = out.len();
        let total_len = u16::try_from(20 + 20 + payload.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&[0x45, 0x00]);
        out.extend_from_slice(&total_len.to_be_bytes());
        out.extend_from_slice(&self.ip_id[me].to_be_bytes());
        out.extend_from_slice(&[0x40, 0x00, 64, 6, 0, 0]);
        out.extend_from_slice(&src_ip);
        out.extend_from_slice(&dst_ip);
        let ip_sum = checksum(&[&out[ip_start..]]);
        out[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());

        // TCP, 20-byte header, window 65535, no options.
        let tcp_start = out.len();
        out.extend_from_slice(&src_port.to_be_bytes());
        out.extend_from_slice(&dst_port.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ack.to_be_bytes());
        out.extend_from_slice(&[5 << 4, flags]);
        out.extend_from_slice(&u16::try_from(WINDOW).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(payload);
        let tcp_len = u16::try_from(out.len() - tcp_start).unwrap_or(u16::MAX);
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&src_ip);
        pseudo[4..8].copy_from_slice(&dst_ip);
        pseudo[9] = 6;
        pseudo[10..].copy_from_slice(&tcp_len.to_be_bytes());
        let tcp_sum = checksum(&[&pseudo, &out[tcp_start..]]);
        out[tcp_start + 16..tcp_start + 18].copy_from_slice(&tcp_sum.to_be_bytes());

        // Advance state: SYN and FIN each take one sequence number.
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let phantom = u32::from(flags & (TCP_SYN | TCP_FIN) != 0);
        self.next_seq[me] = seq.wrapping_add(len).wrapping_add(phantom);
        self.unacked[me] = self.unacked[me].saturating_add(len);
        if flags & TCP_ACK != 0 {
            self.unacked[peer] = 0;
        }
        self.ip_id[me] = self.ip_id[me].wrapping_add(1);
        self.number += 1;
    }
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(u16::try_from(sum).unwrap_or(0xffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example: sum is 0xddf2, checksum its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&[&data]), !0xddf2);
        // Split across parts at an odd boundary gives the same result.
        assert_eq!(checksum(&[&data[..3], &data[3..]]), !0xddf2);
    }

    #[test]
    fn large_payloads_are_split_and_window_respected() {
        let mut b = PcapBuilder::new(1, 2);
        b.client(&vec![0u8; 150_000]);
        let frames = b.frames();
        let data: Vec<_> = frames.iter().filter(|f| f.tcp_len > 0).collect();
        assert_eq!(
            data.iter().map(|f| f.tcp_len).collect::<Vec<_>>(),
            [60_000, 60_000, 30_000]
        );
        // Handshake (3) + 3 data + pure ACKs before the 2nd and 3rd segment.
        assert_eq!(frames.len(), 8);
        assert!(frames
            .iter()
            .filter(|f| f.dir == Dir::Server && f.number > 3)
            .all(|f| f.payload_index.is_none()));
    }
}
