//! lvc-fsio: atomic file writes, shared by every crate that writes files,
//! and the checks every crate applies to files and names it reads
//! ([`read`]: regular files only, bounded reads; [`name`]: path components
//! from input; [`lock`]: one writer per folder; [`stale`]: leftovers of
//! interrupted writes).
//!
//! A write goes to a temporary file in the target's folder (so the rename
//! stays on one filesystem), is synced to disk, keeps the permissions of the
//! file it replaces, and is then renamed over the target: readers see the old
//! file or the new one, never half of one. On any failure the temporary file
//! is removed and the target is left as it was.
//!
//! [`WritebackFile`] is for large files written inside a folder that is
//! itself renamed into place: it hands each written stretch to the disk at
//! once, so the final sync waits for little.

pub mod lock;
pub mod name;
pub mod read;
pub mod stale;

pub use lock::{FolderLock, LockError};
pub use name::{check_component, escape_controls, join_component, NameError};
pub use read::{
    check_regular, open_regular, read_regular, read_regular_to_string, NotRegular, TooLarge,
};

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// Writes `path` atomically through a buffered writer; `write` produces the
/// whole content.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    write_atomic_via_temp_path(path, |temp| {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(temp)?);
        write(&mut out)?;
        out.flush()
    })
}

/// For writers that take a path rather than a `Write` (libtorch's
/// `write_npy`, safetensors' `serialize_to_file`): `create` writes the
/// temporary path it is given, which then replaces `path` atomically.
pub fn write_atomic_via_temp_path(
    path: &Path,
    create: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let temp = temp_path_for(path);
    clean_folder_once(temp.parent().unwrap_or(Path::new(".")));
    let result = create(&temp).and_then(|()| finish(&temp, path));
    if result.is_err() {
        // Best effort: `create` may have failed before making the file.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Syncs the written temporary file, gives it the permissions of the file it
/// replaces (an in-place edit keeps the file's mode), and renames it over
/// `path`.
fn finish(temp: &Path, path: &Path) -> io::Result<()> {
    File::open(temp)?.sync_all()?;
    if let Ok(existing) = std::fs::metadata(path) {
        std::fs::set_permissions(temp, existing.permissions())?;
    }
    std::fs::rename(temp, path)
}

/// The first atomic write of this process into a folder removes the
/// temporaries that writers which died there left behind
/// ([`stale::remove_stale`]); later writes into it skip the scan.
fn clean_folder_once(dir: &Path) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static CLEANED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let mut cleaned = CLEANED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if cleaned.get_or_insert_with(HashSet::new).insert(dir.to_path_buf()) {
        stale::remove_stale(dir);
    }
}

/// A hidden name next to `path`, unique per process and per call so that
/// concurrent writes (threads, processes) to one target never share a
/// temporary file.
fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp-{}-{unique}", std::process::id()))
}

/// Bytes written between two writeback requests: big enough that the
/// requests cost nothing, small enough that the disk starts early.
const WRITEBACK_STRETCH: u64 = 4 << 20;

/// The unit of holes in [`WritebackFile::write_all_sparse`]: a page, the
/// smallest stretch a file system leaves unallocated.
const HOLE_UNIT: u64 = 4096;

/// A file being written front to back whose data goes to disk while the
/// writer is still producing it: every [`WRITEBACK_STRETCH`] bytes the
/// kernel is asked to start writing them out (Linux
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), and
/// [`WritebackFile::sync`] then only waits for the tail and the metadata.
/// Writes go straight to the file: callers write large pieces.
#[derive(Debug)]
pub struct WritebackFile {
    file: File,
    written: u64,
    /// Everything before this offset has been handed to the disk.
    requested: u64,
    /// The file ends in a hole, so its length must be set before syncing.
    ends_in_hole: bool,
}

impl WritebackFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> io::Result<WritebackFile> {
        Ok(WritebackFile {
            file: File::create(path)?,
            written: 0,
            requested: 0,
            ends_in_hole: false,
        })
    }

    /// Starts writing out whatever has not been handed to the disk yet;
    /// returns at once. Call it when the content is complete, well before
    /// [`sync`](Self::sync), so several files travel to disk together.
    pub fn start_writeback(&mut self) -> io::Result<()> {
        if self.written > self.requested {
            start_writeback(&self.file, self.requested, self.written - self.requested)?;
            self.requested = self.written;
        }
        Ok(())
    }

    /// Writes `bytes` as `write_all` does, except that every whole page of
    /// the file that they would fill with zeros is skipped: a hole, which
    /// reads back as zeros and costs the disk nothing (label masks are
    /// mostly background).
    pub fn write_all_sparse(&mut self, bytes: &[u8]) -> io::Result<()> {
        let start = self.written;
        let mut unwritten = 0;
        let mut at = 0;
        while at < bytes.len() {
            let to_page_end = (HOLE_UNIT - (start + at as u64) % HOLE_UNIT) as usize;
            let end = bytes.len().min(at + to_page_end);
            if end - at == HOLE_UNIT as usize && bytes[at..end].iter().all(|&b| b == 0) {
                self.write_all(&bytes[unwritten..at])?;
                self.file.seek(SeekFrom::Current(HOLE_UNIT as i64))?;
                self.written += HOLE_UNIT;
                self.ends_in_hole = true;
                unwritten = end;
            }
            at = end;
        }
        self.write_all(&bytes[unwritten..])
    }

    /// Waits until the content and the file's metadata are on disk
    /// (`fsync`).
    pub fn sync(mut self) -> io::Result<()> {
        if self.ends_in_hole {
            self.file.set_len(self.written)?;
        }
        self.start_writeback()?;
        self.file.sync_all()
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        self.ends_in_hole &= n == 0;
        if self.written - self.requested >= WRITEBACK_STRETCH {
            self.start_writeback()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to
/// disk, without waiting.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len))
    else {
        // Beyond what the call can express; the final fsync writes it.
        return Ok(());
    };
    // SAFETY: a plain syscall on a file descriptor this `File` owns; no
    // memory is passed.
    // Only a hint: where the call is refused (ENOSYS in some sandboxes, a
    // file system without it), the final fsync still writes and reports
    // every real I/O error, so a refusal must not fail the write.
    let _refused = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    } != 0;
    Ok(())
}

/// Elsewhere there is no portable way to start writeback early; the final
/// `fsync` does all the work.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(entries(dir.path()), ["a.bin"]);
    }

    #[test]
    fn writer_closure_output_lands_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.txt");
        write_atomic_with(&path, |out| {
            out.write_all(b"head ")?;
            out.write_all(b"tail")
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "head tail");
    }

    #[test]
    fn temp_path_is_hidden_in_the_same_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.dot");
        let mut seen = None;
        write_atomic_via_temp_path(&path, |temp| {
            seen = Some(temp.to_path_buf());
            std::fs::write(temp, "digraph {}")
        })
        .unwrap();
        let temp = seen.unwrap();
        assert_eq!(temp.parent(), Some(dir.path()));
        assert!(
            temp.file_name().unwrap().to_string_lossy().starts_with(".net.dot.tmp-"),
            "{}",
            temp.display()
        );
        assert!(!temp.exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "digraph {}");
    }

    #[test]
    fn failure_keeps_the_old_file_and_removes_the_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.caffemodel");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic_with(&path, |out| {
            out.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(entries(dir.path()), ["w.caffemodel"]);
    }

    #[test]
    fn failure_before_the_temp_exists_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.npy");
        let err = write_atomic_via_temp_path(&path, |_| Err(io::Error::other("encoder failed")))
            .unwrap_err();
        assert_eq!(err.to_string(), "encoder failed");
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn the_first_write_into_a_folder_removes_dead_writers_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        // A PID above any kernel's pid_max: its writer is gone.
        let leftover = dir.path().join(".run.json.tmp-99999999-0");
        std::fs::write(&leftover, "half").unwrap();
        write_atomic(&dir.path().join("metrics.json"), b"{}").unwrap();
        assert!(!leftover.exists());
        assert_eq!(entries(dir.path()), ["metrics.json"]);
    }

    #[test]
    fn missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(&dir.path().join("no/such/a.bin"), b"x").is_err());
    }

    #[test]
    fn writeback_file_holds_everything_written_across_stretches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.npy");
        let piece: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let mut file = WritebackFile::create(&path).unwrap();
        // 40 pieces: several writeback stretches plus a partial tail.
        for _ in 0..40 {
            file.write_all(&piece).unwrap();
        }
        assert!(file.requested >= WRITEBACK_STRETCH && file.requested < file.written, "{file:?}");
        file.start_writeback().unwrap();
        assert_eq!(file.requested, file.written);
        file.sync().unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), 40 * piece.len());
        assert!(back.chunks(piece.len()).all(|c| c == piece));
    }

    #[test]
    fn sparse_writes_read_back_exactly_and_leave_zero_pages_unallocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.npy");
        // A 100-byte header, then planes that are zero except a few bytes,
        // and a zero tail: pages straddle the pieces.
        let mut plane = vec![0u8; 65536];
        plane[30_000..30_100].fill(1);
        let mut expected = vec![7u8; 100];
        let mut file = WritebackFile::create(&path).unwrap();
        file.write_all(&expected).unwrap();
        for _ in 0..20 {
            file.write_all_sparse(&plane).unwrap();
            expected.extend_from_slice(&plane);
        }
        file.write_all_sparse(&[0; 3 * HOLE_UNIT as usize]).unwrap();
        expected.extend_from_slice(&[0; 3 * HOLE_UNIT as usize]);
        file.sync().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            expected,
            "holes read back as zeros; the trailing hole keeps the length"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let on_disk = std::fs::metadata(&path).unwrap().blocks() * 512;
            assert!(
                on_disk < expected.len() as u64 / 4,
                "{on_disk} bytes allocated for {}",
                expected.len()
            );
        }
    }

    #[test]
    fn sparse_writes_of_data_without_zero_pages_are_plain_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dense.bin");
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8 | 1).collect();
        let mut file = WritebackFile::create(&path).unwrap();
        file.write_all_sparse(&data[..10]).unwrap();
        file.write_all_sparse(&data[10..]).unwrap();
        file.sync().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn writeback_file_reports_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(WritebackFile::create(&dir.path().join("no/such/x.npy")).is_err());
    }

    #[test]
    fn bare_file_name_gets_its_temp_in_the_current_folder() {
        assert_eq!(temp_path_for(Path::new("a.txt")).parent(), Some(Path::new(".")));
    }

    #[cfg(unix)]
    #[test]
    fn replacing_keeps_the_permissions_of_the_old_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.prototxt");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
