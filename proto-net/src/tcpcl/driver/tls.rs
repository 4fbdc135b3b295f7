//! TLS at the contact-header boundary: start it once our contact header is out,
//! drive the handshake, then authenticate the peer host (RFC 9174 §4.4.4).

use super::*;

impl Driver {
    pub(super) fn advance_tls(&mut self, now: Instant) {
        if let Some(role) = self.tls_start {
            if !self.out.is_empty() {
                // Our contact header must be on the wire before TLS bytes.
                return;
            }
            self.tls_start = None;
            let Some(ctx) = self.tls.clone() else {
                return self.fail(CloseReason::TlsFailed(TlsFailure::NotConfigured));
            };
            let leftover = std::mem::take(&mut self.tls_leftover);
            if let Err(f) = self.io.start_tls(&ctx, role, &self.server_name, &leftover) {
                return self.tls_failed(f);
            }
        }
        if self.io.is_handshaking() {
            match self.io.drive_handshake() {
                Ok(true) => self.tls_up(now),
                Ok(false) => {}
                Err(f) => self.tls_failed(f),
            }
        }
    }

    pub(super) fn tls_failed(&mut self, f: Failure) {
        let failure = f.into_tls();
        log::info!("{}: TLS handshake failed: {failure}", self.id);
        self.fail(CloseReason::TlsFailed(failure));
    }

    pub(super) fn tls_up(&mut self, now: Instant) {
        // The last handshake flight may have carried application data (the peer's
        // SESS_INIT), now held by rustls where `ppoll` cannot see it.
        self.readable = true;
        let Some(conn) = self.io.tls() else {
            return;
        };
        let client = self.shared.side == proto_core::tcpcl::Side::Active;
        let name = client.then_some(self.server_name.as_str());
        let peer_ip = Some(self.shared.peer_addr.ip());
        let info = describe(conn, |id| authenticate_host(id, name, peer_ip));
        log::debug!(
            "{}: TLS up ({} {}), host authn {}",
            self.id,
            info.version,
            info.cipher_suite,
            info.host_authn
        );
        let ids: Vec<&str> = info
            .peer_identity
            .node_ids
            .iter()
            .map(String::as_str)
            .collect();
        if self.core.tls_established(now, &ids).is_err() {
            return;
        }
        // RFC 9174 §4.4.4.2 validates network-level identifiers "if required by security
        // policy"; `ignore_host_authn` is the §4.4.5 policy that does not.
        let host_ok = self.ignore_host_authn || info.host_authn.acceptable(self.require_host_authn);
        self.shared.update(|s| s.tls = Some(info.clone()));
        self.report.emit(Event::TlsEstablished {
            session: self.id,
            info,
        });
        if !host_ok {
            // RFC 9174 §4.4.4: host authentication failed → SESS_TERM Contact Failure.
            self.close_override = Some(CloseReason::HostNotAuthenticated);
            let _ = self.core.terminate(now, SessTermReason::CONTACT_FAILURE);
        }
    }
}
