//! A listener at `max_sessions`. First, the oldest incoming session still in its
//! contact phase (contact headers, TLS, SESS_INIT) is closed to make room
//! ([`oldest_in_contact`]): connections that trickle their contact header (slow-loris)
//! hold a slot only until a newcomer needs it, never locking out established
//! sessions' peers. With no such session, the connection is refused: RFC 9174 lets
//! the passive entity answer the contact header with its own and SESS_TERM Busy, so
//! the peer learns why. Done on a short-lived thread (at most [`MAX_REFUSING`] at
//! once), bounded in time.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto_core::tcpcl::{
    ContactFlags, ContactHeader, SessTerm, SessTermFlags, SessTermReason, Side, MAGIC, VERSION,
};

use super::events::SessionId;
use super::handle::SessionHandle;

/// Most connections over `max_sessions` refused with SESS_TERM Busy at once (one
/// short-lived thread each); further ones are closed without a word.
const MAX_REFUSING: usize = 16;
/// Most a Busy refusal waits for the peer's contact header.
const BUSY_CONTACT_WAIT: Duration = Duration::from_secs(5);
/// Most a Busy refusal reads after its FIN, waiting for the peer's.
const BUSY_LINGER: Duration = Duration::from_millis(500);

/// The oldest incoming session (session IDs grow with time) that has not finished its
/// contact phase and is not already being closed for a newcomer (`evicted`).
pub(crate) fn oldest_in_contact(
    sessions: &BTreeMap<SessionId, SessionHandle>,
    evicted: &HashSet<SessionId>,
) -> Option<SessionHandle> {
    sessions
        .values()
        .find(|h| {
            h.side() == Side::Passive
                && !evicted.contains(&h.id())
                && h.parameters().is_none()
                && !h.is_closed()
        })
        .cloned()
}

/// Refuses `stream` with SESS_TERM Busy on a short-lived thread; `refusing` counts the
/// refusals under way, `contact_timeout` bounds the wait for the peer's header.
pub(crate) fn refuse_busy(stream: TcpStream, refusing: &Arc<AtomicUsize>, contact_timeout: f64) {
    if refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let count = refusing.clone();
    let wait = Duration::try_from_secs_f64(contact_timeout)
        .map_or(BUSY_CONTACT_WAIT, |t| t.min(BUSY_CONTACT_WAIT));
    let spawned = std::thread::Builder::new()
        .name("tcpcl-busy".into())
        .stack_size(64 << 10)
        .spawn(move || {
            busy_refusal(stream, wait);
            count.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        refusing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits (bounded) for the active side's contact header; if it is TCPCLv4, answers
/// with our contact header (without CAN_TLS: no TLS for a refusal) and SESS_TERM Busy.
/// Anything else gets no reply, as RFC 9174 §4.3 has it for a bad magic. Either way
/// the close is orderly: FIN, then what the peer still sends is read until its FIN
/// (bounded), so the kernel sends no RST.
fn busy_refusal(mut sock: TcpStream, wait: Duration) {
    if busy_answer(&mut sock, wait) {
        log::info!(
            "refused a session from {} (max_sessions): SESS_TERM Busy",
            sock.peer_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string())
        );
    }
    if sock.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + BUSY_LINGER;
    let mut sink = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match sock.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The contact header exchange of a Busy refusal; whether SESS_TERM Busy was sent.
fn busy_answer(sock: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut hdr = [0u8; 6];
    let mut got = 0;
    while got < hdr.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match sock.read(&mut hdr[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
        let magic = got.min(MAGIC.len());
        if hdr[..magic] != MAGIC[..magic] || (got > 4 && hdr[4] != VERSION) {
            return false;
        }
    }
    let mut out = [0u8; 16];
    let Ok(n) = ContactHeader::new(ContactFlags::EMPTY).encode(&mut out) else {
        return false;
    };
    let term = SessTerm {
        flags: SessTermFlags::EMPTY,
        reason: SessTermReason::BUSY,
    };
    let Ok(m) = term.encode(&mut out[n..]) else {
        return false;
    };
    sock.write_all(&out[..n + m]).is_ok()
}
