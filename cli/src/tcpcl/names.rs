//! `listen --keep-names`: turning the file name a bundle carries (sender-chosen, so
//! hostile until proven otherwise) into a path inside `--out-dir`, and publishing a
//! stored bundle there without ever leaving that directory or replacing a file.
//!
//! A name is a relative path of `/`-separated components. Refused outright: an empty
//! name, an absolute path, `.` or `..` components, empty components (`a//b`),
//! backslashes, NUL or other control characters, components over 255 bytes. While the
//! directories on the way are created, an existing symbolic link (or a file where a
//! directory should be) refuses the name too, so nothing is written through a link.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Longest component accepted (the usual file system limit).
const MAX_COMPONENT: usize = 255;

/// How many `NAME.N` alternatives are tried when NAME exists.
const MAX_ALTERNATIVES: u32 = 1000;

/// Why a carried name is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refused {
    /// The name is empty.
    Empty,
    /// The name starts with `/`.
    Absolute,
    /// A `.` or `..` component.
    DotComponent,
    /// An empty component (`a//b`, a trailing `/`).
    EmptyComponent,
    /// A backslash, NUL or other control character.
    BadCharacter(char),
    /// A component longer than 255 bytes.
    TooLong,
    /// A symbolic link (or a non-directory) on the way, at this path below
    /// `--out-dir`.
    NotADirectory(String),
    /// Every alternative name is taken.
    Taken,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Empty => f.write_str("the name is empty"),
            Refused::Absolute => f.write_str("it is an absolute path"),
            Refused::DotComponent => f.write_str("it has a . or .. component"),
            Refused::EmptyComponent => f.write_str("it has an empty component"),
            Refused::BadCharacter(c) => write!(f, "it contains {c:?}"),
            Refused::TooLong => write!(f, "a component is longer than {MAX_COMPONENT} bytes"),
            Refused::NotADirectory(p) => {
                write!(f, "{p} is a link or not a directory")
            }
            Refused::Taken => write!(f, "the name and {MAX_ALTERNATIVES} alternatives exist"),
        }
    }
}

/// The components of `name` if it is an acceptable relative path.
pub(super) fn sanitise(name: &str) -> Result<Vec<&str>, Refused> {
    if name.is_empty() {
        return Err(Refused::Empty);
    }
    if name.starts_with('/') {
        return Err(Refused::Absolute);
    }
    if let Some(c) = name.chars().find(|c| *c == '\\' || c.is_control()) {
        return Err(Refused::BadCharacter(c));
    }
    let parts: Vec<&str> = name.split('/').collect();
    for p in &parts {
        match *p {
            "" => return Err(Refused::EmptyComponent),
            "." | ".." => return Err(Refused::DotComponent),
            p if p.len() > MAX_COMPONENT => return Err(Refused::TooLong),
            _ => {}
        }
    }
    Ok(parts)
}

/// Failure to publish under a carried name.
#[derive(Debug)]
pub(super) enum PublishError {
    /// The name is not used (the bundle can still be stored under its number).
    Refused(Refused),
    /// The file system failed.
    Io(std::io::Error),
}

/// Gives the complete file at `temp` (inside `out_dir`) the path `out_dir/name`,
/// creating the directories on the way; `NAME.1`, `NAME.2`, … if it exists. Returns
/// the path used.
pub(super) fn publish_named(
    temp: &Path,
    out_dir: &Path,
    name: &str,
) -> Result<PathBuf, PublishError> {
    let parts = sanitise(name).map_err(PublishError::Refused)?;
    let (last, dirs) = parts
        .split_last()
        .ok_or(PublishError::Refused(Refused::Empty))?;
    let mut dir = out_dir.to_path_buf();
    for (i, d) in dirs.iter().enumerate() {
        dir.push(d);
        let shown = || parts[..=i].join("/");
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Err(PublishError::Refused(Refused::NotADirectory(shown()))),
            Err(e) if e.kind() == ErrorKind::NotFound => match std::fs::create_dir(&dir) {
                Ok(()) => {}
                // Made by a concurrent bundle: check what it is.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let m = std::fs::symlink_metadata(&dir).map_err(PublishError::Io)?;
                    if !m.file_type().is_dir() {
                        return Err(PublishError::Refused(Refused::NotADirectory(shown())));
                    }
                }
                Err(e) => return Err(PublishError::Io(e)),
            },
            Err(e) => return Err(PublishError::Io(e)),
        }
    }
    for n in 0..=MAX_ALTERNATIVES {
        let file = if n == 0 {
            (*last).to_string()
        } else {
            format!("{last}.{n}")
        };
        let dst = dir.join(file);
        // A hard link never replaces an existing name, link or not.
        match std::fs::hard_link(temp, &dst) {
            Ok(()) => {
                if let Err(e) = std::fs::remove_file(temp) {
                    log::warn!("cannot remove {}: {e}", temp.display());
                }
                return Ok(dst);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(PublishError::Io(e)),
        }
    }
    Err(PublishError::Refused(Refused::Taken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        let table: &[(&str, Result<Vec<&str>, Refused>)] = &[
            ("a.txt", Ok(vec!["a.txt"])),
            ("dir/sub/a b.txt", Ok(vec!["dir", "sub", "a b.txt"])),
            ("..a/b..", Ok(vec!["..a", "b.."])),
            ("", Err(Refused::Empty)),
            ("/etc/passwd", Err(Refused::Absolute)),
            ("../x", Err(Refused::DotComponent)),
            ("a/../../x", Err(Refused::DotComponent)),
            ("a/./x", Err(Refused::DotComponent)),
            ("..", Err(Refused::DotComponent)),
            ("a//b", Err(Refused::EmptyComponent)),
            ("a/", Err(Refused::EmptyComponent)),
            ("a\\..\\b", Err(Refused::BadCharacter('\\'))),
            ("a\0b", Err(Refused::BadCharacter('\0'))),
            ("a\nb", Err(Refused::BadCharacter('\n'))),
        ];
        for (name, want) in table {
            assert_eq!(&sanitise(name), want, "{name:?}");
        }
        let long = "x".repeat(256);
        assert_eq!(sanitise(&long), Err(Refused::TooLong));
        assert!(sanitise(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn links_on_the_way_are_refused_and_files_never_replaced() {
        let dir = std::env::temp_dir().join(format!("proto-names-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.join("out");
        let outside = dir.join("outside");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
        let temp = |n: &str| {
            let t = out.join(format!(".{n}.part"));
            std::fs::write(&t, n).unwrap();
            t
        };
        let t = temp("one");
        assert!(matches!(
            publish_named(&t, &out, "link/x"),
            Err(PublishError::Refused(Refused::NotADirectory(p))) if p == "link"
        ));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // A file where a directory should be.
        std::fs::write(out.join("plain"), b"").unwrap();
        assert!(matches!(
            publish_named(&t, &out, "plain/x"),
            Err(PublishError::Refused(Refused::NotADirectory(_)))
        ));
        // Created on the way; a second file of the same name gets NAME.1.
        assert_eq!(
            publish_named(&t, &out, "a/b/c.txt").unwrap(),
            out.join("a/b/c.txt")
        );
        assert!(!t.exists());
        let t2 = temp("two");
        assert_eq!(
            publish_named(&t2, &out, "a/b/c.txt").unwrap(),
            out.join("a/b/c.txt.1")
        );
        assert_eq!(std::fs::read(out.join("a/b/c.txt")).unwrap(), b"one");
        // A final component that is a link is not written through.
        std::os::unix::fs::symlink(outside.join("f"), out.join("l")).unwrap();
        let t3 = temp("three");
        assert_eq!(publish_named(&t3, &out, "l").unwrap(), out.join("l.1"));
        assert!(!outside.join("f").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
