//! Sizes on the command line, one syntax for every protocol's flags: `123`, `64K`,
//! `10M`, `1G`, `4KiB` (binary multiples).

/// Parses a byte count with an optional K/M/G suffix (binary multiples, any case,
/// `B`, `KB`, `KiB` spellings accepted).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 65536, 64K, 10M)"))?;
    let mult: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?}: unknown size suffix {suffix:?} (K, M, G)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// [`parse_size`] for a limit held in memory: at least one byte, and addressable.
pub(crate) fn parse_limit(text: &str) -> Result<usize, String> {
    let n = parse_size(text)?;
    if n == 0 {
        return Err(format!("{text:?}: the limit must be at least 1 byte"));
    }
    usize::try_from(n).map_err(|_| format!("{text:?} is too large for this machine"))
}

/// A byte count for people: `10 bytes`, `64 KiB`, `16 MiB`, `1.5 GiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_in_any_spelling() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("300M"), Ok(300 << 20));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("7b"), Ok(7));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        assert!(parse_size("17179869184G").is_err());
    }

    #[test]
    fn limits_are_at_least_one_byte() {
        assert_eq!(parse_limit("1"), Ok(1));
        assert_eq!(parse_limit("16M"), Ok(16 << 20));
        assert!(parse_limit("0").is_err());
        assert!(parse_limit("0K").is_err());
    }

    #[test]
    fn human_sizes_name_the_unit() {
        assert_eq!(human(10), "10 bytes");
        assert_eq!(human(1023), "1023 bytes");
        assert_eq!(human(1024), "1 KiB");
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
