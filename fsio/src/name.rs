//! Names read from input that become parts of paths.
//!
//! A dataset, run folder or contour list written by someone else names
//! cases, files and snapshots that lvc later joins under an output folder.
//! A name like `../../x` or `/etc/x` would then write outside that folder.
//! Every such name is checked to be one plain path component before it is
//! joined: not empty, not `.` or `..`, no `/` or `\`, no NUL or other
//! control character (which also keeps names from driving a terminal).

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a name is not a safe path component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The name as read, escaped for printing.
    pub shown: String,
    pub reason: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" is not a plain file name: {}", self.shown, self.reason)
    }
}

impl std::error::Error for NameError {}

/// The longest component most file systems take (bytes).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Checks that `name` is one plain path component.
pub fn check_component(name: &str) -> Result<&str, NameError> {
    let fail = |reason| Err(NameError { shown: escape_controls(name), reason });
    if name.is_empty() {
        return fail("it is empty");
    }
    if name == "." || name == ".." {
        return fail("it names a folder itself or its parent");
    }
    if name.contains(['/', '\\']) {
        return fail("it contains a path separator");
    }
    if name.chars().any(is_control) {
        return fail("it contains a control character");
    }
    if name.len() > MAX_COMPONENT_BYTES {
        return fail("it is longer than 255 bytes");
    }
    Ok(name)
}

/// `dir/name` for a checked `name`: the only way output paths are built
/// from names read from input.
pub fn join_component(dir: &Path, name: &str) -> Result<PathBuf, NameError> {
    Ok(dir.join(check_component(name)?))
}

/// Checks a relative path of plain components (`a/b.npy`): for names that
/// are meant to reach into subfolders, never out of their root.
pub fn check_relative(path: &str) -> Result<&str, NameError> {
    if path.starts_with('/') {
        return Err(NameError { shown: escape_controls(path), reason: "it is an absolute path" });
    }
    for part in path.split('/') {
        check_component(part)
            .map_err(|e| NameError { shown: escape_controls(path), reason: e.reason })?;
    }
    Ok(path)
}

/// Control characters that a terminal acts on: C0 (with ESC), DEL, C1 (with
/// the 8-bit CSI), and the bidirectional overrides and isolates that
/// reorder what is shown.
pub fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `name` with every control character written as an escape (`\x1b`,
/// `\u{202e}`), so that printing it shows it rather than acting on it.
/// Tabs and newlines are escaped too: a name is one line.
pub fn escape_controls(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// Appends `c`, escaped when it is a control character.
pub fn push_escaped(out: &mut String, c: char) {
    use fmt::Write;
    if !is_control(c) {
        out.push(c);
    } else if (c as u32) < 0x100 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for name in ["SC-HF-I-01", "IM-0001-0048.dcm", "patient 7", "élève", ".hidden", "a..b"] {
            assert_eq!(check_component(name), Ok(name));
        }
        assert_eq!(join_component(Path::new("out"), "x.png").unwrap(), Path::new("out/x.png"));
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for (name, reason) in [
            ("", "empty"),
            (".", "parent"),
            ("..", "parent"),
            ("../../x", "separator"),
            ("/etc/passwd", "separator"),
            ("a\\b", "separator"),
            ("a\0b", "control"),
            ("a\u{1b}]0;title\u{7}", "control"),
            ("\u{202e}gnp.exe", "control"),
        ] {
            let err = check_component(name).unwrap_err();
            assert!(err.reason.contains(reason), "{name:?}: {err}");
            assert!(!err.to_string().contains('\u{1b}'), "the message is escaped: {err}");
        }
        assert!(check_component(&"x".repeat(256)).is_err());
    }

    #[test]
    fn relative_paths_stay_below_their_root() {
        assert_eq!(
            check_relative("snapshots/iter_100.safetensors"),
            Ok("snapshots/iter_100.safetensors")
        );
        for bad in ["../x", "/x", "a//b", "a/../b", "a/", "a/./b"] {
            assert!(check_relative(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn controls_are_written_as_escapes() {
        assert_eq!(escape_controls("a\u{1b}[2Jb\tc\n"), "a\\x1b[2Jb\\x09c\\x0a");
        assert_eq!(escape_controls("x\u{9b}y\u{202e}"), "x\\x9by\\u{202e}");
        assert_eq!(escape_controls("plain ünïcode ✓"), "plain ünïcode ✓");
    }
}
