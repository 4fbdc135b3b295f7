//! Session setup: contact headers, the TLS hand-off and SESS_INIT negotiation.

use std::time::Instant;

use super::{
    is_valid_node_id, CloseReason, ContactFailure, Control, Event, Negotiated, Phase, Session,
    Side, Step, TlsRole, UsageError,
};
use crate::tcpcl::{
    Contact, ContactHeader, DecodeError, SessInit, SessTermReason, Status, VERSION,
};

impl Session {
    /// The runtime finished the TLS handshake that [`Event::StartTls`] asked for.
    ///
    /// `cert_node_ids` are the node IDs the peer's certificate authenticates (already
    /// verified by the runtime); with `require_node_authn` the peer's SESS_INIT node ID
    /// must be one of them, or the session ends with SESS_TERM Contact Failure.
    pub fn tls_established(
        &mut self,
        now: Instant,
        cert_node_ids: &[&str],
    ) -> Result<(), UsageError> {
        self.now = now;
        if self.phase != Phase::Tls {
            return Err(UsageError::WrongState);
        }
        self.tls = true;
        self.cert_ids.clear();
        self.cert_ids
            .extend(cert_node_ids.iter().map(|s| (*s).to_owned()));
        self.enter_sess_init();
        Ok(())
    }

    pub(super) fn enter_sess_init(&mut self) {
        self.phase = Phase::SessInit;
        if self.side == Side::Active {
            self.queue(Control::SessInit);
        }
    }

    pub(super) fn decode_contact(&mut self, bytes: &[u8]) -> Step {
        match Contact::decode_with(bytes, &self.limits) {
            Err(DecodeError::BadMagic { .. }) => {
                // RFC 9174 §4.3: not a TCPCL peer; close without a reply.
                self.close_now(CloseReason::BadMagic);
                Step::Complete(bytes.len())
            }
            Err(_) => {
                // Only a v3 header's EID can fail to decode; the version is known.
                self.version_mismatch(bytes.get(4).copied().unwrap_or(0));
                Step::Complete(bytes.len())
            }
            Ok(Status::Partial { .. }) => match bytes.get(4) {
                // The version byte decides; no need to wait for the rest of another
                // version's header.
                Some(&v) if v != VERSION => {
                    self.version_mismatch(v);
                    Step::Complete(bytes.len())
                }
                _ => Step::Partial,
            },
            Ok(Status::Complete((Contact::V4(h), n))) => {
                self.on_contact(h);
                Step::Complete(n)
            }
            Ok(Status::Complete((other, n))) => {
                self.version_mismatch(other.version());
                Step::Complete(n)
            }
        }
    }

    /// RFC 9174 §4.3: a passive entity sends its contact header and terminates with
    /// SESS_TERM Version Mismatch. An active entity (whose header is out already) just
    /// closes the connection: the peer answered with another version, which could not
    /// parse a v4 SESS_TERM anyway. The peer speaks another version, so no reply is
    /// awaited.
    pub(super) fn version_mismatch(&mut self, version: u8) {
        match self.side {
            Side::Passive => {
                self.queue(Control::Contact);
                self.fail_close(
                    CloseReason::VersionMismatch { version },
                    Some(SessTermReason::VERSION_MISMATCH),
                );
            }
            Side::Active => self.close_now(CloseReason::VersionMismatch { version }),
        }
    }

    pub(super) fn on_contact(&mut self, h: ContactHeader) {
        if self.side == Side::Passive {
            self.queue(Control::Contact);
        }
        let tls = self.config.can_tls && h.flags.can_tls();
        if self.config.require_tls && !tls {
            // RFC 9174 §4.3: TLS required by policy but not negotiated.
            self.fail_close(
                CloseReason::TlsRequired,
                Some(SessTermReason::CONTACT_FAILURE),
            );
            return;
        }
        if tls {
            self.phase = Phase::Tls;
            let role = match self.side {
                Side::Active => TlsRole::Client,
                Side::Passive => TlsRole::Server,
            };
            self.emit(Event::StartTls { role });
        } else {
            self.enter_sess_init();
        }
    }

    pub(super) fn on_sess_init(&mut self, si: SessInit<'_>) {
        let fail = |f| {
            (
                CloseReason::ContactFailure(f),
                Some(SessTermReason::CONTACT_FAILURE),
            )
        };
        // RFC 9174 §4.6: an empty Node ID means the peer withholds it.
        let failure = if !si.node_id.is_empty() && !is_valid_node_id(si.node_id) {
            Some(fail(ContactFailure::InvalidNodeId))
        } else if let Some(item) = si.extensions.unsupported_critical(|_| false) {
            // RFC 9174 §4.7: an unknown critical session extension is a Contact Failure;
            // unknown non-critical items are ignored.
            Some(fail(ContactFailure::CriticalExtension {
                item_type: item.item_type,
            }))
        } else if self.config.require_node_authn
            && !(self.tls && self.cert_ids.iter().any(|c| node_ids_match(c, si.node_id)))
        {
            Some(fail(ContactFailure::NodeNotAuthenticated))
        } else {
            None
        };
        if let Some((reason, term)) = failure {
            self.fail_close(reason, term);
            return;
        }
        self.peer_node_id.clear();
        self.peer_node_id.push_str(si.node_id);
        self.cert_ids.clear();
        let ours = self.config.keepalive_interval;
        let keepalive = if ours == 0 || si.keepalive == 0 {
            0
        } else {
            ours.min(si.keepalive)
        };
        self.negotiated = Some(Negotiated {
            keepalive,
            peer_segment_mru: si.segment_mru,
            peer_transfer_mru: si.transfer_mru,
            tls: self.tls,
        });
        if self.side == Side::Passive {
            self.queue(Control::SessInit);
        }
        self.phase = Phase::Established;
        self.last_rx = self.now;
        self.last_tx = self.now;
        self.last_xfer = self.now;
        self.emit(Event::SessionEstablished);
    }
}

/// RFC 9174 §4.4.1: NODE-ID matching uses RFC 3986 comparison with scheme-based
/// normalization: the scheme is case-insensitive, and `ipn` node and service numbers
/// compare as numbers (`ipn:01.0` is `ipn:1.0`); everything else compares exactly. An
/// empty Node ID matches nothing.
pub(super) fn node_ids_match(cert: &str, peer: &str) -> bool {
    let (Some((cs, cr)), Some((ps, pr))) = (cert.split_once(':'), peer.split_once(':')) else {
        return false;
    };
    if !cs.eq_ignore_ascii_case(ps) || cr.is_empty() {
        return false;
    }
    if cs.eq_ignore_ascii_case("ipn") {
        let nums = |s: &str| {
            let (n, v) = s.split_once('.')?;
            let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
            if !digits(n) || !digits(v) {
                return None;
            }
            Some((n.parse::<u64>().ok()?, v.parse::<u64>().ok()?))
        };
        if let (Some(a), Some(b)) = (nums(cr), nums(pr)) {
            return a == b;
        }
    }
    cr == pr
}
