//! A run's download: one uncompressed tar (POSIX ustar) of the files a user
//! needs to deploy it elsewhere: best weights, run.json, metrics.json, the
//! solver and net prototxt it was trained from, evaluation.json. Built in
//! memory from regular files only (no symlink is followed).

use std::path::Path;

/// Largest bundle built (bytes).
pub const MAX_BUNDLE_BYTES: u64 = 4 << 30;

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// One tar entry header for a file `name` of `size` bytes.
fn header(name: &str, size: u64, mtime: u64) -> Result<[u8; 512], String> {
    let mut h = [0u8; 512];
    let bytes = name.as_bytes();
    if bytes.len() > 100 {
        return Err(format!("{name}: name too long for tar"));
    }
    h[..bytes.len()].copy_from_slice(bytes);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// The tar of `files` (name in the archive, path on disk); missing files are
/// left out, and the names of those included are returned.
pub fn tar(files: &[(String, &Path)]) -> Result<(Vec<u8>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for (name, path) in files {
        let Ok(bytes) = lvc_fsio::read_regular(path, MAX_BUNDLE_BYTES) else { continue };
        let mtime = path
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        out.extend_from_slice(&header(name, bytes.len() as u64, mtime)?);
        out.extend_from_slice(&bytes);
        out.resize(out.len().div_ceil(512) * 512, 0);
        names.push(name.clone());
        if out.len() as u64 > MAX_BUNDLE_BYTES {
            return Err("the bundle is larger than 4 GiB".into());
        }
    }
    out.resize(out.len() + 1024, 0);
    Ok((out, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_lists_its_files_with_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        std::fs::write(&a, b"hello").unwrap();
        let missing = dir.path().join("none");
        let (bytes, names) =
            tar(&[("run/a.txt".into(), &a), ("run/none".into(), &missing)]).unwrap();
        assert_eq!(names, vec!["run/a.txt"]);
        assert_eq!(bytes.len(), 512 + 512 + 1024);
        assert_eq!(&bytes[..9], b"run/a.txt");
        assert_eq!(&bytes[512..517], b"hello");
        let sum: u32 = bytes[..512]
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) })
            .sum();
        let stored =
            u32::from_str_radix(std::str::from_utf8(&bytes[148..154]).unwrap(), 8).unwrap();
        assert_eq!(sum, stored);
    }
}
