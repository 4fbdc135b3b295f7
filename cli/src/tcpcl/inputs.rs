//! What `proto tcpcl send` sends: the FILE, DIR and `-` arguments expanded into one
//! input per bundle, each with the relative name that may travel with it, opened
//! before the session starts; and the reader that hashes a file while it streams.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Deepest directory nesting `send DIR` descends into (a loop guard; symbolic links
/// are not followed anyway).
const MAX_DEPTH: usize = 64;

/// One bundle to send.
pub(super) enum Input {
    /// A regular file: its path (as shown to the user), the open file, its length,
    /// and its name relative to the argument it came from (`/`-separated).
    File {
        path: PathBuf,
        file: File,
        len: u64,
        name: String,
    },
    /// Standard input, length unknown.
    Stdin,
}

impl Input {
    /// How the user refers to this input.
    pub(super) fn display(&self) -> String {
        match self {
            Input::File { path, .. } => path.display().to_string(),
            Input::Stdin => "stdin".to_string(),
        }
    }
}

/// Opens every argument: a file as itself (named by its last component), `-` as
/// stdin, a directory as every regular file under it in name order (named by their
/// path below it). Symbolic links inside a directory are skipped with a warning.
pub(super) fn expand(args: &[PathBuf]) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for path in args {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        if meta.is_dir() {
            let before = inputs.len();
            walk(path, "", 0, &mut inputs)?;
            if inputs.len() == before {
                bail!("{} holds no regular files", path.display());
            }
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "stdin".to_string());
        inputs.push(open(path, name)?);
    }
    Ok(inputs)
}

fn open(path: &Path, name: String) -> Result<Input> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a directory", path.display());
    }
    Ok(Input::File {
        path: path.to_path_buf(),
        file,
        len: meta.len(),
        name,
    })
}

fn walk(dir: &Path, prefix: &str, depth: usize, inputs: &mut Vec<Input>) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!(
            "{} is nested more than {MAX_DEPTH} directories deep",
            dir.display()
        );
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let path = e.path();
        let Some(file_name) = e.file_name().to_str().map(str::to_string) else {
            log::warn!("skipping {}: its name is not UTF-8", path.display());
            continue;
        };
        let name = format!("{prefix}{file_name}");
        let kind = e
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if kind.is_dir() {
            walk(&path, &format!("{name}/"), depth + 1, inputs)?;
        } else if kind.is_file() {
            inputs.push(open(&path, name)?);
        } else {
            log::warn!(
                "skipping {}: not a regular file (links are not followed)",
                path.display()
            );
        }
    }
    Ok(())
}

/// A reader that feeds what it reads to a SHA-256 the caller keeps a handle on.
pub(super) struct HashingReader<R> {
    inner: R,
    hash: Arc<Mutex<Sha256>>,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`; the returned handle yields the hash of everything read.
    pub(super) fn new(inner: R) -> (Self, Arc<Mutex<Sha256>>) {
        let hash = Arc::new(Mutex::new(Sha256::new()));
        (
            HashingReader {
                inner,
                hash: hash.clone(),
            },
            hash,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        super::lock(&self.hash).update(&buf[..n]);
        Ok(n)
    }
}
