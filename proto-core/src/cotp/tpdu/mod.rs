//! The ten X.224 TPDU types: decoding borrowed from the input, encoding into the
//! caller's buffer.
//!
//! A TPDU is a length indicator (LI, the header length not counting itself), a fixed
//! part that depends on the type, a variable part of parameters, and user data after
//! the header. Decoding takes exactly one TPDU (a TPKT payload); [`decode_frame`] takes
//! a TPKT frame.

use super::checksum;
use super::codes::{DisconnectReason, Format, RejectCause, TpduKind};
use super::error::{FrameError, TpduError};
use super::params::Params;
use crate::tpkt::{self, Status};
use crate::wire::{encode_with, EncodeError, Overflow, Reader, Writer};

mod types;

pub use types::{
    Connect, Data, DataAck, DisconnectConfirm, DisconnectRequest, ErrorTpdu, ExpeditedAck,
    ExpeditedData, Reject,
};

/// One decoded or to-be-encoded TPDU.
///
/// ```
/// use proto_core::cotp::{Tpdu, TpduSize};
/// // The CR the icspacket client sends (TPKT header stripped).
/// let cr = [0x11, 0xe0, 0, 0, 0, 1, 0, 0xc0, 1, 0x0a, 0xc1, 2, 0, 0, 0xc2, 2, 0, 1];
/// let Tpdu::ConnectionRequest(c) = Tpdu::decode(&cr)? else { panic!("not a CR") };
/// assert_eq!(c.src_ref, 1);
/// assert_eq!(c.params.tpdu_size(), Some(TpduSize::S1024));
/// assert_eq!(c.params.called_tsap(), Some(&[0u8, 1][..]));
///
/// let mut out = [0u8; 64];
/// let n = Tpdu::ConnectionRequest(c).encode(&mut out)?;
/// assert_eq!(&out[..n], &cr);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tpdu<'a> {
    /// CR.
    ConnectionRequest(Connect<'a>),
    /// CC.
    ConnectionConfirm(Connect<'a>),
    /// DR.
    DisconnectRequest(DisconnectRequest<'a>),
    /// DC.
    DisconnectConfirm(DisconnectConfirm<'a>),
    /// DT.
    Data(Data<'a>),
    /// ED.
    ExpeditedData(ExpeditedData<'a>),
    /// AK.
    DataAck(DataAck<'a>),
    /// EA.
    ExpeditedAck(ExpeditedAck<'a>),
    /// RJ.
    Reject(Reject<'a>),
    /// ER.
    Error(ErrorTpdu<'a>),
}

/// Length of a class 0 DT header (LI, code, EOT/NR).
pub const DT_CLASS0_HEADER_LEN: usize = 3;

/// Largest header a length indicator can describe (LI 255 is reserved).
pub const MAX_HEADER_LEN: usize = 255;

impl<'a> Tpdu<'a> {
    /// The type of this TPDU.
    pub fn kind(&self) -> TpduKind {
        match self {
            Tpdu::ConnectionRequest(_) => TpduKind::ConnectionRequest,
            Tpdu::ConnectionConfirm(_) => TpduKind::ConnectionConfirm,
            Tpdu::DisconnectRequest(_) => TpduKind::DisconnectRequest,
            Tpdu::DisconnectConfirm(_) => TpduKind::DisconnectConfirm,
            Tpdu::Data(_) => TpduKind::Data,
            Tpdu::ExpeditedData(_) => TpduKind::ExpeditedData,
            Tpdu::DataAck(_) => TpduKind::DataAck,
            Tpdu::ExpeditedAck(_) => TpduKind::ExpeditedAck,
            Tpdu::Reject(_) => TpduKind::Reject,
            Tpdu::Error(_) => TpduKind::Error,
        }
    }

    /// The variable part.
    pub fn params(&self) -> Params<'a> {
        match self {
            Tpdu::ConnectionRequest(t) | Tpdu::ConnectionConfirm(t) => t.params,
            Tpdu::DisconnectRequest(t) => t.params,
            Tpdu::DisconnectConfirm(t) => t.params,
            Tpdu::Data(t) => t.params,
            Tpdu::ExpeditedData(t) => t.params,
            Tpdu::DataAck(t) => t.params,
            Tpdu::ExpeditedAck(t) => t.params,
            Tpdu::Reject(t) => t.params,
            Tpdu::Error(t) => t.params,
        }
    }

    /// The bytes after the header (user data of CR/CC/DR, data of DT/ED; empty for the
    /// other types).
    pub fn user_data(&self) -> &'a [u8] {
        match self {
            Tpdu::ConnectionRequest(t) | Tpdu::ConnectionConfirm(t) => t.user_data,
            Tpdu::DisconnectRequest(t) => t.user_data,
            Tpdu::Data(t) => t.data,
            Tpdu::ExpeditedData(t) => t.data,
            _ => &[],
        }
    }

    /// Decodes one TPDU in normal format. `buf` is exactly the TPDU (a TPKT payload).
    pub fn decode(buf: &'a [u8]) -> Result<Self, TpduError> {
        Self::decode_with(buf, Format::Normal)
    }

    /// Decodes one TPDU whose data-phase types use `format`.
    pub fn decode_with(buf: &'a [u8], format: Format) -> Result<Self, TpduError> {
        let mut r = Reader::new(buf);
        let li = r.u8().map_err(|_| TpduError::Truncated {
            field: "length indicator",
            offset: 0,
            needed: 1,
        })?;
        let li_err = |problem| TpduError::LengthIndicator {
            offset: 0,
            li,
            problem,
        };
        if li == 255 {
            return Err(li_err("255 is reserved"));
        }
        if li == 0 {
            return Err(li_err("a header has at least a code octet"));
        }
        let header_end = 1 + usize::from(li);
        if header_end > buf.len() {
            return Err(li_err(
                "runs past the end of the TPDU (TPKT length too small)",
            ));
        }
        let code = buf[1];
        let kind = TpduKind::from_code(code).ok_or(TpduError::UnknownType { offset: 1, code })?;
        let mut h = Reader::new(&buf[..header_end]);
        h.u8().ok();
        h.u8().ok();
        let after = &buf[header_end..];
        let need =
            |h: &mut Reader<'a>, n: usize, field: &'static str| -> Result<&'a [u8], TpduError> {
                h.take(n).map_err(|_| TpduError::LengthIndicator {
                    offset: 0,
                    li,
                    problem: match field {
                        "" => "too small for the TPDU type",
                        _ => "too small for the fixed part of the header",
                    },
                })
            };
        let u16_at = |v: &[u8]| u16::from_be_bytes([v[0], v[1]]);
        let seq = |h: &mut Reader<'a>| -> Result<(bool, u32), TpduError> {
            Ok(match format {
                Format::Normal => {
                    let b = need(h, 1, "nr")?[0];
                    (b & 0x80 != 0, u32::from(b & 0x7f))
                }
                Format::Extended => {
                    let v = need(h, 4, "nr")?;
                    let n = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                    (n & 0x8000_0000 != 0, n & 0x7fff_ffff)
                }
            })
        };
        let no_data = |after: &[u8]| {
            if after.is_empty() {
                Ok(())
            } else {
                Err(li_err(
                    "shorter than the TPDU, but this TPDU type carries no data",
                ))
            }
        };
        let tpdu = match kind {
            TpduKind::ConnectionRequest | TpduKind::ConnectionConfirm => {
                let f = need(&mut h, 5, "fixed")?;
                let c = Connect {
                    credit: code & 0x0f,
                    dst_ref: u16_at(f),
                    src_ref: u16_at(&f[2..]),
                    class: f[4] >> 4,
                    options: f[4] & 0x0f,
                    params: Params::parse(kind, h.rest(), h.position())?,
                    user_data: after,
                };
                if kind == TpduKind::ConnectionRequest {
                    Tpdu::ConnectionRequest(c)
                } else {
                    Tpdu::ConnectionConfirm(c)
                }
            }
            TpduKind::DisconnectRequest => {
                let f = need(&mut h, 5, "fixed")?;
                Tpdu::DisconnectRequest(DisconnectRequest {
                    dst_ref: u16_at(f),
                    src_ref: u16_at(&f[2..]),
                    reason: DisconnectReason(f[4]),
                    params: Params::parse(kind, h.rest(), h.position())?,
                    user_data: after,
                })
            }
            TpduKind::DisconnectConfirm => {
                let f = need(&mut h, 4, "fixed")?;
                no_data(after)?;
                Tpdu::DisconnectConfirm(DisconnectConfirm {
                    dst_ref: u16_at(f),
                    src_ref: u16_at(&f[2..]),
                    params: Params::parse(kind, h.rest(), h.position())?,
                })
            }
            TpduKind::Data => {
                // The class 0/1 form has no destination reference: LI is exactly 2.
                let dst_ref = if format == Format::Normal && li == 2 {
                    None
                } else {
                    Some(u16_at(need(&mut h, 2, "fixed")?))
                };
                let (eot, nr) = seq(&mut h)?;
                Tpdu::Data(Data {
                    format,
                    dst_ref,
                    eot,
                    nr,
                    params: Params::parse(kind, h.rest(), h.position())?,
                    data: after,
                })
            }
            TpduKind::ExpeditedData => {
                // RFC 1006's class 0 ED has a DT's shape: LI exactly 2, no DST-REF.
                let dst_ref = if format == Format::Normal && li == 2 {
                    None
                } else {
                    Some(u16_at(need(&mut h, 2, "fixed")?))
                };
                let (eot, nr) = seq(&mut h)?;
                Tpdu::ExpeditedData(ExpeditedData {
                    format,
                    dst_ref,
                    eot,
                    nr,
                    params: Params::parse(kind, h.rest(), h.position())?,
                    data: after,
                })
            }
            TpduKind::DataAck | TpduKind::Reject => {
                let dst_ref = u16_at(need(&mut h, 2, "fixed")?);
                let (top, nr) = seq(&mut h)?;
                let credit = match format {
                    Format::Normal => u16::from(code & 0x0f),
                    Format::Extended => u16_at(need(&mut h, 2, "fixed")?),
                };
                no_data(after)?;
                let field = match format {
                    Format::Normal => "YR-TU-NR (bit 8 must be zero)",
                    Format::Extended => "YR-TU-NR (bit 32 must be zero)",
                };
                if top {
                    return Err(TpduError::InvalidValue {
                        field,
                        offset: 4,
                        value: buf.get(4).copied().unwrap_or(0),
                    });
                }
                let params = Params::parse(kind, h.rest(), h.position())?;
                if kind == TpduKind::DataAck {
                    Tpdu::DataAck(DataAck {
                        format,
                        credit,
                        dst_ref,
                        nr,
                        params,
                    })
                } else {
                    Tpdu::Reject(Reject {
                        format,
                        credit,
                        dst_ref,
                        nr,
                        params,
                    })
                }
            }
            TpduKind::ExpeditedAck => {
                let dst_ref = u16_at(need(&mut h, 2, "fixed")?);
                let (_, nr) = seq(&mut h)?;
                no_data(after)?;
                Tpdu::ExpeditedAck(ExpeditedAck {
                    format,
                    dst_ref,
                    nr,
                    params: Params::parse(kind, h.rest(), h.position())?,
                })
            }
            TpduKind::Error => {
                let f = need(&mut h, 3, "fixed")?;
                no_data(after)?;
                Tpdu::Error(ErrorTpdu {
                    dst_ref: u16_at(f),
                    cause: RejectCause(f[2]),
                    params: Params::parse(kind, h.rest(), h.position())?,
                })
            }
        };
        if tpdu.params().has_checksum() && !checksum::verify(buf) {
            let offset = checksum_param_offset(buf, header_end, &tpdu).unwrap_or(0);
            return Err(TpduError::Checksum { offset });
        }
        Ok(tpdu)
    }

    /// Length of the header's fixed part after the LI, for this TPDU.
    fn fixed_len(&self) -> usize {
        let seq = |f: Format| match f {
            Format::Normal => 1,
            Format::Extended => 4,
        };
        match self {
            Tpdu::ConnectionRequest(_)
            | Tpdu::ConnectionConfirm(_)
            | Tpdu::DisconnectRequest(_) => 6,
            Tpdu::DisconnectConfirm(_) => 5,
            Tpdu::Data(t) => 1 + t.dst_ref.map_or(0, |_| 2) + seq(t.format),
            Tpdu::ExpeditedData(t) => 1 + t.dst_ref.map_or(0, |_| 2) + seq(t.format),
            Tpdu::ExpeditedAck(t) => 3 + seq(t.format),
            Tpdu::DataAck(DataAck { format, .. }) | Tpdu::Reject(Reject { format, .. }) => {
                3 + seq(*format) + if *format == Format::Extended { 2 } else { 0 }
            }
            Tpdu::Error(_) => 4,
        }
    }

    /// Offset of the parameter block within the encoded TPDU.
    pub fn params_offset(&self) -> usize {
        1 + self.fixed_len()
    }

    /// Header length including the LI octet.
    pub fn header_len(&self) -> usize {
        1 + self.fixed_len() + self.params().encoded_len()
    }

    /// Total encoded length (header and data).
    pub fn encoded_len(&self) -> usize {
        self.header_len() + self.user_data().len()
    }

    /// Encodes the TPDU into `out`; returns the number of bytes written.
    ///
    /// A checksum parameter, if listed, is computed over the encoded TPDU. Fails with
    /// [`EncodeError::ValueTooLarge`] if the header would exceed 254 octets.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let li = u8::try_from(self.header_len() - 1)
            .ok()
            .filter(|&li| li < 255)
            .ok_or(EncodeError::ValueTooLarge {
                field: "length indicator",
            })?;
        let mut checksum_at = None;
        let n = encode_with(out, self.encoded_len(), |w| {
            w.put_u8(li)?;
            checksum_at = self.encode_body(w)?;
            Ok(())
        })?;
        if let Some(at) = checksum_at {
            let ck = checksum::generate(&out[..n], at);
            out[at..at + 2].copy_from_slice(&ck);
        }
        Ok(n)
    }

    /// Encodes the TPDU behind a TPKT header; returns the number of bytes written.
    pub fn encode_frame(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.encoded_len();
        let needed = tpkt::HEADER_LEN + len;
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall { needed });
        }
        let (head, body) = out.split_at_mut(tpkt::HEADER_LEN);
        tpkt::encode_header(len, head)?;
        Ok(tpkt::HEADER_LEN + self.encode(body)?)
    }

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<Option<usize>, Overflow> {
        let seq = |w: &mut Writer<'_>, f: Format, top: bool, nr: u32| match f {
            Format::Normal => w.put_u8(u8::from(top) << 7 | (nr & 0x7f) as u8),
            Format::Extended => w.put_u32(u32::from(top) << 31 | (nr & 0x7fff_ffff)),
        };
        let code = self.kind().code();
        match self {
            Tpdu::ConnectionRequest(c) | Tpdu::ConnectionConfirm(c) => {
                w.put_u8(code | (c.credit & 0x0f))?;
                w.put_u16(c.dst_ref)?;
                w.put_u16(c.src_ref)?;
                w.put_u8((c.class & 0x0f) << 4 | (c.options & 0x0f))?;
            }
            Tpdu::DisconnectRequest(d) => {
                w.put_u8(code)?;
                w.put_u16(d.dst_ref)?;
                w.put_u16(d.src_ref)?;
                w.put_u8(d.reason.0)?;
            }
            Tpdu::DisconnectConfirm(d) => {
                w.put_u8(code)?;
                w.put_u16(d.dst_ref)?;
                w.put_u16(d.src_ref)?;
            }
            Tpdu::Data(d) => {
                w.put_u8(code)?;
                if let Some(r) = d.dst_ref {
                    w.put_u16(r)?;
                }
                seq(w, d.format, d.eot, d.nr)?;
            }
            Tpdu::ExpeditedData(d) => {
                w.put_u8(code)?;
                if let Some(r) = d.dst_ref {
                    w.put_u16(r)?;
                }
                seq(w, d.format, d.eot, d.nr)?;
            }
            Tpdu::DataAck(DataAck {
                format,
                credit,
                dst_ref,
                nr,
                ..
            })
            | Tpdu::Reject(Reject {
                format,
                credit,
                dst_ref,
                nr,
                ..
            }) => {
                let low = if *format == Format::Normal {
                    (*credit & 0x0f) as u8
                } else {
                    0
                };
                w.put_u8(code | low)?;
                w.put_u16(*dst_ref)?;
                seq(w, *format, false, *nr)?;
                if *format == Format::Extended {
                    w.put_u16(*credit)?;
                }
            }
            Tpdu::ExpeditedAck(e) => {
                w.put_u8(code)?;
                w.put_u16(e.dst_ref)?;
                seq(w, e.format, false, e.nr)?;
            }
            Tpdu::Error(e) => {
                w.put_u8(code)?;
                w.put_u16(e.dst_ref)?;
                w.put_u8(e.cause.0)?;
            }
        }
        let checksum_at = self.params().encode(w)?;
        w.put_slice(self.user_data())?;
        Ok(checksum_at)
    }
}

/// Offset of the checksum parameter's code octet within `buf`.
fn checksum_param_offset(buf: &[u8], header_end: usize, tpdu: &Tpdu<'_>) -> Option<usize> {
    let mut at = 1 + tpdu.fixed_len();
    while at + 1 < header_end {
        if buf[at] == super::params::code::CHECKSUM {
            return Some(at);
        }
        at += 2 + usize::from(buf[at + 1]);
    }
    None
}

/// Decodes the first TPKT frame in `buf` and the TPDU it carries (normal format).
///
/// Returns the TPDU and the frame length, or [`Status::Partial`] when `buf` does not yet
/// hold a whole frame. Error offsets count from the start of `buf`.
///
/// ```
/// use proto_core::cotp::{decode_frame, Tpdu};
/// use proto_core::tpkt::Status;
/// let dc = [0x03, 0x00, 0x00, 0x0a, 0x05, 0xc0, 0x00, 0x01, 0x00, 0x01];
/// let Status::Complete((Tpdu::DisconnectConfirm(d), len)) = decode_frame(&dc, 65535)? else { panic!() };
/// assert_eq!((d.dst_ref, d.src_ref, len), (1, 1, 10));
/// # Ok::<(), proto_core::cotp::FrameError>(())
/// ```
pub fn decode_frame(buf: &[u8], max_frame: usize) -> Result<Status<(Tpdu<'_>, usize)>, FrameError> {
    match tpkt::parse_frame(buf, max_frame)? {
        Status::Partial { needed } => Ok(Status::Partial { needed }),
        Status::Complete(frame) => {
            let tpdu = Tpdu::decode(frame.payload)
                .map_err(|e| FrameError::Tpdu(e.shifted(tpkt::HEADER_LEN)))?;
            Ok(Status::Complete((tpdu, frame.len)))
        }
    }
}

/// Writes the TPKT header and class 0 DT header for `payload_len` bytes of data that
/// the caller sends right after, so bulk data is framed without being copied.
/// Returns the 7 header bytes.
pub fn class0_dt_frame_header(payload_len: usize, eot: bool) -> Result<[u8; 7], EncodeError> {
    let mut h = [0u8; tpkt::HEADER_LEN + DT_CLASS0_HEADER_LEN];
    tpkt::encode_header(DT_CLASS0_HEADER_LEN + payload_len, &mut h)?;
    h[4] = 2;
    h[5] = TpduKind::Data.code();
    h[6] = if eot { 0x80 } else { 0 };
    Ok(h)
}
