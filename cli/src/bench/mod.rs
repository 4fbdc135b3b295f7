//! `proto bench`: each scenario measured next to a plain-TCP baseline in the same run,
//! reported as a ratio (these machines are noisy; absolute figures are not compared
//! across runs).

mod cotp;
mod idle;
mod report;
mod tcp;
mod tcpcl;

use anyhow::Result;

/// `tcpcl-many`: sessions, bundles per session and bundle size (200 × 20 × 256 KiB).
const MANY: (usize, usize, u64) = (200, 20, 256 << 10);
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
    /// Bytes for the bulk scenarios (default: 256 MiB for COTP, 1 GiB for TCPCL; a
    /// smaller value also sends fewer bundles per session in `tcpcl-many`).
    #[arg(long, value_name = "N")]
    bytes: Option<u64>,
    /// Run the TCPCL scenarios over TLS 1.3 (certificates generated on the fly;
    /// baselines through a plain rustls stream pair).
    #[arg(long)]
    tls: bool,
    /// Round trips for the RTT scenarios.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    rounds: usize,
    /// Connections (sessions) for the setup-rate scenarios.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    connections: usize,
    /// Established sessions held by `tcpcl-idle` (both ends in this process).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    idle: usize,
    /// Interleaved trials per scenario; the reported ratio is the median.
    #[arg(long, value_name = "N", default_value_t = 3)]
    repeat: usize,
    /// Run only the scenarios whose name contains this (e.g. `rtt`, `tcpcl-bulk`).
    #[arg(long, value_name = "NAME")]
    only: Option<String>,
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
    let n = args.repeat;
    let want = |name: &str| args.only.as_deref().is_none_or(|o| name.contains(o));
    if matches!(args.suite, Suite::Cotp | Suite::All) {
        if want("cotp-bulk") {
            report(report::repeat(n, || {
                cotp::bulk(args.bytes.unwrap_or(256 << 20))
            })?);
        }
        if want("cotp-rtt") {
            report(report::repeat(n, || cotp::rtt(args.rounds))?);
        }
        if want("cotp-connects") {
            report(report::repeat(n, || cotp::connects(args.connections))?);
        }
    }
    let tcpcl_names = [
        "tcpcl-bulk",
        "tcpcl-rtt",
        "tcpcl-rtt-handler",
        "tcpcl-sessions",
        "tcpcl-many",
        "tcpcl-idle",
        "tcpcl-idle-listener",
    ];
    if matches!(args.suite, Suite::Tcpcl | Suite::All) && tcpcl_names.iter().any(|s| want(s)) {
        let setup = tcpcl::Setup::new(args.tls)?;
        // First and once: it measures the memory sessions add to this process, which
        // memory freed by earlier scenarios (or trials) would hide.
        if want("tcpcl-idle") {
            report(idle::idle(&setup, args.idle)?);
        }
        if want("tcpcl-bulk") {
            report(report::repeat(n, || {
                tcpcl::bulk(&setup, args.bytes.unwrap_or(1 << 30))
            })?);
        }
        if want("tcpcl-rtt") {
            report(report::repeat(n, || tcpcl::rtt(&setup, args.rounds))?);
        }
        if want("tcpcl-rtt-handler") {
            report(report::repeat(n, || {
                tcpcl::rtt_handler(&setup, args.rounds)
            })?);
        }
        if want("tcpcl-sessions") {
            report(report::repeat(n, || {
                tcpcl::sessions(&setup, args.connections)
            })?);
        }
        if want("tcpcl-many") {
            // With a smaller --bytes, fewer bundles per session (at least one), so
            // quick runs stay quick.
            let (conns, per, size) = MANY;
            let per = match args.bytes {
                Some(b) => usize::try_from(b / (conns as u64 * size))
                    .unwrap_or(per)
                    .clamp(1, per),
                None => per,
            };
            report(report::repeat(n, || tcpcl::many(&setup, conns, per, size))?);
        }

        // Only on request (it holds thousands of sessions): --only tcpcl-idle-listener.
        if args.only.as_deref() == Some("tcpcl-idle-listener") {
            report(idle::listener(args.idle)?);
        }
    }
    // TCPCLv3 (RFC 7242, no TLS): the same bulk and round-trip scenarios and targets,
    // with a v3 sender against the dual-version listener.
    if matches!(args.suite, Suite::Tcpcl | Suite::All) && !args.tls {
        let setup = tcpcl::Setup::v3();
        if want("tcpcl3-bulk") {
            report(report::repeat(n, || {
                tcpcl::bulk(&setup, args.bytes.unwrap_or(1 << 30))
            })?);
        }
        if want("tcpcl3-rtt") {
            report(report::repeat(n, || tcpcl::rtt(&setup, args.rounds))?);
        }
    }
    Ok(true)
}
