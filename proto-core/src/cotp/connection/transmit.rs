//! The transmit path of a connection: control TPDUs in the order they were queued
//! ([`Connection::poll_transmit`], CR and CC built from the negotiated values), raw
//! TPDUs, and user data framed into class 0 DTs ([`Connection::frame_data`]).

use super::*;

impl Connection {
    pub(super) fn queue_raw(&mut self, tpdu: &Tpdu<'_>) -> Result<(), UsageError> {
        if self.raw_len != 0 {
            return Err(UsageError::RawPending);
        }
        if self.pending.is_full() {
            return Err(UsageError::RawPending);
        }
        let n = tpdu.encode(&mut self.raw).map_err(|e| match e {
            EncodeError::BufferTooSmall { .. } => {
                UsageError::RawInvalid("larger than the control buffer")
            }
            EncodeError::ValueTooLarge { .. } => {
                UsageError::RawInvalid("header longer than 254 octets")
            }
        })?;
        self.raw_len = n;
        let _ = self.pending.push(Pending::Raw);
        Ok(())
    }

    /// Frames `data` into class 0 DTs written to `out`: as many whole frames as fit.
    ///
    /// With `end_of_message`, the DT carrying the last byte has EOT set. Without it,
    /// only full-size DTs are framed and the remainder is left for the next call, so
    /// the message never ends in an empty DT. Call [`poll_transmit`](Self::poll_transmit)
    /// first: control TPDUs go out before data.
    pub fn frame_data(
        &mut self,
        data: &[u8],
        end_of_message: bool,
        out: &mut [u8],
    ) -> Result<Framed, UsageError> {
        if self.state != State::Open {
            return Err(UsageError::NotOpen(self.state));
        }
        if data.is_empty() && end_of_message {
            return Err(UsageError::EmptyMessage);
        }
        let max = self.max_dt_payload();
        let overhead = tpkt::HEADER_LEN + tpdu::DT_CLASS0_HEADER_LEN;
        let (mut consumed, mut written) = (0, 0);
        loop {
            let left = data.len() - consumed;
            let take = left.min(max);
            if take == 0 || (!end_of_message && take < max) {
                break;
            }
            let need = overhead + take;
            if out.len() - written < need {
                if written == 0 {
                    return Err(UsageError::BufferTooSmall { needed: need });
                }
                break;
            }
            let eot = end_of_message && take == left;
            let header = tpdu::class0_dt_frame_header(take, eot)?;
            out[written..written + overhead].copy_from_slice(&header);
            out[written + overhead..written + need]
                .copy_from_slice(&data[consumed..consumed + take]);
            written += need;
            consumed += take;
        }
        Ok(Framed { consumed, written })
    }

    /// Writes the next pending control TPDU (with its TPKT header) into `out`.
    /// Returns `Ok(None)` when nothing is pending; a too-small buffer leaves the TPDU
    /// queued.
    pub fn poll_transmit(
        &mut self,
        _now: Instant,
        out: &mut [u8],
    ) -> Result<Option<usize>, EncodeError> {
        let Some(p) = self.pending.front() else {
            return Ok(None);
        };
        let n = match p {
            Pending::Cr => self.encode_cr(out)?,
            Pending::Cc => self.encode_cc(out)?,
            Pending::Dr(reason) => Tpdu::DisconnectRequest(DisconnectRequest {
                dst_ref: self.remote_ref,
                // A DR refusing a CR carries no source reference of ours.
                src_ref: if matches!(self.close_reason, Some(CloseReason::LocalRefused { .. })) {
                    0
                } else {
                    self.local_ref
                },
                reason,
                params: Params::EMPTY,
                user_data: &[],
            })
            .encode_frame(out)?,
            Pending::Dc => Tpdu::DisconnectConfirm(DisconnectConfirm {
                dst_ref: self.remote_ref,
                src_ref: self.local_ref,
                params: Params::EMPTY,
            })
            .encode_frame(out)?,
            Pending::Er(cause) => {
                let echo = [Param::InvalidTpdu(&self.er_echo[..self.er_echo_len])];
                Tpdu::Error(ErrorTpdu {
                    dst_ref: self.remote_ref,
                    cause,
                    params: Params::list(&echo),
                })
                .encode_frame(out)?
            }
            Pending::Ed(data, len) => {
                Tpdu::ExpeditedData(ed::class0(&data[..usize::from(len)])).encode_frame(out)?
            }
            Pending::Raw => {
                let need = tpkt::HEADER_LEN + self.raw_len;
                if out.len() < need {
                    return Err(EncodeError::BufferTooSmall { needed: need });
                }
                tpkt::encode_header(self.raw_len, out)?;
                out[tpkt::HEADER_LEN..need].copy_from_slice(&self.raw[..self.raw_len]);
                self.raw_len = 0;
                need
            }
        };
        self.pending.pop();
        if self.pending.is_empty() && self.state == State::Closing {
            self.state = State::Closed;
            if let Some(r) = self.close_reason {
                self.emit(Event::Closed(r));
            }
        }
        Ok(Some(n))
    }

    pub(super) fn encode_cr(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        // C0, C1, C2, F0 and up to 100 extra parameters (200 octets of 2-octet minimum).
        let mut list = [Param::Version(0); 104];
        let mut n = 0;
        let mut add = |p| {
            if n < list.len() {
                list[n] = p;
                n += 1;
            }
        };
        add(Param::TpduSize(self.cfg.tpdu_size));
        if let Some(t) = &self.cfg.calling_tsap {
            add(Param::CallingTsap(t.as_bytes()));
        }
        if let Some(t) = &self.cfg.called_tsap {
            add(Param::CalledTsap(t.as_bytes()));
        }
        if let Some(p) = self.cfg.preferred_max_tpdu_size {
            add(Param::PreferredMaxTpduSize((p / 128).max(1)));
        }
        if self.cfg.expedited {
            add(ed::option_param());
        }
        if let Ok(extra) = Params::parse(TpduKind::ConnectionRequest, &self.cfg.extra_params, 0) {
            extra.iter().for_each(&mut add);
        }
        Tpdu::ConnectionRequest(Connect {
            src_ref: self.local_ref,
            params: Params::list(&list[..n]),
            ..Connect::default()
        })
        .encode_frame(out)
    }

    fn encode_cc(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut list = [Param::Version(0); 5];
        let mut n = 0;
        list[n] = Param::TpduSize(self.tpdu_size);
        n += 1;
        if let Some(t) = &self.calling_tsap {
            list[n] = Param::CallingTsap(t.as_bytes());
            n += 1;
        }
        if let Some(t) = &self.called_tsap {
            list[n] = Param::CalledTsap(t.as_bytes());
            n += 1;
        }
        if let Some(p) = self.preferred_max {
            list[n] = Param::PreferredMaxTpduSize(u32::try_from(p / 128).unwrap_or(u32::MAX));
            n += 1;
        }
        if self.expedited {
            // Selected in answer to a CR that proposed it; absent means non-use.
            list[n] = ed::option_param();
            n += 1;
        }
        Tpdu::ConnectionConfirm(Connect {
            dst_ref: self.remote_ref,
            src_ref: self.local_ref,
            params: Params::list(&list[..n]),
            ..Connect::default()
        })
        .encode_frame(out)
    }
}
