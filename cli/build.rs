//! Puts the git revision into `proto --version` (`PROTO_VERSION`): `0.1.0 (git
//! 1a2b3c4)` in a git checkout, plain `0.1.0` where there is none (a crates.io or
//! tarball install) or git is missing. `PROTO_GIT_REV` overrides the revision, for
//! packagers that build outside the repository.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rerun-if-env-changed=PROTO_GIT_REV");
    let rev = match std::env::var("PROTO_GIT_REV") {
        Ok(r) if !r.trim().is_empty() => Some(r.trim().to_owned()),
        _ => {
            // Rebuild when HEAD moves (checkout) or gets a new commit (its reflog).
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                let dir = PathBuf::from(dir);
                for f in [dir.join("HEAD"), dir.join("logs").join("HEAD")] {
                    if f.exists() {
                        println!("cargo:rerun-if-changed={}", f.display());
                    }
                }
            }
            git(&["rev-parse", "--short", "HEAD"])
        }
    };
    let full = match rev {
        Some(r) => format!("{version} (git {r})"),
        None => version,
    };
    println!("cargo:rustc-env=PROTO_VERSION={full}");
}
