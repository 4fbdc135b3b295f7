//! `--tcpcl-version`: which TCPCL version `send` speaks (3 or 4) and which versions
//! `listen` accepts (3, 4 or any), applied to the agent configuration
//! (`tcpcl_version`, `accept_tcpcl_version`).

use proto_net::tcpcl::Config;

/// The versions `listen --tcpcl-version` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Both; the peer's contact header decides.
    Any,
    /// Only this version.
    Only(u8),
}

/// Parses `3`, `4` or `any` (`listen`).
pub(super) fn parse_accept(text: &str) -> Result<Accept, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "any" => Ok(Accept::Any),
        v => parse_version(v).map(Accept::Only),
    }
}

/// Parses `3` or `4` (`send`).
pub(super) fn parse_version(text: &str) -> Result<u8, String> {
    match text.trim() {
        "3" => Ok(3),
        "4" => Ok(4),
        _ => Err(format!("{text:?} is not a TCPCL version (3 or 4)")),
    }
}

/// Applies `listen --tcpcl-version` (absent: the configuration file's setting).
pub(super) fn apply_accept(c: &mut Config, a: Option<Accept>) {
    match a {
        Some(Accept::Any) => c.accept_tcpcl_version = None,
        Some(Accept::Only(v)) => c.accept_tcpcl_version = Some(v),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpcl_versions_parse() {
        assert_eq!(parse_accept("any"), Ok(Accept::Any));
        assert_eq!(parse_accept("ANY"), Ok(Accept::Any));
        assert_eq!(parse_accept("3"), Ok(Accept::Only(3)));
        assert_eq!(parse_accept("4"), Ok(Accept::Only(4)));
        assert!(parse_accept("5").is_err());
        assert_eq!(parse_version("3"), Ok(3));
        assert!(parse_version("any").is_err());
        let mut c = Config::default();
        apply_accept(&mut c, Some(Accept::Only(3)));
        assert_eq!(c.accept_tcpcl_version, Some(3));
        apply_accept(&mut c, None);
        assert_eq!(c.accept_tcpcl_version, Some(3));
        apply_accept(&mut c, Some(Accept::Any));
        assert_eq!(c.accept_tcpcl_version, None);
    }
}
