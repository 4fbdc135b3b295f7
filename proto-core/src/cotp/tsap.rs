//! Transport selectors (TSAPs) as a small fixed-capacity value, so configs and
//! connections carry them without heap allocation.

use core::fmt;

/// A transport selector of at most [`Tsap::MAX_LEN`] octets.
///
/// ```
/// use proto_core::cotp::Tsap;
/// let t: Tsap = "0102".parse()?;
/// assert_eq!(t.as_bytes(), &[0x01, 0x02]);
/// assert_eq!(t.to_string(), "0102");
/// # Ok::<(), proto_core::cotp::TsapError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tsap {
    bytes: [u8; Tsap::MAX_LEN],
    len: u8,
}

/// A TSAP that cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TsapError {
    /// Longer than [`Tsap::MAX_LEN`] octets.
    #[error("TSAP of {0} octets is longer than the 32 supported")]
    TooLong(usize),
    /// Not an even number of hex digits.
    #[error("TSAP must be an even number of hex digits")]
    BadHex,
}

impl Tsap {
    /// The longest TSAP accepted (X.224 leaves it to the header length; 32 octets covers
    /// every profile in use).
    pub const MAX_LEN: usize = 32;

    /// A TSAP from raw octets.
    pub fn new(bytes: &[u8]) -> Result<Tsap, TsapError> {
        if bytes.len() > Tsap::MAX_LEN {
            return Err(TsapError::TooLong(bytes.len()));
        }
        let mut t = Tsap {
            bytes: [0; Tsap::MAX_LEN],
            len: bytes.len() as u8,
        };
        t.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(t)
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::str::FromStr for Tsap {
    type Err = TsapError;

    fn from_str(s: &str) -> Result<Tsap, TsapError> {
        let s = s.trim().trim_start_matches("0x");
        if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TsapError::BadHex);
        }
        let mut buf = [0u8; Tsap::MAX_LEN];
        let n = s.len() / 2;
        if n > Tsap::MAX_LEN {
            return Err(TsapError::TooLong(n));
        }
        for (i, slot) in buf.iter_mut().enumerate().take(n) {
            *slot = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| TsapError::BadHex)?;
        }
        Tsap::new(&buf[..n])
    }
}

impl fmt::Display for Tsap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Tsap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tsap({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_limits() {
        assert_eq!("".parse::<Tsap>().unwrap().as_bytes(), &[] as &[u8]);
        assert_eq!("0x0100".parse::<Tsap>().unwrap().as_bytes(), &[1, 0]);
        assert_eq!("010".parse::<Tsap>(), Err(TsapError::BadHex));
        assert_eq!("zz".parse::<Tsap>(), Err(TsapError::BadHex));
        assert_eq!(Tsap::new(&[0; 33]), Err(TsapError::TooLong(33)));
        assert_eq!("00".repeat(33).parse::<Tsap>(), Err(TsapError::TooLong(33)));
    }
}
