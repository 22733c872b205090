//! One writer per run folder: `RUN/.lock` (an `flock`, `lvc_fsio::FolderLock`).
//!
//! Two `lvc train` runs into one `--out` used to both exit 0, the second
//! silently replacing the first's weights, metrics and run.json. Every
//! command that writes into a run takes the lock first and holds it until
//! it exits: `train --dataset --out/--resume`, `train --feed --out`,
//! `report`, and `evaluate --out`/`infer --out` when the file or folder
//! they write lies inside the run. Readers take nothing: every file in a run
//! is replaced atomically, so a reader sees a whole old file or a whole new
//! one, and an `lvc evaluate` of the best weights so far must not wait for
//! (or stop) a training. The lock file stays in the folder after its holder
//! exits (see lvc_fsio::lock); it is a dot file that no reader of run folders
//! lists.

use std::path::{Component, Path, PathBuf};

use lvc_fsio::{FolderLock, LockError};

/// The lock file in a run folder.
pub const LOCK_FILE: &str = ".lock";

/// The PID of the process writing into `run` now (training, resuming,
/// reporting), when one is; found without taking the lock.
pub fn run_writer(run: &Path) -> Option<u32> {
    FolderLock::holder(&run.join(LOCK_FILE))
}

/// Takes `run`'s lock (the folder must exist), or says who holds it: the
/// message for `error: …`, exit 2.
pub fn lock_run(run: &Path) -> Result<FolderLock, String> {
    FolderLock::acquire(&run.join(LOCK_FILE)).map_err(|err| match err {
        LockError::Held { .. } => format!(
            "{} is in use: {err}\n  help: a run folder takes one writer at a time (train, resume, report, and evaluate/infer writing into it); wait for that process to finish, or write elsewhere",
            run.display()
        ),
        LockError::Io { .. } => format!("cannot lock {}: {err}", run.display()),
    })
}

/// Takes `run`'s lock when `output` (a file or folder a command is about to
/// write, which may not exist yet) lies inside it; `None` when it does not.
pub fn lock_run_if_inside(run: &Path, output: &Path) -> Result<Option<FolderLock>, String> {
    if is_inside(output, run) {
        lock_run(run).map(Some)
    } else {
        Ok(None)
    }
}

/// Whether `path` is `folder` or lies under it, after resolving links and
/// `..` in the part of `path` that exists.
fn is_inside(path: &Path, folder: &Path) -> bool {
    let Ok(folder) = std::fs::canonicalize(folder) else { return false };
    resolved(path).starts_with(folder)
}

/// `path` made absolute: its longest existing ancestor canonicalized, the
/// rest appended (`..` after a missing component climbs lexically).
fn resolved(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(name) => out.push(name),
                    _ => {}
                }
            }
            return out;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_inside_a_run_are_found_through_missing_folders_and_dot_dots() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/r1");
        std::fs::create_dir_all(run.join("snapshots")).unwrap();
        assert!(is_inside(&run, &run));
        assert!(is_inside(&run.join("evaluation.json"), &run));
        assert!(is_inside(&run.join("overlays/a/b"), &run), "a folder infer will create");
        assert!(is_inside(&run.join("snapshots/../x.json"), &run));
        assert!(!is_inside(&run.join("../r2/evaluation.json"), &run));
        assert!(!is_inside(&run.join("new/../../r2"), &run), "`..` after a missing folder");
        assert!(
            !is_inside(&dir.path().join("runs/r10"), &run),
            "a prefix of the name is not inside"
        );
        assert!(!is_inside(&run, &dir.path().join("missing")));
    }

    #[test]
    fn a_held_run_names_the_folder_the_lock_and_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_run(dir.path()).unwrap();
        let message = lock_run(dir.path()).unwrap_err();
        assert!(message.starts_with(&format!("{} is in use: ", dir.path().display())), "{message}");
        assert!(
            message.contains(&format!(
                "{} is held by another lvc process (PID {})",
                dir.path().join(LOCK_FILE).display(),
                std::process::id()
            )),
            "{message}"
        );
        assert!(message.contains("\n  help: "), "{message}");
        assert!(lock_run_if_inside(dir.path(), &dir.path().join("out.json")).is_err());
        assert!(lock_run_if_inside(dir.path(), &std::env::temp_dir().join("lvc-elsewhere.json"))
            .unwrap()
            .is_none());
        drop(held);
        assert!(lock_run_if_inside(dir.path(), &dir.path().join("out.json")).unwrap().is_some());
        assert!(lock_run(&dir.path().join("missing")).unwrap_err().starts_with("cannot lock "));
    }
}
