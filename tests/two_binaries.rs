//! `lvc` runs the commands that need no libtorch itself and execs `lvc-torch`
//! for the rest: `lvc` must not need libtorch at all (that is its start-up
//! time), `lvc-torch` must keep libtorch_cuda, and the hand-over must pass
//! exit codes and output through unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LVC: &str = env!("CARGO_BIN_EXE_lvc");
const LVC_TORCH: &str = env!("CARGO_BIN_EXE_lvc-torch");

fn run(binary: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_u16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
}

fn read_u32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

fn read_u64(b: &[u8], at: usize) -> usize {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize
}

/// The DT_NEEDED libraries of a little-endian ELF64 binary (what `ldd` starts
/// from), read from its SHT_DYNAMIC section and the string table it links to.
fn needed_libraries(binary: &Path) -> Vec<String> {
    const SHT_DYNAMIC: usize = 6;
    const DT_NEEDED: usize = 1;
    let b = std::fs::read(binary).expect("read binary");
    assert_eq!(&b[..6], b"\x7fELF\x02\x01", "{}: not a little-endian ELF64 file", binary.display());
    let (sh_off, sh_size, sh_count) = (read_u64(&b, 0x28), read_u16(&b, 0x3a), read_u16(&b, 0x3c));
    let section = |i: usize| sh_off + i * sh_size;
    let dynamic = (0..sh_count)
        .map(section)
        .find(|&s| read_u32(&b, s + 4) == SHT_DYNAMIC)
        .expect("a dynamic section");
    let (dyn_off, dyn_size) = (read_u64(&b, dynamic + 0x18), read_u64(&b, dynamic + 0x20));
    let strtab_off = read_u64(&b, section(read_u32(&b, dynamic + 0x28)) + 0x18);
    (dyn_off..dyn_off + dyn_size)
        .step_by(16)
        .filter(|&e| read_u64(&b, e) == DT_NEEDED)
        .map(|e| {
            let name = &b[strtab_off + read_u64(&b, e + 8)..];
            let end = name.iter().position(|&c| c == 0).expect("NUL-terminated name");
            String::from_utf8_lossy(&name[..end]).into_owned()
        })
        .collect()
}

#[test]
fn lvc_needs_no_libtorch_and_lvc_torch_keeps_cuda() {
    let light = needed_libraries(Path::new(LVC));
    assert!(
        light.iter().any(|l| l.starts_with("libc.so")),
        "the ELF reader found lvc's libraries: {light:?}"
    );
    let torch_libs: Vec<&String> = light
        .iter()
        .filter(|l| {
            ["torch", "c10", "cuda", "cudnn", "cublas", "nccl", "openblas"]
                .iter()
                .any(|t| l.contains(t))
        })
        .collect();
    assert!(
        torch_libs.is_empty(),
        "lvc must not load libtorch or OpenBLAS; it needs {torch_libs:?} (see build.rs)"
    );

    // libtorch.so needs libtorch_cuda.so (CUDA builds), kept by --no-as-needed.
    let torch = needed_libraries(Path::new(LVC_TORCH));
    for lib in ["libtorch_cpu.so", "libc10.so", "libtorch.so"] {
        assert!(torch.iter().any(|l| l == lib), "lvc-torch needs {lib}: {torch:?}");
    }
    // OpenBLAS where the build scripts found it in the venv (`make venv`).
    assert_eq!(torch.iter().any(|l| l == "libscipy_openblas.so"), cfg!(lvc_openblas), "{torch:?}");
}

#[test]
fn lvc_torch_sits_next_to_lvc() {
    assert_eq!(Path::new(LVC_TORCH), Path::new(LVC).with_file_name("lvc-torch"));
}

/// `lvc` alone in a folder: light commands still run; a torch command says
/// which binary is missing and exits 2.
#[test]
fn lvc_without_its_sibling() {
    let dir = tempfile::tempdir().expect("temp dir");
    let alone: PathBuf = dir.path().join("lvc");
    std::fs::copy(LVC, &alone).expect("copy lvc");

    let check = run(&alone, &["check", "models/fcn8s.prototxt"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("0 errors"));

    let time = run(&alone, &["time", "--model", "models/fcn8s.prototxt", "--iterations", "1"]);
    assert_eq!(time.status.code(), Some(2));
    let err = stderr(&time);
    // miette wraps lines to the terminal width (with a `│` gutter).
    let unwrapped: String = err.split_whitespace().filter(|w| *w != "│").collect();
    assert!(unwrapped.contains("lvc::torch_binary"), "{err}");
    assert!(
        unwrapped.contains(&dir.path().join("lvc-torch").display().to_string()),
        "names the missing binary: {err}"
    );
    assert!(unwrapped.contains("makebuild"), "says how to get it: {err}");
}

/// A torch command through `lvc` is `lvc-torch`'s run: same exit code, stdout
/// and stderr.
#[test]
fn torch_commands_pass_through_unchanged() {
    for args in [
        &["time", "--model", "tests/fixtures/does-not-exist.prototxt", "--iterations", "1"][..],
        &[
            "weights",
            "check",
            "--model",
            "models/fcn8s.prototxt",
            "--weights",
            "tests/fixtures/does-not-exist.caffemodel",
        ][..],
    ] {
        let via_lvc = run(Path::new(LVC), args);
        let direct = run(Path::new(LVC_TORCH), args);
        assert_ne!(direct.status.code(), Some(0), "{args:?} fails: {}", stderr(&direct));
        assert_eq!(via_lvc.status.code(), direct.status.code(), "{args:?}");
        assert_eq!(via_lvc.stdout, direct.stdout, "{args:?}");
        assert_eq!(stderr(&via_lvc), stderr(&direct), "{args:?}");
    }
}
