//! The contact header both peers send first (RFC 9174 §4.2), and recognition of
//! headers from other protocol versions.
//!
//! A TCPCLv4 contact header is six bytes: magic `dtn!`, version 4, flags. A peer
//! speaking TCPCLv3 (RFC 7242) sends magic, version 3, flags, keepalive interval and an
//! SDNV-prefixed EID; that header is decoded in full so a session can report exactly
//! whom it refused. Any other version is reported as such after the version byte, since
//! nothing is known about what follows it.

use std::fmt;

use super::error::{finish, DecodeError, Fail};
use super::flags::{ContactFlags, V3ContactFlags};
use super::limits::DecodeLimits;
use super::sdnv;
use crate::tpkt::Status;
use crate::wire::{encode_with, EncodeError, Reader};

/// The contact header magic, `dtn!`.
pub const MAGIC: [u8; 4] = *b"dtn!";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 4;
/// The TCPCLv3 version number (RFC 7242).
pub const VERSION_3: u8 = 3;

/// A TCPCLv4 contact header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ContactHeader {
    /// Contact header flags (CAN_TLS; reserved bits are kept).
    pub flags: ContactFlags,
}

impl ContactHeader {
    /// Encoded length of a v4 contact header.
    pub const LEN: usize = 6;

    /// A header with the given flags.
    pub const fn new(flags: ContactFlags) -> Self {
        ContactHeader { flags }
    }

    /// Encoded length ([`ContactHeader::LEN`]).
    pub const fn encoded_len(&self) -> usize {
        Self::LEN
    }

    /// Encodes the header into `out`, returning the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_with(out, Self::LEN, |w| {
            w.put_slice(&MAGIC)?;
            w.put_u8(VERSION)?;
            w.put_u8(self.flags.0)
        })
    }
}

/// A TCPCLv3 contact header (RFC 7242 §4.1), borrowing its EID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactHeaderV3<'a> {
    /// Contact header flags.
    pub flags: V3ContactFlags,
    /// Keepalive interval in seconds.
    pub keepalive: u16,
    /// The sender's endpoint ID, as sent (not validated).
    pub eid: &'a [u8],
}

impl ContactHeaderV3<'_> {
    /// The EID as text, if it is valid UTF-8.
    pub fn eid_str(&self) -> Option<&str> {
        std::str::from_utf8(self.eid).ok()
    }

    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        8usize
            .saturating_add(sdnv::encoded_len(self.eid.len() as u64))
            .saturating_add(self.eid.len())
    }

    /// Encodes the header into `out` (useful to test how a v4 peer reacts to it).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_with(out, self.encoded_len(), |w| {
            w.put_slice(&MAGIC)?;
            w.put_u8(VERSION_3)?;
            w.put_u8(self.flags.0)?;
            w.put_u16(self.keepalive)?;
            sdnv::write(self.eid.len() as u64, w)?;
            w.put_slice(self.eid)
        })
    }
}

/// A contact header of any version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contact<'a> {
    /// TCPCLv4, the version this crate speaks.
    V4(ContactHeader),
    /// TCPCLv3: decoded so the mismatch can be reported precisely.
    V3(ContactHeaderV3<'a>),
    /// Any other version; only the magic and version byte were consumed.
    Other {
        /// The version byte seen.
        version: u8,
    },
}

impl<'a> Contact<'a> {
    /// Decodes a contact header at the start of `buf`, returning it and the number of
    /// bytes it occupies. Incomplete input is `Partial`; a wrong magic is an error as
    /// soon as the first differing byte arrives.
    ///
    /// ```
    /// use proto_core::tcpcl::{Contact, ContactFlags, ContactHeader, Status};
    /// let bytes = [0x64, 0x74, 0x6e, 0x21, 0x04, 0x01];
    /// assert_eq!(
    ///     Contact::decode(&bytes)?,
    ///     Status::Complete((Contact::V4(ContactHeader::new(ContactFlags::CAN_TLS)), 6))
    /// );
    /// assert_eq!(Contact::decode(&bytes[..4])?, Status::Partial { needed: 1 });
    /// assert!(Contact::decode(b"GET / HTTP/1.1").is_err());
    /// # Ok::<(), proto_core::tcpcl::DecodeError>(())
    /// ```
    pub fn decode(buf: &'a [u8]) -> Result<Status<(Self, usize)>, DecodeError> {
        Self::decode_with(buf, &DecodeLimits::UNLIMITED)
    }

    /// [`Contact::decode`] with a bound on the v3 EID (see [`DecodeLimits`]).
    pub fn decode_with(
        buf: &'a [u8],
        limits: &DecodeLimits,
    ) -> Result<Status<(Self, usize)>, DecodeError> {
        // Check the magic bytes we have before asking for more, so a peer speaking
        // another protocol is refused at once.
        for (offset, (&found, &want)) in buf.iter().zip(MAGIC.iter()).enumerate() {
            if found != want {
                return Err(DecodeError::BadMagic { offset, found });
            }
        }
        let mut r = Reader::new(buf);
        finish(decode_inner(&mut r, limits).map(|c| (c, r.position())))
    }

    /// The version a peer speaks, from the first five octets of its contact header
    /// (magic and version), without waiting for the rest: what a passive side that
    /// serves several versions needs before it may answer (see
    /// [`v3`](super::v3) for the RFC 7242 §4.1 deviation this implies). A wrong
    /// magic is an error as soon as the first differing octet arrives.
    ///
    /// ```
    /// use proto_core::tcpcl::{Contact, Status};
    /// assert_eq!(Contact::peek_version(b"dtn!\x03\x00")?, Status::Complete(3));
    /// assert_eq!(Contact::peek_version(b"dtn")?, Status::Partial { needed: 2 });
    /// assert!(Contact::peek_version(b"dtx").is_err());
    /// # Ok::<(), proto_core::tcpcl::DecodeError>(())
    /// ```
    pub fn peek_version(buf: &[u8]) -> Result<Status<u8>, DecodeError> {
        for (offset, (&found, &want)) in buf.iter().zip(MAGIC.iter()).enumerate() {
            if found != want {
                return Err(DecodeError::BadMagic { offset, found });
            }
        }
        match buf.get(MAGIC.len()) {
            Some(&v) => Ok(Status::Complete(v)),
            None => Ok(Status::Partial {
                needed: MAGIC.len() + 1 - buf.len(),
            }),
        }
    }

    /// The version byte of the header.
    pub const fn version(&self) -> u8 {
        match self {
            Contact::V4(_) => VERSION,
            Contact::V3(_) => VERSION_3,
            Contact::Other { version } => *version,
        }
    }

    /// The v4 header, if this is one.
    pub const fn v4(&self) -> Option<ContactHeader> {
        match self {
            Contact::V4(h) => Some(*h),
            _ => None,
        }
    }
}

fn decode_inner<'a>(r: &mut Reader<'a>, limits: &DecodeLimits) -> Result<Contact<'a>, Fail> {
    r.take(MAGIC.len())?;
    let version = r.u8()?;
    match version {
        VERSION => Ok(Contact::V4(ContactHeader {
            flags: ContactFlags(r.u8()?),
        })),
        VERSION_3 => {
            let flags = V3ContactFlags(r.u8()?);
            let keepalive = r.u16()?;
            let len_offset = r.position();
            let len = sdnv::read(r, "EID length")?;
            let n = limits.check("EID", len_offset, r.position(), len, 0)?;
            let eid = r.take(n)?;
            Ok(Contact::V3(ContactHeaderV3 {
                flags,
                keepalive,
                eid,
            }))
        }
        version => Ok(Contact::Other { version }),
    }
}

impl fmt::Display for Contact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::V4(h) => write!(f, "TCPCLv4 contact header (flags {})", h.flags),
            Contact::V3(h) => {
                write!(
                    f,
                    "TCPCLv3 contact header (flags {}, keepalive {} s, EID ",
                    h.flags, h.keepalive
                )?;
                match h.eid_str() {
                    Some(s) => write!(f, "{s:?})"),
                    None => write!(f, "{:02x?})", h.eid),
                }
            }
            Contact::Other { version } => write!(f, "TCPCL version {version} contact header"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn tcpcl_contact_vectors() {
        let v3 = hex("64746e21030f001e0764746e3a2f2f61");
        let cases: Vec<(Vec<u8>, Contact<'_>, &str)> = vec![
            (
                hex("64746e210400"),
                Contact::V4(ContactHeader::new(ContactFlags(0))),
                "TCPCLv4 contact header (flags 0)",
            ),
            (
                hex("64746e210401"),
                Contact::V4(ContactHeader::new(ContactFlags::CAN_TLS)),
                "TCPCLv4 contact header (flags CAN_TLS)",
            ),
            (
                hex("64746e2104ff"),
                Contact::V4(ContactHeader::new(ContactFlags(0xff))),
                "TCPCLv4 contact header (flags CAN_TLS|0xfe)",
            ),
            (
                v3.clone(),
                Contact::V3(ContactHeaderV3 {
                    flags: V3ContactFlags(0x0f),
                    keepalive: 30,
                    eid: b"dtn://a",
                }),
                "TCPCLv3 contact header (flags ENA_ACK|ENA_FRAG|ENA_REFUSE|ENA_LENGTH, keepalive 30 s, EID \"dtn://a\")",
            ),
            (
                hex("64746e2105"),
                Contact::Other { version: 5 },
                "TCPCL version 5 contact header",
            ),
        ];
        for (bytes, want, text) in &cases {
            assert_eq!(
                Contact::decode(bytes),
                Ok(Status::Complete((*want, bytes.len()))),
                "{bytes:02x?}"
            );
            assert_eq!(want.to_string(), *text);
            for cut in 0..bytes.len() {
                match Contact::decode(&bytes[..cut]) {
                    Ok(Status::Partial { needed }) => {
                        assert!(needed >= 1 && needed <= bytes.len() - cut, "cut {cut}")
                    }
                    other => panic!("cut {cut} of {bytes:02x?}: {other:?}"),
                }
            }
            // Re-encode and compare bytes.
            let mut out = vec![0u8; bytes.len()];
            let n = match want {
                Contact::V4(h) => h.encode(&mut out),
                Contact::V3(h) => h.encode(&mut out),
                Contact::Other { .. } => continue,
            };
            assert_eq!(n, Ok(bytes.len()));
            assert_eq!(&out, bytes);
        }
        // Trailing bytes are left for the caller.
        let mut more = hex("64746e210400");
        more.extend_from_slice(&[7, 0, 0]);
        assert_eq!(
            Contact::decode(&more),
            Ok(Status::Complete((Contact::V4(ContactHeader::default()), 6)))
        );
        assert_eq!(Contact::decode(&v3).map(|_| ()), Ok(()));
    }

    #[test]
    fn tcpcl_contact_errors() {
        let cases: Vec<(Vec<u8>, DecodeError)> = vec![
            (
                b"GET".to_vec(),
                DecodeError::BadMagic {
                    offset: 0,
                    found: b'G',
                },
            ),
            (
                b"dtx!\x04\x00".to_vec(),
                DecodeError::BadMagic {
                    offset: 2,
                    found: b'x',
                },
            ),
            (
                hex("64746e2103000000ffffffffffffffffffff7f"),
                DecodeError::SdnvOverflow {
                    field: "EID length",
                    offset: 8,
                },
            ),
        ];
        for (bytes, err) in &cases {
            assert_eq!(Contact::decode(bytes), Err(*err), "{bytes:02x?}");
        }
        // A huge EID length is Partial without a limit and TooLarge with one, and
        // never allocates.
        let huge = hex("64746e2103000000" /* EID length 2^63 */);
        let mut huge = huge;
        huge.extend_from_slice(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
        assert!(matches!(
            Contact::decode(&huge),
            Ok(Status::Partial { .. }) | Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(
            Contact::decode_with(&huge, &DecodeLimits::new(1024)),
            Err(DecodeError::TooLarge {
                field: "EID",
                offset: 8,
                len: 1 << 63,
                max: 1024
            })
        );
        let mut out = [0u8; 5];
        assert_eq!(
            ContactHeader::default().encode(&mut out),
            Err(EncodeError::BufferTooSmall { needed: 6 })
        );
    }
}
