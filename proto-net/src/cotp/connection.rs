//! A blocking COTP connection: the seed API's `COTP_Connection`, driven on the
//! caller's thread.

use super::error::{Error, Result};
use super::listener::ListenOptions;
use super::stream::Stream;
use proto_core::cotp::connection::{self as sansio, Config, Event, Side, State};
use proto_core::cotp::{DisconnectReason, DisconnectRequest, Tpdu, TpduSize};
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

mod expedited;
mod options;
mod release;
mod write;

pub use expedited::Received;
pub use options::ConnectOptions;
use write::{write_all, write_all_vectored};

/// Largest read buffer, and the size of coalesced writes of DT frames.
const IO_BUF: usize = 64 * 1024;
/// Starting size of the read and control-write buffers. Connections that only exchange
/// small messages never pay for (and zero) 64 KiB buffers; bulk readers grow to
/// [`IO_BUF`] after a few full reads.
const SMALL_BUF: usize = 2048;

/// A received TPDU, owned (the seed API's `receive_tpdu` result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedTpdu {
    bytes: Vec<u8>,
}

impl ReceivedTpdu {
    /// The TPDU's encoded bytes (without the TPKT header).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The decoded TPDU.
    pub fn tpdu(&self) -> Option<Tpdu<'_>> {
        Tpdu::decode(&self.bytes).ok()
    }
}

/// A COTP class 0 connection over a [`Stream`] (a [`TcpStream`] by default).
///
/// Everything runs on the calling thread, as in the seed API: `send_data` writes,
/// `recv_data` reads until a whole message has arrived. A DR or ER from the peer
/// surfaces as the error of the next call.
///
/// ```no_run
/// use proto_net::cotp::{Connection, ConnectOptions};
/// let opts = ConnectOptions::default().src_tsap("0100")?.dst_tsap("0102")?;
/// let mut conn = Connection::connect("127.0.0.1:102", opts)?;
/// conn.send_data(b"hello")?;
/// let reply = conn.recv_data()?;
/// conn.close()?;
/// # Ok::<(), proto_net::cotp::Error>(())
/// ```
#[derive(Debug)]
pub struct Connection<S: Stream = TcpStream> {
    stream: S,
    core: sansio::Connection,
    rbuf: Box<[u8]>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    timeout: Option<Duration>,
    eof: bool,
    /// The message being reassembled; kept across calls so a timeout loses nothing.
    partial: Vec<u8>,
    /// The DT being reassembled for `receive_tpdu`.
    partial_dt: Option<Vec<u8>>,
    /// The read timeout last set on the stream (`Some(None)`: blocking).
    read_timeout: Option<Option<Duration>>,
    /// Expedited data received while `recv_data` waited for a message, for `recv`
    /// (bounded by [`expedited::MAX_QUEUED`]).
    expedited: std::collections::VecDeque<Vec<u8>>,
}

enum Want {
    Message,
    /// A message or an ED, whichever comes first.
    Any,
    Tpdu,
    Open,
}

enum Got {
    Message(Vec<u8>),
    Expedited(Vec<u8>),
    Tpdu(Vec<u8>),
    Open,
}

impl Connection<TcpStream> {
    /// Connects over TCP and exchanges CR/CC (the seed's `connect`).
    pub fn connect(addr: impl ToSocketAddrs, opts: ConnectOptions) -> Result<Self> {
        let stream = tcp_connect(addr, opts.connect_timeout)?;
        Self::over(stream, opts)
    }

    /// Connects over TCP with a caller-built CR (the seed's `connect_raw`). A DR in
    /// answer is [`Error::Refused`].
    pub fn connect_raw(
        addr: impl ToSocketAddrs,
        cr: &Tpdu<'_>,
        opts: ConnectOptions,
    ) -> Result<Self> {
        let stream = tcp_connect(addr, opts.connect_timeout)?;
        Self::over_raw(stream, cr, opts)
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }
}

fn tcp_connect(addr: impl ToSocketAddrs, timeout: Duration) -> Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Io(last))
}

impl<S: Stream> Connection<S> {
    /// Runs the active handshake over a stream the caller already has (the seed's
    /// `sock` / `sock_cls`).
    pub fn over(stream: S, opts: ConnectOptions) -> Result<Self> {
        let core = sansio::Connection::new(opts.core_config(), Side::Active, Instant::now())?;
        Self::establish(stream, core, opts.timeout, opts.timeout)
    }

    /// Like [`over`](Self::over) with a caller-built CR.
    pub fn over_raw(stream: S, cr: &Tpdu<'_>, opts: ConnectOptions) -> Result<Self> {
        let core = sansio::Connection::new_raw(opts.core_config(), cr, Instant::now())?;
        Self::establish(stream, core, opts.timeout, opts.timeout)
    }

    /// Runs the passive handshake over a stream the caller already has: waits for a
    /// CR and answers it as `opts` say.
    pub fn accept_over(stream: S, opts: &ListenOptions) -> Result<Self> {
        let config = Config {
            src_ref: opts.src_ref,
            tpdu_size: opts.max_tpdu_size,
            local_tsap: opts.local_tsap,
            max_message_size: opts.max_message_size,
            connect_timeout: Some(opts.handshake_timeout),
            inactivity_timeout: opts.inactivity_timeout,
            manual_accept: opts.policy.is_some(),
            expedited: opts.expedited,
            ..Config::default()
        };
        let core = sansio::Connection::new(config, Side::Passive, Instant::now())?;
        let mut conn = Self::establish(stream, core, opts.timeout, opts.write_timeout)?;
        if let Some(policy) = &opts.policy {
            let c = conn.core();
            let verdict = policy(c.calling_tsap(), c.called_tsap());
            conn.decide(verdict.err())?;
        }
        Ok(conn)
    }

    /// Wraps a stream and a core in any state.
    fn establish(
        stream: S,
        core: sansio::Connection,
        timeout: Option<Duration>,
        write_timeout: Option<Duration>,
    ) -> Result<Self> {
        let mut c = Connection {
            stream,
            core,
            rbuf: vec![0; SMALL_BUF].into_boxed_slice(),
            rstart: 0,
            rend: 0,
            wbuf: vec![0; SMALL_BUF],
            timeout,
            eof: false,
            partial: Vec::new(),
            partial_dt: None,
            read_timeout: None,
            expedited: Default::default(),
        };
        c.flush_control()?;
        if !c.core.is_open() {
            c.drive(Want::Open, None)?;
        }
        c.stream.set_write_timeout(write_timeout)?;
        Ok(c)
    }

    /// The protocol core, for state and negotiated values.
    pub fn core(&self) -> &sansio::Connection {
        &self.core
    }

    /// The underlying stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The negotiated TPDU size.
    pub fn tpdu_size(&self) -> TpduSize {
        self.core.tpdu_size()
    }

    /// The protocol class in use (always 0).
    pub fn protocol_class(&self) -> u8 {
        0
    }

    /// Whether part of a message has arrived whose end has not: stopping now would
    /// lose it.
    pub fn is_receiving(&self) -> bool {
        !self.partial.is_empty() || self.rstart < self.rend || self.core.is_receiving()
    }

    /// Bound on each receive and send.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.timeout = timeout;
        self.stream.set_write_timeout(timeout)?;
        Ok(())
    }

    /// Sends `data` as one message, segmented into DTs (the seed's `send_data`).
    pub fn send_data(&mut self, data: &[u8]) -> Result<()> {
        self.flush_control_or_verdict()?;
        self.check_open()?;
        if data.is_empty() {
            // Surfaces the core's refusal: class 0 has no empty DT.
            self.core.frame_data(data, true, &mut self.wbuf)?;
        }
        let mut off = 0;
        while off < data.len() {
            off += self.write_dts(&data[off..], true)?;
        }
        Ok(())
    }

    /// Writes whole DTs carrying the start of `data` (all of it when `end_of_message`;
    /// otherwise only full-size DTs) and returns how many bytes they carried.
    fn write_dts(&mut self, data: &[u8], end_of_message: bool) -> Result<usize> {
        if !self.stream.gathers_writes() {
            if self.wbuf.len() < IO_BUF {
                self.wbuf.resize(IO_BUF, 0);
            }
            let f = self.core.frame_data(data, end_of_message, &mut self.wbuf)?;
            return match write_all(&mut self.stream, &self.wbuf[..f.written]) {
                Ok(()) => Ok(f.consumed),
                Err(e) => Err(self.write_failed(e)),
            };
        }
        // Gather write: headers from a small array, payload straight from `data`, so
        // the payload is never copied. 32 DTs per system call.
        const BATCH: usize = 32;
        let max = self.core.max_dt_payload();
        let mut headers = [[0u8; 7]; BATCH];
        let mut spans = [(0usize, 0usize); BATCH];
        let mut count = 0;
        let mut off = 0;
        while count < BATCH && off < data.len() {
            let take = (data.len() - off).min(max);
            if !end_of_message && take < max {
                break;
            }
            let eot = end_of_message && off + take == data.len();
            headers[count] = proto_core::cotp::class0_dt_frame_header(take, eot)?;
            spans[count] = (off, off + take);
            count += 1;
            off += take;
        }
        let mut slices: Vec<io::IoSlice<'_>> = Vec::with_capacity(count * 2);
        for (h, &(a, b)) in headers.iter().zip(&spans).take(count) {
            slices.push(io::IoSlice::new(h));
            slices.push(io::IoSlice::new(&data[a..b]));
        }
        match write_all_vectored(&mut self.stream, &mut slices) {
            Ok(()) => Ok(off),
            Err(e) => Err(self.write_failed(e)),
        }
    }

    /// Sends everything `reader` yields as one message, streaming it: the message is
    /// never held in memory whole. Returns the number of bytes sent.
    pub fn send_from(&mut self, mut reader: impl io::Read) -> Result<u64> {
        self.flush_control_or_verdict()?;
        self.check_open()?;
        let mut buf = vec![0u8; IO_BUF];
        let (mut filled, mut total, mut eof) = (0usize, 0u64, false);
        loop {
            while !eof && filled < buf.len() {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => eof = true,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            }
            if eof && filled == 0 {
                if total == 0 {
                    // Surfaces the core's refusal to send an empty message.
                    self.core.frame_data(&[], true, &mut self.wbuf)?;
                }
                return Ok(total);
            }
            // Without EOF only whole DTs are framed; the tail waits for more input.
            let mut consumed = 0;
            loop {
                let n = self.write_dts(&buf[consumed..filled], eof)?;
                consumed += n;
                if n == 0 || consumed == filled {
                    break;
                }
            }
            buf.copy_within(consumed..filled, 0);
            filled -= consumed;
            total += consumed as u64;
            if eof && filled == 0 {
                return Ok(total);
            }
        }
    }

    /// Receives one whole message (the seed's `recv_data`).
    pub fn recv_data(&mut self) -> Result<Vec<u8>> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        match self.drive(Want::Message, deadline)? {
            Got::Message(m) => Ok(m),
            _ => Err(Error::Closed),
        }
    }

    /// Sends any TPDU as it is (the seed's `send_tpdu`).
    pub fn send_tpdu(&mut self, tpdu: &Tpdu<'_>) -> Result<()> {
        self.core.send_tpdu(tpdu)?;
        self.flush_control()
    }

    /// Receives the next TPDU of any type, DTs included (the seed's `receive_tpdu`).
    pub fn receive_tpdu(&mut self) -> Result<ReceivedTpdu> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        match self.drive(Want::Tpdu, deadline)? {
            Got::Tpdu(bytes) => Ok(ReceivedTpdu { bytes }),
            _ => Err(Error::Closed),
        }
    }

    /// Closes with a DR, reason normal (the seed's `close`).
    pub fn close(&mut self) -> Result<()> {
        self.close_with_reason(DisconnectReason::NORMAL)
    }

    /// Closes with a DR carrying `reason` (the seed's `close_with_reason`), then
    /// closes the transport.
    pub fn close_with_reason(&mut self, reason: DisconnectReason) -> Result<()> {
        self.core.close(reason);
        self.finish_close()
    }

    /// Closes with a caller-built DR (the seed's `close_raw`).
    pub fn close_raw(&mut self, dr: &DisconnectRequest<'_>) -> Result<()> {
        self.core.close_raw(dr)?;
        self.finish_close()
    }

    fn check_open(&self) -> Result<()> {
        match self.core.state() {
            State::Open => Ok(()),
            _ => Err(self
                .core
                .close_reason()
                .map_or(Error::Closed, Error::from_close)),
        }
    }

    /// [`flush_control`](Self::flush_control), reporting the peer's DR or ER when the
    /// write fails because the peer already ended the connection.
    fn flush_control_or_verdict(&mut self) -> Result<()> {
        match self.flush_control() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.write_failed(e)),
        }
    }

    /// Writes every pending control TPDU.
    fn flush_control(&mut self) -> Result<()> {
        let now = Instant::now();
        loop {
            let n = match self.core.poll_transmit(now, &mut self.wbuf) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(proto_core::EncodeError::BufferTooSmall { needed }) => {
                    // A large raw TPDU: grow once and retry.
                    self.wbuf.resize(needed, 0);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            write_all(&mut self.stream, &self.wbuf[..n])?;
        }
        Ok(())
    }

    /// Reads and processes input until `want` is satisfied, the connection ends, or
    /// `deadline` passes.
    fn drive(&mut self, want: Want, deadline: Option<Instant>) -> Result<Got> {
        loop {
            while self.rstart < self.rend {
                let now = Instant::now();
                let r = self
                    .core
                    .handle_input(now, &self.rbuf[self.rstart..self.rend]);
                self.rstart += r.consumed;
                let mut done = None;
                if let Some(d) = r.data {
                    match want {
                        Want::Message | Want::Any => {
                            self.partial.extend_from_slice(d.bytes);
                            if d.end_of_message {
                                // The next message likely has a similar size: start its
                                // buffer at this one's capacity instead of regrowing.
                                let next = Vec::with_capacity(self.partial.capacity());
                                done =
                                    Some(Got::Message(std::mem::replace(&mut self.partial, next)));
                            }
                        }
                        Want::Tpdu => {
                            let buf = self.partial_dt.get_or_insert_with(|| vec![2, 0xf0, 0]);
                            buf.extend_from_slice(d.bytes);
                            if d.last_in_tpdu {
                                let mut b = self.partial_dt.take().unwrap_or_default();
                                if d.end_of_message && b.len() > 2 {
                                    b[2] = 0x80;
                                }
                                done = Some(Got::Tpdu(b));
                            }
                        }
                        Want::Open => {}
                    }
                }
                let mut closed = None;
                while let Some(e) = self.core.poll_event() {
                    match e {
                        Event::TpduReceived { .. } => {
                            if let (Want::Tpdu, None) = (&want, &done) {
                                if let Some(b) = self.core.last_tpdu_bytes() {
                                    done = Some(Got::Tpdu(b.to_vec()));
                                }
                            }
                        }
                        Event::Connected => {
                            if let Want::Open = want {
                                done = Some(Got::Open);
                            }
                        }
                        Event::Expedited(b) => {
                            if let (Want::Any, None) = (&want, &done) {
                                done = Some(Got::Expedited(b.as_slice().to_vec()));
                            } else if !matches!(want, Want::Tpdu) {
                                // `receive_tpdu` shows the ED itself; otherwise it waits
                                // for `recv`.
                                self.expedited.push_back(b.as_slice().to_vec());
                            }
                        }
                        Event::Closed(reason) => closed = Some(reason),
                        Event::ConnectRequested | Event::ProtocolError(_) => {}
                    }
                }
                if done.is_none()
                    && closed.is_none()
                    && self.expedited.len() >= expedited::MAX_QUEUED
                {
                    // Input stops here (the rest stays buffered) until `recv` takes
                    // the expedited data: bounded memory, nothing dropped.
                    self.flush_control()?;
                    return Err(Error::ExpeditedBacklog);
                }
                if let Some(g) = done {
                    // A message completed before a DR/ER in the same input is still
                    // delivered; the next call reports the close.
                    let flushed = self.flush_control();
                    if closed.is_none() {
                        flushed?;
                    }
                    return Ok(g);
                }
                if let Some(reason) = closed {
                    return Err(self.end_closed(reason));
                }
                self.flush_control()?;
                if matches!(want, Want::Open) && self.core.state() == State::AwaitingAccept {
                    return Ok(Got::Open);
                }
            }
            if self.core.is_closed() {
                return Err(match self.core.close_reason() {
                    Some(reason) => self.end_closed(reason),
                    None => Error::Closed,
                });
            }
            if self.eof {
                return Err(Error::Closed);
            }
            self.fill(deadline)?;
        }
    }

    /// Reads more input, firing protocol timers and honouring `deadline`.
    fn fill(&mut self, deadline: Option<Instant>) -> Result<()> {
        loop {
            let now = Instant::now();
            let timer = self.core.poll_timeout();
            if timer.is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
                // The core ends with a DR it has yet to send; it counts as closed once
                // the DR is out.
                let flushed = self.flush_control();
                if self.core.is_closed() {
                    while self.core.poll_event().is_some() {}
                    return Err(match self.core.close_reason() {
                        Some(reason) => self.end_closed(reason),
                        None => Error::Closed,
                    });
                }
                flushed?;
                continue;
            }
            if deadline.is_some_and(|d| d <= now) {
                return Err(Error::Timeout("receive"));
            }
            let wait = [timer, deadline].into_iter().flatten().min().map(|t| {
                // A zero read timeout means "block forever" to std; keep it positive.
                (t - now).max(Duration::from_millis(1))
            });
            if self.read_timeout != Some(wait) {
                // One system call only when the bound changes, not before every read.
                self.stream.set_read_timeout(wait)?;
                self.read_timeout = Some(wait);
            }
            self.rstart = 0;
            if self.rend == self.rbuf.len() && self.rbuf.len() < IO_BUF {
                // The last read filled the buffer: this is bulk traffic, read more at once.
                self.rbuf = vec![0; (self.rbuf.len() * 4).min(IO_BUF)].into_boxed_slice();
            }
            match self.stream.read(&mut self.rbuf) {
                Ok(0) => {
                    self.rend = 0;
                    self.eof = true;
                    self.core.handle_eof(Instant::now());
                    let mut reason = None;
                    while let Some(e) = self.core.poll_event() {
                        if let Event::Closed(r) = e {
                            reason = Some(r);
                        }
                    }
                    return Err(reason.map_or(Error::Closed, Error::from_close));
                }
                Ok(n) => {
                    self.rend = n;
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.rend = 0;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Passive side waiting in manual-accept state: accept or refuse, then finish.
    fn decide(&mut self, refuse: Option<DisconnectReason>) -> Result<()> {
        match refuse {
            None => self.core.accept(Instant::now())?,
            Some(r) => self.core.refuse(r)?,
        }
        while self.core.poll_event().is_some() {}
        if refuse.is_some() {
            self.release_after_refusal();
            return Err(Error::Closed);
        }
        self.flush_control()
    }
}
