//! The job queue: trainings and dataset imports run as child processes of
//! the `lvc` binary itself (`lvc train … --log-format json`, `lvc dataset
//! create …`), never through a shell, at most `--jobs` at a time in the
//! order they were queued. Each job is a JSON record in
//! `ROOT/.lvc-serve/jobs/` (written atomically at every change of state), so
//! the queue survives a restart: a job that was running when the server died
//! is queued again, and a training that had begun continues with
//! `--resume`, as the command line would. A child dies with the server
//! (`PR_SET_PDEATHSIG`), so no training runs on unseen.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;

use crate::paths::Root;

/// The server's own folder under the root (hidden: no id reaches it).
pub const STATE_DIR: &str = ".lvc-serve";

/// What a job runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// `lvc train --solver S --dataset DS --out RUN …` (ids under the root).
    Train {
        solver: String,
        dataset: String,
        epochs: Option<u32>,
        weights: Option<String>,
        #[serde(default)]
        adapt: Vec<String>,
        device: String,
    },
    /// `lvc dataset create --images I --contours C --out DS …`.
    DatasetCreate {
        images: String,
        contours: String,
        channels: String,
        split: String,
        val_pct: u32,
        seed: u64,
    },
}

/// Where a job is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

/// A job as stored in `.lvc-serve/jobs/<id>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: u64,
    /// The run or dataset folder the job writes (an id under the root).
    pub target: String,
    pub spec: JobSpec,
    pub state: JobState,
    /// Unix seconds.
    pub created: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    /// The last lines the child wrote on stderr, when it failed.
    pub error: Option<String>,
    /// How often a server restart queued it again.
    #[serde(default)]
    pub restarts: u32,
}

/// Live progress of a running training, from its JSON events.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Progress {
    /// Increases with every update (the event stream sends what changed).
    pub seq: u64,
    pub epoch: u32,
    pub epochs: u32,
    pub batch: i64,
    pub batches: i64,
    pub iter: i64,
    pub loss: f64,
    pub lr: f64,
    /// Seconds left, from the pace so far.
    pub eta_seconds: Option<f64>,
}

struct Entry {
    record: JobRecord,
    progress: Option<Progress>,
    pid: Option<u32>,
    cancel_requested: bool,
}

/// The queue, shared by the handlers and the runner.
pub struct Jobs {
    table: Mutex<BTreeMap<u64, Entry>>,
    wake: Notify,
    dir: PathBuf,
    max_running: usize,
    lvc: PathBuf,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Most bytes of a job's stderr kept in its record as the error.
const ERROR_TAIL_BYTES: usize = 4000;

impl Jobs {
    /// Loads the queue from `root`; jobs that were running are queued again.
    pub fn load(root: &Root, max_running: usize, lvc: PathBuf) -> std::io::Result<Jobs> {
        let dir = root.dir().join(STATE_DIR).join("jobs");
        std::fs::create_dir_all(&dir)?;
        let mut table = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(bytes) = lvc_fsio::read_regular(&path, 1 << 20) else { continue };
            let Ok(mut record) = serde_json::from_slice::<JobRecord>(&bytes) else {
                eprintln!("warning: {}: not a job record; ignored", path.display());
                continue;
            };
            if record.state == JobState::Running {
                record.state = JobState::Queued;
                record.restarts += 1;
            }
            table.insert(
                record.id,
                Entry { record, progress: None, pid: None, cancel_requested: false },
            );
        }
        let jobs = Jobs {
            table: Mutex::new(table),
            wake: Notify::new(),
            dir,
            max_running: max_running.max(1),
            lvc,
        };
        let records: Vec<JobRecord> = jobs.lock().values().map(|e| e.record.clone()).collect();
        for record in records.iter().filter(|r| r.restarts > 0 && r.state == JobState::Queued) {
            jobs.persist(record);
        }
        Ok(jobs)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn persist(&self, record: &JobRecord) {
        let path = self.dir.join(format!("{:012}.json", record.id));
        let result = serde_json::to_vec_pretty(record)
            .map_err(std::io::Error::other)
            .and_then(|bytes| lvc_fsio::write_atomic(&path, &bytes));
        if let Err(e) = result {
            eprintln!("warning: cannot write {}: {e}", path.display());
        }
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:012}.log"))
    }

    /// Queues a job writing `target`; answers its id.
    pub fn submit(&self, target: String, spec: JobSpec) -> u64 {
        let record = {
            let mut table = self.lock();
            let id = table.keys().next_back().map_or(1, |last| last + 1);
            let record = JobRecord {
                id,
                target,
                spec,
                state: JobState::Queued,
                created: now(),
                started: None,
                finished: None,
                error: None,
                restarts: 0,
            };
            table.insert(
                id,
                Entry {
                    record: record.clone(),
                    progress: None,
                    pid: None,
                    cancel_requested: false,
                },
            );
            record
        };
        self.persist(&record);
        self.wake.notify_one();
        record.id
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Vec<JobRecord> {
        self.lock().values().map(|e| e.record.clone()).collect()
    }

    /// The newest job writing `target`, with its progress.
    pub fn for_target(&self, target: &str) -> Option<(JobRecord, Option<Progress>)> {
        self.lock()
            .values()
            .rev()
            .find(|e| e.record.target == target)
            .map(|e| (e.record.clone(), e.progress.clone()))
    }

    /// Position in the queue (1 = next to start) of a queued job.
    pub fn queue_position(&self, id: u64) -> Option<usize> {
        let table = self.lock();
        table
            .values()
            .filter(|e| e.record.state == JobState::Queued)
            .position(|e| e.record.id == id)
            .map(|p| p + 1)
    }

    /// Cancels a queued or running job; `false` when it had already ended.
    pub fn cancel(&self, id: u64) -> bool {
        let record = {
            let mut table = self.lock();
            let Some(entry) = table.get_mut(&id) else { return false };
            match entry.record.state {
                JobState::Queued => {
                    entry.record.state = JobState::Cancelled;
                    entry.record.finished = Some(now());
                    entry.record.clone()
                }
                JobState::Running => {
                    entry.cancel_requested = true;
                    if let Some(pid) = entry.pid.and_then(|p| i32::try_from(p).ok()) {
                        // SAFETY: kill(2) on the pid of our own child.
                        unsafe { libc::kill(pid, libc::SIGTERM) };
                    }
                    return true;
                }
                _ => return false,
            }
        };
        self.persist(&record);
        true
    }

    /// Starts queued jobs whenever a slot is free; runs for the server's life.
    pub async fn run(self: Arc<Self>, root: Root) {
        loop {
            while let Some(id) = self.next_to_start() {
                let jobs = self.clone();
                let root = root.clone();
                tokio::spawn(async move { jobs.run_one(id, &root).await });
            }
            self.wake.notified().await;
        }
    }

    fn next_to_start(&self) -> Option<u64> {
        let record = {
            let mut table = self.lock();
            let running = table.values().filter(|e| e.record.state == JobState::Running).count();
            if running >= self.max_running {
                return None;
            }
            let entry = table.values_mut().find(|e| e.record.state == JobState::Queued)?;
            entry.record.state = JobState::Running;
            entry.record.started = Some(now());
            entry.record.error = None;
            entry.progress = None;
            entry.record.clone()
        };
        self.persist(&record);
        Some(record.id)
    }

    async fn run_one(&self, id: u64, root: &Root) {
        let outcome = self.run_child(id, root).await;
        let record = {
            let mut table = self.lock();
            let Some(entry) = table.get_mut(&id) else { return };
            entry.pid = None;
            entry.record.finished = Some(now());
            entry.record.state = match &outcome {
                _ if entry.cancel_requested => JobState::Cancelled,
                Ok(()) => JobState::Done,
                Err(_) => JobState::Failed,
            };
            entry.record.error = outcome.err().filter(|_| entry.record.state == JobState::Failed);
            entry.record.clone()
        };
        self.persist(&record);
        self.wake.notify_one();
    }

    /// Runs the job's command; `Err` holds why it failed.
    async fn run_child(&self, id: u64, root: &Root) -> Result<(), String> {
        let (record, resume) = {
            let table = self.lock();
            let entry = table.get(&id).ok_or("the job vanished")?;
            (entry.record.clone(), entry.record.restarts > 0)
        };
        let args = command_args(root, &record.target, &record.spec, resume)?;
        let log_path = self.log_path(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let mut command = tokio::process::Command::new(&self.lvc);
        command
            .args(&args)
            .current_dir(root.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; the child gets SIGTERM when the
        // server dies, so a restarted server can resume it alone.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child =
            command.spawn().map_err(|e| format!("cannot start {}: {e}", self.lvc.display()))?;
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.pid = child.id();
        }
        if let Some(stdout) = child.stdout.take() {
            let mut lines = BufReader::new(stdout).lines();
            let mut pace = Pace::default();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if let Some(mut entry_progress) = pace.update(&event) {
                    let mut table = self.lock();
                    if let Some(entry) = table.get_mut(&id) {
                        entry_progress.seq = entry.progress.as_ref().map_or(1, |p| p.seq + 1);
                        entry.progress = Some(entry_progress);
                    }
                }
            }
        }
        let status = child.wait().await.map_err(|e| format!("cannot wait for the job: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(error_tail(&log_path)
                .unwrap_or_else(|| format!("the command exited with {status}")))
        }
    }
}

/// The ETA from the iterations done since `started`.
#[derive(Default)]
struct Pace {
    started: Option<Instant>,
    total: i64,
    done: i64,
}

impl Pace {
    fn update(&mut self, event: &serde_json::Value) -> Option<Progress> {
        let int = |k: &str| event.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
        let float = |k: &str| event.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
        match event.get("event").and_then(serde_json::Value::as_str)? {
            "started" => {
                self.started = Some(Instant::now());
                let epochs_left = (int("epochs") - int("first_epoch") + 1).max(0);
                self.total = epochs_left * int("iterations_per_epoch");
                self.done = 0;
                None
            }
            "iteration" => {
                self.done += 1;
                let eta_seconds = self.started.map(|t| {
                    t.elapsed().as_secs_f64() / self.done as f64
                        * (self.total - self.done).max(0) as f64
                });
                Some(Progress {
                    seq: 0,
                    epoch: u32::try_from(int("epoch")).unwrap_or(0),
                    epochs: u32::try_from(int("epochs")).unwrap_or(0),
                    batch: int("batch"),
                    batches: int("batches"),
                    iter: int("iter"),
                    loss: float("loss"),
                    lr: float("lr"),
                    eta_seconds,
                })
            }
            _ => None,
        }
    }
}

/// The end of a job's log: its error message.
fn error_tail(log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4 * ERROR_TAIL_BYTES as u64))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_end();
    if text.is_empty() {
        return None;
    }
    let start = text.len().saturating_sub(ERROR_TAIL_BYTES);
    let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    Some(strip_ansi(&text[start..]))
}

/// `text` without terminal colour sequences (miette's).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The child's arguments: paths resolved under the root again (a folder
/// replaced by a symlink since the job was queued is refused then), values
/// passed as `--flag=value` so none can read as another flag.
pub fn command_args(
    root: &Root,
    target: &str,
    spec: &JobSpec,
    resume: bool,
) -> Result<Vec<OsString>, String> {
    let existing = |id: &str| root.existing(id).map_err(|e| e.to_string());
    let flag = |name: &str, value: &Path| {
        let mut arg = OsString::from(format!("--{name}="));
        arg.push(value.as_os_str());
        arg
    };
    let mut args: Vec<OsString> = Vec::new();
    match spec {
        JobSpec::Train { solver, dataset, epochs, weights, adapt, device } => {
            let run = root.join(target).map_err(|e| e.to_string())?;
            args.push("train".into());
            args.push(flag("solver", &existing(solver)?));
            args.push(flag("dataset", &existing(dataset)?));
            let resuming = resume && run.join(lvc_workflow::run_folder::RUN_JSON).is_file();
            if resuming {
                args.push(flag("resume", &existing(target)?));
            } else {
                args.push(flag("out", &run));
                if let Some(w) = weights {
                    args.push(flag("weights", &existing(w)?));
                }
                for fix in adapt {
                    args.push(format!("--adapt={fix}").into());
                }
            }
            if let Some(e) = epochs {
                args.push(format!("--epochs={e}").into());
            }
            args.push(format!("--device={device}").into());
            args.push("--log-format=json".into());
        }
        JobSpec::DatasetCreate { images, contours, channels, split, val_pct, seed } => {
            let out = root.join(target).map_err(|e| e.to_string())?;
            if resume && out.exists() {
                return Err(format!("the server stopped during this import; {target} may be incomplete: delete it and import again"));
            }
            args.push("dataset".into());
            args.push("create".into());
            args.push(flag("images", &existing(images)?));
            args.push(flag("contours", &existing(contours)?));
            args.push(flag("out", &out));
            args.push(format!("--channels={channels}").into());
            args.push(format!("--split={split}").into());
            args.push(format!("--val-pct={val_pct}").into());
            args.push(format!("--seed={seed}").into());
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_reports_iterations_with_an_eta() {
        let mut pace = Pace::default();
        let started = serde_json::json!({"event": "started", "epochs": 2, "first_epoch": 1, "iterations_per_epoch": 4});
        assert!(pace.update(&started).is_none());
        let it = serde_json::json!({"event": "iteration", "epoch": 1, "epochs": 2, "batch": 1, "batches": 4, "iter": 1, "loss": 0.5, "lr": 0.01});
        let p = pace.update(&it).unwrap();
        assert_eq!((p.epoch, p.batch, p.batches, p.iter), (1, 1, 4, 1));
        assert!(p.eta_seconds.unwrap() >= 0.0);
        assert_eq!(strip_ansi("\x1b[31merror\x1b[0m: x"), "error: x");
    }

    #[test]
    fn arguments_resolve_under_the_root_and_resume_a_started_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ds")).unwrap();
        std::fs::write(dir.path().join("s.prototxt"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("runs/a")).unwrap();
        let root = Root::new(dir.path()).unwrap();
        let spec = JobSpec::Train {
            solver: "s.prototxt".into(),
            dataset: "ds".into(),
            epochs: Some(1),
            weights: None,
            adapt: vec!["reinit=score".into()],
            device: "cpu".into(),
        };
        let args = command_args(&root, "runs/a", &spec, false).unwrap();
        let text: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(text[0], "train");
        assert!(text.iter().any(|a| a.starts_with("--out=") && a.ends_with("runs/a")));
        assert!(text.contains(&"--adapt=reinit=score".to_string()));
        std::fs::write(dir.path().join("runs/a/run.json"), "{}").unwrap();
        let resumed = command_args(&root, "runs/a", &spec, true).unwrap();
        assert!(resumed.iter().any(|a| a.to_string_lossy().starts_with("--resume=")));
        let JobSpec::Train { dataset, epochs, weights, adapt, device, .. } = spec else {
            unreachable!()
        };
        let bad = JobSpec::Train {
            solver: "../s.prototxt".into(),
            dataset,
            epochs,
            weights,
            adapt,
            device,
        };
        assert!(command_args(&root, "runs/a", &bad, false).is_err());
    }
}
