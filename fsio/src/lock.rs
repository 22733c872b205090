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

    /// The PID of the process holding `lock_file`'s lock, when one does;
    /// `None` when it is free, missing, or the kernel's lock table cannot be
    /// read. It only looks (in `/proc/locks`): taking the lock to test it,
    /// even for an instant, could make a starting writer fail.
    pub fn holder(lock_file: &Path) -> Option<u32> {
        let meta = std::fs::metadata(lock_file).ok()?;
        let table = std::fs::read_to_string("/proc/locks").ok()?;
        holder_in(&table, meta_device_inode(&meta)?)
    }
}

#[cfg(unix)]
fn meta_device_inode(meta: &std::fs::Metadata) -> Option<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dev = meta.dev();
    Some((u64::from(libc::major(dev)), u64::from(libc::minor(dev)), meta.ino()))
}

#[cfg(not(unix))]
fn meta_device_inode(_meta: &std::fs::Metadata) -> Option<(u64, u64, u64)> {
    None
}

/// The PID of the FLOCK entry on `(major, minor, inode)` in a `/proc/locks`
/// table, whose lines read `1: FLOCK  ADVISORY  WRITE 15225 fe:00:5359826 0 EOF`
/// (device numbers in hex; blocked waiters are marked `->` and skipped).
fn holder_in(table: &str, (major, minor, inode): (u64, u64, u64)) -> Option<u32> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let pid = fields.get(4)?.parse::<u32>().ok()?;
        let mut place = fields.get(5)?.split(':');
        let at = (
            u64::from_str_radix(place.next()?, 16).ok()?,
            u64::from_str_radix(place.next()?, 16).ok()?,
            place.next()?.parse::<u64>().ok()?,
        );
        (at == (major, minor, inode)).then_some(pid)
    })
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
    fn the_holder_is_found_in_the_kernel_lock_table_without_taking_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        assert_eq!(FolderLock::holder(&path), None, "no file, no holder");
        let held = FolderLock::acquire(&path).unwrap();
        assert_eq!(FolderLock::holder(&path), Some(std::process::id()));
        // Looking did not take it: it is still ours, and others are refused.
        assert!(matches!(FolderLock::acquire(&path), Err(LockError::Held { .. })));
        drop(held);
        std::fs::write(&path, "12345\n").unwrap();
        assert_eq!(FolderLock::holder(&path), None, "a PID left behind by kill -9 is not a holder");
    }

    #[test]
    fn lock_table_lines_match_on_device_and_inode() {
        let table = "1: FLOCK  ADVISORY  WRITE 15225 fe:00:5359826 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 77 fe:01:5359826 0 EOF\n\
                     3: POSIX  ADVISORY  WRITE 88 08:01:42 0 EOF\n\
                     3: -> FLOCK  ADVISORY  WRITE 99 08:01:42 0 EOF\n";
        assert_eq!(holder_in(table, (0xfe, 0, 5359826)), Some(15225));
        assert_eq!(holder_in(table, (0xfe, 1, 5359826)), Some(77));
        assert_eq!(
            holder_in(table, (8, 1, 42)),
            None,
            "POSIX locks and waiters are not flock holders"
        );
        assert_eq!(holder_in("garbage\n\n1: FLOCK", (0, 0, 0)), None);
    }

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
