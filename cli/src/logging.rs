//! Logging to stderr through `env_logger`, with a level a `--config` file can set after
//! start-up.
//!
//! The logger is installed before the arguments are parsed (so every message is
//! formatted the same way), but `proto tcpcl` learns its `log_level` only when it loads
//! the configuration file. The installed logger therefore wraps an `env_logger` that
//! [`set_default_level`] replaces. `RUST_LOG`, when set, wins over the file: it is the
//! user's choice for this one run, like a flag.
//!
//! `-v`/`-q` ([`set_verbosity`]) move the level up or down from the default and win
//! over both: a flag typed on this command line is the most specific choice there is.

use std::sync::{OnceLock, RwLock};

use env_logger::{Builder, Env, Logger};
use log::{Log, Metadata, Record};

/// The level used when neither `RUST_LOG` nor a configuration file names one.
const DEFAULT_LEVEL: &str = "warn";

/// The installed logger: an `env_logger` that can be swapped.
struct Reloadable(RwLock<Logger>);

impl Reloadable {
    fn with<T>(&self, f: impl FnOnce(&Logger) -> T) -> T {
        f(&self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Log for Reloadable {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.with(|l| l.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        self.with(|l| l.log(record));
    }

    fn flush(&self) {
        self.with(Log::flush);
    }
}

static LOGGER: OnceLock<Reloadable> = OnceLock::new();

/// The level `-v`/`-q` chose, if any; a configuration file's level then does not apply.
static FROM_FLAGS: OnceLock<&'static str> = OnceLock::new();

/// `env_logger` configured from `RUST_LOG` / `RUST_LOG_STYLE`, with `default` as the
/// filter when `RUST_LOG` is unset.
fn build(default: &str) -> Logger {
    Builder::from_env(Env::default().default_filter_or(default)).build()
}

/// Installs the logger: `RUST_LOG`, else `warn`.
pub(crate) fn init() {
    let logger = LOGGER.get_or_init(|| Reloadable(RwLock::new(build(DEFAULT_LEVEL))));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(logger.with(Logger::filter));
    }
}

/// Makes `filter` (an `env_logger` filter such as `info` or `proto_net=debug`) the
/// level when `RUST_LOG` is unset; with `RUST_LOG` set, nothing changes.
pub(crate) fn set_default_level(filter: &str) {
    if FROM_FLAGS.get().is_some() {
        return;
    }
    install(build(filter));
}

/// Replaces the installed logger's filter.
fn install(new: Logger) {
    let Some(logger) = LOGGER.get() else {
        return;
    };
    log::set_max_level(new.filter());
    *logger
        .0
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = new;
}

/// The level for `verbose` times `-v` and `quiet` times `-q`, counted from the default
/// (`warn`): `-v` info, `-vv` debug, `-vvv` trace; `-q` error, `-qq` off. `None`
/// when neither was given.
pub(crate) fn verbosity_level(verbose: u8, quiet: u8) -> Option<&'static str> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if verbose == 0 && quiet == 0 {
        return None;
    }
    let at = (2 + i32::from(verbose) - i32::from(quiet)).clamp(0, 5);
    LEVELS.get(at as usize).copied()
}

/// Applies `-v`/`-q`: the level they choose replaces `RUST_LOG` and any configuration
/// file's level for this run.
pub(crate) fn set_verbosity(verbose: u8, quiet: u8) {
    let Some(level) = verbosity_level(verbose, quiet) else {
        return;
    };
    let _ = FROM_FLAGS.set(level);
    // RUST_LOG is ignored here on purpose (its module directives would outlive the
    // flag's level); RUST_LOG_STYLE still applies.
    let style = std::env::var("RUST_LOG_STYLE").unwrap_or_default();
    install(
        Builder::new()
            .parse_filters(level)
            .parse_write_style(&style)
            .build(),
    );
}

/// Turns a configuration file's `log_level` into an `env_logger` filter.
///
/// Accepts a level name in any case — Rust's (`off`, `error`, `warn`, `info`, `debug`,
/// `trace`) or the seed agent's Python names (`warning`, `critical`) — or a
/// comma-separated list of `[module=]level` directives as in `RUST_LOG`. The error
/// names what is wrong, for a message that names the key.
pub(crate) fn filter_from_config(text: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let (module, level) = match directive.split_once('=') {
            Some((m, l)) if !m.trim().is_empty() => (Some(m.trim()), l.trim()),
            Some(_) => return Err(format!("{directive:?} names no module before `=`")),
            None => (None, directive),
        };
        let level = match level.to_ascii_lowercase().as_str() {
            "off" => "off",
            "error" | "critical" | "fatal" => "error",
            "warn" | "warning" => "warn",
            "info" => "info",
            "debug" => "debug",
            "trace" => "trace",
            _ => {
                return Err(format!(
                    "{level:?} is not a log level (off, error, warn, info, debug, trace)"
                ))
            }
        };
        out.push(module.map_or_else(|| level.to_owned(), |m| format!("{m}={level}")));
    }
    if out.is_empty() {
        return Err("no level given (off, error, warn, info, debug, trace)".into());
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_counts_from_warn() {
        assert_eq!(verbosity_level(0, 0), None);
        assert_eq!(verbosity_level(1, 0), Some("info"));
        assert_eq!(verbosity_level(2, 0), Some("debug"));
        assert_eq!(verbosity_level(3, 0), Some("trace"));
        assert_eq!(verbosity_level(9, 0), Some("trace"));
        assert_eq!(verbosity_level(0, 1), Some("error"));
        assert_eq!(verbosity_level(0, 2), Some("off"));
        assert_eq!(verbosity_level(0, 7), Some("off"));
    }

    #[test]
    fn config_levels_become_filters() {
        assert_eq!(filter_from_config("INFO").as_deref(), Ok("info"));
        assert_eq!(filter_from_config("warning").as_deref(), Ok("warn"));
        assert_eq!(filter_from_config("critical").as_deref(), Ok("error"));
        assert_eq!(
            filter_from_config("warn, proto_net=Debug").as_deref(),
            Ok("warn,proto_net=debug")
        );
        assert!(filter_from_config("verbose")
            .unwrap_err()
            .contains("\"verbose\" is not a log level"));
        assert!(filter_from_config("").is_err());
        assert!(filter_from_config("=info").is_err());
        assert!(filter_from_config("proto=loud").is_err());
    }
}
