//! Reading input files that may be hostile: only regular files, and never
//! more bytes than the caller's bound.
//!
//! A FIFO opened for reading blocks until a writer appears (forever, when
//! none does), and `/dev/zero` or a character device never ends, so a
//! reader that trusts a path can hang or fill memory. [`open_regular`]
//! opens without blocking (`O_NONBLOCK`, which a FIFO honours at open),
//! checks the opened descriptor (`fstat`, so no rename between a check and
//! the open can swap the file) and only then hands it out, in blocking mode
//! again. [`read_regular`] reads such a file whole, refusing it when it is
//! larger than the caller says the format can need.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// What a path is when it is not a regular file, for messages.
pub fn file_kind(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        return "a folder";
    }
    if kind.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// What [`check_regular`], [`open_regular`] and the readers refuse a path
/// for when it is not a regular file: the `io::Error` they return (kind
/// `InvalidInput`) wraps one, so that a caller can tell this refusal from a
/// missing or unreadable file ([`not_regular_in`]) and say what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRegular {
    /// What the path is instead: `a FIFO (named pipe)`, `a folder`, ….
    pub what: &'static str,
}

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "it is {}, not a regular file", self.what)
    }
}

impl std::error::Error for NotRegular {}

/// The refusal of a file larger than a reader's bound, wrapped (kind
/// `InvalidData`) in the `io::Error` of [`read_regular`] and [`too_large`];
/// found with [`too_large_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The file's length (or what was read of it before the bound).
    pub len: u64,
    pub max_bytes: u64,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "it holds {}, more than the {} this kind of file can need",
            exact_bytes(self.len),
            human_bytes(self.max_bytes)
        )
    }
}

impl std::error::Error for TooLarge {}

/// The [`NotRegular`] refusal inside `err`, if that is what it is.
pub fn not_regular_in(err: &io::Error) -> Option<&NotRegular> {
    err.get_ref().and_then(|inner| inner.downcast_ref::<NotRegular>())
}

/// The [`TooLarge`] refusal inside `err`, if that is what it is.
pub fn too_large_in(err: &io::Error) -> Option<&TooLarge> {
    err.get_ref().and_then(|inner| inner.downcast_ref::<TooLarge>())
}

fn not_regular(metadata: &Metadata) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, NotRegular { what: file_kind(metadata) })
}

/// Refuses `path` unless it (after symbolic links) is a regular file,
/// without opening it: for walks over folders, so that a FIFO among the
/// files is reported rather than opened.
pub fn check_regular(path: &Path) -> io::Result<Metadata> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(not_regular(&metadata));
    }
    Ok(metadata)
}

/// Opens `path` for reading if it is a regular file; returns it with its
/// length. A FIFO, device, socket or folder is refused without blocking.
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let file = open_nonblocking(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_regular(&metadata));
    }
    set_blocking(&file)?;
    Ok((file, metadata.len()))
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Regular files ignore `O_NONBLOCK` on Linux, but other systems and file
/// systems may not; reads expect a blocking descriptor.
#[cfg(unix)]
fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this `File` owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_blocking(_file: &File) -> io::Result<()> {
    Ok(())
}

/// The error [`read_regular`] and [`read_prefix`] give for a file larger
/// than their bound.
pub fn too_large(len: u64, max_bytes: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TooLarge { len, max_bytes })
}

/// Reads a regular file whole, refusing it when it holds more than
/// `max_bytes`. The length is checked before reading and the read is
/// bounded too (the file may grow while it is read).
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    if len > max_bytes {
        return Err(too_large(len, max_bytes));
    }
    read_bounded(file, len, max_bytes)
}

/// Like [`read_regular`], for text.
pub fn read_regular_to_string(path: &Path, max_bytes: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, max_bytes)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// The first `at_most` bytes of a regular file (all of it when shorter),
/// with the file's whole length: for formats whose header tells how much
/// more to read.
pub fn read_prefix(path: &Path, at_most: u64) -> io::Result<(Vec<u8>, u64)> {
    let (file, len) = open_regular(path)?;
    let want = len.min(at_most);
    let mut bytes = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    file.take(want).read_to_end(&mut bytes)?;
    Ok((bytes, len))
}

fn read_bounded(file: File, expected: u64, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    // A refused allocation is an error to report, not an abort (a tight
    // `ulimit -v`, or a file as large as memory).
    bytes.try_reserve_exact(usize::try_from(expected).unwrap_or(usize::MAX)).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot hold its {} in memory", exact_bytes(expected)),
        )
    })?;
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64, max_bytes));
    }
    Ok(bytes)
}

/// `5.0 GB (5000000000 bytes)`, or `900 bytes`.
fn exact_bytes(bytes: u64) -> String {
    if bytes < 1000 {
        human_bytes(bytes)
    } else {
        format!("{} ({bytes} bytes)", human_bytes(bytes))
    }
}

/// `1.5 GB`, `12 MB`, `900 bytes`: sizes in messages, in powers of 1000.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn fifo(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("pipe");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        path
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        let err = read_regular(&path, 100).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        assert!(check_regular(&path).unwrap_err().to_string().contains("FIFO"));
        assert!(read_prefix(&path, 10).is_err());
        assert_eq!(not_regular_in(&err), Some(&NotRegular { what: "a FIFO (named pipe)" }));
        assert_eq!(too_large_in(&err), None);
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_folders_are_refused() {
        let err = read_regular(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        assert!(read_regular(dir.path(), 10).unwrap_err().to_string().contains("folder"));
    }

    #[test]
    fn a_file_over_the_bound_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let file = File::create(&path).unwrap();
        // Sparse: 5 GB that cost no disk.
        file.set_len(5_000_000_000).unwrap();
        let err = read_regular(&path, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("5.0 GB"), "{err}");
        assert_eq!(too_large_in(&err), Some(&TooLarge { len: 5_000_000_000, max_bytes: 1 << 20 }));
        assert_eq!(not_regular_in(&err), None);
        assert_eq!(
            not_regular_in(&std::fs::read(dir.path().join("absent")).unwrap_err()),
            None,
            "other errors are neither"
        );
        let (prefix, len) = read_prefix(&path, 16).unwrap();
        assert_eq!((prefix.len(), len), (16, 5_000_000_000));
    }

    #[test]
    fn regular_files_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "hello").unwrap();
        assert_eq!(read_regular(&path, 5).unwrap(), b"hello");
        assert_eq!(read_regular_to_string(&path, 5).unwrap(), "hello");
        assert!(read_regular(&path, 4).is_err());
        assert_eq!(read_prefix(&path, 3).unwrap(), (b"hel".to_vec(), 5));
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_regular_to_string(&path, 5).unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(900), "900 bytes");
        assert_eq!(human_bytes(12_300_000), "12.3 MB");
        assert_eq!(human_bytes(154_000_000_000), "154 GB");
    }
}
