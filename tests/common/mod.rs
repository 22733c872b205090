//! Shared by the CLI tests (`mod common;`): running the `lvc` binary and
//! finding the Caffe golden files in ../shared.

// Each test binary compiles its own copy and uses only some of these.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `lvc` with `args` in the workspace root, so relative paths
/// (`models/…`, `tests/fixtures/…`) and snapshots stay stable.
pub fn lvc(args: &[&str]) -> Output {
    lvc_in(args, Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// Runs `lvc` with `args` in `dir`.
pub fn lvc_in(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvc")).args(args).current_dir(dir).output().expect("run lvc")
}

/// Captured output as text (lossy: a test failure should still show it).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path under the Caffe golden folder (`../shared/golden/caffe`).
pub fn golden(rel: &str) -> String {
    format!("{}/../shared/golden/caffe/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `lvc` with `args` in `dir` and fails the test, killing the child,
/// when it runs longer than `seconds`: for inputs that can block a reader
/// (opening a FIFO for reading waits for a writer forever) or make it
/// read gigabytes.
pub fn lvc_within(args: &[&str], dir: &Path, seconds: u64) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvc"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lvc");
    // Drained on threads: a child blocked on a full pipe would look hung.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for lvc") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = text(&stderr.join().unwrap_or_default());
            panic!("lvc {args:?} ran longer than {seconds} s (blocked?); stderr so far:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Makes a FIFO (named pipe) at `path`.
pub fn make_fifo(path: &Path) {
    let c =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in a temp path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// An explicit VR little endian Part 10 file with `depth` sequences
/// (undefined lengths) nested inside one another in front of its data set:
/// (0008,1115), an item, (0008,1115), … then the delimiters.
pub fn with_nested_sequences(file: &[u8], depth: usize) -> Vec<u8> {
    let group_length = u32::from_le_bytes([file[140], file[141], file[142], file[143]]) as usize;
    let data_start = 144 + group_length;
    let open = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0,
        0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let close = [0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];
    [&file[..data_start], &open.repeat(depth), &close.repeat(depth), &file[data_start..]].concat()
}

/// Makes `path` a file of `len` bytes starting with `head`, the rest a
/// hole (sparse: it costs the disk nothing).
pub fn sparse_file(path: &Path, head: &[u8], len: u64) {
    std::fs::write(path, head).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap_or_else(|e| panic!("{e}"));
    file.set_len(len).unwrap_or_else(|e| panic!("cannot extend {}: {e}", path.display()));
}

/// `text` without whitespace and miette's `│` margins: miette wraps a
/// diagnostic at the terminal width (80 columns without one), breaking
/// long paths anywhere, so a message is looked for in this form.
pub fn squashed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace() && *c != '│').collect()
}

/// Whether diagnostic output `haystack` says `needle`, wrapping aside.
pub fn says(haystack: &str, needle: &str) -> bool {
    squashed(haystack).contains(&squashed(needle))
}
