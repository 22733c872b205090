//! Leftovers of interrupted writes.
//!
//! Atomic writes go through `.NAME.tmp-PID-N` files (and a replaced dataset
//! through `.NAME.tmp-PID` and `.NAME.old-PID` folders). A writer killed
//! mid-way leaves them behind. A later writer into the same folder calls
//! [`remove_stale`], which removes those whose process is gone: a live
//! process's temporaries (another writer at work) are left alone. A
//! `.NAME.old-PID` whose `NAME` is missing is the only copy of what was
//! being replaced (the writer died between the two renames), so it is put
//! back rather than removed.

use std::io;
use std::path::{Path, PathBuf};

/// What [`remove_stale`] did with one leftover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    Removed(PathBuf),
    /// `.NAME.old-PID` renamed back to `NAME`.
    Restored {
        from: PathBuf,
        to: PathBuf,
    },
}

/// The parts of a leftover's name: (`NAME`, `tmp` or `old`, PID).
fn parse(file_name: &str) -> Option<(&str, &str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    for kind in ["tmp", "old"] {
        let marker = format!(".{kind}-");
        if let Some(at) = rest.rfind(&marker) {
            let name = &rest[..at];
            let tail = &rest[at + marker.len()..];
            let (pid, counter) = tail.split_once('-').unwrap_or((tail, "0"));
            if name.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let kind = if kind == "tmp" { "tmp" } else { "old" };
            return Some((name, kind, pid.parse().ok()?));
        }
    }
    None
}

/// Whether process `pid` exists (any user's).
#[cfg(unix)]
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
pub fn process_alive(_pid: u32) -> bool {
    true
}

/// Removes (or restores) the leftovers of dead writers in `dir`. Entries
/// it cannot remove are skipped: cleaning up never fails a command.
pub fn remove_stale(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut done = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some((name, kind, pid)) = file_name.to_str().and_then(parse) else { continue };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let target = dir.join(name);
        if kind == "old" && std::fs::symlink_metadata(&target).is_err() {
            if std::fs::rename(&path, &target).is_ok() {
                done.push(Leftover::Restored { from: path, to: target });
            }
            continue;
        }
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if removed.is_ok() {
            done.push(Leftover::Removed(path));
        }
    }
    done.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PID that no process has: past the kernel's pid_max.
    const DEAD: u32 = 99_999_999;

    #[test]
    fn names_of_leftovers_are_recognised() {
        assert_eq!(parse(".run.json.tmp-123-4"), Some(("run.json", "tmp", 123)));
        assert_eq!(parse(".ds.tmp-77"), Some(("ds", "tmp", 77)));
        assert_eq!(parse(".ds.old-77"), Some(("ds", "old", 77)));
        assert_eq!(parse("run.json"), None);
        assert_eq!(parse(".tmp-1"), None);
        assert_eq!(parse(".a.tmp-x"), None);
        assert_eq!(parse(".a.tmp-1-b"), None);
    }

    #[test]
    fn dead_writers_leftovers_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("metrics.json"), "{}").unwrap();
        std::fs::write(d.join(format!(".metrics.json.tmp-{DEAD}-0")), "half").unwrap();
        std::fs::create_dir(d.join(format!(".ds.tmp-{DEAD}"))).unwrap();
        std::fs::write(d.join(format!(".ds.tmp-{DEAD}/images.npy")), "x").unwrap();
        let mine = format!(".metrics.json.tmp-{}-9", std::process::id());
        std::fs::write(d.join(&mine), "in progress").unwrap();
        let done = remove_stale(d);
        assert_eq!(done.len(), 2, "{done:?}");
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [mine, "metrics.json".to_string()]);
    }

    #[test]
    fn an_old_copy_without_its_replacement_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join(format!(".ds.old-{DEAD}"))).unwrap();
        std::fs::write(d.join(format!(".ds.old-{DEAD}/manifest.json")), "{}").unwrap();
        let done = remove_stale(d);
        assert!(matches!(&done[..], [Leftover::Restored { .. }]), "{done:?}");
        assert!(d.join("ds/manifest.json").exists());
        // With the replacement in place, the old copy is removed.
        std::fs::create_dir(d.join(format!(".ds.old-{DEAD}"))).unwrap();
        assert!(matches!(&remove_stale(d)[..], [Leftover::Removed(_)]));
        assert!(d.join("ds/manifest.json").exists());
    }
}
