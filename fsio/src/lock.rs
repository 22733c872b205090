//! One writer per folder: an advisory lock (`flock`) on a lock file.
//!
//! Two `lvc train` runs into one folder would each replace the other's
//! weights, metrics and run.json, and both exit 0. Every command that
//! writes into a run (or replaces a dataset) first takes the folder's lock;
//! a second writer gets an error naming the holder's PID. The kernel drops
//! the lock when its holder exits, however it exits (kill -9 included), so
//! a lock is never stale. The holder removes the lock file when it lets go
//! (only a `kill -9` leaves one behind, which the next writer simply locks
//! again). Removing it is safe because a writer that locked a file checks
//! that the path still names that file, and starts over when it does not
//! (it had opened the file just before the holder removed it).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
    _file: File,
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its PID as it wrote it, when readable.
    Held {
        path: PathBuf,
        holder: Option<u32>,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { path, holder: Some(pid) } => {
                write!(f, "{} is held by another lvc process (PID {pid})", path.display())
            }
            LockError::Held { path, holder: None } => {
                write!(f, "{} is held by another lvc process", path.display())
            }
            LockError::Io { path, source } => write!(f, "cannot lock {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

impl FolderLock {
    /// Takes the lock on `lock_file` (created if missing) without waiting,
    /// and writes this process's PID into it.
    pub fn acquire(lock_file: &Path) -> Result<FolderLock, LockError> {
        let io_err = |source| LockError::Io { path: lock_file.to_path_buf(), source };
        let mut file = loop {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(lock_file)
                .map_err(io_err)?;
            if !try_lock(&file).map_err(io_err)? {
                let mut text = String::new();
                let holder =
                    file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held { path: lock_file.to_path_buf(), holder });
            }
            if still_named(&file, lock_file) {
                break file;
            }
        };
        // Only the holder writes; a reader may see the file empty for an
        // instant, and then reports no PID.
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(FolderLock { path: lock_file.to_path_buf(), _file: file })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Still holding the lock: no other writer is between its open and
        // its check, so removing the file cannot split the lock in two.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `path` still names the open `file` (a holder may have removed
/// it between our open and our lock).
#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_named(_file: &File, _path: &Path) -> bool {
    true
}

/// `true` when the exclusive lock was taken, `false` when another open
/// file holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this `File` owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let first = FolderLock::acquire(&path).unwrap();
        // flock locks belong to open files, so a second open in this
        // process conflicts just as another process would.
        match FolderLock::acquire(&path) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        let message = FolderLock::acquire(&path).unwrap_err().to_string();
        assert!(message.contains(&format!("PID {}", std::process::id())), "{message}");
        drop(first);
        assert!(!path.exists(), "the holder removes the lock file");
        let again = FolderLock::acquire(&path).unwrap();
        assert_eq!(again.path(), path);
    }

    #[test]
    fn a_lock_file_left_by_a_killed_holder_is_simply_locked_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        std::fs::write(&path, "4242\n").unwrap();
        let lock = FolderLock::acquire(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), std::process::id().to_string());
        drop(lock);
    }

    #[test]
    fn many_threads_never_hold_it_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let holders = AtomicUsize::new(0);
        let taken = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..200 {
                        if let Ok(lock) = FolderLock::acquire(&path) {
                            assert_eq!(
                                holders.fetch_add(1, Ordering::SeqCst),
                                0,
                                "two holders at once"
                            );
                            taken.fetch_add(1, Ordering::SeqCst);
                            holders.fetch_sub(1, Ordering::SeqCst);
                            drop(lock);
                        }
                    }
                });
            }
        });
        assert!(taken.load(Ordering::SeqCst) > 0);
    }

    #[test]
    fn a_missing_folder_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            FolderLock::acquire(&dir.path().join("no/such/.lock")),
            Err(LockError::Io { .. })
        ));
    }
}
