//! The `proto` command: send, listen, decode, bench and demo for COTP over TPKT
//! (RFC 1006 / X.224 class 0) and TCPCLv4 (RFC 9174).

mod addr;
mod arrivals;
mod bench;
mod config_file;
mod cotp;
mod decode;
mod demo;
mod install;
mod json;
mod logging;
mod progress;
mod shutdown;
mod tcpcl;
mod units;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// COTP/TPKT and TCPCLv4 from the command line.
#[derive(Debug, Parser)]
#[command(name = "proto", version = install::VERSION, about, propagate_version = true)]
pub(crate) struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace (wins over RUST_LOG).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet",
          help_heading = "Global options")]
    verbose: u8,
    /// Less log output: -q errors only, -qq nothing (wins over RUST_LOG); also hides
    /// progress bars.
    #[arg(short, long, global = true, action = clap::ArgAction::Count,
          help_heading = "Global options")]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// COTP over TPKT (RFC 1006 / X.224 class 0): listen and send.
    #[command(subcommand)]
    Cotp(cotp::CotpCommand),
    /// TCPCLv4 (RFC 9174): listen, send, and certificates for TLS.
    #[command(subcommand)]
    Tcpcl(tcpcl::TcpclCommand),
    /// Decode captured bytes into a readable tree (or JSON).
    Decode(decode::DecodeArgs),
    /// Measure throughput, latency and setup rate against plain TCP in the same run.
    Bench(bench::BenchArgs),
    /// Run both protocols end to end over loopback and verify every byte.
    Demo,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(install::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    Manpage(install::ManpageArgs),
}

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    logging::set_verbosity(cli.verbose, cli.quiet);
    if cli.quiet > 0 {
        progress::hide_all();
    }
    let result = match &cli.command {
        Command::Cotp(cmd) => cotp::run(cmd).map(|()| true),
        Command::Tcpcl(cmd) => tcpcl::run(cmd).map(|()| true),
        Command::Decode(args) => decode::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo => demo::run(),
        Command::Completions(args) => install::completions(args).map(|()| true),
        Command::Manpage(args) => install::manpage(args).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, each said once. Many errors print their
/// source in their own message (`"I/O error: {0}"` with `#[from]`); anyhow's `{:#}`
/// would then repeat it ("Address already in use (os error 98): Address already in
/// use (os error 98)"), so a cause that the text before it already contains is
/// left out.
pub(crate) fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || last.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        last = text;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_line;
    use anyhow::Context;

    /// An error that prints its source in its own message, as `thiserror`'s
    /// `#[error("...: {0}")]` with `#[from]` does.
    #[derive(Debug)]
    struct Wraps(std::io::Error);

    impl std::fmt::Display for Wraps {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "I/O error: {}", self.0)
        }
    }

    impl std::error::Error for Wraps {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let text = io.to_string();
        let e = Err::<(), _>(Wraps(io)).context("binding 127.0.0.1:102");
        let line = error_line(&e.unwrap_err());
        assert_eq!(line, format!("binding 127.0.0.1:102: I/O error: {text}"));
        assert_eq!(line.matches(&text).count(), 1);
    }

    #[test]
    fn distinct_causes_are_all_kept_in_order() {
        let e = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(error_line(&e), "outer: middle: inner");
    }
}
