//! `proto bench`: each scenario measured next to a plain-TCP baseline in the same run,
//! reported as a ratio (these machines are noisy; absolute figures are not compared
//! across runs).

mod cotp;
mod report;
mod tcp;

use anyhow::Result;
use report::Outcome;

/// Which scenarios to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Suite {
    /// COTP scenarios.
    Cotp,
    /// TCPCL scenarios.
    Tcpcl,
    /// Everything.
    All,
}

/// Arguments of `proto bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  proto bench cotp\n  proto bench all --bytes 268435456 --json")]
pub(crate) struct BenchArgs {
    /// Scenarios to run.
    #[arg(value_enum, default_value = "all")]
    suite: Suite,
    /// Bytes for the bulk scenarios (default: 256 MiB for COTP, 1 GiB for TCPCL).
    #[arg(long, value_name = "N")]
    bytes: Option<u64>,
    /// Run the TCPCL scenarios over TLS 1.3.
    #[arg(long)]
    tls: bool,
    /// Round trips for the RTT scenarios.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    rounds: usize,
    /// Connections for the setup-rate scenarios.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    connections: usize,
    /// Interleaved trials per scenario; the reported ratio is the median.
    #[arg(long, value_name = "N", default_value_t = 3)]
    repeat: usize,
    /// One JSON object per scenario instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &BenchArgs) -> Result<bool> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut report = |o: Outcome| {
        if args.json {
            println!("{}", o.json());
        } else {
            println!("{}", o.text());
        }
        outcomes.push(o);
    };
    if matches!(args.suite, Suite::Cotp | Suite::All) {
        let n = args.repeat;
        report(report::repeat(n, || {
            cotp::bulk(args.bytes.unwrap_or(256 << 20))
        })?);
        report(report::repeat(n, || cotp::rtt(args.rounds))?);
        report(report::repeat(n, || cotp::connects(args.connections))?);
    }
    if matches!(args.suite, Suite::Tcpcl | Suite::All) {
        let _ = args.tls;
        eprintln!("TCPCL scenarios: not built yet (they arrive with the TCPCL agent)");
    }
    Ok(true)
}
