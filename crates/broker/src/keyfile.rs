//! Key and token files: written whole, and read only when their kind and mode say nobody else
//! could have put them there.
//!
//! The KEK keyring, the sealing keys, the CoCo signing key, the token signing key and the
//! admin token all go through [`persist`] and (except the keyring, which has its own stricter
//! reader) [`read`].
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Whether a key file may be a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Symlinks {
    /// Followed: a file the configuration names (Kubernetes mounts each file of a Secret volume
    /// as a link into the volume's current data); the file it points to is checked.
    Follow,
    /// Refused: a file the broker keeps at its own place in its data directory, where a link
    /// would let whoever planted it choose the key.
    Refuse,
}

/// Where a key file that is rewritten in place (a keyring, the sealing keys) really is: the
/// file a link names when links are followed, so that its lock files sit beside that file and
/// a rotation renames the new contents over it, not over the link (which would leave the file,
/// on a volume that is backed up say, with the old keys). `path` itself when links are refused.
///
/// # Errors
/// The operating system's, when the link cannot be resolved.
pub fn resolved(path: &Path, symlinks: Symlinks) -> std::io::Result<PathBuf> {
    match symlinks {
        Symlinks::Follow => fs::canonicalize(path),
        Symlinks::Refuse => Ok(path.to_owned()),
    }
}

/// Why a key file was not written or not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Refused for its kind or mode (someone else could have written it).
    #[error("{}: {problem}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The operating system's error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or the temporary file, or the directory) that failed.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Larger than the reader allows.
    #[error("{}: larger than {max} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Puts `bytes` at `path` whole: a uniquely named temporary file beside it (created
/// exclusively, mode 0600) is written and synced, then hard-linked into place when
/// `create_new` (never replacing a file: `Ok(false)` when one is there, left as it is, as when
/// another process created it meanwhile) or renamed over it; the temporary name is removed
/// whatever happens and the directory is synced. A temporary file a crash left behind blocks
/// nothing. `Ok(true)`: the file now holds `bytes`.
///
/// # Errors
/// [`KeyFileError::Io`] naming what failed.
pub fn persist(path: &Path, bytes: &[u8], create_new: bool) -> Result<bool, KeyFileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix)
        .map_err(|_| io(path)(std::io::Error::other("no randomness")))?;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp-{}", hex::encode(suffix)));
    let tmp = dir.join(name);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let placed = written.map_err(io(&tmp)).and_then(|()| {
        let placed = if create_new {
            fs::hard_link(&tmp, path)
        } else {
            fs::rename(&tmp, path)
        };
        match placed {
            Ok(()) => Ok(true),
            Err(e) if create_new && e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(path)(e)),
        }
    });
    let _ = fs::remove_file(&tmp);
    let placed = placed?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(placed)
}

/// The contents of the key file at `path`, read with [`read`]'s checks; when there is none,
/// `make`'s bytes, put in place first with [`persist`]. A file another process created
/// meanwhile is read, never replaced.
///
/// # Errors
/// [`read`]'s and [`persist`]'s, and `make`'s own.
pub fn read_or_create<E: From<KeyFileError>>(
    path: &Path,
    symlinks: Symlinks,
    forbidden_mode: u32,
    problem: &'static str,
    max_len: u64,
    make: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, E>,
) -> Result<Zeroizing<Vec<u8>>, E> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let made = make()?;
            if persist(path, &made, true)? {
                return Ok(made);
            }
        }
        Err(e) => return Err(io(path)(e).into()),
    }
    Ok(read(path, symlinks, forbidden_mode, problem, max_len)?)
}

/// Why [`open_regular`] did not open a file.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The operating system's error.
    Io(std::io::Error),
    /// Refused for its kind: a link where links are refused, not a regular file, or replaced
    /// between the checks and the opening.
    Refused(&'static str),
}

/// The regular file at `path`, opened, with the metadata of the file opened: a symbolic link
/// is refused unless `symlinks` follows it, anything but a regular file is refused before it
/// is opened (opening a FIFO would wait for a writer), and a file replaced between the checks
/// and the opening is refused. Shared by the key files and the KEK keyring.
pub(crate) fn open_regular(
    path: &Path,
    symlinks: Symlinks,
) -> Result<(fs::File, fs::Metadata), OpenError> {
    let link = if symlinks == Symlinks::Refuse {
        let meta = fs::symlink_metadata(path).map_err(OpenError::Io)?;
        if meta.file_type().is_symlink() {
            return Err(OpenError::Refused(
                "a symbolic link where the broker keeps its own files; name the file it points \
                 to in the configuration instead",
            ));
        }
        Some(meta)
    } else {
        None
    };
    if !fs::metadata(path).map_err(OpenError::Io)?.is_file() {
        return Err(OpenError::Refused("not a regular file"));
    }
    let file = fs::File::open(path).map_err(OpenError::Io)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if link.is_some_and(|l| (l.dev(), l.ino()) != (meta.dev(), meta.ino())) {
        return Err(OpenError::Refused("replaced while it was opened"));
    }
    if !meta.is_file() {
        return Err(OpenError::Refused("not a regular file"));
    }
    Ok((file, meta))
}

/// The contents of the key file at `path`: a regular file (reached through a symbolic link
/// only with [`Symlinks::Follow`]) with none of the `forbidden_mode` bits (else refused with
/// `problem`), at most `max_len` bytes. The checks are made on the file opened, so a file
/// swapped for another between them is refused.
///
/// # Errors
/// [`KeyFileError::Refused`]: a refused link, not a regular file, a forbidden mode bit;
/// [`KeyFileError::Io`]; [`KeyFileError::TooLarge`].
pub fn read(
    path: &Path,
    symlinks: Symlinks,
    forbidden_mode: u32,
    problem: &'static str,
    max_len: u64,
) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let refused = |problem| KeyFileError::Refused {
        path: path.to_owned(),
        problem,
    };
    let (file, meta) = open_regular(path, symlinks).map_err(|e| match e {
        OpenError::Io(e) => io(path)(e),
        OpenError::Refused(problem) => refused(problem),
    })?;
    if meta.permissions().mode() & forbidden_mode != 0 {
        return Err(refused(problem));
    }
    if !owned_by_us_or_root(meta.uid()) {
        return Err(refused(
            "owned by another user, who could have written it (chown it to the broker's user \
             or root)",
        ));
    }
    // Sized from the file up front: a buffer that grew by doubling would leave copies of the
    // key in the blocks it freed, which `Zeroizing` never sees.
    let mut file = file;
    let bytes = read_zeroizing(&mut file, Some(meta.len()), max_len, 0).map_err(io(path))?;
    if bytes.len() as u64 > max_len {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
            max: max_len,
        });
    }
    Ok(bytes)
}

/// Reads `reader` to its end or to more than `max` bytes (the caller checks which) without a
/// copy of what it read left behind: the buffer is sized up front (from `size`, a regular
/// file's length, else `max` + 1; plus `slack` bytes of room that every read is given) and
/// never grows by reallocation, which would free unzeroized blocks. A file longer than its
/// size said is moved once to a buffer of the cap, the first one zeroized as it drops.
///
/// # Errors
/// The reader's.
pub fn read_zeroizing(
    reader: &mut dyn std::io::Read,
    size: Option<u64>,
    max: u64,
    slack: usize,
) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let room = |n: u64| {
        usize::try_from(n.min(max).saturating_add(1))
            .unwrap_or(usize::MAX)
            .saturating_add(slack)
    };
    let mut buf = Zeroizing::new(vec![0u8; room(size.unwrap_or(max))]);
    let mut filled = 0usize;
    while u64::try_from(filled).unwrap_or(u64::MAX) <= max {
        if filled >= buf.len() {
            let mut bigger = Zeroizing::new(vec![0u8; room(max)]);
            if let (Some(dst), Some(src)) = (bigger.get_mut(..filled), buf.get(..filled)) {
                dst.copy_from_slice(src);
            }
            buf = bigger;
        }
        let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled = filled.saturating_add(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Truncating keeps the allocation, which `Zeroizing` clears whole on drop.
    buf.truncate(filled);
    Ok(buf)
}

/// The process's effective user id, from `/proc/self/status` (no `unsafe` needed); `None` where
/// it cannot be read.
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether a file owned by `uid` may hold the broker's keys: the broker's own user, or root
/// (Kubernetes Secret volumes). Where the process's user cannot be read (no `/proc`), only
/// root's files are: the check fails closed.
pub fn owned_by_us_or_root(uid: u32) -> bool {
    uid == 0 || effective_uid().is_some_and(|us| us == uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A reader handing out `data` at most `chunk` bytes at a time, noting the smallest
    /// destination it was given.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
        smallest: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.smallest = self.smallest.min(buf.len());
            let n = buf.len().min(self.chunk).min(self.data.len());
            let (head, tail) = self.data.split_at(n);
            buf[..n].copy_from_slice(head);
            self.data = tail;
            Ok(n)
        }
    }

    /// Secrets are read into a buffer sized up front, which never grows by reallocation (each
    /// would free a copy `Zeroizing` never sees), and whose every read is given the slack asked
    /// for (so std's stdin buffer is bypassed).
    #[test]
    fn secrets_are_read_without_reallocation() {
        let data = vec![7u8; 5000];
        let reader = |chunk| Chunked {
            data: &data,
            chunk,
            smallest: usize::MAX,
        };
        // Sized from the file: one allocation of its length and one byte more.
        let mut r = reader(100);
        let got = read_zeroizing(&mut r, Some(5000), 10_000, 0).unwrap();
        assert_eq!(got.as_slice(), data.as_slice());
        assert_eq!(got.capacity(), 5001);
        // No size (a pipe): one allocation of the cap, plus the slack.
        let mut r = reader(100);
        let got = read_zeroizing(&mut r, None, 10_000, 8192).unwrap();
        assert_eq!(got.as_slice(), data.as_slice());
        assert_eq!(got.capacity(), 10_001 + 8192);
        assert!(r.smallest > 8192, "{}", r.smallest);
        // A file longer than its size said: moved once to a buffer of the cap.
        let mut r = reader(7);
        let got = read_zeroizing(&mut r, Some(10), 10_000, 0).unwrap();
        assert_eq!(got.as_slice(), data.as_slice());
        assert_eq!(got.capacity(), 10_001);
        // More than the cap: one byte more is read, for the caller to refuse.
        for size in [None, Some(10), Some(5000)] {
            let mut r = reader(999);
            let got = read_zeroizing(&mut r, size, 4000, 0).unwrap();
            assert_eq!(got.len(), 4001, "{size:?}");
        }
        // Empty.
        let mut r = Chunked {
            data: &[],
            chunk: 1,
            smallest: usize::MAX,
        };
        assert!(read_zeroizing(&mut r, Some(0), 10, 0).unwrap().is_empty());
    }

    #[test]
    fn persist_creates_once_and_replaces_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        assert!(persist(&path, b"one", true).unwrap());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A first creation never replaces a file that is there.
        assert!(!persist(&path, b"two", true).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert!(persist(&path, b"three", false).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"three");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A failure names what failed: here the directory is a file.
        let blocked = dir.path().join("key").join("nested");
        assert!(matches!(
            persist(&blocked, b"x", true),
            Err(KeyFileError::Io { .. })
        ));
    }

    /// A key file another (non-root) user owns is refused: they could have planted it. Root
    /// can hand a file to another user; elsewhere only our own files can be made, and the
    /// check is shown to accept them.
    #[test]
    fn read_refuses_files_of_another_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, b"secret").unwrap();
        assert!(read(&path, Symlinks::Refuse, 0o022, "w", 64).is_ok());
        let us = effective_uid().unwrap();
        assert!(owned_by_us_or_root(us) && owned_by_us_or_root(0));
        assert!(!owned_by_us_or_root(us.wrapping_add(4242).max(1)));
        if us == 0 {
            std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
            assert!(matches!(
                read(&path, Symlinks::Refuse, 0o022, "w", 64),
                Err(KeyFileError::Refused { problem, .. }) if problem.contains("another user")
            ));
        }
    }

    #[test]
    fn read_refuses_links_modes_kinds_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, b"secret").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let read_it = |p: &Path, links, max| read(p, links, 0o022, "writable", max);
        assert_eq!(
            &read_it(&path, Symlinks::Refuse, 64).unwrap()[..],
            b"secret"
        );
        assert!(matches!(
            read_it(&path, Symlinks::Refuse, 3),
            Err(KeyFileError::TooLarge { max: 3, .. })
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            read_it(&link, Symlinks::Refuse, 64),
            Err(KeyFileError::Refused { problem, .. }) if problem.contains("symbolic link")
        ));
        assert_eq!(
            &read_it(&link, Symlinks::Follow, 64).unwrap()[..],
            b"secret"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
        assert!(matches!(
            read_it(&link, Symlinks::Follow, 64),
            Err(KeyFileError::Refused {
                problem: "writable",
                ..
            })
        ));
        assert!(matches!(
            read_it(dir.path(), Symlinks::Follow, 64),
            Err(KeyFileError::Refused {
                problem: "not a regular file",
                ..
            })
        ));
    }
}
