//! What makes `proto` installable like any other tool: the version string with the
//! git revision it was built from, shell completions and manual pages, all generated
//! from the clap definitions so they never drift from the real flags.

use crate::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// `proto --version`: the crate version and, when built from a git checkout, the
/// short revision (`0.1.0 (git 1a2b3c4)`); see `build.rs`.
pub(crate) const VERSION: &str = env!("PROTO_VERSION");

/// `proto completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto completions bash > ~/.local/share/bash-completion/completions/proto\n  \
    proto completions zsh > ~/.zfunc/_proto\n  \
    proto completions fish > ~/.config/fish/completions/proto.fish")]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    shell: clap_complete::Shell,
}

/// `proto manpage`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    proto manpage > proto.1 && man ./proto.1\n  \
    proto manpage --out-dir ~/.local/share/man/man1   # proto.1, proto-cotp-send.1, ...")]
pub(crate) struct ManpageArgs {
    /// Write proto.1 and one page per subcommand (proto-cotp-send.1, ...) into DIR
    /// (created if missing) instead of printing proto.1.
    #[arg(short, long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script for the chosen shell.
pub(crate) fn completions(a: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "proto", &mut std::io::stdout().lock());
    Ok(())
}

/// Prints `proto.1`, or writes every page into `--out-dir`.
pub(crate) fn manpage(a: &ManpageArgs) -> Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    match &a.out_dir {
        None => {
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout().lock()) {
                // A reader that stops early (`proto manpage | head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r.context("writing the manual page")?,
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let n = write_pages(&cmd, "proto", dir)?;
            eprintln!("wrote {n} manual page(s) to {}", dir.display());
        }
    }
    Ok(())
}

/// Writes the page of `cmd` as `name.1` and recurses into its subcommands (named
/// `name-sub`, as git does); returns how many pages were written.
fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> Result<usize> {
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    // After `build`, clap gives each subcommand the display name `proto-cotp-send`,
    // which the page uses as its title.
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .context("rendering a manual page")?;
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        n += write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(n)
}
