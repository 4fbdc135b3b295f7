//! The `proto` command: send, listen, decode, bench and demo for COTP over TPKT
//! (RFC 1006 / X.224 class 0) and TCPCLv4 (RFC 9174).

mod arrivals;
mod bench;
mod config_file;
mod cotp;
mod decode;
mod demo;
mod logging;
mod progress;
mod shutdown;
mod tcpcl;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// COTP/TPKT and TCPCLv4 from the command line.
#[derive(Debug, Parser)]
#[command(name = "proto", version, about, propagate_version = true)]
struct Cli {
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
}

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Cotp(cmd) => cotp::run(cmd).map(|()| true),
        Command::Tcpcl(cmd) => tcpcl::run(cmd).map(|()| true),
        Command::Decode(args) => decode::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo => demo::run(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
